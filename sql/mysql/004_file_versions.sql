-- Which files hold each coordinate, and as which version (see docs/guarantees.md).
-- A row of `address` goes only when no file holds its coordinate any more; a batch or a prune
-- of an older version of a file than `source_file.version` changes nothing.
-- File names compare byte by byte (utf8mb4_bin): A.txt and a.txt are two files.

CREATE TABLE IF NOT EXISTS source_file (
    id        INT UNSIGNED  NOT NULL AUTO_INCREMENT,
    name      VARCHAR(512)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    version   BIGINT        NOT NULL DEFAULT 0,
    replaced  BOOL          NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    UNIQUE KEY uq_source_file_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS address_source (
    file_id      INT UNSIGNED  NOT NULL,
    latitude     DECIMAL(10,8) NOT NULL,
    longitude    DECIMAL(11,8) NOT NULL,
    source_line  INT UNSIGNED  NOT NULL,
    distance_km  DOUBLE        NULL,
    bearing_deg  DOUBLE        NULL,
    version      BIGINT        NOT NULL,
    PRIMARY KEY (file_id, latitude, longitude),
    KEY ix_address_source_coordinate (latitude, longitude)
) ENGINE=InnoDB;

ALTER TABLE reject ADD COLUMN version BIGINT NULL;
