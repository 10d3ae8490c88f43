//! `preview`: a short, printable excerpt of untrusted bytes for a log line.

/// Characters kept in a preview.
const MAX_CHARS: usize = 120;

/// Decodes `bytes` as UTF-8 (invalid sequences become U+FFFD) and keeps the first
/// [`MAX_CHARS`] characters, marking a cut with `…`. Log it with `?` so that tracing escapes
/// quotes, newlines and control characters: an untrusted value can never forge a log line.
pub fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_short_text_and_cuts_long_text_on_a_character_boundary() {
        assert_eq!(preview(b"hello"), "hello");
        let long = "é".repeat(200);
        let cut = preview(long.as_bytes());
        assert_eq!(cut.chars().count(), MAX_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn replaces_invalid_utf8_and_escapes_when_debug_printed() {
        assert_eq!(preview(&[0x61, 0xff, 0x62]), "a\u{fffd}b");
        assert_eq!(format!("{:?}", preview(b"a\nb\"")), r#""a\nb\"""#);
    }
}
