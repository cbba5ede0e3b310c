-- What both profiles share: users with their age group (18-24, 25-35, 36-50, 50+).
CREATE OR REPLACE VIEW users AS
SELECT *,
       CASE WHEN age BETWEEN 18 AND 24 THEN '18-24'
            WHEN age BETWEEN 25 AND 35 THEN '25-35'
            WHEN age BETWEEN 36 AND 50 THEN '36-50'
            WHEN age > 50 THEN '50+' END AS age_group
FROM users_staged;

-- The posts the questions count: each pin joined with its geo, and with its user (only the
-- columns the questions read). Engines running several questions build these once
-- (batch/questions.WORKING_SET).
CREATE OR REPLACE VIEW pin_geo AS
SELECT p.ind, p.category, p.follower_count, p.poster_name, g.country, g.timestamp
FROM pins AS p JOIN geos AS g ON p.ind = g.ind;

CREATE OR REPLACE VIEW pin_user AS
SELECT p.ind, p.category, p.follower_count, u.age_group, u.date_joined
FROM pins AS p JOIN users AS u ON p.ind = u.ind;
