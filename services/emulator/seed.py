"""Fills a source database: generated rows (deterministic for a seed) or the real sample's
JSON-lines files loaded as they are.

The generator is a first approximation of the real sample's shape (13 categories, follower
count formats, placeholder rows, ages, join dates, post timestamps); matching the sample's
statistics with stated tolerances is the emulator issue's work.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from services.emulator.source_db import TABLES, metadata
from shared.topics import RecordType

CATEGORIES = (
    "christmas", "art", "quotes", "finance", "mens-fashion", "travel", "tattoos",
    "education", "diy-and-crafts", "event-planning", "home-decor", "beauty", "vehicles",
)  # fmt: skip
COUNTRIES = (
    "Albania", "Algeria", "Afghanistan", "Aruba", "American Samoa", "Andorra", "Argentina",
    "Bangladesh", "Belgium", "Brazil", "Bulgaria", "Canada", "Chile", "Denmark", "Egypt",
    "France", "Germany", "Greece", "India", "Japan", "Kenya", "Mexico", "Norway", "Peru",
    "Poland", "Spain", "Sweden", "Thailand", "United Kingdom", "Vietnam",
)  # fmt: skip
FIRST_NAMES = ("Adam", "Holly", "Abigail", "Christopher", "Maria", "James", "Linda", "Omar")
LAST_NAMES = ("Acosta", "Baker", "Ali", "Montgomery", "Garcia", "Smith", "Nguyen", "Khan")
SEED_FILES: dict[RecordType, str] = {
    "pin": "pinterest_data.jsonl",
    "geo": "geolocation_data.jsonl",
    "user": "user_data.jsonl",
}


def _follower_count(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.05:
        return "User Info Error"
    if roll < 0.45:
        return str(rng.randint(0, 999))
    if roll < 0.9:
        return f"{rng.randint(1, 999)}k"
    return f"{rng.randint(1, 9)}M"


def generate_rows(count: int, seed: int) -> Iterator[dict[RecordType, dict[str, Any]]]:
    """``count`` posts (pin, geo, user of one ``ind``), the same for the same seed."""
    rng = random.Random(seed)
    ind = 0
    for _ in range(count):
        ind += rng.randint(1, 3)  # sparse like the original's 4…10,997
        category = rng.choice(CATEGORIES)
        story = rng.random() < 0.04
        yield {
            "pin": {
                "index": ind,
                "unique_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "title": "No Title Data Available" if story else f"A {category} idea #{ind}",
                "description": "No description available Story format"
                if story
                else f"Ideas about {category} ",
                "poster_name": "User Info Error" if story else f"Poster {rng.randint(1, 500)}",
                "follower_count": "User Info Error" if story else _follower_count(rng),
                "tag_list": "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
                if story
                else f"{category} tips,{category} ideas",
                "is_image_or_video": "multi-video(story page format)" if story else "image",
                "image_src": "Image src error."
                if story
                else f"https://i.pinimg.com/originals/{rng.getrandbits(64):016x}.jpg",
                "downloaded": 0 if story else 1,
                "save_location": f"Local save in /data/{category}",
                "category": category,
            },
            "geo": {
                "ind": ind,
                "timestamp": datetime(2017, 10, 1)
                + timedelta(seconds=rng.randint(0, 5 * 365 * 86400)),
                "latitude": round(rng.uniform(-90, 90), 4),
                "longitude": round(rng.uniform(-180, 180), 4),
                "country": rng.choice(COUNTRIES),
            },
            "user": {
                "ind": ind,
                "first_name": rng.choice(FIRST_NAMES),
                "last_name": rng.choice(LAST_NAMES),
                "age": rng.randint(20, 60),
                "date_joined": datetime(2015, 10, 1)
                + timedelta(seconds=rng.randint(0, 2 * 365 * 86400)),
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
