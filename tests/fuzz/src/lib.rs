//! Helpers shared by the fuzz targets: a tiny corpus built once per process,
//! a scratch file to hand bytes to readers that take a path, and checksum
//! fix-ups so that mutated segments and sidecars get past their CRC32C checks
//! (an attacker can compute a checksum; a fuzzer rarely guesses one).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::OnceLock;

use corpusql::{ingest, Corpus, IngestOptions, Input};

/// The largest single allocation a target may make. Without a sanitizer
/// libFuzzer's `-malloc_limit_mb` sees no allocation, so the bound is kept
/// here: a bigger request aborts, which libFuzzer reports as a crash and
/// saves the input. (`-rss_limit_mb` still bounds the total.)
pub const MAX_ALLOC: usize = 256 << 20;

struct Bounded;

// SAFETY: forwards to the system allocator unchanged, after a size check.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        check(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        check(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        check(new);
        System.realloc(p, l, new)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

fn check(size: usize) {
    if size > MAX_ALLOC {
        // No allocation may happen here: write the message by hand.
        let msg = b"==corpusql-fuzz== allocation over MAX_ALLOC (256 MiB): out-of-memory finding\n";
        // SAFETY: writes a static buffer to stderr.
        unsafe { libc_write(2, msg.as_ptr(), msg.len()) };
        std::process::abort();
    }
}

extern "C" {
    #[link_name = "write"]
    fn libc_write(fd: i32, buf: *const u8, n: usize) -> isize;
}

#[global_allocator]
static ALLOC: Bounded = Bounded;

/// The golden test documents (30 lines of `tests/data/golden.jsonl`).
pub const GOLDEN_JSONL: &[u8] = include_bytes!("../../data/golden.jsonl");

struct Scratch {
    _dir: tempfile::TempDir,
    corpus: Corpus,
    file: PathBuf,
}

fn scratch() -> &'static Scratch {
    static S: OnceLock<Scratch> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let cdir = dir.path().join("corpus");
        let input = Input::Reader("golden.jsonl".into(), Box::new(GOLDEN_JSONL));
        ingest(&cdir, vec![input], &IngestOptions::default()).expect("ingest golden.jsonl");
        let corpus = Corpus::open(&cdir).expect("open the tiny corpus");
        let file = dir.path().join("input.bin");
        Scratch {
            _dir: dir,
            corpus,
            file,
        }
    })
}

/// A corpus of the 30 golden documents, built once per process.
pub fn corpus() -> &'static Corpus {
    &scratch().corpus
}

/// Writes `bytes` to this process's scratch file (named `name` in the
/// scratch directory) and returns its path.
pub fn write_scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch().file.with_file_name(name);
    std::fs::write(&p, bytes).expect("write scratch file");
    p
}

#[path = "fixup.rs"]
mod fixup;
pub use fixup::{
    fix_segment_crcs, fix_sidecar_crcs, sidecar_meta_span, SIDECAR_FOOTER, SIDECAR_MAGIC,
};
