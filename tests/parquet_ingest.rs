//! Parquet ingest through the CLI: files written here with the `parquet`
//! crate's `ArrowWriter` (every supported column type, every codec, several
//! row groups, a long text cell) ingest with the counts per facet that were
//! written and export back the values; a truncated or corrupt file, a file
//! without the text column, a file with a binary column and one with a NUL in
//! a column name are refused with
//! a message naming the file (and row group, column) and nothing committed;
//! the shared real corpus converted to Parquet answers the truth file's
//! queries like its JSONL.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, StringBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, DictionaryArray,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, LargeListArray,
    LargeStringArray, RecordBatch, StringArray, StringViewArray, StructArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, UInt64Array, UInt8Array,
};
use arrow_schema::{DataType, Field};
use parquet::arrow::ArrowWriter;
use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;

/// The CLI under test: `CORPUSQL_BIN` when set (as for the Python tests:
/// useful where several checkouts share one target directory, whose
/// `debug/corpusql` is the last one built), else this crate's binary.
fn bin() -> PathBuf {
    std::env::var_os("CORPUSQL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_corpusql")))
}

fn cli(corpus: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--corpus")
        .arg(corpus)
        .args(args)
        .output()
        .expect("run corpusql")
}

fn cli_ok(corpus: &Path, args: &[&str]) -> String {
    let o = cli(corpus, args);
    assert!(
        o.status.success(),
        "corpusql {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8 output")
}

fn count(corpus: &Path, q: &str) -> u64 {
    let out = cli_ok(corpus, &["count", q]);
    out.trim()
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("count `{q}` printed {out:?}"))
}

fn export(corpus: &Path) -> BTreeMap<String, Value> {
    let out = cli_ok(corpus, &["export", "*"]);
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("exported JSON"))
        .map(|v| (v["id"].as_str().expect("id").to_string(), v))
        .collect()
}

fn write_parquet(path: &Path, batches: &[RecordBatch], codec: Compression, rows_per_group: usize) {
    let f = std::fs::File::create(path).unwrap();
    let props = WriterProperties::builder()
        .set_compression(codec)
        .set_max_row_group_size(rows_per_group)
        .build();
    let mut w = ArrowWriter::try_new(f, batches[0].schema(), Some(props)).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(cols).unwrap()
}

const N: usize = 60;
const LANGS: [&str; 3] = ["en", "fr", "de"];

/// Row `i`'s text: one long cell (100 KiB, with newlines and quotes).
fn text_of(i: usize) -> String {
    if i == 7 {
        "long \"line\"\nof text\t".repeat(100 * 1024 / 22)
    } else {
        format!("document {i}\nwith a second line é ✓")
    }
}

