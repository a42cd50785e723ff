-- Coordinates stored more than once. The unique key forbids it: this must return no row.
-- No parameters.
SELECT
    latitude,
    longitude,
    COUNT(*) AS copies
FROM address
GROUP BY latitude, longitude
HAVING COUNT(*) > 1
ORDER BY copies DESC, latitude, longitude
