//! Random layer stacks squashed by ocislim equal a naive model: apply each layer's
//! entries to a map in order (whiteouts and opaque markers removing only what lower
//! layers put there, hard links sharing their target's data), for the input layers and
//! for the output's layers alike.

use crate::builder::Spec;
use crate::tools::scratch;
use ocislim::command::squash::{Keep, SquashOptions, squash};
use ocislim::image::reader::{OpenOptions, SourceSpec};
use ocislim::image::writer::{Dest, OutputOptions};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

const PATHS: [&str; 9] = ["a", "b", "c", "a/x", "a/y", "b/x", "a/x/deep", "b/z", "c/q"];

#[derive(Clone, Debug)]
enum Op {
    File(usize, u8),
    Dir(usize),
    Symlink(usize, usize),
    Link(usize, usize),
    Whiteout(usize),
    Opaque(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PATHS.len();
    prop_oneof![
        4 => (p.clone(), any::<u8>()).prop_map(|(p, c)| Op::File(p, c)),
        3 => p.clone().prop_map(Op::Dir),
        1 => (p.clone(), p.clone()).prop_map(|(a, b)| Op::Symlink(a, b)),
        3 => (p.clone(), p.clone()).prop_map(|(a, b)| Op::Link(a, b)),
        2 => p.clone().prop_map(Op::Whiteout),
        1 => p.prop_map(Op::Opaque),
    ]
}

/// What the model holds at a path.
#[derive(Clone, Debug, PartialEq)]
struct V {
    layer: usize,
    kind: char,
    data: String,
    inode: usize,
}

/// An entry as the model applies it (paths as strings).
#[derive(Clone, Debug)]
enum E {
    File(String, String),
    Dir(String),
    Symlink(String, String),
    Link(String, String),
    Whiteout(String),
    Opaque(String),
}

#[derive(Default)]
struct Model {
    map: BTreeMap<String, V>,
    next_inode: usize,
}

fn under(k: &str, p: &str) -> bool {
    k.len() > p.len() && k.starts_with(p) && k.as_bytes()[p.len()] == b'/'
}

impl Model {
    fn remove_tree(&mut self, p: &str) {
        self.map.retain(|k, _| k != p && !under(k, p));
    }

    fn put(&mut self, p: &str, layer: usize, kind: char, data: String) {
        self.next_inode += 1;
        self.map.insert(
            p.into(),
            V {
                layer,
                kind,
                data,
                inode: self.next_inode,
            },
        );
    }

    /// Applies one entry; `false` when the entry is not one a runtime could apply
    /// (a link to nothing or to a directory, a path under a non-directory: entries
    /// under symlinks are judged against umoci and Docker in `hostile.rs`).
    fn apply(&mut self, layer: usize, e: &E) -> bool {
        let path = match e {
            E::File(p, _)
            | E::Dir(p)
            | E::Symlink(p, _)
            | E::Link(p, _)
            | E::Whiteout(p)
            | E::Opaque(p) => p,
        };
        // An opaque marker's own name is `d/.wh..wh..opq`: `d` is its parent too.
        let marker;
        let mut anc = match e {
            E::Opaque(d) => {
                marker = format!("{d}/m");
                marker.as_str()
            }
            _ => path.as_str(),
        };
        while let Some((parent, _)) = anc.rsplit_once('/') {
            if self.map.get(parent).is_some_and(|v| v.kind != 'd') {
                return false;
            }
            anc = parent;
        }
        match e {
            E::File(p, d) => {
                self.remove_tree(p);
                self.put(p, layer, 'f', d.clone());
            }
            E::Symlink(p, t) => {
                self.remove_tree(p);
                self.put(p, layer, 'l', t.clone());
            }
            E::Dir(p) => {
                if self.map.get(p).is_some_and(|v| v.kind == 'd') {
                    self.map.get_mut(p).unwrap().layer = layer;
                } else if !self.map.contains_key(p.as_str()) {
                    // Over nothing, or over the implicit parent of earlier entries.
                    self.put(p, layer, 'd', String::new());
                } else {
                    self.remove_tree(p);
                    self.put(p, layer, 'd', String::new());
                }
            }
            E::Link(p, t) => {
                let Some(target) = self.map.get(t).cloned().filter(|v| v.kind != 'd') else {
                    return false;
                };
                if p == t {
                    return false;
                }
                self.remove_tree(p);
                self.map.insert(p.clone(), V { layer, ..target });
            }
            E::Whiteout(p) => self
                .map
                .retain(|k, v| !((k == p || under(k, p)) && v.layer < layer)),
            E::Opaque(d) => self.map.retain(|k, v| !(under(k, d) && v.layer < layer)),
        }
        true
    }

    /// Path -> (kind, data, first path of its hard-link group).
    fn view(&self) -> BTreeMap<String, (char, String, String)> {
        let mut first: BTreeMap<usize, String> = BTreeMap::new();
        for (k, v) in &self.map {
            first.entry(v.inode).or_insert_with(|| k.clone());
        }
        self.map
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    (
                        v.kind,
                        v.data.clone(),
                        if v.kind == 'd' {
                            String::new()
                        } else {
                            first[&v.inode].clone()
                        },
                    ),
                )
            })
            .collect()
    }
}

