//! Tokenizers for the streamer: the built-in byte tokenizer (each UTF-8 byte
//! is its id 0..255, end-of-document is 256) and Hugging Face `tokenizer.json`
//! files through the `tokenizers` crate; BPE training on selected documents;
//! and exact per-document token counts kept beside the segments, keyed by
//! the tokenizer's content hash, so plans and budgets are exact and instant
//! after the first pass (framed as [`FileKind::TokenCounts`], written with
//! [`crate::storage::write_file_atomic_private`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::corpus::Corpus;
use crate::error::{Error, IoContext, Result};
use crate::format::{self, v1, FileKind, FrameError};
use crate::segment::Segment;

mod gpt2;

/// End-of-document id of the byte tokenizer.
pub const BYTES_EOS: u32 = 256;

/// In a token-count file, a document not counted yet (format 3 on): a
/// stream counts only the documents its mixture selects.
pub const NOT_COUNTED: u32 = u32::MAX;

/// Token ids a stream's first pass computed while counting (text ids, then
/// the end-of-document id), kept for the stream so that it tokenizes each
/// selected document once. Bounded by [`KEEP_IDS_TOKENS`]: past it, ids are
/// not kept and the stream tokenizes those documents again.
#[derive(Debug, Default)]
pub struct KeptIds {
    map: std::collections::HashMap<(u32, u32), Arc<Vec<u32>>>,
    tokens: u64,
}

/// Tokens [`KeptIds`] holds at most (256 MiB of ids).
pub const KEEP_IDS_TOKENS: u64 = 64 << 20;

impl KeptIds {
    /// The ids of document `ord` of segment `part`, if kept.
    pub fn get(&self, part: u32, ord: u32) -> Option<&Arc<Vec<u32>>> {
        self.map.get(&(part, ord))
    }

    /// Documents kept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Keeps `ids` unless the budget is spent.
    fn keep(&mut self, part: u32, ord: u32, ids: Vec<u32>) {
        if self.tokens + ids.len() as u64 <= KEEP_IDS_TOKENS {
            self.tokens += ids.len() as u64;
            self.map.insert((part, ord), Arc::new(ids));
        }
    }
}

/// A tokenizer usable by the streamer.
#[derive(Clone)]
pub enum Tokenizer {
    /// UTF-8 bytes as ids 0..255, end-of-document 256.
    Bytes,
    /// A Hugging Face tokenizer.
    Hf {
        /// The loaded tokenizer.
        tok: Arc<tokenizers::Tokenizer>,
        /// End-of-document id.
        eos: u32,
        /// Content hash of the tokenizer file (hex xxh3-64).
        hash: String,
        /// Where it was loaded from.
        path: PathBuf,
        /// How [`fast_encode`] gives its ids, if it does (no truncation,
        /// padding or BPE dropout).
        fast: Option<FastPath>,
    },
    /// Another tokenizer applied to the text with personal data replaced
    /// by placeholders ([`crate::tag::pii::redact`]); its counts are kept
    /// under their own id.
    Redacted {
        /// The tokenizer behind it.
        inner: Box<Tokenizer>,
    },
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id())
    }
}

/// Special tokens tried, in order, as the end-of-document id.
const EOS_CANDIDATES: &[&str] = &[
    "<|endoftext|>",
    "</s>",
    "<eos>",
    "<|end_of_text|>",
    "[SEP]",
    "<|eos|>",
];

