-- Per geocoder, the rows geocoded before a cutoff and the oldest of them, e.g. Google results
-- past the 30 days its terms allow caching them.
-- Parameters: 1. the cutoff, a UTC time as text ('2024-05-17 13:45:07'): for "more than N
-- days ago", N days before now (the report passes it so). A plain comparison runs on every
-- database (date arithmetic with a parameter is written differently on each).
SELECT
    geocoder,
    COUNT(*) AS address_rows,
    MIN(geocoded_at) AS oldest_geocode
FROM address
WHERE geocoded_at < ?
GROUP BY geocoder
ORDER BY address_rows DESC, geocoder
