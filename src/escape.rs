//! Untrusted bytes in messages: every name, server reply or crate error ocislim prints
//! goes through here, so none can move a terminal's cursor or split a line.

/// Escapes a name for a terminal or a one-line message: non-UTF-8 bytes and control
/// characters become escapes, so an untrusted name cannot move the cursor.
pub fn escape(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// `text` on one line with no terminal control: control characters escaped, the rest
/// (an [`escape`]d name's backslashes included) as it is. The last word on every error
/// ocislim prints, whatever a crate or a server put in it.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_control_and_keeps_the_rest() {
        assert_eq!(
            one_line("a\x1b[31mb\r\nc \\x00 é"),
            "a\\u{1b}[31mb\\r\\nc \\x00 é"
        );
    }
}
