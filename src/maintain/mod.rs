//! Changes to an existing corpus other than ingest: deleting by query
//! (tombstones, [`delete()`]), compaction (rewriting live documents into new,
//! freshly clustered segments, [`compact()`]), and verification of every
//! checksum ([`verify()`]). Each takes the corpus directory; the writers
//! take the corpus write lock themselves.

mod compact;
mod delete;
mod verify;

pub use compact::{compact, CompactReport};
pub use delete::delete;
pub use verify::{verify, SegmentCheck, VerifyReport};
