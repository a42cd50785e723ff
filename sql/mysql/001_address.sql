-- The address table: one row per distinct coordinate (latitude, longitude at 8 decimals).
-- Idempotent: init() runs every file in this folder, in name order, on each start.
-- The database itself is created by init() from the URL (CHARACTER SET utf8mb4).
-- Timestamps are UTC: the loader writes UTC_TIMESTAMP(6); the defaults are for manual inserts.
-- Statements are separated by a semicolon at the end of a line.

CREATE TABLE IF NOT EXISTS address (
    id                BIGINT        NOT NULL AUTO_INCREMENT,
    latitude          DECIMAL(10,8) NOT NULL,
    longitude         DECIMAL(11,8) NOT NULL,
    street            VARCHAR(255)  NULL,
    number            VARCHAR(32)   NULL,
    neighborhood      VARCHAR(255)  NULL,
    city              VARCHAR(255)  NULL,
    postal_code       VARCHAR(32)   NULL,
    state             VARCHAR(100)  NULL,
    country           VARCHAR(100)  NULL,
    formatted_address VARCHAR(500)  NULL,
    place_id          VARCHAR(255)  NULL,
    location_type     VARCHAR(32)   NULL,
    geocoder          VARCHAR(32)   NULL,
    geocode_status    VARCHAR(32)   NULL,
    geocoded_at       DATETIME(6)   NULL COMMENT 'UTC',
    source_file       VARCHAR(512)  NULL,
    source_line       INT UNSIGNED  NULL,
    distance_km       DOUBLE        NULL,
    bearing_deg       DOUBLE        NULL,
    created_at        DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'UTC',
    updated_at        DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'UTC',
    PRIMARY KEY (id),
    UNIQUE KEY uq_address_coordinate (latitude, longitude)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
