"""The age groups the questions count by (Q5, Q6, Q9 and posts per age group), declared once:
the batch queries' SQL (:func:`age_group_sql`) and the aggregator's function
(:func:`age_group`) are derived from it. An age in none of them has no group."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgeGroup:
    label: str
    youngest: int
    oldest: int | None  # None: no upper bound


AGE_GROUPS: tuple[AgeGroup, ...] = (
    AgeGroup("18-24", 18, 24),
    AgeGroup("25-35", 25, 35),
    AgeGroup("36-50", 36, 50),
    AgeGroup("50+", 51, None),
)
LABELS: tuple[str, ...] = tuple(group.label for group in AGE_GROUPS)  # in sorted order


def age_group(age: int | None) -> str | None:
    """The label of the group ``age`` falls in, or None."""
    if age is None:
        return None
    for group in AGE_GROUPS:
        if group.youngest <= age and (group.oldest is None or age <= group.oldest):
            return group.label
    return None


def age_group_sql(column: str) -> str:
    """:func:`age_group` as a SQL expression over ``column`` (DuckDB and Spark SQL)."""
    branches = [
        f"WHEN {column} >= {group.youngest} THEN '{group.label}'"
        if group.oldest is None
        else f"WHEN {column} BETWEEN {group.youngest} AND {group.oldest} THEN '{group.label}'"
        for group in AGE_GROUPS
    ]
    return f"CASE {' '.join(branches)} END"