/// A batch with every supported type; nulls every few rows.
fn every_type(rows: std::ops::Range<usize>) -> RecordBatch {
    let r: Vec<usize> = rows.collect();
    let ids = StringArray::from_iter_values(r.iter().map(|i| format!("doc-{i}")));
    let text = StringArray::from_iter_values(r.iter().map(|&i| text_of(i)));
    let lang: DictionaryArray<Int32Type> = r.iter().map(|i| LANGS[i % 3]).collect();
    let source = LargeStringArray::from_iter(
        r.iter()
            .map(|i| (i % 5 != 0).then(|| format!("src{}", i % 4))),
    );
    let site = StringViewArray::from_iter(r.iter().map(|i| (i % 2 == 0).then_some("web")));
    // Lists of strings (with null elements and null lists).
    let mut lb = arrow_array::builder::ListBuilder::new(StringBuilder::new());
    for &i in &r {
        if i % 6 == 5 {
            lb.append_null();
            continue;
        }
        lb.values().append_value("t");
        if i % 2 == 0 {
            lb.values().append_null();
            lb.values().append_value("even");
        }
        lb.append(true);
    }
    let tags = lb.finish();
    let mut llb = arrow_array::builder::LargeListBuilder::new(StringBuilder::new());
    for &i in &r {
        llb.values().append_value(format!("k{}", i % 2));
        llb.append(true);
    }
    let keys: LargeListArray = llb.finish();
    let mut fb = FixedSizeListBuilder::new(StringBuilder::new(), 2);
    for &i in &r {
        fb.values().append_value("a");
        fb.values().append_value(if i % 2 == 0 { "b" } else { "c" });
        fb.append(true);
    }
    let pair = fb.finish();
    let meta = StructArray::from(vec![
        (
            Arc::new(Field::new("kind", DataType::Utf8, true)),
            Arc::new(StringArray::from_iter(
                r.iter()
                    .map(|i| (i % 3 != 0).then(|| format!("k{}", i % 2))),
            )) as ArrayRef,
        ),
        (
            Arc::new(Field::new("score", DataType::Int32, true)),
            Arc::new(Int32Array::from_iter(r.iter().map(|&i| Some(i as i32)))) as ArrayRef,
        ),
    ]);
    let year = Int64Array::from_iter(r.iter().map(|&i| (i % 4 != 3).then_some(1900 + i as i64)));
    let small = Int8Array::from_iter_values(r.iter().map(|&i| (i % 100) as i8 - 50));
    let mid = Int16Array::from_iter_values(r.iter().map(|&i| i as i16));
    let byte = UInt8Array::from_iter_values(r.iter().map(|&i| (i % 256) as u8));
    let big = UInt64Array::from_iter_values(r.iter().map(|&i| 1 << 40 | i as u64));
    let score = Float64Array::from_iter(r.iter().map(|&i| match i % 10 {
        0 => None,
        9 => Some(f64::NAN),
        _ => Some(i as f64 / 4.0),
    }));
    let ratio = Float32Array::from_iter_values(r.iter().map(|&i| i as f32 / 2.0));
    let price = Decimal128Array::from_iter_values(r.iter().map(|&i| 1000 + i as i128))
        .with_precision_and_scale(10, 2)
        .unwrap();
    let ok = BooleanArray::from_iter(r.iter().map(|i| (i % 7 != 6).then_some(i % 2 == 0)));
    let day = Date32Array::from_iter_values(r.iter().map(|&i| 18262 + i as i32));
    let at = TimestampMillisecondArray::from_iter_values(
        r.iter().map(|&i| 1_600_000_000_000 + i as i64),
    );
    // Named time zones are written as UTC instants.
    let paris = TimestampMicrosecondArray::from_iter_values(
        r.iter().map(|&i| 1_600_000_000_000_000 + i as i64),
    )
    .with_timezone("Europe/Paris");
    batch(vec![
        ("paris", Arc::new(paris)),
        ("id", Arc::new(ids)),
        ("text", Arc::new(text)),
        ("lang", Arc::new(lang)),
        ("source", Arc::new(source)),
        ("site", Arc::new(site)),
        ("tags", Arc::new(tags)),
        ("keys", Arc::new(keys)),
        ("pair", Arc::new(pair)),
        ("meta", Arc::new(meta)),
        ("year", Arc::new(year)),
        ("small", Arc::new(small)),
        ("mid", Arc::new(mid)),
        ("byte", Arc::new(byte)),
        ("big", Arc::new(big)),
        ("score", Arc::new(score)),
        ("ratio", Arc::new(ratio)),
        ("price", Arc::new(price)),
        ("ok", Arc::new(ok)),
        ("day", Arc::new(day)),
        ("at", Arc::new(at)),
    ])
}

fn every_type_batches() -> Vec<RecordBatch> {
    vec![every_type(0..25), every_type(25..N)]
}

