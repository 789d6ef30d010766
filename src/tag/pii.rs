//! Tagger `pii` (being written).

/// Stand-in until the detectors land.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(text)
}
