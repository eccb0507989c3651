//! [`escape_controls`]: the one way text that came from outside (names, filters, client ids, topics,
//! payloads, error texts from an endpoint or a remote broker) is shown on a terminal, so it can never
//! move the cursor, clear the screen, recolour it or reorder what follows.

use std::borrow::Cow;

/// `text` with every control character written as an escape: `\n`, `\r`, `\t`, `\x1b` for the other
/// C0 controls and DEL, `\u{9b}` for the C1 controls, and `\u{202e}` for the bidirectional
/// overrides and isolates (U+202A..U+202E, U+2066..U+2069), which reorder a line without a byte of
/// ESC. A backslash is kept as it is. Borrowed when there is nothing to escape.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_is_kept() {
        assert!(matches!(
            escape_controls("sensors/+/temp ü"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("evil\x1b[2J\u{9b}1m\u{202e}x\x07\x7f\n\t"),
            "evil\\x1b[2J\\u{9b}1m\\u{202e}x\\x07\\x7f\\n\\t"
        );
    }
}
