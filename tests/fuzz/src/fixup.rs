//! Checksum fix-ups for fuzz inputs, shared by the fuzz targets and by
//! `tests/fuzz_regressions.rs` (which includes this file with `#[path]`), so
//! that a saved input replays exactly as the fuzzer ran it. Both the framed
//! layouts written today (segment and sidecar format 2) and format 1 are
//! fixed up.

use corpusql::raw::format::{self, section, v1};

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}
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
/// CRC in the footer, and, in format 2, the frame CRC in the trailer), so
/// that the reader's later checks see the mutation. Leaves the bytes alone
/// where the footer does not locate a table.
pub fn fix_segment_crcs(b: &mut [u8]) {
    let n = b.len();
    let framed = u16_at(b, format::HEADER_VERSION_OFFSET).is_some_and(|v| v >= 2);
    let (f, trailer) = if framed {
        let tail = format::TRAILER_LEN + format::SEGMENT_FOOTER_LEN;
        if n < format::HEADER_LEN + tail {
            return;
        }
        (n - tail, Some(n - format::TRAILER_LEN))
    } else {
        if n < format::HEADER_LEN + v1::FOOTER_LEN {
            return;
        }
        (n - v1::FOOTER_LEN, None)
    };
    fix_sections(b, f);
    if let Some(t) = trailer {
        let crc = crc32c::crc32c(&b[..t]);
        put_u32(b, t + format::TRAILER_CRC, crc);
    }
}

/// Fixes the block, section and table checksums of a segment whose footer
/// starts at `f`.
fn fix_sections(b: &mut [u8], f: usize) {
    let n = b.len();
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

/// Format-1 sidecar magic (mirrors `corpusql::raw::format::v1`).
pub const SIDECAR_MAGIC: &[u8; 8] = &v1::SIDECAR_MAGIC;
/// Format-1 sidecar footer magic.
pub const SIDECAR_FOOTER: &[u8; 4] = &v1::SIDECAR_FOOTER;

/// Where a sidecar's meta lies, `(start, end)`, as its trailer says (format
/// 2 when it starts with the framed magic, else format 1), if in bounds.
pub fn sidecar_meta_span(b: &[u8]) -> Option<(usize, usize)> {
    let n = b.len();
    if b.starts_with(&format::SIDECAR_MAGIC) {
        let end = n.checked_sub(format::TRAILER_LEN + format::SIDECAR_TAIL_LEN)?;
        let len = u32_at(b, end)? as usize;
        let start = end.checked_sub(len).filter(|&s| s >= format::HEADER_LEN)?;
        Some((start, end))
    } else {
        let end = n.checked_sub(v1::SIDECAR_TRAILER_LEN)?;
        let len = u32_at(b, end)? as usize;
        let start = end
            .checked_sub(len)
            .filter(|&s| s >= v1::SIDECAR_MAGIC.len())?;
        Some((start, end))
    }
}

/// Rewrites a sidecar's checksums: each column's CRC inside the meta (when
/// the meta decodes), then the meta's CRC after it, and, in format 2, the
/// frame's payload length and CRC in the trailer. Leaves the bytes alone
/// when the trailer does not locate a meta.
pub fn fix_sidecar_crcs(b: Vec<u8>) -> Vec<u8> {
    let n = b.len();
    let framed = b.starts_with(&format::SIDECAR_MAGIC);
    if !framed && (n < 4 || &b[n - 4..] != SIDECAR_FOOTER) {
        return b;
    }
    let Some((start, end)) = sidecar_meta_span(&b) else {
        return b;
    };
    let mut mb = b[start..end].to_vec();
    if let Ok(mut meta) = postcard::from_bytes::<corpusql::raw::segment::sidecar::SidecarMeta>(&mb)
    {
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
    let mut out = b[..start].to_vec();
    out.extend_from_slice(&mb);
    out.extend_from_slice(&(mb.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&mb).to_le_bytes());
    if framed {
        // Payload length and CRC recomputed; version, reserved and magic
        // kept as the input has them.
        let payload = (out.len() - format::HEADER_LEN) as u64;
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&payload.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&b[n - format::TRAILER_LEN + format::TRAILER_VERSION..]);
    } else {
        out.extend_from_slice(SIDECAR_FOOTER);
    }
    out
}
