"""Settings of the batch queries: the only place they read the environment."""

from __future__ import annotations

from shared.settings import PinpipeSettings


class BatchSettings(PinpipeSettings):
    """The lake (``PINPIPE_LAKE_URL`` and S3 access), and where Spark runs."""

    spark_master: str = "local[*]"  # or a cluster: spark://host:7077, k8s://https://…
    spark_shuffle_partitions: int = 8
