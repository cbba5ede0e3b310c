"""Settings of the batch queries: the only place they read the environment."""

from __future__ import annotations

from shared.settings import PinpipeSettings


class BatchSettings(PinpipeSettings):
    """The lake (``PINPIPE_LAKE_URL`` and S3 access) is all the queries need so far."""
