-- The neighborhoods with the most points, with their city and distinct streets.
-- Parameters: 1. how many neighborhoods.
-- (Counting per street first, then per neighborhood, is much faster on MySQL than a
-- COUNT(DISTINCT street) over every row.)
SELECT
    neighborhood,
    city,
    SUM(points) AS points,
    COUNT(street) AS streets
FROM (
    SELECT neighborhood, city, street, COUNT(*) AS points
    FROM address
    WHERE neighborhood IS NOT NULL
    GROUP BY neighborhood, city, street
) AS per_street
GROUP BY neighborhood, city
ORDER BY points DESC, neighborhood, city
LIMIT ?
