-- Geocoder coverage: per geocoder, the rows, the street-level rows, the ZERO_RESULTS and
-- the oldest and newest geocode (UTC). No parameters.
SELECT
    geocoder,
    COUNT(*) AS address_rows,
    COALESCE(SUM(CASE WHEN street IS NOT NULL THEN 1 ELSE 0 END), 0) AS street_level,
    COALESCE(SUM(CASE WHEN geocode_status = 'ZERO_RESULTS' THEN 1 ELSE 0 END), 0) AS zero_results,
    MIN(geocoded_at) AS oldest_geocode,
    MAX(geocoded_at) AS newest_geocode
FROM address
GROUP BY geocoder
ORDER BY address_rows DESC, geocoder
