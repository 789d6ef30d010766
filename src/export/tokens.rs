//! Token-file export: Megatron-LM indexed datasets (`.bin`/`.idx`) and
//! nanotron/datatrove token files (`.ds`, `.ds.index`, `.ds.metadata`),
//! each with a provenance sidecar (`.provenance.jsonl`) that maps every
//! token position back to its document, source and license.
//!
//! One sequence per document: the tokenizer's ids of the text followed by
//! its end-of-document id (the same id `stream` packs between documents),
//! documents in the selection's (storage) order. Blocks are read and
//! tokenized in parallel, a bounded window at a time, and written in order;
//! memory holds that window plus 4 bytes per document (Megatron's sequence
//! lengths, which its index stores before the pointers). Every file is
//! written under a temporary name and renamed at the end, the token data
//! last, so a failed export leaves no partial file (see
//! [`crate::export::Output`]).
//!
//! The layouts, as their readers expect them (checked against
//! `megatron/core/datasets/indexed_dataset.py` of megatron-core 0.16 and
//! datatrove's `TokenizedFile`):
//!
//! - `PREFIX.idx`: `MMIDIDX\0\0`, `u64` version 1, `u8` dtype code (8:
//!   uint16 when the vocabulary has fewer than 65,500 ids, Megatron's
//!   `DType.optimal_dtype`; else 4: int32), `u64` sequence count *n*, `u64`
//!   document count *n* + 1, *n* `i32` sequence lengths, *n* `i64` byte
//!   pointers into `.bin`, *n* + 1 `i64` document indices `0..=n`; all
//!   little-endian. `PREFIX.bin`: the tokens, back to back.
//! - `PREFIX.ds`: the tokens as little-endian `u16` (vocabularies of up to
//!   65,536 ids) or `u32`; `PREFIX.ds.index`: one `u64` per document, the
//!   token offset of its end; `PREFIX.ds.metadata`: three text lines,
//!   `TOKENIZER|TOKEN_SIZE`, the token count, and the count in words
//!   (`1.23 MT`).
//! - `PREFIX.provenance.jsonl`: one JSON object per document, in file
//!   order: `doc` (index), `offset` (first token, counted from the start of
//!   the file), `tokens` (end-of-document included), `key`, `source`,
//!   `license` (the stored value) and `license_id` (derived).
//!
//! [`Corpus::export_tokens`] writes one selection; [`Corpus::export_mixture_tokens`]
//! writes one file set per mixture component with Megatron's `--data-path`
//! (or a nanotron data config) and a datasheet.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::corpus::Corpus;
use crate::error::{Error, IoContext, Result};
use crate::export::Output;
use crate::policy::PolicyOutcome;
use crate::select::Selection;
use crate::tokenize::Tokenizer;
use crate::train::Mixture;

/// Magic of a Megatron index file (`_INDEX_HEADER`).
pub const MEGATRON_MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";
/// Version of the Megatron index layout written.
pub const MEGATRON_VERSION: u64 = 1;
/// Megatron's `DType` code of `uint16`.
pub const MEGATRON_UINT16: u8 = 8;
/// Megatron's `DType` code of `int32`.
pub const MEGATRON_INT32: u8 = 4;
/// Megatron stores tokens as `uint16` when the vocabulary has fewer ids
/// than this (`DType.optimal_dtype`), else as `int32`.
pub const MEGATRON_UINT16_BELOW: u32 = 65_500;
/// datatrove writes `u16` tokens for vocabularies of up to this many ids,
/// else `u32`.
pub const NANOTRON_U16_UP_TO: u32 = 65_536;
/// Suffix of the provenance sidecar.
pub const PROVENANCE_SUFFIX: &str = ".provenance.jsonl";

/// A token-file layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TokenFormat {
    /// Megatron-LM's indexed dataset: `PREFIX.bin` and `PREFIX.idx`.
    Megatron,
    /// datatrove's tokenized files as nanotron reads them: `PREFIX.ds`,
    /// `PREFIX.ds.index` and `PREFIX.ds.metadata`.
    Nanotron,
}

