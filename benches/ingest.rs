//! Ingest throughput: JSONL bytes from memory into a fresh corpus directory
//! (parse, cluster, compress, index, fsync, one catalog commit).
//!
//! The input is generated here, deterministically and without network or
//! files: [`corpus_gen::generate`] mimics the synthetic corpus of
//! `../shared/peers/gen_corpus.py` (same fields in the same order, the same
//! language, license and source distributions, texts of about 2 KB of
//! Zipf-drawn pseudo-words). The query and export benches include this file
//! for the same generator, so all three measure the same documents.
//!
//! ```sh
//! cargo bench --bench ingest     # JSONL, and the same documents as Parquet
//! ```

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use corpusql::{ingest, IngestOptions, Input};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};

/// A seeded, deterministic generator of corpus-like JSONL.
pub mod corpus_gen {
    use std::fmt::Write as _;

    /// Documents the benches generate.
    pub const DOCS: usize = 20_000;
    /// Seed of the bench corpus.
    pub const SEED: u64 = 1;

    /// Q1 of the peer harness: broad, about 19 % of the documents.
    pub const Q1: &str = "lang=fr and license in (cc-by-4.0, pd)";
    /// Q2 of the peer harness: selective, well under 1 % of the documents.
    pub const Q2: &str = "source=src_27 and year >= 1950 and quality > 0.8";

    /// splitmix64: small, fast, and the same on every platform.
    pub struct Rng(u64);

    impl Rng {
        /// A generator for `seed`.
        pub fn new(seed: u64) -> Rng {
            Rng(seed)
        }

        /// The next 64 random bits.
        pub fn next_u64(&mut self) -> u64 {
            corpusql::raw::hash::splitmix64(&mut self.0)
        }

        /// Uniform in `[0, 1)`.
        pub fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Uniform in `lo..=hi`.
        pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
            lo + self.next_u64() % (hi - lo + 1)
        }

        /// Standard normal (Box-Muller).
        fn normal(&mut self) -> f64 {
            let u = 1.0 - self.unit();
            let v = self.unit();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }

