-- posts-per-country-and-category: posts per country and category, all time (the aggregator
-- also answers it over the last N minutes: ?window=<N>m).
SELECT country, category, count(*) AS category_count
FROM pin_geo
GROUP BY country, category
ORDER BY country, category
