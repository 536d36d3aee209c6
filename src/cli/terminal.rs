//! The CLI's safe terminal output: multi-line text with its line breaks kept, and JSON
//! with every character escaped that could drive a terminal (one-line text goes through
//! [`crate::sanitize`]).

use crate::sanitize::{is_bidi_control, sanitize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
