-- Points per cell of a latitude/longitude grid, for a density map.
-- Parameters: 1. the grid's south edge, 2. its cell height (degrees), 3. its west edge,
-- 4. its cell width (degrees). Cells are numbered from 0 northwards and eastwards.
-- The arithmetic is in DOUBLE (`* 1.0E0`) on both databases, so both put a point on a
-- cell edge in the same cell.
SELECT
    FLOOR((latitude * 1.0E0 - ?) / ?) AS cell_row,
    FLOOR((longitude * 1.0E0 - ?) / ?) AS cell_column,
    COUNT(*) AS points
FROM address
GROUP BY 1, 2
ORDER BY 1, 2
