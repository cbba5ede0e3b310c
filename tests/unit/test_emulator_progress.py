from __future__ import annotations

import io

from services.emulator.client import Tally
from services.emulator.poster import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_only() -> None:
    tally = Tally(posted=42, retried=3)
    tally.fail("refused")
    terminal = _Terminal()
    Progress(tally, terminal).update(final=True)
    line = terminal.getvalue()
    assert line.startswith("\rposted 42 ") and "retried 3" in line and "failed 1" in line
    assert line.endswith("\n")
    piped = io.StringIO()
    Progress(tally, piped).update(final=True)
    assert piped.getvalue() == ""
