//! Which paths are never watched nor counted: hotrun's defaults (VCS folders,
//! `node_modules`, editor droppings), the `ignore` crate's gitignore matchers (nested
//! `.gitignore` and `.ignore` files, negations; in a git repository or not), the real
//! target dir and `watch.ignore` — except what the user named in `watch.assets`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use globset::{GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use super::spec::WatchSpec;

/// Directory names never watched, wherever they are.
pub const IGNORED_DIRS: &[&str] = &[".git", ".hg", ".svn", ".jj", "node_modules"];

/// File names never counted: editor droppings and files apps write while running.
pub const IGNORED_FILES: &[&str] = &[
    "*.swp",
    "*.swx",
    "*.swo",
    "*~",
    "4913",
    ".#*",
    "#*#",
    "*___jb_tmp___",
    "*___jb_old___",
    ".DS_Store",
    "*.db-journal",
    "*.db-wal",
    "*.db-shm",
    "*.log",
];

/// Which paths are never watched nor counted.
pub struct Filter {
    root: PathBuf,
    ignore_dirs: Vec<PathBuf>,
    globs: Vec<GlobSet>,
    names: GlobSet,
    /// Gitignore matchers by the directory they sit in, most important first
    /// (`.ignore`, `.gitignore`, `.git/info/exclude`).
    matchers: HashMap<PathBuf, Vec<Gitignore>>,
    global: Option<Gitignore>,
    keep: Option<GlobSet>,
    keep_dirs: Vec<PathBuf>,
}

impl Filter {
    pub fn new(spec: &WatchSpec) -> Result<Filter> {
        let mut names = GlobSetBuilder::new();
        for p in IGNORED_FILES {
            names.add(globset::Glob::new(p)?);
        }
        let (global, _) = Gitignore::global();
        Ok(Filter {
            root: spec.root.clone(),
            ignore_dirs: spec.ignore_dirs.clone(),
            globs: spec.ignore_globs.clone(),
            names: names.build()?,
            matchers: HashMap::new(),
            global: if global.is_empty() {
                None
            } else {
                Some(global)
            },
            keep: spec.keep.clone(),
            keep_dirs: spec.keep_dirs.clone(),
        })
    }

    /// Read the ignore files of `root`'s ancestors, up to the git root (or just the
    /// project root when there is no git repository).
    pub fn load_parents(&mut self, root: &Path) {
        let top = root
            .ancestors()
            .find(|d| d.join(".git").exists())
            .unwrap_or(&self.root)
            .to_path_buf();
        for dir in root.ancestors().skip(1) {
            if !dir.starts_with(&top) {
                break;
            }
            self.load_dir(dir);
        }
    }

    pub fn load_dir(&mut self, dir: &Path) {
        let mut found = Vec::new();
        for name in [".ignore", ".gitignore", ".git/info/exclude"] {
            let file = dir.join(name);
            if file.is_file() {
                let mut b = GitignoreBuilder::new(dir);
                b.add(&file);
                if let Ok(g) = b.build() {
                    found.push(g);
                }
            }
        }
        if found.is_empty() {
            self.matchers.remove(dir);
        } else {
            self.matchers.insert(dir.to_path_buf(), found);
        }
    }

