-- Per city: its points, how many have a street, and its distinct streets and neighborhoods.
-- Rows without a city are grouped under NULL. No parameters.
-- (Counting per street and neighborhood first is much faster on MySQL than COUNT(DISTINCT)
-- over every row.)
SELECT
    city,
    SUM(points) AS points,
    SUM(CASE WHEN street IS NOT NULL THEN points ELSE 0 END) AS street_level,
    COUNT(DISTINCT street) AS streets,
    COUNT(DISTINCT neighborhood) AS neighborhoods
FROM (
    SELECT city, street, neighborhood, COUNT(*) AS points
    FROM address
    GROUP BY city, street, neighborhood
) AS per_place
GROUP BY city
ORDER BY points DESC, city
