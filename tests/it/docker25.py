#!/usr/bin/env python3
"""Writes a `docker save` archive the way Docker 25 and later lay it out, from an OCI
layout, independently of the Rust fixture builder.

Usage: docker25.py LAYOUT REF REPO:TAG OUT.tar

Layout, from moby's public description (pull request #44598, "image save: make output
tarball OCI compliant", and the archive listed in issue #47065):
- tar members, in this order, without a `./` prefix: `blobs/`, `blobs/sha256/`, each
  blob under `blobs/sha256/<hex>` (sorted), `index.json`, `manifest.json`,
  `oci-layout`, `repositories`;
- layers stored uncompressed, so each layer blob's digest is its diff_id, with media
  type `application/vnd.oci.image.layer.v1.tar`; the config blob as it was, media type
  `application/vnd.oci.image.config.v1+json`; an OCI image manifest blob;
- `index.json`: an OCI index of that manifest, annotated with
  `io.containerd.image.name` (`docker.io/library/REPO:TAG`) and
  `org.opencontainers.image.ref.name` (TAG);
- `manifest.json`: the legacy list `[{"Config", "RepoTags", "Layers"}]` whose paths
  point into `blobs/sha256/`;
- `oci-layout`: `{"imageLayoutVersion": "1.0.0"}`;
- `repositories`: `{"REPO": {"TAG": "<hex of the top layer>"}}`.
"""
import gzip
import hashlib
import io
import json
import sys
import tarfile


def main(layout, ref, repo_tag, out):
    def blob(digest):
        return open(f"{layout}/blobs/sha256/{digest.split(':', 1)[1]}", "rb").read()

    index = json.load(open(f"{layout}/index.json"))
    desc = next(m for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref)
    manifest = json.loads(blob(desc["digest"]))
    blobs = {}

    def put(data):
        hexd = hashlib.sha256(data).hexdigest()
        blobs[hexd] = data
        return {"digest": f"sha256:{hexd}", "size": len(data)}

    layers = []
    for layer in manifest["layers"]:
        data = blob(layer["digest"])
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        layers.append(dict(mediaType="application/vnd.oci.image.layer.v1.tar", **put(data)))
    config = dict(mediaType="application/vnd.oci.image.config.v1+json",
                  **put(blob(manifest["config"]["digest"])))
    new_manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers,
    }, separators=(",", ":")).encode()
    repo, tag = repo_tag.rsplit(":", 1)
    files = {
        "index.json": {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [dict(
                mediaType="application/vnd.oci.image.manifest.v1+json",
                annotations={
                    "io.containerd.image.name": f"docker.io/library/{repo}:{tag}",
                    "org.opencontainers.image.ref.name": tag,
                },
                **put(new_manifest))],
        },
        "manifest.json": [{
            "Config": f"blobs/sha256/{config['digest'][7:]}",
            "RepoTags": [repo_tag],
            "Layers": [f"blobs/sha256/{l['digest'][7:]}" for l in layers],
        }],
        "oci-layout": {"imageLayoutVersion": "1.0.0"},
        "repositories": {repo: {tag: layers[-1]["digest"][7:]}},
    }
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        for d in ["blobs", "blobs/sha256"]:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)

        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))

        for hexd in sorted(blobs):
            add(f"blobs/sha256/{hexd}", blobs[hexd])
        for name, doc in files.items():
            add(name, json.dumps(doc).encode())


if __name__ == "__main__":
    main(*sys.argv[1:])
