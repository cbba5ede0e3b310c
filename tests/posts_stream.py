"""A stream of clean records for the aggregator's tests, and the batch answers for it.

The stream is the real sample rows (``../shared/pinterest-data/raw_union``) cleaned with the
standard profile, then the emulator's kind of repeats (the same rows again) and re-posted
``ind``s whose values changed (another country, category, follower count, age, joining date),
so that the live aggregates must retract what a post counted for before. The batch answers come
from ``pinpipe query``'s code over a lake holding the same records in the same order.
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from batch.lake_import import import_file
from batch.query import run_questions
from batch.questions import QUESTIONS
from services.s3_sink.tables import Columns, clean_table
from shared.cleaning import clean
from shared.lake import Lake, open_lake, table_path
from shared.lake_tables import append, with_date
from shared.topics import RECORD_TYPES, RecordType, clean_topic
from tests.conftest import SHARED_DATA

SAMPLE_FILES = {"pin": "pinterest_data", "geo": "geolocation_data", "user": "user_data"}
Stream = list[tuple[RecordType, dict[str, Any]]]
STREAM_DAY = date(2026, 1, 1)


def _sample(record_type: RecordType) -> list[dict[str, Any]]:
    path = SHARED_DATA / "raw_union" / f"{SAMPLE_FILES[record_type]}.jsonl"
    lines = [orjson.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [orjson.loads(orjson.dumps(clean(record_type, raw))) for raw in lines]


def _changed(record_type: RecordType, record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    changed = dict(record)
    if record_type == "pin":
        changed["category"] = rng.choice(["art", "travel", "quotes", "finance", None])
        changed["follower_count"] = rng.choice([None, 0, 7, 1200, 5_000_000])
    elif record_type == "geo":
        changed["country"] = rng.choice(["Albania", "Japan", "Aruba", None])
        changed["timestamp"] = f"{rng.randint(2016, 2023)}-06-01T12:00:00"
    else:
        changed["age"] = rng.choice([None, 15, 20, 30, 45, 70])
        changed["date_joined"] = f"{rng.randint(2014, 2021)}-03-04T05:06:07"
    return changed


def posts_stream(seed: int = 7, share: float = 1.0) -> Stream:
    """Sample records (``share`` of them), then repeats and changed re-posts, interleaved
    across types; every record of an ``ind`` comes after the ones it replaces."""
    rng = random.Random(seed)
    originals: Stream = []
    for record_type in RECORD_TYPES:
        rows = _sample(record_type)
        originals += [(record_type, r) for r in rows[: int(len(rows) * share)]]
    rng.shuffle(originals)
    later: Stream = [item for item in rng.sample(originals, len(originals) // 10)]
    later += [(t, _changed(t, r, rng)) for t, r in rng.sample(originals, len(originals) // 8)]
    rng.shuffle(later)
    return originals + later


def batch_answers(stream: Stream, workdir: Path) -> dict[str, tuple[list[str], list[Any]]]:
    """``pinpipe query <q> --profile standard`` for every question, over a lake of ``stream``
    (one file per type, records in stream order: the latest record per ind is the last)."""
    lake = open_lake(f"file://{workdir / 'lake'}")
    for record_type in RECORD_TYPES:
        path = workdir / f"{record_type}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for t, r in stream if t == record_type))
        import_file(lake, "clean", record_type, path)
    return run_questions(lake, list(QUESTIONS), "standard")


def write_stream(lake: Lake, stream: Stream, first_offset: int) -> None:
    """The stream's clean records as the sink commits them: one commit per type, offsets in
    stream order from ``first_offset`` (one partition: later records have higher offsets)."""
    for record_type in RECORD_TYPES:
        columns = Columns()
        for n, (t, record) in enumerate(stream):
            if t == record_type:
                columns.add(None, orjson.dumps(record), first_offset + n, 1_767_225_600_000)
        if len(columns):
            table, unreadable = clean_table(record_type, clean_topic(record_type), 0, columns)
            assert not unreadable
            append(lake, table_path("clean", record_type), with_date(table, STREAM_DAY))
