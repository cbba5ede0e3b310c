"""The question catalogue: every question pinpipe answers, once. Its name, description, the
columns of its answer and whether it takes a rolling window, in the order of the original
project (q1 … q9), then posts per country, and per country or age group and category.

The batch queries (``batch/questions.py``: one SQL file per name) and the aggregator's live
answers (``services/aggregator/answers.py``) read it; neither declares a question of its own.
It must not know how a question is answered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    name: str
    description: str
    columns: tuple[str, ...]  # the answer's columns, in order
    takes_window: bool = False  # the aggregator answers it over rolling windows too (?window=)


CATALOGUE: tuple[Question, ...] = (
    Question(
        "most-popular-category-per-country",
        "Q1: the most popular category in each country (ties kept)",
        ("country", "category", "category_count"),
        takes_window=True,
    ),
    Question(
        "posts-per-category-2018-2022",
        "Q2: posts per category and year, 2018-2022",
        ("post_year", "category", "category_count"),
    ),
    Question(
        "most-followed-user-per-country",
        "Q3: the most followed poster in each country",
        ("country", "poster_name", "follower_count"),
    ),
    Question(
        "country-with-most-followed-user",
        "Q4: the country with the most followed poster (ties kept)",
        ("country", "follower_count"),
    ),
    Question(
        "most-popular-category-per-age-group",
        "Q5: the most popular category in each age group (ties kept)",
        ("age_group", "category", "category_count"),
        takes_window=True,
    ),
    Question(
        "median-follower-count-per-age-group",
        "Q6: the lower median follower count of each age group",
        ("age_group", "median_follower_count"),
    ),
    Question(
        "users-joined-per-year-2015-2020",
        "Q7: users joined per year, 2015-2020",
        ("post_year", "number_users_joined"),
    ),
    Question(
        "median-follower-count-by-join-year",
        "Q8: the lower median follower count by joining year, 2015-2020",
        ("post_year", "median_follower_count"),
    ),
    Question(
        "median-follower-count-by-age-group-and-join-year",
        "Q9: the lower median follower count by age group and joining year, 2015-2020",
        ("age_group", "post_year", "median_follower_count"),
    ),
    Question("posts-per-country", "Posts per country, all time", ("country", "post_count")),
    Question(
        "posts-per-country-and-category",
        "Posts per country and category",
        ("country", "category", "category_count"),
        takes_window=True,
    ),
    Question(
        "posts-per-age-group-and-category",
        "Posts per age group and category",
        ("age_group", "category", "category_count"),
        takes_window=True,
    ),
)
QUESTIONS: dict[str, Question] = {q.name: q for q in CATALOGUE}
# The questions ?window=<N>m applies to (the aggregator counts posts by when they last changed).
WINDOWED: frozenset[str] = frozenset(q.name for q in CATALOGUE if q.takes_window)
