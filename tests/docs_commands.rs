//! Every command the README and `docs/` show, run against the demo corpus
//! (issue 10: docs that contradict the binary). Commands are read from the
//! fenced code blocks: a line that starts with `corpusql` (or `$ corpusql`),
//! with `\` continuations and multi-line quoted queries joined. Each file's
//! commands run in order, in a work directory of their own where `./fr`,
//! `./corpus` and `/tmp/dq` are one demo corpus and the files the commands
//! name (`dump.jsonl.zst`, `mix.toml`, `part1.jsonl`, `lists/`, `shards/`,
//! `hf.jsonl`, ...) exist.
//! A command must exit 0, unless the doc shows it failing (its shown output
//! is an error with a caret); none may panic or be refused as a usage error.
//! Synopses (`MIX.toml|QUERY [--rank R]`) and shell loops are not run, and
//! the test lists them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_corpusql");

/// One command found in a document.
#[derive(Debug)]
struct DocCommand {
    file: String,
    line: usize,
    text: String,
    /// The doc shows this command failing.
    fails: bool,
}

/// Commands in the fenced code blocks of `md`.
fn commands(file: &str, md: &str) -> Vec<DocCommand> {
    let mut out = Vec::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut in_block = false;
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.trim_start().starts_with("```") {
            in_block = !in_block;
            i += 1;
            continue;
        }
        let t = l.trim_start().trim_start_matches("$ ");
        if !in_block || !t.starts_with("corpusql ") {
            i += 1;
            continue;
        }
        let start = i;
        let mut cmd = t.trim_end().to_string();
        // Joins `\` continuations and a query whose quotes span lines.
        while i + 1 < lines.len()
            && (cmd.ends_with('\\') || unclosed_quote(&cmd))
            && !lines[i + 1].trim_start().starts_with("```")
        {
            if cmd.ends_with('\\') {
                cmd.pop();
            }
            i += 1;
            cmd.push(' ');
            cmd.push_str(lines[i].trim());
        }
        // The output the doc shows, up to the next command or the block's end.
        let mut shown = Vec::new();
        let mut j = i + 1;
        while j < lines.len() {
            let n = lines[j].trim_start();
            if n.starts_with("```") || n.starts_with("$ ") || n.starts_with("corpusql ") {
                break;
            }
            shown.push(n);
            j += 1;
        }
        let fails = shown
            .iter()
            .any(|s| s.trim() == "^" || s.trim_end().ends_with('^'))
            || shown.first().is_some_and(|s| s.starts_with("error"));
        out.push(DocCommand {
            file: file.to_string(),
            line: start + 1,
            text: cmd,
            fails,
        });
        i += 1;
    }
    out
}

fn unclosed_quote(s: &str) -> bool {
    let code = strip_comment(s);
    code.matches('"').count() % 2 == 1
}

/// The command without a trailing `# comment` (outside quotes).
fn strip_comment(s: &str) -> &str {
    let (mut dq, mut sq) = (false, false);
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'"' if !sq => dq = !dq,
            b'\'' if !dq => sq = !sq,
            b'#' if !dq && !sq && (i == 0 || b[i - 1] == b' ') => return &s[..i],
            _ => {}
        }
    }
    s
}

/// Why a command is not run, if it is not.
fn not_runnable(cmd: &str) -> Option<&'static str> {
    let code = strip_comment(cmd);
    let unquoted: String = {
        let (mut dq, mut sq) = (false, false);
        code.chars()
            .filter(|&c| {
                match c {
                    '"' if !sq => dq = !dq,
                    '\'' if !dq => sq = !sq,
                    _ => {}
                }
                !dq && !sq
            })
            .collect()
    };
    if unquoted.starts_with("corpusql =") {
        return Some("a Cargo.toml line");
    }
    if unquoted.contains('|') || unquoted.contains('[') {
        return Some("a synopsis");
    }
    if unquoted.contains("; ") || unquoted.contains("done") {
        return Some("a shell loop");
    }
    if unquoted.contains("/tmp/peers-data") || unquoted.contains(" DIR ") {
        return Some("needs the peers' generated data");
    }
    None
}

fn have_word_lists() -> bool {
    [
        "french",
        "american-english",
        "ngerman",
        "spanish",
        "italian",
    ]
    .iter()
    .all(|f| Path::new("/usr/share/dict").join(f).is_file())
}