    pub fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if is_dir {
            // Cargo marks its target directories (also while it creates them under a
            // temporary name) with CACHEDIR.TAG.
            if IGNORED_DIRS.contains(&name) || path.join("CACHEDIR.TAG").exists() {
                return true;
            }
        } else if self.names.is_match(name) {
            return true;
        }
        if path
            .components()
            .any(|c| IGNORED_DIRS.iter().any(|d| c.as_os_str() == *d))
        {
            return true;
        }
        if self.ignore_dirs.iter().any(|d| path.starts_with(d)) {
            return true;
        }
        if let Ok(rel) = path.strip_prefix(&self.root) {
            if self.globs.iter().any(|g| g.is_match(rel)) {
                return true;
            }
            // Named by the user: watched whatever `.gitignore` says.
            let kept = if is_dir {
                self.keep_dirs
                    .iter()
                    .any(|k| k.starts_with(path) || path.starts_with(k))
            } else {
                self.keep.as_ref().is_some_and(|k| k.is_match(rel))
            };
            if kept {
                return false;
            }
        }
        for dir in path.ancestors().skip(1) {
            if let Some(matchers) = self.matchers.get(dir) {
                for m in matchers {
                    match m.matched(path, is_dir) {
                        Match::Ignore(_) => return true,
                        Match::Whitelist(_) => return false,
                        Match::None => {}
                    }
                }
            }
        }
        self.global
            .as_ref()
            .is_some_and(|g| g.matched(path, is_dir).is_ignore())
    }

    /// Every non-ignored directory below `dir` (and `dir`), and optionally its files.
    #[cfg(test)]
    pub fn walk(
        &mut self,
        dir: &Path,
        dirs: &mut Vec<PathBuf>,
        mut files: Option<&mut Vec<PathBuf>>,
    ) {
        let mut walk = Walk::new(dir);
        while let Some(d) = walk.next() {
            self.load_dir(&d);
            walk.expand(self, &d, files.as_deref_mut());
            dirs.push(d);
        }
    }
}

/// A walk over non-ignored directories, one directory at a time, so the caller can
/// act (load its ignore files, watch it) before it is read.
pub struct Walk {
    stack: Vec<PathBuf>,
}

impl Walk {
    pub fn new(root: &Path) -> Walk {
        Walk {
            stack: vec![root.to_path_buf()],
        }
    }

    pub fn next(&mut self) -> Option<PathBuf> {
        self.stack.pop()
    }

    /// Read `dir`: queue its non-ignored subdirectories, collect its files.
    pub fn expand(&mut self, filter: &Filter, dir: &Path, mut files: Option<&mut Vec<PathBuf>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(ft) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if ft.is_dir() {
                if !filter.ignored(&path, true) {
                    self.stack.push(path);
                }
            } else if let Some(files) = files.as_deref_mut() {
                if !filter.ignored(&path, false) {
                    files.push(path);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn spec(root: &Path) -> WatchSpec {
        WatchSpec {
            roots: vec![root.to_path_buf()],
            root: root.to_path_buf(),
            ignore_dirs: vec![root.join("target")],
            ignore_globs: Vec::new(),
            keep: None,
            keep_dirs: Vec::new(),
            poll: None,
        }
    }

    #[test]
    fn walk_prunes_ignored_trees_and_honours_gitignore_outside_git() {
        let tmp = std::env::temp_dir().join(format!("hotrun-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for d in [
            "src/a",
            "target/debug",
            "node_modules/x",
            "gen/keep",
            "logs",
            ".git",
        ] {
            std::fs::create_dir_all(tmp.join(d)).unwrap();
        }
        std::fs::write(tmp.join(".gitignore"), "/gen/\n!/gen/keep/\nlogs\n*.tmp\n").unwrap();
        std::fs::write(tmp.join("src/main.rs"), "").unwrap();
        std::fs::write(tmp.join("src/x.tmp"), "").unwrap();
        std::fs::write(tmp.join("src/.main.rs.swp"), "").unwrap();
        let mut f = Filter::new(&spec(&tmp)).unwrap();
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        f.walk(&tmp, &mut dirs, Some(&mut files));
        let rel: HashSet<_> = dirs
            .iter()
            .map(|d| d.strip_prefix(&tmp).unwrap().to_path_buf())
            .collect();
        assert!(rel.contains(Path::new("src/a")));
        assert!(!rel.contains(Path::new("target")));
        assert!(!rel.contains(Path::new("node_modules")));
        assert!(!rel.contains(Path::new("logs")));
        assert!(!rel.contains(Path::new(".git")));
        assert!(!rel.contains(Path::new("gen")));
        assert!(files.contains(&tmp.join("src/main.rs")));
        assert!(!files.contains(&tmp.join("src/x.tmp")));
        assert!(!files.contains(&tmp.join("src/.main.rs.swp")));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
