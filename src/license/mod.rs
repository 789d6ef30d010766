//! License normalization and license classes: the derived facets
//! `license_id` and `license_class`.
//!
//! [`normalize`] turns a license string as it appears in real dumps
//! ("CC BY 4.0", "Licence Ouverte / Open Licence 2.0", "GPL-2+",
//! "MIT/Apache-2.0", `apache-2.0_or_mit`, ...) into one canonical,
//! lowercase, SPDX-style id or expression (`cc-by-4.0`, `etalab-2.0`,
//! `gpl-2.0-or-later`, `apache-2.0 or mit`), or `None` when it does not
//! recognize the string: it never guesses, and the caller stores
//! [`UNKNOWN`]. [`class_of`] maps a canonical id or expression to a
//! [`LicenseClass`]; [`requires_attribution`] says whether it asks for
//! credit. The user's own `license` field is never rewritten: these are
//! derived values, versioned by [`table_version`].
//!
//! The alias, phrase and class tables are data, in `aliases.tsv` next to
//! this file, each row citing its source; the SPDX license list comes from
//! the `spdx` crate, whose expression parser also decides the structure
//! (precedence, parentheses) of expressions. `docs/licenses.md` documents
//! the classes, the OR/AND rules and how to add an alias.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// The table (aliases, phrases, classes), compiled in.
const TABLE: &str = include_str!("aliases.tsv");

/// Bumped when the normalization rules in this file change in a way that
/// changes derived values; hashed into [`table_version`] with the table.
const RULES_VERSION: &str = "license-rules-1";

/// Inputs longer than this are not license declarations; [`normalize`]
/// returns `None` for them.
const MAX_INPUT_LEN: usize = 1024;

/// The value stored as `license_id` when [`normalize`] returns `None`.
pub const UNKNOWN: &str = "unknown";

/// A license class, the derived facet `license_class`.
///
/// Classes are ordered from most to least permissive (the derived `Ord`
/// follows the declaration order, [`LicenseClass::Unknown`] last): an OR
/// expression takes the smallest class of its operands, an AND expression
/// the largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LicenseClass {
    /// In the public domain, or dedicated to it (CC0, Unlicense, PDDL, `pd`).
    PublicDomain,
    /// Software licenses without share-alike: MIT, BSD, Apache, ISC, zlib.
    Permissive,
    /// Content and data licenses whose only condition is credit: CC-BY,
    /// Etalab Licence Ouverte, OGL, ODC-By.
    Attribution,
    /// Adaptations must carry the same license (CC-BY-SA, ODbL), with no
    /// source-code obligation.
    ShareAlike,
    /// Strong or weak copyleft: GPL, LGPL, AGPL, MPL, EPL, GFDL.
    Copyleft,
    /// No commercial use (CC-BY-NC, CC-BY-NC-SA).
    NonCommercial,
    /// No adaptations (CC-BY-ND, CC-BY-NC-ND).
    NoDerivatives,
    /// All rights reserved, or source-available with use restrictions.
    Proprietary,
    /// Not recognized, or recognized but not classified in the table.
    Unknown,
}

impl LicenseClass {
    /// Every class, from most to least permissive.
    pub const ALL: [LicenseClass; 9] = [
        LicenseClass::PublicDomain,
        LicenseClass::Permissive,
        LicenseClass::Attribution,
        LicenseClass::ShareAlike,
        LicenseClass::Copyleft,
        LicenseClass::NonCommercial,
        LicenseClass::NoDerivatives,
        LicenseClass::Proprietary,
        LicenseClass::Unknown,
    ];

    /// The facet value: `public-domain`, `permissive`, `attribution`,
    /// `share-alike`, `copyleft`, `non-commercial`, `no-derivatives`,
    /// `proprietary` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseClass::PublicDomain => "public-domain",
            LicenseClass::Permissive => "permissive",
            LicenseClass::Attribution => "attribution",
            LicenseClass::ShareAlike => "share-alike",
            LicenseClass::Copyleft => "copyleft",
            LicenseClass::NonCommercial => "non-commercial",
            LicenseClass::NoDerivatives => "no-derivatives",
            LicenseClass::Proprietary => "proprietary",
            LicenseClass::Unknown => "unknown",
        }
    }

    /// Parses a facet value as written by [`LicenseClass::as_str`]; case,
    /// surrounding spaces and `_` for `-` are tolerated.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        LicenseClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether licenses of this class generally require attribution: every
    /// class but [`LicenseClass::PublicDomain`]. This is the conservative
    /// class-level answer (unknown and proprietary terms: credit anyway);
    /// the per-license answer is [`requires_attribution`], which knows the
    /// permissive licenses without a notice condition (0BSD, MIT-0, WTFPL).
    pub fn requires_attribution(self) -> bool {
        self != LicenseClass::PublicDomain
    }
}

impl fmt::Display for LicenseClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Canonical id or expression for a raw license string, or `None` when the
/// string is not recognized (the caller stores [`UNKNOWN`]).
///
/// Canonical ids are lowercase SPDX ids (`mit`, `gpl-2.0-or-later`,
/// `cc-by-sa-3.0-de`) or the custom ids of the table (`pd`, `proprietary`,
/// `etalab-1.0`, Creative Commons ports missing from SPDX such as
/// `cc-by-sa-3.0-fr`). Expressions use lowercase ` or `, ` and `,
/// ` with `, sorted and deduplicated operands, and parentheses around every
/// compound operand: `apache-2.0 or mit`, `(apache-2.0 or mit) and
/// unicode-3.0`. `normalize` is idempotent on its own output.
///
/// ```
/// use corpusql::raw::license::normalize;
/// assert_eq!(normalize("MIT/Apache-2.0").as_deref(), Some("apache-2.0 or mit"));
/// assert_eq!(normalize("Licence Ouverte / Open Licence 2.0").as_deref(), Some("etalab-2.0"));
/// assert_eq!(normalize("see LICENSE file"), None);
/// ```
pub fn normalize(raw: &str) -> Option<String> {
    parse(raw).map(|node| node.render())
}

/// Class of a canonical id or expression produced by [`normalize`]:
/// [`LicenseClass::Unknown`] for [`UNKNOWN`], for strings that do not
/// normalize, and for ids the class table does not list. OR takes the most
/// permissive operand, AND the most restrictive, and `WITH` an exception
/// keeps the class of the license (exceptions only add permissions).
pub fn class_of(id: &str) -> LicenseClass {
    if id.trim().eq_ignore_ascii_case(UNKNOWN) {
        return LicenseClass::Unknown;
    }
    match parse(id) {
        Some(node) => node.class(table()),
        None => LicenseClass::Unknown,
    }
}

