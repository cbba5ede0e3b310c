"""The analysis questions: name → SQL file and description, in the order of the original
project (q1 … q9), then posts per country, and per country or age group and category (which
the aggregator also answers over rolling windows). The aggregator serves the same names."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

Semantics = Literal["default", "legacy"]
SEMANTICS: tuple[Semantics, ...] = ("default", "legacy")


@dataclass(frozen=True)
class Question:
    name: str
    description: str
    reference: str | None = None  # the reference project's output, when it has one

    @property
    def sql_file(self) -> str:
        return self.name.replace("-", "_") + ".sql"

    def sql(self) -> str:
        return read_sql(self.sql_file)


QUESTIONS: dict[str, Question] = {
    q.name: q
    for q in (
        Question(
            "most-popular-category-per-country",
            "Q1: the most popular category in each country (ties kept)",
            "q1_most_popular_category_per_country.csv",
        ),
        Question(
            "posts-per-category-2018-2022",
            "Q2: posts per category and year, 2018-2022",
            "q2_posts_per_category_2018_2022.csv",
        ),
        Question(
            "most-followed-user-per-country",
            "Q3: the most followed poster in each country",
            "q3_most_followed_user_per_country.csv",
        ),
        Question(
            "country-with-most-followed-user",
            "Q4: the country with the most followed poster (ties kept)",
            "q4_country_with_most_followed_user.csv",
        ),
        Question(
            "most-popular-category-per-age-group",
            "Q5: the most popular category in each age group (ties kept)",
            "q5_most_popular_category_per_age_group.csv",
        ),
        Question(
            "median-follower-count-per-age-group",
            "Q6: the lower median follower count of each age group",
            "q6_median_follower_count_per_age_group.csv",
        ),
        Question(
            "users-joined-per-year-2015-2020",
            "Q7: users joined per year, 2015-2020",
            "q7_users_joined_per_year_2015_2020.csv",
        ),
        Question(
            "median-follower-count-by-join-year",
            "Q8: the lower median follower count by joining year, 2015-2020",
            "q8_median_follower_count_by_join_year.csv",
        ),
        Question(
            "median-follower-count-by-age-group-and-join-year",
            "Q9: the lower median follower count by age group and joining year, 2015-2020",
            "q9_median_follower_count_by_age_group_and_join_year.csv",
        ),
        Question("posts-per-country", "Posts per country, all time"),
        Question("posts-per-country-and-category", "Posts per country and category"),
        Question("posts-per-age-group-and-category", "Posts per age group and category"),
    )
}


# What an engine running several questions builds once, in this order: each staging relation
# with the columns the questions read (None: all of them), then the two joins of staging_common.
WORKING_SET: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("pins", ("ind", "category", "follower_count", "poster_name")),
    ("geos", ("ind", "country", "timestamp")),
    ("users", ("ind", "age_group", "date_joined")),
    ("pin_geo", None),
    ("pin_user", None),
)


def read_sql(name: str) -> str:
    return resources.files("batch").joinpath("sql", name).read_text(encoding="utf-8")


def staging_sql(semantics: Semantics) -> str:
    """The staging views of ``semantics``, then what both share."""
    if semantics not in SEMANTICS:
        raise ValueError(f"unknown semantics {semantics!r}: {', '.join(SEMANTICS)}")
    return read_sql(f"staging_{semantics}.sql") + "\n" + read_sql("staging_common.sql")
