-- The streets with the most points, with their city and neighborhoods.
-- Parameters: 1. how many streets.
-- (Counting per neighborhood first, then per street, is much faster on MySQL than a
-- COUNT(DISTINCT neighborhood) over every row.)
SELECT
    street,
    city,
    SUM(points) AS points,
    COUNT(neighborhood) AS neighborhoods
FROM (
    SELECT street, city, neighborhood, COUNT(*) AS points
    FROM address
    WHERE street IS NOT NULL
    GROUP BY street, city, neighborhood
) AS per_neighborhood
GROUP BY street, city
ORDER BY points DESC, street, city
LIMIT ?