impl TokenFormat {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TokenFormat::Megatron => "megatron",
            TokenFormat::Nanotron => "nanotron",
        }
    }

    /// The suffixes of the files of one set, the token data first and the
    /// provenance sidecar last.
    pub fn suffixes(self) -> &'static [&'static str] {
        match self {
            TokenFormat::Megatron => &[".bin", ".idx", PROVENANCE_SUFFIX],
            TokenFormat::Nanotron => &[".ds", ".ds.index", ".ds.metadata", PROVENANCE_SUFFIX],
        }
    }

    /// The files a set written at `prefix` consists of (see
    /// [`TokenFormat::suffixes`]).
    pub fn files(self, prefix: &Path) -> Vec<PathBuf> {
        self.suffixes()
            .iter()
            .map(|s| with_suffix(prefix, s))
            .collect()
    }

    /// The element type of the tokens for a vocabulary of `vocab` ids.
    pub fn dtype(self, vocab: u32) -> TokenDtype {
        match self {
            TokenFormat::Megatron if vocab < MEGATRON_UINT16_BELOW => TokenDtype::U16,
            TokenFormat::Megatron => TokenDtype::I32,
            TokenFormat::Nanotron if vocab <= NANOTRON_U16_UP_TO => TokenDtype::U16,
            TokenFormat::Nanotron => TokenDtype::U32,
        }
    }
}

/// The element type of the tokens in a token file (little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TokenDtype {
    /// `u16`.
    U16,
    /// `i32` (Megatron, large vocabularies).
    I32,
    /// `u32` (datatrove, large vocabularies).
    U32,
}

impl TokenDtype {
    /// Bytes per token.
    pub fn width(self) -> usize {
        match self {
            TokenDtype::U16 => 2,
            TokenDtype::I32 | TokenDtype::U32 => 4,
        }
    }

    /// The NumPy name (`uint16`, `int32`, `uint32`).
    pub fn name(self) -> &'static str {
        match self {
            TokenDtype::U16 => "uint16",
            TokenDtype::I32 => "int32",
            TokenDtype::U32 => "uint32",
        }
    }

    /// The largest id this type holds.
    fn max_id(self) -> u32 {
        match self {
            TokenDtype::U16 => u16::MAX as u32,
            TokenDtype::I32 => i32::MAX as u32,
            TokenDtype::U32 => u32::MAX,
        }
    }

    /// Megatron's `DType` code of this type.
    fn megatron_code(self) -> u8 {
        match self {
            TokenDtype::U16 => MEGATRON_UINT16,
            _ => MEGATRON_INT32,
        }
    }
}

/// `prefix` with `suffix` appended to its file name (`out/web` + `.bin`).
pub fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// One line of a provenance sidecar: where a document's tokens lie in the
/// token file, and what the document is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceRecord {
    /// Index of the document in the file (Megatron's sequence index).
    pub doc: u64,
    /// Its first token, counted in tokens from the start of the file.
    pub offset: u64,
    /// Its tokens, end-of-document included.
    pub tokens: u64,
    /// The document key.
    pub key: String,
    /// Its `source` as stored (non-string values as JSON text).
    pub source: Option<String>,
    /// Its license field as stored (non-string values as JSON text).
    pub license: Option<String>,
    /// The derived license id (`unknown` when unrecognized or absent).
    pub license_id: String,
}

/// Documents and tokens of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Documents.
    pub documents: u64,
    /// Tokens, end-of-document included.
    pub tokens: u64,
}

/// What one token file set holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenFiles {
    /// The layout.
    pub format: TokenFormat,
    /// The prefix the files were written at.
    pub prefix: PathBuf,
    /// The files, token data first, provenance last.
    pub files: Vec<PathBuf>,
    /// Element type of the tokens.
    pub dtype: TokenDtype,
    /// The tokenizer as given (`bytes` or a path).
    pub tokenizer: String,
    /// Its stable id (`bytes` or `hf-<hash>`).
    pub tokenizer_id: String,
    /// Vocabulary size (end-of-document included).
    pub vocab_size: u32,
    /// The end-of-document id appended to every document.
    pub eos: u32,
    /// Documents (sequences) written.
    pub documents: u64,
    /// Tokens written, end-of-document ids included.
    pub tokens: u64,
    /// Documents and tokens by derived license id.
    pub by_license: BTreeMap<String, Tally>,
}