/// Whether a license (canonical id or expression) requires attribution,
/// for building attribution lists: CC-BY*, MIT/BSD/Apache notices,
/// Etalab, copyleft licenses; not public domain, CC0, 0BSD, MIT-0, WTFPL.
/// An OR expression requires it only when every operand does (one may pick
/// an operand that does not), an AND expression when any operand does.
/// Unknown and unclassified licenses answer `true`: credit when unsure.
pub fn requires_attribution(id: &str) -> bool {
    if id.trim().eq_ignore_ascii_case(UNKNOWN) {
        return true;
    }
    match parse(id) {
        Some(node) => node.attribution(table()),
        None => true,
    }
}

/// The version of the license tables and rules, e.g. `lt-1f0c2a9b3d4e5f60`:
/// a hash of `aliases.tsv`, the SPDX license list version and the rules
/// version, so stored `license_id` / `license_class` values can be
/// recomputed when it changes.
pub fn table_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut input = Vec::with_capacity(TABLE.len() + 64);
        input.extend_from_slice(TABLE.as_bytes());
        input.push(0);
        input.extend_from_slice(spdx::license_version().as_bytes());
        input.push(0);
        input.extend_from_slice(RULES_VERSION.as_bytes());
        format!("lt-{:016x}", xxhash_rust::xxh3::xxh3_64(&input))
    })
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

/// One row of the `[classes]` section.
#[derive(Debug, Clone, Copy)]
struct ClassRow {
    class: LicenseClass,
    attribution: bool,
}

/// The parsed table plus indexes built from the SPDX list.
struct Table {
    /// `[phrases]`: key-token sequences and their replacements, longest first.
    phrases: Vec<(Vec<String>, Vec<String>)>,
    /// `[aliases]`: key -> canonical id.
    aliases: HashMap<String, String>,
    /// `[classes]` exact ids.
    class_exact: HashMap<String, ClassRow>,
    /// `[classes]` prefixes (the `*` removed), longest first.
    class_prefix: Vec<(String, ClassRow)>,
    /// Key of every SPDX license id -> lowercase id (non-deprecated ids win
    /// a key collision; keys shared by two current ids are left out).
    spdx_keys: HashMap<String, String>,
    /// Lowercase SPDX license ids.
    spdx_lower: HashMap<String, String>,
    /// Lowercase SPDX exception ids.
    exceptions: HashMap<String, String>,
}

fn table() -> &'static Table {
    static TABLE_CELL: OnceLock<Table> = OnceLock::new();
    TABLE_CELL.get_or_init(|| {
        load_table(TABLE).unwrap_or_else(|e| panic!("src/license/aliases.tsv: {e}"))
    })
}

/// Parses `aliases.tsv`. The tests load the compiled-in table, so an error
/// here is caught before release.
fn load_table(text: &str) -> Result<Table, String> {
    let mut t = Table {
        phrases: Vec::new(),
        aliases: HashMap::new(),
        class_exact: HashMap::new(),
        class_prefix: Vec::new(),
        spdx_keys: HashMap::new(),
        spdx_lower: HashMap::new(),
        exceptions: HashMap::new(),
    };
    let mut section = "";
    let mut alias_rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = match name {
                "phrases" | "aliases" | "classes" => name,
                _ => return Err(format!("line {line_no}: unknown section [{name}]")),
            };
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let want = if section == "classes" { 4 } else { 3 };
        if cols.len() != want || cols.iter().any(|c| c.trim().is_empty()) {
            return Err(format!(
                "line {line_no}: expected {want} non-empty tab-separated columns in [{section}], got {:?}",
                cols
            ));
        }
        match section {
            "phrases" => {
                let from = key_tokens(cols[0], &[]);
                let to = if cols[1] == "-" {
                    Vec::new()
                } else {
                    cols[1].split(' ').map(str::to_string).collect()
                };
                if from.is_empty() {
                    return Err(format!("line {line_no}: empty phrase"));
                }
                t.phrases.push((from, to));
            }
            "aliases" => alias_rows.push((line_no, cols[0], cols[1])),
            "classes" => {
                let class = LicenseClass::parse(cols[1])
                    .ok_or_else(|| format!("line {line_no}: unknown class {:?}", cols[1]))?;
                let attribution = match cols[2] {
                    "yes" => true,
                    "no" => false,
                    "-" => class.requires_attribution(),
                    other => {
                        return Err(format!(
                            "line {line_no}: attribution must be yes, no or -, got {other:?}"
                        ))
                    }
                };
                let row = ClassRow { class, attribution };
                let id = cols[0].to_ascii_lowercase();
                if let Some(prefix) = id.strip_suffix('*') {
                    t.class_prefix.push((prefix.to_string(), row));
                } else if t.class_exact.insert(id.clone(), row).is_some() {
                    return Err(format!("line {line_no}: class of {id} given twice"));
                }
            }
            _ => return Err(format!("line {line_no}: record outside a section")),
        }
    }
    t.phrases.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    t.class_prefix.sort_by_key(|p| std::cmp::Reverse(p.0.len()));

    for (name, _, _) in spdx::identifiers::LICENSES {
        let lower = name.to_ascii_lowercase();
        t.spdx_lower.insert(lower.clone(), lower);
    }
    // Keys of SPDX ids; non-deprecated ids first so they win collisions.
    let mut ids: Vec<(&str, bool)> = spdx::identifiers::LICENSES
        .iter()
        .map(|(name, _, flags)| (*name, flags & spdx::identifiers::IS_DEPRECATED != 0))
        .collect();
    ids.sort_by_key(|(_, deprecated)| *deprecated);
    let mut ambiguous = Vec::new();
    for (name, deprecated) in ids {
        let k = key(name, &t.phrases);
        let lower = name.to_ascii_lowercase();
        match t.spdx_keys.get(&k) {
            None => {
                t.spdx_keys.insert(k, lower);
            }
            Some(existing) if !deprecated && *existing != lower => ambiguous.push(k),
            Some(_) => {}
        }
    }
    for k in ambiguous {
        t.spdx_keys.remove(&k);
    }
    for (name, _) in spdx::identifiers::EXCEPTIONS {
        let lower = name.to_ascii_lowercase();
        t.exceptions.insert(lower.clone(), lower);
    }

    for (line_no, alias, canonical) in alias_rows {
        if canonical != canonical.to_ascii_lowercase() || canonical.contains(' ') {
            return Err(format!(
                "line {line_no}: canonical id {canonical:?} must be one lowercase id"
            ));
        }
        let k = key(alias, &t.phrases);
        if k.is_empty() {
            return Err(format!("line {line_no}: alias {alias:?} has an empty key"));
        }
        if let Some(prev) = t.aliases.insert(k.clone(), canonical.to_string()) {
            if prev != canonical {
                return Err(format!(
                    "line {line_no}: alias {alias:?} (key {k:?}) maps to {canonical} but an earlier row maps it to {prev}"
                ));
            }
        }
    }
    Ok(t)
}

