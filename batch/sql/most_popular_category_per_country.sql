-- Q1 most-popular-category-per-country: the category with the most posts in each country
-- (ties kept: every category with the top count).
SELECT country, category, category_count
FROM (
    SELECT g.country, p.category, count(*) AS category_count,
           rank() OVER (PARTITION BY g.country ORDER BY count(*) DESC) AS place
    FROM pins AS p JOIN geos AS g ON p.ind = g.ind
    GROUP BY g.country, p.category
) AS counted
WHERE place = 1
ORDER BY country, category
