//! Media types of manifests, indexes and configs, and the well-known annotation keys
//! (image-spec `manifest.md`, `image-index.md`, `annotations.md`).

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
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

/// Whether a media type is an index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// Normalises an image reference the way `docker` does for comparison:
/// `docker.io/library/app:1` and `app:1` are the same, `app` means `app:latest`.
pub fn normalize_ref(r: &str) -> String {
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

/// The tag of a reference (`app:1` -> `1`), for `org.opencontainers.image.ref.name`.
pub fn tag_of(r: &str) -> &str {
    let name_part = r.rsplit('/').next().unwrap_or(r);
    name_part.rsplit_once(':').map_or("latest", |(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_ref_table() {
        for (r, want) in [
            ("app", "app:latest"),
            ("app:1", "app:1"),
            ("docker.io/library/app:1", "app:1"),
            ("docker.io/me/app", "me/app:latest"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost:5000/app:2", "localhost:5000/app:2"),
        ] {
            assert_eq!(normalize_ref(r), want, "{r}");
        }
        assert_eq!(tag_of("localhost:5000/app"), "latest");
        assert_eq!(tag_of("app:1.2"), "1.2");
    }
}
