//! Every registry request, over `reqwest`: the `/v2/` ping and its challenge, the token,
//! every manifest and blob pulled and pushed. oci-client, which made them before, reads
//! each reply whole before any limit can be applied: a 512 MiB manifest, error body or
//! token reply cost 1-2.5 GiB, an endless one all memory. Here:
//!
//! - every body is capped as it streams: documents at the JSON limit, tokens at
//!   [`TOKEN_LIMIT`], blobs at their descriptor's size, error bodies at
//!   [`ERROR_LIMIT`], of which at most [`super::reply::EXCERPT`] characters are shown,
//!   escaped, on one line;
//! - every request has a deadline: [`DOCUMENT_DEADLINE`] for documents, a blob's at
//!   [`MIN_RATE`], and the run's `--timeout` over all of them (a registry trickling a byte
//!   every 20 s never ended, one that accepts and stays silent held a run 20 minutes);
//! - a challenge naming a plain `http://` token realm is refused while TLS is verified:
//!   the credentials would cross in cleartext.

use super::reply::{Challenge, excerpt, parse_challenge, token};
use crate::digest::{Digest, Meter};
use crate::error::{Error, Result};
use crate::escape::escape;
use crate::image::remote::Access;
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION, WWW_AUTHENTICATE,
};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The largest token reply read (a registry's JWT is a few KiB).
pub const TOKEN_LIMIT: u64 = 1 << 20;
/// The most bytes of an error reply read.
pub const ERROR_LIMIT: u64 = 4 << 10;
/// The time a document request (ping, token, manifest) may take, body included.
pub const DOCUMENT_DEADLINE: Duration = Duration::from_secs(60);
/// The slowest a blob may arrive: its deadline is [`DOCUMENT_DEADLINE`] plus its size
/// at this rate (a 1 GB layer may take 2.2 hours).
pub const MIN_RATE: u64 = 128 << 10;
/// How long a connection may stay silent.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request failed, and whether trying again may pass.
pub struct Failure {
    /// The error as the user sees it.
    pub error: Error,
    /// A refused or cut connection, a timeout, a 5xx or 429.
    pub transient: bool,
    /// No connection (or no TLS session) came about: a plain HTTP registry, when TLS
    /// was tried.
    pub unreachable: bool,
}

impl Failure {
    /// A failure that trying again will not mend.
    pub fn stop(error: Error) -> Failure {
        Failure::of(error, false)
    }

    /// A failure that may pass when tried again.
    fn again(error: Error) -> Failure {
        Failure::of(error, true)
    }

    fn of(error: Error, transient: bool) -> Failure {
        Failure {
            error,
            transient,
            unreachable: false,
        }
    }
}

/// One registry host: the client, its base URL and how requests authenticate.
pub struct Http {
    client: reqwest::Client,
    /// `https://HOST` (or `http://` when allowed and the registry speaks no TLS).
    base: String,
    /// The repository, for token scopes.
    repository: String,
    /// What `/v2/` asked for: nothing, Basic credentials, or a token from a realm.
    challenge: Challenge,
    /// The credentials, when there are any.
    creds: Option<(String, String)>,
    /// The bearer token's `Authorization` header, once fetched.
    authorization: Mutex<Option<HeaderValue>>,
    /// The scopes of the last token asked for (asked again when one expires).
    scopes: Mutex<Vec<String>>,
    /// The run's `--timeout`, as an instant.
    deadline: Option<Instant>,
    /// As written on the command line, for messages.
    name: String,
}

/// Whether a request error may pass when tried again.
fn transient(e: &reqwest::Error) -> bool {
    let text = with_causes(e);
    let tls = text.contains("certificate") || text.contains("corrupt message");
    !tls && (e.is_connect() || e.is_timeout() || e.is_body() || e.is_request())
}

/// What a person can do about a TLS failure: a registry that answers plain HTTP
/// (rustls reads its reply as a corrupt record) wants `--tls-verify=false`.
fn hint(e: &reqwest::Error) -> &'static str {
    let text = with_causes(e);
    if text.contains("InvalidContentType") || text.contains("corrupt message") {
        "; the registry answered plain HTTP: add --tls-verify=false (or --src-tls-verify=false, --dest-tls-verify=false)"
    } else if text.contains("certificate") {
        "; its certificate is not trusted: add --cert-dir DIR with its CA, or --tls-verify=false"
    } else {
        ""
    }
}

