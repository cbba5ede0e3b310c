"""``pinpipe clean``: raw JSON lines in (stdin or a file), clean JSON lines out (stdout); a bad
line is reported on stderr with its number and reason, and the run goes on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

import orjson

from shared.cleaning import BadRecord, clean
from shared.profiles import Profile
from shared.topics import RecordType


def clean_lines(
    lines: Iterable[str], record_type: RecordType, profile: Profile, out: TextIO, err: TextIO
) -> tuple[int, int]:
    """Clean every non-empty line; return (cleaned, rejected)."""
    cleaned = rejected = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            try:
                raw = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise BadRecord("not_json", str(exc)) from exc
            out.write(orjson.dumps(clean(record_type, raw, profile)).decode() + "\n")
            cleaned += 1
        except BadRecord as bad:
            err.write(f"line {number}: {bad.reason}: {bad.detail}\n")
            rejected += 1
    return cleaned, rejected
