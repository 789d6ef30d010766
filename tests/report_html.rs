//! The HTML datasheet, rendered by headless Chromium: every section is there,
//! the charts have a size and draw the numbers of the datasheet, nothing
//! overflows or is clipped, the page asks for nothing over the network, and
//! a screenshot comes out.
//!
//! Needs Debian's `chromium` package (`/usr/bin/chromium`; CI installs it).
//! `CORPUSQL_SKIP_BROWSER=1` skips the browser checks; `CORPUSQL_KEEP_REPORT=DIR`
//! keeps the page and its screenshot in DIR for a person to look at.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corpusql::report::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// A deterministic stream of numbers in 0..1.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Log-normal-ish word counts, heavy tailed like real documents.
    fn word_count(&mut self) -> f64 {
        let u: f64 = (0..6).map(|_| self.next()).sum::<f64>() - 3.0; // ~N(0, 0.7)
        (5.8 + 1.4 * u).exp().round().max(1.0)
    }
}

fn counts(docs: u64, bytes_per_doc: u64) -> Counts {
    Counts {
        docs,
        bytes: docs * bytes_per_doc,
        tokens: Some(docs * bytes_per_doc / 4),
    }
}

fn add(a: &mut Counts, b: Counts) {
    a.docs += b.docs;
    a.bytes += b.bytes;
    a.tokens = Some(a.tokens.unwrap_or(0) + b.tokens.unwrap_or(0));
}

fn breakdown(facet: &str, mut rows: Vec<BreakdownRow>) -> Breakdown {
    rows.sort_by(|a, b| {
        b.counts
            .docs
            .cmp(&a.counts.docs)
            .then(a.value.cmp(&b.value))
    });
    Breakdown {
        facet: facet.into(),
        rows,
    }
}

