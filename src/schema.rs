//! The corpus schema: which fields exist and what kind each is (top-level
//! fields, and the leaves of nested objects under dotted names such as
//! `meta.language`).
//!
//! A field's kind is fixed by its first non-null occurrence; a later record
//! whose value has another kind is rejected at ingest. The key and text
//! fields are special: the key is indexed through the key `fst`, the text is
//! stored in blocks and measured by the built-in numeric field `bytes`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What kind of values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FieldKind {
    /// Strings or arrays of strings: dictionary-encoded and indexed.
    Facet,
    /// Booleans: indexed as the facet values `true` / `false`.
    Bool,
    /// Numbers: a numeric column, queried with comparisons.
    Number,
    /// Objects and arrays that are not all strings: stored and returned,
    /// queryable only with `exists`.
    Json,
}

impl FieldKind {
    /// The name shown by `schema`.
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Facet => "facet",
            FieldKind::Bool => "bool",
            FieldKind::Number => "number",
            FieldKind::Json => "json",
        }
    }

    /// How a value of this kind is described in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            FieldKind::Facet => "a string (or an array of strings)",
            FieldKind::Bool => "a boolean",
            FieldKind::Number => "a number",
            FieldKind::Json => "an object or a mixed array",
        }
    }
}

/// Field names and kinds of a corpus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Name of the key field in records (default `id`).
    pub key_field: String,
    /// Name of the text field in records (default `text`).
    pub text_field: String,
    /// Every other field, by name.
    pub fields: BTreeMap<String, FieldKind>,
}

impl Default for Schema {
    fn default() -> Self {
        Schema {
            key_field: "id".into(),
            text_field: "text".into(),
            fields: BTreeMap::new(),
        }
    }
}

/// What a name in a query refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// The document key.
    Key,
    /// The built-in `bytes` column.
    Bytes,
    /// A schema field of this kind.
    Field(FieldKind),
}

impl Schema {
    /// Resolves a field name used in a query.
    pub fn resolve(&self, name: &str) -> Option<Resolved> {
        if name == self.key_field || name == "id" {
            return Some(Resolved::Key);
        }
        if let Some(k) = self.fields.get(name) {
            return Some(Resolved::Field(*k));
        }
        if name == crate::format::BYTES_FIELD {
            return Some(Resolved::Bytes);
        }
        None
    }

    /// Every name a query may use, for "did you mean" suggestions.
    pub fn known_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.fields.keys().map(|s| s.as_str()).collect();
        v.push(&self.key_field);
        v.push(crate::format::BYTES_FIELD);
        v
    }
}
