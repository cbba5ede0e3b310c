-- Q3 most-followed-user-per-country: the poster with the most followers in each country
-- (one row per country; of tied posters, the first by name).
WITH top AS (
    SELECT country, max(follower_count) AS follower_count
    FROM pin_geo
    GROUP BY country
)
SELECT pin_geo.country, min(pin_geo.poster_name) AS poster_name, top.follower_count
FROM pin_geo
JOIN top
  ON pin_geo.country IS NOT DISTINCT FROM top.country
 AND pin_geo.follower_count = top.follower_count
GROUP BY pin_geo.country, top.follower_count
ORDER BY pin_geo.country
