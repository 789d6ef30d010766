//! Progress of long operations (ingest, tagging), reported to whoever
//! called them: the library counts, the caller decides whether and how to
//! show it (the command line draws a bar on a terminal). The library itself
//! never writes to the terminal.

use std::sync::Arc;

/// What a progress count measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Input bytes read.
    Bytes,
    /// Documents processed.
    Documents,
}

/// Receives the progress of a long operation. Calls may come from any
/// thread.
pub trait Progress: Send + Sync {
    /// A phase starts: `what` (an input's name, `tagging`), `total` units
    /// (0 when unknown).
    fn start(&self, what: &str, total: u64, unit: Unit);
    /// The phase has done `done` units in all.
    fn set(&self, done: u64);
    /// `n` more units are done.
    fn advance(&self, n: u64);
    /// The phase ended.
    fn finish(&self);
}

/// A shareable progress receiver, as options carry it (`None`: nobody
/// listens).
#[derive(Clone)]
pub struct ProgressSink(pub Arc<dyn Progress>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

impl ProgressSink {
    /// Wraps a receiver.
    pub fn new(p: impl Progress + 'static) -> ProgressSink {
        ProgressSink(Arc::new(p))
    }
}

/// Calls `f` on the sink when there is one.
pub(crate) fn with(sink: &Option<ProgressSink>, f: impl FnOnce(&dyn Progress)) {
    if let Some(s) = sink {
        f(&*s.0);
    }
}
