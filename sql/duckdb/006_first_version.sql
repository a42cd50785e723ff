-- The version of its file that first loaded a membership or a reject (continuously held
-- since): what a revert of an unfinished later version keeps (NULL: as old as its version).
-- Run on every open, so older files get the columns too.

ALTER TABLE address_source ADD COLUMN IF NOT EXISTS first_version BIGINT;

ALTER TABLE reject ADD COLUMN IF NOT EXISTS first_version BIGINT;

-- The versions a revert voided, strictly between these two (NULL: none): work of a version
-- cut short that comes late changes nothing, while that of the version kept still applies.

ALTER TABLE source_file ADD COLUMN IF NOT EXISTS void_from BIGINT;

ALTER TABLE source_file ADD COLUMN IF NOT EXISTS void_to BIGINT;

-- A prune by keys marks the memberships its version lacks (dropped_by) and the version's last
-- message, its finalize, deletes them: a version cut short before it is finalized deletes
-- nothing, and a revert takes its marks back. finalized: the newest version finalized.

ALTER TABLE address_source ADD COLUMN IF NOT EXISTS dropped_by BIGINT;

ALTER TABLE source_file ADD COLUMN IF NOT EXISTS finalized BIGINT;
