-- Every reason of a reject, comma-separated, its `reason` first (added with one reject per bad
-- record; see etl4all.parse). Run on every open, so older files get the column too.

ALTER TABLE reject ADD COLUMN IF NOT EXISTS reasons VARCHAR;
