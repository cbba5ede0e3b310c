-- Q9 median-follower-count-by-age-group-and-join-year: the lower median follower count per
-- age group and joining year, 2015 to 2020 (column post_year, as in the reference).
SELECT u.age_group, year(u.date_joined) AS post_year,
       CAST(
           percentile_disc(0.5) WITHIN GROUP (ORDER BY p.follower_count) AS BIGINT
       ) AS median_follower_count
FROM pins AS p JOIN users AS u ON p.ind = u.ind
WHERE u.age_group IS NOT NULL AND year(u.date_joined) BETWEEN 2015 AND 2020
GROUP BY u.age_group, post_year
ORDER BY u.age_group, post_year
