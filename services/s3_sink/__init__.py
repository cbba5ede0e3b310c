"""services/s3_sink: raw and clean topics → Parquet files in the lake, exactly once."""
