"""The age groups (shared/age_groups.py): the SQL the batch queries run and the function the
aggregator calls put every age in the same group."""

from __future__ import annotations

import duckdb

from shared.age_groups import LABELS, age_group, age_group_sql


def test_the_sql_and_the_function_agree_on_every_age() -> None:
    ages = [None, *range(-1, 130)]
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT age, {age_group_sql('age')} FROM unnest(?::INTEGER[]) AS t(age)", [ages]
    ).fetchall()
    assert {age: group for age, group in rows} == {age: age_group(age) for age in ages}


def test_the_groups_of_the_questions() -> None:
    assert LABELS == ("18-24", "25-35", "36-50", "50+") == tuple(sorted(LABELS))
    assert [age_group(a) for a in (17, 18, 24, 25, 35, 36, 50, 51, 99)] == [
        None, "18-24", "18-24", "25-35", "25-35", "36-50", "36-50", "50+", "50+",
    ]  # fmt: skip
