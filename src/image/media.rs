//! Media types of manifests, indexes and configs, and the well-known annotation keys
//! (image-spec `manifest.md`, `image-index.md`, `annotations.md`).

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The empty descriptor's media type: the config of an artifact that has none
/// (image-spec `manifest.md`, "Guidance for an Empty Descriptor").
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The empty descriptor's content: `{}`.
pub const EMPTY_JSON: &[u8] = b"{}";
/// The tag a registry without the referrers API lists a manifest's referrers under:
/// `sha256-<hex>` (distribution-spec, "Referrers Tag Schema").
pub fn referrers_tag(digest: &crate::digest::Digest) -> String {
    format!("sha256-{}", digest.hex())
}
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The tag of an image in an OCI layout (`annotations.md`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full image name containerd and Docker 25+ write in `index.json`.
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
/// BuildKit's marker for attestation manifests inside an index.
pub const DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// `oci-layout`'s fixed content.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The layout's entry point.
pub const INDEX_FILE: &str = "index.json";
/// `docker save`'s entry point.
pub const DOCKER_MANIFEST_FILE: &str = "manifest.json";
/// `docker save`'s legacy tag file.
pub const DOCKER_REPOSITORIES_FILE: &str = "repositories";
/// Where blobs live in a layout.
pub const BLOBS_DIR: &str = "blobs/sha256";
/// The layout version written into `oci-layout`.
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";

/// Whether a media type is a manifest (either family).
pub fn is_manifest(media_type: &str) -> bool {
    matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST)
}

/// Whether a media type is an image config (either family). image-spec 1.1 lets a
/// manifest's `artifactType` (and so an index descriptor's) be its config's media type,
/// as go-containerregistry writes it: such a descriptor names an image, not an artifact
/// (`manifest.md`, "artifactType ... MUST comply with RFC 6838").
pub fn is_config(media_type: &str) -> bool {
    matches!(media_type, OCI_CONFIG | DOCKER_CONFIG)
}

/// Whether a media type is an index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// A descriptor's annotation `key`, when it is a string.
pub fn annotation<'a>(descriptor: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    descriptor.get("annotations")?.get(key)?.as_str()
}

/// Normalises an image reference the way `docker` does for comparison:
/// `docker.io/library/app:1` and `app:1` are the same, `app` means `app:latest`.
pub fn normalize_ref(r: &str) -> String {
    // Docker Hub's old and new names: `index.docker.io/library/x` is `docker.io/library/x`.
    let r = r
        .strip_prefix("index.")
        .filter(|r| r.starts_with("docker.io/"))
        .unwrap_or(r);
    let r = r
        .strip_prefix("docker.io/library/")
        .or_else(|| r.strip_prefix("docker.io/"))
        .unwrap_or(r);
    let name_part = r.rsplit('/').next().unwrap_or(r);
    if name_part.contains(':') || name_part.contains('@') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

/// The name a slimmed image goes by where no `--tag` names it: the input's tag with
/// `-slim` appended (`app:1` -> `app:1-slim`, `app` -> `app:latest-slim`), so that
/// loading it never takes the input's own name; `None` for a digest reference.
pub fn slim_name(r: &str) -> Option<String> {
    let r = normalize_ref(r);
    if r.contains('@') {
        return None;
    }
    let (name, tag) = r.rsplit_once(':')?;
    // A tag is at most 128 characters; cut by characters, so that a name the reader
    // did not check cannot split one.
    let tag: String = tag.chars().take(128 - "-slim".len()).collect();
    Some(format!("{name}:{tag}-slim"))
}

/// The tag of a reference (`app:1` -> `1`), for `org.opencontainers.image.ref.name`.
pub fn tag_of(r: &str) -> &str {
    let name_part = r.rsplit('/').next().unwrap_or(r);
    name_part.rsplit_once(':').map_or("latest", |(_, t)| t)
}

/// Whether `r` fits image-spec `annotations.md`'s grammar for
/// `org.opencontainers.image.ref.name`: components of letters and digits joined by
/// `-._:@+` (or `--`), separated by `/`, here at most 255 characters.
pub fn is_ref_name(r: &str) -> bool {
    let sep = |c: char| matches!(c, '-' | '.' | '_' | ':' | '@' | '+');
    r.len() <= 255
        && r.split('/').all(|comp| {
            comp.starts_with(|c: char| c.is_ascii_alphanumeric())
                && comp.ends_with(|c: char| c.is_ascii_alphanumeric())
                && comp.chars().all(|c| c.is_ascii_alphanumeric() || sep(c))
        })
}

/// Why `r` is not an image name Docker would accept as `NAME[:TAG]`, following the
/// grammar of distribution's `reference` package: an optional registry host (it has a
/// `.` or a `:port`, or is `localhost`), then lowercase path components of `[a-z0-9]`
/// joined by `.`, `_`, `__` or dashes, then an optional tag of up to 128 word
/// characters, dots and dashes that does not start with either.
pub fn reference_problem(r: &str) -> Option<&'static str> {
    let (name, tag) = match r.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (r, None),
    };
    if let Some(t) = tag {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let ok = t.len() <= 128
            && t.starts_with(word)
            && t.chars().all(|c| word(c) || c == '.' || c == '-');
        if !ok {
            return Some(
                "a tag is 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
            );
        }
    }
    if name.is_empty() || name.len() > 255 {
        return Some("a name is 1-255 characters");
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    if parts.len() > 1 && (first.contains(['.', ':']) || first == "localhost") {
        let (host, port) = first.split_once(':').unwrap_or((first, ""));
        let label = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !host.split('.').all(label) || (first.contains(':') && !is_digits(port)) {
            return Some("a registry host is DNS labels with an optional :port");
        }
        parts.remove(0);
    }
    if !parts.iter().all(|p| path_component(p)) {
        return Some(
            "a name is lowercase letters and digits, joined by '.', '_', '__' or '-', in parts separated by '/'",
        );
    }
    None
}

