"""The README's configuration table names every setting, with its real default."""

from __future__ import annotations

import re

from batch.config import BatchSettings
from services.aggregator.config import AggregatorSettings
from services.cleaner.config import CleanerSettings
from services.emulator.config import EmulatorSettings
from services.ingest_api.config import IngestSettings
from services.s3_sink.config import S3SinkSettings
from tests.servers import REPO_ROOT

SETTINGS = (
    IngestSettings,
    EmulatorSettings,
    CleanerSettings,
    AggregatorSettings,
    S3SinkSettings,
    BatchSettings,
)


def test_every_setting_is_documented() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    documented = dict(
        re.findall(r"^\| `(PINPIPE_[A-Z0-9_]+)` \| ([^|]+(?:\\\|[^|]+)*) \|", readme, re.M)
    )
    fields = {
        f"PINPIPE_{name.upper()}": field
        for cls in SETTINGS
        for name, field in cls.model_fields.items()
    }
    assert sorted(documented) == sorted(fields)
    for variable, field in fields.items():
        default = field.default
        plain = isinstance(default, int | float | str) and not isinstance(default, bool)
        if plain and not any(c in str(default) for c in "/\\("):  # paths and regexes are described
            assert f"`{default}`" in documented[variable], variable
