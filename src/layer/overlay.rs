//! The overlay merge: applies layer indexes in order to a path map, the way a container
//! runtime applies layers to a root filesystem (image-spec `layer.md`, "Applying
//! Changesets"), then plans what one squashed layer must hold to give the same result.
//!
//! Rules honoured:
//! - whiteouts and opaque markers hide lower layers only, wherever they stand in their
//!   layer: entries are applied in order, and a marker removes only what lower layers
//!   put there (so a hard link made before a whiteout of its lower target still holds
//!   the data, as it does when Docker applies the layer);
//! - a non-directory replaces whatever was at its path, subtree included; a directory
//!   over a directory merges (its metadata wins); a directory replaces a non-directory;
//! - the last entry for a path within a layer wins;
//! - a hard link joins the inode its target path holds when the link is applied; when
//!   that path is later deleted or replaced, the surviving aliases keep the data;
//! - an entry's parent directories (and a whiteout's, and a hard link target's) resolve
//!   through the symlinks the merged filesystem holds when the entry is applied, confined
//!   to the root, as Docker (in a chroot), containerd and umoci (securejoin) resolve
//!   them: with `a -> d`, a later `a/g` lands at `d/g` and `a/.wh.x` deletes `d/x`. The
//!   last component is never followed. An opaque marker whose own directory is a
//!   symlink is refused: Docker then removes nothing, containerd empties the target.

use super::index::{EntryRec, Kind, check_limits};
use super::path::{escape, join, split_parent};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;

/// An entry by manifest position (from 0) and index within its layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    /// Layer position, from 0.
    pub layer: usize,
    /// Entry index within the layer.
    pub entry: usize,
}

/// What the merged filesystem holds at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    /// The entry that put it there.
    pub id: EntryId,
    /// The entry that carries its data (itself, or a hard link's target).
    pub inode: EntryId,
    /// Whether it is a directory.
    pub is_dir: bool,
}

/// The merged filesystem: normalised path -> node. The root is the empty path.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    /// Nodes by path.
    pub nodes: BTreeMap<Vec<u8>, Node>,
    /// The target of every symlink entry applied, by the entry (a node is a symlink
    /// when its inode is listed here).
    symlinks: HashMap<EntryId, Vec<u8>>,
}

/// Most symlinks followed to resolve one path (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// The key range of `p`'s strict descendants (`p/` up to `p0`, as `0` follows `/`).
fn descendants_range(p: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    if p.is_empty() {
        return (Bound::Excluded(Vec::new()), Bound::Unbounded);
    }
    (
        Bound::Included([p, b"/"].concat()),
        Bound::Excluded([p, b"0"].concat()),
    )
}

/// The parent of a normalised path (`a/b` -> `a`, `a` -> the root).
pub fn parent(p: &[u8]) -> &[u8] {
    p.iter()
        .rposition(|&b| b == b'/')
        .map_or(&[][..], |i| &p[..i])
}

impl Tree {
    /// Paths strictly below `p`.
    pub fn descendants(&self, p: &[u8]) -> impl Iterator<Item = (&Vec<u8>, &Node)> {
        self.nodes.range(descendants_range(p))
    }

    fn remove_subtree(&mut self, p: &[u8], with_self: bool) -> usize {
        let keys: Vec<Vec<u8>> = self.descendants(p).map(|(k, _)| k.clone()).collect();
        let mut n = keys.len();
        for k in keys {
            self.nodes.remove(&k);
        }
        if with_self && self.nodes.remove(p).is_some() {
            n += 1;
        }
        n
    }

    /// The inodes some path of the tree still holds (non-directories only).
    pub fn live_inodes(&self) -> std::collections::HashSet<EntryId> {
        self.nodes
            .values()
            .filter(|n| !n.is_dir)
            .map(|n| n.inode)
            .collect()
    }

    /// Puts a non-directory at `p`, replacing whatever was there, subtree included.
    fn replace(&mut self, p: &[u8], node: Node) {
        self.remove_subtree(p, true);
        self.nodes.insert(p.to_vec(), node);
    }