/// Why `r` is not a ref name as image-spec's `annotations.md` describes
/// `org.opencontainers.image.ref.name`: components of letters and digits joined by one of
/// `-._:@+` or by `--`, separated by `/`.
pub fn ref_name_problem(r: &str) -> Option<&'static str> {
    let component = |c: &str| {
        let b = c.as_bytes();
        let sep = |x: u8| b"-._:@+".contains(&x);
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || sep(x))
            && b.windows(2)
                .all(|w| !(sep(w[0]) && sep(w[1])) || w == b"--")
    };
    if r.split('/').all(component) {
        None
    } else {
        Some(
            "a ref name is letters and digits joined by one of '-._:@+' or '--', in parts separated by '/'",
        )
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or one or more `-`.
fn path_component(p: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = p.as_bytes();
    if b.is_empty() || !alnum(b[0] as char) || !alnum(b[b.len() - 1] as char) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if alnum(c) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i] as char) {
            i += 1;
        }
        let sep = &p[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slimmed_image_gets_a_name_of_its_own() {
        assert_eq!(slim_name("app:1").as_deref(), Some("app:1-slim"));
        assert_eq!(slim_name("app").as_deref(), Some("app:latest-slim"));
        assert_eq!(
            slim_name("localhost:5000/team/app:2.1").as_deref(),
            Some("localhost:5000/team/app:2.1-slim")
        );
        assert_eq!(
            slim_name("docker.io/library/debian:12").as_deref(),
            Some("debian:12-slim")
        );
        assert_eq!(slim_name(&format!("app@sha256:{}", "a".repeat(64))), None);
        let long = slim_name(&format!("app:{}", "t".repeat(128))).unwrap();
        assert_eq!(long.len(), "app:".len() + 128);
    }

    #[test]
    fn references_follow_dockers_grammar() {
        for ok in [
            "app",
            "app:1",
            "app:latest",
            "my-org/my_app:v1.2-rc_3",
            "a__b/c--d.e",
            "localhost/app",
            "localhost:5000/app:2",
            "registry.example.com/team/app",
            "Registry.Example.com:443/app:X",
            "app:_private",
        ] {
            assert_eq!(reference_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "App",
            "app:",
            "app:-x",
            "app:.x",
            "a b",
            "app:1:2",
            "app/",
            "/app",
            "-app",
            "app-",
            "a___b",
            "a..b",
            "app@sha256:00",
            "host:port/app",
            "ex-.com/app",
        ] {
            assert!(reference_problem(bad).is_some(), "{bad:?} was accepted");
        }
        assert!(reference_problem(&format!("app:{}", "t".repeat(129))).is_some());
        assert!(reference_problem(&"a".repeat(256)).is_some());
    }

    #[test]
    fn normalize_ref_table() {
        for (r, want) in [
            ("app", "app:latest"),
            ("app:1", "app:1"),
            ("docker.io/library/app:1", "app:1"),
            ("docker.io/me/app", "me/app:latest"),
            ("index.docker.io/library/app:1", "app:1"),
            ("index.docker.io/me/app", "me/app:latest"),
            ("index.example.com/app", "index.example.com/app:latest"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost:5000/app:2", "localhost:5000/app:2"),
        ] {
            assert_eq!(normalize_ref(r), want, "{r}");
        }
        assert_eq!(tag_of("localhost:5000/app"), "latest");
        assert_eq!(tag_of("app:1.2"), "1.2");
    }
}