impl Tokenizer {
    /// `bytes` or a path to a `tokenizer.json`.
    pub fn load(spec: &str) -> Result<Tokenizer> {
        if spec == "bytes" {
            return Ok(Tokenizer::Bytes);
        }
        let path = PathBuf::from(spec);
        let bytes = std::fs::read(&path).at(&path)?;
        let tok = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| {
            Error::Invalid(format!("{}: not a tokenizer.json: {e}", path.display()))
        })?;
        let eos = EOS_CANDIDATES
            .iter()
            .find_map(|t| tok.token_to_id(t))
            .unwrap_or(tok.get_vocab_size(true) as u32);
        let fast = (tok.get_truncation().is_none()
            && tok.get_padding().is_none()
            && match tok.get_model() {
                tokenizers::ModelWrapper::BPE(b) => b.dropout.is_none(),
                _ => true,
            })
        .then(|| match tok.get_pre_tokenizer() {
            Some(tokenizers::PreTokenizerWrapper::ByteLevel(b)) if b.use_regex => {
                FastPath::ByteLevel {
                    prefix_space: b.add_prefix_space,
                }
            }
            _ => FastPath::Words,
        });
        Ok(Tokenizer::Hf {
            tok: Arc::new(tok),
            eos,
            hash: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)),
            path,
            fast,
        })
    }

    /// This tokenizer behind personal-data redaction (no-op when `redact` is false).
    pub fn redacting(self, redact: bool) -> Tokenizer {
        match (redact, self) {
            (true, t @ Tokenizer::Redacted { .. }) => t,
            (true, t) => Tokenizer::Redacted { inner: Box::new(t) },
            (false, t) => t,
        }
    }

    /// A stable identifier: `bytes` or `hf-<content hash>` (with
    /// `+redact-pii` behind redaction).
    pub fn id(&self) -> String {
        match self {
            Tokenizer::Bytes => "bytes".into(),
            Tokenizer::Hf { hash, .. } => format!("hf-{hash}"),
            Tokenizer::Redacted { inner } => format!("{}+redact-pii", inner.id()),
        }
    }

    /// The end-of-document id.
    pub fn eos(&self) -> u32 {
        match self {
            Tokenizer::Bytes => BYTES_EOS,
            Tokenizer::Hf { eos, .. } => *eos,
            Tokenizer::Redacted { inner } => inner.eos(),
        }
    }

    /// Number of ids (largest id + 1), end-of-document included.
    pub fn vocab_size(&self) -> u32 {
        match self {
            Tokenizer::Bytes => BYTES_EOS + 1,
            Tokenizer::Hf { tok, eos, .. } => (tok.get_vocab_size(true) as u32).max(eos + 1),
            Tokenizer::Redacted { inner } => inner.vocab_size(),
        }
    }

    /// Appends the ids of `text` (no end-of-document) to `out`.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        match self {
            Tokenizer::Redacted { inner } => inner.encode(&crate::tag::pii::redact(text), out)?,
            Tokenizer::Bytes => out.extend(text.bytes().map(u32::from)),
            Tokenizer::Hf {
                tok,
                fast: Some(path),
                ..
            } => fast_encode(tok, *path, text, out)?,
            Tokenizer::Hf { tok, .. } => {
                let enc = tok
                    .encode_fast(text, false)
                    .map_err(|e| Error::Invalid(format!("tokenizer: {e}")))?;
                out.extend_from_slice(enc.get_ids());
            }
        }
        Ok(())
    }

    /// Tokens of `text` plus one end-of-document.
    pub fn count(&self, text: &str) -> Result<u32> {
        Ok(match self {
            Tokenizer::Redacted { inner } => inner.count(&crate::tag::pii::redact(text))?,
            Tokenizer::Bytes => text.len() as u32 + 1,
            Tokenizer::Hf { fast: Some(_), .. } => {
                let mut v = Vec::new();
                self.encode(text, &mut v)?;
                v.len() as u32 + 1
            }
            Tokenizer::Hf { tok, .. } => {
                let enc = tok
                    .encode_fast(text, false)
                    .map_err(|e| Error::Invalid(format!("tokenizer: {e}")))?;
                enc.get_ids().len() as u32 + 1
            }
        })
    }

    /// Decodes ids back to text (the byte tokenizer skips end-of-document).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            Tokenizer::Redacted { inner } => inner.decode(ids),
            Tokenizer::Bytes => {
                let b: Vec<u8> = ids.iter().filter(|&&i| i < 256).map(|&i| i as u8).collect();
                Ok(String::from_utf8_lossy(&b).into_owned())
            }
            Tokenizer::Hf { tok, .. } => tok
                .decode(ids, false)
                .map_err(|e| Error::Invalid(format!("tokenizer: {e}"))),
        }
    }
}

/// Words (pre-tokenizer splits) already run through a tokenizer's model on
/// this thread, with their ids: most words of a corpus repeat, and the
/// model's own cache still builds a token (with its string) per id.
type WordIds =
    std::collections::HashMap<Box<str>, Box<[u32]>, xxhash_rust::xxh3::Xxh3DefaultBuilder>;

/// Words a thread keeps before starting over.
const WORD_CACHE: usize = 1 << 18;

thread_local! {
    /// The word cache of one tokenizer (by address) on this thread.
    static WORDS: std::cell::RefCell<(usize, WordIds)> = std::cell::RefCell::new((0, WordIds::default()));
}

/// How [`fast_encode`] reproduces a tokenizer's `encode_fast` ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastPath {
    /// The library's normalizer and pre-tokenizer, the model's ids cached
    /// per word.
    Words,
    /// A GPT-2 byte-level pre-tokenizer (`ByteLevel` with `use_regex`):
    /// its split and byte alphabet done here (no regex engine, no
    /// per-byte offset bookkeeping), the model's ids cached per raw word.
    ByteLevel {
        /// `add_prefix_space`: a space before each segment that has none.
        prefix_space: bool,
    },
}

