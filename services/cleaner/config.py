"""Settings of the cleaner: the only place it reads the environment."""

from __future__ import annotations

from pathlib import Path

from shared.settings import DEFAULT_VAR_DIR, PinpipeSettings


class CleanerSettings(PinpipeSettings):
    cleaner_app_id: str = "pinpipe-cleaner"
    cleaner_profile: str = "standard"
    cleaner_web_host: str = "127.0.0.1"
    cleaner_web_port: int = 8002
    cleaner_datadir: Path = (DEFAULT_VAR_DIR / "faust" / "cleaner").resolve()
    cleaner_max_record_bytes: int = 1024 * 1024
