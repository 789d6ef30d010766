//! Token encodings for trainers: ids as little-endian `u16` or `u32`, and
//! the header of a NumPy `.npy` file (format 1.0) holding a `[rows,
//! seq_len]` array of them. `corpusql stream` writes these bytes; so can
//! any embedder.

use rayon::prelude::*;

use super::stream::Batch;
use crate::error::{Error, Result};

/// Largest vocabulary [`Encoding::U16`] holds.
pub const U16_VOCAB: u64 = 1 << 16;

/// How token ids are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// Little-endian `u16` (vocabularies up to 65,536 ids).
    U16,
    /// Little-endian `u32`.
    U32,
}

impl Encoding {
    /// The narrowest encoding holding every id of a `vocab_size`-id
    /// tokenizer.
    pub fn for_vocab(vocab_size: u32) -> Encoding {
        if u64::from(vocab_size) > U16_VOCAB {
            Encoding::U32
        } else {
            Encoding::U16
        }
    }

    /// Refuses an encoding too narrow for a `vocab_size`-id tokenizer
    /// ([`Error::TokenWidth`]).
    pub fn check(self, vocab_size: u32) -> Result<()> {
        match self {
            Encoding::U16 if u64::from(vocab_size) > U16_VOCAB => Err(Error::TokenWidth {
                ids: vocab_size.into(),
            }),
            _ => Ok(()),
        }
    }

    /// Bytes per id.
    pub fn width(self) -> usize {
        match self {
            Encoding::U16 => 2,
            Encoding::U32 => 4,
        }
    }

    /// The NumPy dtype (`<u2` or `<u4`).
    pub fn npy_dtype(self) -> &'static str {
        match self {
            Encoding::U16 => "<u2",
            Encoding::U32 => "<u4",
        }
    }

    /// Writes `ids` into `out` (exactly `ids.len() * width` bytes); refuses
    /// an id too large for the encoding.
    fn write(self, ids: &[u32], out: &mut [u8]) -> Result<()> {
        match self {
            Encoding::U16 => {
                // The width is checked first (a vectorized max), so that the
                // conversion loop has no exit.
                let max = ids.iter().fold(0u32, |a, &t| a.max(t));
                if max > u32::from(u16::MAX) {
                    return Err(Error::TokenWidth {
                        ids: u64::from(max) + 1,
                    });
                }
                for (d, &t) in out.chunks_exact_mut(2).zip(ids) {
                    d.copy_from_slice(&(t as u16).to_le_bytes());
                }
            }
            Encoding::U32 => {
                for (d, t) in out.chunks_exact_mut(4).zip(ids) {
                    d.copy_from_slice(&t.to_le_bytes());
                }
            }
        }
        Ok(())
    }
}

impl Batch {
    /// Replaces the contents of `out` with the batch's ids in `enc`,
    /// row-major (rows encoded in parallel). An id too large for `enc`
    /// gives [`Error::TokenWidth`].
    pub fn encode(&self, enc: Encoding, out: &mut Vec<u8>) -> Result<()> {
        let width = enc.width();
        // Every byte is written below: a reused buffer of the right size
        // is not cleared first.
        out.resize(self.tokens().len() * width, 0);
        let row = self.seq_len().max(1);
        out.par_chunks_mut(row * width)
            .zip(self.tokens().par_chunks(row))
            .try_for_each(|(o, ids)| enc.write(ids, o))
    }
}

