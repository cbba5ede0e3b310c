"""A process named by its pid *and* its start time, so that a pid the kernel reused for
another program is never signalled (``pinpipe down`` after a reboot, or long after a crash).

The start time is field 22 of ``/proc/<pid>/stat`` (clock ticks since boot). Signals go through
a pidfd opened *before* the start time is compared, so the process checked is the process
signalled even if the pid is reused in between.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None when there is no such live
    process (zombies included: they have exited)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # field 3: state
        return None
    return int(fields[19])  # field 22


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    ticks: int

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity | None:
        ticks = start_ticks(pid)
        return None if ticks is None else cls(pid, ticks)

    @property
    def alive(self) -> bool:
        return start_ticks(self.pid) == self.ticks

    def send(self, signum: int) -> bool:
        """Signal the process if it is still the one identified; whether it was signalled."""
        try:
            fd = os.pidfd_open(self.pid)
        except (ProcessLookupError, OSError):
            return False
        try:
            if start_ticks(self.pid) != self.ticks:
                return False  # the pid now names another process
            signal.pidfd_send_signal(fd, signum)
            return True
        except ProcessLookupError:
            return False
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "ticks": self.ticks}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> ProcessIdentity:
        return cls(int(data["pid"]), int(data["ticks"]))
