//! Waiting without starving the rayon pool. A pool worker that blocks on a
//! thread which itself needs the pool (the segment writer, the stream's
//! prefetch thread) deadlocks when the pool has one worker: `--threads 1`,
//! `taskset -c 0`, a one-CPU container or a DataLoader worker. Where the
//! library may be called from a pool worker, it waits here instead, running
//! the pool's pending work meanwhile.

use std::time::Duration;

/// On a pool worker, runs pool work until `pending()` turns false; off the
/// pool, returns at once (the caller then blocks as usual).
pub(crate) fn help_while(mut pending: impl FnMut() -> bool) {
    if rayon::current_thread_index().is_none() {
        return;
    }
    while pending() {
        help_once();
    }
}

/// Runs one unit of pending pool work, or sleeps briefly when there is none.
pub(crate) fn help_once() {
    if rayon::yield_now() != Some(rayon::Yield::Executed) {
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Whether the calling thread is a worker of a rayon pool.
pub(crate) fn on_worker() -> bool {
    rayon::current_thread_index().is_some()
}
