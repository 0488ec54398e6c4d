//! What a registry replies, read without a network: the `WWW-Authenticate` challenge, a
//! token reply, and what is shown of an error body. Kept apart from the client (and
//! built without the `transports` feature) so the fuzz targets reach them.

use crate::escape::escape;

/// The most characters of an error reply shown.
pub const EXCERPT: usize = 200;

/// What `/v2/` asked for: nothing, Basic credentials, or a token from a realm.
#[derive(Clone, Debug)]
pub enum Challenge {
    /// No authentication.
    None,
    /// Basic credentials on every request.
    Basic,
    /// A token from a token server.
    Bearer {
        /// The token server's URL.
        realm: String,
        /// The service the token is for, when named.
        service: Option<String>,
    },
}

/// At most [`EXCERPT`] characters of what a server said, its whitespace runs as one
/// space, control characters escaped: one line, whatever it sent.
pub fn excerpt(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut = text
        .char_indices()
        .nth(EXCERPT)
        .map_or(text.len(), |(i, _)| i);
    let more = if cut < text.len() { "..." } else { "" };
    format!("{}{more}", escape(&text.as_bytes()[..cut]))
}

/// Whether a token realm is an HTTPS URL as a URL parser reads it (leading blanks
/// dropped, the scheme in any case): ` http://x` is plain HTTP too.
pub fn is_https(realm: &str) -> bool {
    url::Url::parse(realm).is_ok_and(|u| u.scheme() == "https")
}

/// The token of a token server's reply (`token`, else `access_token`).
pub fn token(body: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Reply {
        token: Option<String>,
        access_token: Option<String>,
    }
    let reply: Reply =
        serde_json::from_slice(body).map_err(|e| format!("not a token reply: {e}"))?;
    reply
        .token
        .or(reply.access_token)
        .ok_or_else(|| "a token reply without a token".to_string())
}

/// The first challenge of a `WWW-Authenticate` header ocislim can answer.
pub fn parse_challenge(header: &str) -> std::result::Result<Challenge, String> {
    let challenges = http_auth::parse_challenges(header)
        .map_err(|e| format!("a WWW-Authenticate header it cannot read: {e}"))?;
    for c in challenges {
        if c.scheme.eq_ignore_ascii_case("bearer") {
            let param = |k: &str| {
                c.params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.to_unescaped())
            };
            let Some(realm) = param("realm") else {
                return Err("a Bearer challenge without a realm".into());
            };
            return Ok(Challenge::Bearer {
                realm,
                service: param("service"),
            });
        }
        if c.scheme.eq_ignore_ascii_case("basic") {
            return Ok(Challenge::Basic);
        }
    }
    Err(format!(
        "an authentication scheme it cannot answer: {}",
        escape(header.get(..EXCERPT).unwrap_or(header).as_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example""#,
        )
        .unwrap();
        assert!(
            matches!(&c, Challenge::Bearer { realm, service: Some(s) }
                if realm == "https://auth.example/token" && s == "registry.example"),
            "{c:?}"
        );
        assert!(matches!(
            parse_challenge(r#"Basic realm="x""#).unwrap(),
            Challenge::Basic
        ));
        assert!(parse_challenge("Negotiate").is_err());
        for (realm, https) in [
            ("https://auth.example/token", true),
            ("HTTPS://auth.example/token", true),
            ("http://auth.example/token", false),
            (" http://auth.example/token", false),
            ("\thttp://auth.example/token", false),
            ("HTTP://auth.example/token", false),
            ("ht\ttp://auth.example/token", false),
            ("/token", false),
        ] {
            assert_eq!(is_https(realm), https, "{realm:?}");
        }
        assert!(parse_challenge(r#"Bearer service="x""#).is_err());
    }
}
