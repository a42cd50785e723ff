-- A short human hint next to a reject's stable reason (added after 0.1.0; see etl4all.parse).
-- MySQL has no ADD COLUMN IF NOT EXISTS: `etl4all init-db` skips this statement when the
-- column is already there (error 1060), so running it again upgrades older tables only.

ALTER TABLE reject ADD COLUMN detail VARCHAR(200) NULL AFTER reason;
