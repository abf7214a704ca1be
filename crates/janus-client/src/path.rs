//! Paths and query strings of the native API, percent-encoded.

use std::fmt::Write as _;

/// Percent-encodes `text` for a path segment or a query value: everything
/// but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`).
///
/// ```
/// assert_eq!(janus_client::segment("a b/c"), "a%20b%2Fc");
/// ```
#[must_use]
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A query string built a parameter at a time: empty, or `?a=1&b=2`.
#[derive(Debug, Default)]
pub(crate) struct Query(String);

impl Query {
    /// Adds `key=value` (the value encoded).
    pub(crate) fn push(&mut self, key: &str, value: &str) -> &mut Self {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        self.0.push_str(key);
        self.0.push('=');
        self.0.push_str(&segment(value));
        self
    }

    /// Adds `key=value` when there is a value.
    pub(crate) fn push_some(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.push(key, value);
        }
        self
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(segment("DEFAULT_GROUP.web-1~x"), "DEFAULT_GROUP.web-1~x");
        assert_eq!(segment("a@@b:c"), "a%40%40b%3Ac");
        assert_eq!(segment("é"), "%C3%A9");
        assert_eq!(segment("?&="), "%3F%26%3D");
    }

    #[test]
    fn a_query_starts_with_a_question_mark_and_skips_absent_values() {
        let mut query = Query::default();
        assert_eq!(query.as_str(), "");
        query.push("group", "blue green").push_some("cluster", None).push_some("index", Some("7"));
        assert_eq!(query.as_str(), "?group=blue%20green&index=7");
    }
}