/// An error with its causes, on one line.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s = format!("{s}: {text}");
        }
        cause = c.source();
    }
    s
}

/// A client with the access's TLS settings and timeouts.
pub fn client(access: &Access, roots: Vec<reqwest::Certificate>) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(access.insecure)
        .tls_certs_merge(roots)
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("ocislim/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            Error::Usage(format!(
                "registry client: {}",
                escape(with_causes(&e).as_bytes())
            ))
        })
}

impl Http {
    /// Asks `base`'s `/v2/` what it wants, refusing a plaintext token realm unless TLS
    /// is off (`--tls-verify=false`). `name` is the image as written.
    pub fn connect(
        client: reqwest::Client,
        base: String,
        repository: &str,
        creds: Option<(String, String)>,
        access: &Access,
        name: &str,
    ) -> std::result::Result<Http, Failure> {
        let mut http = Http {
            client,
            base,
            repository: repository.to_string(),
            challenge: Challenge::None,
            creds,
            authorization: Mutex::new(None),
            scopes: Mutex::new(Vec::new()),
            deadline: access.deadline,
            name: name.to_string(),
        };
        let url = format!("{}/v2/", http.base);
        let r = http.send(http.client.get(&url), DOCUMENT_DEADLINE, "", false)?;
        let status = r.status();
        let header = r
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        http.challenge = match (status, header) {
            (StatusCode::UNAUTHORIZED, Some(h)) => {
                parse_challenge(&h).map_err(|e| Failure::stop(http.error(e)))?
            }
            (s, _) if s.is_success() => Challenge::None,
            _ => return Err(http.failure("", r)),
        };
        if let Challenge::Bearer { realm, .. } = &http.challenge
            && !super::reply::is_https(realm)
            && !access.insecure
        {
            return Err(Failure::stop(http.error(format!(
                "the registry sends credentials for a token to {}, which is not HTTPS \
                 (plain HTTP would carry them in cleartext): refused \
                 (--tls-verify=false allows it)",
                escape(realm.as_bytes())
            ))));
        }
        Ok(http)
    }

    /// Whether `/v2/` asked for a token.
    fn wants_token(&self) -> bool {
        matches!(self.challenge, Challenge::Bearer { .. })
    }

    /// Fetches a token for `scope` (`pull` or `pull,push`) of the repository, and `pull`
    /// of each of `also` (a repository blobs are mounted from), when the registry wants
    /// one.
    pub fn authorize(&self, scope: &str, also: &[&str]) -> std::result::Result<(), Failure> {
        let mut scopes = vec![format!("repository:{}:{scope}", self.repository)];
        scopes.extend(also.iter().map(|r| format!("repository:{r}:pull")));
        *self.scopes.lock().unwrap() = scopes;
        self.token()
    }