/// What [`Corpus::export_tokens`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenExportOptions {
    /// The layout.
    pub format: TokenFormat,
    /// `bytes` or a path to a `tokenizer.json`.
    pub tokenizer: String,
    /// At most this many documents (counted after the policy).
    pub limit: Option<u64>,
    /// Tokenize the text with personal data replaced by placeholders.
    pub redact_pii: bool,
    /// Export documents the corpus policy holds back.
    pub override_policy: bool,
}

/// What [`Corpus::export_tokens`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenExportReport {
    /// The files written.
    pub files: TokenFiles,
    /// What the policy held back (or let through when overridden).
    pub policy: PolicyOutcome,
}

/// What [`Corpus::export_mixture_tokens`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixExportOptions {
    /// The layout.
    pub format: TokenFormat,
    /// Include documents the corpus policy holds back.
    pub override_policy: bool,
}

/// One component of a mixture export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentExport {
    /// Component name (also the file name).
    pub name: String,
    /// Its query.
    pub query: String,
    /// Its normalized weight: its share of the training tokens, and the
    /// weight given to Megatron's or nanotron's blending.
    pub weight: f64,
    /// Its files.
    pub files: TokenFiles,
}

/// What [`Corpus::export_mixture_tokens`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MixExportReport {
    /// Corpus generation exported.
    pub generation: u64,
    /// Hash of the mixture (as `mix plan` and `stream` report it).
    pub mixture_hash: String,
    /// The layout.
    pub format: TokenFormat,
    /// Tokenizer as the mixture names it.
    pub tokenizer: String,
    /// Sequence length of the mixture.
    pub seq_len: usize,
    /// Token budget of the mixture (`None`: one pass over every component).
    pub budget_tokens: Option<u64>,
    /// Training samples of `seq_len` the budget gives (Megatron's
    /// `--train-samples`), when the mixture has a budget.
    pub train_samples: Option<u64>,
    /// The components, in mixture order.
    pub components: Vec<ComponentExport>,
    /// Megatron's `--data-path` arguments (`w1 PREFIX1 w2 PREFIX2 ...`).
    pub data_path: String,
    /// What the policy held back from the components.
    #[serde(skip_serializing_if = "PolicyOutcome::is_unset")]
    pub policy: PolicyOutcome,
}

/// One document's part of a block's output.
struct DocOut {
    tokens: u64,
    key: String,
    source: Option<String>,
    license: Option<String>,
    license_id: String,
}

/// One block's tokens (encoded) and documents.
struct BlockOut {
    bytes: Vec<u8>,
    docs: Vec<DocOut>,
}

