//! Parquet export: a selection's records as one Parquet file (zstd, bounded
//! row groups), readable by pyarrow, DuckDB and Hugging Face `datasets`.
//!
//! The records are the very bytes the JSONL exporter writes
//! ([`write_jsonl_with`]: same projection, signals, redaction), read twice.
//! The first pass infers a `Shape` per column from every record (no value
//! kept); the second feeds the records, a batch at a time, to an
//! `arrow_json` decoder with the inferred Arrow schema and writes each batch
//! to the Parquet writer, which closes a row group every
//! [`ParquetOptions::row_group_rows`] rows or when its buffered pages reach
//! [`ParquetOptions::row_group_bytes`]. Memory is bounded by one batch and
//! one row group, never the selection.
//!
//! Shapes map to Arrow types: strings → `utf8`, booleans → `bool`, numbers →
//! `int64` when every value is written as an integer that fits, else
//! `float64`, objects → structs (fields in order of first appearance),
//! arrays → lists of their elements' type. A value whose shape differs
//! between records (a string here and an array there, an array mixing
//! kinds, an always-empty object) makes its column a `utf8` column of JSON
//! texts (each value's exact JSON, `null` stays null), its Arrow field
//! marked with the metadata `corpusql.encoding = json`. A column with
//! only nulls is `utf8`. An empty selection writes a file with no rows
//! whose columns come from the corpus schema.
//!
//! The file is written under a temporary name beside its path and renamed
//! over it only once complete ([`temp_path`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_json::reader::Decoder;
use arrow_schema::{DataType, Field, Fields, Schema as ArrowSchema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{temp_path, write_jsonl_with, Projection};
use crate::error::{Error, IoContext, Result};
use crate::facade::{ExportOptions, ExportReport};
use crate::json::{self, RawObject};
use crate::schema::FieldKind;
use crate::select::Selection;

/// The Arrow field metadata key that marks a column of JSON texts.
pub const ENCODING_KEY: &str = "corpusql.encoding";

/// How a Parquet export lays out its file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParquetOptions {
    /// A row group closes after this many rows (default 65,536).
    pub row_group_rows: usize,
    /// A row group closes once its buffered, encoded pages reach this many
    /// bytes (default 128 MiB): what bounds memory with long texts.
    pub row_group_bytes: usize,
    /// The zstd level (default 3).
    pub zstd_level: i32,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            row_group_rows: 64 * 1024,
            row_group_bytes: 128 << 20,
            zstd_level: 3,
        }
    }
}

/// A decoded batch holds at most this many bytes of JSON (plus one record),
/// which also keeps every `utf8` array far below its 2 GiB offset limit;
/// at most a quarter of [`ParquetOptions::row_group_bytes`].
const BATCH_BYTES: usize = 32 << 20;
/// A decoded batch holds at most this many records.
const BATCH_ROWS: usize = 8192;

impl crate::corpus::Corpus {
    /// Writes the documents of `sel` the policy allows (all of them with
    /// `opts.override_policy`) as a Parquet file at `path`, with the
    /// default [`ParquetOptions`]: the same records as
    /// [`Corpus::export`](crate::Corpus::export), policy, limit, projection
    /// and redaction applied the same way.
    pub fn export_parquet(
        &self,
        sel: &Selection,
        opts: &ExportOptions,
        path: &Path,
    ) -> Result<ExportReport> {
        self.export_parquet_with(sel, opts, &ParquetOptions::default(), path)
    }

    /// [`export_parquet`](Self::export_parquet) with a row-group layout.
    pub fn export_parquet_with(
        &self,
        sel: &Selection,
        opts: &ExportOptions,
        popts: &ParquetOptions,
        path: &Path,
    ) -> Result<ExportReport> {
        opts.projection.check(self.schema())?;
        let (mut sel, policy) = self.under_policy(sel, opts.override_policy)?;
        if let Some(n) = opts.limit {
            sel.truncate(n);
        }
        let documents = write_parquet(
            &sel,
            &opts.projection,
            opts.redact_pii,
            self.schema(),
            popts,
            path,
        )?;
        Ok(ExportReport { documents, policy })
    }
}

