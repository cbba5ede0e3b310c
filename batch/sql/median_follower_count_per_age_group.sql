-- Q6 median-follower-count-per-age-group: the lower median follower count of each age group.
SELECT u.age_group,
       CAST(
           percentile_disc(0.5) WITHIN GROUP (ORDER BY p.follower_count) AS BIGINT
       ) AS median_follower_count
FROM pins AS p JOIN users AS u ON p.ind = u.ind
WHERE u.age_group IS NOT NULL
GROUP BY u.age_group
ORDER BY u.age_group