/// A JSON value as provenance stores it: strings as they are, other values
/// as JSON text, `null` as absent.
fn as_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Tokenizes the matched documents of one block into `dtype` bytes, or
/// reads their stored ids (`stored`, with the block's first ordinal).
fn tokenize_block(
    block: &crate::segment::Block,
    docs: &[u32],
    tok: &Tokenizer,
    dtype: TokenDtype,
    license_field: &str,
    stored: Option<(&crate::token_ids::SegmentIds, u32)>,
) -> Result<BlockOut> {
    let mut ids = Vec::new();
    let mut out = BlockOut {
        bytes: Vec::new(),
        docs: Vec::with_capacity(docs.len()),
    };
    let mut ids_of: HashMap<String, String> = HashMap::new();
    let mut record = Vec::new();
    let eos = tok.eos();
    for &i in docs {
        ids.clear();
        let read = match stored {
            Some((f, first)) => f.read(first + i, eos, &mut ids)?,
            None => false,
        };
        let i = i as usize;
        if !read {
            tok.encode(block.text(i), &mut ids)?;
            ids.push(eos);
        }
        out.bytes.reserve(ids.len() * dtype.width());
        for &id in &ids {
            if id > dtype.max_id() {
                return Err(Error::Invalid(format!(
                    "tokenizer {}: id {id} does not fit the {} tokens of this file (document `{}`)",
                    tok.id(),
                    dtype.name(),
                    block.key(i)
                )));
            }
            match dtype {
                TokenDtype::U16 => out.bytes.extend_from_slice(&(id as u16).to_le_bytes()),
                TokenDtype::I32 | TokenDtype::U32 => out.bytes.extend_from_slice(&id.to_le_bytes()),
            }
        }
        // The record without its text: cheap to parse whatever the text.
        record.clear();
        record.extend_from_slice(block.prefix(i));
        record.extend_from_slice(b"null");
        record.extend_from_slice(block.suffix(i));
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&record).unwrap_or_default();
        let license = as_text(fields.get(license_field));
        let raw = fields.get(license_field).and_then(|v| v.as_str());
        let license_id = match raw {
            None => crate::license::UNKNOWN.to_string(),
            Some(r) => ids_of
                .entry(r.to_string())
                .or_insert_with(|| {
                    crate::license::normalize(r)
                        .unwrap_or_else(|| crate::license::UNKNOWN.to_string())
                })
                .clone(),
        };
        out.docs.push(DocOut {
            tokens: ids.len() as u64,
            key: block.key(i).to_string(),
            source: as_text(fields.get("source")),
            license,
            license_id,
        });
    }
    Ok(out)
}

/// Refuses a prefix that names no file (`out/`, `.`), before anything is
/// written.
fn check_prefix(prefix: &Path) -> Result<()> {
    let s = prefix.as_os_str().to_string_lossy();
    if prefix.file_name().is_none() || s.ends_with('/') || prefix.is_dir() {
        return Err(Error::Invalid(format!(
            "{}: -o takes a file prefix (PREFIX.bin, PREFIX.idx, ... are written), not a directory",
            prefix.display()
        )));
    }
    Ok(())
}

