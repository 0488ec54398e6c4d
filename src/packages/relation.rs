//! Package relations as dpkg reads them (deb-control(5), "Package relationship
//! fields"): `Depends: a (>= 1.0), b:any | c` is a list of groups, all needed, each
//! satisfied by any one of its alternatives; an alternative is a name, an optional
//! architecture qualifier and an optional version constraint. apk's `D:` line is a
//! space-separated list of names with optional constraints (`musl>=1.2`), `!name`
//! being a conflict.

use serde::Serialize;

/// A version constraint's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (and the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (and the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

/// One alternative of a relation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Relation {
    /// The package (or virtual package) name.
    pub name: String,
    /// The version constraint, when there is one.
    pub version: Option<(Op, String)>,
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some((op, v)) = &self.version {
            let op = match op {
                Op::Lt => "<<",
                Op::Le => "<=",
                Op::Eq => "=",
                Op::Ge => ">=",
                Op::Gt => ">>",
            };
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

/// A dpkg relation field: groups of alternatives. Architecture qualifiers (`:any`,
/// `:native`, `:amd64`) are dropped (one architecture is installed here); the
/// `[arch]` and `<profile>` restrictions only source packages carry are ignored.
pub fn parse_dpkg(field: &str) -> Vec<Vec<Relation>> {
    field
        .split(',')
        .map(|group| {
            group
                .split('|')
                .filter_map(|alt| parse_alternative(alt.trim()))
                .collect::<Vec<_>>()
        })
        .filter(|g| !g.is_empty())
        .collect()
}

fn parse_alternative(s: &str) -> Option<Relation> {
    let end = s.find(['(', '[', '<', ' ', '\t', '\n']).unwrap_or(s.len());
    let name = s[..end].split(':').next().unwrap_or_default().trim();
    if name.is_empty() {
        return None;
    }
    let version = s.find('(').and_then(|open| {
        let inner = &s[open + 1..s[open..].find(')').map_or(s.len(), |c| open + c)];
        let inner = inner.trim();
        let (op, rest) = [
            ("<<", Op::Lt),
            ("<=", Op::Le),
            (">=", Op::Ge),
            (">>", Op::Gt),
            ("=", Op::Eq),
            ("<", Op::Le),
            (">", Op::Ge),
        ]
        .iter()
        .find_map(|(t, op)| inner.strip_prefix(t).map(|r| (*op, r)))?;
        Some((op, rest.trim().to_string()))
    });
    Some(Relation {
        name: name.to_string(),
        version,
    })
}

/// apk's `D:` line: each word a group of one; conflicts (`!name`) are left out.
pub fn parse_apk(line: &str) -> Vec<Vec<Relation>> {
    line.split_whitespace()
        .filter(|w| !w.starts_with('!'))
        .map(|w| {
            let end = w.find(['<', '>', '=', '~']).unwrap_or(w.len());
            let (name, rest) = w.split_at(end);
            let version = (!rest.is_empty()).then(|| {
                let op_len = rest
                    .find(|c: char| !matches!(c, '<' | '>' | '=' | '~'))
                    .unwrap_or(rest.len());
                let op = match &rest[..op_len] {
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    _ => Op::Eq,
                };
                (op, rest[op_len..].to_string())
            });
            vec![Relation {
                name: name.to_string(),
                version,
            }]
        })
        .collect()
}

/// An apk provides word (`so:libz.so.1=1.2.13`, `cmd:gzip`): its name and version.
pub fn apk_provided(word: &str) -> Relation {
    let (name, version) = word
        .split_once('=')
        .map_or((word, None), |(n, v)| (n, Some(v)));
    Relation {
        name: name.to_string(),
        version: version.map(|v| (Op::Eq, v.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(groups: &[Vec<Relation>]) -> String {
        groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    #[test]
    fn dpkg_fields() {
        for (field, want) in [
            (
                "libc6 (>= 2.34), libgcc-s1 | libgcc1",
                "libc6 (>= 2.34), libgcc-s1 | libgcc1",
            ),
            (
                "python3:any (<< 3.12), perl:native",
                "python3 (<< 3.12), perl",
            ),
            (
                "a (>2), b (<1), c(=1.0-1)",
                "a (>= 2), b (<= 1), c (= 1.0-1)",
            ),
            ("foo [amd64] <!nocheck>, , bar\n baz", "foo, bar"),
            ("", ""),
        ] {
            assert_eq!(show(&parse_dpkg(field)), want, "{field}");
        }
    }

    #[test]
    fn apk_lines() {
        assert_eq!(
            show(&parse_apk(
                "musl>=1.2.3 so:libc.musl-x86_64.so.1 !conflict busybox~1.36"
            )),
            "musl (>= 1.2.3), so:libc.musl-x86_64.so.1, busybox (= 1.36)"
        );
        assert_eq!(
            apk_provided("so:libz.so.1=1.2.13").to_string(),
            "so:libz.so.1 (= 1.2.13)"
        );
    }
}