    /// Merges layers in order; returns the tree after the first `keep` layers (empty
    /// when `keep` is 0) and the tree after all of them.
    pub fn merge<'a>(
        layers: impl IntoIterator<Item = (&'a mut [EntryRec], String)>,
        keep: usize,
        warnings: &mut Vec<String>,
    ) -> Result<(Tree, Tree)> {
        let mut tree = Tree::default();
        let mut base = Tree::default();
        for (i, (entries, name)) in layers.into_iter().enumerate() {
            if i == keep {
                base = tree.clone();
            }
            tree.apply(i, entries, &name, warnings)?;
        }
        Ok((base, tree))
    }

    /// Merges layers in order; returns the tree after each of `ends` layers (ascending;
    /// the last is the number of layers).
    pub fn merge_at<'a>(
        layers: impl IntoIterator<Item = (&'a mut [EntryRec], String)>,
        ends: &[usize],
        warnings: &mut Vec<String>,
    ) -> Result<Vec<Tree>> {
        let mut tree = Tree::default();
        let mut out = Vec::with_capacity(ends.len());
        for (i, (entries, name)) in layers.into_iter().enumerate() {
            tree.apply(i, entries, &name, warnings)?;
            if ends.contains(&(i + 1)) {
                out.push(tree.clone());
            }
        }
        Ok(out)
    }

    /// Removes `p` and what lies below it.
    pub fn remove_with_subtree(&mut self, p: &[u8]) {
        self.remove_subtree(p, true);
    }

    /// Removes what layers below `layer` put at `p` (with `with_self`) and below it.
    fn remove_lower(&mut self, p: &[u8], with_self: bool, layer: usize) -> usize {
        let mut keys: Vec<Vec<u8>> = self
            .descendants(p)
            .filter(|(_, n)| n.id.layer < layer)
            .map(|(k, _)| k.clone())
            .collect();
        if with_self && self.nodes.get(p).is_some_and(|n| n.id.layer < layer) {
            keys.push(p.to_vec());
        }
        for k in &keys {
            self.nodes.remove(k);
        }
        keys.len()
    }

    /// The symlink target held at `p`, if a symlink is there.
    fn symlink_at(&self, p: &[u8]) -> Option<&Vec<u8>> {
        self.nodes.get(p).and_then(|n| self.symlinks.get(&n.inode))
    }

    /// Resolves directory path `dir` through the symlinks the tree holds, confined to the
    /// root: `..` at the root stays there and an absolute target starts at the root, as
    /// securejoin and a chroot resolve them. Errors on a symlink loop.
    fn resolve_dir(&self, dir: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let mut out: Vec<u8> = Vec::new();
        let mut rest: Vec<u8> = dir.to_vec();
        let mut at = 0;
        let mut hops = 0;
        while at < rest.len() {
            let end = rest[at..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(rest.len(), |i| at + i);
            let comp = &rest[at..end];
            let next_at = end + 1;
            match comp {
                b"" | b"." => {}
                b".." => out.truncate(parent(&out).len()),
                c => {
                    let next = join(&out, c);
                    if let Some(target) = self.symlink_at(&next) {
                        hops += 1;
                        if hops > MAX_SYMLINK_HOPS {
                            return Err(format!(
                                "more than {MAX_SYMLINK_HOPS} symlinks resolving {}",
                                escape(dir)
                            ));
                        }
                        if target.starts_with(b"/") {
                            out.clear();
                        }
                        let tail = rest.get(next_at..).unwrap_or_default();
                        rest = [target.as_slice(), b"/", tail].concat();
                        at = 0;
                        continue;
                    }
                    out = next;
                }
            }
            at = next_at;
        }
        Ok(out)
    }

    /// `p` (a normalised path) with its parent directories resolved (see
    /// [`Tree::resolve_dir`]), or `None` when no parent is a symlink, the common case,
    /// found without allocating. Its last component is never followed.
    fn moved_parent(&self, p: &[u8]) -> std::result::Result<Option<Vec<u8>>, String> {
        let (dir, name) = split_parent(p);
        let through_symlink = !self.symlinks.is_empty()
            && dir
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'/')
                .map(|(i, _)| &dir[..i])
                .chain([dir])
                .any(|prefix| !prefix.is_empty() && self.symlink_at(prefix).is_some());
        if !through_symlink {
            return Ok(None);
        }
        // Symlinks can make a path far longer than any name in the tar (40 hops of
        // 4096 bytes): held to the same limits, or later ancestor walks would cost
        // depth x length for every such entry.
        let resolved = join(&self.resolve_dir(dir)?, name);
        check_limits(&resolved, "a path resolved through symlinks")?;
        Ok(Some(resolved))
    }

