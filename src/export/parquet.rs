//! Parquet export: a selection's records as a Parquet file (zstd, row
//! groups), readable by pyarrow, DuckDB and Hugging Face `datasets`.
