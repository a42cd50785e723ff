-- Per source file (the smallest file that carried a coordinate): its points, its
-- street-level points and when its rows were first and last loaded (UTC). No parameters.
SELECT
    source_file,
    COUNT(*) AS points,
    COALESCE(SUM(CASE WHEN street IS NOT NULL THEN 1 ELSE 0 END), 0) AS street_level,
    MIN(created_at) AS first_loaded,
    MAX(created_at) AS last_loaded
FROM address
GROUP BY source_file
ORDER BY first_loaded, source_file
