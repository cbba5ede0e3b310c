-- Q9 median-follower-count-by-age-group-and-join-year: the lower median follower count per
-- age group and joining year, 2015 to 2020 (column post_year, as in the reference).
SELECT age_group, year(date_joined) AS post_year,
       CAST(
           percentile_disc(0.5) WITHIN GROUP (ORDER BY follower_count) AS BIGINT
       ) AS median_follower_count
FROM pin_user
WHERE age_group IS NOT NULL AND year(date_joined) BETWEEN 2015 AND 2020
GROUP BY age_group, post_year
ORDER BY age_group, post_year
