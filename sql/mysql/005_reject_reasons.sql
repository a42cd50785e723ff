-- Every reason of a reject, comma-separated, its `reason` first (added with one reject per bad
-- record; see etl4all.parse). MySQL has no ADD COLUMN IF NOT EXISTS: `etl4all init-db` skips
-- this statement when the column is already there (error 1060), so running it again upgrades
-- older tables only.

ALTER TABLE reject ADD COLUMN reasons VARCHAR(255) NULL AFTER detail;
