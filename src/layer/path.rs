//! Entry names in layer tars: normalisation to one spelling, and refusal of names that
//! climb out of the root.
//!
//! `./a`, `a`, `/a` and `a/` name the same path (image-spec `layer.md` leaves the
//! spelling to the writer; runtimes clean names lexically before applying them).
//! A name whose `..` components climb above the root is unsafe.

/// Cleans an entry name lexically: drops empty, `.` and leading `/` components and
/// resolves `..`. Returns `None` when `..` climbs above the root. The root itself
/// is the empty path.
pub fn normalize(name: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join(&b'/'))
}

/// Splits a normalised path into its parent and its last component (`a/b` -> `a`, `b`;
/// `a` -> the root, `a`).
pub fn split_parent(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (&[], p),
    }
}

/// `name` under the normalised path `parent` (the root is the empty path).
pub fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        name.to_vec()
    } else {
        [parent, b"/", name].concat()
    }
}

pub use crate::escape::escape;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        for (input, want) in [
            (&b"a"[..], Some(&b"a"[..])),
            (b"./a", Some(b"a")),
            (b"/a/", Some(b"a")),
            (b"a//b/./c", Some(b"a/b/c")),
            (b"a/../b", Some(b"b")),
            (b"./", Some(b"")),
            (b"..", None),
            (b"a/../../etc", None),
            (b"/../x", None),
            (b"\xff\xfe/x", Some(b"\xff\xfe/x")),
        ] {
            assert_eq!(normalize(input).as_deref(), want, "{}", escape(input));
        }
    }

    #[test]
    fn escape_hides_control_bytes() {
        assert_eq!(
            escape(b"a\nb\x1b[2J\xff \"q\" \xc3\xa9"),
            "a\\nb\\u{1b}[2J\\xff \"q\" \u{e9}"
        );
    }
}