/// A datasheet like `corpusql report` makes for a multilingual web and
/// books corpus after one source was withdrawn, with a word-count signal.
fn realistic() -> Datasheet {
    // (source, license, class, docs, bytes per doc, lang)
    let parts: &[(&str, &str, &str, u64, u64, &str)] = &[
        (
            "wikipedia-en",
            "cc-by-sa-4.0",
            "share-alike",
            61_234,
            4_100,
            "en",
        ),
        (
            "wikipedia-fr",
            "cc-by-sa-4.0",
            "share-alike",
            23_456,
            3_900,
            "fr",
        ),
        (
            "gutenberg",
            "public-domain",
            "public-domain",
            4_321,
            310_000,
            "en",
        ),
        (
            "gallica",
            "public-domain",
            "public-domain",
            2_987,
            250_000,
            "fr",
        ),
        (
            "stack-exchange",
            "cc-by-sa-4.0",
            "share-alike",
            40_001,
            1_500,
            "en",
        ),
        ("github-mit", "mit", "permissive", 30_500, 2_800, "en"),
        (
            "github-apache",
            "apache-2.0",
            "permissive",
            18_250,
            3_300,
            "en",
        ),
        ("github-gpl", "gpl-3.0-only", "copyleft", 9_870, 3_100, "en"),
        ("arxiv", "cc-by-4.0", "attribution", 12_000, 48_000, "en"),
        ("pubmed-oa", "cc-by-4.0", "attribution", 8_800, 36_000, "en"),
        (
            "news-nc",
            "cc-by-nc-4.0",
            "non-commercial",
            5_500,
            5_000,
            "de",
        ),
        ("eur-lex", "eupl-1.2", "copyleft", 7_000, 22_000, "de"),
        ("common-crawl-es", "unknown", "unknown", 15_000, 2_600, "es"),
        ("common-crawl-it", "unknown", "unknown", 6_543, 2_700, "it"),
        (
            "forum-dump",
            "<script>alert(1)</script> & \"friends\"",
            "proprietary",
            1_234,
            900,
            "nl",
        ),
        (
            "cc0-photos-captions",
            "cc0-1.0",
            "public-domain",
            3_456,
            400,
            "pt",
        ),
    ];
    let mut totals = Counts {
        docs: 0,
        bytes: 0,
        tokens: Some(0),
    };
    let mut by: [HashMap<String, (Counts, Option<String>)>; 4] = Default::default();
    for &(source, license, class, docs, bpd, lang) in parts {
        let c = counts(docs, bpd);
        add(&mut totals, c);
        for (i, (key, cls)) in [
            (license, Some(class)),
            (class, None),
            (source, None),
            (lang, None),
        ]
        .into_iter()
        .enumerate()
        {
            let e = by[i].entry(key.to_string()).or_insert((
                Counts {
                    docs: 0,
                    bytes: 0,
                    tokens: Some(0),
                },
                cls.map(String::from),
            ));
            add(&mut e.0, c);
        }
    }
    let mut breakdowns = Vec::new();
    for (i, facet) in ["license_id", "license_class", "source", "lang"]
        .into_iter()
        .enumerate()
    {
        let rows = by[i]
            .iter()
            .map(|(v, (c, cls))| BreakdownRow {
                value: v.clone(),
                counts: *c,
                class: cls.clone(),
            })
            .collect();
        breakdowns.push(breakdown(facet, rows));
    }

    // Word counts for all documents and per source, with Gopher's rule.
    let mut rng = Lcg(42);
    let mut signals = Vec::new();
    let mut all = Vec::new();
    let mut per_source = Vec::new();
    for (k, &(source, ..)) in parts.iter().take(3).enumerate() {
        let mut v: Vec<f64> = (0..4_000)
            .map(|_| rng.word_count() * (1.0 + k as f64))
            .collect();
        all.extend_from_slice(&v);
        per_source.push((source, std::mem::take(&mut v)));
    }
    let summary = |source: Option<&str>, values: &mut Vec<f64>| {
        let n = values.len() as u64;
        let short = values.iter().filter(|&&v| v < 50.0).count() as u64;
        let long = values.iter().filter(|&&v| v > 5_000.0).count() as u64;
        let (quantiles, histogram) = summarize_in(values, 40, Some((0.0, 6_000.0)));
        SignalSummary {
            name: "rps_doc_word_count".into(),
            version: "1".into(),
            source: source.map(String::from),
            tagged: n,
            missing: 17,
            quantiles,
            histogram,
            thresholds: vec![
                ThresholdImpact {
                    rule: "rps_doc_word_count < 50".into(),
                    source: "Gopher".into(),
                    removed_docs: short,
                    removed_share: short as f64 / n as f64,
                },
                ThresholdImpact {
                    rule: "rps_doc_word_count > 5000".into(),
                    source: "C4-like".into(),
                    removed_docs: long,
                    removed_share: long as f64 / n as f64,
                },
            ],
        }
    };
    signals.push(summary(None, &mut all));
    for (source, v) in &mut per_source {
        signals.push(summary(Some(source), v));
    }
    let mut frac: Vec<f64> = (0..8_000).map(|_| rng.next().powi(3)).collect();
    let (quantiles, histogram) = summarize_in(&mut frac, 25, Some((0.0, 1.0)));
    let over = frac.iter().filter(|&&v| v > 0.3).count() as u64;
    signals.push(SignalSummary {
        name: "rps_doc_frac_no_alph_words".into(),
        version: "2".into(),
        source: None,
        tagged: 8_000,
        missing: 0,
        quantiles,
        histogram,
        thresholds: vec![ThresholdImpact {
            rule: "rps_doc_frac_no_alph_words > 0.3".into(),
            source: "Gopher".into(),
            removed_docs: over,
            removed_share: over as f64 / 8_000.0,
        }],
    });

    let withdrawn = counts(9_999, 5_000);
    let mut before = totals;
    add(&mut before, withdrawn);
    let lic = |v: &str| by[0].get(v).map(|e| e.0).unwrap();
    let src = |v: &str| by[2].get(v).map(|e| e.0).unwrap();
    let mut cc_before = lic("cc-by-4.0");
    add(&mut cc_before, withdrawn);
    let day = 86_400;
    let t0 = 1_732_000_000;
    Datasheet {
        title: "Datasheet — open-web-and-books mixture".into(),
        generated_unix: t0 + 30 * day,
        corpus: "/srv/corpora/owb".into(),
        generation: 12,
        selection: "mixtures/owb.toml".into(),
        tokenizer: "bytes/4".into(),
        totals,
        breakdowns,
        policy: Some(PolicySummary {
            allowed_classes: [
                "public-domain",
                "permissive",
                "attribution",
                "share-alike",
                "copyleft",
                "unknown",
                "proprietary",
            ]
            .map(String::from)
            .to_vec(),
            set: true,
            overridden: false,
            held_back: counts(5_500, 5_000),
            held_back_licenses: vec![BreakdownRow {
                value: "cc-by-nc-4.0".into(),
                counts: counts(5_500, 5_000),
                class: Some("non-commercial".into()),
            }],
        }),
        attributions: vec![
            Attribution {
                source: "arxiv".into(),
                license_id: "cc-by-4.0".into(),
                docs: 12_000,
                attributions: vec![
                    "arXiv.org e-print archive, https://arxiv.org".into(),
                    "The authors <authors@example.org>".into(),
                ],
                missing: 0,
            },
            Attribution {
                source: "pubmed-oa".into(),
                license_id: "cc-by-4.0".into(),
                docs: 8_800,
                attributions: vec!["PubMed Central Open Access Subset".into()],
                missing: 312,
            },
            Attribution {
                source: "wikipedia-en".into(),
                license_id: "cc-by-sa-4.0".into(),
                docs: 61_234,
                attributions: vec!["Wikipedia contributors".into()],
                missing: 0,
            },
        ],
        ingest_log: parts
            .iter()
            .enumerate()
            .take(8)
            .map(|(i, &(source, .., docs, bpd, _))| IngestEntry {
                file: format!("/srv/raw/{source}/part-{i:05}.jsonl.zst"),
                size: docs * bpd / 3,
                xxh3_128: format!(
                    "{:032x}",
                    (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
                ),
                started_unix: t0 + i as u64 * day,
                finished_unix: t0 + i as u64 * day + 40 + 37 * i as u64,
                docs_added: docs,
                rejected: (i as u64 * 7) % 5,
                generation: i as u64 + 1,
            })
            .collect(),
        withdrawal: Some(Withdrawal {
            from_generation: 11,
            to_generation: 12,
            before,
            after: totals,
            by_license: vec![
                DiffRow {
                    value: "cc-by-4.0".into(),
                    before: cc_before,
                    after: lic("cc-by-4.0"),
                },
                DiffRow {
                    value: "mit".into(),
                    before: lic("mit"),
                    after: lic("mit"),
                },
            ],
            by_source: vec![
                DiffRow {
                    value: "biorxiv-withdrawn".into(),
                    before: withdrawn,
                    after: Counts {
                        docs: 0,
                        bytes: 0,
                        tokens: Some(0),
                    },
                },
                DiffRow {
                    value: "arxiv".into(),
                    before: src("arxiv"),
                    after: src("arxiv"),
                },
            ],
        }),
        withdrawal_log: vec![WithdrawalLogEntry {
            generation: 12,
            unix: t0 + 40 * day,
            query: "source = biorxiv-withdrawn".into(),
            withdrawn: Counts {
                docs: 9999,
                bytes: 123_456_789,
                tokens: None,
            },
            by_license: vec![BreakdownRow {
                value: "cc-by-4.0".into(),
                counts: Counts {
                    docs: 9999,
                    bytes: 123_456_789,
                    tokens: None,
                },
                class: None,
            }],
            by_source: vec![BreakdownRow {
                value: "biorxiv-withdrawn".into(),
                counts: Counts {
                    docs: 9999,
                    bytes: 123_456_789,
                    tokens: None,
                },
                class: None,
            }],
            compacted: true,
        }],
        signals,
        notes: vec![
            "21,543 documents have an unknown license (common-crawl-es, common-crawl-it).".into(),
        ],
        training: None,
    }
}

/// Attributes of every start tag named `tag` in `html` whose attributes
/// include `with` (e.g. `class="bar"`), as name → unescaped value.
fn tags<'a>(html: &'a str, tag: &str, with: &str) -> Vec<HashMap<&'a str, String>> {
    let open = format!("<{tag} ");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(pos) = rest.find(&open) {
        let body = &rest[pos + open.len()..];
        let end = body.find('>').unwrap_or(body.len());
        let attrs = &body[..end];
        rest = &body[end..];
        if !attrs.contains(with) {
            continue;
        }
        let mut map = HashMap::new();
        let mut a = attrs;
        while let Some(eq) = a.find("=\"") {
            let name = a[..eq].trim();
            let vend = a[eq + 2..].find('"').unwrap();
            map.insert(name, unescape(&a[eq + 2..eq + 2 + vend]));
            a = &a[eq + 2 + vend + 1..];
        }
        out.push(map);
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

fn num(m: &HashMap<&str, String>, k: &str) -> f64 {
    m.get(k)
        .unwrap_or_else(|| panic!("no {k} in {m:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{k} not a number in {m:?}"))
}

/// Starts Chromium on `url` with a fresh profile under `dir` and the flags
/// that keep it off the network; its output goes to files in `dir`.
fn chromium(dir: &Path, name: &str, extra: &[&str], url: &str) -> Child {
    let file = |ext: &str| std::fs::File::create(dir.join(format!("{name}.{ext}"))).unwrap();
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join(format!("{name}-profile")).display()
        ))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(file("out"))
        .stderr(file("err"))
        .spawn()
        .expect("start chromium")
}

