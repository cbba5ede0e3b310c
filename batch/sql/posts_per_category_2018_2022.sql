-- Q2 posts-per-category-2018-2022: posts per category and year of posting, 2018 to 2022.
SELECT year(g.timestamp) AS post_year, p.category, count(*) AS category_count
FROM pins AS p JOIN geos AS g ON p.ind = g.ind
WHERE year(g.timestamp) BETWEEN 2018 AND 2022
GROUP BY post_year, p.category
ORDER BY post_year, p.category