/// The header of a `.npy` file (format 1.0) for a C-order `[rows, cols]`
/// array of `enc` ids: magic, version, header length, then the header
/// dictionary padded with spaces and a newline so that the data starts at
/// a multiple of 64 bytes.
pub fn npy_header(rows: u64, cols: usize, enc: Encoding) -> Vec<u8> {
    let descr = enc.npy_dtype();
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let total = 10 + dict.len() + 1;
    let pad = (64 - total % 64) % 64;
    dict.push_str(&" ".repeat(pad));
    dict.push('\n');
    let mut h = Vec::with_capacity(10 + dict.len());
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    // The dictionary is under 200 bytes: its length fits the u16 field.
    h.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(tokens: Vec<u32>, seq_len: usize) -> Batch {
        let rows = tokens.len() / seq_len;
        Batch {
            tokens,
            rows,
            seq_len,
            sequences: (0..rows as u64).collect(),
            components: vec![0; rows],
            locals: (0..rows as u64).collect(),
            doc_starts: vec![Vec::new(); rows],
            spans: Vec::new(),
            row_sums: vec![0; rows],
        }
    }

    #[test]
    fn the_encoding_follows_the_vocabulary() {
        assert_eq!(Encoding::for_vocab(257), Encoding::U16);
        assert_eq!(Encoding::for_vocab(65_536), Encoding::U16);
        assert_eq!(Encoding::for_vocab(65_537), Encoding::U32);
        Encoding::U16.check(65_536).unwrap();
        Encoding::U32.check(u32::MAX).unwrap();
        let e = Encoding::U16.check(65_537).unwrap_err();
        assert!(matches!(e, Error::TokenWidth { ids: 65_537 }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("65537") && msg.contains("u32"), "{msg}");
    }

    #[test]
    fn u16_boundaries() {
        let b = batch(vec![0, 1, 65_535, 256], 2);
        let mut out = vec![9; 3];
        b.encode(Encoding::U16, &mut out).unwrap();
        assert_eq!(out, [0, 0, 1, 0, 0xff, 0xff, 0, 1]);
        let b = batch(vec![0, 65_536, 7, 7], 2);
        match b.encode(Encoding::U16, &mut out) {
            Err(Error::TokenWidth { ids }) => assert_eq!(ids, 65_537),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn u32_is_little_endian() {
        let b = batch(vec![1, 0x0102_0304, u32::MAX, 0], 2);
        let mut out = Vec::new();
        b.encode(Encoding::U32, &mut out).unwrap();
        assert_eq!(
            out,
            [1, 0, 0, 0, 4, 3, 2, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]
        );
    }

    /// Parses a `.npy` header as numpy's `read_array_header_1_0` does:
    /// magic, version, a little-endian u16 length, an ASCII dict literal
    /// ending in a newline, the data 64-byte aligned.
    fn parse_npy(h: &[u8]) -> (String, bool, Vec<u64>, usize) {
        assert_eq!(&h[..6], b"\x93NUMPY");
        assert_eq!((h[6], h[7]), (1, 0), "format 1.0");
        let len = u16::from_le_bytes([h[8], h[9]]) as usize;
        let data = 10 + len;
        assert_eq!(data % 64, 0, "data aligned on 64 bytes");
        let dict = std::str::from_utf8(&h[10..data]).unwrap();
        assert!(dict.is_ascii() && dict.ends_with('\n'));
        let dict = dict.trim_end();
        assert!(dict.starts_with('{') && dict.ends_with('}'), "{dict}");
        let field = |k: &str| {
            let at = dict.find(&format!("'{k}': ")).unwrap() + k.len() + 4;
            &dict[at..]
        };
        let descr = field("descr");
        let descr = descr[1..descr[1..].find('\'').unwrap() + 1].to_string();
        let fortran = field("fortran_order").starts_with("True");
        let shape = field("shape");
        let shape: Vec<u64> = shape[1..shape.find(')').unwrap()]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        (descr, fortran, shape, data)
    }

    #[test]
    fn npy_header_parses_by_numpy_rules() {
        for (rows, cols, enc) in [
            (0, 1, Encoding::U16),
            (1562, 256, Encoding::U16),
            (3, 2048, Encoding::U32),
            (u64::MAX, 1 << 24, Encoding::U32),
        ] {
            let h = npy_header(rows, cols, enc);
            let (descr, fortran, shape, data) = parse_npy(&h);
            assert_eq!(data, h.len());
            assert_eq!(descr, enc.npy_dtype());
            assert!(!fortran);
            assert_eq!(shape, vec![rows, cols as u64]);
        }
        // The bytes corpusql has always written.
        let mut want = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        want.extend_from_slice(b"{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }");
        want.extend_from_slice(&[b' '; 58]);
        want.push(b'\n');
        assert_eq!(npy_header(2, 3, Encoding::U16), want);
    }
}
