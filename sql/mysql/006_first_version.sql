-- The version of its file that first loaded a membership or a reject (continuously held
-- since): what a revert of an unfinished later version keeps (NULL: as old as its version).
-- MySQL has no ADD COLUMN IF NOT EXISTS: `etl4all init-db` skips a statement whose column is
-- already there (error 1060).

ALTER TABLE address_source ADD COLUMN first_version BIGINT NULL;

ALTER TABLE reject ADD COLUMN first_version BIGINT NULL;
