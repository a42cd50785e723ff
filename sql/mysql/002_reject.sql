-- Input that could not be read or geocoded: one row per (file, line, reason), so replays
-- never duplicate a reject. Statements are separated by a semicolon at the end of a line.

CREATE TABLE IF NOT EXISTS reject (
    id           BIGINT       NOT NULL AUTO_INCREMENT,
    source_file  VARCHAR(512) NOT NULL,
    source_line  INT UNSIGNED NOT NULL,
    reason       VARCHAR(32)  NOT NULL,
    text         TEXT         NULL,
    created_at   DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'UTC',
    PRIMARY KEY (id),
    UNIQUE KEY uq_reject_line (source_file, source_line, reason)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
