//! Damaged files: every section of a segment (and its header, section table
//! and footer) is truncated and has bytes flipped, on a fresh copy of a
//! corpus each time; the catalog is truncated and overwritten; segment files
//! go missing or are left over. Opening, querying, exporting, `get` and
//! `verify` must then fail with an error naming the damaged file, or (only
//! for damage inside a compressed block, which is checked when read) answer
//! exactly as the undamaged corpus does while refusing the damaged block.
//! Nothing may panic and no answer may be wrong.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use corpusql::raw::export::{write_jsonl, Projection};
use corpusql::raw::format::{self, section};
use corpusql::raw::maintain::{verify, VerifyReport};
use corpusql::raw::segment::Segment;
use corpusql::{ingest, Corpus, IngestOptions, Input};

const QUERIES: &[&str] = &[
    "*",
    "lang = fr",
    "lang in (en, de) and year >= 2000",
    "not lang = en",
    "src = web/*",
    "src != books/fiction",
    "tags = a?c or tags exists",
    "year < 1990 or q > 0.5",
    "bytes > 1200",
    "id = k00017",
    "id = k001*",
];

/// A few hundred documents; long enough texts that the first segment holds
/// several blocks.
fn corpus_lines(n: usize) -> String {
    let langs = ["fr", "en", "de", "es"];
    let srcs = ["web/a", "web/b-2", "books/fiction", "code.c"];
    let tags = ["abc", "adc", "x-y", "z"];
    let mut s = String::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let words = 300 + (x % 300) as usize;
        let mut text = String::with_capacity(words * 8);
        let mut y = x;
        for w in 0..words {
            y = y
                .wrapping_mul(6364136223846793005)
                .wrapping_add(w as u64 | 1);
            text.push_str(
                ["lorem", "ipsum", "dolor", "été", "中文", "sit", "amet"][(y >> 60) as usize % 7],
            );
            text.push_str(&format!("{} ", (y >> 40) % 1000));
        }
        let mut rec = serde_json::json!({
            "id": format!("k{i:05}"),
            "text": text,
            "lang": langs[i % 4],
            "src": srcs[(i / 3) % 4],
            "year": 1950 + (x % 70) as i64,
            "tags": [tags[i % 4], tags[(i / 4) % 4]],
        });
        if i % 5 != 0 {
            rec["q"] = serde_json::json!(((x >> 8) % 1000) as f64 / 1000.0 - 0.25);
        }
        s.push_str(&rec.to_string());
        s.push('\n');
    }
    s
}

fn build_corpus(dir: &Path) {
    let lines = corpus_lines(400);
    let opts = IngestOptions {
        segment_bytes: 1_000_000,
        ..IngestOptions::default()
    };
    let input = Input::Reader("gen.jsonl".into(), Box::new(std::io::Cursor::new(lines)));
    let r = ingest(dir, vec![input], &opts).unwrap();
    assert_eq!(r.ingested, 400);
    let c = Corpus::open(dir).unwrap();
    assert!(c.segments().len() >= 2, "{} segments", c.segments().len());
    assert!(
        c.segments()[0].segment.blocks().len() >= 2,
        "first segment has {} blocks",
        c.segments()[0].segment.blocks().len()
    );
}

fn copy_dir(from: &Path, to: &Path) {
    copy_dir_linking(from, to, None);
}