/// Writes `sel` (policy already applied) as Parquet at `path`; returns the
/// documents written. `schema` gives the columns of an empty selection.
pub fn write_parquet(
    sel: &Selection,
    proj: &Projection,
    redact_pii: bool,
    schema: &crate::schema::Schema,
    popts: &ParquetOptions,
    path: &Path,
) -> Result<u64> {
    if path.is_dir() {
        return Err(Error::Invalid(format!(
            "{}: is a directory; give a file name",
            path.display()
        )));
    }
    let shape = infer(sel, proj, schema)?;
    let Shape::Struct(columns) = &shape else {
        return Err(Error::Invalid(format!(
            "{}: the exported records are not JSON objects",
            path.display()
        )));
    };
    let arrow: SchemaRef = Arc::new(ArrowSchema::new(
        columns
            .iter()
            .map(|(n, s)| s.field(n))
            .collect::<Vec<Field>>(),
    ));
    let fail = |e: &dyn std::fmt::Display| {
        Error::Invalid(format!("{}: writing Parquet: {e}", path.display()))
    };

    let mut file = TempFile::create(path)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(popts.zstd_level).map_err(|e| fail(&e))?,
        ))
        .set_max_row_group_size(popts.row_group_rows.max(1))
        .set_created_by(format!("corpusql {}", env!("CARGO_PKG_VERSION")))
        .build();
    let out = std::io::BufWriter::with_capacity(1 << 20, file.take()?);
    let writer = ArrowWriter::try_new(out, arrow.clone(), Some(props)).map_err(|e| fail(&e))?;
    let decoder = arrow_json::ReaderBuilder::new(arrow)
        .with_batch_size(BATCH_ROWS.min(popts.row_group_rows.max(1)))
        .build_decoder()
        .map_err(|e| fail(&e))?;
    let mut w = Writer {
        writer,
        decoder,
        rewrite: shape.needs_rewrite().then_some(&shape),
        scratch: Vec::new(),
        fed: 0,
        rows: 0,
        row_group_bytes: popts.row_group_bytes.max(1),
        batch_bytes: BATCH_BYTES.min(popts.row_group_bytes / 4).max(1),
        batch_rows: BATCH_ROWS.min(popts.row_group_rows.max(1)),
        path,
    };
    let mut sink = LineSink::new(|line: &[u8]| w.record(line));
    let r = write_jsonl_with(sel, proj, redact_pii, &mut sink);
    sink.result(r)?;
    let rows = w.rows;
    let out = w.finish()?;
    let f = out
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    file.commit(f)?;
    Ok(rows)
}

/// The first pass: the shape of every record of `sel` merged, top-level
/// columns in the projection's order when it lists fields. An empty
/// selection takes its columns from the corpus schema.
fn infer(sel: &Selection, proj: &Projection, schema: &crate::schema::Schema) -> Result<Shape> {
    let mut shape = Shape::Null;
    let mut n = 0u64;
    let mut sink = LineSink::new(|line: &[u8]| {
        n += 1;
        let s: Shape = serde_json::from_slice(line).map_err(|e| {
            Error::Invalid(format!(
                "export --format parquet: record {n} is not JSON: {}",
                json::describe_error(&e)
            ))
        })?;
        shape = std::mem::take(&mut shape).merge(s);
        Ok(())
    });
    // Redaction only rewrites the text, a string either way.
    let r = write_jsonl_with(sel, proj, false, &mut sink);
    sink.result(r)?;
    let mut shape = match shape {
        Shape::Null => from_schema(proj, schema),
        s => s,
    }
    .finish(true);
    if let (Projection::Fields(names), Shape::Struct(cols)) = (proj, &mut shape) {
        cols.sort_by_key(|(c, _)| names.iter().position(|n| n == c));
    }
    Ok(shape)
}

/// The columns of an empty export, from the corpus schema: the key and
/// text as strings, facets as strings, numbers as `float64`.
fn from_schema(proj: &Projection, schema: &crate::schema::Schema) -> Shape {
    let kind = |name: &str| -> Shape {
        if name == schema.key_field || name == schema.text_field {
            return Shape::Str;
        }
        if name == crate::format::BYTES_FIELD {
            return Shape::Int;
        }
        match schema.fields.get(name) {
            Some(FieldKind::Bool) => Shape::Bool,
            Some(FieldKind::Number) => Shape::Float,
            Some(FieldKind::Json) => Shape::Json,
            _ => Shape::Str,
        }
    };
    let names: Vec<String> = match proj {
        Projection::Fields(f) => f.clone(),
        Projection::All | Projection::WithSignals => {
            let mut v = vec![schema.key_field.clone(), schema.text_field.clone()];
            v.extend(schema.fields.keys().cloned());
            v
        }
    };
    let mut cols: Vec<(String, Shape)> = Vec::new();
    for n in names {
        if !cols.iter().any(|(c, _)| *c == n) {
            let s = kind(&n);
            cols.push((n, s));
        }
    }
    Shape::Struct(cols)
}

