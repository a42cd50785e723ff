-- The streets with the most points, with their city and neighborhoods.
-- Parameters: 1. how many streets.
SELECT
    street,
    city,
    COUNT(*) AS points,
    COUNT(DISTINCT neighborhood) AS neighborhoods
FROM address
WHERE street IS NOT NULL
GROUP BY street, city
ORDER BY points DESC, street, city
LIMIT ?