// ---------------------------------------------------------------------------
// Keys: the spelling-insensitive form used for lookups
// ---------------------------------------------------------------------------

/// Words dropped from keys: "license" in several languages, and filler.
const STOP_WORDS: &[&str] = &[
    "license",
    "licence",
    "licenses",
    "licences",
    "licensed",
    "lizenz",
    "licencia",
    "licenza",
    "licença",
    "licentie",
    "licens",
    "licencja",
    "άδεια",
    "лицензия",
    "version",
    "the",
    "v",
];

/// The lookup key of a string: see the header of `aliases.tsv`.
fn key(raw: &str, phrases: &[(Vec<String>, Vec<String>)]) -> String {
    key_tokens(raw, phrases).join(" ")
}

fn key_tokens(raw: &str, phrases: &[(Vec<String>, Vec<String>)]) -> Vec<String> {
    let mut s = raw.trim().to_lowercase();
    if let Some(rest) = s.strip_prefix("classifier:") {
        s = rest.to_string();
    }
    if let Some(pos) = s.rfind("::") {
        // PyPI trove classifier: "License :: OSI Approved :: MIT License".
        s = s[pos + 2..].to_string();
    }
    let folded: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '.' || c == '+' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut tokens: Vec<String> = Vec::new();
    for word in folded.split_whitespace() {
        let word = word.trim_matches('.');
        if word.is_empty() {
            continue;
        }
        // "gplv3+" -> "gpl" "3+", "mpl2" -> "mpl" "2", "v2" -> "2".
        let split = word
            .char_indices()
            .find(|&(_, c)| c.is_ascii_digit())
            .map(|(i, _)| i)
            .filter(|&i| {
                i > 0 && word[..i].chars().all(|c| c.is_ascii_lowercase()) && is_version(&word[i..])
            });
        let parts: Vec<&str> = match split {
            Some(i) => {
                let letters = &word[..i];
                let letters = if letters.len() > 1 {
                    letters.strip_suffix('v').unwrap_or(letters)
                } else {
                    letters
                };
                vec![letters, &word[i..]]
            }
            None => vec![word],
        };
        for part in parts {
            if STOP_WORDS.contains(&part) {
                continue;
            }
            if is_version(part) {
                let (num, plus) = match part.strip_suffix('+') {
                    Some(n) => (n, true),
                    None => (part, false),
                };
                let mut num = num;
                while let Some(shorter) = num.strip_suffix(".0") {
                    num = shorter;
                }
                tokens.push(num.to_string());
                if plus {
                    tokens.push("or".to_string());
                    tokens.push("later".to_string());
                }
            } else if part == "+" {
                tokens.push("or".to_string());
                tokens.push("later".to_string());
            } else {
                tokens.push(part.to_string());
            }
        }
    }
    // "or any later (version)", "or newer", "and later" -> "or later".
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if let Some(n) = or_later_len(&tokens[i..]) {
            out.push("or".into());
            out.push("later".into());
            i += n;
        } else {
            out.push(tokens[i].clone());
            i += 1;
        }
    }
    apply_phrases(out, phrases)
}

/// If `rest` starts with a spelling of "or later", how many tokens it spans.
fn or_later_len(rest: &[String]) -> Option<usize> {
    let r: Vec<&str> = rest.iter().take(3).map(String::as_str).collect();
    match r.as_slice() {
        ["or", "any", "later", ..] => Some(3),
        ["or", "later", ..] => Some(2),
        ["or", "newer", ..] => Some(2),
        ["and", "later", ..] => Some(2),
        ["or", "higher", ..] => Some(2),
        _ => None,
    }
}

