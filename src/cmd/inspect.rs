//! `corpusql inspect`: segments, sections, blocks and sizes.

use std::path::Path;
use std::process::ExitCode;

use corpusql::raw::format::section;
use corpusql::Corpus;

/// Arguments of `inspect`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `inspect`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let mut segs = Vec::new();
    for s in corpus.segments() {
        let seg = &s.segment;
        let sections: Vec<serde_json::Value> = seg
            .sections()
            .iter()
            .map(|x| serde_json::json!({"section": section::name(x.id), "offset": x.offset, "bytes": x.len, "crc32c": format!("{:08x}", x.crc)}))
            .collect();
        let raw: u64 = seg.blocks().iter().map(|b| b.raw_len as u64).sum();
        let comp: u64 = seg.blocks().iter().map(|b| b.len as u64).sum();
        segs.push(serde_json::json!({
            "file": s.entry.file, "id": s.entry.id, "added_generation": s.entry.added_generation,
            "docs": seg.doc_count(), "live": s.live.len(), "text_bytes": seg.meta().text_bytes,
            "file_bytes": seg.file_len(), "blocks": seg.blocks().len(),
            "block_raw_bytes": raw, "block_compressed_bytes": comp,
            "compression_ratio": if comp > 0 { raw as f64 / comp as f64 } else { 0.0 },
            "cluster_fields": seg.meta().cluster_fields,
            "sections": sections,
        }));
    }
    if a.json {
        super::print_json(
            &serde_json::json!({"dir": dir, "generation": corpus.generation(), "documents": corpus.len(), "segments": segs}),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "corpus {} at generation {}: {} live documents in {} segments",
        dir.display(),
        corpus.generation(),
        corpus.len(),
        segs.len()
    );
    for s in &segs {
        println!(
            "\n{}  docs {} (live {})  text {}  file {}  blocks {}  ratio {:.2}x",
            s["file"].as_str().unwrap_or(""),
            s["docs"],
            s["live"],
            super::human_bytes(s["text_bytes"].as_u64().unwrap_or(0)),
            super::human_bytes(s["file_bytes"].as_u64().unwrap_or(0)),
            s["blocks"],
            s["compression_ratio"].as_f64().unwrap_or(0.0)
        );
        for x in s["sections"].as_array().into_iter().flatten() {
            println!(
                "  {:<12} {:>12}  crc32c {}",
                x["section"].as_str().unwrap_or(""),
                super::human_bytes(x["bytes"].as_u64().unwrap_or(0)),
                x["crc32c"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