    /// Moves entry `e` to where a runtime puts it: its parents, a whiteout's, a hard
    /// link target's resolved through the tree's symlinks.
    fn resolve_entry(&self, e: &mut EntryRec, what: &str) -> Result<()> {
        let bad = |why: String| Error::Unsupported {
            what: what.to_string(),
            reason: format!("{}: {why}", escape(&e.path)),
        };
        let path = self.moved_parent(&e.path).map_err(bad)?;
        let kind = match &e.kind {
            Kind::Whiteout(p) => self.moved_parent(p).map_err(bad)?.map(Kind::Whiteout),
            Kind::Opaque(d) => {
                let dir = self.moved_parent(d).map_err(bad)?;
                let at = dir.as_deref().unwrap_or(d);
                if let Some(target) = self.symlink_at(at) {
                    return Err(bad(format!(
                        "an opaque marker in {}, a symlink to {}: runtimes disagree on it (Docker removes nothing, containerd empties the target)",
                        escape(at),
                        escape(target)
                    )));
                }
                dir.map(Kind::Opaque)
            }
            Kind::Hardlink(t) => self.moved_parent(t).map_err(bad)?.map(Kind::Hardlink),
            _ => None,
        };
        if path.is_some() || kind.is_some() {
            e.moved = true;
        }
        if let Some(p) = path {
            e.path = p;
        }
        if let Some(k) = kind {
            e.kind = k;
        }
        Ok(())
    }

    /// A non-directory at a parent of `p` (a file `a`, then `a/b/c`) cannot stay beside
    /// `p`: no runtime unpacks both. umoci replaces it with the directory (its
    /// non-dir-parent tests expect that), and so does this, with a warning. Nothing is
    /// ever put below a non-directory, so the nearest ancestor the tree holds decides:
    /// a directory (the common case, one lookup) means none above it is a file.
    fn replace_non_dir_ancestor(&mut self, p: &[u8], what: &str, warnings: &mut Vec<String>) {
        let mut a = p;
        while let Some(i) = a.iter().rposition(|&b| b == b'/') {
            a = &a[..i];
            match self.nodes.get(a) {
                None => continue, // an implicit parent: look further up
                Some(n) if n.is_dir => return,
                Some(_) => {
                    warnings.push(format!(
                        "{what}: {} replaces the non-directory {} with a directory, as umoci unpacks it",
                        escape(p),
                        escape(a)
                    ));
                    let a = a.to_vec();
                    self.nodes.remove(&a);
                    return;
                }
            }
        }
    }