/// Waits for Chromium, killing it after a minute; returns its stdout.
fn finish(mut child: Child, dir: &Path, name: &str) -> String {
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {name} took over 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |ext: &str| std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).unwrap();
    assert!(status.success(), "chromium {name} failed: {}", read("err"));
    read("out")
}

/// The page checked without a browser: escaped, self-contained, complete.
#[test]
fn page_is_self_contained_and_escaped() {
    let d = realistic();
    let html = to_html(&d);
    for external in [
        "http://",
        "src=",
        "<link",
        "url(",
        "@import",
        "@font-face",
        "<iframe",
        "<object",
        "<embed",
    ] {
        assert!(!html.contains(external), "the page references {external}");
    }
    // The one https URL is an attribution string, shown as text, not linked.
    assert_eq!(html.matches("https://").count(), 1);
    assert!(html.contains("arXiv.org e-print archive, https://arxiv.org</li>"));
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;friends&quot;"));
    assert!(html.contains("The authors &lt;authors@example.org&gt;"));
    // Markdown and JSON have the same sections and numbers.
    let md = to_markdown(&d);
    for s in [
        "## Totals",
        "## License policy",
        "## Withdrawal",
        "## Signals",
        "## By license",
        "## By license class",
        "## By source",
        "## By language",
        "## Attributions",
        "## Ingest log",
    ] {
        assert!(md.contains(s), "markdown lacks {s}");
    }
    let back: Datasheet = serde_json::from_str(&to_json(&d)).unwrap();
    assert_eq!(back, d);
}

