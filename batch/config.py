"""Settings of the batch queries: the only place they read the environment."""

from __future__ import annotations

from pathlib import Path

from shared.settings import DEFAULT_VAR_DIR, PinpipeSettings


class BatchSettings(PinpipeSettings):
    """The lake (``PINPIPE_LAKE_URL`` and S3 access), and where Spark runs."""

    spark_master: str = "local[*]"  # or a cluster: spark://host:7077, k8s://https://…
    spark_shuffle_partitions: int = 8
    # hadoop-aws and the AWS SDK bundle for s3a:// (infra/spark/jars.sh puts them here)
    spark_jars_dir: Path = DEFAULT_VAR_DIR / "spark" / "jars"
