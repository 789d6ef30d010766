//! Tagging on ingest: the taggers and their options a corpus runs after
//! every `ingest` commit, saved as a small TOML file in the corpus directory
//! (`tagging.toml`) by `corpusql tag --on-ingest` and removed by
//! `corpusql tag --stop-on-ingest`. Saving the options with the list keeps
//! the signal versions stable: a corpus tagged with `--languages fr,en`
//! goes on being tagged with them, instead of with the defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::language::LangConfig;
use super::{TagOptions, Tagger};
use crate::corpus::WriteLock;
use crate::error::{Error, Result};

/// File name of the settings inside a corpus directory.
pub const SETTINGS_FILE: &str = "tagging.toml";

/// What `ingest` runs after each commit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagSettings {
    /// Tagger names, e.g. `["language", "quality", "pii"]`.
    pub taggers: Vec<String>,
    /// Languages `lang_detected` may take.
    pub languages: Vec<String>,
    /// Where the OCR word lists are.
    pub dict_dir: String,
    /// Word lists of the toxicity tagger, when it runs.
    #[serde(default)]
    pub toxicity_lists: Option<String>,
    /// Memory for deduplication buffers before spilling, in MiB.
    pub dedup_memory_mb: u64,
}

impl TagSettings {
    /// The settings of a run with `opts`.
    pub fn from_options(opts: &TagOptions) -> TagSettings {
        TagSettings {
            taggers: opts.taggers.iter().map(|t| t.name().to_string()).collect(),
            languages: opts.languages.allowed.clone(),
            dict_dir: opts.dict_dir.display().to_string(),
            toxicity_lists: opts
                .toxicity_lists
                .as_ref()
                .map(|p| p.display().to_string()),
            dedup_memory_mb: (opts.dedup_memory >> 20).max(1) as u64,
        }
    }

    /// The options of a run with these settings (no query, no force, no
    /// progress bar: the caller sets those).
    pub fn options(&self) -> Result<TagOptions> {
        Ok(TagOptions {
            taggers: Tagger::parse_list(&self.taggers.join(","))?,
            query: None,
            languages: LangConfig {
                allowed: self.languages.clone(),
                ..Default::default()
            },
            dict_dir: PathBuf::from(&self.dict_dir),
            toxicity_lists: self.toxicity_lists.as_ref().map(PathBuf::from),
            progress: None,
            dedup_memory: (self.dedup_memory_mb.max(1) as usize) << 20,
            force: false,
        })
    }

    /// Reads the settings of the corpus in `dir` (`None` when it has none).
    pub fn load(dir: &Path) -> Result<Option<TagSettings>> {
        let path = dir.join(SETTINGS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let s: TagSettings = toml::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        s.options()
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        Ok(Some(s))
    }

    /// Writes the settings atomically (temporary file, fsync, rename) under
    /// the corpus write lock.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.options()?;
        let _lock = WriteLock::acquire(dir)?;
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
        let mut text = String::from(
            "# corpusql: taggers `ingest` runs after every commit (`corpusql tag --on-ingest`).\n# Remove with `corpusql tag --stop-on-ingest`; see docs/taggers.md.\n",
        );
        text.push_str(&format!("taggers = [{}]\n", list(&self.taggers)));
        text.push_str(&format!("languages = [{}]\n", list(&self.languages)));
        text.push_str(&format!("dict_dir = {}\n", q(&self.dict_dir)));
        if let Some(t) = &self.toxicity_lists {
            text.push_str(&format!("toxicity_lists = {}\n", q(t)));
        }
        text.push_str(&format!("dedup_memory_mb = {}\n", self.dedup_memory_mb));
        let path = dir.join(SETTINGS_FILE);
        crate::storage::write_file_atomic(&path, text.as_bytes())
    }

    /// Removes the settings; false when there were none.
    pub fn clear(dir: &Path) -> Result<bool> {
        let _lock = WriteLock::acquire(dir)?;
        let path = dir.join(SETTINGS_FILE);
        match crate::storage::remove_file(&path) {
            Ok(()) => {
                crate::storage::sync_dir(dir).map_err(|e| Error::io(dir, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(TagSettings::load(dir.path()).unwrap(), None);
        let opts = TagOptions {
            taggers: vec![Tagger::Language, Tagger::Toxicity],
            languages: LangConfig {
                allowed: vec!["fr".into(), "br".into()],
                ..Default::default()
            },
            dict_dir: PathBuf::from("/opt/dict \"x\""),
            toxicity_lists: Some(PathBuf::from("/lists/ldnoobw")),
            dedup_memory: 64 << 20,
            ..Default::default()
        };
        let s = TagSettings::from_options(&opts);
        s.save(dir.path()).unwrap();
        let back = TagSettings::load(dir.path()).unwrap().unwrap();
        assert_eq!(back, s);
        let o = back.options().unwrap();
        assert_eq!(o.taggers, opts.taggers);
        assert_eq!(o.languages.allowed, opts.languages.allowed);
        assert_eq!(o.dict_dir, opts.dict_dir);
        assert_eq!(o.toxicity_lists, opts.toxicity_lists);
        assert_eq!(o.dedup_memory, 64 << 20);
        assert!(TagSettings::clear(dir.path()).unwrap());
        assert!(!TagSettings::clear(dir.path()).unwrap());
        assert_eq!(TagSettings::load(dir.path()).unwrap(), None);
        // A bad tagger name in the file is an error naming the file.
        std::fs::write(
            dir.path().join(SETTINGS_FILE),
            "taggers = [\"langage\"]\nlanguages = [\"fr\"]\ndict_dir = \"/d\"\ndedup_memory_mb = 1\n",
        )
        .unwrap();
        let e = TagSettings::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains(SETTINGS_FILE) && e.contains("langage"), "{e}");
    }
}
