//! What a watcher is asked to watch and leave alone.

use std::path::PathBuf;
use std::time::Duration;

use globset::GlobSet;

/// What to watch and what to leave alone.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub roots: Vec<PathBuf>,
    /// The project root: user globs are relative to it.
    pub root: PathBuf,
    /// Absolute directories never watched (the real Cargo target dir).
    pub ignore_dirs: Vec<PathBuf>,
    /// `watch.ignore` and `build.outputs`, relative to `root`.
    pub ignore_globs: Vec<GlobSet>,
    /// Files the user named (their own `watch.assets`), relative to `root`: watched
    /// even where `.gitignore` ignores them (generated stylesheets)…
    pub keep: Option<GlobSet>,
    /// …and the directories they are in.
    pub keep_dirs: Vec<PathBuf>,
    pub poll: Option<Duration>,
}
