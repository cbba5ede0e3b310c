-- Q6 median-follower-count-per-age-group: the lower median follower count of each age group.
SELECT age_group,
       CAST(
           percentile_disc(0.5) WITHIN GROUP (ORDER BY follower_count) AS BIGINT
       ) AS median_follower_count
FROM pin_user
WHERE age_group IS NOT NULL
GROUP BY age_group
ORDER BY age_group
