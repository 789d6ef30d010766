//! Token-file export (`export --format megatron|nanotron`, `mix export`):
//! the files are read back by an independent reader written here from the
//! Megatron-LM and datatrove layouts, and every document's tokens must
//! equal the tokenizer's encoding of its text plus the end-of-document id,
//! with the byte tokenizer and a small byte-level BPE trained on the test
//! corpus. Also: the provenance sidecar, the corpus policy (held-back
//! documents excluded unless overridden), `--limit`, and atomicity (a
//! failed export leaves no file).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use corpusql::raw::export::tokens::{
    MixExportOptions, ProvenanceRecord, TokenExportOptions, TokenFormat,
};
use corpusql::{Corpus, IngestOptions, Mixture, Policy, Selection, Tokenizer};

/// 400 documents: several languages, sources and licenses (one per class
/// of interest, and one document without a license), Unicode texts.
fn jsonl() -> Vec<u8> {
    let mut s = String::new();
    let licenses = [
        Some("mit"),
        Some("CC-BY-4.0"),
        Some("cc-by-nc-4.0"),
        Some("gpl-3.0"),
        None,
    ];
    for i in 0..400u32 {
        let lang = ["fr", "en", "de"][(i % 3) as usize];
        let n = 5 + (i * 53 % 700) as usize;
        let text: String = format!("doc {i} é漢🦀 ")
            .chars()
            .chain(
                "le chat dort sur le tapis, the cat sleeps. "
                    .chars()
                    .cycle(),
            )
            .take(n)
            .collect();
        let mut rec = serde_json::json!({
            "id": format!("k{i:04}"),
            "lang": lang,
            "source": format!("src{}", i % 4),
            "text": text,
        });
        if let Some(l) = licenses[(i % 5) as usize] {
            rec["license"] = l.into();
        }
        s.push_str(&rec.to_string());
        s.push('\n');
    }
    s.into_bytes()
}

struct Fixture {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    bpe: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    let opts = IngestOptions {
        segment_bytes: 40_000,
        ..Default::default()
    };
    common::ingest_bytes(&dir, "t.jsonl", &jsonl(), &opts).unwrap();
    let corpus = Corpus::open(&dir).unwrap();
    assert!(corpus.segments().len() >= 2, "several segments");
    let bpe = tmp.path().join("tokenizer.json");
    corpusql::raw::tokenize::train_bpe(&corpus.all(), 400, &bpe).unwrap();
    Fixture { tmp, dir, bpe }
}

/// Megatron's files as an independent reader sees them: dtype code and
/// the tokens of each sequence.
fn read_megatron(prefix: &Path) -> (u8, Vec<Vec<u32>>) {
    let idx = std::fs::read(format!("{}.idx", prefix.display())).unwrap();
    let bin = std::fs::read(format!("{}.bin", prefix.display())).unwrap();
    assert_eq!(&idx[..9], b"MMIDIDX\x00\x00");
    let u64_at = |o: usize| u64::from_le_bytes(idx[o..o + 8].try_into().unwrap());
    assert_eq!(u64_at(9), 1, "version");
    let code = idx[17];
    let width = match code {
        8 => 2,
        4 => 4,
        c => panic!("dtype code {c}"),
    };
    let n = u64_at(18) as usize;
    assert_eq!(u64_at(26) as usize, n + 1, "document count");
    let lens_at = 34;
    let ptrs_at = lens_at + 4 * n;
    let docs_at = ptrs_at + 8 * n;
    assert_eq!(idx.len(), docs_at + 8 * (n + 1), "index size");
    let mut seqs = Vec::new();
    let mut expect_ptr = 0usize;
    for i in 0..n {
        let len = i32::from_le_bytes(
            idx[lens_at + 4 * i..lens_at + 4 * i + 4]
                .try_into()
                .unwrap(),
        );
        let ptr = u64_at(ptrs_at + 8 * i) as usize;
        assert_eq!(ptr, expect_ptr, "pointer of sequence {i}");
        let bytes = &bin[ptr..ptr + len as usize * width];
        expect_ptr += len as usize * width;
        seqs.push(
            bytes
                .chunks(width)
                .map(|c| match width {
                    2 => u16::from_le_bytes([c[0], c[1]]) as u32,
                    _ => i32::from_le_bytes(c.try_into().unwrap()) as u32,
                })
                .collect(),
        );
    }
    assert_eq!(expect_ptr, bin.len(), "no stray bytes in .bin");
    for d in 0..=n {
        assert_eq!(u64_at(docs_at + 8 * d) as usize, d, "document index {d}");
    }
    (code, seqs)
}

