-- Staging, legacy profile (the reference project's): every record as it is, no
-- deduplication, so a repeated ind multiplies the rows a join makes. staging_common.sql then
-- builds the views the questions read.
CREATE OR REPLACE VIEW pins AS SELECT * FROM clean_pin;

CREATE OR REPLACE VIEW geos AS SELECT * FROM clean_geo;

CREATE OR REPLACE VIEW users_staged AS SELECT * FROM clean_user;
