-- Which files hold each coordinate, and as which version (see docs/guarantees.md).
-- A row of `address` goes only when no file holds its coordinate any more; a batch or a prune
-- of an older version of a file than `source_file.version` changes nothing.
-- No index on address_source: DuckDB joins it by hash, and an ART index would stay in memory.

CREATE SEQUENCE IF NOT EXISTS source_file_id_seq;

CREATE TABLE IF NOT EXISTS source_file (
    id        INTEGER NOT NULL DEFAULT nextval('source_file_id_seq') PRIMARY KEY,
    name      VARCHAR NOT NULL UNIQUE,
    version   BIGINT  NOT NULL DEFAULT 0,
    replaced  BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS address_source (
    file_id      INTEGER       NOT NULL,
    latitude     DECIMAL(10,8) NOT NULL,
    longitude    DECIMAL(11,8) NOT NULL,
    source_line  UINTEGER      NOT NULL,
    distance_km  DOUBLE,
    bearing_deg  DOUBLE,
    version      BIGINT        NOT NULL
);

ALTER TABLE reject ADD COLUMN IF NOT EXISTS version BIGINT;
