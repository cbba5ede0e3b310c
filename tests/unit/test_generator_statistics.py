"""The generator matches the real sample's statistics within the stated tolerances, and its
committed parameters are what fitting the sample gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.emulator import sample_fit
from services.emulator.fit_sample import fit
from services.emulator.seed import generated, read_jsonl_dir
from services.emulator.statistics import compare, measure


def test_generated_rows_match_the_sample(shared_data: Path) -> None:
    pairs = compare(read_jsonl_dir(shared_data / "raw_union"), generated(11_000, 100))
    assert len(pairs) > 40
    off = [
        f"{s.name}: sample {s.value:.4f}, generated {g.value:.4f}, tolerance {s.tolerance}"
        for s, g in pairs
        if not abs(s.value - g.value) <= s.tolerance
    ]
    assert not off, "\n".join(off)


@pytest.mark.parametrize("seed", [1, 2])
def test_other_seeds_match_too(shared_data: Path, seed: int) -> None:
    pairs = compare(read_jsonl_dir(shared_data / "raw_union"), generated(11_000, seed))
    assert all(abs(s.value - g.value) <= s.tolerance for s, g in pairs)


def test_a_generator_that_ignored_the_fit_would_fail(shared_data: Path) -> None:
    """The statistics can tell: uniform countries and ages are far outside the tolerances."""
    rows = generated(2_000, 3)
    for row in rows["geo"]:
        row["country"] = "Zambia"
    for row in rows["user"]:
        row["age"] = 59
    pairs = compare(read_jsonl_dir(shared_data / "raw_union"), rows)
    assert sum(not abs(s.value - g.value) <= s.tolerance for s, g in pairs) >= 8


def test_committed_parameters_are_the_fit_of_the_sample(shared_data: Path) -> None:
    for name, value in fit(shared_data / "raw_union").items():
        assert getattr(sample_fit, name) == value, name


def test_statistics_are_measured_on_the_sample(shared_data: Path) -> None:
    names = [s.name for s in measure(read_jsonl_dir(shared_data / "raw_union"))]
    assert len(names) == len(set(names))
