//! Client-chosen texts in log lines (request ids, connection names), quoted and cut short: a
//! client decides their length, and a log line must not grow with it (a 2.5 MiB id in a
//! slow-request line, a 63 KB name in every open and close line).

use std::fmt;

/// Characters of a client-chosen text a log line shows.
pub const SHOWN_CHARS: usize = 128;

/// Displays a text as `{:?}` does, cut after [`SHOWN_CHARS`] characters with the length of the
/// whole: `"abc…"…(70000 bytes)`.
pub struct Clipped<'a>(pub &'a str);

impl fmt::Display for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(SHOWN_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}…({} bytes)", &self.0[..cut], self.0.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_quoted_whole_and_long_ones_cut_with_their_length() {
        assert_eq!(Clipped("ab\"c").to_string(), r#""ab\"c""#);
        let exact = "é".repeat(SHOWN_CHARS);
        assert_eq!(Clipped(&exact).to_string(), format!("{exact:?}"));
        let long = format!("{exact}x");
        assert_eq!(
            Clipped(&long).to_string(),
            format!("{exact:?}…({} bytes)", long.len())
        );
        let huge = "\u{1}".repeat(1 << 20);
        assert!(Clipped(&huge).to_string().len() < SHOWN_CHARS * 8);
    }
}
