-- Q4 country-with-most-followed-user: the country (or countries, when tied) whose most
-- followed poster has the most followers of all.
WITH per_country AS (
    SELECT country, max(follower_count) AS follower_count
    FROM pin_geo
    GROUP BY country
)
SELECT country, follower_count
FROM per_country
WHERE follower_count = (SELECT max(follower_count) FROM per_country)
ORDER BY country
