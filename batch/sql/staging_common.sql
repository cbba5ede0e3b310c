-- What both profiles share (after `users`: users_staged with its age group, which
-- batch/questions.py writes from shared/age_groups.py): the posts the questions count, each pin joined with its geo, and with its user (only the
-- columns the questions read). Engines running several questions build these once
-- (batch/questions.WORKING_SET).
CREATE OR REPLACE VIEW pin_geo AS
SELECT p.ind, p.category, p.follower_count, p.poster_name, g.country, g.timestamp
FROM pins AS p JOIN geos AS g ON p.ind = g.ind;

CREATE OR REPLACE VIEW pin_user AS
SELECT p.ind, p.category, p.follower_count, u.age_group, u.date_joined
FROM pins AS p JOIN users AS u ON p.ind = u.ind;
