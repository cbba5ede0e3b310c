-- Q7 users-joined-per-year-2015-2020: users who joined in each year, 2015 to 2020. The column
-- is called post_year, as in the reference project's output.
SELECT year(date_joined) AS post_year, count(*) AS number_users_joined
FROM users
WHERE year(date_joined) BETWEEN 2015 AND 2020
GROUP BY post_year
ORDER BY post_year