fn apply_phrases(tokens: Vec<String>, phrases: &[(Vec<String>, Vec<String>)]) -> Vec<String> {
    if phrases.is_empty() {
        return tokens;
    }
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    'outer: while i < tokens.len() {
        for (from, to) in phrases {
            if tokens[i..].starts_with(from) {
                out.extend(to.iter().cloned());
                i += from.len();
                continue 'outer;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// `2`, `2.0`, `1.3`, `2.0.1`, `3+`.
fn is_version(s: &str) -> bool {
    let s = s.strip_suffix('+').unwrap_or(s);
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

// ---------------------------------------------------------------------------
// Single licenses
// ---------------------------------------------------------------------------

/// Creative Commons jurisdictions ("ports") of versions 1.0 to 3.0, as
/// listed by Creative Commons (https://wiki.creativecommons.org/wiki/CC_Ports_by_Jurisdiction).
const CC_PORTS: &[&str] = &[
    "am", "ar", "at", "au", "az", "be", "bg", "br", "ca", "ch", "cl", "cn", "co", "cr", "cz", "de",
    "dk", "ec", "ee", "eg", "es", "fi", "fr", "ge", "gr", "gt", "hk", "hr", "hu", "ie", "igo",
    "il", "in", "it", "jp", "kr", "lu", "mk", "mt", "mx", "my", "nl", "no", "nz", "pe", "ph", "pl",
    "pr", "pt", "ro", "rs", "scotland", "se", "sg", "si", "th", "tw", "ug", "uk", "us", "ve", "vn",
    "za",
];

/// One license (no operator): canonical id, possibly with a trailing `+`
/// for "or later" of a non-GNU license.
fn resolve_license(raw: &str, t: &Table) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(id) = resolve_url(s, t) {
        return Some(id);
    }
    const REF: &str = "licenseref-";
    if s.len() > REF.len()
        && s.get(..REF.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(REF))
    {
        let rest = &s[REF.len()..];
        if rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Some(format!("licenseref-{}", rest.to_ascii_lowercase()));
        }
        return None;
    }
    let k = key(s, &t.phrases);
    if let Some(id) = resolve_key(&k, t) {
        return Some(id);
    }
    // "GNU General Public License v3 (GPLv3)": a trailing parenthesized
    // name is accepted when it names the same license as the rest.
    if let Some(open) = s.rfind('(') {
        if s.ends_with(')') && open > 0 {
            let head = resolve_key(&key(&s[..open], &t.phrases), t)?;
            let tail = resolve_key(&key(&s[open + 1..s.len() - 1], &t.phrases), t)?;
            if head == tail {
                return Some(head);
            }
        }
    }
    None
}

/// Alias table, then SPDX ids, then the Creative Commons rule, then the
/// non-GNU "or later" rule.
fn resolve_key(k: &str, t: &Table) -> Option<String> {
    if k.is_empty() {
        return None;
    }
    if let Some(id) = t.aliases.get(k) {
        return Some(id.clone());
    }
    if let Some(id) = t.spdx_keys.get(k) {
        return Some(id.clone());
    }
    if let Some(id) = resolve_cc(k, t) {
        return Some(id);
    }
    if let Some(base) = k.strip_suffix(" or later") {
        let id = resolve_key(base, t)?;
        if id.ends_with("-only") || id.ends_with("-or-later") || id.ends_with('+') {
            return None;
        }
        return Some(format!("{id}+"));
    }
    None
}

/// `cc <by|nc|nd|sa>... <version> [<port>]` (a key) -> `cc-by-sa-3.0[-fr]`.
/// The unported license must be in the SPDX list; a port keeps its own id
/// (SPDX's when listed, e.g. `cc-by-sa-3.0-de`, else `cc-by-sa-3.0-fr`).
/// Version 4.0 has no ports.
fn resolve_cc(k: &str, t: &Table) -> Option<String> {
    let mut words = k.split(' ');
    if words.next()? != "cc" {
        return None;
    }
    let mut elems = [false; 4];
    const ORDER: [&str; 4] = ["by", "nc", "nd", "sa"];
    let mut version = None;
    let mut port = None;
    for w in words {
        if version.is_none() {
            if let Some(i) = ORDER.iter().position(|e| *e == w) {
                elems[i] = true;
                continue;
            }
            if is_version(w) && !w.ends_with('+') {
                version = Some(w);
                continue;
            }
            return None;
        }
        if port.is_none() && CC_PORTS.contains(&w) {
            port = Some(w);
            continue;
        }
        return None;
    }
    let version = version?;
    if !elems.iter().any(|e| *e) {
        return None;
    }
    let version = if version.contains('.') {
        version.to_string()
    } else {
        format!("{version}.0")
    };
    let mut id = String::from("cc");
    for (i, e) in ORDER.iter().enumerate() {
        if elems[i] {
            id.push('-');
            id.push_str(e);
        }
    }
    id.push('-');
    id.push_str(&version);
    if !t.spdx_lower.contains_key(&id) {
        return None;
    }
    match port {
        None => Some(id),
        Some(_) if version.starts_with('4') => None,
        Some(p) => Some(format!("{id}-{p}")),
    }
}

/// License URLs: creativecommons.org, opensource.org/licenses/<id>,
/// spdx.org/licenses/<id>.
fn resolve_url(s: &str, t: &Table) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let (host, path) = rest.split_once('/')?;
    let segs: Vec<&str> = path
        .split(['/', '?', '#'])
        .take_while(|p| !p.starts_with("legalcode") && !p.starts_with("deed"))
        .filter(|p| !p.is_empty())
        .collect();
    match host {
        "creativecommons.org" => match segs.as_slice() {
            ["publicdomain", "zero", "1.0"] => Some("cc0-1.0".into()),
            ["publicdomain", "mark", "1.0"] => Some("cc-pdm-1.0".into()),
            ["licenses", elems, version] => {
                resolve_cc(&key(&format!("cc {elems} {version}"), &t.phrases), t)
            }
            ["licenses", elems, version, port] => {
                resolve_cc(&key(&format!("cc {elems} {version} {port}"), &t.phrases), t)
            }
            _ => None,
        },
        "opensource.org" | "spdx.org" => match segs.as_slice() {
            ["licenses", id] => {
                let id = id
                    .trim_end_matches(".html")
                    .trim_end_matches(".php")
                    .trim_end_matches(".txt")
                    .trim_end_matches(".json");
                let k = key(id, &t.phrases);
                t.aliases.get(&k).or_else(|| t.spdx_keys.get(&k)).cloned()
            }
            _ => None,
        },
        _ => None,
    }
}

/// An exception after `WITH`: an SPDX exception id, any case.
fn resolve_exception(raw: &str, t: &Table) -> Option<String> {
    t.exceptions.get(&raw.trim().to_ascii_lowercase()).cloned()
}

// ---------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    And,
    Or,
}

impl Op {
    fn word(self) -> &'static str {
        match self {
            Op::And => "and",
            Op::Or => "or",
        }
    }
}

/// A license expression tree. Leaves are `id` or `id with exception`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Leaf(String),
    Op(Op, Vec<Node>),
}

impl Node {
    /// Flattens nested same-operator nodes, deduplicates and sorts operands.
    fn canonical(self) -> Node {
        match self {
            Node::Leaf(_) => self,
            Node::Op(op, kids) => {
                let mut flat: Vec<Node> = Vec::with_capacity(kids.len());
                for kid in kids {
                    match kid.canonical() {
                        Node::Op(inner, grand) if inner == op => flat.extend(grand),
                        other => flat.push(other),
                    }
                }
                let mut keyed: Vec<(String, Node)> =
                    flat.into_iter().map(|n| (n.render(), n)).collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                keyed.dedup_by(|a, b| a.0 == b.0);
                if keyed.len() == 1 {
                    return keyed
                        .pop()
                        .map(|(_, n)| n)
                        .unwrap_or(Node::Op(op, Vec::new()));
                }
                Node::Op(op, keyed.into_iter().map(|(_, n)| n).collect())
            }
        }
    }

    fn render(&self) -> String {
        match self {
            Node::Leaf(s) => s.clone(),
            Node::Op(op, kids) => {
                let sep = format!(" {} ", op.word());
                kids.iter()
                    .map(|k| match k {
                        Node::Leaf(s) => s.clone(),
                        Node::Op(..) => format!("({})", k.render()),
                    })
                    .collect::<Vec<_>>()
                    .join(&sep)
            }
        }
    }