    // Long: the overlay rules of image-spec layer.md, one arm per entry kind (whiteout,
    // opaque marker, directory, hard link, the rest); they share the layer's markers and
    // the entry's resolved path, and read best as the one table the spec gives.
    /// Applies layer `layer`'s entries, first moving each to where a runtime puts it
    /// (see [`Tree::resolve_entry`]). Problems that do not stop the work are pushed to
    /// `warnings`.
    pub fn apply(
        &mut self,
        layer: usize,
        entries: &mut [EntryRec],
        what: &str,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        // The markers applied in this layer, by resolved path (whiteout or opaque).
        let mut markers: HashSet<(bool, &[u8])> = HashSet::new();
        for (i, e) in entries.iter_mut().enumerate() {
            let id = EntryId { layer, entry: i };
            self.resolve_entry(e, what)?;
            if let Kind::Symlink(target) = &e.kind {
                self.symlinks.insert(id, target.clone());
            }
            let e = &*e;
            if !matches!(e.kind, Kind::Whiteout(_) | Kind::Opaque(_) | Kind::Ignored) {
                self.replace_non_dir_ancestor(&e.path, what, warnings);
            }
            match &e.kind {
                // Markers hide what lower layers put there, wherever they stand in
                // their layer; entries of their own layer stay.
                // A marker repeated in its layer changes nothing more (lower layers do
                // not grow meanwhile) and is skipped: rescanning the subtree for every
                // copy made a layer of repeated markers cost quadratic time.
                Kind::Whiteout(p) => {
                    if markers.insert((true, p.as_slice()))
                        && self.remove_lower(p, true, layer) == 0
                    {
                        warnings.push(format!(
                            "{what}: whiteout for {} which no lower layer has",
                            escape(p)
                        ));
                    }
                }
                Kind::Opaque(d) => {
                    if markers.insert((false, d.as_slice())) {
                        self.remove_lower(d, false, layer);
                    }
                }
                Kind::Ignored => {}
                Kind::Dir => {
                    // Over a non-directory it replaces; over a directory, or a path
                    // that exists only as the implicit parent of earlier entries, it
                    // merges.
                    if self.nodes.get(&e.path).is_some_and(|n| !n.is_dir) {
                        self.remove_subtree(&e.path, true);
                    }
                    self.nodes.insert(
                        e.path.clone(),
                        Node {
                            id,
                            inode: id,
                            is_dir: true,
                        },
                    );
                }
                Kind::Hardlink(target) => {
                    let Some(t) = self.nodes.get(target).copied() else {
                        return Err(Error::corrupt(
                            what,
                            format!(
                                "hard link {} points at {}, which does not exist",
                                escape(&e.path),
                                escape(target)
                            ),
                        ));
                    };
                    if t.is_dir {
                        return Err(Error::corrupt(
                            what,
                            format!(
                                "hard link {} points at directory {}",
                                escape(&e.path),
                                escape(target)
                            ),
                        ));
                    }
                    if *target != e.path {
                        // A link to itself changes nothing.
                        self.replace(
                            &e.path,
                            Node {
                                id,
                                inode: t.inode,
                                is_dir: false,
                            },
                        );
                    }
                }
                Kind::File | Kind::Symlink(_) | Kind::Special => {
                    self.replace(
                        &e.path,
                        Node {
                            id,
                            inode: id,
                            is_dir: false,
                        },
                    );
                }
            }
        }
        Ok(())
    }
}

/// One entry of the squashed layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Emit {
    /// Copy this entry's raw bytes.
    Raw(EntryId),
    /// Write `alias` at its path as a copy of `carrier` (type, metadata, data): the
    /// name that carried a hard-link group's data is gone, an alias takes it over.
    Promote {
        /// The surviving alias.
        alias: EntryId,
        /// The entry holding the data.
        carrier: EntryId,
    },
    /// Rewrite hard link `link` to point at `target`.
    Relink {
        /// The link entry.
        link: EntryId,
        /// Its new target path.
        target: Vec<u8>,
    },
    /// `.wh.` marker hiding this base path.
    Whiteout(Vec<u8>),
    /// Opaque marker in this directory.
    Opaque(Vec<u8>),
}

/// Plans the squashed layer that turns `base` (the first `keep` layers merged; empty
/// for a full squash) into `fin` (every layer merged). `layers` gives entry kinds.
pub fn plan(base: &Tree, fin: &Tree, keep: usize, layers: &[&[EntryRec]]) -> Vec<Emit> {
    let rec = |id: EntryId| &layers[id.layer][id.entry];
    let mut out = Vec::new();
    out.extend(hiding_markers(base, fin, keep));
    // Surviving upper entries: directories first, parents before children (a
    // directory restated late in its layer must still precede what it holds), then
    // everything else in original order, so hard-link carriers precede their links.
    // A directory below a non-directory (a lower symlink's target path) keeps its
    // original place.
    let under_non_dir = |p: &[u8]| {
        let mut a = p;
        while !a.is_empty() {
            a = parent(a);
            if fin.nodes.get(a).is_some_and(|n| !n.is_dir) {
                return true;
            }
        }
        false
    };
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Order<'a> {
        Dir(&'a [u8]),
        Other(EntryId),
    }
    let mut upper: Vec<(&Vec<u8>, &Node)> = fin
        .nodes
        .iter()
        .filter(|(_, n)| n.id.layer >= keep)
        .collect();
    // The key is computed once per entry: `under_non_dir` walks the ancestors.
    upper.sort_by_cached_key(|(p, n)| {
        if n.is_dir && !under_non_dir(p) {
            Order::Dir(p.as_slice())
        } else {
            Order::Other(n.id)
        }
    });
    // For each inode: the path links should name (a base path still holding it, or
    // the first upper member, which is written first).
    let mut anchor: HashMap<EntryId, Vec<u8>> = HashMap::new();
    for (p, n) in fin
        .nodes
        .iter()
        .filter(|(_, n)| n.id.layer < keep && !n.is_dir)
    {
        anchor.entry(n.inode).or_insert_with(|| p.clone());
    }
    for (path, node) in upper {
        if node.is_dir {
            out.push(Emit::Raw(node.id));
            continue;
        }
        match anchor.get(&node.inode) {
            None => {
                anchor.insert(node.inode, path.clone());
                if node.id == node.inode {
                    out.push(Emit::Raw(node.id));
                } else {
                    out.push(Emit::Promote {
                        alias: node.id,
                        carrier: node.inode,
                    });
                }
            }
            Some(target) => match &rec(node.id).kind {
                Kind::Hardlink(t) if t == target => out.push(Emit::Raw(node.id)),
                _ => out.push(Emit::Relink {
                    link: node.id,
                    target: target.clone(),
                }),
            },
        }
    }
    out
}

