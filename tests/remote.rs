//! Corpora at a URI, through `object_store` (here its `file://` backend; the
//! Python tests run the same against a local S3 server): `copy` both ways
//! with checksums verified, every read command on the URI answering as on
//! the local corpus, a node-local mirror that fetches only what changed,
//! and writes to a URI refused.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use corpusql::remote;

fn run(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corpusql"))
        .env("CORPUSQL_CACHE", cache)
        .args(args)
        .output()
        .unwrap()
}

fn ok(cache: &Path, args: &[&str]) -> Vec<u8> {
    let o = run(cache, args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// A local corpus of generated documents, tagged, with a policy.
fn local_corpus(root: &Path) -> std::path::PathBuf {
    let dir = root.join("local");
    let input = common::demo_jsonl(&root.join("demo.jsonl"), 3000, 11, "");
    let cache = root.join("unused-cache");
    let d = dir.to_str().unwrap();
    ok(
        &cache,
        &[
            "-C",
            d,
            "ingest",
            "-q",
            "--segment-mb",
            "1",
            input.to_str().unwrap(),
        ],
    );
    ok(
        &cache,
        &["-C", d, "tag", "-q", "--taggers", "quality,dedup"],
    );
    ok(
        &cache,
        &[
            "-C",
            d,
            "policy",
            "allow",
            "public-domain,permissive,attribution,share-alike",
        ],
    );
    dir
}

#[test]
fn every_read_command_answers_on_the_uri_as_on_the_local_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let local = local_corpus(tmp.path());
    let cache = tmp.path().join("cache");
    let remote_dir = tmp.path().join("bucket/corpora/demo");
    let u = uri(&remote_dir);
    let out = ok(&cache, &["copy", local.to_str().unwrap(), &u, "--json"]);
    let rep: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(rep["transferred"].as_u64().unwrap() >= 5, "{rep}");
    std::fs::write(
        tmp.path().join("mix.toml"),
        "seed = 7\ntokens = 200_000\nseq_len = 512\ntokenizer = \"bytes\"\n\
         [[component]]\nname = \"fr\"\nquery = \"lang = fr\"\nweight = 0.6\n\
         [[component]]\nname = \"rest\"\nquery = \"not lang = fr\"\nweight = 0.4\n",
    )
    .unwrap();
    let mix = tmp.path().join("mix.toml");
    let mix = mix.to_str().unwrap();
    let l = local.to_str().unwrap();
    let key = {
        let o = ok(
            &cache,
            &["-C", l, "query", "*", "--fields", "id", "--limit", "1"],
        );
        let v: serde_json::Value = serde_json::from_slice(&o).unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    let commands: Vec<Vec<&str>> = vec![
        vec!["count", "lang = fr and is_dup = false"],
        vec![
            "query",
            "rps_doc_word_count > 50",
            "--fields",
            "id,license_class",
        ],
        vec!["stats", "--by", "license_class,lang", "--json"],
        vec!["get", &key],
        vec!["export", "lang = en", "-o", "-"],
        vec!["schema", "--json"],
        vec!["mix", "plan", mix, "--json"],
        vec!["stream", mix, "-o", "-", "--rank", "1", "--world", "2"],
        vec!["trace", mix, "--sequence", "5", "--offset", "3"],
        vec!["report", mix, "--json"],
        vec!["policy", "--json"],
        vec!["tag", "report", "--json"],
        vec!["verify"],
    ];
    for c in &commands {
        let mut a = vec!["-C", l];
        a.extend(c);
        let want = ok(&cache, &a);
        let mut b = vec!["-C", u.as_str()];
        b.extend(c);
        let got = ok(&cache, &b);
        if ["report", "verify", "schema", "tag"].contains(&c[0]) {
            // They name the corpus directory (the mirror's, here): compare
            // what does not.
            let strip = |x: &[u8]| {
                String::from_utf8_lossy(x)
                    .replace(l, "DIR")
                    .lines()
                    .filter(|line| {
                        !line.contains("cache")
                            && !line.contains("\"generated")
                            && !line.contains("\"corpus\"")
                    })
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            assert_eq!(strip(&want).len(), strip(&got).len(), "{c:?}");
        } else {
            assert!(want == got, "{c:?}: the URI answers differently");
        }
        assert!(!want.is_empty(), "{c:?} printed nothing");
    }
    // The library and a fresh mirror: nothing fetched twice.
    let c = corpusql::Corpus::open(&u).unwrap();
    assert_eq!(c.count("*").unwrap(), 3000);
    let again = remote::mirror_in(&u, &cache).unwrap();
    assert_eq!(
        again.transferred, 3,
        "only CURRENT, the catalog and the policy: {again:?}"
    );
    assert_eq!(again.generation, c.generation());
    // Writes to the URI are refused, and create nothing.
    for w in [
        vec!["ingest", "x.jsonl"],
        vec!["delete", "lang = fr"],
        vec!["compact"],
        vec!["tag", "--taggers", "pii"],
        vec!["policy", "allow-all"],
    ] {
        let mut a = vec!["-C", u.as_str()];
        a.extend(&w);
        let o = run(&cache, &a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{w:?}");
        assert!(err.contains("corpusql copy"), "{w:?}: {err}");
        assert!(!Path::new("file:").exists());
    }
}

#[test]
fn a_new_generation_moves_only_its_new_files_and_a_damaged_copy_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let local = local_corpus(tmp.path());
    let cache = tmp.path().join("cache");
    let remote_dir = tmp.path().join("remote");
    let u = uri(&remote_dir);
    let first = remote::copy(&local, Path::new(&u)).unwrap();
    let m1 = remote::mirror_in(&u, &cache).unwrap();
    assert_eq!(m1.transferred, m1.files);
    // A second ingest: copy and mirror move its segment and what changed.
    let more = common::demo_jsonl(&tmp.path().join("more.jsonl"), 200, 12, "more-");
    let l = local.to_str().unwrap();
    ok(&cache, &["-C", l, "ingest", "-q", more.to_str().unwrap()]);
    let second = remote::copy(&local, Path::new(&u)).unwrap();
    assert!(
        second.transferred < first.transferred,
        "{second:?} vs {first:?}"
    );
    let m2 = remote::mirror_in(&u, &cache).unwrap();
    assert!(
        m2.transferred < m1.transferred && m2.transferred >= 2,
        "{m2:?}"
    );
    let c = corpusql::Corpus::open(&m2.dir).unwrap();
    assert_eq!(c.count("*").unwrap(), 3200);
    // From the URI to a directory: verified. A flipped byte in a remote
    // segment is caught, naming the file.
    let back = tmp.path().join("back");
    remote::copy(Path::new(&u), &back).unwrap();
    assert_eq!(
        corpusql::Corpus::open(&back).unwrap().count("*").unwrap(),
        3200
    );
    let seg = std::fs::read_dir(&remote_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cqs"))
        .unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&seg, b).unwrap();
    let e = remote::copy(Path::new(&u), &tmp.path().join("back2"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("verify") && e.contains(".cqs"), "{e}");
}

#[test]
fn bad_uris_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    for (u, want) in [
        ("ftp://host/x", "unknown scheme"),
        (&*uri(&tmp.path().join("nothing-here")), "no corpus"),
    ] {
        let o = run(&cache, &["-C", u, "count", "*"]);
        let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
        assert!(!o.status.success(), "{u}");
        assert!(err.contains(want), "{u}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = run(&cache, &["copy", "a-dir", "b-dir"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("one side must be a URI"));
}
