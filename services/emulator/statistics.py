"""The statistics of a set of posts that the generator matches, measured the same way on the
real sample and on a generated database; ``pinpipe emulator stats`` prints them side by side.

Each statistic is a number (a share, a mean, a quantile) with the tolerance the generator is
held to by its test.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.cleaning import PLACEHOLDERS
from shared.records import IMAGE_SRC_ERROR, NO_DESCRIPTION, NO_DESCRIPTION_STORY, USER_INFO_ERROR
from shared.topics import RecordType

Rows = dict[RecordType, list[dict[str, Any]]]
STORY_FORMAT = "multi-video(story page format)"


@dataclass(frozen=True)
class Statistic:
    name: str
    value: float
    tolerance: float  # the largest |generated - sample| the test accepts


def _share(rows: list[dict[str, Any]], test: Any) -> float:
    return sum(1 for row in rows if test(row)) / max(len(rows), 1)


def _follower_format(value: Any) -> str:
    text = str(value)
    if text == USER_INFO_ERROR:
        return "placeholder"
    if re.fullmatch(r"\d+", text):
        return "digits"
    if re.fullmatch(r"\d+k", text):
        return "k"
    if re.fullmatch(r"\d+M", text):
        return "M"
    return "other"


def _quantiles(
    values: Iterable[float], name: str, points: int, tolerance: float
) -> list[Statistic]:
    data = sorted(values)
    cuts = statistics.quantiles(data, n=points) if len(data) > 1 else []
    return [Statistic(f"{name} q{i + 1}/{points}", cut, tolerance) for i, cut in enumerate(cuts)]


def _epoch_days(text: Any) -> float:
    from datetime import UTC, datetime

    value = text if isinstance(text, datetime) else datetime.fromisoformat(str(text))
    return value.replace(tzinfo=UTC).timestamp() / 86400


def measure(rows: Rows) -> list[Statistic]:
    """Every statistic the generator matches, measured on ``rows``."""
    pins, geos, users = rows["pin"], rows["geo"], rows["user"]
    stats: list[Statistic] = []
    categories = Counter(p["category"] for p in pins)
    stats += [
        Statistic(f"share of category {c}", n / len(pins), 0.015)
        for c, n in sorted(categories.items())
    ]
    formats = Counter(_follower_format(p["follower_count"]) for p in pins)
    stats += [
        Statistic(f"share of follower_count format {f}", formats.get(f, 0) / len(pins), 0.02)
        for f in ("digits", "k", "M", "placeholder")
    ]
    stats.append(
        Statistic(
            f"share of rows with every placeholder ({USER_INFO_ERROR} set)",
            _share(pins, lambda p: all(p.get(c) in v for c, v in PLACEHOLDERS.items())),
            0.005,
        )
    )
    stats.append(
        Statistic(
            f"share of {NO_DESCRIPTION_STORY!r}",
            _share(pins, lambda p: p["description"] == NO_DESCRIPTION_STORY),
            0.015,
        )
    )
    stats.append(
        Statistic(
            f"share of plain {NO_DESCRIPTION!r}",
            _share(pins, lambda p: p["description"] == NO_DESCRIPTION),
            0.01,
        )
    )
    stats.append(
        Statistic(
            "share of image_src placeholder",
            _share(pins, lambda p: p["image_src"] == IMAGE_SRC_ERROR),
            0.01,
        )
    )
    stats.append(
        Statistic(
            "share of tag_list placeholder",
            _share(pins, lambda p: p["tag_list"] in PLACEHOLDERS["tag_list"]),
            0.01,
        )
    )
    stats.append(
        Statistic(
            "share of story-format rows",
            _share(pins, lambda p: p["is_image_or_video"] == STORY_FORMAT),
            0.015,
        )
    )
    stats.append(
        Statistic(
            "share of video rows", _share(pins, lambda p: p["is_image_or_video"] == "video"), 0.01
        )
    )
    stats.append(
        Statistic(
            "share of rows not downloaded", _share(pins, lambda p: p["downloaded"] == 0), 0.01
        )
    )
    for column in ("title", "description", "poster_name"):
        stats.append(
            Statistic(
                f"share of {column} with trailing whitespace",
                _share(pins, lambda p, c=column: isinstance(p[c], str) and p[c] != p[c].rstrip()),
                0.03,
            )
        )
    countries = Counter(g["country"] for g in geos)
    stats.append(
        Statistic(
            "share of countries starting with A",
            _share(geos, lambda g: str(g["country"]).startswith("A")),
            0.03,
        )
    )
    for country in ("Albania", "Algeria", "Afghanistan", "Aruba"):
        stats.append(
            Statistic(f"share of country {country}", countries.get(country, 0) / len(geos), 0.012)
        )
    stats.append(Statistic("mean latitude", statistics.fmean(g["latitude"] for g in geos), 4.0))
    stats.append(Statistic("mean longitude", statistics.fmean(g["longitude"] for g in geos), 8.0))
    stats += _quantiles((g["latitude"] for g in geos), "latitude", 4, 6.0)
    stats += _quantiles((g["longitude"] for g in geos), "longitude", 4, 12.0)
    stats += _quantiles(
        (_epoch_days(g["timestamp"]) for g in geos), "post timestamp (days since 1970)", 4, 60.0
    )
    ages = [u["age"] for u in users]
    stats.append(Statistic("mean age", statistics.fmean(ages), 1.0))
    stats.append(Statistic("median age", statistics.median(ages), 1.5))
    for low, high in ((20, 24), (25, 35), (36, 50), (51, 60)):
        stats.append(
            Statistic(
                f"share of ages {low}-{high}",
                _share(users, lambda u, a=low, b=high: a <= u["age"] <= b),
                0.03,
            )
        )
    stats += _quantiles(
        (_epoch_days(u["date_joined"]) for u in users), "date_joined (days since 1970)", 4, 30.0
    )
    return stats


def compare(sample: Rows, generated: Rows) -> list[tuple[Statistic, Statistic]]:
    """The sample's and the generated rows' statistics, paired by name."""
    theirs = {s.name: s for s in measure(generated)}
    return [
        (ours, theirs.get(ours.name, Statistic(ours.name, float("nan"), ours.tolerance)))
        for ours in measure(sample)
    ]


def render(pairs: list[tuple[Statistic, Statistic]]) -> str:
    lines = [f"{'statistic':<62} {'sample':>12} {'generated':>12} {'tolerance':>10}  ok"]
    for sample, generated in pairs:
        ok = abs(sample.value - generated.value) <= sample.tolerance
        values = f"{sample.value:>12.4f} {generated.value:>12.4f} {sample.tolerance:>10.4f}"
        lines.append(f"{sample.name:<62} {values}  {'yes' if ok else 'NO'}")
    return "\n".join(lines)
