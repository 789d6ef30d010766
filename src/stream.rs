//! Former home of the streamer, kept so that `corpusql::stream::*` paths
//! still resolve while callers move to [`crate::train`], where the
//! streamer now lives (split into schedule, engine, stream, state, encode
//! and trace).

pub use crate::train::engine::{Emitted, Engine, EngineOptions};
pub use crate::train::schedule::{Scheduled, Scheduler};
pub use crate::train::state::{StreamState, STATE_VERSION};
pub use crate::train::stream::{Batch, Stream, StreamOptions};
pub use crate::train::trace::{trace, TraceHit};