/// The second pass: records to Arrow batches to row groups.
struct Writer<'a> {
    writer: ArrowWriter<std::io::BufWriter<std::fs::File>>,
    decoder: Decoder,
    /// The shape to rewrite records by, when a column holds JSON texts.
    rewrite: Option<&'a Shape>,
    scratch: Vec<u8>,
    /// JSON bytes fed to the decoder since its last batch.
    fed: usize,
    /// Records written.
    rows: u64,
    row_group_bytes: usize,
    batch_rows: usize,
    batch_bytes: usize,
    path: &'a Path,
}

impl Writer<'_> {
    fn fail(&self, e: &dyn std::fmt::Display) -> Error {
        Error::Invalid(format!("{}: writing Parquet: {e}", self.path.display()))
    }

    /// Adds one record (a JSON object).
    fn record(&mut self, line: &[u8]) -> Result<()> {
        if self.decoder.len() >= self.batch_rows || self.fed >= self.batch_bytes {
            self.flush_batch()?;
        }
        self.rows += 1;
        let bytes: &[u8] = match self.rewrite {
            None => line,
            Some(shape) => {
                let s = std::str::from_utf8(line).map_err(|e| self.bad(&e))?;
                let raw: &RawValue = serde_json::from_str(s).map_err(|e| self.bad(&e))?;
                self.scratch.clear();
                shape
                    .rewrite(raw, &mut self.scratch)
                    .map_err(|e| self.bad(&e))?;
                self.scratch.push(b'\n');
                &self.scratch
            }
        };
        let used = self.decoder.decode(bytes).map_err(|e| self.bad(&e))?;
        if used != bytes.len() {
            let e = "the decoder stopped inside a record";
            return Err(self.bad(&e));
        }
        self.fed += bytes.len();
        Ok(())
    }

    /// The error of record `rows` (1-based).
    fn bad(&self, e: &dyn std::fmt::Display) -> Error {
        Error::Invalid(format!(
            "{}: writing Parquet: record {}: {e}",
            self.path.display(),
            self.rows
        ))
    }

    /// Writes the decoded records as a batch, closing the row group when
    /// its buffered pages reach the byte bound.
    fn flush_batch(&mut self) -> Result<()> {
        self.fed = 0;
        let batch: Option<RecordBatch> = self.decoder.flush().map_err(|e| self.fail(&e))?;
        if let Some(b) = batch {
            self.writer.write(&b).map_err(|e| self.fail(&e))?;
            if self.writer.in_progress_size() >= self.row_group_bytes {
                self.writer.flush().map_err(|e| self.fail(&e))?;
            }
        }
        Ok(())
    }

    /// Writes the last batch and the footer; returns the output.
    fn finish(mut self) -> Result<std::io::BufWriter<std::fs::File>> {
        self.flush_batch()?;
        let path = self.path;
        // Writes the last row group and the footer.
        self.writer
            .into_inner()
            .map_err(|e| Error::Invalid(format!("{}: writing Parquet: {e}", path.display())))
    }
}

/// A file written under [`temp_path`] and renamed over its path by
/// [`TempFile::commit`]; dropped uncommitted, the temporary is removed.
struct TempFile {
    tmp: PathBuf,
    path: PathBuf,
    file: Option<std::fs::File>,
    done: bool,
}

impl TempFile {
    fn create(path: &Path) -> Result<TempFile> {
        let tmp = temp_path(path);
        let file = std::fs::File::create(&tmp).at(path)?;
        Ok(TempFile {
            tmp,
            path: path.to_path_buf(),
            file: Some(file),
            done: false,
        })
    }

    /// The open file, to write through.
    fn take(&mut self) -> Result<std::fs::File> {
        self.file
            .take()
            .ok_or_else(|| Error::Invalid(format!("{}: already taken", self.path.display())))
    }

