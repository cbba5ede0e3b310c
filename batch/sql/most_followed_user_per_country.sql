-- Q3 most-followed-user-per-country: the poster with the most followers in each country
-- (one row per country; of tied posters, the first by name).
SELECT country, poster_name, follower_count
FROM (
    SELECT g.country, p.poster_name, p.follower_count,
           row_number() OVER (
               PARTITION BY g.country ORDER BY p.follower_count DESC, p.poster_name
           ) AS place
    FROM pins AS p JOIN geos AS g ON p.ind = g.ind
    WHERE p.follower_count IS NOT NULL
) AS ranked
WHERE place = 1
ORDER BY country
