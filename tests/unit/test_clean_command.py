"""``pinpipe clean``: JSON lines in, clean JSON lines out, bad lines on stderr."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app


def test_clean_a_file_with_bad_lines(tmp_path: Path, shared_data: Path) -> None:
    lines = (shared_data / "raw_union" / "pinterest_data.jsonl").read_text().splitlines()[:5]
    source = tmp_path / "raw.jsonl"
    source.write_text("\n".join([*lines, "{bad", '{"title": "no index"}']) + "\n")
    result = CliRunner().invoke(app, ["clean", "--type", "pin", "--profile", "legacy", str(source)])
    assert result.exit_code == 1  # some lines were rejected
    cleaned = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["ind"] for row in cleaned] == [json.loads(line)["index"] for line in lines]
    assert cleaned[0]["follower_count"] == 2  # legacy: "2M" -> 2
    assert "line 6: not_json" in result.stderr and "line 7: missing_ind" in result.stderr
    assert "cleaned 5, rejected 2" in result.stderr


def test_stdin_and_the_standard_profile() -> None:
    raw = json.dumps({"ind": 1, "first_name": "Ada ", "last_name": "Lovelace", "age": 36})
    result = CliRunner().invoke(app, ["clean", "--type", "user"], input=raw + "\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["user_name"] == "Ada Lovelace"


def test_unknown_type_or_profile_is_refused() -> None:
    assert CliRunner().invoke(app, ["clean", "--type", "pins"], input="").exit_code == 2
    assert (
        CliRunner().invoke(app, ["clean", "--type", "pin", "--profile", "x"], input="").exit_code
        == 2
    )
