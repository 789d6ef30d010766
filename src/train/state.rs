//! The resume state of a stream: a small serde value that names what the
//! stream is bound to (corpus generation or selected documents, mixture,
//! tokenizer, sequence length) and where it stands (the next global
//! sequence), and the check that refuses to resume a stream that would not
//! continue the same token sequence ([`Error::ResumeMismatch`]).

use serde::{Deserialize, Serialize};

use super::mixture::{Mixture, Resolved};
use crate::corpus::Corpus;
use crate::error::{Error, Result, ResumeField};

/// The version of [`StreamState`] this build writes.
pub const STATE_VERSION: u32 = 3;

/// A resumable position in a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// State format version.
    pub version: u32,
    /// Corpus generation the stream reads.
    pub generation: u64,
    /// Hash of the mixture.
    pub mixture_hash: String,
    /// Tokenizer id.
    pub tokenizer: String,
    /// Sequence length.
    pub seq_len: usize,
    /// The next global sequence to emit (every rank has emitted all before it).
    pub next_sequence: u64,
    /// Fingerprint of what the schedule depends on: the snapshot's segments
    /// and each component's selected documents (version 2 on). A state whose
    /// fingerprint matches resumes on a later generation that changed
    /// neither, such as one that only added tag signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    /// The weight changes in force (version 3 on), in order: a resume
    /// applies them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_changes: Vec<super::mixture::WeightChange>,
}

impl StreamState {
    /// Writes the state as JSON to `path`, atomically and durably (a
    /// temporary file renamed over it, file and directory synced): a crash
    /// leaves the previous state or this one, never half of one.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        crate::storage::write_file_atomic(path, &json)
    }

    /// Reads a state written by [`StreamState::save`] (or any JSON of it).
    pub fn load(path: &std::path::Path) -> Result<StreamState> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{}: not a stream state: {e}", path.display())))
    }

    /// Refuses a state that does not belong to this corpus and mixture, with
    /// an [`Error::ResumeMismatch`] naming the first field that differs (in
    /// the order version, documents, mixture, tokenizer, seq_len).
    /// `selection` is the fingerprint of the stream about to resume (see
    /// [`super::engine::Engine::state`]); a version-1 state, which has none,
    /// must be of the same generation.
    pub fn check(
        &self,
        generation: u64,
        selection: &str,
        m: &Mixture,
        tokenizer: &str,
    ) -> Result<()> {
        let refuse = |what, state: String, current: String| {
            Err(Error::ResumeMismatch {
                what,
                state,
                current,
            })
        };
        if self.version != STATE_VERSION {
            return refuse(
                ResumeField::Version,
                self.version.to_string(),
                STATE_VERSION.to_string(),
            );
        }
        match &self.selection {
            Some(f) if f != selection => {
                return refuse(
                    ResumeField::Documents,
                    format!("generation {}, documents {f}", self.generation),
                    format!("generation {generation}, documents {selection}"),
                );
            }
            None if self.generation != generation => {
                return refuse(
                    ResumeField::Generation,
                    self.generation.to_string(),
                    generation.to_string(),
                );
            }
            _ => {}
        }
        let hash = m.hash();
        if self.mixture_hash != hash {
            return refuse(ResumeField::Mixture, self.mixture_hash.clone(), hash);
        }
        if self.tokenizer != tokenizer {
            return refuse(
                ResumeField::Tokenizer,
                self.tokenizer.clone(),
                tokenizer.to_string(),
            );
        }
        if self.seq_len != m.seq_len {
            return refuse(
                ResumeField::SeqLen,
                self.seq_len.to_string(),
                m.seq_len.to_string(),
            );
        }
        Ok(())
    }
}

