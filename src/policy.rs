//! The corpus policy: which license classes may leave the corpus through
//! `export` and `stream`.
//!
//! The policy is a small TOML file in the corpus directory
//! (`policy.toml`), edited with `corpusql policy`. A corpus without one
//! allows every class, so nothing changes behind a user's back until its
//! owner sets a policy. Enforcement is a restriction of the selection on the
//! derived `license_class` facet; what it holds back is counted by license
//! so commands can say what they refused.

use std::collections::BTreeMap;
use std::path::Path;

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::license::LicenseClass;
use crate::plan::Plan;
use crate::segment::overlay::{LICENSE_CLASS, LICENSE_ID};
use crate::select::Selection;
use crate::train::Mixture;

/// File name of the policy inside a corpus directory.
pub const POLICY_FILE: &str = "policy.toml";

/// A corpus policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// License classes that may be exported and streamed; `None` (no
    /// policy set) allows every class.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Who set it and why (free text, shown in reports).
    #[serde(default)]
    pub note: Option<String>,
}

impl Policy {
    /// Reads the policy of the corpus in `dir` (allow-all when there is none).
    pub fn load(dir: &Path) -> Result<Policy> {
        let path = dir.join(POLICY_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Policy::default()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let p: Policy = toml::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        p.check()
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        Ok(p)
    }

    /// Checks class names.
    pub fn check(&self) -> std::result::Result<(), String> {
        for c in self.allow.iter().flatten() {
            if LicenseClass::parse(c).is_none() {
                return Err(format!(
                    "`{c}` is not a license class (classes: {})",
                    LicenseClass::ALL.map(|c| c.as_str()).join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Writes the policy atomically (temporary file, fsync, rename).
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.check().map_err(Error::Invalid)?;
        let path = dir.join(POLICY_FILE);
        let mut text = String::from(
            "# corpusql policy: the license classes `export` and `stream` may use.\n# Edit with `corpusql policy`; see docs/licenses.md.\n",
        );
        if let Some(allow) = &self.allow {
            let list: Vec<String> = allow.iter().map(|c| format!("\"{c}\"")).collect();
            text.push_str(&format!("allow = [{}]\n", list.join(", ")));
        }
        if let Some(n) = &self.note {
            text.push_str(&format!(
                "note = {}\n",
                serde_json::to_string(n).unwrap_or_default()
            ));
        }
        crate::storage::write_file_atomic(&path, text.as_bytes())
    }

    /// Whether an owner set a policy.
    pub fn is_set(&self) -> bool {
        self.allow.is_some()
    }

    /// Whether documents of `class` may leave the corpus.
    pub fn allows(&self, class: &str) -> bool {
        match &self.allow {
            None => true,
            Some(a) => a.iter().any(|c| c == class),
        }
    }

    /// The allowed classes, in class order (all of them when unset).
    pub fn allowed(&self) -> Vec<String> {
        LicenseClass::ALL
            .iter()
            .map(|c| c.as_str().to_string())
            .filter(|c| self.allows(c))
            .collect()
    }

    /// The restriction to add to a plan (None when every class is allowed).
    pub fn restriction(&self) -> Option<Plan> {
        let allowed = self.allowed();
        if allowed.len() == LicenseClass::ALL.len() {
            return None;
        }
        Some(Plan::Terms {
            field: LICENSE_CLASS.into(),
            values: allowed,
        })
    }
}

/// What a policy holds back from a selection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeldBack {
    /// Documents held back.
    pub docs: u64,
    /// Their text bytes.
    pub bytes: u64,
    /// By license id: (license_id, class, docs, bytes), most documents first.
    pub by_license: Vec<(String, String, u64, u64)>,
}

impl HeldBack {
    /// A one-line summary (`1,234 documents (5.2 MiB) held back by the policy: cc-by-nc-4.0 (1,000), ...`).
    pub fn summary(&self) -> String {
        let lic: Vec<String> = self
            .by_license
            .iter()
            .take(8)
            .map(|(l, c, d, _)| format!("{l} [{c}] ({d})"))
            .collect();
        let more = if self.by_license.len() > 8 {
            format!(", and {} more", self.by_license.len() - 8)
        } else {
            String::new()
        };
        format!(
            "{} documents ({:.1} MiB) held back by the corpus policy: {}{more}",
            self.docs,
            self.bytes as f64 / (1u64 << 20) as f64,
            lic.join(", ")
        )
    }
}

/// Splits `sel` by `policy`: the selection it allows, and what it holds back.
pub fn apply(corpus: &Corpus, sel: &Selection, policy: &Policy) -> Result<(Selection, HeldBack)> {
    let Some(r) = policy.restriction() else {
        return Ok((sel.clone(), HeldBack::default()));
    };
    let mut kept = sel.clone();
    let mut held = HeldBack::default();
    let mut acc: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for (i, ls) in corpus.segments().iter().enumerate() {
        let bm = &sel.parts[i].1;
        if bm.is_empty() {
            continue;
        }
        let ok = crate::plan::eval(&r, &ls.segment, &ls.live, bm)?;
        let out: RoaringBitmap = bm - &ok;
        if !out.is_empty() {
            let col = ls.segment.numeric(crate::format::BYTES_FIELD)?;
            let bytes_of = |b: &RoaringBitmap| -> u64 {
                col.as_ref()
                    .map(|c| b.iter().map(|o| c[o as usize] as u64).sum())
                    .unwrap_or(0)
            };
            let (groups, _) = ls.segment.split_by_values(LICENSE_ID, &out, true)?;
            for (id, sub) in groups {
                let class = crate::license::class_of(&id).as_str().to_string();
                let e = acc.entry((id, class)).or_default();
                e.0 += sub.len();
                e.1 += bytes_of(&sub);
            }
            held.docs += out.len();
            held.bytes += bytes_of(&out);
        }
        kept.parts[i].1 = ok;
    }
    held.by_license = acc
        .into_iter()
        .map(|((l, c), (d, b))| (l, c, d, b))
        .collect();
    held.by_license
        .sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    Ok((kept, held))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_and_errors() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Policy::load(d.path()).unwrap(), Policy::default());
        assert!(Policy::default().restriction().is_none());
        let p = Policy {
            allow: Some(vec!["public-domain".into(), "permissive".into()]),
            note: Some("only \"open\" data".into()),
        };
        p.save(d.path()).unwrap();
        assert_eq!(Policy::load(d.path()).unwrap(), p);
        assert!(p.allows("permissive") && !p.allows("share-alike"));
        std::fs::write(d.path().join(POLICY_FILE), "allow = [\"permisive\"]\n").unwrap();
        let e = Policy::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("permisive") && e.contains("policy.toml"), "{e}");
        std::fs::write(d.path().join(POLICY_FILE), "allow = [\n").unwrap();
        let e = Policy::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("line"), "{e}");
    }
}

