-- A short human hint next to a reject's stable reason (added after 0.1.0; see etl4all.parse).
-- Run on every open, so older files get the column too.

ALTER TABLE reject ADD COLUMN IF NOT EXISTS detail VARCHAR;
