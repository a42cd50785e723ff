-- The version of its file that first loaded a membership or a reject (continuously held
-- since): what a revert of an unfinished later version keeps (NULL: as old as its version).
-- MySQL has no ADD COLUMN IF NOT EXISTS: `etl4all init-db` skips a statement whose column is
-- already there (error 1060).

ALTER TABLE address_source ADD COLUMN first_version BIGINT NULL;

ALTER TABLE reject ADD COLUMN first_version BIGINT NULL;

-- The versions a revert voided, strictly between these two (NULL: none): work of a version
-- cut short that comes late changes nothing, while that of the version kept still applies.

ALTER TABLE source_file ADD COLUMN void_from BIGINT NULL;

ALTER TABLE source_file ADD COLUMN void_to BIGINT NULL;

-- A prune by keys marks the memberships its version lacks (dropped_by) and the version's last
-- message, its finalize, deletes them: a version cut short before it is finalized deletes
-- nothing, and a revert takes its marks back. finalized: the newest version finalized.

ALTER TABLE address_source ADD COLUMN dropped_by BIGINT NULL;

ALTER TABLE source_file ADD COLUMN finalized BIGINT NULL;
