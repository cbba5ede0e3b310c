"""The analysis questions: name → SQL file and description. The aggregator serves the same names."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Question:
    name: str
    description: str
    sql_file: str

    def sql(self) -> str:
        return read_sql(self.sql_file)


QUESTIONS: dict[str, Question] = {
    q.name: q
    for q in (
        Question(
            "posts-per-country",
            "Posts per country, all time (latest geo record per post)",
            "posts_per_country.sql",
        ),
    )
}


def read_sql(name: str) -> str:
    return resources.files("batch").joinpath("sql", name).read_text(encoding="utf-8")
