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
            c if is_bidi_control(c) => '?',
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

/// Writes `value` as pretty JSON with every control character and bidi override escaped as
/// `\uXXXX`. serde_json escapes C0 controls but writes DEL, C1 controls (CSI among them)
/// and bidi overrides as they are; escaping them keeps the JSON identical in meaning and
/// safe to look at on a terminal.
pub fn write_json(
    out: &mut impl std::io::Write,
    value: &impl serde::Serialize,
) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        if (c.is_control() && c != '\n') || is_bidi_control(c) {
            safe.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            safe.push(c);
        }
    }
    writeln!(out, "{safe}")?;
    Ok(())
}

/// Bidi embeddings, overrides, isolates and marks: each can make text show in another
/// order than it is (`invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`).
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Text for a page rather than a terminal: the same characters as [`sanitize_block`]
/// turns into `?`, but tabs and line breaks kept, since a page lays those out itself.
pub fn sanitize_page(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\r' | '\n' | '\t' => c,
            c if c.is_control() || is_bidi_control(c) => '?',
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
        assert_eq!(sanitize("a\u{061C}b\u{2067}c"), "a?b?c");
        assert_eq!(
            sanitize_page("<p>x\u{202E}gpj.exe</p>\n\t\x1b[2J\u{9b}"),
            "<p>x?gpj.exe</p>\n\t?[2J?"
        );
        assert_eq!(sanitize("Café ✓"), "Café ✓");
    }

    #[test]
    fn json_is_escaped_losslessly() {
        let mut out = Vec::new();
        write_json(&mut out, &"a\u{9b}b\u{7f}\u{202e}\x1b").expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(text, "\"a\\u009bb\\u007f\\u202e\\u001b\"\n");
        let back: String = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back, "a\u{9b}b\u{7f}\u{202e}\x1b");
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
