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

/// Like [`sanitize`], but keeps line breaks for multi-line text such as a message body:
/// CRLF and lone CR become LF, tabs become spaces, everything else that could steer the
/// terminal becomes `?`.
pub fn sanitize_block(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.split('\n')
        .map(|line| sanitize(&line.replace('\t', "    ")))
        .collect::<Vec<_>>()
        .join("\n")
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

    #[test]
    fn blocks_keep_lines_but_lose_escapes() {
        assert_eq!(
            sanitize_block("one\r\ntwo\rthree\n\tfour\x1b[2J\x1b]8;;http://x\x07"),
            "one\ntwo\nthree\n    four?[2J?]8;;http://x?"
        );
        assert_eq!(sanitize_block("\u{9b}0m\u{202e}"), "?0m?");
    }
}