/// datatrove's files: the metadata lines and each document's tokens.
fn read_nanotron(prefix: &Path) -> (Vec<String>, Vec<Vec<u32>>) {
    let meta = std::fs::read_to_string(format!("{}.ds.metadata", prefix.display())).unwrap();
    let meta: Vec<String> = meta.lines().map(String::from).collect();
    let width: usize = meta[0].rsplit('|').next().unwrap().parse().unwrap();
    let ds = std::fs::read(format!("{}.ds", prefix.display())).unwrap();
    let index = std::fs::read(format!("{}.ds.index", prefix.display())).unwrap();
    let tokens: Vec<u32> = ds
        .chunks(width)
        .map(|c| match width {
            2 => u16::from_le_bytes([c[0], c[1]]) as u32,
            _ => u32::from_le_bytes(c.try_into().unwrap()),
        })
        .collect();
    assert_eq!(meta[1].parse::<usize>().unwrap(), tokens.len());
    let mut docs = Vec::new();
    let mut start = 0usize;
    for e in index.chunks(8) {
        let end = u64::from_le_bytes(e.try_into().unwrap()) as usize;
        docs.push(tokens[start..end].to_vec());
        start = end;
    }
    assert_eq!(start, tokens.len(), "the index ends at the last token");
    (meta, docs)
}

fn read_provenance(prefix: &Path) -> Vec<ProvenanceRecord> {
    let text = std::fs::read_to_string(format!("{}.provenance.jsonl", prefix.display())).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The expected tokens and provenance of `sel`, from the tokenizer and the
/// stored records.
fn expected(sel: &Selection, tok: &Tokenizer) -> (Vec<Vec<u32>>, Vec<ProvenanceRecord>) {
    let mut seqs = Vec::new();
    let mut prov = Vec::new();
    let mut offset = 0u64;
    for (i, d) in sel.documents().enumerate() {
        let d = d.unwrap();
        let mut ids = Vec::new();
        tok.encode(&d.text, &mut ids).unwrap();
        ids.push(tok.eos());
        let rec: serde_json::Value = serde_json::from_slice(&d.json).unwrap();
        let license = rec
            .get("license")
            .and_then(|v| v.as_str())
            .map(String::from);
        let license_id = license
            .as_deref()
            .and_then(corpusql::raw::license::normalize)
            .unwrap_or_else(|| "unknown".into());
        prov.push(ProvenanceRecord {
            doc: i as u64,
            offset,
            tokens: ids.len() as u64,
            key: d.key.clone(),
            source: rec.get("source").and_then(|v| v.as_str()).map(String::from),
            license,
            license_id,
        });
        offset += ids.len() as u64;
        seqs.push(ids);
    }
    (seqs, prov)
}

fn opts(format: TokenFormat, tokenizer: &str) -> TokenExportOptions {
    TokenExportOptions {
        format,
        tokenizer: tokenizer.into(),
        limit: None,
        redact_pii: false,
        override_policy: false,
    }
}

#[test]
fn every_document_reads_back_as_its_tokens_plus_eos() {
    let f = fixture();
    let corpus = Corpus::open(&f.dir).unwrap();
    let bpe = f.bpe.to_str().unwrap().to_string();
    for tokenizer in ["bytes", bpe.as_str()] {
        let tok = Tokenizer::load(tokenizer).unwrap();
        let sel = corpus.query("*").unwrap();
        let (want, want_prov) = expected(&sel, &tok);
        assert_eq!(want.len(), 400);
        for format in [TokenFormat::Megatron, TokenFormat::Nanotron] {
            let prefix = f.tmp.path().join(format!("out-{}", format.name()));
            let r = corpus
                .export_tokens(&sel, &opts(format, tokenizer), &prefix)
                .unwrap();
            let got = match format {
                TokenFormat::Megatron => {
                    let (code, seqs) = read_megatron(&prefix);
                    assert_eq!(code, 8, "uint16 for a small vocabulary");
                    seqs
                }
                _ => {
                    let (meta, docs) = read_nanotron(&prefix);
                    assert_eq!(meta[0], format!("{tokenizer}|2"));
                    docs
                }
            };
            assert_eq!(got.len(), want.len(), "{tokenizer} {format:?}");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g, w, "document {i} ({tokenizer}, {format:?})");
                assert_eq!(g.last(), Some(&tok.eos()));
            }
            assert_eq!(read_provenance(&prefix), want_prov);
            let total: u64 = want.iter().map(|s| s.len() as u64).sum();
            assert_eq!((r.files.documents, r.files.tokens), (400, total));
            let by_lic: u64 = r.files.by_license.values().map(|t| t.tokens).sum();
            assert_eq!(by_lic, total);
            assert!(r.files.by_license.contains_key("unknown"));
        }
    }
}