/// Writes the documents of `sel` (all of them: the caller applied the
/// policy and any limit) as a `format` token file set at `prefix`,
/// tokenized by `tok` (named `tokenizer` as given), with its provenance
/// sidecar. `license_field` is the corpus's license field.
pub fn write_token_files(
    sel: &Selection,
    tok: &Tokenizer,
    tokenizer: &str,
    format: TokenFormat,
    prefix: &Path,
    license_field: &str,
) -> Result<TokenFiles> {
    check_prefix(prefix)?;
    let vocab = tok.vocab_size();
    let dtype = format.dtype(vocab);
    let paths = format.files(prefix);
    let data_path = &paths[0];
    let prov_path = &paths[paths.len() - 1];
    let mut data =
        std::io::BufWriter::with_capacity(1 << 22, Output::create_uncompressed(data_path)?);
    let mut prov =
        std::io::BufWriter::with_capacity(1 << 20, Output::create_uncompressed(prov_path)?);
    // nanotron's index is streamed; Megatron's needs the count first.
    let mut ds_index = match format {
        TokenFormat::Nanotron => Some(std::io::BufWriter::with_capacity(
            1 << 20,
            Output::create_uncompressed(&paths[1])?,
        )),
        _ => None,
    };
    let mut lengths: Vec<u32> = Vec::new();
    let mut documents = 0u64;
    let mut tokens = 0u64;
    let mut by_license: BTreeMap<String, Tally> = BTreeMap::new();
    let mut line = Vec::with_capacity(256);
    // Stored ids (`tokenize --keep-ids`) are read instead of tokenizing.
    let stored: Vec<Option<crate::token_ids::SegmentIds>> = match tok {
        Tokenizer::Bytes => Vec::new(),
        _ => sel
            .parts()
            .iter()
            .map(|(seg, _)| {
                let path = seg.path();
                let dir = path.parent().unwrap_or(Path::new("."));
                let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
                crate::token_ids::SegmentIds::open(dir, file, seg, &tok.id())
            })
            .collect::<Result<_>>()?,
    };
    sel.map_jobs(
        |job, block| {
            let first = sel.parts()[job.part].0.blocks()[job.block].first_doc;
            let s = stored.get(job.part).and_then(|x| x.as_ref()).map(|f| (f, first));
            tokenize_block(block, &job.docs, tok, dtype, license_field, s)
        },
        |b| {
            data.write_all(&b.bytes).at(data_path)?;
            for d in b.docs {
                match ds_index.as_mut() {
                    Some(w) => w
                        .write_all(&(tokens + d.tokens).to_le_bytes())
                        .at(&paths[1])?,
                    None => {
                        let n = u32::try_from(d.tokens)
                            .ok()
                            .filter(|&n| n <= i32::MAX as u32)
                            .ok_or_else(|| {
                                Error::Invalid(format!(
                                    "{}: document `{}` has {} tokens, more than a Megatron sequence length (int32) holds",
                                    data_path.display(),
                                    d.key,
                                    d.tokens
                                ))
                            })?;
                        lengths.push(n);
                    }
                }
                let rec = ProvenanceRecord {
                    doc: documents,
                    offset: tokens,
                    tokens: d.tokens,
                    key: d.key,
                    source: d.source,
                    license: d.license,
                    license_id: d.license_id,
                };
                line.clear();
                serde_json::to_writer(&mut line, &rec).map_err(|e| Error::io(prov_path, e.into()))?;
                line.push(b'\n');
                prov.write_all(&line).at(prov_path)?;
                let t = by_license.entry(rec.license_id).or_default();
                t.documents += 1;
                t.tokens += d.tokens;
                documents += 1;
                tokens += d.tokens;
            }
            Ok(())
        },
    )?;
    // Index and metadata, then the provenance, then the token data last:
    // a token file never appears without its index.
    let mut finished: Vec<Output> = Vec::new();
    match format {
        TokenFormat::Megatron => {
            let idx_path = &paths[1];
            let mut w =
                std::io::BufWriter::with_capacity(1 << 20, Output::create_uncompressed(idx_path)?);
            write_megatron_index(&mut w, dtype, &lengths).at(idx_path)?;
            finished.push(unwrap_buf(w, idx_path)?);
        }
        TokenFormat::Nanotron => {
            if let Some(w) = ds_index.take() {
                finished.push(unwrap_buf(w, &paths[1])?);
            }
            let meta_path = &paths[2];
            let mut m = Output::create_uncompressed(meta_path)?;
            m.write_all(nanotron_metadata(tokenizer, dtype, tokens).as_bytes())
                .at(meta_path)?;
            finished.push(m);
        }
    }
    finished.push(unwrap_buf(prov, prov_path)?);
    finished.push(unwrap_buf(data, data_path)?);
    for f in finished {
        f.finish()?;
    }
    Ok(TokenFiles {
        format,
        prefix: prefix.to_path_buf(),
        files: paths,
        dtype,
        tokenizer: tokenizer.to_string(),
        tokenizer_id: tok.id(),
        vocab_size: vocab,
        eos: tok.eos(),
        documents,
        tokens,
        by_license,
    })
}

/// The output inside a buffered writer, flushed.
fn unwrap_buf(w: std::io::BufWriter<Output>, path: &Path) -> Result<Output> {
    w.into_inner().map_err(|e| Error::io(path, e.into_error()))
}

/// Writes a Megatron index for sequences of `lengths` tokens of `dtype`
/// (one document each).
pub fn write_megatron_index(
    w: &mut dyn Write,
    dtype: TokenDtype,
    lengths: &[u32],
) -> std::io::Result<()> {
    let n = lengths.len() as u64;
    w.write_all(MEGATRON_MAGIC)?;
    w.write_all(&MEGATRON_VERSION.to_le_bytes())?;
    w.write_all(&[dtype.megatron_code()])?;
    w.write_all(&n.to_le_bytes())?;
    w.write_all(&(n + 1).to_le_bytes())?;
    for &l in lengths {
        w.write_all(&(l as i32).to_le_bytes())?;
    }
    let mut pointer = 0i64;
    for &l in lengths {
        w.write_all(&pointer.to_le_bytes())?;
        pointer += l as i64 * dtype.width() as i64;
    }
    for d in 0..=n {
        w.write_all(&(d as i64).to_le_bytes())?;
    }
    Ok(())
}

