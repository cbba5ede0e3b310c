-- Staging views, default semantics: the latest record per (type, ind).
-- "Latest" is the highest offset: clean topics are keyed by ind, so every record of one ind
-- sits in one partition, in arrival order.
CREATE OR REPLACE VIEW geo AS
SELECT * EXCLUDE (rn)
FROM (
    SELECT *, row_number() OVER (PARTITION BY ind ORDER BY _offset DESC) AS rn
    FROM clean_geo
)
WHERE rn = 1;
