//! Checksum fix-ups for fuzz inputs, shared by the fuzz targets and by
//! `tests/fuzz_regressions.rs` (which includes this file with `#[path]`), so
//! that a saved input replays exactly as the fuzzer ran it.

use corpusql::format::{self, section};

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Rewrites every checksum of a segment file that can be located (block
/// CRCs in the block index, section CRCs in the section table, the table's
/// CRC in the footer), so that the reader's later checks see the mutation.
/// Leaves the bytes alone where the footer does not locate a table.
pub fn fix_segment_crcs(b: &mut [u8]) {
    let n = b.len();
    if n < format::HEADER_LEN + format::FOOTER_LEN {
        return;
    }
    let f = n - format::FOOTER_LEN;
    let (Some(table_off), Some(nsec)) = (
        u64_at(b, f + format::FOOTER_TABLE_OFFSET),
        u32_at(b, f + format::FOOTER_SECTION_COUNT),
    ) else {
        return;
    };
    let (table_off, nsec) = (table_off as usize, nsec as usize);
    if nsec > 64 || table_off.checked_add(nsec * format::SECTION_ENTRY_LEN) != Some(f) {
        return;
    }
    let entry = |b: &[u8], i: usize| {
        let e = table_off + i * format::SECTION_ENTRY_LEN;
        let id = u32_at(b, e)?;
        let off = u64_at(b, e + 8)? as usize;
        let len = u64_at(b, e + 16)? as usize;
        let end = off.checked_add(len).filter(|&x| x <= table_off)?;
        Some((id, off, end, e + 24))
    };
    // Block CRCs first: they live in the block index, whose own CRC follows.
    if let Some((_, bi_off, bi_end, _)) =
        (0..nsec).find_map(|i| entry(b, i).filter(|e| e.0 == section::BLOCK_INDEX))
    {
        let mut at = bi_off;
        while at + format::BLOCK_ENTRY_LEN <= bi_end {
            let off = u64_at(b, at).unwrap_or(0) as usize;
            let len = u32_at(b, at + 8).unwrap_or(0) as usize;
            if let Some(end) = off.checked_add(len).filter(|&e| e <= n) {
                let crc = crc32c::crc32c(&b[off..end]);
                put_u32(b, at + 24, crc);
            }
            at += format::BLOCK_ENTRY_LEN;
        }
    }
    for i in 0..nsec {
        if let Some((id, off, end, crc_at)) = entry(b, i) {
            // The `fst` dictionaries stay under their checksums: the fst
            // crate does not validate a dictionary's structure and may panic
            // walking a damaged one (see docs/reliability.md).
            if id == section::KEYS || id == section::TERMS {
                continue;
            }
            let crc = crc32c::crc32c(&b[off..end]);
            put_u32(b, crc_at, crc);
        }
    }
    let crc = crc32c::crc32c(&b[table_off..f]);
    put_u32(b, f + format::FOOTER_TABLE_CRC, crc);
}

/// Sidecar layout constants (mirrors `src/segment/sidecar.rs`).
pub const SIDECAR_MAGIC: &[u8; 8] = b"CQLTAG01";
/// The sidecar footer magic.
pub const SIDECAR_FOOTER: &[u8; 4] = b"CQTF";

/// Rewrites a sidecar's checksums: each column's CRC inside the meta (when
/// the meta decodes), then the meta's CRC in the trailer. Leaves the bytes
/// alone when the trailer does not locate a meta.
pub fn fix_sidecar_crcs(b: Vec<u8>) -> Vec<u8> {
    let n = b.len();
    if n < 20 || &b[n - 4..] != SIDECAR_FOOTER {
        return b;
    }
    let len = u32_at(&b, n - 12).unwrap_or(u32::MAX) as usize;
    if len > n - 20 {
        return b;
    }
    let body = &b[..n - 12 - len];
    let mut mb = b[n - 12 - len..n - 12].to_vec();
    if let Ok(mut meta) = postcard::from_bytes::<corpusql::segment::sidecar::SidecarMeta>(&mb) {
        for c in &mut meta.columns {
            let end = c.offset.checked_add(c.len).filter(|&e| e <= n as u64);
            if let Some(end) = end {
                c.crc = crc32c::crc32c(&b[c.offset as usize..end as usize]);
            }
        }
        // Offsets count from the start of the file and the meta comes last,
        // so a re-encoded meta of another length moves nothing.
        if let Ok(v) = postcard::to_stdvec(&meta) {
            mb = v;
        }
    }
    let mut out = body.to_vec();
    out.extend_from_slice(&mb);
    out.extend_from_slice(&(mb.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&mb).to_le_bytes());
    out.extend_from_slice(SIDECAR_FOOTER);
    out
}
