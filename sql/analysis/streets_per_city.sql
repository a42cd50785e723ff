-- Per city: its points, how many have a street, and its distinct streets and neighborhoods.
-- Rows without a city are grouped under NULL. No parameters.
SELECT
    city,
    COUNT(*) AS points,
    COALESCE(SUM(CASE WHEN street IS NOT NULL THEN 1 ELSE 0 END), 0) AS street_level,
    COUNT(DISTINCT street) AS streets,
    COUNT(DISTINCT neighborhood) AS neighborhoods
FROM address
GROUP BY city
ORDER BY points DESC, city