    fn class(&self, t: &Table) -> LicenseClass {
        match self {
            Node::Leaf(s) => leaf_row(s, t).map_or(LicenseClass::Unknown, |r| r.class),
            Node::Op(Op::Or, kids) => kids
                .iter()
                .map(|k| k.class(t))
                .min()
                .unwrap_or(LicenseClass::Unknown),
            Node::Op(Op::And, kids) => kids
                .iter()
                .map(|k| k.class(t))
                .max()
                .unwrap_or(LicenseClass::Unknown),
        }
    }

    fn attribution(&self, t: &Table) -> bool {
        match self {
            Node::Leaf(s) => leaf_row(s, t).is_none_or(|r| r.attribution),
            Node::Op(Op::Or, kids) => kids.iter().all(|k| k.attribution(t)),
            Node::Op(Op::And, kids) => kids.iter().any(|k| k.attribution(t)),
        }
    }
}

/// The class row of one canonical leaf: the exception and a trailing `+`
/// are ignored; exact ids beat prefixes; the longest prefix wins.
fn leaf_row(leaf: &str, t: &Table) -> Option<ClassRow> {
    let id = leaf.split(" with ").next().unwrap_or(leaf);
    let id = id.strip_suffix('+').unwrap_or(id);
    if let Some(row) = t.class_exact.get(id) {
        return Some(*row);
    }
    t.class_prefix
        .iter()
        .find(|(prefix, _)| id.starts_with(prefix.as_str()))
        .map(|(_, row)| *row)
}

/// Lexical tokens of a free-form expression.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    With,
    Word(String),
}

/// Parses a raw string into a canonical tree.
fn parse(raw: &str) -> Option<Node> {
    let s = raw.trim();
    if s.is_empty() || s.len() > MAX_INPUT_LEN {
        return None;
    }
    let t = table();
    if let Some(id) = resolve_license(s, t) {
        return Some(Node::Leaf(id));
    }
    if !s.contains(char::is_whitespace)
        && ["_or_", "_and_", "_with_"].iter().any(|op| s.contains(op))
    {
        return parse_joined(s, t).map(Node::canonical);
    }
    parse_expression(s, t).map(Node::canonical)
}

/// The form where a compound expression is one token, operands joined by
/// `_or_` / `_and_` / `_with_` (as in the realcorpus `license` field). The
/// form has no parentheses, so mixed operators group left to right:
/// `apache-2.0_or_mit_and_unicode-3.0` = `(apache-2.0 or mit) and unicode-3.0`,
/// the grouping that produced every such value of the real corpus.
fn parse_joined(s: &str, t: &Table) -> Option<Node> {
    let words: Vec<&str> = s.split('_').collect();
    let mut i = 0;
    let take_leaf = |i: &mut usize| -> Option<Node> {
        let lic = resolve_license(words.get(*i)?, t)?;
        *i += 1;
        if words
            .get(*i)
            .is_some_and(|w| w.eq_ignore_ascii_case("with"))
        {
            let exc = resolve_exception(words.get(*i + 1)?, t)?;
            *i += 2;
            return Some(Node::Leaf(format!("{lic} with {exc}")));
        }
        Some(Node::Leaf(lic))
    };
    let mut node = take_leaf(&mut i)?;
    while i < words.len() {
        let op = match words[i].to_ascii_lowercase().as_str() {
            "or" => Op::Or,
            "and" => Op::And,
            _ => return None,
        };
        i += 1;
        let next = take_leaf(&mut i)?;
        node = Node::Op(op, vec![node, next]);
    }
    Some(node)
}

