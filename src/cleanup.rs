//! Leaves nothing behind when the process is interrupted. Output is staged under
//! temporary names and moved into place only when complete; on an error the staging
//! `TempDir` and temporary files remove themselves, but a signal ends the process
//! without running destructors. So every staged path is also listed in [`STAGED`]; the
//! binary's signal thread calls [`List::abandon`], which removes them and keeps the list
//! locked until the process is gone. Moving a result into place runs under the same lock
//! ([`Staged::commit`]), so an interruption falls before it (nothing written) or after it
//! (the whole result), never halfway.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// A list of staged paths; the process has one, [`STAGED`].
pub struct List(Mutex<Vec<PathBuf>>);

/// Every path staged by this process.
pub static STAGED: List = List(Mutex::new(Vec::new()));

impl List {
    fn lock(&'static self) -> MutexGuard<'static, Vec<PathBuf>> {
        // A panic elsewhere must not stop the cleanup: the list stays usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a temporary file or folder with `create` and lists it for removal if the
    /// process is interrupted; no interruption can fall between the two.
    pub fn create<T: AsRef<Path>>(
        &'static self,
        create: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<(T, Staged)> {
        let mut list = self.lock();
        let made = create()?;
        let path = made.as_ref().to_path_buf();
        list.push(path.clone());
        let staged = Staged {
            list: self,
            path: Some(path),
        };
        Ok((made, staged))
    }

    /// Removes every staged path and keeps the list locked; the caller then ends the
    /// process.
    pub fn abandon(&'static self) -> Abandoned {
        let list = self.lock();
        let removed = list.iter().filter(|p| remove(p).is_ok()).count();
        Abandoned {
            _list: list,
            removed,
        }
    }

    /// Waits while an [`List::abandon`] is in progress (forever, as the process is
    /// ending), so an error caused by the removal is not reported in place of the
    /// interruption.
    pub fn settle(&'static self) {
        drop(self.lock());
    }
}

fn forget(list: &mut Vec<PathBuf>, path: &Path) {
    if let Some(i) = list.iter().position(|p| p == path) {
        list.swap_remove(i);
    }
}

/// A staged file or folder, removed by [`List::abandon`] until it is dropped or
/// committed.
pub struct Staged {
    list: &'static List,
    path: Option<PathBuf>,
}

impl Staged {
    /// Runs `f`, which moves the staged result into place, where no interruption can
    /// split it; the path is no longer removed afterwards.
    pub fn commit<R>(mut self, f: impl FnOnce() -> R) -> R {
        let mut list = self.list.lock();
        let r = f();
        if let Some(p) = self.path.take() {
            forget(&mut list, &p);
        }
        r
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            forget(&mut self.list.lock(), &p);
        }
    }
}

/// Holds a list locked: nothing is committed while it lives.
pub struct Abandoned {
    _list: MutexGuard<'static, Vec<PathBuf>>,
    /// How many staged paths were removed.
    pub removed: usize,
}

fn remove(p: &Path) -> io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return std::fs::remove_file(p);
    }
    // Worker threads may still be creating files in the folder: try again.
    let mut last = Ok(());
    for _ in 0..20 {
        match std::fs::remove_dir_all(p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => last = Err(e),
            _ => return Ok(()),
        }
        std::thread::yield_now();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abandon_removes_staged_paths_but_not_committed_or_dropped_ones() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("staged-folder");
        std::fs::create_dir_all(folder.join("blobs/sha256")).unwrap();
        std::fs::write(folder.join("blobs/sha256/x"), b"x").unwrap();
        let file = dir.path().join("staged-file");
        std::fs::write(&file, b"y").unwrap();
        let done = dir.path().join("done");
        std::fs::write(&done, b"z").unwrap();
        let dropped = dir.path().join("dropped");
        std::fs::write(&dropped, b"w").unwrap();

        // Not the process's list: other tests stage outputs of their own.
        static LIST: List = List(Mutex::new(Vec::new()));
        let stage = |p: &Path| LIST.create(|| Ok(p.to_path_buf())).unwrap().1;
        let _a = stage(&folder);
        let _b = stage(&file);
        let moved = dir.path().join("result");
        stage(&done).commit(|| std::fs::rename(&done, &moved).unwrap());
        std::fs::write(&done, b"a new file at the committed name").unwrap();
        drop(stage(&dropped));

        let held = LIST.abandon();
        assert_eq!(held.removed, 2);
        assert!(!folder.exists() && !file.exists());
        assert!(moved.exists() && done.exists() && dropped.exists());
    }
}
