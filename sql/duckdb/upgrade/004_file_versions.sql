-- Run once by init() when address has rows and address_source has none (a warehouse made
-- before file versions): each row is held by the file of its provenance, at version 0.

INSERT INTO source_file (name)
SELECT DISTINCT source_file FROM address
WHERE source_file IS NOT NULL AND source_file NOT IN (SELECT name FROM source_file);

INSERT INTO address_source
    (file_id, latitude, longitude, source_line, distance_km, bearing_deg, version)
SELECT f.id, a.latitude, a.longitude, coalesce(a.source_line, 0), a.distance_km, a.bearing_deg, 0
FROM address AS a JOIN source_file AS f ON f.name = a.source_file;