/// How the corpus policy shaped what a call returned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyOutcome {
    /// Whether the corpus has a policy (`policy.toml` with an `allow` list).
    pub set: bool,
    /// Whether the caller overrode it: the documents in `held_back` were
    /// included anyway.
    pub overridden: bool,
    /// What the policy holds back from the selection (left out unless
    /// `overridden`).
    pub held_back: HeldBack,
}

impl PolicyOutcome {
    /// Whether documents were left out because of the policy.
    pub fn withheld(&self) -> bool {
        !self.overridden && self.held_back.docs > 0
    }

    /// Whether the corpus has no policy (nothing to report).
    pub fn is_unset(&self) -> bool {
        !self.set
    }
}

/// What the corpus policy holds back from the union of `m`'s components
/// (each document counted once), and whether `m` was bound with the policy
/// overridden (see `Mixture::under_policy`).
pub(crate) fn mixture_outcome(corpus: &Corpus, m: &Mixture) -> Result<PolicyOutcome> {
    let policy = Policy::load(corpus.dir())?;
    if !policy.is_set() {
        return Ok(PolicyOutcome::default());
    }
    let plans = m
        .components
        .iter()
        .map(|c| {
            crate::plan::plan(&c.query, corpus.schema())
                .map_err(|e| Error::Invalid(format!("component `{}`: {e}", c.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let union = corpus.select(&Plan::Or(plans))?;
    let (_, held_back) = apply(corpus, &union, &policy)?;
    Ok(PolicyOutcome {
        set: true,
        overridden: m.overrides_policy(),
        held_back,
    })
}