/// The text of a datatrove `.ds.metadata` file: `TOKENIZER|TOKEN_SIZE`,
/// the token count, and the count in words as `humanize.metric` writes it.
pub fn nanotron_metadata(tokenizer: &str, dtype: TokenDtype, tokens: u64) -> String {
    format!(
        "{tokenizer}|{}\n{tokens}\n{}",
        dtype.width(),
        metric(tokens, "T")
    )
}

/// `n` with three significant digits and an SI prefix (`1.23 MT`), like
/// Python's `humanize.metric`.
fn metric(n: u64, unit: &str) -> String {
    if n == 0 {
        return format!("0.00 {unit}");
    }
    const PREFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let exp = (n as f64).log10().floor() as usize;
    let group = (exp / 3).min(PREFIXES.len() - 1);
    let scaled = n as f64 / 10f64.powi(3 * group as i32);
    let decimals = 2usize.saturating_sub(exp - 3 * group);
    format!("{scaled:.decimals$} {}{unit}", PREFIXES[group])
}

/// A component name as a file name: refused when it is empty, hidden,
/// `.`/`..` or holds a path separator or a control character.
fn check_component_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        return Err(Error::Invalid(format!(
            "component `{name}`: its name is used as a file name; use letters, digits, `-` and `_` (no `/`, no leading `.`)"
        )));
    }
    Ok(())
}

impl Corpus {
    /// Writes the documents of `sel` the policy allows (all of them with
    /// `opts.override_policy`; at most `opts.limit`) as a token file set at
    /// `prefix`, with its provenance sidecar. The tokenizer is loaded
    /// before any file is created, and nothing appears at `prefix` unless
    /// every document is written.
    pub fn export_tokens(
        &self,
        sel: &Selection,
        opts: &TokenExportOptions,
        prefix: &Path,
    ) -> Result<TokenExportReport> {
        let tok = Tokenizer::load(&opts.tokenizer)?.redacting(opts.redact_pii);
        check_prefix(prefix)?;
        let (mut sel, policy) = self.under_policy(sel, opts.override_policy)?;
        if let Some(n) = opts.limit {
            sel.truncate(n);
        }
        let files = write_token_files(
            &sel,
            &tok,
            &opts.tokenizer,
            opts.format,
            prefix,
            self.state().license_field(),
        )?;
        Ok(TokenExportReport { files, policy })
    }

