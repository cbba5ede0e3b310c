"""The original project's published tables, reproduced: its cleaned tables imported into a lake
with ``pinpipe lake import``, the nine questions run by DuckDB with the legacy profile, each
answer equal to the reference CSV as a set of rows. And what the standard profile changes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from batch.lake_import import import_file
from batch.query import connect, run_questions
from batch.questions import QUESTIONS
from shared.lake import Lake, open_lake
from shared.profiles import Profile
from shared.topics import RECORD_TYPES

REFERENCE = "arekzajac_39677f2"
NINE = [q for q in QUESTIONS.values() if q.reference]


@pytest.fixture(scope="module")
def reference_lake(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = open_lake(f"file://{tmp_path_factory.mktemp('lake')}")
    for record_type in RECORD_TYPES:
        import_file(
            lake, "clean", record_type, shared_data / REFERENCE / f"{record_type}_clean.csv"
        )
    return lake


def _reference(shared_data: Path, file: str) -> tuple[list[str], list[tuple[str, ...]]]:
    with open(shared_data / REFERENCE / file, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], [tuple(row) for row in rows[1:]]


def _as_text(rows: list[tuple[Any, ...]]) -> list[tuple[str, ...]]:
    return [tuple("" if v is None else str(v) for v in row) for row in rows]


def test_there_are_nine_questions_with_reference_outputs() -> None:
    assert len(NINE) == 9


@pytest.mark.parametrize("question", NINE, ids=lambda q: q.name)
def test_legacy_semantics_reproduce_the_reference_table(
    question: Any, reference_lake: Lake, shared_data: Path
) -> None:
    columns, rows = run_questions(reference_lake, [question.name], "legacy")[question.name]
    expected_columns, expected = _reference(shared_data, question.reference)
    assert columns == expected_columns
    ours = _as_text(rows)
    assert len(ours) == len(expected)
    if question.name != "most-followed-user-per-country":
        assert sorted(ours) == sorted(expected)
        return
    # One arbitrary poster per tie in the reference: compare the count per country, and check
    # that our poster is one of the tied ones.
    assert sorted((c, n) for c, _, n in ours) == sorted((c, n) for c, _, n in expected)
    con = connect(reference_lake, "legacy")
    tied = con.execute(
        """
        SELECT g.country, p.poster_name
        FROM pins AS p JOIN geos AS g ON p.ind = g.ind
        WHERE p.follower_count = (
            SELECT max(p2.follower_count) FROM pins AS p2 JOIN geos AS g2 ON p2.ind = g2.ind
            WHERE g2.country = g.country
        )
        """
    ).fetchall()
    allowed = {(country, poster) for country, poster in tied}
    assert all((c, p) in allowed for c, p, _ in ours)
    assert all((c, p) in allowed for c, p, _ in expected), "the reference's pick is tied too"


def test_the_standard_profile_counts_each_post_once(reference_lake: Lake) -> None:
    names = ["users-joined-per-year-2015-2020", "most-popular-category-per-country"]
    legacy = run_questions(reference_lake, names, "legacy")
    standard = run_questions(reference_lake, names, "standard")
    con = connect(reference_lake, "standard")
    (users,) = con.execute("SELECT count(DISTINCT ind) FROM clean_user").fetchone() or (0,)
    (rows,) = con.execute("SELECT count(*) FROM clean_user").fetchone() or (0,)
    assert users < rows, "the reference tables repeat inds: the two profiles must differ"
    joined_standard = sum(r[1] for r in standard["users-joined-per-year-2015-2020"][1])
    joined_legacy = sum(r[1] for r in legacy["users-joined-per-year-2015-2020"][1])
    assert (joined_standard, joined_legacy) == (users, rows)
    # duplicates multiply joined rows in the legacy counts, never in the standard ones
    top_standard = {r[0]: r[2] for r in standard["most-popular-category-per-country"][1]}
    top_legacy = {r[0]: r[2] for r in legacy["most-popular-category-per-country"][1]}
    assert all(top_standard[c] <= top_legacy[c] for c in top_standard)
    assert any(top_standard[c] < top_legacy[c] for c in top_standard)


@pytest.mark.parametrize("profile", ["legacy", "standard"])
def test_the_working_set_tables_answer_as_the_views_do(
    reference_lake: Lake, profile: Profile
) -> None:
    names = list(QUESTIONS)
    together = run_questions(reference_lake, names, profile)
    for name in names:
        alone = run_questions(reference_lake, [name], profile)[name]
        assert together[name] == alone, name
        assert alone[1], f"{name}: no rows"
