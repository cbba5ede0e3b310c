-- posts-per-country: posts per country, all time (the walking skeleton's question).
SELECT country, count(*) AS post_count
FROM geos
GROUP BY country
ORDER BY post_count DESC, country