fn entry(op: &Op) -> E {
    let p = |i: &usize| PATHS[*i].to_string();
    match op {
        Op::File(i, c) => E::File(p(i), format!("c{c}")),
        Op::Dir(i) => E::Dir(p(i)),
        Op::Symlink(i, t) => E::Symlink(p(i), format!("../{}", p(t))),
        Op::Link(i, t) => E::Link(p(i), p(t)),
        Op::Whiteout(i) => E::Whiteout(p(i)),
        Op::Opaque(i) => E::Opaque(p(i)),
    }
}

/// Keeps the entries a runtime could apply, and writes them as a builder spec.
fn spec_and_model(layers: &[Vec<Op>]) -> (String, Model) {
    let mut model = Model::default();
    let mut text = String::from("tag prop:1\n");
    for (l, ops) in layers.iter().enumerate() {
        text += "layer\n";
        for op in ops {
            let e = entry(op);
            if !model.apply(l, &e) {
                continue;
            }
            text += &match e {
                E::File(p, d) => format!("file {p} \"{d}\"\n"),
                E::Dir(p) => format!("dir {p}\n"),
                E::Symlink(p, t) => format!("symlink {p} -> {t}\n"),
                E::Link(p, t) => format!("hardlink {p} -> {t}\n"),
                E::Whiteout(p) => format!("whiteout {p}\n"),
                E::Opaque(p) => format!("opaque {p}\n"),
            };
        }
    }
    (text, model)
}

/// Reads every layer of an OCI layout back into model entries.
fn layers_of(layout: &Path) -> Vec<Vec<E>> {
    let m = crate::squash::manifest(layout);
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let blob =
                std::fs::read(crate::squash::blob(layout, l["digest"].as_str().unwrap())).unwrap();
            let mut tar = Vec::new();
            flate2::read::MultiGzDecoder::new(&blob[..])
                .read_to_end(&mut tar)
                .unwrap();
            let mut out = Vec::new();
            for e in tar::Archive::new(&tar[..]).entries().unwrap() {
                let mut e = e.unwrap();
                let path = String::from_utf8(e.path_bytes().into_owned())
                    .unwrap()
                    .trim_start_matches("./")
                    .trim_end_matches('/')
                    .to_string();
                let (dir, name) = path
                    .rsplit_once('/')
                    .map_or(("", path.as_str()), |(d, n)| (d, n));
                let join = |n: &str| {
                    if dir.is_empty() {
                        n.to_string()
                    } else {
                        format!("{dir}/{n}")
                    }
                };
                let kind = e.header().entry_type();
                out.push(if name == ".wh..wh..opq" {
                    E::Opaque(dir.to_string())
                } else if let Some(h) = name.strip_prefix(".wh.") {
                    E::Whiteout(join(h))
                } else if kind.is_dir() {
                    E::Dir(path)
                } else if kind.is_symlink() {
                    E::Symlink(
                        path,
                        String::from_utf8(e.link_name_bytes().unwrap().into_owned()).unwrap(),
                    )
                } else if kind.is_hard_link() {
                    E::Link(
                        path,
                        String::from_utf8(e.link_name_bytes().unwrap().into_owned()).unwrap(),
                    )
                } else {
                    let mut d = String::new();
                    e.read_to_string(&mut d).unwrap();
                    E::File(path, d)
                });
            }
            out
        })
        .collect()
}

fn check(layers: &[Vec<Op>], keep: usize) -> Result<(), TestCaseError> {
    let (text, model) = spec_and_model(layers);
    let w = scratch();
    let dir = w.path().join("in.oci");
    Spec::parse(&text).write_layout(&dir, false);
    let out = w.path().join("out.oci");
    let opts = SquashOptions {
        source: SourceSpec::parse(dir.to_str().unwrap()),
        open: OpenOptions::default(),
        output: OutputOptions {
            dest: Dest::Path(out.clone()),
            format: None,
            compression: None,
            level: None,
            tags: vec!["out:1".into()],
            ref_name: None,
        },
        keep: Keep::Layers(keep.min(layers.len() - 1)),
        groups: None,
        timestamp: None,
        cache: None,
        policy: ocislim::policy::PolicySet::none(),
        dry_run: false,
        allow_broken: false,
        check: true,
        report_file: None,
        sbom: None,
        attach: false,
        jobs: 2,
        progress: Default::default(),
    };
    squash(&opts).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    let mut got = Model::default();
    for (l, entries) in layers_of(&out).iter().enumerate() {
        for e in entries {
            prop_assert!(
                got.apply(l, e),
                "the output has an entry no runtime could apply: {e:?}\n{text}"
            );
        }
    }
    prop_assert_eq!(got.view(), model.view(), "\n{}", text);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_stacks_squashed_whole_equal_the_naive_model(layers in prop::collection::vec(prop::collection::vec(op(), 0..7), 1..5)) {
        check(&layers, 0)?;
    }

    #[test]
    fn random_stacks_squashed_above_a_base_equal_the_naive_model(layers in prop::collection::vec(prop::collection::vec(op(), 0..7), 2..5), keep in 1usize..4) {
        check(&layers, keep)?;
    }
}