/// The ids `tok.encode_fast(text, false)` gives, without building an
/// `Encoding`: the same pipeline (special tokens split off, normalizer,
/// pre-tokenizer, model on each split) with the model's ids cached per
/// word. For tokenizers without truncation, padding or dropout (which is
/// when the ids are a function of the text alone).
fn fast_encode(
    tok: &Arc<tokenizers::Tokenizer>,
    path: FastPath,
    text: &str,
    out: &mut Vec<u32>,
) -> Result<()> {
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizer};
    let err = |e: tokenizers::Error| Error::Invalid(format!("tokenizer: {e}"));
    let mut pre = tok
        .get_added_vocabulary()
        .extract_and_normalize(tok.get_normalizer(), text);
    if path == FastPath::Words {
        if let Some(pt) = tok.get_pre_tokenizer() {
            pt.pre_tokenize(&mut pre).map_err(err)?;
        }
    }
    let me = Arc::as_ptr(tok) as usize;
    let model = tok.get_model();
    WORDS.with(|w| {
        let mut w = w.borrow_mut();
        if w.0 != me || w.1.len() >= WORD_CACHE {
            w.0 = me;
            w.1.clear();
        }
        let words = &mut w.1;
        let mut spelt = String::new();
        for (piece, _, tokens) in pre.get_splits(OffsetReferential::Original, OffsetType::None) {
            if let Some(t) = tokens {
                out.extend(t.iter().map(|t| t.id));
                continue;
            }
            let FastPath::ByteLevel { prefix_space } = path else {
                // `piece` is a word the pre-tokenizer made, spelt for the model.
                word_ids(words, model, piece, None, out)?;
                continue;
            };
            // `piece` is the normalized text between special tokens.
            let spaced;
            let piece = if prefix_space && !piece.starts_with(' ') {
                spaced = format!(" {piece}");
                spaced.as_str()
            } else {
                piece
            };
            gpt2::split(piece, |word| {
                word_ids(words, model, word, Some(&mut spelt), out)
            })?;
        }
        Ok(())
    })
}

/// Appends the ids of `word` to `out`: from `words`, else from the model
/// (on its byte spelling, made in `spelling`, when one is given), then kept.
fn word_ids(
    words: &mut WordIds,
    model: &tokenizers::ModelWrapper,
    word: &str,
    spelling: Option<&mut String>,
    out: &mut Vec<u32>,
) -> Result<()> {
    use tokenizers::Model;
    if let Some(ids) = words.get(word) {
        out.extend_from_slice(ids);
        return Ok(());
    }
    let input = match spelling {
        Some(s) => {
            gpt2::byte_spelling(word, s);
            &**s
        }
        None => word,
    };
    let ids: Box<[u32]> = model
        .tokenize(input)
        .map_err(|e| Error::Invalid(format!("tokenizer: {e}")))?
        .iter()
        .map(|t| t.id)
        .collect();
    out.extend_from_slice(&ids);
    words.insert(word.into(), ids);
    Ok(())
}

/// Path of the token-count sidecar of `segment_file` for `tokenizer_id`.
pub fn counts_path(dir: &Path, segment_file: &str, tokenizer_id: &str) -> PathBuf {
    let stem = segment_file.strip_suffix(".cqs").unwrap_or(segment_file);
    dir.join(format!("{stem}.tok-{tokenizer_id}.cqc"))
}

/// The bytes of a token-count file holding `counts` (format 2: the common
/// frame of kind [`FileKind::TokenCounts`] around the `u32` count of
/// documents and one `u32` per document).
pub fn encode_counts(counts: &[u32]) -> Vec<u8> {
    let mut p = Vec::with_capacity(4 + 4 * counts.len());
    p.extend_from_slice(&(counts.len() as u32).to_le_bytes());
    for c in counts {
        p.extend_from_slice(&c.to_le_bytes());
    }
    format::encode(FileKind::TokenCounts, &p)
}