    /// Fetches a token for the scopes last asked for.
    fn token(&self) -> std::result::Result<(), Failure> {
        let Challenge::Bearer { realm, service } = &self.challenge else {
            return Ok(());
        };
        let scopes = self.scopes.lock().unwrap().clone();
        let mut query: Vec<(&str, &str)> = scopes.iter().map(|s| ("scope", s.as_str())).collect();
        if let Some(s) = service {
            query.push(("service", s));
        }
        let mut req = self.client.get(realm).query(&query);
        if let Some((u, p)) = &self.creds {
            req = req.basic_auth(u, Some(p));
        }
        let r = self.send(req, DOCUMENT_DEADLINE, "token: ", false)?;
        if matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            let what = "token: the token server refused the credentials: ";
            return Err(self.reply_failure(what, "", r));
        }
        if !r.status().is_success() {
            return Err(self.failure("token: ", r));
        }
        let body = self.capped(r, TOKEN_LIMIT, "token: ")?;
        let token = token(&body).map_err(|e| Failure::stop(self.error(format!("token: {e}"))))?;
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Failure::stop(self.error("token: not a token a header can carry")))?;
        *self.authorization.lock().unwrap() = Some(value);
        Ok(())
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Remote {
            what: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The time left before the run's deadline, at most `own`.
    fn budget(&self, own: Duration) -> std::result::Result<Duration, Failure> {
        let Some(deadline) = self.deadline else {
            return Ok(own);
        };
        match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left.min(own)),
            _ => Err(Failure::stop(self.error("the run's --timeout has passed"))),
        }
    }

    /// Sends `req` with the time it may take (its body included), with the registry's
    /// credentials when `auth` (never to a token server or another host): its bearer token,
    /// or Basic credentials when `/v2/` asked for those.
    fn send(
        &self,
        req: reqwest::RequestBuilder,
        own: Duration,
        what: &str,
        auth: bool,
    ) -> std::result::Result<reqwest::Response, Failure> {
        let limit = self.budget(own)?;
        let token = self.authorization.lock().unwrap().clone();
        let req = match (auth, &self.challenge, token, &self.creds) {
            (false, ..) => req,
            (true, _, Some(t), _) => req.header(AUTHORIZATION, t),
            (true, Challenge::Basic, None, Some((u, p))) => req.basic_auth(u, Some(p)),
            _ => req,
        };
        // A timer is made inside the runtime.
        let fut = async move { tokio::time::timeout(limit, req.timeout(limit).send()).await };
        match super::block_on(fut).map_err(Failure::stop)? {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(Failure {
                unreachable: e.is_connect(),
                transient: transient(&e),
                error: self.error(format!(
                    "{what}{}{}",
                    escape(with_causes(&e).as_bytes()),
                    hint(&e)
                )),
            }),
            Err(_) => Err(Failure::again(
                self.error(format!("{what}no reply within {} s", limit.as_secs())),
            )),
        }
    }

    /// A reply that is not a success, as an error: its status and an excerpt of its
    /// body (read up to [`ERROR_LIMIT`]), escaped, on one line.
    fn failure(&self, what: &str, r: reqwest::Response) -> Failure {
        let reason = match r.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "authentication failed: ",
            _ => "",
        };
        self.reply_failure(what, reason, r)
    }

    /// [`Http::failure`], `reason` before the status.
    fn reply_failure(&self, what: &str, reason: &str, r: reqwest::Response) -> Failure {
        let status = r.status();
        let body = self.capped_lossy(r, ERROR_LIMIT);
        let said = excerpt(&String::from_utf8_lossy(&body));
        let said = if said.is_empty() {
            said
        } else {
            format!(": {said}")
        };
        Failure::of(
            self.error(format!("{what}{reason}{status}{said}")),
            status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
        )
    }

    /// Up to `limit` bytes of a body, errors ignored (for an error reply).
    fn capped_lossy(&self, r: reqwest::Response, limit: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.stream(r, limit, &mut out, "");
        out
    }

    /// A whole body of at most `limit` bytes; more is refused as it arrives.
    fn capped(
        &self,
        r: reqwest::Response,
        limit: u64,
        what: &str,
    ) -> std::result::Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        match self.stream(r, limit, &mut out, what)? {
            n if n <= limit => Ok(out),
            _ => Err(Failure::stop(self.error(format!(
                "{what}a reply of more than {limit} bytes: refused"
            )))),
        }
    }

    /// Streams a body into `out`, stopping after `limit + 1` bytes; the count seen.
    fn stream(
        &self,
        r: reqwest::Response,
        limit: u64,
        out: &mut dyn Write,
        what: &str,
    ) -> std::result::Result<u64, Failure> {
        let mut seen = 0u64;
        let body = async {
            let mut stream = r.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| {
                    Failure::again(
                        self.error(format!("{what}{}", escape(with_causes(&e).as_bytes()))),
                    )
                })?;
                let room = (limit + 1 - seen).min(chunk.len() as u64) as usize;
                out.write_all(&chunk[..room])
                    .map_err(|e| Failure::stop(Error::Io(e)))?;
                seen += room as u64;
                if seen > limit {
                    break;
                }
            }
            Ok(seen)
        };
        super::block_on(body).map_err(Failure::stop)?
    }

    /// Sends the request `make` builds (to the registry, authenticated), asking for a
    /// new token and sending it again once on a 401 (tokens expire).
    fn call(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        own: Duration,
        what: &str,
    ) -> std::result::Result<reqwest::Response, Failure> {
        let r = self.send(make(), own, what, true)?;
        if r.status() == StatusCode::UNAUTHORIZED && self.wants_token() {
            if self.scopes.lock().unwrap().is_empty() {
                self.authorize("pull", &[])?;
            } else {
                self.token()?;
            }
            return self.send(make(), own, what, true);
        }
        Ok(r)
    }

    /// The URL of `path` below the repository.
    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.repository)
    }

    /// `GET` (or `HEAD`) of `path` below the repository.
    fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        own: Duration,
        what: &str,
        head: bool,
    ) -> std::result::Result<reqwest::Response, Failure> {
        let url = self.url(path);
        let request = || {
            let req = if head {
                self.client.head(&url)
            } else {
                self.client.get(&url)
            };
            match accept {
                Some(a) => req.header(ACCEPT, a),
                None => req,
            }
        };
        self.call(request, own, what)
    }

    /// A manifest by tag or digest: its bytes (at most `limit`).
    pub fn manifest(
        &self,
        reference: &str,
        accept: &str,
        limit: u64,
    ) -> std::result::Result<Vec<u8>, Failure> {
        let what = format!("manifest {}: ", escape(reference.as_bytes()));
        let r = self.get(
            &format!("manifests/{reference}"),
            Some(accept),
            DOCUMENT_DEADLINE,
            &what,
            false,
        )?;
        if !r.status().is_success() {
            return Err(self.failure(&what, r));
        }
        self.capped(r, limit, &what)
    }

    /// Whether the registry answers the referrers API for `digest`
    /// (`GET /v2/NAME/referrers/DIGEST` with an index; distribution 2.8 answers 404).
    pub fn has_referrers_api(&self, digest: &Digest) -> bool {
        self.get(
            &format!("referrers/{}", digest.as_str()),
            Some(crate::image::media::OCI_INDEX),
            DOCUMENT_DEADLINE,
            "",
            false,
        )
        .is_ok_and(|r| {
            r.status().is_success()
                && r.headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .is_some_and(|t| {
                        t.as_bytes()
                            .starts_with(crate::image::media::OCI_INDEX.as_bytes())
                    })
        })
    }

    /// Whether the repository has a manifest under `reference` (one `HEAD`).
    pub fn has_manifest(&self, reference: &str, accept: &str) -> bool {
        self.get(
            &format!("manifests/{reference}"),
            Some(accept),
            DOCUMENT_DEADLINE,
            "",
            true,
        )
        .is_ok_and(|r| r.status().is_success())
    }

    /// Streams blob `digest` of `size` bytes into `out`: more bytes than `size`, fewer,
    /// or others are refused.
    pub fn blob(
        &self,
        digest: &Digest,
        size: u64,
        out: &mut dyn Write,
    ) -> std::result::Result<(), Failure> {
        let what = format!("blob {}: ", digest.as_str());
        let own = DOCUMENT_DEADLINE + Duration::from_secs(size / MIN_RATE);
        let r = self.get(
            &format!("blobs/{}", digest.as_str()),
            None,
            own,
            &what,
            false,
        )?;
        if !r.status().is_success() {
            return Err(self.failure(&what, r));
        }
        let mut meter = Meter::new(out);
        let seen = self.stream(r, size, &mut meter, &what)?;
        if seen != size {
            let error = Error::SizeMismatch {
                blob: format!("{} {what}", self.name)
                    .trim_end_matches(": ")
                    .to_string(),
                expected: size,
                found: seen,
            };
            // Cut short may pass; too long will not.
            return Err(Failure::of(error, seen < size));
        }
        let (_, found, _) = meter.finish();
        if found != *digest {
            return Err(Failure::again(Error::DigestMismatch {
                blob: format!("{} blob", self.name),
                expected: digest.as_str().to_string(),
                found: found.as_str().to_string(),
            }));
        }
        Ok(())
    }

    /// Whether the repository has blob `digest` (`HEAD`).
    pub fn has_blob(&self, digest: &Digest) -> std::result::Result<bool, Failure> {
        let what = format!("blob {}: ", digest.as_str());
        let path = format!("blobs/{}", digest.as_str());
        let r = self.get(&path, None, DOCUMENT_DEADLINE, &what, true)?;
        match r.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.failure(&what, r)),
        }
    }

    /// Mounts blob `digest` from the repository `from` of the same registry; `false`
    /// when the registry would not (it started an upload instead, left to expire).
    pub fn mount(&self, digest: &Digest, from: &str) -> std::result::Result<bool, Failure> {
        let what = format!("blob {}: ", digest.as_str());
        let url = self.url("blobs/uploads/");
        let query = [("mount", digest.as_str()), ("from", from)];
        let r = self.call(
            || {
                self.client
                    .post(&url)
                    .query(&query)
                    .header(CONTENT_LENGTH, 0)
            },
            DOCUMENT_DEADLINE,
            &what,
        )?;
        Ok(r.status() == StatusCode::CREATED)
    }

    /// Uploads blob `digest` of `size` bytes from the file at `path`: one `POST` for an
    /// upload session, one `PUT` streaming the file (read in 4 MiB pieces).
    pub fn upload(
        &self,
        digest: &Digest,
        size: u64,
        path: &std::path::Path,
    ) -> std::result::Result<(), Failure> {
        let what = format!("blob {}: ", digest.as_str());
        let url = self.url("blobs/uploads/");
        let r = self.call(
            || self.client.post(&url).header(CONTENT_LENGTH, 0),
            DOCUMENT_DEADLINE,
            &what,
        )?;
        if r.status() != StatusCode::ACCEPTED {
            return Err(self.failure(&what, r));
        }
        let location = r
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| {
                Failure::stop(self.error(format!("{what}an upload without a Location")))
            })?;
        let base = reqwest::Url::parse(&self.base)
            .map_err(|e| Failure::stop(self.error(e.to_string())))?;
        let mut at = base.join(location).map_err(|e| {
            Failure::stop(self.error(format!("{what}Location {}: {e}", excerpt(location))))
        })?;
        at.query_pairs_mut().append_pair("digest", digest.as_str());
        let ours = at.origin() == base.origin();
        let file = std::fs::File::open(path).map_err(|e| Failure::stop(Error::Io(e)))?;
        let pieces = futures_util::stream::unfold(file, |mut f| async move {
            let mut buf = Vec::with_capacity(4 << 20);
            match std::io::Read::read_to_end(&mut std::io::Read::take(&mut f, 4 << 20), &mut buf) {
                Ok(0) => None,
                Ok(_) => Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f)),
                Err(e) => Some((Err(e), f)),
            }
        });
        let req = self
            .client
            .put(at)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(pieces));
        let own = DOCUMENT_DEADLINE + Duration::from_secs(size / MIN_RATE);
        let r = self.send(req, own, &what, ours)?;
        if r.status() != StatusCode::CREATED {
            return Err(self.failure(&what, r));
        }
        Ok(())
    }

    /// Puts a manifest under `reference` (a tag or digest).
    pub fn put_manifest(
        &self,
        reference: &str,
        bytes: &bytes::Bytes,
        media_type: &str,
    ) -> std::result::Result<(), Failure> {
        let what = format!("manifest {}: ", escape(reference.as_bytes()));
        let url = self.url(&format!("manifests/{reference}"));
        let r = self.call(
            || {
                self.client
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            },
            DOCUMENT_DEADLINE,
            &what,
        )?;
        if !r.status().is_success() {
            return Err(self.failure(&what, r));
        }
        Ok(())
    }
}