/// Copies a corpus directory; files other than the catalog and `fresh` are
/// hard-linked when possible (nothing here writes to a segment in place).
fn copy_dir_linking(from: &Path, to: &Path, fresh: Option<&str>) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if !e.file_type().unwrap().is_file() {
            continue;
        }
        let name = e.file_name();
        let dst = to.join(&name);
        let copy = fresh.is_none()
            || name == corpusql::raw::catalog::CATALOG_FILE
            || Some(name.to_string_lossy().as_ref()) == fresh;
        if copy || std::fs::hard_link(e.path(), &dst).is_err() {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// What the undamaged corpus answers.
struct Baseline {
    counts: Vec<u64>,
    export: Vec<u8>,
    docs: BTreeMap<String, Vec<u8>>,
}

fn export_all(c: &Corpus) -> corpusql::Result<Vec<u8>> {
    let mut out = Vec::new();
    write_jsonl(&c.all(), &Projection::All, &mut out)?;
    Ok(out)
}

fn baseline(dir: &Path) -> Baseline {
    let c = Corpus::open(dir).unwrap();
    let counts = QUERIES
        .iter()
        .map(|q| c.query(q).unwrap().count())
        .collect();
    let export = export_all(&c).unwrap();
    let mut docs = BTreeMap::new();
    for d in c.all().documents() {
        let d = d.unwrap();
        docs.insert(d.key, d.json);
    }
    assert_eq!(docs.len() as u64, c.len());
    Baseline {
        counts,
        export,
        docs,
    }
}

/// What a damaged copy answered; every call made under `catch_unwind`.
#[derive(Default)]
struct Observed {
    open: Option<Result<(), String>>,
    queries: Vec<Result<u64, String>>,
    export: Option<Result<Vec<u8>, String>>,
    gets: BTreeMap<String, Result<Option<Vec<u8>>, String>>,
    verify: Option<Result<VerifyReport, String>>,
}

fn observe(dir: &Path, keys: &[String]) -> Result<Observed, String> {
    let mut o = Observed::default();
    catch_unwind(AssertUnwindSafe(|| {
        match Corpus::open(dir) {
            Err(e) => o.open = Some(Err(e.to_string())),
            Ok(c) => {
                o.open = Some(Ok(()));
                for q in QUERIES {
                    o.queries
                        .push(c.query(q).map(|s| s.count()).map_err(|e| e.to_string()));
                }
                o.export = Some(export_all(&c).map_err(|e| e.to_string()));
                for k in keys {
                    let r = c
                        .get(k)
                        .map(|d| d.map(|d| d.json))
                        .map_err(|e| e.to_string());
                    o.gets.insert(k.clone(), r);
                }
            }
        }
        o.verify = Some(verify(dir).map_err(|e| e.to_string()));
    }))
    .map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("PANIC: {msg}")
    })?;
    Ok(o)
}

