-- Q5 most-popular-category-per-age-group: the category with the most posts in each age group
-- (18-24, 25-35, 36-50, 50+; ties kept).
SELECT age_group, category, category_count
FROM (
    SELECT age_group, category, count(*) AS category_count,
           rank() OVER (PARTITION BY age_group ORDER BY count(*) DESC) AS place
    FROM pin_user
    WHERE age_group IS NOT NULL
    GROUP BY age_group, category
) AS counted
WHERE place = 1
ORDER BY age_group, category
