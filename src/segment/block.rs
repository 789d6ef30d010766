//! One decompressed document block.
//!
//! Uncompressed layout: `n: u32`, then `n` quadruples of u32 lengths (key,
//! text, prefix, suffix), then all keys, all texts, all prefixes and all
//! suffixes back to back. Grouping like with like compresses better than
//! interleaving.

use crate::segment::DocRecord;

/// Parts of a stored document, in block order.
const PARTS: usize = 4;

/// A decompressed block with O(1) access to each document's parts.
#[derive(Debug, Clone)]
pub struct Block {
    data: Vec<u8>,
    /// Per document and part: (start, end) offsets in `data`.
    spans: Vec<[(u32, u32); PARTS]>,
    /// The texts region, validated as UTF-8 on first use of `text()`
    /// (byte consumers such as the byte tokenizer never pay for it).
    texts: (usize, usize),
    texts_valid: std::sync::OnceLock<bool>,
}

/// Serializes documents into a block's uncompressed layout.
pub fn encode(docs: &[DocRecord], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&(docs.len() as u32).to_le_bytes());
    for d in docs {
        for len in [d.key.len(), d.text.len(), d.prefix.len(), d.suffix.len()] {
            out.extend_from_slice(&(len as u32).to_le_bytes());
        }
    }
    for d in docs {
        out.extend_from_slice(d.key.as_bytes());
    }
    for d in docs {
        out.extend_from_slice(d.text.as_bytes());
    }
    for d in docs {
        out.extend_from_slice(&d.prefix);
    }
    for d in docs {
        out.extend_from_slice(&d.suffix);
    }
}

impl Block {
    /// Parses a decompressed block, checking every length against the data.
    pub fn decode(data: Vec<u8>) -> Result<Block, String> {
        let rd = |at: usize| -> Result<usize, String> {
            data.get(at..at + 4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
                .ok_or_else(|| "block header truncated".to_string())
        };
        let n = rd(0)?;
        let header = n
            .checked_mul(4 * PARTS)
            .and_then(|x| x.checked_add(4))
            .filter(|&h| h <= data.len())
            .ok_or_else(|| format!("block claims {n} documents but holds {} bytes", data.len()))?;
        let mut lens = Vec::with_capacity(n);
        let mut totals = [0usize; PARTS];
        for i in 0..n {
            let mut l = [0usize; PARTS];
            for (p, slot) in l.iter_mut().enumerate() {
                *slot = rd(4 + (i * PARTS + p) * 4)?;
                totals[p] = totals[p]
                    .checked_add(*slot)
                    .ok_or("block length overflow")?;
            }
            lens.push(l);
        }
        if header.checked_add(totals.iter().sum::<usize>()) != Some(data.len()) {
            return Err("block lengths do not add up to its size".into());
        }
        let mut cur = [0usize; PARTS];
        cur[0] = header;
        for p in 1..PARTS {
            cur[p] = cur[p - 1] + totals[p - 1];
        }
        let Ok(keys) = std::str::from_utf8(&data[header..cur[1]]) else {
            return Err("block keys are not valid UTF-8".into());
        };
        let texts = (cur[1], cur[2]);
        // In valid UTF-8 a position is a character boundary exactly when the
        // byte there is not a continuation byte.
        let text_boundary = |at: usize| at == texts.1 || (data[at] & 0xC0) != 0x80;
        let mut spans = Vec::with_capacity(lens.len());
        for l in lens {
            let mut s = [(0u32, 0u32); PARTS];
            for p in 0..PARTS {
                s[p] = (cur[p] as u32, (cur[p] + l[p]) as u32);
                cur[p] += l[p];
            }
            // Keys and texts must start and end on character boundaries, so
            // that `key()` and `text()` can slice without validating again.
            let (ka, kb) = (s[0].0 as usize - header, s[0].1 as usize - header);
            if !keys.is_char_boundary(ka) || !keys.is_char_boundary(kb) {
                return Err("a key boundary splits a UTF-8 character".into());
            }
            if !text_boundary(s[1].0 as usize) || !text_boundary(s[1].1 as usize) {
                return Err("a text boundary splits a UTF-8 character".into());
            }
            spans.push(s);
        }
        Ok(Block {
            data,
            spans,
            texts,
            texts_valid: std::sync::OnceLock::new(),
        })
    }

    /// Documents in the block.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the block holds no document.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn part(&self, i: usize, p: usize) -> &[u8] {
        let (a, b) = self.spans[i][p];
        &self.data[a as usize..b as usize]
    }

    /// Whether the texts region is valid UTF-8 (checked once).
    fn texts_valid(&self) -> bool {
        *self
            .texts_valid
            .get_or_init(|| std::str::from_utf8(&self.data[self.texts.0..self.texts.1]).is_ok())
    }

    /// Checks that every text is valid UTF-8 (what `verify` calls).
    pub fn check_text(&self) -> Result<(), String> {
        if self.texts_valid() {
            Ok(())
        } else {
            Err("block text is not valid UTF-8".into())
        }
    }

    fn part_str(&self, i: usize, p: usize) -> &str {
        let b = self.part(i, p);
        if p == 1 && !self.texts_valid() {
            // Only reachable through damage that the block's CRC32C missed.
            return "";
        }
        debug_assert!(std::str::from_utf8(b).is_ok());
        // SAFETY: keys were validated in `decode`, texts by `texts_valid`
        // just above; every key and text starts and ends on a character
        // boundary of its validated region (checked in `decode`), and `data`
        // is never mutated afterwards.
        unsafe { std::str::from_utf8_unchecked(b) }
    }

    /// The raw UTF-8 bytes of document `i`'s text, without validation.
    pub fn text_bytes(&self, i: usize) -> &[u8] {
        self.part(i, 1)
    }

    /// The key of document `i` of the block.
    pub fn key(&self, i: usize) -> &str {
        self.part_str(i, 0)
    }

    /// The text of document `i` of the block.
    pub fn text(&self, i: usize) -> &str {
        self.part_str(i, 1)
    }

    /// The JSON before the text value of document `i`.
    pub fn prefix(&self, i: usize) -> &[u8] {
        self.part(i, 2)
    }

    /// The JSON after the text value of document `i`.
    pub fn suffix(&self, i: usize) -> &[u8] {
        self.part(i, 3)
    }

    /// Writes document `i` as one JSON object (no newline), field order as ingested.
    pub fn write_json(&self, i: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix(i));
        crate::json::write_str(out, self.text(i));
        out.extend_from_slice(self.suffix(i));
    }
}
