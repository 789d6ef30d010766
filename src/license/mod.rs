//! License normalization and classes (temporary stand-in while the real table is written).

/// The id of an unrecognized license.
pub const UNKNOWN: &str = "unknown";

/// License classes, from most to least permissive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LicenseClass {
    /// Public domain.
    PublicDomain,
    /// Permissive.
    Permissive,
    /// Attribution.
    Attribution,
    /// Share-alike.
    ShareAlike,
    /// Copyleft.
    Copyleft,
    /// Non-commercial.
    NonCommercial,
    /// No derivatives.
    NoDerivatives,
    /// Proprietary.
    Proprietary,
    /// Unknown.
    Unknown,
}

impl LicenseClass {
    /// Every class.
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
    /// Name.
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
    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Canonical id (stand-in).
pub fn normalize(raw: &str) -> Option<String> {
    let s = raw.trim().to_lowercase();
    (!s.is_empty() && s != UNKNOWN).then_some(s)
}

/// Class (stand-in).
pub fn class_of(id: &str) -> LicenseClass {
    match id {
        "pd" | "cc0-1.0" => LicenseClass::PublicDomain,
        "mit" | "apache-2.0" => LicenseClass::Permissive,
        _ => LicenseClass::Unknown,
    }
}

/// Whether attribution is required (stand-in).
pub fn requires_attribution(id: &str) -> bool {
    id.starts_with("cc-by")
}

/// Table version (stand-in).
pub fn table_version() -> &'static str {
    "stand-in"
}
