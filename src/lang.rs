//! Language codes: the one home for how corpusql reads a language tag
//! (`fr`, `FR-fr`, `pt_BR`, `fil`). Ingest and the query planner index and
//! look up the `lang` facet through [`normalize`]; the toxicity tagger
//! picks a document's word lists by [`primary_subtag`] and recognises list
//! files named by language with [`is_well_formed`]; the language tagger
//! compares the codes a user allows with [`fold`].
//!
//! Nothing here knows which languages exist: that is for the detector
//! ([`crate::tag::language`]) and the lists themselves.

use std::borrow::Cow;

/// The form of a language tag in the `lang` index: trimmed, then the primary
/// subtag in lower case when it is 2 or 3 ASCII letters (`FR-fr` -> `fr`,
/// `pt_BR` -> `pt`), else the whole tag in lower case (`English-US` ->
/// `english-us`). A tag already in that form is borrowed, not copied. The
/// stored record keeps what the input wrote.
pub fn normalize(tag: &str) -> Cow<'_, str> {
    let t = tag.trim();
    let primary = t.split(['-', '_']).next().unwrap_or(t);
    if primary.len() == t.len() && !t.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(t);
    }
    if (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        Cow::Owned(primary.to_ascii_lowercase())
    } else {
        Cow::Owned(t.to_lowercase())
    }
}

/// The primary subtag of `tag` (what precedes the first `-` or `_`), in
/// ASCII lower case: `fr-CA` -> `fr`, `EN_us` -> `en`. Not trimmed.
pub fn primary_subtag(tag: &str) -> String {
    tag.split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Whether `s` is a tag written in lower case: 2 or 3 lower-case ASCII
/// letters, then optional `-` subtags of ASCII letters and digits (`fr`,
/// `fil`, `fr-CA-u-sd-caqc`). How list files named by language are told
/// from other files (`README.md`, `LICENSE`).
pub fn is_well_formed(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.bytes().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric()))
}

/// A code as a user gives it in a set of codes (`--languages FR, en`):
/// trimmed and in ASCII lower case, subtags kept (`fr-CA` stays `fr-ca`, so
/// a set of ISO 639-1 codes refuses it rather than widening it).
pub fn fold(code: &str) -> String {
    code.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_keeps_the_primary_subtag_of_a_well_formed_tag() {
        for (tag, want) in [
            ("fr", "fr"),
            (" fr ", "fr"),
            ("FR", "fr"),
            ("FR-fr", "fr"),
            ("pt_BR", "pt"),
            ("fil-PH", "fil"),
            ("zh-Hant-TW", "zh"),
            // Not a 2-3 letter primary subtag: the whole tag, lower-cased.
            ("English-US", "english-us"),
            ("français", "français"),
            ("ÉN", "én"),
            ("x1-y", "x1-y"),
            ("", ""),
        ] {
            assert_eq!(normalize(tag), want, "{tag:?}");
        }
        assert!(matches!(normalize(" fr "), Cow::Borrowed("fr")));
        assert!(matches!(normalize("fr-CA"), Cow::Owned(_)));
    }

    #[test]
    fn primary_subtag_lowercases_without_trimming() {
        assert_eq!(primary_subtag("fr-CA"), "fr");
        assert_eq!(primary_subtag("EN_us"), "en");
        assert_eq!(primary_subtag("english-us"), "english");
        assert_eq!(primary_subtag(" fr"), " fr");
        assert_eq!(primary_subtag(""), "");
    }

    #[test]
    fn well_formed_tags_are_lower_case_with_alphanumeric_subtags() {
        for ok in ["fr", "fil", "fr-CA", "fr-ca-u-sd-caqc", "es-419"] {
            assert!(is_well_formed(ok), "{ok}");
        }
        for bad in [
            "f", "fren", "FR", "fr-", "fr--ca", "fr_CA", "README", "LICENSE", "",
        ] {
            assert!(!is_well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn fold_trims_and_lowercases_only() {
        assert_eq!(fold(" FR "), "fr");
        assert_eq!(fold("fr-CA"), "fr-ca");
        assert_eq!(fold("ÉN"), "Én");
    }
}