    /// Writes one token file set per component of `mixture` into `dir`
    /// (`DIR/NAME.bin`/`.idx` for Megatron, `DIR/NAME/NAME.ds`... for
    /// nanotron, which reads a folder per dataset), each holding every
    /// document the component selects under the corpus policy (as `mix
    /// plan` and `stream` select them) once, in storage order. Also writes
    /// `DIR/data-path.txt` (Megatron's `--data-path`: each component's
    /// weight, its share of the mixture's tokens, then its prefix; Megatron's
    /// blending draws fixed-length samples in proportion to the weights, so
    /// sample shares are token shares), `DIR/nanotron-data.yaml` for
    /// nanotron, and `DIR/datasheet.md` and `DIR/datasheet.json`.
    pub fn export_mixture_tokens(
        &self,
        mixture: &Mixture,
        opts: &MixExportOptions,
        dir: &Path,
    ) -> Result<MixExportReport> {
        let m = mixture
            .clone()
            .under_policy(self.dir(), opts.override_policy)?;
        m.check("mixture")?;
        for c in &m.components {
            check_component_name(&c.name)?;
        }
        let tok = Tokenizer::load(&m.tokenizer)?.redacting(m.redact_pii);
        // The components' documents, selected as `mix plan` and `stream`
        // select them: each query, then the classes the policy allows.
        let policy = crate::policy::Policy {
            allow: m.policy_allow.clone(),
            note: None,
        };
        let mut selections = Vec::new();
        for c in &m.components {
            let sel = self.query(&c.query).map_err(|e| match e {
                Error::Query(mut q) => {
                    q.message = format!("component `{}`: {}", c.name, q.message);
                    Error::Query(q)
                }
                e => Error::Invalid(format!("component `{}`: {e}", c.name)),
            })?;
            let sel = crate::policy::apply(self, &sel, &policy)?.0;
            if sel.count() == 0 {
                return Err(Error::Invalid(format!(
                    "component `{}` matches no document (query `{}`) under the corpus policy; fix the query or drop the component",
                    c.name, c.query
                )));
            }
            selections.push(sel);
        }
        let outcome = crate::policy::mixture_outcome(self, &m)?;
        std::fs::create_dir_all(dir).at(dir)?;
        let abs = std::fs::canonicalize(dir).at(dir)?;
        let shares = m.shares();
        let mut components = Vec::new();
        for ((c, sel), &w) in m.components.iter().zip(&selections).zip(&shares) {
            let prefix = match opts.format {
                TokenFormat::Megatron => abs.join(&c.name),
                TokenFormat::Nanotron => {
                    let sub = abs.join(&c.name);
                    std::fs::create_dir_all(&sub).at(&sub)?;
                    sub.join(&c.name)
                }
            };
            let files = write_token_files(
                sel,
                &tok,
                &m.tokenizer,
                opts.format,
                &prefix,
                self.state().license_field(),
            )?;
            components.push(ComponentExport {
                name: c.name.clone(),
                query: c.query.clone(),
                weight: w,
                files,
            });
        }
        let data_path = components
            .iter()
            .map(|c| format!("{} {}", c.weight, c.files.prefix.display()))
            .collect::<Vec<_>>()
            .join(" ");
        let report = MixExportReport {
            generation: self.generation(),
            mixture_hash: m.hash(),
            format: opts.format,
            tokenizer: m.tokenizer.clone(),
            seq_len: m.seq_len,
            budget_tokens: m.tokens,
            train_samples: m.tokens.map(|t| t / m.seq_len as u64),
            components,
            data_path,
            policy: outcome,
        };
        let write =
            |name: &str, bytes: &[u8]| crate::storage::write_file_atomic(&abs.join(name), bytes);
        match opts.format {
            TokenFormat::Megatron => write(
                "data-path.txt",
                format!("{}\n", report.data_path).as_bytes(),
            )?,
            TokenFormat::Nanotron => {
                write("nanotron-data.yaml", nanotron_config(&report).as_bytes())?
            }
        }
        let json = serde_json::to_vec_pretty(&report)
            .map_err(|e| Error::Invalid(format!("datasheet.json: {e}")))?;
        write("datasheet.json", &json)?;
        write("datasheet.md", mix_datasheet_markdown(&report).as_bytes())?;
        Ok(report)
    }
}

/// A nanotron `data_stages` snippet reading the components' folders with
/// their weights.
fn nanotron_config(r: &MixExportReport) -> String {
    let mut s = String::from(
        "# nanotron: the `data` of a data stage reading these token files\n\
         data_stages:\n- name: corpusql-mixture\n  start_training_step: 1\n  data:\n    dataset:\n      dataset_folder:\n",
    );
    for c in &r.components {
        let folder = c.files.prefix.parent().unwrap_or(Path::new("."));
        s.push_str(&format!(
            "      - {}\n",
            yaml_str(&folder.display().to_string())
        ));
    }
    s.push_str("      dataset_weights:\n");
    for c in &r.components {
        s.push_str(&format!("      - {}\n", c.weight));
    }
    s.push_str("    num_loading_workers: 1\n    seed: 42\n");
    s
}