fn needs_word_lists(cmd: &str) -> bool {
    let c = strip_comment(cmd);
    c.contains("ocr") || c.contains("--taggers all") || c.contains("--tag all")
}

/// A work directory with the demo corpus and every file the docs name.
fn workdir(root: &Path, name: &str) -> PathBuf {
    let w = root.join(name);
    std::fs::create_dir_all(&w).unwrap();
    common::demo_jsonl(&w.join("base.jsonl"), 5000, 42, "");
    let o = Command::new(BIN)
        .current_dir(&w)
        .args([
            "-C",
            "fr",
            "ingest",
            "--quiet",
            "--segment-mb",
            "3",
            "base.jsonl",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.code() == Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::os::unix::fs::symlink("fr", w.join("corpus")).unwrap();

    let extra = |n: &str, seed: u32| {
        let p = w.join(format!("{n}.src.jsonl"));
        common::demo_jsonl(&p, 150, seed, &format!("{n}-"));
        std::fs::read(&p).unwrap()
    };
    let mut z =
        zstd::Encoder::new(std::fs::File::create(w.join("dump.jsonl.zst")).unwrap(), 3).unwrap();
    z.write_all(&extra("dump", 7)).unwrap();
    z.finish().unwrap();
    let mut g = flate2::write::GzEncoder::new(
        std::fs::File::create(w.join("more.jsonl.gz")).unwrap(),
        flate2::Compression::default(),
    );
    g.write_all(&extra("more", 8)).unwrap();
    g.finish().unwrap();
    std::fs::write(w.join("stream.jsonl"), extra("stdin", 9)).unwrap();
    for (i, p) in ["part1", "part2", "part3"].iter().enumerate() {
        std::fs::write(w.join(format!("{p}.jsonl")), extra(p, 10 + i as u32)).unwrap();
    }
    std::fs::write(
        w.join("mix.toml"),
        "seed = 42\ntokens = 3_000_000\nseq_len = 1024\n\n\
         [[component]]\nname = \"fr\"\nquery = \"lang = fr\"\nweight = 0.5\n\n\
         [[component]]\nname = \"en\"\nquery = \"lang = en\"\nweight = 0.3\n\n\
         [[component]]\nname = \"code\"\nquery = \"lang = code\"\nweight = 0.2\n",
    )
    .unwrap();
    std::fs::create_dir_all(w.join("shards/b")).unwrap();
    std::fs::write(w.join("shards/a.jsonl"), extra("shard-a", 20)).unwrap();
    std::fs::write(w.join("shards/b/c.jsonl"), extra("shard-c", 21)).unwrap();
    // Parquet shards, written by corpusql's own Parquet export.
    let o = Command::new(BIN)
        .current_dir(&w)
        .args([
            "-C",
            "fr",
            "export",
            "lang = de",
            "--format",
            "parquet",
            "-o",
            "shards/de.parquet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::copy(w.join("dump.jsonl.zst"), w.join("extra.jsonl.zst")).unwrap();
    let hf: String = (0..40)
        .map(|i| {
            let (lang, lic) = [("fr", "cc-by-4.0"), ("en", "CC0-1.0"), ("de", "MIT")][i % 3];
            format!(
                "{{\"doc_id\": \"hf-{i}\", \"content\": \"document {i} in {lang}\", \"meta\": {{\"language\": \"{lang}\", \"license\": \"{lic}\", \"year\": {}}}}}\n",
                1890 + 5 * i
            )
        })
        .collect();
    std::fs::write(w.join("hf.jsonl"), hf).unwrap();
    std::fs::create_dir_all(w.join("lists")).unwrap();
    std::fs::write(w.join("lists/en.txt"), "idiot\nstupid\n").unwrap();
    std::fs::write(w.join("lists/fr.txt"), "connard\n").unwrap();
    // Dolma attribute files over the first documents of the corpus.
    let o = Command::new(BIN)
        .current_dir(&w)
        .args(["-C", "fr", "query", "*", "--fields", "id", "--limit", "20"])
        .output()
        .unwrap();
    let attrs: String = String::from_utf8_lossy(&o.stdout)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let score = i as f64 / 20.0;
            format!(
                "{{\"id\": {}, \"attributes\": {{\"exp__quality__score\": [[0, 10, {score}]]}}}}\n",
                v["id"]
            )
        })
        .collect();
    std::fs::create_dir_all(w.join("attributes")).unwrap();
    let mut g = flate2::write::GzEncoder::new(
        std::fs::File::create(w.join("attributes/exp-0000.jsonl.gz")).unwrap(),
        flate2::Compression::default(),
    );
    g.write_all(attrs.as_bytes()).unwrap();
    g.finish().unwrap();
    w
}

/// A live key of the work corpus, for `get <id>`.
fn some_key(w: &Path) -> String {
    let o = Command::new(BIN)
        .current_dir(w)
        .args(["-C", "fr", "query", "*", "--fields", "id", "--limit", "1"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn run_file(root: &Path, file: &str) -> (usize, Vec<String>) {
    let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let cmds = commands(file, &md);
    if cmds.is_empty() {
        return (0, vec![]);
    }
    let w = workdir(root, &file.replace(['/', '.'], "_"));
    let key = some_key(&w);
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let mut ran = 0;
    let mut skipped = Vec::new();
    let mut failures = Vec::new();
    for c in &cmds {
        let at = format!("{}:{}: {}", c.file, c.line, c.text);
        if let Some(why) = not_runnable(&c.text) {
            skipped.push(format!("{at}  ({why})"));
            continue;
        }
        if needs_word_lists(&c.text) && !have_word_lists() {
            skipped.push(format!("{at}  (no OCR word lists in /usr/share/dict)"));
            continue;
        }
        if c.text.contains("/work/shared") && !shared.is_dir() {
            skipped.push(format!("{at}  (no ../shared)"));
            continue;
        }
        let sh = strip_comment(&c.text)
            .replace("<id>", &key)
            .replace("/tmp/dq", "fr")
            .replace("/work/shared", &shared.to_string_lossy());
        let o = Command::new("sh")
            .arg("-c")
            .arg(&sh)
            .current_dir(&w)
            .env("PATH", &path)
            .env_remove("CORPUSQL_DIR")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        ran += 1;
        let code = o.status.code();
        let err = String::from_utf8_lossy(&o.stderr);
        let bad = match (c.fails, code) {
            (_, Some(101)) | (_, None) => true,
            (true, Some(0)) => true,
            (true, _) => false,
            (false, Some(0)) => false,
            (false, _) => true,
        };
        if bad {
            failures.push(format!(
                "{at}\n  exit {code:?}, expected {}\n  {err}",
                if c.fails { "a failure" } else { "0" }
            ));
        }
        if err.contains("panicked") {
            failures.push(format!("{at}\n  panicked: {err}"));
        }
    }
    for s in &skipped {
        eprintln!("not run: {s}");
    }
    (ran, failures)
}

#[test]
fn every_documented_command_runs() {
    let root = tempfile::tempdir().unwrap();
    let mut files = vec!["README.md".to_string()];
    let mut docs: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"))
            .unwrap()
            .map(|e| format!("docs/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|f| f.ends_with(".md"))
            .collect();
    docs.sort();
    files.extend(docs);
    let mut ran = 0;
    let mut failures = Vec::new();
    for f in &files {
        let (n, fs) = run_file(root.path(), f);
        ran += n;
        failures.extend(fs);
    }
    eprintln!("ran {ran} documented commands");
    assert!(ran >= 40, "only {ran} commands found in the docs");
    assert!(
        failures.is_empty(),
        "{} documented commands do not behave as documented:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn commands_are_read_from_blocks_with_continuations() {
    let md = "text\n```sh\ncorpusql count \"a\n  and b\"   # c\n$ corpusql x \\\n  --y 1\nout\n```\ncorpusql not in a block\n```text\n$ corpusql \"lang=\"\nexpected a value\n  lang=\n       ^\n```\n";
    let c = commands("t.md", md);
    assert_eq!(c.len(), 3, "{c:?}");
    assert_eq!(
        strip_comment(&c[0].text).trim(),
        "corpusql count \"a and b\""
    );
    assert_eq!(c[1].text, "corpusql x  --y 1");
    assert!(!c[1].fails);
    assert!(c[2].fails);
    assert_eq!(
        not_runnable("corpusql stream MIX.toml|QUERY [--rank R]"),
        Some("a synopsis")
    );
    assert_eq!(not_runnable("corpusql count \"a | b\""), None);
}