/// The counts in the bytes of token-count file `path` (format 2, or format
/// 1: magic `CQTC`, `u32` version 1, `u32` count, the counts, `u32` CRC32C),
/// which must hold `n` of them (the segment's documents).
pub fn decode_counts(path: &Path, b: &[u8], n: u32) -> Result<Vec<u32>> {
    let malformed = || Error::corrupt(path, "token-count file malformed (delete it to recompute)");
    let body = if b.starts_with(&v1::COUNTS_MAGIC) {
        let want = v1::COUNTS_HEADER_LEN + 4 * n as usize + 4;
        if b.len() < v1::COUNTS_HEADER_LEN {
            return Err(malformed());
        }
        let v = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        if v != v1::COUNTS_VERSION {
            return Err(Error::Version {
                path: path.into(),
                found: v,
                supported: v1::COUNTS_VERSION,
            });
        }
        if b.len() != want {
            return Err(malformed());
        }
        let crc = u32::from_le_bytes([b[want - 4], b[want - 3], b[want - 2], b[want - 1]]);
        if crc32c::crc32c(&b[..want - 4]) != crc {
            return Err(Error::corrupt(
                path,
                "token-count checksum mismatch (delete it to recompute)",
            ));
        }
        &b[8..want - 4]
    } else {
        let frame = format::decode_whole(FileKind::TokenCounts, b).map_err(|e| match e {
            FrameError::Future { .. } => e.into_error(path),
            e => Error::corrupt(
                path,
                format!("token-count file: {e} (delete it to recompute)"),
            ),
        })?;
        frame.payload
    };
    if body.len() < 4 {
        return Err(malformed());
    }
    if u32::from_le_bytes([body[0], body[1], body[2], body[3]]) != n {
        return Err(Error::corrupt(
            path,
            "token-count file is for another segment",
        ));
    }
    if body.len() != 4 + 4 * n as usize {
        return Err(malformed());
    }
    Ok(body[4..]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn read_counts(path: &Path, n: u32) -> Result<Option<Vec<u32>>> {
    let b = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    decode_counts(path, &b, n).map(Some)
}

/// Writes a token-count file atomically under a temporary name private to
/// this process and call: ranks started together may count the same segment
/// at once; the last rename wins and every copy is identical.
fn write_counts(path: &Path, counts: &[u32]) -> Result<()> {
    crate::storage::write_file_atomic_private(path, &encode_counts(counts))
}

/// Exact token counts (text tokens + 1 end-of-document) of every document
/// of a segment: from the `bytes` column for the byte tokenizer, else from
/// the sidecar file, computed and written on first use.
pub fn segment_counts(
    dir: &Path,
    file: &str,
    seg: &Segment,
    tok: &Tokenizer,
) -> Result<Arc<Vec<u32>>> {
    segment_counts_with(dir, file, seg, tok, &|_| {})
}

/// [`segment_counts`], calling `progress` with the text bytes of each block
/// as it is counted (from several threads), or with the segment's text bytes
/// at once when the counts were kept already.
pub fn segment_counts_with(
    dir: &Path,
    file: &str,
    seg: &Segment,
    tok: &Tokenizer,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Arc<Vec<u32>>> {
    if let Tokenizer::Bytes = tok {
        progress(seg.meta().text_bytes);
        let col = seg
            .numeric(crate::format::BYTES_FIELD)?
            .ok_or_else(|| Error::corrupt(seg.path(), "bytes column missing"))?;
        return Ok(Arc::new(col.iter().map(|&b| b as u32 + 1).collect()));
    }
    let path = counts_path(dir, file, &tok.id());
    let known = read_counts(&path, seg.doc_count())?;
    if let Some(c) = &known {
        if !c.contains(&NOT_COUNTED) {
            progress(seg.meta().text_bytes);
            return Ok(Arc::new(c.clone()));
        }
    }
    // A file of a stream's selection: count the others.
    let known = known.as_deref();
    let per_block: Vec<Vec<u32>> = (0..seg.blocks().len())
        .into_par_iter()
        .map(|b| {
            let block = seg.read_block(b)?;
            let first = seg.blocks()[b].first_doc as usize;
            let counts = (0..block.len())
                .map(|i| match known.and_then(|k| k.get(first + i)) {
                    Some(&c) if c != NOT_COUNTED => Ok(c),
                    _ => tok.count(block.text(i)),
                })
                .collect::<Result<Vec<u32>>>()?;
            progress((0..block.len()).map(|i| block.text(i).len() as u64).sum());
            Ok(counts)
        })
        .collect::<Result<_>>()?;
    let counts: Vec<u32> = per_block.into_iter().flatten().collect();
    // The sidecar is a cache: failing to keep it (a full disk, a writer's
    // orphan collection racing this reader) costs a recount next time, not
    // this stream.
    let _ = write_counts(&path, &counts);
    Ok(Arc::new(counts))
}

/// Token counts of the documents `need[i]` of each segment `i` of a snapshot
/// (other documents may read [`NOT_COUNTED`]): from the `bytes` column for
/// the byte tokenizer, else from the count file, counting (and writing
/// back) only the needed documents it lacks. The ids computed on the way
/// are returned, within [`KEEP_IDS_TOKENS`], so a stream need not
/// tokenize those documents again.
pub fn selected_counts(
    corpus: &Corpus,
    tok: &Tokenizer,
    need: &[roaring::RoaringBitmap],
    stored: &[Option<Arc<crate::token_ids::SegmentIds>>],
) -> Result<(Vec<Arc<Vec<u32>>>, KeptIds)> {
    let mut kept = KeptIds::default();
    let mut out = Vec::with_capacity(corpus.segments().len());
    for (i, s) in corpus.segments().iter().enumerate() {
        let seg = &s.segment;
        let empty = roaring::RoaringBitmap::new();
        let want = need.get(i).unwrap_or(&empty);
        if let Tokenizer::Bytes = tok {
            out.push(segment_counts(corpus.dir(), &s.entry.file, seg, tok)?);
            continue;
        }
        let path = counts_path(corpus.dir(), &s.entry.file, &tok.id());
        let mut counts = match read_counts(&path, seg.doc_count())? {
            Some(c) => c,
            None => vec![NOT_COUNTED; seg.doc_count() as usize],
        };
        // Stored ids hold their documents' counts.
        if let Some(Some(ids)) = stored.get(i) {
            for o in want.iter() {
                if counts.get(o as usize) == Some(&NOT_COUNTED) {
                    if let Some(n) = ids.count(o) {
                        counts[o as usize] = n;
                    }
                }
            }
        }
        let missing: Vec<u32> = want
            .iter()
            .filter(|&o| counts.get(o as usize) == Some(&NOT_COUNTED))
            .collect();
        if missing.is_empty() {
            out.push(Arc::new(counts));
            continue;
        }
        // By block, in parallel: read each block once, tokenize its needed
        // documents.
        let mut by_block: Vec<(usize, Vec<u32>)> = Vec::new();
        for &o in &missing {
            let b = seg.block_of(o);
            match by_block.last_mut() {
                Some((lb, v)) if *lb == b => v.push(o),
                _ => by_block.push((b, vec![o])),
            }
        }
        let eos = tok.eos();
        let done: Vec<Vec<(u32, Vec<u32>)>> = by_block
            .into_par_iter()
            .map(|(b, ords)| {
                let block = seg.read_block(b)?;
                let first = seg.blocks()[b].first_doc;
                ords.into_iter()
                    .map(|o| {
                        let mut v = Vec::new();
                        tok.encode(block.text((o - first) as usize), &mut v)?;
                        v.push(eos);
                        Ok((o, v))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        for (o, ids) in done.into_iter().flatten() {
            counts[o as usize] = ids.len() as u32;
            kept.keep(i as u32, o, ids);
        }
        // A cache: failing to keep it costs a recount next time.
        let _ = write_counts(&path, &counts);
        out.push(Arc::new(counts));
    }
    Ok((out, kept))
}

/// Token counts of every segment of a snapshot (same order as its segments).
pub fn corpus_counts(corpus: &Corpus, tok: &Tokenizer) -> Result<Vec<Arc<Vec<u32>>>> {
    corpus
        .segments()
        .iter()
        .map(|s| segment_counts(corpus.dir(), &s.entry.file, &s.segment, tok))
        .collect()
}

/// Trains a byte-level BPE tokenizer with `vocab_size` ids on the texts of
/// `sel` and writes it as `tokenizer.json` to `out`.
pub fn train_bpe(sel: &crate::select::Selection, vocab_size: usize, out: &Path) -> Result<()> {
    use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
    use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::{AddedToken, TokenizerBuilder};
    let err = |e: tokenizers::Error| Error::Invalid(format!("tokenizer training: {e}"));
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tok = TokenizerBuilder::<
        BPE,
        tokenizers::NormalizerWrapper,
        ByteLevel,
        ByteLevel,
        ByteLevelDecoder,
    >::new()
    .with_model(BPE::default())
    .with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)))
    .with_post_processor(Some(ByteLevel::default().trim_offsets(false)))
    .with_decoder(Some(ByteLevelDecoder::default()))
    .build()
    .map_err(err)?;
    let mut texts = Vec::new();
    for d in sel.documents() {
        texts.push(d?.text);
    }
    tok.train(&mut trainer, texts.into_iter()).map_err(err)?;
    tok.save(out, false).map_err(err)?;
    Ok(())
}
