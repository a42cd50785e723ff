-- PostgreSQL with PostGIS only: the stored points inside a polygon (a neighbourhood, a
-- delivery zone), with their address, by id.
-- Parameters: 1. the polygon as WKT text in longitude-latitude order (WGS 84), e.g.
-- 'POLYGON((-51.25 -30.05, -51.20 -30.05, -51.20 -30.00, -51.25 -30.00, -51.25 -30.05))'.
-- The GiST index on `geom` finds the candidates inside the polygon's bounding box first.
SELECT
    a.id,
    a.latitude,
    a.longitude,
    a.street,
    a.number,
    a.neighborhood,
    a.city,
    a.postal_code
FROM address AS a
WHERE ST_Within(a.geom, ST_GeomFromText(?, 4326))
ORDER BY a.id
