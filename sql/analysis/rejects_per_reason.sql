-- Rejects (input that could not be read or geocoded) per reason and detail (the likely cause
-- of an unrecognized line, else NULL): how many, in how many files, first and last recorded
-- (UTC). No parameters.
SELECT
    reason,
    detail,
    COUNT(*) AS rejects,
    COUNT(DISTINCT source_file) AS files,
    MIN(created_at) AS first_seen,
    MAX(created_at) AS last_seen
FROM reject
GROUP BY reason, detail
ORDER BY rejects DESC, reason, COALESCE(detail, '')
