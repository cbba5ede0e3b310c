-- Staging, default semantics: the latest record per (type, ind). "Latest" is the highest
-- offset: clean topics are keyed by ind, so every record of one ind sits in one partition, in
-- arrival order. staging_common.sql then builds the views the questions read.
CREATE OR REPLACE VIEW pins AS
SELECT * EXCLUDE (rn)
FROM (SELECT *, row_number() OVER (PARTITION BY ind ORDER BY _offset DESC) AS rn FROM clean_pin)
WHERE rn = 1;

CREATE OR REPLACE VIEW geos AS
SELECT * EXCLUDE (rn)
FROM (SELECT *, row_number() OVER (PARTITION BY ind ORDER BY _offset DESC) AS rn FROM clean_geo)
WHERE rn = 1;

CREATE OR REPLACE VIEW users_staged AS
SELECT * EXCLUDE (rn)
FROM (SELECT *, row_number() OVER (PARTITION BY ind ORDER BY _offset DESC) AS rn FROM clean_user)
WHERE rn = 1;
