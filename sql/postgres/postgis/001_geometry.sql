-- Run by init() only when `CREATE EXTENSION IF NOT EXISTS postgis` succeeds: each address
-- as a PostGIS point (SRID 4326, longitude first), kept by the database from the coordinate,
-- with a GiST index for "nearest points" (ORDER BY geom <-> point) and "within a polygon"
-- (ST_Within, ST_DWithin) queries; see sql/analysis/postgis/.

ALTER TABLE address ADD COLUMN IF NOT EXISTS geom geometry(Point, 4326)
    GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(longitude::float8, latitude::float8), 4326)) STORED;

CREATE INDEX IF NOT EXISTS ix_address_geom ON address USING gist (geom);