#[test]
fn rendered_in_chromium() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var("CORPUSQL_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("note: {CHROMIUM} not found and CORPUSQL_SKIP_BROWSER=1: skipping the browser checks");
            return;
        }
        panic!(
            "{CHROMIUM} not found: install Debian's `chromium` package (apt-get install chromium), \
             or set CORPUSQL_SKIP_BROWSER=1 to skip this test"
        );
    }
    if std::env::var("CORPUSQL_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("note: CORPUSQL_SKIP_BROWSER=1: skipping the browser checks");
        return;
    }
    let d = realistic();
    let html = to_html(&d);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let png: PathBuf = dir.path().join("report.png");
    let url = format!("file://{}", page.display());
    let started = Instant::now();
    // Both at once, each with its own profile.
    let dom = chromium(
        dir.path(),
        "dom",
        &["--window-size=1200,3000", "--dump-dom"],
        &url,
    );
    let shot_arg = format!("--screenshot={}", png.display());
    let shot = chromium(
        dir.path(),
        "shot",
        &[&shot_arg, "--window-size=1200,3000"],
        &url,
    );
    let dom = finish(dom, dir.path(), "dom");
    finish(shot, dir.path(), "shot");
    eprintln!("chromium took {:.1} s", started.elapsed().as_secs_f64());
    if let Ok(keep) = std::env::var("CORPUSQL_KEEP_REPORT") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::write(Path::new(&keep).join("report.html"), &html).unwrap();
        std::fs::copy(&png, Path::new(&keep).join("report.png")).unwrap();
        std::fs::write(Path::new(&keep).join("report.dom.html"), &dom).unwrap();
    }

    // The closing script ran after layout and recorded its measurements.
    let body = tags(&dom, "body", "data-rendered")
        .pop()
        .expect("the page script did not run: no data-rendered on <body>");
    assert_eq!(body["data-rendered"], "1");
    let svgs = html.matches("<svg ").count();
    assert!(svgs >= 10, "only {svgs} charts");
    assert_eq!(num(&body, "data-svg-count") as usize, svgs);
    assert!(
        num(&body, "data-svg-min-bbox") > 50.0,
        "a chart has no width: {body:?}"
    );
    assert_eq!(body["data-clipped"], "", "chart content outside its SVG");
    assert_eq!(body["data-overflow"], "", "elements wider than their box");
    assert_eq!(
        body["data-page-overflow"], "0",
        "the page scrolls sideways at 1200 px"
    );
    assert_eq!(
        body["data-csp-violations"], "0",
        "the page tried to load something"
    );
    for svg in tags(&dom, "svg", "data-chart") {
        assert!(num(&svg, "data-bbox-width") > 0.0, "empty chart {svg:?}");
    }

    // Every section.
    for id in [
        "totals",
        "policy",
        "license_id",
        "license_class",
        "source",
        "lang",
        "attributions",
        "ingest-log",
        "withdrawal",
        "withdrawal-log",
        "signals",
        "notes",
    ] {
        assert!(
            dom.contains(&format!("<section id=\"{id}\"")),
            "no #{id} in the rendered page"
        );
    }

    // Breakdown bars: one row per top value in the datasheet's order, with its
    // numbers, and widths proportional to them (the largest is 250 units).
    for b in &d.breakdowns {
        if b.facet == "license_class" {
            continue;
        }
        let start = dom
            .find(&format!("data-chart=\"bars\" data-facet=\"{}\"", b.facet))
            .unwrap();
        let end = start + dom[start..].find("</svg>").unwrap();
        let chart = &dom[start..end];
        let rows_here = tags(chart, "g", "class=\"row\"");
        let shown = b.rows.len().min(12);
        assert_eq!(rows_here.len(), shown, "{}", b.facet);
        let top = if b.rows.len() > 12 { 11 } else { shown };
        for (g, r) in rows_here.iter().zip(&b.rows[..top]) {
            assert_eq!(g["data-value"], r.value);
            assert_eq!(num(g, "data-docs") as u64, r.counts.docs);
            assert_eq!(num(g, "data-tokens") as u64, r.counts.tokens.unwrap());
        }
        if b.rows.len() > 12 {
            let other = &rows_here[11];
            let rest: u64 = b.rows[11..].iter().map(|r| r.counts.docs).sum();
            assert_eq!(num(other, "data-docs") as u64, rest);
        }
        for measure in ["docs", "tokens"] {
            let bars = tags(chart, "rect", &format!("data-measure=\"{measure}\""));
            assert_eq!(bars.len(), shown);
            let max = bars
                .iter()
                .map(|b| num(b, "data-amount"))
                .fold(0.0, f64::max);
            for bar in &bars {
                let expect = 250.0 * num(bar, "data-amount") / max;
                assert!(
                    (num(bar, "width") - expect).abs() < 0.01,
                    "{} {measure} bar {bar:?} not proportional",
                    b.facet
                );
            }
        }
    }

    // The class bar: segments in the fixed order, proportional, filling the bar.
    let classes = d
        .breakdowns
        .iter()
        .find(|b| b.facet == "license_class")
        .unwrap();
    let segs = tags(&dom, "rect", "data-measure=\"docs\" data-amount");
    let segs: Vec<_> = segs
        .into_iter()
        .filter(|s| s.contains_key("data-class"))
        .collect();
    assert_eq!(segs.len(), classes.rows.len());
    let total_w: f64 = segs.iter().map(|s| num(s, "width")).sum();
    assert!((total_w - 848.0).abs() < 0.01, "class bar {total_w} wide");
    for s in &segs {
        let row = classes
            .rows
            .iter()
            .find(|r| r.value == s["data-class"])
            .unwrap();
        assert_eq!(num(s, "data-amount") as u64, row.counts.docs);
        assert!(
            (num(s, "width") / total_w - row.counts.docs as f64 / d.totals.docs as f64).abs()
                < 1e-6
        );
    }
    let order: Vec<&str> = segs.iter().map(|s| s["data-class"].as_str()).collect();
    assert_eq!(order.first(), Some(&"public-domain"));
    assert_eq!(order.last(), Some(&"unknown"));

    // Withdrawal: before and after bars with the datasheet's totals.
    let w = d.withdrawal.as_ref().unwrap();
    let wbars = tags(&dom, "rect", "data-metric=\"docs\"");
    let amount = |when: &str| {
        wbars
            .iter()
            .find(|b| b["data-when"] == when)
            .map(|b| num(b, "data-amount") as u64)
    };
    assert_eq!(amount("before"), Some(w.before.docs));
    assert_eq!(amount("after"), Some(w.after.docs));
    assert!(dom.contains(
        "data-value=\"biorxiv-withdrawn\" data-before-docs=\"9999\" data-after-docs=\"0\""
    ));

    // The withdrawal log: one row per delete, with its query and counts.
    let log_rows = tags(&dom, "tr", "data-generation=");
    assert_eq!(log_rows.len(), d.withdrawal_log.len());
    assert_eq!(log_rows[0]["data-docs"], "9999");
    assert!(dom.contains("source = biorxiv-withdrawn") && dom.contains("dropped by compact"));

    // Signals: a histogram per summary, bars adding up to the tagged count,
    // and a threshold line at 50 words.
    let hists = tags(&dom, "svg", "data-chart=\"histogram\"");
    assert_eq!(hists.len(), d.signals.len());
    let first = dom.find("data-chart=\"histogram\"").unwrap();
    let first = &dom[first..first + dom[first..].find("</svg>").unwrap()];
    let counted: f64 = tags(first, "rect", "class=\"hbar\"")
        .iter()
        .map(|b| num(b, "data-count"))
        .sum();
    assert_eq!(counted as u64, d.signals[0].tagged);
    let lines = tags(first, "line", "class=\"threshold\"");
    assert!(lines.iter().any(|l| l["data-cut"] == "50"), "{lines:?}");

    // Attributions and the ingest log.
    assert!(dom.contains("data-source=\"pubmed-oa\" data-license=\"cc-by-4.0\" data-docs=\"8800\" data-missing=\"312\""));
    assert_eq!(tags(&dom, "tr", "data-file=").len(), d.ingest_log.len());

    // Nothing in the rendered page points off the machine.
    assert!(!dom.contains("src=\"http") && !dom.contains("href=\"http") && !dom.contains("url("));
    for a in tags(&dom, "a", "href=") {
        assert!(a["href"].starts_with('#'), "link {a:?}");
    }

    // A real screenshot: a PNG of the window's size, too big to be blank.
    let bytes = std::fs::read(&png).expect("no screenshot written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 3000));
    assert!(
        bytes.len() > 100_000,
        "screenshot only {} bytes: a blank page?",
        bytes.len()
    );
}
