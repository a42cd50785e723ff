-- The headline numbers: rows, source files, street-level rows, ZERO_RESULTS, the extent
-- of the points and the first and last load. One row. No parameters.
SELECT
    COUNT(*) AS address_rows,
    COUNT(DISTINCT source_file) AS files,
    COALESCE(SUM(CASE WHEN street IS NOT NULL THEN 1 ELSE 0 END), 0) AS street_level,
    COALESCE(SUM(CASE WHEN geocode_status = 'ZERO_RESULTS' THEN 1 ELSE 0 END), 0) AS zero_results,
    MIN(latitude) AS min_latitude,
    MAX(latitude) AS max_latitude,
    MIN(longitude) AS min_longitude,
    MAX(longitude) AS max_longitude,
    MIN(created_at) AS first_loaded,
    MAX(created_at) AS last_loaded
FROM address
