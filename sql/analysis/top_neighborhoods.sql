-- The neighborhoods with the most points, with their city and distinct streets.
-- Parameters: 1. how many neighborhoods.
SELECT
    neighborhood,
    city,
    COUNT(*) AS points,
    COUNT(DISTINCT street) AS streets
FROM address
WHERE neighborhood IS NOT NULL
GROUP BY neighborhood, city
ORDER BY points DESC, neighborhood, city
LIMIT ?
