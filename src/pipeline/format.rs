//! The output's format and media types, chosen the same way by every command that
//! writes an image.

use crate::image::writer::Dest;
use crate::image::{Format, Image, media};
use crate::layer::codec::Compression;

/// The output format when none is asked for: the input's, except a docker archive on
/// stdout and an OCI archive for a `.tar` path from a layout folder.
pub fn default_format(input: Format, dest: &Dest) -> Format {
    if let Some(f) = dest.remote_format() {
        return f;
    }
    match dest {
        Dest::Stdout | Dest::Node(_) => Format::DockerArchive,
        // `-o app.tar` from a layout folder means an archive, as for `docker save -o`.
        Dest::Path(p) if input == Format::Oci && p.extension().is_some_and(|e| e == "tar") => {
            Format::OciArchive
        }
        _ => input,
    }
}

/// Chooses the manifest family: Docker's only when the input used it and every
/// layer is gzip (Docker has no zstd layer type).
pub fn media_family(
    image: &Image,
    codecs: &[Compression],
    warnings: &mut Vec<String>,
) -> (bool, String, String) {
    let docker = image.docker_media_types && codecs.iter().all(|c| *c == Compression::Gzip);
    if image.docker_media_types && !docker {
        warnings.push(
            "Docker media types have no zstd or plain layer type; wrote OCI media types".into(),
        );
    }
    let config_media = if image.docker_media_types && !docker {
        media::OCI_CONFIG.to_string()
    } else {
        image.config_media_type.clone()
    };
    let manifest_media = if docker {
        media::DOCKER_MANIFEST
    } else {
        media::OCI_MANIFEST
    };
    (docker, manifest_media.to_string(), config_media)
}