        /// Gamma(k, 1) for a whole `k`: a sum of `k` exponentials.
        fn gamma(&mut self, k: u32) -> f64 {
            (0..k).map(|_| -(1.0 - self.unit()).ln()).sum()
        }
    }

    /// A discrete distribution, sampled by binary search on its cumulative weights.
    struct Table(Vec<f64>);

    impl Table {
        fn new(weights: impl IntoIterator<Item = f64>) -> Table {
            let mut acc = 0.0;
            Table(
                weights
                    .into_iter()
                    .map(|w| {
                        acc += w;
                        acc
                    })
                    .collect(),
            )
        }

        fn zipf(n: usize, s: f64) -> Table {
            Table::new((1..=n).map(|k| 1.0 / (k as f64).powf(s)))
        }

        fn pick(&self, r: &mut Rng) -> usize {
            let x = r.unit() * self.0.last().copied().unwrap_or(0.0);
            self.0.partition_point(|&c| c <= x).min(self.0.len() - 1)
        }
    }

    const LANGS: [(&str, f64); 6] = [
        ("fr", 45.0),
        ("en", 35.0),
        ("de", 7.0),
        ("es", 5.0),
        ("it", 3.0),
        ("code", 5.0),
    ];

    /// Licenses in Zipf order (s = 1.1): cc-by-4.0 first.
    const LICENSES: [&str; 12] = [
        "cc-by-4.0",
        "cc-by-sa-4.0",
        "cc0-1.0",
        "pd",
        "mit",
        "apache-2.0",
        "gpl-3.0-or-later",
        "etalab-2.0",
        "odc-by-1.0",
        "cc-by-nc-4.0",
        "proprietary",
        "unknown",
    ];

    const CODE_LICENSES: [(&str, f64); 5] = [
        ("mit", 40.0),
        ("apache-2.0", 25.0),
        ("gpl-3.0-or-later", 15.0),
        ("cc0-1.0", 10.0),
        ("unknown", 10.0),
    ];

    /// Function words, then syllables that build the rest of the vocabulary.
    fn lexicon(lang: &str) -> (&'static [&'static str], &'static [&'static str]) {
        match lang {
            "fr" => (
                &[
                    "de", "la", "le", "et", "les", "des", "en", "un", "une", "du", "à", "est",
                ],
                &[
                    "ré", "pu", "bli", "que", "mé", "moi", "re", "cha", "teau", "ment", "eau",
                    "ion",
                ],
            ),
            "de" => (
                &[
                    "der", "die", "und", "in", "den", "von", "zu", "das", "mit", "sich", "des",
                    "ist",
                ],
                &[
                    "ge", "schich", "te", "ver", "stand", "lich", "keit", "ung", "bau", "wer",
                    "ken", "ü",
                ],
            ),
            "es" => (
                &[
                    "de", "la", "que", "el", "en", "y", "a", "los", "se", "del", "las", "por",
                ],
                &[
                    "co", "ra", "zón", "ción", "pa", "lo", "ma", "ñe", "ri", "to", "cas", "ble",
                ],
            ),
            "it" => (
                &[
                    "di", "e", "il", "la", "che", "in", "a", "per", "un", "è", "del", "non",
                ],
                &[
                    "ca", "sa", "zio", "ne", "gli", "to", "ra", "men", "te", "bel", "lo", "ità",
                ],
            ),
            "code" => (
                &[
                    "def", "return", "self", "if", "for", "in", "import", "None", "x", "i", "=",
                    ":",
                ],
                &[
                    "get", "set", "buf", "len", "idx", "val", "tmp", "node", "key", "_", "err",
                    "ctx",
                ],
            ),
            _ => (
                &[
                    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was",
                ],
                &[
                    "con", "sid", "er", "a", "tion", "pro", "vi", "ment", "ly", "ing", "ture", "ex",
                ],
            ),
        }
    }

    /// A vocabulary of `n` words: the function words, then syllable compounds.
    fn vocabulary(lang: &str, n: usize, r: &mut Rng) -> Vec<String> {
        let (func, syl) = lexicon(lang);
        let mut v: Vec<String> = func.iter().map(|s| s.to_string()).collect();
        while v.len() < n {
            let k = r.range(2, 4);
            let w: String = (0..k)
                .map(|_| syl[r.range(0, syl.len() as u64 - 1) as usize])
                .collect();
            v.push(w);
        }
        v
    }

    /// Text bytes: lognormal (median 2 KB, sigma 0.65) plus a 0.6 % Pareto
    /// tail from 20 KB, capped at 200 KB.
    fn text_len(r: &mut Rng) -> usize {
        let x = if r.unit() < 0.006 {
            20_000.0 * (1.0 - r.unit()).powf(-1.0 / 1.5)
        } else {
            (2000f64.ln() + 0.65 * r.normal()).exp()
        };
        x.clamp(40.0, 200_000.0) as usize
    }

    fn push_json_str(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// `n` documents as JSONL, byte-identical for a given `(n, seed)`.
    pub fn generate(n: usize, seed: u64) -> Vec<u8> {
        let mut r = Rng::new(seed);
        let lang_t = Table::new(LANGS.iter().map(|l| l.1));
        let lic_t = Table::zipf(LICENSES.len(), 1.1);
        let code_lic_t = Table::new(CODE_LICENSES.iter().map(|l| l.1));
        let src_t = Table::zipf(30, 1.0);
        let vocab: Vec<Vec<String>> = LANGS
            .iter()
            .map(|(l, _)| vocabulary(l, 3000, &mut r))
            .collect();
        let word_t = Table::zipf(3000, 1.05);
        let mut out = String::with_capacity(n * 3000);
        let mut text = String::with_capacity(1 << 16);
        for i in 0..n {
            let li = lang_t.pick(&mut r);
            let lang = LANGS[li].0;
            let license = if lang == "code" {
                CODE_LICENSES[code_lic_t.pick(&mut r)].0
            } else {
                LICENSES[lic_t.pick(&mut r)]
            };
            let source = src_t.pick(&mut r);
            let year = if license == "pd" {
                r.range(1500, 1950)
            } else if r.unit() < 0.7 {
                r.range(1995, 2025)
            } else {
                r.range(1800, 2025)
            };
            let (a, b) = (r.gamma(4), r.gamma(3));
            let quality = (a / (a + b) * 10_000.0).round() / 10_000.0;
            let target = text_len(&mut r);
            text.clear();
            let mut words = 0u64;
            while text.len() < target {
                if words > 0 {
                    let p = r.unit();
                    text.push_str(if lang == "code" && p < 0.12 {
                        "\n    "
                    } else if p < 0.01 {
                        ".\n\n"
                    } else if p < 0.07 {
                        ". "
                    } else if p < 0.12 {
                        ", "
                    } else {
                        " "
                    });
                }
                text.push_str(&vocab[li][word_t.pick(&mut r)]);
                words += 1;
            }
            out.push_str("{\"id\": ");
            push_json_str(&mut out, &format!("doc-{i:09}"));
            out.push_str(", \"text\": ");
            push_json_str(&mut out, &text);
            let _ = write!(
                out,
                ", \"lang\": \"{lang}\", \"license\": \"{license}\", \"source\": \"src_{source:02}\", \
                 \"year\": {year}, \"quality\": {quality}, \"meta\": {{\"url\": \"https://example.org/src_{source:02}/{i}\", \
                 \"domain\": \"example.org\", \"n_words\": {words}, \"toxicity\": {:.4}, \
                 \"dedup_cluster\": {}, \"tags\": [\"ocr\", \"book\"]}}}}",
                r.unit() * 0.01,
                r.next_u64() % 1_000_000_000,
            );
            out.push('\n');
        }
        out.into_bytes()
    }
}