/// A free-form SPDX-like expression: `OR`/`AND`/`WITH` in any case, `/` as
/// OR, parentheses, and multi-word license names between operators. Each
/// operand is resolved like a whole string; the structure is parsed by the
/// `spdx` crate (operands stand in as `LicenseRef-<n>`).
fn parse_expression(s: &str, t: &Table) -> Option<Node> {
    let mut toks: Vec<Tok> = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, toks: &mut Vec<Tok>| {
        if !word.is_empty() {
            toks.push(match word.to_ascii_lowercase().as_str() {
                "or" => Tok::Or,
                "and" => Tok::And,
                "with" => Tok::With,
                _ => Tok::Word(std::mem::take(word)),
            });
            word.clear();
        }
    };
    for c in s.chars() {
        match c {
            '(' | ')' | '/' => {
                flush(&mut word, &mut toks);
                toks.push(match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    _ => Tok::Or,
                });
            }
            c if c.is_whitespace() => flush(&mut word, &mut toks),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut toks);
    // "or later" / "or any later" / "or newer" belong to the license name.
    for i in 0..toks.len() {
        if toks[i] == Tok::Or {
            if let Some(Tok::Word(next)) = toks.get(i + 1) {
                let n = next.to_ascii_lowercase();
                if matches!(n.as_str(), "later" | "newer" | "any" | "higher") {
                    toks[i] = Tok::Word("or".into());
                }
            }
        }
    }
    if !toks
        .iter()
        .any(|t| matches!(t, Tok::Open | Tok::Close | Tok::And | Tok::Or | Tok::With))
    {
        return None;
    }
    // Group words into operands; merge `lic WITH exc`.
    let mut leaves: Vec<String> = Vec::new();
    let mut spdx_text = String::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Open => spdx_text.push_str(" ( "),
            Tok::Close => spdx_text.push_str(" ) "),
            Tok::And => spdx_text.push_str(" AND "),
            Tok::Or => spdx_text.push_str(" OR "),
            Tok::With => return None,
            Tok::Word(_) => {
                let mut name = Vec::new();
                while let Some(Tok::Word(w)) = toks.get(i) {
                    name.push(w.as_str());
                    i += 1;
                }
                let mut lic = resolve_license(&name.join(" "), t)?;
                if toks.get(i) == Some(&Tok::With) {
                    let Some(Tok::Word(exc)) = toks.get(i + 1) else {
                        return None;
                    };
                    if matches!(toks.get(i + 2), Some(Tok::Word(_))) {
                        return None;
                    }
                    lic = format!("{lic} with {}", resolve_exception(exc, t)?);
                    i += 2;
                }
                spdx_text.push_str(&format!(" LicenseRef-L{} ", leaves.len()));
                leaves.push(lic);
                continue;
            }
        }
        i += 1;
    }
    let expr = spdx::Expression::parse(spdx_text.trim()).ok()?;
    let mut stack: Vec<Node> = Vec::new();
    for node in expr.iter() {
        match node {
            spdx::expression::ExprNode::Req(req) => {
                let spdx::LicenseItem::Other { lic_ref, .. } = &req.req.license else {
                    return None;
                };
                let n: usize = lic_ref.strip_prefix('L')?.parse().ok()?;
                stack.push(Node::Leaf(leaves.get(n)?.clone()));
            }
            spdx::expression::ExprNode::Op(op) => {
                let b = stack.pop()?;
                let a = stack.pop()?;
                let op = match op {
                    spdx::expression::Operator::And => Op::And,
                    spdx::expression::Operator::Or => Op::Or,
                };
                stack.push(Node::Op(op, vec![a, b]));
            }
        }
    }
    let root = stack.pop()?;
    stack.is_empty().then_some(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn n(s: &str) -> Option<String> {
        normalize(s)
    }

    /// (raw, expected id, expected class) — the strings quoted in the issue
    /// and other real-world spellings.
    const CASES: &[(&str, &str, LicenseClass)] = &[
        ("CC BY 4.0", "cc-by-4.0", LicenseClass::Attribution),
        (
            "CC-BY-SA 3.0 FR",
            "cc-by-sa-3.0-fr",
            LicenseClass::ShareAlike,
        ),
        (
            "Licence Ouverte / Open Licence 2.0",
            "etalab-2.0",
            LicenseClass::Attribution,
        ),
        ("Etalab 2.0", "etalab-2.0", LicenseClass::Attribution),
        ("domaine public", "pd", LicenseClass::PublicDomain),
        ("Public Domain", "pd", LicenseClass::PublicDomain),
        ("MIT License", "mit", LicenseClass::Permissive),
        ("GPL-2+", "gpl-2.0-or-later", LicenseClass::Copyleft),
        (
            "MIT OR Apache-2.0",
            "apache-2.0 or mit",
            LicenseClass::Permissive,
        ),
        (
            "MIT/Apache-2.0",
            "apache-2.0 or mit",
            LicenseClass::Permissive,
        ),
        (
            "Apache-2.0 OR MIT",
            "apache-2.0 or mit",
            LicenseClass::Permissive,
        ),
        (
            "apache-2.0_or_mit",
            "apache-2.0 or mit",
            LicenseClass::Permissive,
        ),
        ("cc-by-4.0", "cc-by-4.0", LicenseClass::Attribution),
        ("etalab-2.0", "etalab-2.0", LicenseClass::Attribution),
        ("pd", "pd", LicenseClass::PublicDomain),
        (
            "apache-2.0 or mit",
            "apache-2.0 or mit",
            LicenseClass::Permissive,
        ),
        ("CC-BY-SA-3.0", "cc-by-sa-3.0", LicenseClass::ShareAlike),
        (
            "Creative Commons Attribution-ShareAlike 4.0 International",
            "cc-by-sa-4.0",
            LicenseClass::ShareAlike,
        ),
        (
            "Creative Commons Share Alike 3.0 licence",
            "cc-by-sa-3.0",
            LicenseClass::ShareAlike,
        ),
        (
            "Άδεια Creative Commons Share Alike 3.0",
            "cc-by-sa-3.0",
            LicenseClass::ShareAlike,
        ),
        (
            "https://creativecommons.org/licenses/by-sa/3.0/",
            "cc-by-sa-3.0",
            LicenseClass::ShareAlike,
        ),
        (
            "http://creativecommons.org/licenses/by-nc-nd/4.0/legalcode",
            "cc-by-nc-nd-4.0",
            LicenseClass::NoDerivatives,
        ),
        (
            "https://creativecommons.org/publicdomain/zero/1.0/",
            "cc0-1.0",
            LicenseClass::PublicDomain,
        ),
        (
            "CC BY-NC-SA 4.0",
            "cc-by-nc-sa-4.0",
            LicenseClass::NonCommercial,
        ),
        ("CC BY-NC 2.0", "cc-by-nc-2.0", LicenseClass::NonCommercial),
        ("CC-BY-ND-4.0", "cc-by-nd-4.0", LicenseClass::NoDerivatives),
        ("CC0", "cc0-1.0", LicenseClass::PublicDomain),
        (
            "CC-BY-SA-3.0-DE",
            "cc-by-sa-3.0-de",
            LicenseClass::ShareAlike,
        ),
        ("GPL-3+", "gpl-3.0-or-later", LicenseClass::Copyleft),
        ("GPLv2", "gpl-2.0-only", LicenseClass::Copyleft),
        ("GPL-2.0", "gpl-2.0-only", LicenseClass::Copyleft),
        (
            "GPL v3 or later",
            "gpl-3.0-or-later",
            LicenseClass::Copyleft,
        ),
        (
            "GNU General Public License v2 or later (GPLv2+)",
            "gpl-2.0-or-later",
            LicenseClass::Copyleft,
        ),
        (
            "classifier: GNU General Public License v3 or later (GPLv3+)",
            "gpl-3.0-or-later",
            LicenseClass::Copyleft,
        ),
        (
            "License :: OSI Approved :: MIT License",
            "mit",
            LicenseClass::Permissive,
        ),
        ("LGPL-2.1+", "lgpl-2.1-or-later", LicenseClass::Copyleft),
        ("MPL-2.0", "mpl-2.0", LicenseClass::Copyleft),
        ("MPL-1.1+", "mpl-1.1+", LicenseClass::Copyleft),
        (
            "GFDL-NIV-1.2+",
            "gfdl-1.2-no-invariants-or-later",
            LicenseClass::Copyleft,
        ),
        (
            "Apache License, Version 2.0",
            "apache-2.0",
            LicenseClass::Permissive,
        ),
        ("BSD-3-clause", "bsd-3-clause", LicenseClass::Permissive),
        ("Expat", "mit", LicenseClass::Permissive),
        ("Unlicense", "unlicense", LicenseClass::PublicDomain),
        (
            "all rights reserved",
            "proprietary",
            LicenseClass::Proprietary,
        ),
        ("ODbL", "odbl-1.0", LicenseClass::ShareAlike),
        (
            "Linux-man-pages-copyleft",
            "linux-man-pages-copyleft",
            LicenseClass::ShareAlike,
        ),
        (
            "GPL-2.0+ or CC-BY-SA-3.0",
            "cc-by-sa-3.0 or gpl-2.0-or-later",
            LicenseClass::ShareAlike,
        ),
        (
            "(MIT OR Apache-2.0) AND Unicode-3.0",
            "(apache-2.0 or mit) and unicode-3.0",
            LicenseClass::Permissive,
        ),
        (
            "apache-2.0_or_mit_and_unicode-3.0",
            "(apache-2.0 or mit) and unicode-3.0",
            LicenseClass::Permissive,
        ),
        (
            "Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT",
            "apache-2.0 or apache-2.0 with llvm-exception or mit",
            LicenseClass::Permissive,
        ),
        (
            "apache-2.0_with_llvm-exception",
            "apache-2.0 with llvm-exception",
            LicenseClass::Permissive,
        ),
        (
            "GPL-2.0-or-later WITH Classpath-exception-2.0",
            "gpl-2.0-or-later with classpath-exception-2.0",
            LicenseClass::Copyleft,
        ),
        ("MIT OR MIT", "mit", LicenseClass::Permissive),
        (
            "LicenseRef-Acme-1",
            "licenseref-acme-1",
            LicenseClass::Unknown,
        ),
        (
            "https://opensource.org/licenses/MIT",
            "mit",
            LicenseClass::Permissive,
        ),
    ];

    #[test]
    fn real_world_strings() {
        let mut failures = Vec::new();
        for &(raw, id, class) in CASES {
            let got = n(raw);
            if got.as_deref() != Some(id) || class_of(id) != class {
                failures.push(format!(
                    "{raw:?}: got {got:?} / {}, want {id} / {}",
                    class_of(id),
                    class
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn unrecognized_strings_are_none() {
        for raw in [
            "",
            "   ",
            "see LICENSE file",
            "Custom",
            "unknown",
            "BSD License",
            "BSD",
            "GPL",
            "Apache",
            "Licence Ouverte",
            "CC BY 4.0 FR",
            "CC BY 9.0",
            "Public Domain; BSD License; GNU General Public License (GPL)",
            "MIT, Apache-2.0",
            "MIT OR",
            "(MIT OR Apache-2.0",
            "MIT AND OR Apache-2.0",
            "MIT WITH MIT",
            "see build.py LICENSE_OVERRIDES",
            "mit_or_nonsense",
            "https://example.com/licenses/MIT",
        ] {
            assert_eq!(n(raw), None, "{raw:?} should not be recognized");
            assert_eq!(class_of(raw), LicenseClass::Unknown);
        }
        assert_eq!(n(&"MIT ".repeat(400)), None);
        assert_eq!(class_of(UNKNOWN), LicenseClass::Unknown);
    }

    #[test]
    fn or_takes_most_permissive_and_takes_most_restrictive() {
        use LicenseClass::*;
        let cases = [
            ("cc-by-sa-3.0 or gpl-2.0-or-later", ShareAlike),
            ("cc-by-sa-3.0 and gpl-2.0-or-later", Copyleft),
            ("cc0-1.0 or cc-by-nc-4.0", PublicDomain),
            ("cc0-1.0 and cc-by-nc-4.0", NonCommercial),
            ("mit and mpl-2.0", Copyleft),
            ("mit or unlicense", PublicDomain),
            ("mit or licenseref-x", Permissive),
            ("mit and licenseref-x", Unknown),
            ("(apache-2.0 or mit) and gpl-3.0-only", Copyleft),
            ("(gpl-3.0-only and mit) or cc-by-4.0", Attribution),
            ("cc-by-nc-nd-4.0", NoDerivatives),
            ("cc-by-nc-4.0 and cc-by-nd-4.0", NoDerivatives),
            ("proprietary or mit", Permissive),
            ("proprietary and pd", Proprietary),
        ];
        for (expr, want) in cases {
            assert_eq!(class_of(expr), want, "{expr}");
        }
        // The enum order is the documented order.
        let mut sorted = LicenseClass::ALL;
        sorted.sort();
        assert_eq!(sorted, LicenseClass::ALL);
        assert_eq!(LicenseClass::ALL.last(), Some(&Unknown));
    }

    #[test]
    fn fonts_and_other_classified_ids() {
        use LicenseClass::*;
        for (raw, id, class) in [
            ("OFL-1.1", "ofl-1.1", ShareAlike),
            ("OFL-1.1-RFN", "ofl-1.1-rfn", ShareAlike),
            ("Vim", "vim", Copyleft),
            ("ECL-2.0", "ecl-2.0", Permissive),
            ("LPPL-1.3c", "lppl-1.3c", Permissive),
            ("Artistic-1.0-Perl", "artistic-1.0-perl", Unknown),
        ] {
            assert_eq!(normalize(raw).as_deref(), Some(id), "{raw}");
            assert_eq!(class_of(id), class, "{id}");
        }
    }

    #[test]
    fn attribution() {
        for id in [
            "cc-by-4.0",
            "mit",
            "apache-2.0",
            "bsd-3-clause",
            "etalab-2.0",
            "cc-by-sa-3.0-fr",
            "gpl-3.0-only",
            "unknown",
            "licenseref-x",
        ] {
            assert!(requires_attribution(id), "{id}");
        }
        for id in [
            "pd",
            "cc0-1.0",
            "unlicense",
            "0bsd",
            "mit-0",
            "wtfpl",
            "mit or unlicense",
            "apache-2.0 or cc0-1.0 or mit-0",
        ] {
            assert!(!requires_attribution(id), "{id}");
        }
        assert!(requires_attribution("pd and mit"));
        assert!(!LicenseClass::PublicDomain.requires_attribution());
        assert!(LicenseClass::Attribution.requires_attribution());
        assert!(LicenseClass::Unknown.requires_attribution());
    }

    #[test]
    fn class_names_round_trip() {
        for c in LicenseClass::ALL {
            assert_eq!(LicenseClass::parse(c.as_str()), Some(c));
            assert_eq!(
                LicenseClass::parse(&c.as_str().to_uppercase().replace('-', "_")),
                Some(c)
            );
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(LicenseClass::parse("free"), None);
    }

    #[test]
    fn table_is_consistent() {
        let t = table();
        // Every alias target is a canonical id: it normalizes to itself.
        for id in t.aliases.values() {
            assert_eq!(n(id).as_deref(), Some(id.as_str()), "alias target {id}");
        }
        // Every exact class id is a recognized canonical id.
        for id in t.class_exact.keys() {
            assert_eq!(n(id).as_deref(), Some(id.as_str()), "class row {id}");
        }
        // Every prefix row matches at least one SPDX id or is the CC family.
        for (prefix, _) in &t.class_prefix {
            assert!(
                t.spdx_lower
                    .keys()
                    .any(|id| id.starts_with(prefix.as_str())),
                "prefix {prefix}*"
            );
        }
        // Every SPDX id is recognized, and every non-deprecated one is its own canonical form.
        for (name, _, flags) in spdx::identifiers::LICENSES {
            let got = n(name);
            assert!(got.is_some(), "SPDX id {name} not recognized");
            if flags & spdx::identifiers::IS_DEPRECATED == 0 {
                assert_eq!(
                    got.as_deref(),
                    Some(name.to_ascii_lowercase().as_str()),
                    "SPDX id {name}"
                );
            }
        }
        let v = table_version();
        assert!(v.starts_with("lt-") && v.len() == 19, "{v}");
        assert_eq!(v, table_version());
    }

    #[test]
    fn bad_tables_are_rejected() {
        assert!(load_table("[aliases]\nfoo\tbar\n").is_err());
        assert!(load_table("[aliases]\nfoo\tBar\tx\n").is_err());
        assert!(load_table("[aliases]\nfoo\tbar\tx\nFOO\tbaz\tx\n").is_err());
        assert!(load_table("[classes]\nmit\tfree\t-\tx\n").is_err());
        assert!(load_table("[other]\n").is_err());
        assert!(load_table("[aliases]\nfoo\tbar\tx\n[classes]\nbar\tpermissive\tno\tx\n").is_ok());
    }

    #[test]
    fn normalize_is_idempotent() {
        let mut inputs: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
        inputs.extend(table().aliases.keys().cloned());
        inputs.extend(spdx::identifiers::LICENSES.iter().map(|l| l.0.to_string()));
        inputs.extend(
            [
                "mit or pd",
                "(a",
                "GPL-2.0-only AND (MIT OR BSD-2-Clause) AND (MIT OR BSD-2-Clause)",
                "zlib or (mit and isc) or apache-2.0",
            ]
            .map(String::from),
        );
        for raw in inputs {
            if let Some(once) = n(&raw) {
                assert_eq!(
                    n(&once).as_deref(),
                    Some(once.as_str()),
                    "normalize({raw:?}) = {once:?} is not a fixed point"
                );
            }
        }
    }

    #[derive(serde::Deserialize)]
    struct Row {
        license: Option<String>,
        license_raw: Option<String>,
    }

    /// The real corpus: every dataset-normalized value (but `unknown`)
    /// normalizes; raw strings mostly agree with it. Prints the tables
    /// (`cargo test --release license -- --nocapture`).
    #[test]
    fn real_corpus() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/realcorpus-dev.jsonl.zst"
        );
        let Ok(file) = std::fs::File::open(path) else {
            eprintln!("skipping: {path} not found");
            return;
        };
        use std::io::BufRead;
        let reader = std::io::BufReader::new(zstd::Decoder::new(file).unwrap());
        let mut by_license: BTreeMap<String, usize> = BTreeMap::new();
        let mut pairs: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut docs = 0;
        for line in reader.lines() {
            let row: Row = serde_json::from_str(&line.unwrap()).unwrap();
            docs += 1;
            let lic = row.license.unwrap_or_default();
            *by_license.entry(lic.clone()).or_default() += 1;
            *pairs
                .entry((lic, row.license_raw.unwrap_or_default()))
                .or_default() += 1;
        }
        assert!(docs > 30_000, "{docs} documents");

        println!(
            "{:<60} {:>6}  {:<55} class",
            "license", "docs", "license_id"
        );
        let mut class_docs: BTreeMap<LicenseClass, usize> = BTreeMap::new();
        let mut missing = Vec::new();
        for (lic, count) in &by_license {
            let id = n(lic);
            let class = id.as_deref().map_or(LicenseClass::Unknown, class_of);
            *class_docs.entry(class).or_default() += count;
            println!(
                "{lic:<60} {count:>6}  {:<55} {class}",
                id.as_deref().unwrap_or(UNKNOWN)
            );
            if lic != UNKNOWN && id.is_none() {
                missing.push(lic.clone());
            }
            if lic != UNKNOWN && class == LicenseClass::Unknown {
                missing.push(format!("{lic} (no class)"));
            }
        }
        println!("\nclass counts (documents):");
        for (class, count) in &class_docs {
            println!("  {class:<16} {count:>6}");
        }
        assert!(
            missing.is_empty(),
            "not normalized or classified: {missing:?}"
        );

        // Raw strings against the dataset's own normalization.
        let (mut agree, mut disagree, mut raw_none, mut comparable) = (0, 0, 0, 0);
        let mut unknown_recognized = 0;
        println!("\nraw strings that disagree with the dataset's license:");
        for ((lic, raw), count) in &pairs {
            let from_raw = n(raw);
            if lic == UNKNOWN {
                if from_raw.is_some() {
                    unknown_recognized += count;
                    println!("  [dataset unknown] {raw:?} -> {from_raw:?} ({count})");
                }
                continue;
            }
            comparable += count;
            if from_raw == n(lic) {
                agree += count;
            } else {
                if from_raw.is_none() {
                    raw_none += count;
                } else {
                    disagree += count;
                }
                println!("  {raw:?} -> {from_raw:?}; dataset {lic} ({count})");
            }
        }
        println!(
            "\nraw vs dataset: {agree}/{comparable} documents agree ({:.2}%), {disagree} differ, {raw_none} raw unrecognized; {unknown_recognized} dataset-unknown documents recognized from raw",
            100.0 * agree as f64 / comparable as f64
        );
        assert!(agree * 100 >= comparable * 90, "agreement fell below 90%");
    }

    /// Two SPDX ids share a key only when one is a deprecated spelling
    /// of the other (`GPL-2.0+` / `GPL-2.0-or-later`): keys never merge
    /// distinct current licenses.
    #[test]
    fn spdx_keys_only_merge_deprecated_spellings() {
        let t = table();
        let mut seen: HashMap<String, Vec<(&str, bool)>> = HashMap::new();
        for (name, _, flags) in spdx::identifiers::LICENSES {
            let deprecated = flags & spdx::identifiers::IS_DEPRECATED != 0;
            seen.entry(key(name, &t.phrases))
                .or_default()
                .push((name, deprecated));
        }
        let mut merged = 0;
        for (k, ids) in seen {
            if ids.len() > 1 {
                merged += 1;
                let current = ids.iter().filter(|(_, d)| !d).count();
                assert!(current <= 1, "key {k:?} merges current ids {ids:?}");
            }
        }
        assert!(merged >= 6, "the GPL-2.0+ style pairs should share keys");
        for raw in ["Etalab", "CC-BY", "CC BY-SA", "Creative Commons"] {
            assert_eq!(n(raw), None, "{raw:?} has no version");
        }
    }
}