    /// Syncs `f` (the file, written) and renames it over the path.
    fn commit(mut self, f: std::fs::File) -> Result<()> {
        f.sync_all().at(&self.path)?;
        drop(f);
        std::fs::rename(&self.tmp, &self.path).at(&self.path)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.done {
            drop(self.file.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A writer of JSONL that hands each complete line (with its newline) to a
/// callback; the callback's first error stops the export and is kept.
struct LineSink<F> {
    f: F,
    partial: Vec<u8>,
    err: Option<Error>,
}

impl<F: FnMut(&[u8]) -> Result<()>> LineSink<F> {
    fn new(f: F) -> Self {
        LineSink {
            f,
            partial: Vec::new(),
            err: None,
        }
    }

    /// The outcome of the export that wrote into this sink: the callback's
    /// error first (the export only saw it as a failed write).
    fn result<T>(mut self, r: Result<T>) -> Result<T> {
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        let t = r?;
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            (self.f)(&rest)?;
        }
        Ok(t)
    }
}

impl<F: FnMut(&[u8]) -> Result<()>> Write for LineSink<F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        if self.err.is_some() {
            return Err(std::io::Error::other("export stopped"));
        }
        while let Some(i) = memchr::memchr(b'\n', buf) {
            let r = if self.partial.is_empty() {
                (self.f)(&buf[..=i])
            } else {
                self.partial.extend_from_slice(&buf[..=i]);
                let line = std::mem::take(&mut self.partial);
                (self.f)(&line)
            };
            if let Err(e) = r {
                self.err = Some(e);
                return Err(std::io::Error::other("export stopped"));
            }
            buf = &buf[i + 1..];
        }
        self.partial.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the values of a column (or of a nested field) look like across
/// every record.
#[derive(Debug, Clone, Default, PartialEq)]
enum Shape {
    /// Only nulls (or no value) seen.
    #[default]
    Null,
    /// Booleans.
    Bool,
    /// Numbers written as integers that fit an `i64`.
    Int,
    /// Numbers, some not integers.
    Float,
    /// Strings.
    Str,
    /// Arrays of the element shape.
    List(Box<Shape>),
    /// Objects, fields in order of first appearance.
    Struct(Vec<(String, Shape)>),
    /// Values of irregular shapes: kept as their JSON texts.
    Json,
}

impl Shape {
    /// The shape of values of both shapes.
    fn merge(self, other: Shape) -> Shape {
        use Shape::*;
        match (self, other) {
            (Null, x) | (x, Null) => x,
            (Json, _) | (_, Json) => Json,
            (Int, Float) | (Float, Int) => Float,
            (List(a), List(b)) => List(Box::new(a.merge(*b))),
            (Struct(mut a), Struct(b)) => {
                for (name, s) in b {
                    merge_field(&mut a, name, s);
                }
                Struct(a)
            }
            (a, b) if a == b => a,
            _ => Json,
        }
    }

    /// The shape as written: lists of JSON texts and objects without
    /// fields (which Parquet cannot hold) become JSON texts themselves.
    /// `top`: the record itself, kept a struct.
    fn finish(self, top: bool) -> Shape {
        match self {
            Shape::List(e) => match e.finish(false) {
                Shape::Json => Shape::Json,
                e => Shape::List(Box::new(e)),
            },
            Shape::Struct(f) if f.is_empty() && !top => Shape::Json,
            Shape::Struct(f) => {
                Shape::Struct(f.into_iter().map(|(n, s)| (n, s.finish(false))).collect())
            }
            s => s,
        }
    }

    /// Whether some value must be rewritten (as a JSON text) before it is
    /// decoded.
    fn needs_rewrite(&self) -> bool {
        match self {
            Shape::Json => true,
            Shape::List(e) => e.needs_rewrite(),
            Shape::Struct(f) => f.iter().any(|(_, s)| s.needs_rewrite()),
            _ => false,
        }
    }

    /// The Arrow type of this shape.
    fn data_type(&self) -> DataType {
        match self {
            Shape::Null | Shape::Str | Shape::Json => DataType::Utf8,
            Shape::Bool => DataType::Boolean,
            Shape::Int => DataType::Int64,
            Shape::Float => DataType::Float64,
            Shape::List(e) => DataType::List(Arc::new(e.field("item"))),
            Shape::Struct(f) => {
                DataType::Struct(f.iter().map(|(n, s)| s.field(n)).collect::<Fields>())
            }
        }
    }

    /// A nullable Arrow field of this shape, marked when it holds JSON texts.
    fn field(&self, name: &str) -> Field {
        let f = Field::new(name, self.data_type(), true);
        if *self == Shape::Json {
            f.with_metadata(HashMap::from([(ENCODING_KEY.into(), "json".into())]))
        } else {
            f
        }
    }

    /// Appends `raw` with every value of a [`Shape::Json`] position
    /// replaced by its JSON text as a string.
    fn rewrite(&self, raw: &RawValue, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let text = raw.get();
        if text == "null" || !self.needs_rewrite() {
            out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        match self {
            Shape::Json => json::write_str(out, text),
            Shape::List(e) => {
                let items: Vec<&RawValue> = serde_json::from_str(text)?;
                out.push(b'[');
                for (k, v) in items.into_iter().enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    e.rewrite(v, out)?;
                }
                out.push(b']');
            }
            Shape::Struct(fields) => {
                let obj: RawObject = serde_json::from_str(text)?;
                out.push(b'{');
                let mut first = true;
                for (k, v) in obj.0 {
                    // A field the schema lacks would be ignored: leave it out.
                    let Some((_, s)) = fields.iter().find(|(n, _)| *n == k) else {
                        continue;
                    };
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    json::write_str(out, &k);
                    out.push(b':');
                    s.rewrite(v, out)?;
                }
                out.push(b'}');
            }
            _ => out.extend_from_slice(text.as_bytes()),
        }
        Ok(())
    }
}

/// Merges field `name` of shape `s` into `fields`.
fn merge_field(fields: &mut Vec<(String, Shape)>, name: String, s: Shape) {
    match fields.iter_mut().find(|(n, _)| *n == name) {
        Some((_, old)) => *old = std::mem::take(old).merge(s),
        None => fields.push((name, s)),
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Shape, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

/// Reads the shape of a JSON value without keeping the value.
struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Shape, E> {
        Ok(Shape::Bool)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Shape, E> {
        Ok(Shape::Int)
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Shape, E> {
        Ok(if i64::try_from(v).is_ok() {
            Shape::Int
        } else {
            Shape::Float
        })
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Shape, E> {
        Ok(Shape::Float)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Shape, E> {
        Ok(Shape::Str)
    }
    fn visit_unit<E>(self) -> std::result::Result<Shape, E> {
        Ok(Shape::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Shape, E> {
        Ok(Shape::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Shape, A::Error> {
        let mut e = Shape::Null;
        while let Some(s) = seq.next_element::<Shape>()? {
            e = e.merge(s);
        }
        Ok(Shape::List(Box::new(e)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Shape, A::Error> {
        let mut fields = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            let s: Shape = map.next_value()?;
            merge_field(&mut fields, k, s);
        }
        Ok(Shape::Struct(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(lines: &[&str]) -> Shape {
        lines
            .iter()
            .map(|l| serde_json::from_str::<Shape>(l).unwrap())
            .fold(Shape::Null, Shape::merge)
            .finish(true)
    }

    #[test]
    fn shapes_merge_into_types_and_fall_back_to_json() {
        let s = shape(&[
            r#"{"a": 1, "b": [ "x" ], "m": {"l": "en", "n": 1}, "j": "s", "e": {}}"#,
            r#"{"a": 2.5, "b": [], "m": {"n": 2, "z": true}, "j": [1], "e": {}}"#,
            r#"{"a": null, "n": null, "big": 18446744073709551615, "mix": [1, "a"]}"#,
        ]);
        let want = Shape::Struct(vec![
            ("a".into(), Shape::Float),
            ("b".into(), Shape::List(Box::new(Shape::Str))),
            (
                "m".into(),
                Shape::Struct(vec![
                    ("l".into(), Shape::Str),
                    ("n".into(), Shape::Int),
                    ("z".into(), Shape::Bool),
                ]),
            ),
            ("j".into(), Shape::Json),
            ("e".into(), Shape::Json),
            ("n".into(), Shape::Null),
            ("big".into(), Shape::Float),
            ("mix".into(), Shape::Json),
        ]);
        assert_eq!(s, want);
    }

    #[test]
    fn rewrite_turns_json_positions_into_strings_only() {
        let s = shape(&[
            r#"{"m": {"x": 1, "y": "a"}, "l": [{"k": 1}]}"#,
            r#"{"m": {"x": 1, "y": [2]}, "l": [{"k": "b"}]}"#,
        ]);
        let raw: &RawValue = serde_json::from_str(
            r#"{"m": {"x": 3, "y": {"q": [1, 2]}}, "l": [{"k": 7}, null], "t": "hi"}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        s.rewrite(raw, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"m":{"x":3,"y":"{\"q\": [1, 2]}"},"l":[{"k":"7"},null]}"#
        );
    }
}
