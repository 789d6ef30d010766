//! `export --format parquet` read back with the `parquet` crate's Arrow
//! reader: every record holds the values the JSONL export of the same
//! options holds (nested objects as structs, irregular values as JSON
//! texts), under the same policy, limit and projection, in bounded row
//! groups compressed with zstd.

mod common;

use std::path::Path;

use arrow_array::RecordBatch;
use corpusql::raw::export::parquet::{ParquetOptions, ENCODING_KEY};
use corpusql::raw::export::Projection;
use corpusql::raw::policy::Policy;
use corpusql::raw::tag::{TagOptions, Tagger};
use corpusql::{Corpus, ExportOptions, IngestOptions, Input};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use serde_json::{Map, Value};

/// A corpus of `docs` demo documents.
fn demo(docs: u32) -> (tempfile::TempDir, Corpus) {
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = common::demo_jsonl(&tmp.path().join("demo.jsonl"), docs, 3, "");
    let mut corpus = Corpus::create(tmp.path().join("c"), Default::default()).unwrap();
    corpus
        .ingest(vec![Input::Path(jsonl)], &IngestOptions::default())
        .unwrap();
    (tmp, corpus)
}

/// A corpus of the given JSONL records.
fn corpus_of(records: &str) -> (tempfile::TempDir, Corpus) {
    let tmp = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::create(tmp.path().join("c"), Default::default()).unwrap();
    let input = Input::Reader(
        "records.jsonl".into(),
        Box::new(std::io::Cursor::new(records.as_bytes().to_vec())),
    );
    corpus
        .ingest(vec![input], &IngestOptions::default())
        .unwrap();
    (tmp, corpus)
}

/// A value as compared: numbers as f64, null members left out (Parquet
/// cannot tell an absent field from a null one).
fn normal(v: Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(normal).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, normal(v)))
                .collect::<Map<String, Value>>(),
        ),
        v => v,
    }
}

/// The JSONL export of `q` under `opts`, normalised.
fn jsonl(corpus: &Corpus, q: &str, opts: &ExportOptions) -> (Vec<Value>, corpusql::ExportReport) {
    let mut out = Vec::new();
    let r = corpus
        .export(&corpus.query(q).unwrap(), opts, &mut out)
        .unwrap();
    let v = common::parse_jsonl(&out).into_iter().map(normal).collect();
    (v, r)
}

/// The batches of a Parquet file.
fn read(path: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// The rows of a Parquet file as JSON objects (JSON-text columns parsed
/// back), normalised, and the file's Arrow schema.
fn rows(path: &Path) -> (Vec<Value>, arrow_schema::SchemaRef) {
    let f = std::fs::File::open(path).unwrap();
    let schema = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .schema()
        .clone();
    let batches = read(path);
    let mut w = arrow_json::ArrayWriter::new(Vec::new());
    for b in &batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    let buf = w.into_inner();
    let mut out: Vec<Value> = if buf.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&buf).unwrap()
    };
    for row in &mut out {
        decode_json(
            row,
            &arrow_schema::DataType::Struct(schema.fields().clone()),
        );
    }
    (out.into_iter().map(normal).collect(), schema)
}

/// Parses back, in `v` of type `ty`, the values of fields marked as JSON
/// texts.
fn decode_json(v: &mut Value, ty: &arrow_schema::DataType) {
    use arrow_schema::DataType as T;
    match (v, ty) {
        (Value::Object(o), T::Struct(fields)) => {
            for f in fields {
                let Some(x) = o.get_mut(f.name()) else {
                    continue;
                };
                if f.metadata().get(ENCODING_KEY).map(String::as_str) == Some("json") {
                    if let Value::String(s) = x {
                        *x = serde_json::from_str(s).unwrap();
                    }
                } else {
                    decode_json(x, f.data_type());
                }
            }
        }
        (Value::Array(a), T::List(f)) => {
            for x in a {
                decode_json(x, f.data_type());
            }
        }
        _ => {}
    }
}

fn parquet(corpus: &Corpus, q: &str, opts: &ExportOptions, path: &Path) -> corpusql::ExportReport {
    corpus
        .export_parquet(&corpus.query(q).unwrap(), opts, path)
        .unwrap()
}

#[test]
fn every_record_equals_the_jsonl_export() {
    let (tmp, corpus) = demo(700);
    let path = tmp.path().join("out.parquet");
    let opts = ExportOptions::default();
    let r = parquet(&corpus, "*", &opts, &path);
    let (want, wr) = jsonl(&corpus, "*", &opts);
    assert_eq!(r, wr);
    assert_eq!(r.documents, 700);
    let (got, schema) = rows(&path);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    // Columns in record order; the demo's `meta` object is a struct.
    assert_eq!(schema.field(0).name(), "id");
    assert_eq!(schema.field(1).name(), "text");
    let meta = schema.field_with_name("meta").unwrap();
    assert!(
        matches!(meta.data_type(), arrow_schema::DataType::Struct(_)),
        "{meta:?}"
    );
    // No temporary left beside the file.
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
}

