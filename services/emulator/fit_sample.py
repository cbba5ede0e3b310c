"""Fits the generator's parameters to the real sample and prints them as the module
``services/emulator/sample_fit.py`` (committed; rows of the sample are not):

    .venv/bin/python -m services.emulator.fit_sample ../shared/pinterest-data/raw_union \\
        > services/emulator/sample_fit.py
"""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from pprint import pformat

from services.emulator.seed import read_jsonl_dir
from services.emulator.statistics import STORY_FORMAT
from shared.records import (
    IMAGE_SRC_ERROR,
    NO_DESCRIPTION,
    NO_DESCRIPTION_STORY,
    NO_TAGS,
    NO_TITLE,
    USER_INFO_ERROR,
)

PERCENTILES = 40  # the quantile functions keep 41 points


def _quantile_function(values: list[float]) -> list[float]:
    data = sorted(values)
    inner = statistics.quantiles(data, n=PERCENTILES, method="inclusive")
    return [round(v, 4) for v in [data[0], *inner, data[-1]]]


def _epoch(value: datetime | str) -> float:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC).timestamp()  # DATETIME columns hold UTC


def fit(directory: Path) -> dict[str, object]:
    rows = read_jsonl_dir(directory)
    pins, geos, users = rows["pin"], rows["geo"], rows["user"]
    story = [p for p in pins if p["description"] == NO_DESCRIPTION_STORY]
    placeholders_of_story = Counter(
        (
            p["title"] == NO_TITLE,
            p["image_src"] == IMAGE_SRC_ERROR,
            p["tag_list"] == NO_TAGS,
        )
        for p in story
    )
    followers = [str(p["follower_count"]) for p in pins if p["follower_count"] != USER_INFO_ERROR]
    return {
        "ROWS_IN_SAMPLE": len(pins),
        "CATEGORY_COUNTS": dict(sorted(Counter(p["category"] for p in pins).items())),
        "FOLLOWER_FORMAT_COUNTS": dict(
            Counter(
                "M" if f.endswith("M") else "k" if f.endswith("k") else "digits" for f in followers
            )
        ),
        "FOLLOWER_DIGITS_QUANTILES": _quantile_function(
            [float(f) for f in followers if f.isdigit()]
        ),
        "FOLLOWER_K_QUANTILES": _quantile_function(
            [float(f[:-1]) for f in followers if f.endswith("k")]
        ),
        "FOLLOWER_M_QUANTILES": _quantile_function(
            [float(f[:-1]) for f in followers if f.endswith("M")]
        ),
        "STORY_SHARE": len(story) / len(pins),
        # story rows by (title placeholder, image_src placeholder, tag_list placeholder)
        "STORY_PLACEHOLDER_COUNTS": {str(k): v for k, v in placeholders_of_story.items()},
        "VIDEO_SHARE": sum(p["is_image_or_video"] == "video" for p in pins) / len(pins),
        "STORY_IS_STORY_FORMAT": sum(p["is_image_or_video"] == STORY_FORMAT for p in story)
        / max(len(story), 1),
        "PLAIN_NO_DESCRIPTION_SHARE": sum(p["description"] == NO_DESCRIPTION for p in pins)
        / len(pins),
        "TAG_PLACEHOLDER_OUTSIDE_STORY_SHARE": sum(
            p["tag_list"] == NO_TAGS and p not in story for p in pins
        )
        / len(pins),
        "TRAILING_WHITESPACE_SHARES": {
            c: sum(isinstance(p[c], str) and p[c] != p[c].rstrip() for p in pins) / len(pins)
            for c in ("title", "description", "poster_name")
        },
        "COUNTRY_COUNTS": dict(sorted(Counter(g["country"] for g in geos).items())),
        "AGE_COUNTS": dict(sorted(Counter(u["age"] for u in users).items())),
        "LATITUDE_QUANTILES": _quantile_function([g["latitude"] for g in geos]),
        "LONGITUDE_QUANTILES": _quantile_function([g["longitude"] for g in geos]),
        "POST_TIME_QUANTILES": _quantile_function([_epoch(g["timestamp"]) for g in geos]),
        "JOINED_TIME_QUANTILES": _quantile_function([_epoch(u["date_joined"]) for u in users]),
    }


def main() -> None:
    directory = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/pinterest-data/raw_union")
    )
    print('"""Parameters of the emulator\'s generator, fitted to the real sample by')
    print('``python -m services.emulator.fit_sample`` (generated: do not edit by hand)."""')
    print()
    print("# ruff: noqa: E501  (generated data)")
    for name, value in fit(directory).items():
        print(f"{name} = {pformat(value, width=100, sort_dicts=False)}")


if __name__ == "__main__":
    main()
