-- The address table: one row per distinct coordinate (latitude, longitude at 8 decimals).
-- Idempotent: init() runs every file in this folder, in name order, on each start.
-- Timestamps are UTC (TIMESTAMP without time zone); the loader writes them explicitly.
-- Statements are separated by a semicolon at the end of a line.
-- DuckDB keeps every index in memory (an ART, about 56 bytes per row for the coordinate):
-- `id` comes from a sequence and is never looked up, so it has no index of its own.

CREATE SEQUENCE IF NOT EXISTS address_id_seq;

CREATE TABLE IF NOT EXISTS address (
    id                BIGINT        NOT NULL DEFAULT nextval('address_id_seq'),
    latitude          DECIMAL(10,8) NOT NULL,
    longitude         DECIMAL(11,8) NOT NULL,
    street            VARCHAR,
    number            VARCHAR,
    neighborhood      VARCHAR,
    city              VARCHAR,
    postal_code       VARCHAR,
    state             VARCHAR,
    country           VARCHAR,
    formatted_address VARCHAR,
    place_id          VARCHAR,
    location_type     VARCHAR,
    geocoder          VARCHAR,
    geocode_status    VARCHAR,
    geocoded_at       TIMESTAMP,
    source_file       VARCHAR,
    source_line       UINTEGER,
    distance_km       DOUBLE,
    bearing_deg       DOUBLE,
    created_at        TIMESTAMP     NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at        TIMESTAMP     NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    UNIQUE (latitude, longitude)
);
