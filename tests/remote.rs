//! Corpora at a URI, through `object_store` (here its `file://` backend,
//! which honours put-if-absent; the Python tests run the same against a
//! local S3 server): `copy` both ways with checksums verified, every read
//! command on the URI answering as on the local corpus, a node-local mirror
//! that fetches only what changed, every write command committing a
//! version, concurrent writers that both land, killed writers that leave
//! the previous version, and jobs staged at the URI.

mod common;

use std::path::{Path, PathBuf};
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

/// Runs `args` on the corpus `a` and on `b`; asserts the same stdout.
fn same(cache: &Path, a: &str, b: &str, args: &[&str], what: &str) {
    let mut x = vec!["-C", a];
    x.extend(args);
    let mut y = vec!["-C", b];
    y.extend(args);
    assert!(ok(cache, &x) == ok(cache, &y), "{what}: {args:?}");
}

/// The key of the corpus's first document.
fn first_key(cache: &Path, corpus: &str) -> String {
    let o = ok(
        cache,
        &["-C", corpus, "query", "*", "--fields", "id", "--limit", "1"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o).unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// A temporary folder, a node cache in it, a store folder and its URI.
fn fresh() -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let remote_dir = tmp.path().join("bucket/c");
    let u = uri(&remote_dir);
    (tmp, cache, remote_dir, u)
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
    let key = first_key(&cache, l);
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
        (again.transferred, again.requests),
        (0, 1),
        "an up-to-date mirror costs one LIST: {again:?}"
    );
    assert_eq!(again.generation, c.generation());
    // Every write command commits the next version at the URI, and does
    // the same to it as to the local corpus.
    let more = common::demo_jsonl(&tmp.path().join("more.jsonl"), 300, 21, "more-");
    let more = more.to_str().unwrap();
    for w in [
        vec!["ingest", "-q", more],
        vec!["delete", "lang = fr"],
        vec!["tag", "-q", "--taggers", "pii"],
        vec!["compact"],
        vec!["policy", "allow-all"],
    ] {
        let mut a = vec!["-C", l];
        a.extend(&w);
        ok(&cache, &a);
        let mut b = vec!["-C", u.as_str()];
        b.extend(&w);
        let o = run(&cache, &b);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{w:?}: {err}");
        assert!(err.contains("committed version"), "{w:?}: {err}");
        for q in [
            vec!["count", "*"],
            vec!["stats", "--by", "lang,license_class", "--json"],
        ] {
            same(&cache, l, &u, &q, &format!("after {w:?}"));
        }
    }
    assert!(!Path::new("file:").exists());
    // A mirror is not written in place: a change made through it is
    // committed to the URI it mirrors.
    let m = remote::mirror_in(&u, &cache).unwrap();
    let before = versions(&remote_dir);
    ok(
        &cache,
        &["-C", m.dir.to_str().unwrap(), "delete", "lang = en"],
    );
    assert_eq!(versions(&remote_dir), before + 1);
    let n = ok(&cache, &["-C", &u, "count", "lang = en"]);
    assert_eq!(String::from_utf8_lossy(&n).trim(), "0");
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
    let seg = std::fs::read_dir(remote_dir.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".cqs."))
        .unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&seg, b).unwrap();
    let e = remote::copy(Path::new(&u), &tmp.path().join("back2"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("xxh3") && e.contains(".cqs"), "{e}");
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

/// Versions committed at the URI in `remote_dir`.
fn versions(remote_dir: &Path) -> usize {
    // (A killed writer may leave the file backend's temporary `NAME#N`.)
    std::fs::read_dir(remote_dir.join("versions"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_writer_that_loses_the_race_runs_again_on_top_of_the_winner() {
    let (tmp, cache, remote_dir, u) = fresh();
    let a = common::demo_jsonl(&tmp.path().join("a.jsonl"), 400, 1, "a-");
    let b = common::demo_jsonl(&tmp.path().join("b.jsonl"), 300, 2, "b-");
    let opts = corpusql::IngestOptions::default();
    // Writer A's first attempt is overtaken: writer B commits while A's
    // change runs. A's commit of that version fails, A runs again on top
    // of B's version and commits the next one.
    let mut runs = 0;
    let (report, commit) = remote::write_in(&u, &cache, "ingest", |work| {
        runs += 1;
        if runs == 1 {
            let other = tmp.path().join("cache-b");
            remote::write_in(&u, &other, "ingest", |w| {
                corpusql::ingest(w, vec![corpusql::Input::Path(b.clone())], &opts)
            })
            .unwrap();
        }
        corpusql::ingest(work, vec![corpusql::Input::Path(a.clone())], &opts)
    })
    .unwrap();
    assert_eq!((runs, commit.attempts, commit.version), (2, 2, Some(2)));
    assert_eq!(report.ingested, 400);
    let c = corpusql::Corpus::open(remote::mirror_in(&u, &cache).unwrap().dir).unwrap();
    assert_eq!(c.count("*").unwrap(), 700, "both writers' documents");
    assert_eq!(versions(&remote_dir), 2);
    // Nothing changed: no version.
    let (_, none) = remote::write_in(&u, &cache, "delete", |w| {
        corpusql::raw::maintain::delete(w, "lang = xx")
    })
    .unwrap();
    assert_eq!(none.version, None);
    assert_eq!(versions(&remote_dir), 2);
    // A failed change commits nothing.
    let e = remote::write_in(&u, &cache, "delete", |w| {
        corpusql::raw::maintain::delete(w, "lang = ")
    });
    assert!(e.is_err());
    assert_eq!(versions(&remote_dir), 2);
}

#[test]
fn concurrent_ingests_into_one_uri_all_land() {
    let (tmp, cache, remote_dir, u) = fresh();
    let n: u32 = 4;
    let files: Vec<_> = (0..n)
        .map(|i| {
            common::demo_jsonl(
                &tmp.path().join(format!("in{i}.jsonl")),
                250 + 10 * i,
                30 + i,
                &format!("w{i}-"),
            )
        })
        .collect();
    // Writers on two "nodes" (two caches) at once.
    let children: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Command::new(env!("CARGO_BIN_EXE_corpusql"))
                .env("CORPUSQL_CACHE", tmp.path().join(format!("node{}", i % 2)))
                .args(["-C", &u, "ingest", "-q", "--threads", "1"])
                .arg(f)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let want: u32 = (0..n).map(|i| 250 + 10 * i).sum();
    let got = ok(&cache, &["-C", &u, "count", "*"]);
    assert_eq!(String::from_utf8_lossy(&got).trim(), want.to_string());
    assert_eq!(versions(&remote_dir), n as usize);
    ok(&cache, &["-C", &u, "verify"]);
}

#[test]
fn a_writer_killed_at_any_moment_leaves_a_readable_version() {
    let (tmp, cache, remote_dir, u) = fresh();
    let first = common::demo_jsonl(&tmp.path().join("first.jsonl"), 500, 5, "f-");
    ok(&cache, &["-C", &u, "ingest", "-q", first.to_str().unwrap()]);
    let big = common::demo_jsonl(&tmp.path().join("big.jsonl"), 6000, 6, "big-");
    let mut seen_old = false;
    for delay_ms in [0u64, 20, 40, 60, 80, 100, 130, 160, 200, 250, 300, 400] {
        let before = versions(&remote_dir);
        let mut child = Command::new(env!("CARGO_BIN_EXE_corpusql"))
            .env("CORPUSQL_CACHE", tmp.path().join("writer"))
            .args(["-C", &u, "ingest", "-q", "--on-duplicate", "skip"])
            .arg(&big)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let n: u64 = String::from_utf8_lossy(&ok(&cache, &["-C", &u, "count", "*"]))
            .trim()
            .parse()
            .unwrap();
        let after = versions(&remote_dir);
        assert!(
            after == before || after == before + 1,
            "{before} -> {after}"
        );
        if n == 500 {
            assert!(after == 1, "version {after} without the documents");
            seen_old = true;
        } else {
            assert_eq!(n, 6500, "a version holds all or nothing");
        }
        ok(&cache, &["-C", &u, "verify"]);
    }
    // Whatever the kills left, the next write works.
    ok(&cache, &["-C", &u, "ingest", "-q", big.to_str().unwrap()]);
    let n = ok(&cache, &["-C", &u, "count", "*"]);
    assert_eq!(String::from_utf8_lossy(&n).trim(), "6500");
    assert!(seen_old, "no writer was killed before its commit");
}

#[test]
fn a_job_staged_at_a_uri_commits_as_one_version() {
    let (tmp, cache, remote_dir, u) = fresh();
    let files: Vec<String> = (0..3)
        .map(|i| {
            common::demo_jsonl(
                &tmp.path().join(format!("s{i}.jsonl")),
                200,
                40 + i,
                &format!("s{i}-"),
            )
            .to_str()
            .unwrap()
            .to_string()
        })
        .collect();
    let local = tmp.path().join("local");
    let mut a = vec!["-C", local.to_str().unwrap(), "ingest", "-q"];
    a.extend(files.iter().map(String::as_str));
    ok(&cache, &a);
    // Tasks on two "nodes", one run twice; the commit waits for all.
    for (i, node) in [(2, 0), (0, 1), (0, 1)] {
        let task = format!("{i}/3");
        let mut a = vec!["-C", &u, "ingest", "-q", "--job", "j", "--task", &task];
        a.extend(files.iter().map(String::as_str));
        ok(&tmp.path().join(format!("node{node}")), &a);
    }
    let o = run(&cache, &["-C", &u, "commit", "--job", "j"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1"),
        "names task 1"
    );
    assert_eq!(versions(&remote_dir), 0, "nothing committed");
    let mut a = vec!["-C", &u, "ingest", "-q", "--job", "j", "--task", "1/3"];
    a.extend(files.iter().map(String::as_str));
    ok(&tmp.path().join("node0"), &a);
    let st = ok(
        &cache,
        &["-C", &u, "commit", "--job", "j", "--status", "--json"],
    );
    let st: serde_json::Value = serde_json::from_slice(&st).unwrap();
    assert_eq!(st["missing"].as_array().unwrap().len(), 0, "{st}");
    ok(&cache, &["-C", &u, "commit", "--job", "j"]);
    assert_eq!(versions(&remote_dir), 1);
    assert!(!remote_dir
        .join("jobs/j/task-00000-of-00003/MANIFEST.json")
        .exists());
    for q in [
        vec!["count", "*"],
        vec!["stats", "--by", "lang,license_id", "--json"],
        vec!["export", "*", "-o", "-"],
    ] {
        let mut a = vec!["-C", local.to_str().unwrap()];
        a.extend(&q);
        let mut b = vec!["-C", u.as_str()];
        b.extend(&q);
        let (want, got) = (
            common::sorted_lines(ok(&cache, &a)),
            common::sorted_lines(ok(&cache, &b)),
        );
        assert!(want == got, "{q:?}: {} vs {} lines", want.len(), got.len());
    }
    // A tagging job at the URI equals tagging the local corpus.
    ok(
        &cache,
        &[
            "-C",
            local.to_str().unwrap(),
            "tag",
            "-q",
            "--taggers",
            "quality",
        ],
    );
    for i in 0..2 {
        let task = format!("{i}/2");
        ok(
            &cache,
            &[
                "-C",
                &u,
                "tag",
                "-q",
                "--taggers",
                "quality",
                "--job",
                "t",
                "--task",
                &task,
            ],
        );
    }
    ok(&cache, &["-C", &u, "commit", "--job", "t"]);
    let q = [
        "export",
        "*",
        "-o",
        "-",
        "--fields",
        "id,c4_has_lorem_ipsum,rps_doc_word_count",
    ];
    let mut a = vec!["-C", local.to_str().unwrap()];
    a.extend(q);
    let mut b = vec!["-C", u.as_str()];
    b.extend(q);
    assert!(
        common::sorted_lines(ok(&cache, &a)) == common::sorted_lines(ok(&cache, &b)),
        "signals differ"
    );
    // An aborted job leaves nothing behind.
    ok(
        &cache,
        &[
            "-C", &u, "ingest", "-q", "--job", "x", "--task", "0/2", &files[0],
        ],
    );
    ok(&cache, &["-C", &u, "commit", "--job", "x", "--abort"]);
    let st = ok(
        &cache,
        &["-C", &u, "commit", "--job", "x", "--status", "--json"],
    );
    let st: serde_json::Value = serde_json::from_slice(&st).unwrap();
    assert!(st["tasks"].is_null(), "{st}");
}

#[test]
fn the_library_writes_a_uri_through_an_opened_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let remote_dir = tmp.path().join("bucket/lib");
    let u = uri(&remote_dir);
    let a = common::demo_jsonl(&tmp.path().join("a.jsonl"), 300, 8, "a-");
    std::env::set_var("CORPUSQL_CACHE", tmp.path().join("cache"));
    let r = corpusql::ingest(
        Path::new(&u),
        vec![corpusql::Input::Path(a)],
        &corpusql::IngestOptions::default(),
    )
    .unwrap();
    assert_eq!(r.ingested, 300);
    let mut c = corpusql::Corpus::open(&u).unwrap();
    assert_eq!(c.origin().as_deref(), Some(u.as_str()));
    let n = c.delete("lang = fr").unwrap();
    assert!(n > 0);
    assert_eq!(c.count("*").unwrap(), 300 - n);
    let again = corpusql::Corpus::open(&u).unwrap();
    assert_eq!(again.count("*").unwrap(), 300 - n);
    assert_eq!(versions(&remote_dir), 2);
}

/// Presence bytes of every lazily fetched segment in the mirror `dir`:
/// (blocks present, blocks in all).
fn blocks_present(dir: &Path) -> (usize, usize) {
    let mut have = 0;
    let mut all = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".cqs.present") {
            let b = std::fs::read(&p).unwrap();
            have += b.iter().filter(|x| **x != 0).count();
            all += b.len();
        }
    }
    (have, all)
}

#[test]
fn a_count_reads_no_block_and_a_query_fetches_only_its_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let local = local_corpus(tmp.path());
    let remote_dir = tmp.path().join("bucket/lazy");
    let u = uri(&remote_dir);
    let cache = tmp.path().join("cache");
    remote::copy(&local, Path::new(&u)).unwrap();
    let l = local.to_str().unwrap();
    // A count, a stats and a schema: indexes only.
    for q in [
        vec!["count", "lang = fr and license_class = permissive"],
        vec!["stats", "--by", "lang,license_class", "--json"],
    ] {
        same(&cache, l, &u, &q, "cold");
    }
    let m = remote::mirror_in(&u, &cache).unwrap();
    let (have, all) = blocks_present(&m.dir);
    assert!(all > 10, "{all} blocks");
    assert_eq!(have, 0, "a count fetched blocks");
    // Segment bytes on disk (the files are sparse) against the store's.
    let fetched: u64 = std::fs::read_dir(&m.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cqs"))
        .map(|p| std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(p).unwrap()) * 512)
        .sum();
    let remote_bytes: u64 = std::fs::read_dir(remote_dir.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".cqs."))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(fetched < remote_bytes / 2, "{fetched} of {remote_bytes}");
    // One document: one block.
    let key = first_key(&cache, l);
    assert_eq!(
        ok(&cache, &["-C", l, "get", &key]),
        ok(&cache, &["-C", &u, "get", &key])
    );
    assert_eq!(blocks_present(&m.dir).0, 1, "one document, one block");
    // A selective export: the same bytes as locally.
    let want = ok(&cache, &["-C", l, "export", "lang = fr", "-o", "-"]);
    let got = ok(&cache, &["-C", &u, "export", "lang = fr", "-o", "-"]);
    assert!(want == got && !want.is_empty());
    // Several processes at once share what they fetch.
    let kids: Vec<_> = (0..3)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_corpusql"))
                .env("CORPUSQL_CACHE", &cache)
                .args(["-C", &u, "export", "*", "-o", "-", "--threads"])
                .arg(format!("{}", 1 + i % 2))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let whole = ok(&cache, &["-C", l, "export", "*", "-o", "-"]);
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success());
        assert!(o.stdout == whole, "a concurrent reader saw other bytes");
    }
    assert_eq!(blocks_present(&m.dir), (all, all));
    ok(&cache, &["-C", &u, "verify"]);
    // A bounded cache: opening the URI drops the blocks of the segments
    // fetched from least recently until the rest fits.
    let bounded = |limit: &str, args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_corpusql"))
            .env("CORPUSQL_CACHE", &cache)
            .env("CORPUSQL_CACHE_MAX_GB", limit)
            .args(["-C", &u])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    bounded("1", &["count", "*"]);
    assert_eq!(blocks_present(&m.dir), (all, all), "under the limit");
    let segment_bytes = |d: &Path| -> u64 {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "cqs"))
            .map(|p| std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(p).unwrap()) * 512)
            .sum()
    };
    let full = segment_bytes(&m.dir);
    let limit = format!("{}", full as f64 / 2.0 / 1e9);
    bounded(&limit, &["count", "*"]);
    let (have, _) = blocks_present(&m.dir);
    assert!(have > 0 && have < all, "{have} of {all} blocks kept");
    assert!(segment_bytes(&m.dir) < full, "nothing evicted");
    bounded("0", &["count", "*"]);
    assert_eq!(blocks_present(&m.dir).0, 0);
    assert!(bounded("0", &["export", "*", "-o", "-"]) == whole);
    // Presence bytes that lie (an eviction racing an open, a crash between
    // the bytes and the byte): the block is fetched again, not refused.
    bounded("0", &["count", "*"]);
    assert_eq!(blocks_present(&m.dir).0, 0, "every block dropped");
    for e in std::fs::read_dir(&m.dir).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".cqs.present") {
            let n = std::fs::metadata(&p).unwrap().len() as usize;
            std::fs::write(&p, vec![1u8; n]).unwrap();
        }
    }
    assert!(ok(&cache, &["-C", &u, "export", "*", "-o", "-"]) == whole);
    // A damaged block in the store is caught when read, naming the segment.
    let cold = tmp.path().join("cold");
    let obj = std::fs::read_dir(remote_dir.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".cqs."))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut b = std::fs::read(&obj).unwrap();
    b[200] ^= 0x20;
    std::fs::write(&obj, b).unwrap();
    let o = run(&cold, &["-C", &u, "export", "*", "-o", "-"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a damaged block was read");
    assert!(err.contains("checksum") && err.contains(".cqs"), "{err}");
    // CORPUSQL_FETCH=whole fetches whole files (checked by digest).
    let o = Command::new(env!("CARGO_BIN_EXE_corpusql"))
        .env("CORPUSQL_CACHE", tmp.path().join("whole"))
        .env("CORPUSQL_FETCH", "whole")
        .args(["-C", &u, "count", "*"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("xxh3"));
}

#[test]
fn vacuum_removes_what_no_version_needs() {
    let (tmp, cache, remote_dir, u) = fresh();
    let a = common::demo_jsonl(&tmp.path().join("a.jsonl"), 600, 3, "a-");
    ok(&cache, &["-C", &u, "ingest", "-q", a.to_str().unwrap()]);
    ok(&cache, &["-C", &u, "delete", "lang = fr"]);
    ok(&cache, &["-C", &u, "compact"]);
    let objects = || {
        std::fs::read_dir(remote_dir.join("objects"))
            .unwrap()
            .count()
    };
    let (before, want) = (objects(), ok(&cache, &["-C", &u, "export", "*", "-o", "-"]));
    assert_eq!(versions(&remote_dir), 3);
    let vac = |args: &[&str]| -> serde_json::Value {
        let mut a = vec!["-C", u.as_str(), "vacuum", "--json"];
        a.extend(args);
        serde_json::from_slice(&ok(&cache, &a)).unwrap()
    };
    // Everything is younger than the default retention: nothing goes.
    let r = vac(&[]);
    assert_eq!(
        (
            r["versions_removed"].as_u64(),
            r["objects_removed"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let r = vac(&["--retain-hours", "0", "--dry-run"]);
    assert!(r["objects_removed"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(
        (objects(), versions(&remote_dir)),
        (before, 3),
        "a dry run removes nothing"
    );
    let r = vac(&["--retain-hours", "0"]);
    assert_eq!(r["versions_removed"].as_u64(), Some(2), "{r}");
    assert_eq!(versions(&remote_dir), 1);
    assert_eq!(
        objects(),
        before - r["objects_removed"].as_u64().unwrap() as usize
    );
    // A new node reads the newest version whole.
    let cold = tmp.path().join("cold");
    assert!(ok(&cold, &["-C", &u, "export", "*", "-o", "-"]) == want);
    ok(&cold, &["-C", &u, "verify"]);
    // And writers go on from it.
    let b = common::demo_jsonl(&tmp.path().join("b.jsonl"), 100, 4, "b-");
    ok(&cache, &["-C", &u, "ingest", "-q", b.to_str().unwrap()]);
    assert_eq!(versions(&remote_dir), 2);
    // The writer's node holds what it committed: nothing to fetch.
    let m = remote::mirror_in(&u, &cache).unwrap();
    assert_eq!((m.transferred, m.requests), (0, 1), "{m:?}");
    let other = ok(&tmp.path().join("other"), &["-C", &u, "count", "*"]);
    assert_eq!(
        corpusql::Corpus::open(&m.dir)
            .unwrap()
            .count("*")
            .unwrap()
            .to_string(),
        String::from_utf8_lossy(&other).trim()
    );
    ok(&cache, &["-C", &u, "verify"]);
    let o = run(&cache, &["-C", tmp.path().to_str().unwrap(), "vacuum"]);
    assert!(!o.status.success());
}

#[test]
fn bad_cache_settings_manifests_and_presence_files_are_refused_clearly() {
    let (tmp, cache, remote_dir, u) = fresh();
    let a = common::demo_jsonl(&tmp.path().join("a.jsonl"), 300, 9, "a-");
    ok(&cache, &["-C", &u, "ingest", "-q", a.to_str().unwrap()]);
    let err = |o: Output| {
        assert!(!o.status.success());
        let e = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!e.contains("panicked"), "{e}");
        e
    };
    // A cache bound that is not a number.
    let o = Command::new(env!("CARGO_BIN_EXE_corpusql"))
        .env("CORPUSQL_CACHE", &cache)
        .env("CORPUSQL_CACHE_MAX_GB", "lots")
        .args(["-C", &u, "count", "*"])
        .output()
        .unwrap();
    assert!(err(o).contains("CORPUSQL_CACHE_MAX_GB=lots"));
    // A presence file of the wrong length names itself (a reader's node:
    // the writer's holds whole files).
    let reader = tmp.path().join("reader");
    let m = remote::mirror_in(&u, &reader).unwrap();
    let present = std::fs::read_dir(&m.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".cqs.present"))
        .unwrap();
    std::fs::write(&present, b"\x01").unwrap();
    let e = err(run(&reader, &["-C", &u, "count", "*"]));
    assert!(e.contains(".present") && e.contains("one per block"), "{e}");
    // A version written by a newer corpusql is refused, naming it.
    let v = remote_dir.join("versions/00000000000000000001.json");
    let text = std::fs::read_to_string(&v).unwrap();
    std::fs::write(
        &v,
        text.replace("\"format_version\": 1", "\"format_version\": 9"),
    )
    .unwrap();
    let e = err(run(&tmp.path().join("cold"), &["-C", &u, "count", "*"]));
    assert!(
        e.contains("00000000000000000001.json") && e.contains("format version 9"),
        "{e}"
    );
}
