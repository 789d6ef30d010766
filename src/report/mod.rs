//! Datasheets: what a query or mixture holds, by license, source and language (being written).
