"""The emulator's source database on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from services.emulator.seed import generated, read_jsonl_dir, seed
from services.emulator.source_db import RowReader, connect, has_tables
from tests.source_rows import read_post, row_count


def test_generation_is_deterministic_for_a_seed() -> None:
    assert generated(50, seed_value=3) == generated(50, seed_value=3)
    assert generated(50, seed_value=3) != generated(50, seed_value=4)


def test_seed_and_read_a_post(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'source.db'}")
    assert not has_tables(engine)
    assert seed(engine, generated(30, seed_value=1)) == {"pin": 30, "geo": 30, "user": 30}
    assert has_tables(engine) and row_count(engine) == 30
    post = read_post(engine, 5)
    assert post["pin"]["index"] == post["geo"]["ind"] == post["user"]["ind"]
    assert isinstance(post["geo"]["timestamp"], str) and "T" in post["geo"]["timestamp"]


def test_load_the_real_sample(tmp_path: Path, shared_data: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'source.db'}")
    counts = seed(engine, read_jsonl_dir(shared_data / "raw_union"))
    assert counts == {"pin": 2178, "geo": 2178, "user": 2178}
    first = read_post(engine, 0)
    assert first["pin"]["index"] == 4 and first["geo"]["country"] == "Albania"
    assert first["user"]["date_joined"] == "2015-10-21T21:26:45"


def test_the_chunked_reader_reads_what_offset_queries_read(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'source.db'}")
    seed(engine, generated(60, seed_value=2))
    reader = RowReader(engine)
    offsets = [0, 59, 7, 7, 33, 12, 0]  # repeats, like the emulator's random picks
    assert reader.rows == 60
    assert reader.read(offsets) == [read_post(engine, o) for o in offsets]
