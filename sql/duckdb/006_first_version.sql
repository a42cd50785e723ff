-- The version of its file that first loaded a membership or a reject (continuously held
-- since): what a revert of an unfinished later version keeps (NULL: as old as its version).
-- Run on every open, so older files get the columns too.

ALTER TABLE address_source ADD COLUMN IF NOT EXISTS first_version BIGINT;

ALTER TABLE reject ADD COLUMN IF NOT EXISTS first_version BIGINT;