/// xxh3-128 of the snapshot's segments (file, documents, blocks) and of
/// each component's selected ordinals per segment: everything the schedule
/// reads besides the mixture and the token counts (a function of a
/// segment's text and the tokenizer).
pub(crate) fn selection_fingerprint(corpus: &Corpus, resolved: &Resolved) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for s in corpus.segments() {
        let name = s.segment.path().file_name().unwrap_or_default();
        h.update(name.as_encoded_bytes());
        h.update(&[0]);
        h.update(&s.segment.doc_count().to_le_bytes());
        h.update(&(s.segment.blocks().len() as u64).to_le_bytes());
    }
    let mut buf = Vec::new();
    for (c, sel) in resolved.selections.iter().enumerate() {
        h.update(&(c as u64).to_le_bytes());
        for (p, (_, bm)) in sel.parts().iter().enumerate() {
            buf.clear();
            // Serializing into a Vec cannot fail.
            let _ = bm.serialize_into(&mut buf);
            h.update(&(p as u64).to_le_bytes());
            h.update(&(buf.len() as u64).to_le_bytes());
            h.update(&buf);
        }
    }
    format!("{:032x}", h.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mixture() -> Mixture {
        Mixture::parse(
            "seed = 42\nseq_len = 128\n[[component]]\nname = \"fr\"\nquery = \"lang=fr\"\nweight = 1\n",
        )
        .unwrap()
    }

    fn state(m: &Mixture) -> StreamState {
        StreamState {
            version: STATE_VERSION,
            generation: 7,
            mixture_hash: m.hash(),
            tokenizer: "bytes".into(),
            seq_len: m.seq_len,
            next_sequence: 12_345,
            selection: Some("ab".repeat(16)),
            weight_changes: Vec::new(),
        }
    }

    fn mismatch(r: Result<()>) -> (ResumeField, String, String, String) {
        match r {
            Err(e @ Error::ResumeMismatch { .. }) => {
                let msg = e.to_string();
                let Error::ResumeMismatch {
                    what,
                    state,
                    current,
                } = e
                else {
                    unreachable!()
                };
                (what, state, current, msg)
            }
            other => panic!("not a resume mismatch: {other:?}"),
        }
    }

    #[test]
    fn json_round_trip() {
        let m = mixture();
        let st = state(&m);
        let json = serde_json::to_string(&st).unwrap();
        assert_eq!(serde_json::from_str::<StreamState>(&json).unwrap(), st);
        // A version 1 state has no fingerprint and writes none.
        let v1 = StreamState {
            version: 1,
            selection: None,
            ..st
        };
        let json = serde_json::to_string(&v1).unwrap();
        assert!(!json.contains("selection"), "{json}");
        assert_eq!(serde_json::from_str::<StreamState>(&json).unwrap(), v1);
    }

    #[test]
    fn a_matching_state_resumes() {
        let m = mixture();
        let st = state(&m);
        let f = st.selection.clone().unwrap();
        st.check(7, &f, &m, "bytes").unwrap();
        // Same documents on a later generation.
        st.check(9, &f, &m, "bytes").unwrap();
    }

    #[test]
    fn refusal_names_the_version() {
        let m = mixture();
        // Older states (whole documents blended) and future ones.
        for v in [1, 2, 4] {
            let mut st = state(&m);
            st.version = v;
            let f = st.selection.clone().unwrap();
            let (what, s, now, msg) = mismatch(st.check(7, &f, &m, "bytes"));
            assert_eq!(what, ResumeField::Version);
            assert_eq!((s, now.as_str()), (v.to_string(), "3"));
            assert!(
                msg.contains("version") && msg.contains("start the stream again"),
                "{msg}"
            );
        }
    }

    #[test]
    fn refusal_names_the_selected_documents() {
        let m = mixture();
        let st = state(&m);
        let (what, s, now, msg) = mismatch(st.check(9, "0123", &m, "bytes"));
        assert_eq!(what, ResumeField::Documents);
        assert!(s.contains("generation 7") && now.contains("generation 9"));
        assert!(s.contains(&"ab".repeat(16)) && now.contains("0123"));
        assert!(
            msg.contains("generation") && msg.contains("changed"),
            "{msg}"
        );
    }

    #[test]
    fn refusal_names_the_mixture() {
        let m = mixture();
        let st = state(&m);
        let f = st.selection.clone().unwrap();
        let mut m2 = m.clone();
        m2.seed = 43;
        let (what, s, now, msg) = mismatch(st.check(7, &f, &m2, "bytes"));
        assert_eq!(what, ResumeField::Mixture);
        assert_eq!((s, now.clone()), (m.hash(), m2.hash()));
        assert!(
            msg.starts_with(&format!(
                "cannot resume: the mixture differs (state: {}, now: {})",
                m.hash(),
                m2.hash()
            )),
            "{msg}"
        );
    }

    #[test]
    fn refusal_names_the_tokenizer() {
        let m = mixture();
        let st = state(&m);
        let f = st.selection.clone().unwrap();
        let (what, s, now, msg) = mismatch(st.check(7, &f, &m, "hf-0123"));
        assert_eq!(what, ResumeField::Tokenizer);
        assert_eq!((s.as_str(), now.as_str()), ("bytes", "hf-0123"));
        assert!(msg.contains("tokenizer"), "{msg}");
    }

    #[test]
    fn refusal_names_the_seq_len() {
        let m = mixture();
        let mut st = state(&m);
        // A state of another seq_len, with the hash of this mixture: only
        // the sequence length differs.
        st.seq_len = 64;
        let f = st.selection.clone().unwrap();
        let (what, s, now, msg) = mismatch(st.check(7, &f, &m, "bytes"));
        assert_eq!(what, ResumeField::SeqLen);
        assert_eq!((s.as_str(), now.as_str()), ("64", "128"));
        assert!(msg.contains("seq_len"), "{msg}");
    }
}