/// The regions of a segment file: (name, start, end). Format 2 (written
/// today) ends in the footer and the frame trailer; format 1 in a 32-byte
/// footer.
fn regions(path: &Path) -> Vec<(String, usize, usize)> {
    let b = std::fs::read(path).unwrap();
    let version = u16::from_le_bytes([b[8], b[9]]);
    let (footer_at, tail) = if version == 1 {
        (b.len() - format::v1::FOOTER_LEN, None)
    } else {
        assert_eq!(version, format::SEGMENT_VERSION);
        let t = b.len() - format::TRAILER_LEN;
        (t - format::SEGMENT_FOOTER_LEN, Some(t))
    };
    let f = &b[footer_at..];
    let u64_at = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap());
    let u32_at = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().unwrap());
    let table_off = u64_at(f, format::FOOTER_TABLE_OFFSET) as usize;
    let nsec = u32_at(f, format::FOOTER_SECTION_COUNT) as usize;
    assert_eq!(nsec, section::ALL.len());
    let table_end = table_off + nsec * format::SECTION_ENTRY_LEN;
    assert_eq!(table_end, footer_at);
    let mut out = vec![("header".to_string(), 0, format::HEADER_LEN)];
    for i in 0..nsec {
        let e = &b[table_off + i * format::SECTION_ENTRY_LEN..];
        let id = u32_at(e, 0);
        let off = u64_at(e, 8) as usize;
        let len = u64_at(e, 16) as usize;
        assert!(len > 0, "section {} empty", section::name(id));
        out.push((section::name(id).to_string(), off, off + len));
    }
    out.push(("table".into(), table_off, table_end));
    match tail {
        None => out.push(("footer".into(), table_end, b.len())),
        Some(t) => {
            out.push(("footer".into(), table_end, t));
            // Each trailer field: payload length, CRC32C, version, reserved, magic.
            let fields = [
                (
                    "trailer length",
                    format::TRAILER_PAYLOAD_LEN,
                    format::TRAILER_CRC,
                ),
                ("trailer crc", format::TRAILER_CRC, format::TRAILER_VERSION),
                (
                    "trailer version",
                    format::TRAILER_VERSION,
                    format::TRAILER_RESERVED,
                ),
                (
                    "trailer reserved",
                    format::TRAILER_RESERVED,
                    format::TRAILER_MAGIC,
                ),
                ("trailer magic", format::TRAILER_MAGIC, format::TRAILER_LEN),
            ];
            for (name, a, z) in fields {
                out.push((name.into(), t + a, t + z));
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
}

fn apply(path: &Path, m: &Mutation) {
    match m {
        Mutation::Truncate(at) => {
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(*at as u64).unwrap();
        }
        Mutation::Flip(at, mask) => {
            let mut b = std::fs::read(path).unwrap();
            b[*at] ^= mask;
            std::fs::write(path, b).unwrap();
        }
    }
}

/// The keys whose documents live in the block covering file offset `at`.
fn keys_of_block_at(seg: &Segment, at: usize) -> Vec<String> {
    let Some(bi) = seg
        .blocks()
        .iter()
        .position(|b| (b.offset as usize..b.offset as usize + b.len as usize).contains(&at))
    else {
        return Vec::new();
    };
    let b = seg.blocks()[bi];
    let mut out = Vec::new();
    let mut s = seg.key_stream();
    use fst::Streamer;
    while let Some((k, o)) = s.next() {
        let o = o as u32;
        if o >= b.first_doc && o < b.first_doc + b.docs {
            out.push(String::from_utf8(k.to_vec()).unwrap());
        }
    }
    out
}

fn verify_flags_segment(
    v: &Option<Result<VerifyReport, String>>,
    file: &str,
) -> Result<(), String> {
    match v {
        None => Err("verify not run".into()),
        Some(Err(e)) if e.contains(file) => Ok(()),
        Some(Err(e)) => Err(format!("verify error does not name {file}: {e}")),
        Some(Ok(r)) => {
            let s = r
                .segments
                .iter()
                .find(|s| s.file == file)
                .ok_or_else(|| format!("verify does not list {file}"))?;
            match &s.error {
                Some(_) if !r.ok() => Ok(()),
                _ => Err(format!("verify reports {file} as fine: {r:?}")),
            }
        }
    }
}

/// Judges one outcome. `block_keys` is `Some` for a byte flipped inside the
/// BLOCKS section (the keys of the damaged block).
fn judge(
    o: &Observed,
    base: &Baseline,
    file: &str,
    block_keys: Option<&[String]>,
) -> Result<(), String> {
    let names = |e: &str| -> Result<(), String> {
        if e.contains(file) {
            Ok(())
        } else {
            Err(format!("error does not name {file}: {e}"))
        }
    };
    match (&o.open, block_keys) {
        (None, _) => return Err("open not run".into()),
        (Some(Err(e)), _) => names(e)?,
        (Some(Ok(())), None) => return Err("open succeeded on a damaged segment".into()),
        (Some(Ok(())), Some(bad)) => {
            for (q, (r, want)) in QUERIES.iter().zip(o.queries.iter().zip(&base.counts)) {
                match r {
                    Ok(n) if n == want => {}
                    Ok(n) => return Err(format!("`{q}` counted {n}, expected {want}")),
                    Err(e) => names(e)?,
                }
            }
            match &o.export {
                Some(Ok(out)) if !bad.is_empty() => {
                    return Err(format!(
                        "export succeeded ({} bytes) despite a damaged block",
                        out.len()
                    ))
                }
                Some(Ok(out)) if *out != base.export => return Err("export differs".into()),
                Some(Ok(_)) => {}
                Some(Err(e)) => names(e)?,
                None => return Err("export not run".into()),
            }
            for (k, r) in &o.gets {
                match r {
                    Ok(Some(j)) if bad.contains(k) => {
                        return Err(format!("get {k} from a damaged block succeeded: {j:?}"))
                    }
                    Ok(Some(j)) if Some(j) != base.docs.get(k) => {
                        return Err(format!("get {k} returned a different record"))
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return Err(format!("get {k} found nothing")),
                    Err(e) if bad.contains(k) => names(e)?,
                    Err(e) => return Err(format!("get {k} (an undamaged block) failed: {e}")),
                }
            }
        }
    }
    verify_flags_segment(&o.verify, file)
}

/// Mutations of one segment file: truncations and byte flips per region.
fn mutations(path: &Path) -> Vec<(String, Mutation)> {
    let len = std::fs::metadata(path).unwrap().len() as usize;
    let mut out = Vec::new();
    let mut cuts = std::collections::BTreeSet::from([0usize, 1, 8, len - 1, len - 4]);
    for (name, start, end) in regions(path) {
        for at in [start, start + (end - start) / 2, end - 1] {
            if at < len && cuts.insert(at) {
                out.push((format!("{name}: truncate at {at}"), Mutation::Truncate(at)));
            }
        }
        let mut flips = vec![
            start,
            end - 1,
            start + (end - start) / 2,
            start + (end - start) / 3,
        ];
        if end - start > 8 {
            flips.push(start + 1);
            flips.push(end - 2);
        }
        flips.sort();
        flips.dedup();
        for (i, at) in flips.into_iter().enumerate() {
            for mask in [0x01u8, [0x80, 0xFF, 0x10, 0x42][i % 4]] {
                out.push((
                    format!("{name}: flip {mask:#04x} at {at}"),
                    Mutation::Flip(at, mask),
                ));
            }
        }
    }
    for at in cuts.clone() {
        if !out
            .iter()
            .any(|(_, m)| matches!(m, Mutation::Truncate(x) if *x == at))
            && at < len
        {
            out.push((format!("truncate at {at}"), Mutation::Truncate(at)));
        }
    }
    out
}

#[test]
fn damaged_segments_fail_loudly_and_never_lie() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    build_corpus(&orig);
    let base = baseline(&orig);
    let keys: Vec<String> = base.docs.keys().cloned().collect();
    let state = Corpus::open(&orig).unwrap().state().clone();
    let mut failures = Vec::new();
    let mut tried = 0;
    for entry in &state.segments {
        let src = orig.join(&entry.file);
        let seg = Segment::open(&src).unwrap();
        let blocks = seg
            .sections()
            .iter()
            .find(|s| s.id == section::BLOCKS)
            .copied()
            .unwrap();
        for (what, m) in mutations(&src) {
            tried += 1;
            let work = tmp.path().join(format!("work-{tried}"));
            copy_dir_linking(&orig, &work, Some(&entry.file));
            apply(&work.join(&entry.file), &m);
            let block_keys = match m {
                Mutation::Flip(at, _)
                    if (blocks.offset as usize..(blocks.offset + blocks.len) as usize)
                        .contains(&at) =>
                {
                    Some(keys_of_block_at(&seg, at))
                }
                _ => None,
            };
            // `get` every document of the damaged block and a sample of the others.
            let probe: Vec<String> = keys
                .iter()
                .enumerate()
                .filter(|(i, k)| i % 16 == 0 || block_keys.as_ref().is_some_and(|b| b.contains(k)))
                .map(|(_, k)| k.clone())
                .collect();
            let verdict = observe(&work, &probe)
                .and_then(|o| judge(&o, &base, &entry.file, block_keys.as_deref()));
            if let Err(e) = verdict {
                failures.push(format!("{} {what}: {e}", entry.file));
            }
            std::fs::remove_dir_all(&work).unwrap();
        }
    }
    assert!(tried > 100, "only {tried} mutations");
    assert!(
        failures.is_empty(),
        "{} of {tried} mutations misbehaved:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A flipped byte in the header's flags field (no checksum covers the
/// header): `Segment::open` must refuse unknown flags.
#[test]
fn damaged_header_flags_are_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    build_corpus(&orig);
    let base = baseline(&orig);
    let keys: Vec<String> = base.docs.keys().cloned().collect();
    let state = Corpus::open(&orig).unwrap().state().clone();
    let file = &state.segments[0].file;
    let work = tmp.path().join("work");
    copy_dir(&orig, &work);
    apply(
        &work.join(file),
        &Mutation::Flip(format::HEADER_FLAGS_OFFSET, 0x01),
    );
    let o = observe(&work, &keys).unwrap();
    judge(&o, &base, file, None).unwrap();
}

fn counts(dir: &Path) -> Vec<u64> {
    let c = Corpus::open(dir).unwrap();
    QUERIES
        .iter()
        .map(|q| c.query(q).unwrap().count())
        .collect()
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seg-"))
        .collect();
    v.sort();
    v
}

type CatalogDamage = Box<dyn Fn(&Path)>;

/// One way of damaging `catalog.redb`; `detect`: the damage must not go
/// unnoticed (open fails once `CURRENT` is gone, verify flags it).
struct CatalogCase {
    what: String,
    damage: CatalogDamage,
    detect: bool,
}

fn truncate_catalog(at: usize) -> CatalogCase {
    CatalogCase {
        what: format!("truncate at {at}"),
        damage: Box::new(move |p: &Path| {
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(at as u64).unwrap();
        }),
        detect: true,
    }
}

fn flip_catalog(at: usize, mask: u8) -> CatalogCase {
    CatalogCase {
        what: format!("flip {mask:#04x} at {at}"),
        damage: Box::new(move |p: &Path| {
            let mut b = std::fs::read(p).unwrap();
            b[at] ^= mask;
            std::fs::write(p, b).unwrap();
        }),
        detect: false,
    }
}

/// Flips the first byte after the first occurrence of `pat` plus `skip`.
fn flip_after(what: &str, pat: Vec<u8>, skip: usize) -> CatalogCase {
    CatalogCase {
        what: what.to_string(),
        damage: Box::new(move |p: &Path| {
            let mut b = std::fs::read(p).unwrap();
            let hits: Vec<usize> = (0..b.len() - pat.len())
                .filter(|&i| b[i..i + pat.len()] == pat[..])
                .collect();
            assert!(!hits.is_empty(), "pattern not found in the catalog");
            for h in hits {
                b[h + skip] ^= 0x02;
            }
            std::fs::write(p, b).unwrap();
        }),
        detect: true,
    }
}

/// Applies each damage to a fresh copy of a corpus's catalog, with its
/// `CURRENT` manifest kept and removed, opens, queries and verifies. Returns
/// what misbehaved: a panic, a wrong count, an error not naming the catalog,
/// and, for detectable damage, an open without `CURRENT` that succeeded or a
/// verify that says ok.
fn catalog_failures(dir: &Path, cases: Vec<CatalogCase>) -> Vec<String> {
    let base = baseline(dir);
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        for keep_current in [true, false] {
            let what = format!(
                "{} ({})",
                case.what,
                if keep_current {
                    "CURRENT kept"
                } else {
                    "CURRENT removed"
                }
            );
            let work = tmp.path().join(format!("cat-{i}-{keep_current}"));
            copy_dir(dir, &work);
            (case.damage)(&work.join(corpusql::raw::catalog::CATALOG_FILE));
            if !keep_current {
                let _ = std::fs::remove_file(work.join(corpusql::raw::catalog::CURRENT_FILE));
            }
            let r = catch_unwind(AssertUnwindSafe(|| {
                let open = Corpus::open(&work).map(|c| {
                    QUERIES
                        .iter()
                        .map(|q| c.query(q).map(|s| s.count()).map_err(|e| e.to_string()))
                        .collect::<Vec<_>>()
                });
                let v = verify(&work).map(|r| r.ok());
                (
                    open.map_err(|e| e.to_string()),
                    v.map_err(|e| e.to_string()),
                )
            }));
            let Ok((open, v)) = r else {
                failures.push(format!("{what}: panic"));
                continue;
            };
            match open {
                Ok(counts) => {
                    for (q, (got, want)) in QUERIES.iter().zip(counts.iter().zip(&base.counts)) {
                        match got {
                            Ok(n) if n == want => {}
                            Ok(n) => {
                                failures.push(format!("{what}: `{q}` counted {n}, not {want}"))
                            }
                            Err(e) if e.contains("catalog.redb") => {}
                            Err(e) => failures.push(format!("{what}: `{q}`: {e}")),
                        }
                    }
                    if case.detect && !keep_current {
                        failures.push(format!("{what}: open succeeded"));
                    }
                }
                Err(e) => {
                    if !e.contains("catalog.redb") {
                        failures.push(format!("{what}: error does not name the catalog: {e}"));
                    }
                }
            }
            match v {
                Ok(true) if case.detect => failures.push(format!("{what}: verify says ok")),
                Ok(_) => {}
                Err(e) if !e.contains("catalog.redb") && case.detect => failures.push(format!(
                    "{what}: verify error does not name the catalog: {e}"
                )),
                Err(_) => {}
            }
            std::fs::remove_dir_all(&work).unwrap();
        }
    }
    failures
}

fn catalog_len(dir: &Path) -> usize {
    std::fs::metadata(dir.join(corpusql::raw::catalog::CATALOG_FILE))
        .unwrap()
        .len() as usize
}

/// Truncations (including those that trip asserts inside redb, which the
/// catalog must turn into errors), garbage and a file that is not a
/// database: an error naming the catalog (or, while `CURRENT` is intact,
/// correct answers), never a panic, and verify flags it.
#[test]
fn damaged_catalog_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    build_corpus(&dir);
    let len = catalog_len(&dir);
    let mut cases: Vec<CatalogCase> = [0, 1, 16, 100, 512, 4096, len / 2, len - 1]
        .into_iter()
        .filter(|&at| at < len)
        .map(truncate_catalog)
        .collect();
    cases.push(CatalogCase {
        what: "garbage header".into(),
        damage: Box::new(|p: &Path| {
            let mut b = std::fs::read(p).unwrap();
            for x in b.iter_mut().take(64) {
                *x = 0xA5;
            }
            std::fs::write(p, b).unwrap();
        }),
        detect: true,
    });
    cases.push(CatalogCase {
        what: "not a database".into(),
        damage: Box::new(|p: &Path| std::fs::write(p, b"hello, I am not redb\n").unwrap()),
        detect: true,
    });
    let failures = catalog_failures(&dir, cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Single flipped bytes across the catalog file (redb's header and commit
/// slots, unused space, data pages), and flips inside the stored values (a
/// segment's file name, a tombstone bitmap): never a panic, never a wrong
/// count; damage to values must be detected.
#[test]
fn catalog_byte_flips_never_panic_nor_lie() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    build_corpus(&dir);
    // One tombstone, so that the catalog holds a bitmap.
    let (n, _) = corpusql::raw::maintain::delete(&dir, "id = k00017").unwrap();
    assert_eq!(n, 1);
    let ord = {
        let c = Corpus::open(&dir).unwrap();
        c.state().tombstones.values().next().unwrap().min().unwrap()
    };
    let len = catalog_len(&dir);
    let mut offsets = vec![0usize, 9, 20, 40, 64, 80, 200, 600, 1000, 4106, 8292, 16391];
    offsets.extend((1..16).map(|i| len * i / 16));
    offsets.push(len - 10);
    let mut cases: Vec<CatalogCase> = Vec::new();
    for at in offsets.into_iter().filter(|&at| at < len) {
        for mask in [0x01u8, 0xFF] {
            cases.push(flip_catalog(at, mask));
        }
    }
    for k in 0..4 {
        cases.push(flip_after(
            &format!("flip in a segment name (+{k})"),
            b"seg-0000000001.cqs".to_vec(),
            5 + 4 * k,
        ));
    }
    // The portable serialization of the bitmap {ord}: cookie, one
    // container, key 0, cardinality 1, its offset (16), then the value.
    let mut bitmap = vec![0x3A, 0x30, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0];
    bitmap.extend_from_slice(&(ord as u16).to_le_bytes());
    cases.push(flip_after("flip in a tombstone bitmap", bitmap, 16));
    let failures = catalog_failures(&dir, cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `CURRENT` (the readers' copy of the catalog state) truncated, flipped or
/// removed: readers fall back to the database and answer correctly.
#[test]
fn damaged_current_manifest_falls_back_to_the_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    build_corpus(&orig);
    corpusql::raw::maintain::delete(&orig, "lang = de and year < 1980").unwrap();
    let base = baseline(&orig);
    let cur = orig.join(corpusql::raw::catalog::CURRENT_FILE);
    let len = std::fs::metadata(&cur).unwrap().len() as usize;
    let mut muts: Vec<Option<Mutation>> = vec![None];
    for at in [0, 8, 12, 16, len / 2, len - 1] {
        muts.push(Some(Mutation::Truncate(at)));
        muts.push(Some(Mutation::Flip(at, 0x04)));
    }
    let mut failures = Vec::new();
    for (i, m) in muts.iter().enumerate() {
        let work = tmp.path().join(format!("cur-{i}"));
        copy_dir(&orig, &work);
        let path = work.join(corpusql::raw::catalog::CURRENT_FILE);
        match m {
            None => std::fs::remove_file(&path).unwrap(),
            Some(m) => apply(&path, m),
        }
        let r = catch_unwind(AssertUnwindSafe(|| {
            let c = Corpus::open(&work).map_err(|e| e.to_string())?;
            let counts: Vec<u64> = QUERIES
                .iter()
                .map(|q| c.query(q).map(|s| s.count()))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            let export = export_all(&c).map_err(|e| e.to_string())?;
            Ok::<_, String>((counts, export))
        }));
        match r {
            Err(_) => failures.push(format!("{m:?}: panic")),
            Ok(Err(e)) => failures.push(format!("{m:?}: {e}")),
            Ok(Ok((counts, export))) => {
                if counts != base.counts || export != base.export {
                    failures.push(format!("{m:?}: wrong answers {counts:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn missing_segment_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    build_corpus(&dir);
    let state = Corpus::open(&dir).unwrap().state().clone();
    let file = &state.segments[1].file;
    std::fs::remove_file(dir.join(file)).unwrap();
    let e = Corpus::open(&dir).unwrap_err().to_string();
    assert!(e.contains(file.as_str()), "{e}");
    let v = verify(&dir).unwrap();
    assert!(!v.ok());
    let s = v.segments.iter().find(|s| s.file == *file).unwrap();
    assert!(s.error.is_some(), "{v:?}");
}

#[test]
fn orphan_files_are_collected_on_open_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    build_corpus(&dir);
    let base = baseline(&dir);
    let listed = segment_files(&dir);
    let orphans: Vec<PathBuf> = vec![
        dir.join("seg-9999999999.cqs"),
        dir.join("seg-0000000077.cqs.tmp"),
        dir.join("seg-0000000078.cqs"),
    ];
    // A complete copy of a live segment, a half-written temporary, and junk.
    std::fs::copy(dir.join(&listed[0]), &orphans[0]).unwrap();
    let b = std::fs::read(dir.join(&listed[1])).unwrap();
    std::fs::write(&orphans[1], &b[..b.len() / 2]).unwrap();
    std::fs::write(&orphans[2], b"junk").unwrap();
    let unrelated = dir.join("notes.txt");
    std::fs::write(&unrelated, b"keep me").unwrap();

    // While a writer holds the lock, open leaves the files alone.
    {
        let _lock = corpusql::raw::corpus::WriteLock::acquire(&dir).unwrap();
        assert_eq!(counts(&dir), base.counts);
        for p in &orphans {
            assert!(p.exists(), "{} removed under a writer's lock", p.display());
        }
    }
    // Without a writer, open removes them; answers are unchanged.
    let c = Corpus::open(&dir).unwrap();
    for p in &orphans {
        assert!(!p.exists(), "{} not collected", p.display());
    }
    assert!(unrelated.exists());
    assert_eq!(segment_files(&dir), listed);
    assert_eq!(export_all(&c).unwrap(), base.export);
    assert_eq!(counts(&dir), base.counts);
    assert!(verify(&dir).unwrap().ok());
}

#[test]
fn a_current_that_cannot_be_rewritten_is_removed_not_left_stale() {
    // The commit lands in the catalog database; when CURRENT cannot be
    // rewritten afterwards (here its temporary name is taken by a
    // directory), the old CURRENT must go so readers do not see the
    // previous generation.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    build_corpus(&dir);
    let before = Corpus::open(&dir).unwrap();
    let n = before.query("*").unwrap().count();
    let g = before.generation();
    assert!(dir.join("CURRENT").is_file());
    std::fs::create_dir(dir.join("CURRENT.tmp")).unwrap();
    let (deleted, g2) = corpusql::raw::maintain::delete(&dir, "id = k00017").unwrap();
    assert_eq!((deleted, g2), (1, g + 1));
    assert!(!dir.join("CURRENT").exists(), "stale CURRENT left behind");
    let after = Corpus::open(&dir).unwrap();
    assert_eq!(after.generation(), g + 1);
    assert_eq!(after.query("*").unwrap().count(), n - 1);
}

/// Every truncation and every flipped bit of a framed tag sidecar and
/// token-count file (the golden ones, `tests/data/golden-frames/`) is
/// refused: the sidecar's meta or its `verify` fails, the token-count file
/// does not decode. Never a panic, never a wrong value.
#[test]
fn damaged_sidecar_and_token_count_frames_are_refused() {
    use corpusql::raw::schema::FieldKind;
    use corpusql::raw::segment::sidecar::Sidecar;
    let frames = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-frames");
    let tmp = tempfile::tempdir().unwrap();

    let p = tmp.path().join("seg-0000000001.tag-golden-1.cqt");
    let names: Vec<(String, FieldKind)> = vec![
        ("score".into(), FieldKind::Number),
        ("label".into(), FieldKind::Facet),
        ("flag".into(), FieldKind::Bool),
    ];
    let sidecar_reads = |bytes: &[u8]| -> corpusql::Result<()> {
        std::fs::write(&p, bytes).unwrap();
        let s = Sidecar::open(&p, names.clone())?;
        s.meta()?;
        s.verify()
    };
    let good = std::fs::read(frames.join("sidecar-v2.cqt")).unwrap();
    sidecar_reads(&good).unwrap();
    for n in 0..good.len() {
        assert!(sidecar_reads(&good[..n]).is_err(), "sidecar cut at {n}");
    }
    for at in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[at] ^= 1 << bit;
            assert!(sidecar_reads(&bad).is_err(), "sidecar: bit {bit} at {at}");
        }
    }

    let p = tmp.path().join("seg-0000000001.tok-hf-0.cqc");
    let good = std::fs::read(frames.join("counts-v2.cqc")).unwrap();
    let counts = |b: &[u8]| corpusql::raw::tokenize::decode_counts(&p, b, 8);
    counts(&good).unwrap();
    for n in 0..good.len() {
        let e = counts(&good[..n]).unwrap_err().to_string();
        assert!(
            e.contains("delete it to recompute"),
            "counts cut at {n}: {e}"
        );
    }
    for at in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[at] ^= 1 << bit;
            assert!(counts(&bad).is_err(), "counts: bit {bit} at {at}");
        }
    }
}