#[test]
fn the_policy_holds_back_documents_unless_overridden_and_limit_applies() {
    let f = fixture();
    let corpus = Corpus::open(&f.dir).unwrap();
    corpus
        .set_policy(&Policy {
            allow: Some(vec!["permissive".into(), "attribution".into()]),
            note: Some("test".into()),
        })
        .unwrap();
    let sel = corpus.query("*").unwrap();
    let prefix = f.tmp.path().join("kept");
    let r = corpus
        .export_tokens(&sel, &opts(TokenFormat::Megatron, "bytes"), &prefix)
        .unwrap();
    let prov = read_provenance(&prefix);
    let ids: std::collections::BTreeSet<&str> =
        prov.iter().map(|p| p.license_id.as_str()).collect();
    assert_eq!(
        ids.into_iter().collect::<Vec<_>>(),
        vec!["cc-by-4.0", "mit"]
    );
    assert_eq!(r.files.documents, 160);
    assert_eq!(r.policy.held_back.docs, 240);
    assert!(r.policy.set && !r.policy.overridden);
    let (_, seqs) = read_megatron(&prefix);
    assert_eq!(seqs.len(), 160);

    let mut o = opts(TokenFormat::Nanotron, "bytes");
    o.override_policy = true;
    let prefix = f.tmp.path().join("all");
    let r = corpus.export_tokens(&sel, &o, &prefix).unwrap();
    assert!(r.policy.overridden);
    assert_eq!(read_nanotron(&prefix).1.len(), 400);
    let prov = read_provenance(&prefix);
    assert!(prov.iter().any(|p| p.license_id == "gpl-3.0-only"));
    // The limit counts after the policy: the first 7 allowed documents.
    let mut o = opts(TokenFormat::Nanotron, "bytes");
    o.limit = Some(7);
    corpus.export_tokens(&sel, &o, &prefix).unwrap();
    assert_eq!(read_nanotron(&prefix).1.len(), 7);
    let limited = read_provenance(&prefix);
    let kept = read_provenance(&f.tmp.path().join("kept"));
    assert_eq!(limited[..], kept[..7]);
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_failed_export_leaves_no_file() {
    let f = fixture();
    let corpus = Corpus::open(&f.dir).unwrap();
    let out = f.tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let sel = corpus.query("*").unwrap();
    let missing = f.tmp.path().join("no-such-tokenizer.json");
    for format in [TokenFormat::Megatron, TokenFormat::Nanotron] {
        let e = corpus
            .export_tokens(
                &sel,
                &opts(format, missing.to_str().unwrap()),
                &out.join("x"),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("no-such-tokenizer.json"), "{e}");
    }
    // Not a tokenizer.json: named, nothing written.
    let bogus = f.tmp.path().join("bogus.json");
    std::fs::write(&bogus, "{}").unwrap();
    let e = corpus
        .export_tokens(
            &sel,
            &opts(TokenFormat::Megatron, bogus.to_str().unwrap()),
            &out.join("x"),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("bogus.json"), "{e}");
    // A directory is not a prefix.
    let e = corpus
        .export_tokens(&sel, &opts(TokenFormat::Megatron, "bytes"), &out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("prefix"), "{e}");
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));

    // The CLI: no --tokenizer, a bad one, a missing directory.
    let bin = env!("CARGO_BIN_EXE_corpusql");
    let run = |args: &[&str]| {
        Command::new(bin)
            .arg("--corpus")
            .arg(&f.dir)
            .args(args)
            .output()
            .unwrap()
    };
    let prefix = out.join("p");
    let p = prefix.to_str().unwrap();
    let o = run(&["export", "*", "--format", "megatron", "-o", p]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--tokenizer"));
    let o = run(&[
        "export",
        "*",
        "--format",
        "nanotron",
        "--tokenizer",
        missing.to_str().unwrap(),
        "-o",
        p,
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-tokenizer.json"));
    let deep = out.join("no/such/dir/p");
    let o = run(&[
        "export",
        "*",
        "--format",
        "megatron",
        "--tokenizer",
        "bytes",
        "-o",
        deep.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no/such/dir"));
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
    // And a good run through the CLI writes the three files.
    let o = run(&[
        "export",
        "lang=fr",
        "--format",
        "megatron",
        "--tokenizer",
        "bytes",
        "-o",
        p,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files_in(&out), vec!["p.bin", "p.idx", "p.provenance.jsonl"]);
}

#[test]
fn mix_export_writes_each_component_and_the_blending_weights() {
    let f = fixture();
    let corpus = Corpus::open(&f.dir).unwrap();
    corpus
        .set_policy(&Policy {
            allow: Some(vec!["permissive".into(), "attribution".into()]),
            note: None,
        })
        .unwrap();
    let mix = format!(
        "seed = 1\ntokens = 100000\nseq_len = 128\ntokenizer = {:?}\n\
         [[component]]\nname = \"fr\"\nquery = \"lang=fr\"\nweight = 3\n\
         [[component]]\nname = \"rest\"\nquery = \"not lang=fr\"\nweight = 1\n",
        f.bpe.to_str().unwrap()
    );
    let m = Mixture::parse(&mix).unwrap();
    let tok = Tokenizer::load(f.bpe.to_str().unwrap()).unwrap();
    let out = f.tmp.path().join("mix");
    for format in [TokenFormat::Megatron, TokenFormat::Nanotron] {
        let o = MixExportOptions {
            format,
            override_policy: false,
        };
        let r = corpus.export_mixture_tokens(&m, &o, &out).unwrap();
        assert_eq!(r.components.len(), 2);
        assert_eq!(r.train_samples, Some(100_000 / 128));
        let abs = std::fs::canonicalize(&out).unwrap();
        for (c, (q, w)) in r
            .components
            .iter()
            .zip([("lang=fr", 0.75), ("not lang=fr", 0.25)])
        {
            assert_eq!(c.weight, w);
            // The component's documents under the policy, once each.
            let sel = corpus.query(q).unwrap();
            let (sel, _) = corpus.under_policy(&sel, false).unwrap();
            let (want, want_prov) = expected(&sel, &tok);
            let got = match format {
                TokenFormat::Megatron => {
                    assert_eq!(c.files.prefix, abs.join(&c.name));
                    read_megatron(&c.files.prefix).1
                }
                _ => {
                    assert_eq!(c.files.prefix, abs.join(&c.name).join(&c.name));
                    read_nanotron(&c.files.prefix).1
                }
            };
            assert_eq!(got, want, "{} {format:?}", c.name);
            assert_eq!(read_provenance(&c.files.prefix), want_prov);
        }
        let sheet: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("datasheet.json")).unwrap()).unwrap();
        assert_eq!(sheet["components"][0]["name"], "fr");
        let md = std::fs::read_to_string(out.join("datasheet.md")).unwrap();
        assert!(md.contains("| fr |") && md.contains("cc-by-4.0"), "{md}");
        assert!(!md.contains("gpl-3.0"), "held back by the policy");
        match format {
            TokenFormat::Megatron => {
                let dp = std::fs::read_to_string(out.join("data-path.txt")).unwrap();
                let words: Vec<&str> = dp.split_whitespace().collect();
                assert_eq!(
                    words,
                    vec![
                        "0.75",
                        abs.join("fr").to_str().unwrap(),
                        "0.25",
                        abs.join("rest").to_str().unwrap()
                    ]
                );
            }
            _ => {
                let y = std::fs::read_to_string(out.join("nanotron-data.yaml")).unwrap();
                assert!(
                    y.contains("dataset_weights:\n      - 0.75\n      - 0.25"),
                    "{y}"
                );
            }
        }
    }
    // A component that matches nothing under the policy is refused, naming it.
    let bad = Mixture::parse(
        "[[component]]\nname = \"gpl\"\nquery = \"license_id = gpl-3.0-only\"\nweight = 1\n",
    )
    .unwrap();
    let o = MixExportOptions {
        format: TokenFormat::Megatron,
        override_policy: false,
    };
    let e = corpus
        .export_mixture_tokens(&bad, &o, &f.tmp.path().join("bad"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`gpl`"), "{e}");
    // A name that is not a file name is refused.
    let bad = Mixture::parse("[[component]]\nname = \"a/b\"\nquery = \"*\"\nweight = 1\n").unwrap();
    let e = corpus
        .export_mixture_tokens(&bad, &o, &f.tmp.path().join("bad"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("a/b"), "{e}");
}