/// Checks a corpus holding the rows of `every_type(0..N)`.
fn check_every_type(corpus: &Path) {
    assert_eq!(count(corpus, "*"), N as u64);
    for (k, l) in LANGS.iter().enumerate() {
        let want = (0..N).filter(|i| i % 3 == k).count() as u64;
        assert_eq!(count(corpus, &format!("lang = {l}")), want, "lang {l}");
    }
    for s in 0..4 {
        let want = (0..N).filter(|i| i % 5 != 0 && i % 4 == s).count() as u64;
        assert_eq!(count(corpus, &format!("source = src{s}")), want);
    }
    assert_eq!(count(corpus, "not source exists"), (N / 5) as u64);
    assert_eq!(count(corpus, "site = web"), (N / 2) as u64);
    assert_eq!(
        count(corpus, "tags = t"),
        (0..N).filter(|i| i % 6 != 5).count() as u64
    );
    assert_eq!(
        count(corpus, "tags = even"),
        (0..N).filter(|i| i % 6 != 5 && i % 2 == 0).count() as u64
    );
    assert_eq!(count(corpus, "keys = k1"), (N / 2) as u64);
    // A struct's members are queryable by dotted path, nulls missing.
    assert_eq!(
        count(corpus, "meta.kind = k1"),
        (0..N).filter(|i| i % 3 != 0 && i % 2 == 1).count() as u64
    );
    assert_eq!(
        count(corpus, "meta.kind exists"),
        (0..N).filter(|i| i % 3 != 0).count() as u64
    );
    assert_eq!(
        count(corpus, &format!("meta.score >= {}", N / 2)),
        (N - N / 2) as u64
    );
    assert_eq!(count(corpus, "pair = a"), N as u64);
    assert_eq!(count(corpus, "pair = c"), (N / 2) as u64);
    assert_eq!(
        count(corpus, "year >= 1930"),
        (30..N).filter(|i| i % 4 != 3).count() as u64
    );
    assert_eq!(count(corpus, "big > 1099511627775"), N as u64);
    assert_eq!(count(corpus, "small < 0"), 50);
    assert_eq!(count(corpus, "price >= 10.5"), (N - 50) as u64);
    assert_eq!(
        count(corpus, "score exists"),
        (0..N).filter(|i| i % 10 < 9 && i % 10 > 0).count() as u64
    );
    assert_eq!(
        count(corpus, "ok = true"),
        (0..N).filter(|i| i % 7 != 6 && i % 2 == 0).count() as u64
    );
    assert_eq!(
        count(corpus, "ok = false"),
        (0..N).filter(|i| i % 7 != 6 && i % 2 == 1).count() as u64
    );
    assert_eq!(count(corpus, "day = \"2020-01-01\""), 1);

    let docs = export(corpus);
    assert_eq!(docs.len(), N);
    for i in 0..N {
        let d = &docs[&format!("doc-{i}")];
        assert_eq!(d["text"].as_str(), Some(text_of(i).as_str()), "text of {i}");
        assert_eq!(d["lang"], LANGS[i % 3]);
        assert_eq!(d["year"].as_i64(), (i % 4 != 3).then_some(1900 + i as i64));
        assert_eq!(d["small"].as_i64(), Some((i % 100) as i64 - 50));
        assert_eq!(d["mid"].as_i64(), Some(i as i64));
        assert_eq!(d["byte"].as_u64(), Some(i as u64));
        assert_eq!(d["big"].as_u64(), Some(1 << 40 | i as u64));
        assert_eq!(d["ratio"].as_f64(), Some(i as f64 / 2.0));
        assert_eq!(d["price"].as_f64(), Some((1000 + i) as f64 / 100.0));
        match i % 10 {
            0 | 9 => assert!(d["score"].is_null(), "{d}"),
            _ => assert_eq!(d["score"].as_f64(), Some(i as f64 / 4.0)),
        }
        let mut tags = vec![];
        if i % 6 != 5 {
            tags.push("t");
            if i % 2 == 0 {
                tags.push("even");
            }
            assert_eq!(d["tags"], serde_json::json!(tags));
        } else {
            assert!(d.get("tags").is_none(), "{d}");
        }
        assert_eq!(d["meta"]["score"].as_i64(), Some(i as i64));
        assert_eq!(d["meta"].get("kind").is_some(), i % 3 != 0, "{d}");
        assert_eq!(d["ok"].as_bool(), (i % 7 != 6).then_some(i % 2 == 0));
        assert!(
            d["day"].as_str().is_some_and(|s| s.starts_with("2020-")),
            "{d}"
        );
        let paris = match i {
            0 => "2020-09-13T12:26:40Z".to_string(),
            _ => format!("2020-09-13T12:26:40.{i:06}Z"),
        };
        assert_eq!(d["paris"].as_str(), Some(paris.as_str()), "{d}");
        assert!(
            d["at"]
                .as_str()
                .is_some_and(|s| s.starts_with("2020-09-13T")),
            "{d}"
        );
    }
}

#[test]
fn every_type_ingests_with_its_counts_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("all.parquet");
    write_parquet(&p, &every_type_batches(), Compression::SNAPPY, 16);
    let corpus = tmp.path().join("c");
    cli_ok(&corpus, &["ingest", "--quiet", p.to_str().unwrap()]);
    check_every_type(&corpus);
    let log = cli_ok(&corpus, &["log"]);
    let len = std::fs::metadata(&p).unwrap().len();
    assert!(
        log.contains(&format!("all.parquet  {len} bytes  xxh3-128:")),
        "{log}"
    );
}

