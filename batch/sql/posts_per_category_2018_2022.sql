-- Q2 posts-per-category-2018-2022: posts per category and year of posting, 2018 to 2022.
SELECT year(timestamp) AS post_year, category, count(*) AS category_count
FROM pin_geo
WHERE year(timestamp) BETWEEN 2018 AND 2022
GROUP BY post_year, category
ORDER BY post_year, category