#[test]
fn nested_structs_lists_numbers_and_irregular_values() {
    let records = [
        r#"{"id": "a", "text": "first", "n": 1, "x": 1.5, "ok": true, "tags": ["p", "q"], "meta": {"lang": "en", "depth": 1, "inner": {"k": "v"}, "odd": 1, "list": [1, 2]}}"#,
        r#"{"id": "b", "text": "second", "n": 2, "x": 2, "ok": false, "tags": [], "meta": {"lang": "fr", "odd": "one", "empty": {}}}"#,
        r#"{"id": "c", "text": "third", "n": null, "meta": {"depth": 3, "inner": {"k": "w", "j": [true]}, "odd": [1, "a"], "list": []}, "later": "only here"}"#,
    ]
    .join("\n");
    let (tmp, corpus) = corpus_of(&records);
    let path = tmp.path().join("n.parquet");
    let opts = ExportOptions::default();
    parquet(&corpus, "*", &opts, &path);
    let (got, schema) = rows(&path);
    let (want, _) = jsonl(&corpus, "*", &opts);
    assert_eq!(got, want);

    use arrow_schema::DataType as T;
    let ty = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(ty("n"), T::Int64);
    assert_eq!(ty("x"), T::Float64);
    assert_eq!(ty("ok"), T::Boolean);
    assert!(matches!(ty("tags"), T::List(f) if *f.data_type() == T::Utf8));
    assert_eq!(ty("later"), T::Utf8);
    let T::Struct(meta) = ty("meta") else {
        panic!("meta: {:?}", ty("meta"))
    };
    let names: Vec<&str> = meta.iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["lang", "depth", "inner", "odd", "list", "empty"]);
    let sub = |n: &str| meta.iter().find(|f| f.name() == n).unwrap().clone();
    assert_eq!(*sub("depth").data_type(), T::Int64);
    assert!(matches!(sub("inner").data_type(), T::Struct(f) if f.len() == 2));
    assert!(matches!(sub("list").data_type(), T::List(f) if *f.data_type() == T::Int64));
    // A field of several kinds, and an object always empty: JSON texts.
    for n in ["odd", "empty"] {
        let f = sub(n);
        assert_eq!(*f.data_type(), T::Utf8, "{n}");
        assert_eq!(
            f.metadata().get(ENCODING_KEY).map(String::as_str),
            Some("json"),
            "{n}"
        );
    }
    // The JSON text is the value's own text.
    let batches = read(&path);
    let meta_col = batches[0]
        .column_by_name("meta")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::StructArray>()
        .unwrap()
        .column_by_name("odd")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap()
        .clone();
    assert_eq!(meta_col.value(1), r#""one""#);
    assert_eq!(meta_col.value(2), r#"[1, "a"]"#);
}

#[test]
fn a_top_level_field_of_strings_and_arrays_is_json_text() {
    let records = [
        r#"{"id": "a", "text": "t", "topic": "x"}"#,
        r#"{"id": "b", "text": "t", "topic": ["x", "y"]}"#,
    ]
    .join("\n");
    let (tmp, corpus) = corpus_of(&records);
    let path = tmp.path().join("t.parquet");
    parquet(&corpus, "*", &ExportOptions::default(), &path);
    let (got, schema) = rows(&path);
    let (want, _) = jsonl(&corpus, "*", &ExportOptions::default());
    assert_eq!(got, want);
    let f = schema.field_with_name("topic").unwrap();
    assert_eq!(f.metadata().get(ENCODING_KEY).unwrap(), "json");
}

#[test]
fn policy_limit_fields_and_signals_as_for_jsonl() {
    let (tmp, mut corpus) = demo(600);
    corpus
        .tag(&TagOptions {
            taggers: vec![Tagger::Pii],
            ..Default::default()
        })
        .unwrap();
    corpus
        .set_policy(&Policy {
            allow: Some(vec!["public-domain".into(), "permissive".into()]),
            note: Some("test".into()),
        })
        .unwrap();
    let cases = [
        ExportOptions::default(),
        ExportOptions {
            override_policy: true,
            ..Default::default()
        },
        ExportOptions {
            limit: Some(17),
            ..Default::default()
        },
        ExportOptions {
            projection: Projection::parse_with(None, true),
            ..Default::default()
        },
        ExportOptions {
            projection: Projection::parse(Some("license_class,id,pii_email,bytes,meta")),
            limit: Some(50),
            override_policy: true,
            ..Default::default()
        },
    ];
    for (k, opts) in cases.iter().enumerate() {
        let path = tmp.path().join(format!("p{k}.parquet"));
        let r = parquet(&corpus, "*", opts, &path);
        let (want, wr) = jsonl(&corpus, "*", opts);
        assert_eq!(r, wr, "case {k}");
        let (got, schema) = rows(&path);
        assert_eq!(got.len() as u64, r.documents, "case {k}");
        assert_eq!(got, want, "case {k}: {opts:?}");
        if k == 0 {
            assert!(r.policy.held_back.docs > 0);
            assert!(r.documents < 600);
        }
        if k == 1 {
            assert_eq!(r.documents, 600);
        }
        if k == 3 {
            for s in ["license_class", "license_id", "pii_email"] {
                assert!(schema.field_with_name(s).is_ok(), "{s} in {schema:?}");
            }
        }
        if k == 4 {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            assert_eq!(names, ["license_class", "id", "pii_email", "bytes", "meta"]);
        }
    }
}

#[test]
fn row_groups_are_bounded_and_zstd() {
    let (tmp, corpus) = demo(500);
    let path = tmp.path().join("g.parquet");
    let mut popts = ParquetOptions::default();
    popts.row_group_rows = 64;
    corpus
        .export_parquet_with(
            &corpus.query("*").unwrap(),
            &ExportOptions::default(),
            &popts,
            &path,
        )
        .unwrap();
    let f = std::fs::File::open(&path).unwrap();
    let b = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let md = b.metadata();
    assert_eq!(md.num_row_groups(), 500usize.div_ceil(64));
    for rg in md.row_groups() {
        assert!(rg.num_rows() <= 64);
        for c in rg.columns() {
            assert!(matches!(c.compression(), Compression::ZSTD(_)), "{c:?}");
        }
    }
    // A byte bound closes row groups too.
    let mut popts = ParquetOptions::default();
    popts.row_group_bytes = 64 << 10;
    let path2 = tmp.path().join("h.parquet");
    corpus
        .export_parquet_with(
            &corpus.query("*").unwrap(),
            &ExportOptions::default(),
            &popts,
            &path2,
        )
        .unwrap();
    let f = std::fs::File::open(&path2).unwrap();
    let md = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .metadata()
        .clone();
    assert!(md.num_row_groups() > 1, "{}", md.num_row_groups());
    let (got, _) = rows(&path2);
    let (want, _) = jsonl(&corpus, "*", &ExportOptions::default());
    assert_eq!(got, want);
}

#[test]
fn an_empty_selection_writes_a_valid_file_with_columns() {
    let (tmp, corpus) = demo(50);
    let path = tmp.path().join("e.parquet");
    let r = parquet(&corpus, "lang = xx", &ExportOptions::default(), &path);
    assert_eq!(r.documents, 0);
    let (got, schema) = rows(&path);
    assert!(got.is_empty());
    assert!(schema.field_with_name("id").is_ok());
    assert!(schema.field_with_name("text").is_ok());
    assert!(schema.field_with_name("lang").is_ok());
}

#[test]
fn a_failed_export_leaves_an_older_file_untouched() {
    let (tmp, corpus) = demo(20);
    let path = tmp.path().join("x.parquet");
    std::fs::write(&path, b"older").unwrap();
    let opts = ExportOptions {
        projection: Projection::parse(Some("id,no_such_field")),
        ..Default::default()
    };
    let e = corpus
        .export_parquet(&corpus.query("*").unwrap(), &opts, &path)
        .unwrap_err();
    assert!(e.to_string().contains("no_such_field"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"older");
    let e = corpus
        .export_parquet(
            &corpus.query("*").unwrap(),
            &ExportOptions::default(),
            tmp.path(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("directory"), "{e}");
}

#[test]
fn huge_text_cells_round_trip() {
    let big = "é".repeat(3 << 20);
    let records = format!(
        "{{\"id\": \"big\", \"text\": \"{big}\"}}\n{{\"id\": \"small\", \"text\": \"s\"}}\n"
    );
    let (tmp, corpus) = corpus_of(&records);
    let path = tmp.path().join("b.parquet");
    parquet(&corpus, "*", &ExportOptions::default(), &path);
    let (got, _) = rows(&path);
    let (want, _) = jsonl(&corpus, "*", &ExportOptions::default());
    assert_eq!(got, want);
    assert_eq!(got[0]["text"].as_str().unwrap().len(), big.len());
}