#[test]
fn every_codec_and_row_group_size_reads_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let codecs = [
        ("none", Compression::UNCOMPRESSED),
        ("zstd", Compression::ZSTD(ZstdLevel::try_new(3).unwrap())),
        ("snappy", Compression::SNAPPY),
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("lz4", Compression::LZ4_RAW),
        ("brotli", Compression::BROTLI(BrotliLevel::default())),
    ];
    for (k, (name, codec)) in codecs.into_iter().enumerate() {
        let p = tmp.path().join(format!("{name}.parquet"));
        write_parquet(&p, &every_type_batches(), codec, [7, 1, 1000, 25, 3, 60][k]);
        let corpus = tmp.path().join(format!("c-{name}"));
        let threads = ["16", "1"][k % 2];
        cli_ok(
            &corpus,
            &[
                "ingest",
                "--quiet",
                "--threads",
                threads,
                p.to_str().unwrap(),
            ],
        );
        check_every_type(&corpus);
    }
}

fn simple(rows: std::ops::Range<usize>) -> RecordBatch {
    let r: Vec<usize> = rows.collect();
    batch(vec![
        (
            "id",
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|i| format!("s{i}")),
            )) as ArrayRef,
        ),
        (
            "text",
            Arc::new(StringArray::from_iter_values(r.iter().map(|&i| text_of(i)))),
        ),
        (
            "lang",
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|i| LANGS[i % 3]),
            )),
        ),
    ])
}

/// A corpus holding one JSONL ingest (generation 1), and its `log`.
fn corpus_with_one_generation(tmp: &Path) -> (PathBuf, String) {
    let corpus = tmp.join("c");
    let j = tmp.join("a.jsonl");
    std::fs::write(&j, "{\"id\":\"j1\",\"text\":\"x\",\"lang\":\"en\"}\n").unwrap();
    cli_ok(&corpus, &["ingest", "--quiet", j.to_str().unwrap()]);
    let log = cli_ok(&corpus, &["log"]);
    (corpus, log)
}

fn assert_refused(corpus: &Path, before: &str, file: &Path, wants: &[&str]) {
    let o = cli(corpus, &["ingest", "--quiet", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "ingest of {} succeeded",
        file.display()
    );
    for w in wants {
        assert!(err.contains(w), "`{w}` not in: {err}");
    }
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert_eq!(
        cli_ok(corpus, &["log"]),
        before,
        "a generation was committed"
    );
    assert_eq!(count(corpus, "*"), 1);
    let segs = std::fs::read_dir(corpus)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("seg-")
        })
        .count();
    assert_eq!(segs, 1, "segments left behind");
}

#[test]
fn truncated_file_is_refused_and_nothing_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let (corpus, before) = corpus_with_one_generation(tmp.path());
    let p = tmp.path().join("full.parquet");
    write_parquet(&p, &[simple(0..40)], Compression::SNAPPY, 10);
    let bytes = std::fs::read(&p).unwrap();
    let cut = tmp.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(
        &corpus,
        &before,
        &cut,
        &["not a readable Parquet file", "truncated"],
    );
}

#[test]
fn corrupt_row_group_names_the_row_group_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let (corpus, before) = corpus_with_one_generation(tmp.path());
    let p = tmp.path().join("bad.parquet");
    write_parquet(
        &p,
        &[simple(0..40)],
        Compression::ZSTD(ZstdLevel::default()),
        10,
    );
    let meta = {
        let f = std::fs::File::open(&p).unwrap();
        parquet::file::reader::SerializedFileReader::new(f).unwrap()
    };
    use parquet::file::reader::FileReader;
    let col = meta.metadata().row_group(2).column(1);
    let (start, len) = col.byte_range();
    let mut bytes = std::fs::read(&p).unwrap();
    // Garble the compressed pages (past their headers) of `text` in row group 2.
    for b in &mut bytes[(start + len / 2) as usize..(start + len) as usize] {
        *b ^= 0x5a;
    }
    std::fs::write(&p, &bytes).unwrap();
    assert_refused(
        &corpus,
        &before,
        &p,
        &["row group 2 of 4 (rows 21-30)", "column `text`"],
    );
}

