"""Fills a source database: generated rows (deterministic for a seed) or the real sample's
JSON-lines files loaded as they are.

The generator draws every column that the analysis or the cleaning rules care about from
distributions fitted to the real sample (``sample_fit.py``, made by ``fit_sample.py``); which
statistics it matches, and how closely, is ``statistics.py`` (``pinpipe emulator stats``).
"""

from __future__ import annotations

import ast
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from services.emulator import sample_fit as fit
from services.emulator.source_db import TABLES, metadata
from services.emulator.statistics import STORY_FORMAT
from shared.records import (
    IMAGE_SRC_ERROR,
    NO_DESCRIPTION,
    NO_DESCRIPTION_STORY,
    NO_TAGS,
    NO_TITLE,
    USER_INFO_ERROR,
)
from shared.topics import RecordType

FIRST_NAMES = ("Adam", "Holly", "Abigail", "Christopher", "Maria", "James", "Linda", "Omar")
LAST_NAMES = ("Acosta", "Baker", "Ali", "Montgomery", "Garcia", "Smith", "Nguyen", "Khan")
SEED_FILES: dict[RecordType, str] = {
    "pin": "pinterest_data.jsonl",
    "geo": "geolocation_data.jsonl",
    "user": "user_data.jsonl",
}


class _Draw:
    """Draws from the fitted distributions of ``sample_fit``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def weighted(self, counts: dict[Any, int]) -> Any:
        return self.rng.choices(list(counts), weights=list(counts.values()))[0]

    def quantile(self, points: list[float]) -> float:
        """Inverse transform sampling through a piecewise-linear quantile function."""
        position = self.rng.random() * (len(points) - 1)
        low = int(position)
        high = min(low + 1, len(points) - 1)
        return points[low] + (points[high] - points[low]) * (position - low)

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability


def _follower_count(draw: _Draw) -> str:
    form = draw.weighted(fit.FOLLOWER_FORMAT_COUNTS)
    if form == "M":
        return f"{max(1, round(draw.quantile(fit.FOLLOWER_M_QUANTILES)))}M"
    if form == "k":
        return f"{max(1, round(draw.quantile(fit.FOLLOWER_K_QUANTILES)))}k"
    return str(round(draw.quantile(fit.FOLLOWER_DIGITS_QUANTILES)))


def _pin(draw: _Draw, ind: int) -> dict[str, Any]:
    rng = draw.rng
    category = draw.weighted(fit.CATEGORY_COUNTS)
    topic = category.replace("-", " ").title()
    poster = f"{rng.choice(('The', 'My', 'Simply', 'Daily'))} {topic} {rng.randint(1, 400)}"
    pin = {
        "index": ind,
        "unique_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "title": f"{category.replace('-', ' ').title()} idea #{rng.randint(1, 99_999)}",
        "description": f"Ideas and inspiration about {category.replace('-', ' ')}",
        "poster_name": poster,
        "follower_count": _follower_count(draw),
        "tag_list": ",".join(
            f"{category} {word}"
            for word in rng.sample(("tips", "ideas", "diy", "inspo", "love", "style"), 3)
        ),
        "is_image_or_video": "video"
        if draw.chance(fit.VIDEO_SHARE / (1 - fit.STORY_SHARE))
        else "image",
        "image_src": f"https://i.pinimg.com/originals/{rng.getrandbits(64):016x}.jpg",
        "downloaded": 1,
        "save_location": f"Local save in /data/{category}",
        "category": category,
    }
    if draw.chance(fit.STORY_SHARE):
        # Story-format rows carry the Story description; some also lose their title, image
        # and tags, and the worst lose the poster too: the "User Info Error" set.
        title, image, tags = ast.literal_eval(draw.weighted(fit.STORY_PLACEHOLDER_COUNTS))
        pin.update(description=NO_DESCRIPTION_STORY, is_image_or_video=STORY_FORMAT)
        if title:
            pin.update(
                title=NO_TITLE,
                poster_name=USER_INFO_ERROR,
                follower_count=USER_INFO_ERROR,
            )
        if image:
            pin.update(image_src=IMAGE_SRC_ERROR, downloaded=0)
        if tags:
            pin["tag_list"] = NO_TAGS
        return pin
    if draw.chance(fit.PLAIN_NO_DESCRIPTION_SHARE / (1 - fit.STORY_SHARE)):
        pin["description"] = NO_DESCRIPTION
    if draw.chance(fit.TAG_PLACEHOLDER_OUTSIDE_STORY_SHARE / (1 - fit.STORY_SHARE)):
        pin["tag_list"] = NO_TAGS
    for column, share in fit.TRAILING_WHITESPACE_SHARES.items():
        # the sample's shares are over all rows; story rows (returned above) never have it
        if pin[column] != NO_DESCRIPTION and draw.chance(share / (1 - fit.STORY_SHARE)):
            pin[column] = pin[column] + rng.choice((" ", "  ", "\n"))
    return pin


def _utc(epoch_seconds: float) -> datetime:
    """A naive UTC datetime (the DATETIME columns hold UTC), to the second."""
    return datetime.fromtimestamp(round(epoch_seconds), UTC).replace(tzinfo=None)


def generate_rows(count: int, seed: int) -> Iterator[dict[RecordType, dict[str, Any]]]:
    """``count`` posts (pin, geo, user of one ``ind``), the same for the same seed, drawn from
    the distributions fitted to the real sample (``sample_fit``)."""
    draw = _Draw(random.Random(seed))
    rng = draw.rng
    for ind in range(count):
        yield {
            "pin": _pin(draw, ind),
            "geo": {
                "ind": ind,
                "timestamp": _utc(draw.quantile(fit.POST_TIME_QUANTILES)),
                "latitude": round(draw.quantile(fit.LATITUDE_QUANTILES), 4),
                "longitude": round(draw.quantile(fit.LONGITUDE_QUANTILES), 4),
                "country": draw.weighted(fit.COUNTRY_COUNTS),
            },
            "user": {
                "ind": ind,
                "first_name": rng.choice(FIRST_NAMES),
                "last_name": rng.choice(LAST_NAMES),
                "age": draw.weighted(fit.AGE_COUNTS),
                "date_joined": _utc(draw.quantile(fit.JOINED_TIME_QUANTILES)),
            },
        }


def _parse_datetimes(record_type: RecordType, row: dict[str, Any]) -> dict[str, Any]:
    column = {"geo": "timestamp", "user": "date_joined"}.get(record_type)
    if column and isinstance(row.get(column), str):
        row = {**row, column: datetime.fromisoformat(row[column])}
    return row


def read_jsonl_dir(directory: Path) -> dict[RecordType, list[dict[str, Any]]]:
    """The sample's three files (``pinterest_data.jsonl`` …) as rows per type."""
    rows: dict[RecordType, list[dict[str, Any]]] = {}
    for record_type, name in SEED_FILES.items():
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: --from-jsonl needs {', '.join(SEED_FILES.values())}"
            )
        with path.open(encoding="utf-8") as handle:
            rows[record_type] = [
                _parse_datetimes(record_type, json.loads(line)) for line in handle if line.strip()
            ]
    return rows


def seed(engine: Engine, rows: dict[RecordType, list[dict[str, Any]]]) -> dict[RecordType, int]:
    """Recreate the three tables and insert ``rows``; return the row count per table."""
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for record_type, table in TABLES.items():
            if rows.get(record_type):
                conn.execute(insert(table), rows[record_type])
    return {record_type: len(rows.get(record_type, [])) for record_type in TABLES}


def generated(count: int, seed_value: int) -> dict[RecordType, list[dict[str, Any]]]:
    rows: dict[RecordType, list[dict[str, Any]]] = {"pin": [], "geo": [], "user": []}
    for post in generate_rows(count, seed_value):
        for record_type, row in post.items():
            rows[record_type].append(row)
    return rows
