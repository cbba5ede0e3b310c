"""Settings of the emulator: the only place it reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import SecretStr

from shared.settings import DEFAULT_VAR_DIR, PinpipeSettings

Mode = Literal["batch", "stream", "both"]
MODES: tuple[Mode, ...] = get_args(Mode)


class EmulatorSettings(PinpipeSettings):
    source_db_url: SecretStr = SecretStr(f"sqlite:///{(DEFAULT_VAR_DIR / 'source.db').resolve()}")
    emulator_api_url: str = "http://127.0.0.1:8000"
    emulator_api_key: SecretStr = SecretStr("")  # sent as x-api-key when set
    emulator_mode: Mode = "batch"  # POST /topics, PUT /streams, or both
    emulator_rate: float = 2.0  # posts per second; 0 = as fast as the API takes them
    emulator_batch_size: int = 1  # posts per request
    emulator_port: int = 8004
    emulator_host: str = "127.0.0.1"
    emulator_sent_log: Path | None = None  # append every post the API took to this JSONL file
