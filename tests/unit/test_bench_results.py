"""The results table: figures read from the benchmarks' JSON, with their baselines."""

from __future__ import annotations

import json
from pathlib import Path

from bench.results import BEGIN, END, FIGURES, README, key, table, with_results


def test_a_key_reads_nested_numbers_and_the_best_of_a_list() -> None:
    data = {"a": {"b": 3}, "runs": [2, 7, 5], "text": "x"}
    assert key("a", "b")(data) == 3.0
    assert key("runs")(data) == 7.0
    assert key("a", "missing")(data) is None
    assert key("text")(data) is None


def test_the_table_shows_ratios_to_the_baseline_and_what_was_not_run(tmp_path: Path) -> None:
    (tmp_path / "sink.json").write_text(
        json.dumps({"sink_records_per_s": 90_000, "baseline_records_per_s": 100_000})
    )
    text = table(tmp_path)
    (sink,) = [line for line in text.splitlines() if line.startswith("| S3 sink (Delta")]
    assert "90,000 records/s" in sink and "100,000 records/s" in sink and "0.90x" in sink
    (cleaner,) = [line for line in text.splitlines() if line.startswith("| cleaner")]
    assert "not run" in cleaner
    assert len(text.splitlines()) == len(FIGURES) + 2


def test_the_readme_table_is_replaced_between_its_markers() -> None:
    readme = README.read_text()
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1
    replaced = with_results(f"a\n{BEGIN}\nold\n{END}\nb\n", "new\n")
    assert replaced == f"a\n{BEGIN}\nnew\n{END}\nb\n"
