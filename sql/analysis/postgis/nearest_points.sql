-- PostgreSQL with PostGIS only: the N stored points nearest to a coordinate, nearest first,
-- with their address and their distance in metres (on the WGS 84 spheroid).
-- Parameters: 1. the longitude, 2. the latitude (degrees, WGS 84), 3. N.
-- The GiST index on `geom` orders the points by planar distance in degrees (`<->`), so a
-- nearest search reads only about N index entries however big the table; over a few
-- kilometres that order is the order in metres too.
SELECT
    a.id,
    a.latitude,
    a.longitude,
    a.street,
    a.number,
    a.neighborhood,
    a.city,
    ST_Distance(a.geom::geography, here.point::geography) AS distance_m
FROM address AS a,
    (SELECT ST_SetSRID(ST_MakePoint(?, ?), 4326) AS point) AS here
ORDER BY a.geom <-> here.point
LIMIT ?
