-- Staging, standard profile: the latest record per (type, ind). "Latest" is the highest
-- offset: clean topics are keyed by ind, so every record of one ind sits in one partition, in
-- arrival order. staging_common.sql then builds the views the questions read.
CREATE OR REPLACE VIEW pins AS
SELECT record.*
FROM clean_pin AS record
JOIN (SELECT ind, max(_offset) AS _offset FROM clean_pin GROUP BY ind) AS latest
  ON record.ind = latest.ind AND record._offset = latest._offset;

CREATE OR REPLACE VIEW geos AS
SELECT record.*
FROM clean_geo AS record
JOIN (SELECT ind, max(_offset) AS _offset FROM clean_geo GROUP BY ind) AS latest
  ON record.ind = latest.ind AND record._offset = latest._offset;

CREATE OR REPLACE VIEW users_staged AS
SELECT record.*
FROM clean_user AS record
JOIN (SELECT ind, max(_offset) AS _offset FROM clean_user GROUP BY ind) AS latest
  ON record.ind = latest.ind AND record._offset = latest._offset;