#[test]
fn missing_text_column_and_binary_column_are_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let (corpus, before) = corpus_with_one_generation(tmp.path());
    let p = tmp.path().join("body.parquet");
    let b = batch(vec![
        ("id", Arc::new(StringArray::from(vec!["b1"])) as ArrayRef),
        ("body", Arc::new(LargeStringArray::from(vec!["words"]))),
        ("n", Arc::new(Int64Array::from(vec![1]))),
    ]);
    write_parquet(&p, &[b], Compression::SNAPPY, 10);
    assert_refused(
        &corpus,
        &before,
        &p,
        &[
            "no column `text`",
            "string columns are: id, body",
            "--text-field",
        ],
    );
    // With --text-field it ingests.
    let c2 = tmp.path().join("c2");
    cli_ok(
        &c2,
        &[
            "ingest",
            "--quiet",
            "--text-field",
            "body",
            p.to_str().unwrap(),
        ],
    );
    assert_eq!(count(&c2, "n = 1"), 1);

    let p = tmp.path().join("bin.parquet");
    let b = batch(vec![
        ("text", Arc::new(StringArray::from(vec!["t"])) as ArrayRef),
        (
            "blob",
            Arc::new(BinaryArray::from(vec![b"\x00\x01".as_ref()])),
        ),
    ]);
    write_parquet(&p, &[b], Compression::SNAPPY, 10);
    assert_refused(
        &corpus,
        &before,
        &p,
        &["column `blob` has type Binary", "drop the column"],
    );

    // A column whose name holds NUL: every row would be rejected for it.
    let p = tmp.path().join("nul.parquet");
    let b = batch(vec![
        ("text", Arc::new(StringArray::from(vec!["t"])) as ArrayRef),
        ("a\0b", Arc::new(StringArray::from(vec!["v"]))),
    ]);
    write_parquet(&p, &[b], Compression::SNAPPY, 10);
    assert_refused(
        &corpus,
        &before,
        &p,
        &[r"field name `a\0b` contains a NUL character", "rename"],
    );
}

#[test]
fn parquet_on_stdin_is_refused_with_a_remedy() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("s.parquet");
    write_parquet(&p, &[simple(0..3)], Compression::SNAPPY, 10);
    let mut child = Command::new(bin())
        .arg("--corpus")
        .arg(tmp.path().join("c"))
        .args(["ingest", "--quiet", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let data = std::fs::read(&p).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The reader may stop early; a broken pipe is fine.
    let _ = stdin.write_all(&data);
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Parquet is read from a file"), "{err}");
}

/// Rows keep the file's order, whatever the number of decoding workers
/// (`--threads 16` gives four): a reject's line number is its row number.
#[test]
fn rejected_rows_are_reported_by_row_number() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("r.parquet");
    let bad = [3usize, 5, 23, 38, 40];
    let b = batch(vec![
        (
            "id",
            Arc::new(StringArray::from_iter_values(
                (1..=40).map(|i| format!("r{i}")),
            )) as ArrayRef,
        ),
        (
            "text",
            Arc::new(StringArray::from_iter(
                (1..=40).map(|i| (!bad.contains(&i)).then(|| format!("row {i}"))),
            )),
        ),
    ]);
    write_parquet(&p, &[b], Compression::SNAPPY, 3);
    for threads in ["1", "16"] {
        let corpus = tmp.path().join(format!("c{threads}"));
        let o = cli(
            &corpus,
            &["ingest", "--threads", threads, p.to_str().unwrap()],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        let rejected: Vec<String> = err
            .lines()
            .filter(|l| l.starts_with("rejected "))
            // The reason goes on to list the record's string fields.
            .map(|l| l.split(", and the record").next().unwrap_or(l).to_string())
            .collect();
        let want: Vec<String> = bad
            .iter()
            .map(|i| {
                format!(
                    "rejected {}:{i}: missing field `text` (the document text)",
                    p.display()
                )
            })
            .collect();
        assert_eq!(rejected, want, "{err}");
        assert_eq!(count(&corpus, "*"), 35);
        let out = cli_ok(&corpus, &["export", "*"]);
        for line in out.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let id = v["id"].as_str().unwrap();
            assert_eq!(v["text"].as_str().unwrap(), format!("row {}", &id[1..]));
        }
    }
}

