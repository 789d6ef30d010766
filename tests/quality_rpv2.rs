//! Oracle test of the `quality` tagger: the RedPajama-V2 signals of the 3,500
//! dev documents in `shared/data/signals-rpv2-dev.jsonl.zst`, computed by the
//! original RPv2 code, must be reproduced span by span (start and end exact,
//! scores equal as parsed doubles, `null` as `None`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};

use corpusql::raw::tag::quality;
use serde::Deserialize;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/");

#[derive(Deserialize)]
struct Doc {
    id: String,
    lang: Option<String>,
    text: String,
}

type Spans = Vec<(usize, usize, Option<f64>)>;

#[derive(Deserialize)]
struct Oracle {
    id: String,
    signals: HashMap<String, Spans>,
}

fn lines(file: &str) -> impl Iterator<Item = String> {
    let f = std::fs::File::open(format!("{DATA}{file}")).expect("shared data present");
    let r = zstd::stream::read::Decoder::new(f).expect("zstd");
    BufReader::new(r).lines().map(|l| l.expect("readable line"))
}

#[test]
fn rpv2_oracle_dev_corpus() {
    let oracle: Vec<Oracle> = lines("signals-rpv2-dev.jsonl.zst")
        .map(|l| serde_json::from_str(&l).expect("oracle line"))
        .collect();
    assert_eq!(oracle.len(), 3500);
    let wanted: HashMap<&str, usize> = oracle
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.as_str(), i))
        .collect();
    let mut docs: Vec<Option<Doc>> = (0..oracle.len()).map(|_| None).collect();
    for l in lines("realcorpus-dev.jsonl.zst") {
        let d: Doc = serde_json::from_str(&l).expect("corpus line");
        if let Some(&i) = wanted.get(d.id.as_str()) {
            docs[i] = Some(d);
        }
    }
    let mut scorer = quality::Scorer::new();
    let (mut docs_ok, mut values, mut values_ok) = (0usize, 0usize, 0usize);
    let mut bad_by_signal: HashMap<String, usize> = HashMap::new();
    let mut examples = Vec::new();
    for (o, d) in oracle.iter().zip(&docs) {
        let d = d
            .as_ref()
            .unwrap_or_else(|| panic!("text of {} missing", o.id));
        let got = scorer.rpv2_spans(&d.text, d.lang.as_deref());
        let got: HashMap<&str, &Spans> = got.iter().map(|(n, s)| (*n, s)).collect();
        let mut doc_ok = got.len() == o.signals.len();
        for (name, want) in &o.signals {
            values += want.len();
            let have = got.get(name.as_str());
            let ok = have.is_some_and(|h| *h == want);
            if let Some(h) = have {
                values_ok += h.iter().zip(want).filter(|(a, b)| a == b).count();
            }
            if !ok {
                doc_ok = false;
                *bad_by_signal.entry(name.clone()).or_default() += 1;
                if examples.len() < 12 {
                    let first = have.map(|h| {
                        h.iter()
                            .zip(want)
                            .find(|(a, b)| a != b)
                            .map(|(a, b)| format!("got {a:?} want {b:?}"))
                            .unwrap_or_else(|| format!("{} spans, want {}", h.len(), want.len()))
                    });
                    examples.push(format!("{} {name}: {first:?}", o.id));
                }
            }
        }
        docs_ok += doc_ok as usize;
    }
    println!(
        "rpv2 oracle: {docs_ok}/{} documents, {values_ok}/{values} span values agree",
        oracle.len()
    );
    for e in &examples {
        println!("  {e}");
    }
    assert!(
        bad_by_signal.is_empty(),
        "mismatching signals (documents): {bad_by_signal:?}"
    );
    assert_eq!(docs_ok, 3500);
}
