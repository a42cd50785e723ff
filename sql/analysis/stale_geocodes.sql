-- Per geocoder, the rows geocoded more than N days ago (UTC) and the oldest of them, e.g.
-- Google results past the 30 days its terms allow caching them.
-- Parameters: 1. N, the age in days.
SELECT
    geocoder,
    COUNT(*) AS address_rows,
    MIN(geocoded_at) AS oldest_geocode
FROM address
WHERE geocoded_at < CAST(CURRENT_TIMESTAMP AS DATETIME) - INTERVAL (?) DAY
GROUP BY geocoder
ORDER BY address_rows DESC, geocoder
