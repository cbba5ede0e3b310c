"""batch: the analysis questions as SQL files run by DuckDB over the lake's Parquet files."""
