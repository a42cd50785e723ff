-- Input that could not be read or geocoded: one row per (file, line, reason), so replays
-- never duplicate a reject. Statements are separated by a semicolon at the end of a line.

CREATE SEQUENCE IF NOT EXISTS reject_id_seq;

CREATE TABLE IF NOT EXISTS reject (
    id           BIGINT    NOT NULL DEFAULT nextval('reject_id_seq') PRIMARY KEY,
    source_file  VARCHAR   NOT NULL,
    source_line  UINTEGER  NOT NULL,
    reason       VARCHAR   NOT NULL,
    text         VARCHAR,
    created_at   TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    UNIQUE (source_file, source_line, reason)
);
