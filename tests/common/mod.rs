//! Helpers shared by the integration tests: where the shared test data lives,
//! a self-contained SHA-256 (for the truth file's id hashes), ingesting bytes,
//! exporting a selection, reading JSONL back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use corpusql::raw::export::{write_jsonl, Projection};
use corpusql::{ingest, Corpus, IngestOptions, IngestReport, Input, Selection};

/// `../shared/data` next to the crate, when present.
pub fn shared_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if p.is_dir() {
        Some(p)
    } else {
        None
    }
}

/// The shared data file `name`, or `None` after printing a visible skip notice.
pub fn shared_file(name: &str) -> Option<PathBuf> {
    match shared_data().map(|d| d.join(name)) {
        Some(p) if p.is_file() => Some(p),
        _ => {
            eprintln!("SKIPPED: ../shared/data absent (no {name})");
            None
        }
    }
}

/// The committed test data under `tests/data`.
pub fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// SHA-256 of `data` as lowercase hex (FIPS 180-4; tests need no extra crate).
pub fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    let mut w = [0u32; 64];
    for block in msg.chunks_exact(64) {
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// The truth file's id hash: SHA-256 of the ids sorted bytewise and joined
/// by `\n` (no trailing newline). Pinned against the truth's total hash.
pub fn ids_sha256<S: AsRef<str>>(ids: &[S]) -> String {
    let mut v: Vec<&str> = ids.iter().map(|s| s.as_ref()).collect();
    v.sort_unstable();
    sha256_hex(v.join("\n").as_bytes())
}

/// Ingests `data` (any bytes, named `name`) into `dir`.
pub fn ingest_bytes(
    dir: &Path,
    name: &str,
    data: &[u8],
    opts: &IngestOptions,
) -> corpusql::Result<IngestReport> {
    let input = Input::Reader(name.into(), Box::new(std::io::Cursor::new(data.to_vec())));
    ingest(dir, vec![input], opts)
}

/// Exports `sel` (whole records) as JSONL bytes.
pub fn export_bytes(sel: &Selection) -> Vec<u8> {
    let mut out = Vec::new();
    let n = write_jsonl(sel, &Projection::All, &mut out).expect("export");
    assert_eq!(n, sel.count(), "write_jsonl reports what it wrote");
    out
}

/// Parses JSONL into values (every non-empty line must be JSON).
pub fn parse_jsonl(bytes: &[u8]) -> Vec<serde_json::Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(l)))
        })
        .collect()
}

/// Exported records of `sel` keyed by their `id` field.
pub fn export_by_id(sel: &Selection) -> BTreeMap<String, serde_json::Value> {
    parse_jsonl(&export_bytes(sel))
        .into_iter()
        .map(|v| {
            let id = match &v["id"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (id, v)
        })
        .collect()
}

/// The keys of `sel`, in storage order.
pub fn keys(sel: &Selection) -> Vec<String> {
    sel.documents().map(|d| d.expect("read").key).collect()
}

/// `corpus.query(q)` count, panicking with the query on error.
pub fn count(corpus: &Corpus, q: &str) -> u64 {
    corpus
        .query(q)
        .unwrap_or_else(|e| panic!("query `{q}`: {e}"))
        .count()
}

/// Copies the corpus files of `from` (catalog and segments, not the lock)
/// into `to`.
pub fn copy_corpus(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        let name = name.to_str().unwrap();
        if name == corpusql::raw::corpus::LOCK_FILE || !e.file_type().unwrap().is_file() {
            continue;
        }
        std::fs::copy(e.path(), to.join(name)).unwrap();
    }
}

/// Segment files in `dir`, sorted.
pub fn segment_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("seg-"))
        .collect();
    v.sort();
    v
}

#[test]
fn sha256_known_answers() {
    let cases: [(&[u8], &str); 5] = [
        (
            b"",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            b"abc",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            &[b'a'; 1000],
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3",
        ),
        (
            &[b'x'; 55],
            "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072",
        ),
        (
            &[b'x'; 64],
            "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c",
        ),
    ];
    for (data, want) in cases {
        assert_eq!(sha256_hex(data), want, "sha256 of {} bytes", data.len());
    }
}

/// Writes `docs` generated demo documents (`corpusql demo --jsonl`, seed
/// `seed`) to `path`, each key prefixed by `key_prefix`, and returns `path`.
pub fn demo_jsonl(path: &Path, docs: u32, seed: u32, key_prefix: &str) -> PathBuf {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_corpusql"))
        .args([
            "demo",
            "--docs",
            &docs.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .arg("--jsonl")
        .arg(path)
        .output()
        .expect("run corpusql demo");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    if !key_prefix.is_empty() {
        let s = std::fs::read_to_string(path).unwrap();
        let s = s.replace("{\"id\": \"", &format!("{{\"id\": \"{key_prefix}"));
        std::fs::write(path, s).unwrap();
    }
    path.to_path_buf()
}

/// The bytes `corpusql demo --docs docs --seed seed --jsonl` writes.
pub fn demo_bytes(docs: u32, seed: u32) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::read(demo_jsonl(&tmp.path().join("demo.jsonl"), docs, seed, "")).unwrap()
}

/// Lines of `out`, sorted (documents in another storage order).
pub fn sorted_lines(out: Vec<u8>) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}
