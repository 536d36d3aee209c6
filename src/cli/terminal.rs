//! Text from messages is hostile: before it reaches a reviewer's terminal, control
//! characters and escape sequences are removed so a subject cannot drive the terminal.

/// Replaces control characters (C0, DEL, C1, including ESC and CSI) and bidirectional
/// overrides with `?`, and flattens line breaks to spaces.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\r' | '\n' | '\t' => ' ',
            c if c.is_control() => '?',
            // Bidi overrides and isolates can reorder what the reviewer sees.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' => '?',
            c => c,
        })
        .collect()
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
        assert_eq!(sanitize("Café ✓"), "Café ✓");
    }
}
