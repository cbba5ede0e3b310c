"""JSON-lines logging on stdout, the one helper every service uses (DESIGN: Observability)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, service, logger, message and any ``extra``."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


NOISY_LIBRARIES = ("aiokafka", "faust", "mode", "botocore", "s3fs", "httpx", "uvicorn.access")


class RepeatFilter(logging.Filter):
    """Lets through one record per ``window`` seconds for each logger and message template of
    the noisy libraries; the next one that passes says how many were held back (``repeated``).

    While the broker is away, aiokafka logs every reconnection attempt of every client, over a
    thousand lines a second in the cleaner: the log must say the broker is away, not drown."""

    def __init__(self, window: float = 10.0, libraries: tuple[str, ...] = NOISY_LIBRARIES) -> None:
        super().__init__()
        self.window = window
        self.libraries = libraries
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # key → (passed at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.libraries):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        passed_at, held = self._seen.get(key, (-self.window, 0))
        if now - passed_at < self.window:
            self._seen[key] = (passed_at, held + 1)
            return False
        if held:
            record.repeated = held
        if len(self._seen) > 10_000:  # messages with ever-new text: forget the old ones
            self._seen.clear()
        self._seen[key] = (now, 0)
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger's records, as JSON lines, to stdout; the noisy libraries' repeats are
    held back (:class:`RepeatFilter`). Safe to call twice."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in NOISY_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
