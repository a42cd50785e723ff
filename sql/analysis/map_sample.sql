-- Every Nth point (by id) with its neighborhood and city: a sample for a map.
-- Parameters: 1. N (1 takes every point).
SELECT
    latitude,
    longitude,
    neighborhood,
    city
FROM address
WHERE MOD(id, ?) = 0
ORDER BY id
