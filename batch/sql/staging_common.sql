-- What both semantics share: users with their age group (18-24, 25-35, 36-50, 50+).
CREATE OR REPLACE VIEW users AS
SELECT *,
       CASE WHEN age BETWEEN 18 AND 24 THEN '18-24'
            WHEN age BETWEEN 25 AND 35 THEN '25-35'
            WHEN age BETWEEN 36 AND 50 THEN '36-50'
            WHEN age > 50 THEN '50+' END AS age_group
FROM users_staged;
