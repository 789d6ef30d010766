//! Exporters: matched documents as JSONL (whole records exactly as ingested,
//! or a projection of fields), to any writer or to a file compressed by its
//! extension (`.zst`, `.gz`). Blocks are decompressed and formatted in
//! parallel and written in storage order.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::json::{self, RawObject};
use crate::segment::Block;
use crate::select::Selection;

/// Which fields each exported record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// The whole record, as ingested.
    All,
    /// These fields, in this order (missing ones are left out).
    Fields(Vec<String>),
}

impl Projection {
    /// Parses `id,lang,text`; an empty list means every field.
    pub fn parse(list: Option<&str>) -> Projection {
        match list {
            None => Projection::All,
            Some(s) => {
                let f: Vec<String> = s
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect();
                if f.is_empty() {
                    Projection::All
                } else {
                    Projection::Fields(f)
                }
            }
        }
    }
}

/// Appends document `i` of `block` under `proj` as one JSON line.
pub fn format_doc(block: &Block, i: usize, proj: &Projection, out: &mut Vec<u8>) {
    format_doc_with(block, i, proj, false, out)
}

/// Writes the record of document `i`, its text redacted when asked.
fn write_record(block: &Block, i: usize, redact: bool, out: &mut Vec<u8>) {
    if redact {
        out.extend_from_slice(block.prefix(i));
        json::write_str(out, &crate::tag::pii::redact(block.text(i)));
        out.extend_from_slice(block.suffix(i));
    } else {
        block.write_json(i, out)
    }
}

/// Like [`format_doc`]; with `redact_pii` the text has each personal-data
/// span replaced by its placeholder (`<EMAIL>`, `<PHONE>`, ...), every
/// other byte unchanged.
pub fn format_doc_with(
    block: &Block,
    i: usize,
    proj: &Projection,
    redact_pii: bool,
    out: &mut Vec<u8>,
) {
    match proj {
        Projection::All => write_record(block, i, redact_pii, out),
        Projection::Fields(fields) => {
            let mut full = Vec::new();
            write_record(block, i, redact_pii, &mut full);
            let s = std::str::from_utf8(&full).unwrap_or("{}");
            let obj: RawObject = serde_json::from_str(s).unwrap_or(RawObject(Vec::new()));
            out.push(b'{');
            let mut first = true;
            for f in fields {
                if let Some((k, v)) = obj.0.iter().find(|(k, _)| k == f) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    json::write_str(out, k);
                    out.push(b':');
                    out.extend_from_slice(v.get().as_bytes());
                }
            }
            out.push(b'}');
        }
    }
    out.push(b'\n');
}

/// Writes the selection as JSONL to `w`; returns the documents written.
pub fn write_jsonl(sel: &Selection, proj: &Projection, w: &mut dyn Write) -> Result<u64> {
    write_jsonl_with(sel, proj, false, w)
}

/// Like [`write_jsonl`], with personal data redacted when `redact_pii`.
pub fn write_jsonl_with(
    sel: &Selection,
    proj: &Projection,
    redact_pii: bool,
    w: &mut dyn Write,
) -> Result<u64> {
    let mut n = 0u64;
    sel.map_blocks(
        |block, docs| {
            let mut out = Vec::with_capacity(docs.len() * 512);
            for &i in docs {
                format_doc_with(block, i as usize, proj, redact_pii, &mut out);
            }
            Ok((out, docs.len() as u64))
        },
        |(buf, k)| {
            n += k;
            w.write_all(&buf).map_err(|e| Error::io("<output>", e))
        },
    )?;
    Ok(n)
}

/// An output sink: stdout (`-` or none) or a file, compressed by extension.
pub fn open_output(path: Option<&Path>) -> Result<Box<dyn Write>> {
    let Some(p) = path.filter(|p| p.as_os_str() != "-") else {
        return Ok(Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout().lock(),
        )));
    };
    let f = std::fs::File::create(p).at(p)?;
    let buf = std::io::BufWriter::with_capacity(1 << 20, f);
    let name = p.to_string_lossy();
    Ok(if name.ends_with(".zst") {
        Box::new(
            zstd::stream::write::Encoder::new(buf, 3)
                .at(p)?
                .auto_finish(),
        )
    } else if name.ends_with(".gz") {
        Box::new(flate2::write::GzEncoder::new(
            buf,
            flate2::Compression::default(),
        ))
    } else {
        Box::new(buf)
    })
}