/// A YAML double-quoted string.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// The Markdown datasheet of a mixture export.
pub fn mix_datasheet_markdown(r: &MixExportReport) -> String {
    let mut s = String::new();
    let total_tokens: u64 = r.components.iter().map(|c| c.files.tokens).sum();
    let total_docs: u64 = r.components.iter().map(|c| c.files.documents).sum();
    s.push_str("# Token export datasheet\n\n");
    s.push_str(&format!(
        "- format: {}\n- corpus generation: {}\n- mixture: {}\n- tokenizer: {} ({})\n- sequence length: {}\n- documents: {total_docs}\n- tokens written: {total_tokens}\n",
        r.format.name(),
        r.generation,
        r.mixture_hash,
        r.tokenizer,
        r.components.first().map(|c| c.files.tokenizer_id.as_str()).unwrap_or("-"),
        r.seq_len,
    ));
    if let (Some(b), Some(n)) = (r.budget_tokens, r.train_samples) {
        s.push_str(&format!(
            "- budget: {b} tokens = {n} samples of {} (Megatron `--train-samples {n}`)\n",
            r.seq_len
        ));
    }
    if r.policy.set {
        let verb = if r.policy.overridden {
            "included despite the policy (overridden)"
        } else {
            "held back by the corpus policy"
        };
        s.push_str(&format!("- {} documents {verb}\n", r.policy.held_back.docs));
    }
    s.push_str("\n## Components\n\n| component | query | weight | documents | tokens | dtype | files |\n|---|---|---:|---:|---:|---|---|\n");
    for c in &r.components {
        s.push_str(&format!(
            "| {} | `{}` | {:.4} | {} | {} | {} | `{}` |\n",
            md(&c.name),
            c.query.replace('`', "'").replace('|', "\\|"),
            c.weight,
            c.files.documents,
            c.files.tokens,
            c.files.dtype.name(),
            md(&c.files.prefix.display().to_string()),
        ));
    }
    s.push_str("\n## Licenses\n\n| component | license_id | documents | tokens | share of component tokens |\n|---|---|---:|---:|---:|\n");
    for c in &r.components {
        let mut rows: Vec<(&String, &Tally)> = c.files.by_license.iter().collect();
        rows.sort_by(|a, b| b.1.tokens.cmp(&a.1.tokens).then_with(|| a.0.cmp(b.0)));
        for (id, t) in rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {:.1}% |\n",
                md(&c.name),
                md(id),
                t.documents,
                t.tokens,
                100.0 * t.tokens as f64 / c.files.tokens.max(1) as f64
            ));
        }
    }
    if r.format == TokenFormat::Megatron {
        s.push_str(&format!(
            "\n## Megatron\n\n`--data-path` (also in `data-path.txt`): weights are the mixture's token shares; Megatron's blending draws samples of `--seq-length` tokens from each component in these proportions.\n\n```\n--data-path {}\n```\n",
            r.data_path
        ));
    }
    s.push_str("\nEach component's `*.provenance.jsonl` maps every token offset to its document, source and license.\n");
    s
}

/// Escapes a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtypes_follow_each_reader() {
        assert_eq!(TokenFormat::Megatron.dtype(257), TokenDtype::U16);
        assert_eq!(TokenFormat::Megatron.dtype(65_499), TokenDtype::U16);
        assert_eq!(TokenFormat::Megatron.dtype(65_500), TokenDtype::I32);
        assert_eq!(TokenFormat::Nanotron.dtype(65_536), TokenDtype::U16);
        assert_eq!(TokenFormat::Nanotron.dtype(65_537), TokenDtype::U32);
    }

    #[test]
    fn metric_matches_humanize() {
        assert_eq!(metric(0, "T"), "0.00 T");
        assert_eq!(metric(7, "T"), "7.00 T");
        assert_eq!(metric(123, "T"), "123 T");
        assert_eq!(metric(1500, "T"), "1.50 kT");
        assert_eq!(metric(12_345_678, "T"), "12.3 MT");
    }

    #[test]
    fn megatron_index_layout() {
        let mut b = Vec::new();
        write_megatron_index(&mut b, TokenDtype::U16, &[3, 5]).unwrap();
        assert_eq!(&b[..9], MEGATRON_MAGIC);
        assert_eq!(b[17], MEGATRON_UINT16);
        assert_eq!(b.len(), 34 + 2 * 4 + 2 * 8 + 3 * 8);
        // Second pointer: 3 tokens of 2 bytes.
        assert_eq!(i64::from_le_bytes(b[50..58].try_into().unwrap()), 6);
    }

    #[test]
    fn bad_component_names_are_refused() {
        for n in ["", ".hidden", "a/b", "..", "a\\b"] {
            assert!(check_component_name(n).is_err(), "{n}");
        }
        check_component_name("web-fr_2").unwrap();
    }
}
