-- Q1 most-popular-category-per-country: the category with the most posts in each country
-- (ties kept: every category with the top count).
SELECT country, category, category_count
FROM (
    SELECT country, category, count(*) AS category_count,
           rank() OVER (PARTITION BY country ORDER BY count(*) DESC) AS place
    FROM pin_geo
    GROUP BY country, category
) AS counted
WHERE place = 1
ORDER BY country, category