/// The shared real corpus, converted here to Parquet (two codecs' worth of
/// row groups are not needed: zstd, 4,000 rows per group), answers the
/// truth file's queries.
#[test]
fn real_corpus_as_parquet_answers_the_truth_queries() {
    let (Some(src), Some(truth)) = (
        common::shared_file("realcorpus-dev.jsonl.zst"),
        common::shared_file("realcorpus-dev.truth.json"),
    ) else {
        return;
    };
    let truth: Value = serde_json::from_slice(&std::fs::read(truth).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("real.parquet");
    let fields = [
        "id",
        "text",
        "lang",
        "prog_lang",
        "license",
        "license_raw",
        "license_via",
        "source",
        "origin",
        "title",
    ];
    let schema = Arc::new(arrow_schema::Schema::new(
        fields
            .iter()
            .map(|f| Field::new(*f, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap()))
        .set_max_row_group_size(4000)
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(&p).unwrap(),
        schema.clone(),
        Some(props),
    )
    .unwrap();
    let reader = BufReader::new(
        zstd::stream::read::Decoder::new(std::fs::File::open(&src).unwrap()).unwrap(),
    );
    let mut cols: Vec<StringBuilder> = fields.iter().map(|_| StringBuilder::new()).collect();
    let mut rows = 0usize;
    let flush = |cols: &mut Vec<StringBuilder>, w: &mut ArrowWriter<std::fs::File>| {
        let arrays: Vec<ArrayRef> = cols
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        w.write(&RecordBatch::try_new(schema.clone(), arrays).unwrap())
            .unwrap();
    };
    for line in reader.lines() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        for (b, f) in cols.iter_mut().zip(fields) {
            b.append_option(v.get(f).and_then(|x| x.as_str()));
        }
        rows += 1;
        if rows.is_multiple_of(2000) {
            flush(&mut cols, &mut w);
        }
    }
    flush(&mut cols, &mut w);
    w.close().unwrap();
    assert_eq!(Some(rows as u64), truth["total"]["docs"].as_u64());

    let corpus = tmp.path().join("c");
    cli_ok(
        &corpus,
        &["ingest", "--quiet", "--threads", "12", p.to_str().unwrap()],
    );
    assert_eq!(count(&corpus, "*"), rows as u64);
    for q in truth["queries"].as_array().unwrap() {
        let text = q["query"].as_str().unwrap();
        assert_eq!(Some(count(&corpus, text)), q["docs"].as_u64(), "`{text}`");
    }
}

/// Every byte of a small Parquet file changed, one at a time at a stride,
/// and the file cut at many lengths: each ingest either commits or fails
/// with an error naming the file; none panics (exit 101) or dies of a
/// signal, and a failure commits nothing.
#[test]
fn mangled_files_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("good.parquet");
    let rows = every_type(0..N);
    write_parquet(&p, &[rows], Compression::ZSTD(Default::default()), 20);
    let good = std::fs::read(&p).unwrap();
    let mut variants: Vec<Vec<u8>> = Vec::new();
    let stride = (good.len() / 30).max(1);
    for (k, i) in (4..good.len()).step_by(stride).enumerate() {
        let mut b = good.clone();
        b[i] ^= [0xff, 0x01, 0x80][k % 3];
        variants.push(b);
    }
    // The footer (its length and the thrift metadata before it) densely.
    for i in good.len().saturating_sub(40)..good.len() - 4 {
        let mut b = good.clone();
        b[i] = b[i].wrapping_add(0x41);
        variants.push(b);
    }
    for cut in (8..good.len()).step_by(stride) {
        let mut b = good[..cut].to_vec();
        b.extend_from_slice(b"PAR1");
        variants.push(b);
    }
    for (n, b) in variants.iter().enumerate() {
        let f = tmp.path().join(format!("v{n}.parquet"));
        std::fs::write(&f, b).unwrap();
        let corpus = tmp.path().join(format!("c{n}"));
        let o = cli(&corpus, &["ingest", "--quiet", f.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        match o.status.code() {
            Some(0) | Some(1) => {}
            Some(2) => {
                assert!(err.contains(&f.display().to_string()), "variant {n}: {err}");
                // The corpus may have been created, empty: no document.
                if corpus.join("CURRENT").exists() {
                    assert_eq!(count(&corpus, "*"), 0, "variant {n} committed");
                }
            }
            other => panic!("variant {n}: exit {other:?}: {err}"),
        }
        std::fs::remove_file(&f).unwrap();
        let _ = std::fs::remove_dir_all(&corpus);
    }
}
