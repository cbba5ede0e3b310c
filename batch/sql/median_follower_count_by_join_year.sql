-- Q8 median-follower-count-by-join-year: the lower median follower count of the users who
-- joined in each year, 2015 to 2020 (column post_year, as in the reference).
SELECT year(date_joined) AS post_year,
       CAST(
           percentile_disc(0.5) WITHIN GROUP (ORDER BY follower_count) AS BIGINT
       ) AS median_follower_count
FROM pin_user
WHERE year(date_joined) BETWEEN 2015 AND 2020
GROUP BY post_year
ORDER BY post_year
