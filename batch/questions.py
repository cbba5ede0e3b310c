"""The analysis questions as the batch answers them: the catalogue of ``shared/questions.py``
(names, descriptions, columns), each with its SQL file in ``batch/sql/`` and the reference
project's output where it has one; and the staging SQL the questions read."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from batch import posts_table
from shared import questions as catalogue
from shared.age_groups import age_group_sql
from shared.profiles import PROFILES, Profile


@dataclass(frozen=True)
class Question:
    """A question of the catalogue (``shared/questions.py``) as the batch answers it: one SQL
    file of ``batch/sql/`` named for it."""

    question: catalogue.Question
    reference: str | None = None  # the reference project's output, when it has one

    @property
    def name(self) -> str:
        return self.question.name

    @property
    def description(self) -> str:
        return self.question.description

    @property
    def sql_file(self) -> str:
        return self.name.replace("-", "_") + ".sql"

    def sql(self) -> str:
        return read_sql(self.sql_file)


# The reference project's published output of each of the nine (its CSV file name).
REFERENCES: dict[str, str] = {
    "most-popular-category-per-country": "q1_most_popular_category_per_country.csv",
    "posts-per-category-2018-2022": "q2_posts_per_category_2018_2022.csv",
    "most-followed-user-per-country": "q3_most_followed_user_per_country.csv",
    "country-with-most-followed-user": "q4_country_with_most_followed_user.csv",
    "most-popular-category-per-age-group": "q5_most_popular_category_per_age_group.csv",
    "median-follower-count-per-age-group": "q6_median_follower_count_per_age_group.csv",
    "users-joined-per-year-2015-2020": "q7_users_joined_per_year_2015_2020.csv",
    "median-follower-count-by-join-year": "q8_median_follower_count_by_join_year.csv",
    "median-follower-count-by-age-group-and-join-year": (
        "q9_median_follower_count_by_age_group_and_join_year.csv"
    ),
}
QUESTIONS: dict[str, Question] = {
    q.name: Question(q, REFERENCES.get(q.name)) for q in catalogue.CATALOGUE
}


WorkingSet = tuple[tuple[str, tuple[str, ...] | None], ...]
# What an engine running several questions builds once, in this order: each staging relation
# with the columns the questions read (None: all of them), then the two joins of staging_common.
WORKING_SET: WorkingSet = (
    ("pins", ("ind", "category", "follower_count", "poster_name")),
    ("geos", ("ind", "country", "timestamp")),
    ("users", ("ind", "age_group", "date_joined")),
    ("pin_geo", None),
    ("pin_user", None),
)
# Over the posts table the parts are joined already: the current posts once, with the columns
# the questions read (batch/posts_table.QUESTION_COLUMNS); the rest are filters of it.
POSTS_WORKING_SET: WorkingSet = (("current_posts", posts_table.QUESTION_COLUMNS),)


def working_set(over_posts: bool) -> WorkingSet:
    return POSTS_WORKING_SET if over_posts else WORKING_SET


def read_sql(name: str) -> str:
    return resources.files("batch").joinpath("sql", name).read_text(encoding="utf-8")


def staging_sql(profile: Profile, over_posts: bool = False, any_newer: bool = True) -> str:
    """The staging views of ``profile`` (shared/profiles.py), then ``users`` (with its age
    group) and what both share. With ``over_posts``, the standard profile's views read the
    ``posts`` table and the clean records added since it was refreshed (batch/posts_table.py;
    ``any_newer``: whether there are any), not every clean record."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: {', '.join(PROFILES)}")
    if over_posts and profile != "standard":
        raise ValueError("only the standard profile reads the posts table")
    if over_posts:
        return posts_table.staging_sql(any_newer) + posts_table.joins_sql()
    users = (
        f"CREATE OR REPLACE VIEW users AS SELECT *, {age_group_sql('age')} AS age_group "
        "FROM users_staged;\n"
    )
    return read_sql(f"staging_{profile}.sql") + "\n" + users + read_sql("staging_common.sql")