/// Whiteouts and opaque markers for base paths the merged result no longer has. A
/// directory with no surviving base descendants gets one opaque marker when that
/// replaces two or more whiteouts; nothing is emitted for paths the base never had.
fn hiding_markers(base: &Tree, fin: &Tree, keep: usize) -> Vec<Emit> {
    if keep == 0 {
        return Vec::new();
    }
    let gone: Vec<&Vec<u8>> = base
        .nodes
        .keys()
        .filter(|p| !p.is_empty() && !fin.nodes.contains_key(*p))
        .filter(|p| {
            // Hidden already when an ancestor is gone too, or replaced by a
            // non-directory; ancestors that exist only implicitly do not count.
            let mut a: &[u8] = p;
            while !a.is_empty() {
                a = parent(a);
                let gone = base.nodes.contains_key(a) && !fin.nodes.contains_key(a);
                if gone || fin.nodes.get(a).is_some_and(|n| !n.is_dir) {
                    return false;
                }
            }
            true
        })
        .collect();
    // Directories under which some base entry survives as it was.
    let mut has_survivor: BTreeSet<&[u8]> = BTreeSet::new();
    for (p, n) in &fin.nodes {
        if n.id.layer < keep && base.nodes.get(p) == Some(n) {
            let mut a: &[u8] = p;
            while !a.is_empty() {
                a = parent(a);
                if !has_survivor.insert(a) {
                    break;
                }
            }
        }
    }
    let qualifies = |d: &[u8]| {
        base.nodes.get(d).is_some_and(|n| n.is_dir)
            && fin.nodes.get(d).is_some_and(|n| n.is_dir)
            && !has_survivor.contains(d)
    };
    // For each gone path, the highest qualifying ancestor directory.
    let mut by_dir: BTreeMap<&[u8], Vec<&Vec<u8>>> = BTreeMap::new();
    let mut plain = Vec::new();
    for g in gone {
        let mut best: Option<&[u8]> = None;
        let mut a: &[u8] = g;
        loop {
            a = parent(a);
            if qualifies(a) {
                best = Some(a);
            }
            if a.is_empty() {
                break;
            }
        }
        match best {
            Some(d) => by_dir.entry(d).or_default().push(g),
            None => plain.push(g.clone()),
        }
    }
    let mut out = Vec::new();
    for (d, gs) in by_dir {
        if gs.len() >= 2 {
            out.push(Emit::Opaque(d.to_vec()));
        } else {
            plain.extend(gs.into_iter().cloned());
        }
    }
    plain.sort();
    out.extend(plain.into_iter().map(Emit::Whiteout));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::index::classify;

    /// A layer from lines like `f a`, `d a`, `l a b` (hard link a -> b), `s a b`
    /// (symlink a -> b), `w a`, `o a`.
    fn layer(spec: &str) -> Vec<EntryRec> {
        spec.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let mut it = s.split(' ');
                let (k, p) = (it.next().unwrap(), it.next().unwrap().as_bytes().to_vec());
                let kind = match k {
                    "f" => Kind::File,
                    "d" => Kind::Dir,
                    "l" => Kind::Hardlink(it.next().unwrap().as_bytes().to_vec()),
                    "s" => Kind::Symlink(it.next().unwrap().as_bytes().to_vec()),
                    "w" => {
                        let dir = parent(&p);
                        let name = &p[if dir.is_empty() { 0 } else { dir.len() + 1 }..];
                        let marker = if dir.is_empty() {
                            [&b".wh."[..], name].concat()
                        } else {
                            [dir, b"/.wh.", name].concat()
                        };
                        classify(&marker, tar::EntryType::Regular, None)
                    }
                    "o" => classify(
                        &[&p[..], b"/.wh..wh..opq"].concat(),
                        tar::EntryType::Regular,
                        None,
                    ),
                    _ => unreachable!(),
                };
                EntryRec {
                    path: p,
                    kind,
                    span: (0, 0),
                    data_offset: 0,
                    size: 1,
                    digest: None,
                    mode: 0o644,
                    owner: (0, 0),
                    moved: false,
                }
            })
            .collect()
    }

    fn merged(layers: &[&str]) -> Vec<String> {
        let mut ls: Vec<_> = layers.iter().map(|l| layer(l)).collect();
        let mut t = Tree::default();
        for (i, l) in ls.iter_mut().enumerate() {
            t.apply(i, l, "t", &mut Vec::new()).unwrap();
        }
        t.nodes
            .iter()
            .map(|(k, n)| {
                format!(
                    "{}@{}.{}{}",
                    String::from_utf8_lossy(k),
                    n.id.layer,
                    n.id.entry,
                    if n.inode != n.id {
                        format!("~{}.{}", n.inode.layer, n.inode.entry)
                    } else {
                        String::new()
                    }
                )
            })
            .collect()
    }

    #[test]
    fn merge_table() {
        for (layers, want) in [
            // opaque marker after its siblings still hides only the lower layer
            (vec!["d a, f a/x", "f a/y, o a"], vec!["a@0.0", "a/y@1.0"]),
            // whiteout and same-named entry in one layer, both orders
            (vec!["f a", "w a, f a"], vec!["a@1.1"]),
            (vec!["f a", "f a, w a"], vec!["a@1.0"]),
            // file replaces directory with its subtree; directory replaces file
            (vec!["d a, f a/x", "f a"], vec!["a@1.0"]),
            (vec!["f a", "d a, f a/x"], vec!["a@1.0", "a/x@1.1"]),
            // directory over directory merges
            (vec!["d a, f a/x", "d a"], vec!["a@1.0", "a/x@0.1"]),
            // a path below a file replaces the file with a directory (umoci's
            // non-dir-parent cases), in one layer or across layers
            (vec!["f n, f n/a/b"], vec!["n/a/b@0.1"]),
            (vec!["f n", "f n/a/b"], vec!["n/a/b@1.0"]),
            (vec!["f n", "d n/a"], vec!["n/a@1.0"]),
            // last entry in a layer wins
            (vec!["f a, f a"], vec!["a@0.1"]),
            // hard link keeps the old inode when its target is replaced
            (vec!["f t, l h t", "f t"], vec!["h@0.1~0.0", "t@1.0"]),
            (vec!["f t, l h t", "w t"], vec!["h@0.1~0.0"]),
            // a link made before a whiteout of its lower target in the same layer
            (vec!["f t", "l h t, w t"], vec!["h@1.0~0.0"]),
            // parents resolve through symlinks, confined to the root
            (
                vec!["d d, s a d", "f a/g"],
                vec!["a@0.1", "d@0.0", "d/g@1.0"],
            ),
            (
                vec!["d d, s a /d", "f a/g"],
                vec!["a@0.1", "d@0.0", "d/g@1.0"],
            ),
            (
                vec!["d d, s a ../../d", "f a/g"],
                vec!["a@0.1", "d@0.0", "d/g@1.0"],
            ),
            (
                vec!["d x, s b x, s a b/", "f a/g"],
                vec!["a@0.2", "b@0.1", "x@0.0", "x/g@1.0"],
            ),
            (
                vec!["d d", "s a d, f a/g"],
                vec!["a@1.0", "d@0.0", "d/g@1.1"],
            ),
            // whiteouts and hard-link targets too; the last component is not followed
            (vec!["d d, f d/s, s a d", "w a/s"], vec!["a@0.2", "d@0.0"]),
            (
                vec!["d d, f d/t, s a d", "l h a/t"],
                vec!["a@0.2", "d@0.0", "d/t@0.1", "h@1.0~0.1"],
            ),
            (vec!["d d, s a d", "f a"], vec!["a@1.0", "d@0.0"]),
            (vec!["d d, s a d", "w a"], vec!["d@0.0"]),
            // a symlink replaced by a directory no longer redirects
            (
                vec!["d d, s a d", "d a, f a/g"],
                vec!["a@1.0", "a/g@1.1", "d@0.0"],
            ),
        ] {
            assert_eq!(merged(&layers), want, "{layers:?}");
        }
    }

    #[test]
    fn symlink_loops_and_opaque_markers_through_symlinks_are_refused() {
        for (layers, needle) in [
            (vec!["s a b, s b a", "f a/g"], "symlinks resolving"),
            (vec!["s a a", "f a/g"], "symlinks resolving"),
            (vec!["d d, f d/x, s a d", "o a"], "opaque marker"),
            // A link whose target is 200 components, reached through another that adds
            // 100: 301 components once resolved.
            (
                vec![
                    &format!("s a {}", vec!["x"; 200].join("/")),
                    &format!("s b a/{}", vec!["y"; 100].join("/")),
                    "f b/f",
                ],
                "resolved through symlinks",
            ),
        ] {
            let mut ls: Vec<_> = layers.iter().map(|l| layer(l)).collect();
            let mut t = Tree::default();
            let mut err = None;
            for (i, l) in ls.iter_mut().enumerate() {
                if let Err(e) = t.apply(i, l, "t", &mut Vec::new()) {
                    err = Some(e.to_string());
                }
            }
            let err = err.unwrap_or_default();
            assert!(err.contains(needle), "{layers:?}: {err}");
        }
    }

    #[test]
    fn moved_entries_are_marked_and_rewritten() {
        let mut ls = [layer("d d, s a d"), layer("f a/g, f d/h")];
        let mut t = Tree::default();
        for (i, l) in ls.iter_mut().enumerate() {
            t.apply(i, l, "t", &mut Vec::new()).unwrap();
        }
        assert!(ls[1][0].moved && ls[1][0].path == b"d/g");
        assert!(!ls[1][1].moved);
    }

    fn planned(layers: &[&str], keep: usize) -> Vec<Emit> {
        let mut ls: Vec<_> = layers.iter().map(|l| layer(l)).collect();
        let mut t = Tree::default();
        let mut base = Tree::default();
        for (i, l) in ls.iter_mut().enumerate() {
            if i == keep {
                base = t.clone();
            }
            t.apply(i, l, "t", &mut Vec::new()).unwrap();
        }
        let refs: Vec<&[EntryRec]> = ls.iter().map(Vec::as_slice).collect();
        plan(&base, &t, keep, &refs)
    }

    fn id(layer: usize, entry: usize) -> EntryId {
        EntryId { layer, entry }
    }

    #[test]
    fn plan_promotes_alias_when_carrier_is_gone() {
        let p = planned(&["f t, l h t, l g t", "w t"], 0);
        assert_eq!(
            p,
            vec![
                Emit::Promote {
                    alias: id(0, 1),
                    carrier: id(0, 0)
                },
                Emit::Relink {
                    link: id(0, 2),
                    target: b"h".to_vec()
                }
            ]
        );
    }

    #[test]
    fn plan_above_base_uses_opaque_only_where_it_saves_whiteouts() {
        // Deleted and recreated: one opaque marker replaces three whiteouts.
        let p = planned(&["d d, f d/a, f d/b, f d/c", "w d, d d, f d/new"], 1);
        assert_eq!(
            p,
            vec![
                Emit::Opaque(b"d".to_vec()),
                Emit::Raw(id(1, 1)),
                Emit::Raw(id(1, 2))
            ]
        );
        // One file deleted beside a survivor: a whiteout, no opaque marker.
        let p = planned(&["d d, f d/a, f d/b", "w d/a"], 1);
        assert_eq!(p, vec![Emit::Whiteout(b"d/a".to_vec())]);
        // Nothing hidden when the path never reached the base.
        let p = planned(&["d d", "f d/x", "w d/x"], 1);
        assert_eq!(p, Vec::<Emit>::new());
    }
}
