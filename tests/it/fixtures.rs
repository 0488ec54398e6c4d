//! The fixture specs in `fixtures/`, the images built from them, and the committed
//! small image, which must match its recipe byte for byte.

use crate::builder::Spec;
use crate::tools::run;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn spec(name: &str) -> Spec {
    Spec::parse(&std::fs::read_to_string(fixtures_dir().join(format!("{name}.spec"))).unwrap())
}

/// Builds fixture `name` as an OCI layout in `work/name.oci`.
pub fn layout(name: &str, work: &Path) -> PathBuf {
    let dir = work.join(format!("{name}.oci"));
    spec(name).write_layout(&dir, false);
    dir
}

/// Packs a folder into a tar with fixed headers (sorted names, mtime 0, root owner),
/// so the committed fixture is reproducible.
pub fn pack(dir: &Path, out: &Path) {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone())
            }
            files.push(p);
        }
    }
    files.sort();
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    for p in files {
        let rel = p.strip_prefix(dir).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        if p.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, rel, std::io::empty()).unwrap();
        } else {
            let data = std::fs::read(&p).unwrap();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, rel, &data[..]).unwrap();
        }
    }
    b.into_inner().unwrap();
}

#[test]
fn committed_small_image_matches_its_recipe() {
    let work = crate::tools::scratch();
    let dir = layout("small", work.path());
    let built = work.path().join("small.tar");
    pack(&dir, &built);
    let committed = fixtures_dir().join("small.tar");
    if std::env::var_os("OCISLIM_REGENERATE").is_some() {
        std::fs::copy(&built, &committed).unwrap();
    }
    assert!(
        std::fs::read(&committed).unwrap() == std::fs::read(&built).unwrap(),
        "fixtures/small.tar differs from fixtures/small.spec; regenerate with OCISLIM_REGENERATE=1"
    );
    // And it is an image other tools accept.
    run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", committed.display())));
}
