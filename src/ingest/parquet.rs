//! Parquet input: row groups of a Parquet file read in bounded memory and
//! handed to ingest as records.
