-- posts-per-age-group-and-category: posts per age group and category, all time (the
-- aggregator also answers it over the last N minutes: ?window=<N>m).
SELECT age_group, category, count(*) AS category_count
FROM pin_user
WHERE age_group IS NOT NULL
GROUP BY age_group, category
ORDER BY age_group, category