fn options() -> IngestOptions {
    IngestOptions::default()
}

fn bench_ingest(c: &mut Criterion) {
    let data: Arc<[u8]> = corpus_gen::generate(corpus_gen::DOCS, corpus_gen::SEED).into();
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("jsonl_20k_fresh_corpus", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let input =
                    Input::Reader("bench.jsonl".into(), Box::new(Cursor::new(data.clone())));
                let report = ingest(dir.path(), vec![input], &options()).expect("ingest");
                assert_eq!(report.ingested, corpus_gen::DOCS as u64);
                // Returned so the directory is removed outside the timing.
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("jsonl_20k_all_duplicates", |b| {
        // Re-ingesting the same keys: parse, then skip every record by key.
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Input::Reader("bench.jsonl".into(), Box::new(Cursor::new(data.clone())));
        ingest(dir.path(), vec![first], &options()).expect("ingest");
        b.iter(|| {
            let input = Input::Reader("again.jsonl".into(), Box::new(Cursor::new(data.clone())));
            let report = ingest(dir.path(), vec![input], &options()).expect("ingest");
            assert_eq!(report.skipped, corpus_gen::DOCS as u64);
        })
    });
    g.finish();
}

/// The same documents as Parquet (written by corpusql's own Parquet export:
/// zstd, nested `meta` struct), ingested from the file: magic detection,
/// row groups decoded side by side, rows turned into records.
fn bench_ingest_parquet(c: &mut Criterion) {
    let data: Arc<[u8]> = corpus_gen::generate(corpus_gen::DOCS, corpus_gen::SEED).into();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    let input = Input::Reader("bench.jsonl".into(), Box::new(Cursor::new(data.clone())));
    ingest(&src, vec![input], &options()).expect("ingest");
    let corpus = corpusql::Corpus::open(&src).expect("open");
    let file = work.path().join("bench.parquet");
    let sel = corpus.query("*").expect("query");
    let opts = corpusql::ExportOptions {
        override_policy: true,
        ..Default::default()
    };
    corpus.export_parquet(&sel, &opts, &file).expect("export");
    let bytes = std::fs::metadata(&file).expect("parquet file").len();
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Bytes(bytes));
    g.bench_function("parquet_20k_fresh_corpus", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let input = Input::Path(file.clone());
                let report = ingest(dir.path(), vec![input], &options()).expect("ingest");
                assert_eq!(report.ingested, corpus_gen::DOCS as u64);
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_ingest, bench_ingest_parquet);
criterion_main!(benches);
