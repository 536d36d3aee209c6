//! Text from messages is hostile: before it reaches a reviewer's terminal, a CSV file or a
//! desk page, control characters and bidi overrides are replaced so that a subject can
//! neither drive the terminal nor show as something it is not.

/// Replaces control characters (C0, DEL, C1, including ESC and CSI) and bidirectional
/// overrides with `?`, and flattens line breaks to spaces.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\r' | '\n' | '\t' => ' ',
            c if c.is_control() => '?',
            // Bidi overrides and isolates can reorder what the reviewer sees.
            c if is_bidi_control(c) => '?',
            c => c,
        })
        .collect()
}

/// Text for a page rather than a terminal: the same characters as [`sanitize`] turns into
/// `?`, but tabs and line breaks kept, since a page lays those out itself.
pub fn sanitize_page(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\r' | '\n' | '\t' => c,
            c if c.is_control() || is_bidi_control(c) => '?',
            c => c,
        })
        .collect()
}

/// Bidi embeddings, overrides, isolates and marks: each can make text show in another
/// order than it is (`invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_neutralised() {
        assert_eq!(sanitize("hi\x1b]0;pwned\x07 there"), "hi?]0;pwned? there");
        assert_eq!(sanitize("a\u{9b}31mred"), "a?31mred");
        assert_eq!(sanitize("line\r\nbreak"), "line  break");
        assert_eq!(sanitize("invoice\u{202E}fdp.exe"), "invoice?fdp.exe");
        assert_eq!(sanitize("a\u{061C}b\u{2067}c"), "a?b?c");
        assert_eq!(
            sanitize_page("<p>x\u{202E}gpj.exe</p>\n\t\x1b[2J\u{9b}"),
            "<p>x?gpj.exe</p>\n\t?[2J?"
        );
        assert_eq!(sanitize("Café ✓"), "Café ✓");
    }
}
