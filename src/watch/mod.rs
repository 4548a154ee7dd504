//! The file watcher: one watch per non-ignored directory (never a recursive watch over
//! everything), so a huge ignored tree such as `target/` or `node_modules/` costs no
//! watches at all. Directories created later are watched and scanned once. Ignore rules
//! are the `ignore` crate's gitignore matchers (nested `.gitignore` and `.ignore` files,
//! negations; inside a git repository or not), hotrun's defaults, and `watch.ignore`.
//!
//! A write that leaves a file's content unchanged is not a change (content hashes), so a
//! build that rewrites a generated file identically cannot loop. A lost-events overflow
//! becomes [`Event::Rescan`]. When the OS watch or instance limit is hit, one message
//! names the sysctl that raises it and watching goes on by polling.
//!
//! It runs on its own thread and only ever sends events; it decides nothing about
//! what a change means (that is `classify`).

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use globset::{GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::settings::DEFAULT_POLL;
use crate::core::event::Event;

/// Directory names never watched, wherever they are.
const IGNORED_DIRS: &[&str] = &[".git", ".hg", ".svn", ".jj", "node_modules"];

/// File names never counted: editor droppings and files apps write while running.
const IGNORED_FILES: &[&str] = &[
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

/// How long a file may stay open for writing before it is looked at anyway.
const WRITE_GRACE: Duration = Duration::from_millis(50);
/// A file created while watching is looked at this long after its writer closed it at
/// the earliest: an atomic save renames its temp file away within this time, and then
/// the temp file was never a change. Saves that write a file in place or rename one
/// over it are looked at at once.
const NEW_FILE_HOLD: Duration = Duration::from_millis(50);
/// At most this many created files wait to be looked at; past it, new ones are looked
/// at without the hold.
const BORN_MAX: usize = 50_000;
/// A created file still open for writing is held this long at most (a big file, a slow
/// disk: its temp file is renamed only once it is written).
const OPEN_FILE_HOLD: Duration = Duration::from_secs(1);
/// A known file found gone is looked at again this much later: a backup-rename save
/// writes the new file in that time. Real deletes are rare enough to wait for.
const VANISHED_HOLD: Duration = Duration::from_millis(250);
/// How long a created file found gone stays known as one that never was.
const STILLBORN_FOR: Duration = Duration::from_secs(2);

/// Files larger than this are compared by size and mtime rather than by content.
const HASH_LIMIT: u64 = 32 * 1024 * 1024;
/// At most this many files present at start have their content hashed in the
/// background, after `Watching` (a bounded memory cost), so a build that rewrites one
/// identically is no change even the first time.
const PRIME_MAX: usize = 20_000;
/// Files modified this close to the start are not primed: the file system's clock is
/// coarse, and a change made just after the start must never be taken for the old
/// content.
const PRIME_MARGIN: Duration = Duration::from_millis(100);

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

/// Start watching on a new thread. Sends `Event::Watching` once every directory is
/// watched, then `Event::Changed` for every batch of real changes.
pub fn start(spec: WatchSpec, tx: UnboundedSender<Event>) -> Result<WatchHandle> {
    let (raw_tx, raw_rx) = mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handle = WatchHandle {
        raw_tx: raw_tx.clone(),
        stop: stop.clone(),
    };
    let filter = Filter::new(&spec)?;
    std::thread::Builder::new()
        .name("hotrun-watch".into())
        .spawn(move || {
            let mut w = WatchThread {
                backend: None,
                raw_tx,
                poll: spec.poll,
                watched: HashSet::new(),
                roots: spec.roots.clone(),
                file_roots: HashSet::new(),
                file_root_parents: HashSet::new(),
                warned_unwatchable: false,
                filter,
                hashes: HashMap::new(),
                pending: HashMap::new(),
                born: HashMap::new(),
                stillborn: HashMap::new(),
                vanishing: HashMap::new(),
                unprimed: Vec::new(),
                prime_budget: PRIME_MAX,
                tx,
                limit: test_watch_limit(),
            };
            if let Err(e) = w.run(&spec.roots, raw_rx, &stop) {
                let _ =
                    w.tx.send(Event::Fatal(format!("cannot watch files: {e:#}")));
            }
        })
        .context("cannot start the watcher thread")?;
    Ok(handle)
}

/// Stops a watcher (when the config changed what is watched).
pub struct WatchHandle {
    raw_tx: mpsc::Sender<RawEvent>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl WatchHandle {
    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the thread so it sees the flag.
        let _ = self.raw_tx.send(Err(notify::Error::generic("stop")));
    }
}

/// A hidden knob for tests: behave as if the OS allowed only this many watches
/// (`HOTRUN_TEST_MAX_WATCHES`), or no inotify instance at all (`HOTRUN_TEST_NO_INOTIFY`).
fn test_watch_limit() -> Option<usize> {
    std::env::var("HOTRUN_TEST_MAX_WATCHES").ok()?.parse().ok()
}

type RawEvent = notify::Result<notify::Event>;

/// The wake-up `WatchHandle::stop` sends.
fn is_stop(event: &RawEvent) -> bool {
    matches!(event, Err(e) if matches!(&e.kind, notify::ErrorKind::Generic(s) if s == "stop"))
}

/// An event that may change a file (not a read, not an error).
fn is_change(event: &RawEvent) -> bool {
    event.as_ref().is_ok_and(|e| {
        !matches!(
            e.kind,
            EventKind::Access(
                AccessKind::Open(_)
                    | AccessKind::Close(AccessMode::Read)
                    | AccessKind::Read
                    | AccessKind::Any
            )
        )
    })
}

/// A file created while watching, not looked at yet.
#[derive(Debug, Clone, Copy)]
struct Born {
    at: Instant,
    /// When its writer closed it: a temp file is renamed right after.
    closed: Option<Instant>,
}

impl Born {
    fn new(at: Instant) -> Born {
        Born { at, closed: None }
    }

    /// Until when it is held: `NEW_FILE_HOLD` after its close, or `OPEN_FILE_HOLD`
    /// after its creation while it stays open.
    fn until(&self) -> Instant {
        match self.closed {
            Some(closed) => closed + NEW_FILE_HOLD,
            None => self.at + OPEN_FILE_HOLD,
        }
    }
}

/// What one batch of notifications amounts to.
#[derive(Debug, Default)]
struct Changes {
    files: Vec<PathBuf>,
    removed_dirs: Vec<PathBuf>,
}

enum Backend {
    Native(notify::RecommendedWatcher),
    Poll(Poller),
}

impl Backend {
    fn watch(&mut self, dir: &Path) -> notify::Result<()> {
        match self {
            Backend::Native(w) => w.watch(dir, RecursiveMode::NonRecursive),
            Backend::Poll(p) => p.watch(dir),
        }
    }
}

/// What polling compares: nanosecond mtime, size and inode of each entry.
/// (notify's PollWatcher compares mtimes in whole seconds, so two saves within a
/// second look like one; this one does not read file contents either.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime_ns: i128,
    size: u64,
    inode: u64,
    dir: bool,
}

type Snapshot = HashMap<PathBuf, Stamp>;

/// Polls the watched directories (each one level deep, like the native watches) on
/// its own thread and reports differences as notify events.
struct Poller {
    dirs: std::sync::Arc<std::sync::Mutex<HashMap<PathBuf, Snapshot>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Poller {
    fn new(tx: mpsc::Sender<RawEvent>, interval: Duration) -> std::io::Result<Poller> {
        let dirs: std::sync::Arc<std::sync::Mutex<HashMap<PathBuf, Snapshot>>> = Default::default();
        let stop: std::sync::Arc<std::sync::atomic::AtomicBool> = Default::default();
        let (d, st) = (dirs.clone(), stop.clone());
        std::thread::Builder::new()
            .name("hotrun-poll".into())
            .spawn(move || {
                while !st.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    let mut events = Vec::new();
                    {
                        let mut dirs = d.lock().unwrap_or_else(|e| e.into_inner());
                        dirs.retain(|dir, old| match scan(dir) {
                            Ok(new) => {
                                diff(old, &new, &mut events);
                                *old = new;
                                true
                            }
                            // Still there but unreadable for now: keep what we knew.
                            Err(_) if dir.is_dir() => true,
                            Err(_) => {
                                events.push(
                                    notify::Event::new(EventKind::Remove(
                                        notify::event::RemoveKind::Folder,
                                    ))
                                    .add_path(dir.clone()),
                                );
                                false
                            }
                        });
                    }
                    for event in events {
                        if tx.send(Ok(event)).is_err() {
                            return;
                        }
                    }
                }
            })?;
        Ok(Poller { dirs, stop })
    }

    fn watch(&mut self, dir: &Path) -> notify::Result<()> {
        let snapshot = scan(dir).map_err(notify::Error::io)?;
        self.dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir.to_path_buf(), snapshot);
        Ok(())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn scan(dir: &Path) -> std::io::Result<Snapshot> {
    use std::os::unix::fs::MetadataExt;
    let mut snapshot = Snapshot::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        if let Ok(m) = entry.metadata() {
            snapshot.insert(
                entry.path(),
                Stamp {
                    mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
                    size: m.len(),
                    inode: m.ino(),
                    dir: m.is_dir(),
                },
            );
        }
    }
    Ok(snapshot)
}

fn diff(old: &Snapshot, new: &Snapshot, events: &mut Vec<notify::Event>) {
    for (path, stamp) in new {
        let kind = match old.get(path) {
            None if stamp.dir => EventKind::Create(CreateKind::Folder),
            None => EventKind::Create(CreateKind::Any),
            Some(before) if before != stamp => {
                EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any))
            }
            Some(_) => continue,
        };
        events.push(notify::Event::new(kind).add_path(path.clone()));
    }
    for path in old.keys().filter(|p| !new.contains_key(*p)) {
        events.push(
            notify::Event::new(EventKind::Remove(notify::event::RemoveKind::Any))
                .add_path(path.clone()),
        );
    }
}

struct WatchThread {
    backend: Option<Backend>,
    raw_tx: mpsc::Sender<RawEvent>,
    poll: Option<Duration>,
    watched: HashSet<PathBuf>,
    roots: Vec<PathBuf>,
    /// Files given as roots, and directories watched only for their sake.
    file_roots: HashSet<PathBuf>,
    file_root_parents: HashSet<PathBuf>,
    warned_unwatchable: bool,
    filter: Filter,
    hashes: HashMap<PathBuf, u64>,
    /// Files to look at later, and when: being written (looked at when closed, or
    /// after `WRITE_GRACE`), just created (see `born`), or gone (see `vanishing`).
    pending: HashMap<PathBuf, Instant>,
    /// Files created while watching that hotrun has not looked at yet. One that is
    /// renamed away or deleted before it is looked at never was a change: the temp
    /// file of an atomic save (`name.tmp`, `.tmpXXXXXX`, sed's `sedXXXXXX`).
    born: HashMap<PathBuf, Born>,
    /// Created files found gone before hotrun looked, and when: a rename's events can
    /// come in two batches, and the second names the temp file again.
    stillborn: HashMap<PathBuf, Instant>,
    /// Files found gone, and since when: looked at again after `VANISHED_HOLD`, since
    /// a save that renames the old file away (vim, JetBrains, Emacs) writes the new one
    /// a moment later — one change, not a delete and a create.
    vanishing: HashMap<PathBuf, Instant>,
    /// Directories watched at start whose files' content is still to be hashed
    /// (between events, after `Watching`), and how many more files may be.
    unprimed: Vec<PathBuf>,
    prime_budget: usize,
    tx: UnboundedSender<Event>,
    limit: Option<usize>,
}

impl WatchThread {
    fn run(
        &mut self,
        roots: &[PathBuf],
        raw_rx: mpsc::Receiver<RawEvent>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<()> {
        self.backend = Some(match self.poll {
            Some(interval) => self.poll_backend(interval)?,
            None => match self.native_backend() {
                Ok(b) => b,
                Err(e) => {
                    let _ = self.tx.send(Event::Notice(limit_message(&e, 0)));
                    self.poll = Some(DEFAULT_POLL);
                    self.poll_backend(DEFAULT_POLL)?
                }
            },
        });
        let started = std::time::SystemTime::now();
        for root in roots {
            self.filter.load_parents(root);
            if root.is_dir() {
                self.watch_tree(root, None)?;
                self.file_root_parents.remove(root);
            } else if let Some(parent) = root.parent() {
                // A single file: its directory is watched (an editor's save that renames
                // a new file over it would end a watch on the file itself), and only
                // the file's own events pass.
                if !self.watched.contains(parent) {
                    self.file_root_parents.insert(parent.to_path_buf());
                }
                self.file_roots.insert(root.clone());
                self.add_watch(parent.to_path_buf())?;
            }
        }
        let _ = self.tx.send(Event::Watching {
            roots: roots.to_vec(),
            directories: self.watched.len(),
            polling: self.poll,
        });
        self.unprimed = self.watched.iter().cloned().collect();
        let primed_before = started.checked_sub(PRIME_MARGIN).unwrap_or(started);

        loop {
            let first = if !self.unprimed.is_empty() {
                // Between events, hash what was there at start, a few files at a time.
                match raw_rx.try_recv() {
                    Ok(event) => Some(event),
                    Err(mpsc::TryRecvError::Empty) => {
                        let now = Instant::now();
                        if self.pending.values().any(|due| *due <= now) {
                            None
                        } else {
                            self.prime(primed_before);
                            continue;
                        }
                    }
                    Err(mpsc::TryRecvError::Disconnected) => break,
                }
            } else {
                // Sleep until an event comes, or until a file still being written is due.
                let due = self.pending.values().min().copied();
                match due {
                    Some(at) => {
                        match raw_rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                            Ok(event) => Some(event),
                            Err(mpsc::RecvTimeoutError::Timeout) => None,
                            Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    None => match raw_rx.recv() {
                        Ok(event) => Some(event),
                        Err(_) => break,
                    },
                }
            };
            let mut batch: Vec<RawEvent> = first.into_iter().collect();
            // After the stop request, events are a newer watcher's to report.
            while !batch.last().is_some_and(is_stop) {
                match raw_rx.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let stopping =
                stop.load(std::sync::atomic::Ordering::SeqCst) || batch.last().is_some_and(is_stop);
            // Sorting a big batch takes a while: the burst is not over meanwhile. Said
            // before, and closed by a `Changed` after (even an empty one).
            let sorting = batch.iter().any(is_change);
            if sorting {
                let _ = self.tx.send(Event::Changing);
            }
            let changes = self.process(batch)?;
            if (sorting || !(changes.files.is_empty() && changes.removed_dirs.is_empty()))
                && self
                    .tx
                    .send(Event::Changed {
                        files: changes.files,
                        removed_dirs: changes.removed_dirs,
                    })
                    .is_err()
            {
                break;
            }
            // Stopped: the batch that came with the stop request was still passed on.
            if stopping {
                break;
            }
            // The project's directory removed or renamed: nothing hotrun knows of it
            // holds any more (its paths, its build, the app's directory).
            if sorting {
                let dir_gone = |r: &&PathBuf| !self.file_roots.contains(*r) && !r.is_dir();
                if let Some(gone) = self.roots.iter().find(dir_gone) {
                    let _ = self.tx.send(Event::Fatal(format!(
                        "the project directory {} was removed or renamed: hotrun stops (start it again where the project is now)",
                        gone.display()
                    )));
                    break;
                }
            }
        }
        Ok(())
    }

    fn native_backend(&self) -> notify::Result<Backend> {
        if std::env::var_os("HOTRUN_TEST_NO_INOTIFY").is_some() {
            return Err(notify::Error::io(std::io::Error::from_raw_os_error(
                libc::EMFILE,
            )));
        }
        let w = notify::RecommendedWatcher::new(self.raw_tx.clone(), notify::Config::default())?;
        Ok(Backend::Native(w))
    }

    fn poll_backend(&self, interval: Duration) -> Result<Backend> {
        let poller = Poller::new(self.raw_tx.clone(), interval).context("cannot start polling")?;
        Ok(Backend::Poll(poller))
    }

    /// Watch `dir` and every non-ignored directory below it. Each directory is watched
    /// before it is read, so a file created meanwhile is either seen by the read or
    /// reported by the watch — never missed.
    fn watch_tree(&mut self, dir: &Path, mut files: Option<&mut Vec<PathBuf>>) -> Result<()> {
        let mut walk = Walk::new(dir);
        while let Some(d) = walk.next() {
            self.filter.load_dir(&d);
            self.file_root_parents.remove(&d);
            self.add_watch(d.clone())?;
            walk.expand(&self.filter, &d, files.as_deref_mut());
        }
        Ok(())
    }

    /// Watch one directory; on the OS limit, switch everything to polling.
    fn add_watch(&mut self, dir: PathBuf) -> Result<()> {
        if self.watched.contains(&dir) {
            return Ok(());
        }
        let simulated_full = matches!(self.backend, Some(Backend::Native(_)))
            && self.limit.is_some_and(|l| self.watched.len() >= l);
        let result = if simulated_full {
            Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch))
        } else {
            self.backend.as_mut().expect("backend is set").watch(&dir)
        };
        match result {
            Ok(()) => {
                self.watched.insert(dir);
                Ok(())
            }
            Err(e) if is_limit(&e) && matches!(self.backend, Some(Backend::Native(_))) => {
                let _ = self
                    .tx
                    .send(Event::Notice(limit_message(&e, self.watched.len() + 1)));
                let interval = DEFAULT_POLL;
                self.poll = Some(interval);
                let mut backend = self.poll_backend(interval)?;
                for d in &self.watched {
                    backend
                        .watch(d)
                        .with_context(|| format!("cannot poll {}", d.display()))?;
                }
                backend
                    .watch(&dir)
                    .with_context(|| format!("cannot poll {}", dir.display()))?;
                self.backend = Some(backend);
                self.watched.insert(dir);
                Ok(())
            }
            // A directory we may not read (a database's data dir, say): left alone.
            Err(e) if unwatchable(&e) && !self.roots.contains(&dir) => {
                if !self.warned_unwatchable {
                    self.warned_unwatchable = true;
                    let _ = self.tx.send(Event::Notice(format!(
                        "cannot watch {} ({e}); it and any other unreadable directory are skipped",
                        dir.display()
                    )));
                }
                Ok(())
            }
            // Gone before we could watch it: nothing to watch.
            Err(e) if matches!(&e.kind, notify::ErrorKind::PathNotFound) => Ok(()),
            Err(notify::Error {
                kind: notify::ErrorKind::Io(io),
                ..
            }) if io.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot watch {}", dir.display())),
        }
    }

    /// Turn raw notifications into the paths whose content really changed, and the
    /// watched directories that went away.
    ///
    /// A file being written is looked at once its writer closes it (inotify's
    /// close-write), not at every write: reading it halfway (just truncated, say) would
    /// see content that never was a save, and an identical rewrite would look like a
    /// change. Renames, deletes and new directories count at once.
    fn process(&mut self, batch: Vec<RawEvent>) -> Result<Changes> {
        let mut paths: Vec<PathBuf> = Vec::new();
        let mut seen = HashSet::new();
        let mut changes = Changes::default();
        let mut forgotten: HashSet<PathBuf> = HashSet::new();
        // Paths removed or renamed away in this batch: one that exists again when
        // looked at is a new file, maybe still being written (vim's and Emacs' saves
        // rename the old file away, then write the new one).
        let mut replaced: HashSet<PathBuf> = HashSet::new();
        // Directories renamed into an ignored place (Cargo creates `target/` under a
        // temporary name, then renames it): no source directory went away.
        let mut moved_away: HashSet<PathBuf> = HashSet::new();
        for event in batch.iter().flatten() {
            if let (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), [from, to]) =
                (&event.kind, event.paths.as_slice())
            {
                if self.watched.contains(from) && self.filter.ignored(to, true) {
                    self.watched.retain(|d| !d.starts_with(from));
                    moved_away.insert(from.clone());
                    moved_away.insert(to.clone());
                }
            }
        }
        let native = matches!(self.backend, Some(Backend::Native(_)));
        let now = Instant::now();
        let mut rescan = false;
        for event in batch {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    if is_limit(&e) {
                        let _ = self
                            .tx
                            .send(Event::Notice(limit_message(&e, self.watched.len())));
                    }
                    continue;
                }
            };
            if event.need_rescan() {
                rescan = true;
                continue;
            }
            let written = match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => false,
                EventKind::Access(_) => continue,
                // The poll backend reports an edit as a new modification time.
                EventKind::Modify(ModifyKind::Metadata(_)) if native => continue,
                EventKind::Create(CreateKind::File) | EventKind::Modify(ModifyKind::Data(_)) => {
                    native
                }
                _ => false,
            };
            let created = matches!(event.kind, EventKind::Create(CreateKind::File));
            let gone = matches!(
                event.kind,
                EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
            );
            if let (
                EventKind::Remove(_)
                | EventKind::Modify(ModifyKind::Name(RenameMode::From | RenameMode::Both)),
                Some(source),
            ) = (&event.kind, event.paths.first())
            {
                replaced.insert(source.clone());
            }
            // A file renamed into place, or closed by its writer, is whole.
            match (&event.kind, event.paths.as_slice()) {
                (EventKind::Modify(ModifyKind::Name(RenameMode::To)), [to])
                | (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), [_, to]) => {
                    replaced.remove(to);
                    self.born.remove(to);
                }
                (EventKind::Access(AccessKind::Close(AccessMode::Write)), [to]) => {
                    replaced.remove(to);
                    if let Some(born) = self.born.get_mut(to) {
                        born.closed = Some(now);
                    }
                }
                _ => {}
            }
            for path in event.paths {
                if moved_away.contains(&path) {
                    continue;
                }
                if path
                    .parent()
                    .is_some_and(|p| self.file_root_parents.contains(p))
                    && !self.file_roots.contains(&path)
                {
                    continue;
                }
                // A watched directory that goes away is forgotten at once, so one
                // recreated under the same name in this batch is watched anew.
                if gone && self.watched.contains(&path) && !self.file_root_parents.contains(&path) {
                    self.forget_dir(&path, &mut changes);
                    forgotten.insert(path.clone());
                }
                if created && !self.hashes.contains_key(&path) && self.born.len() < BORN_MAX {
                    self.stillborn.remove(&path);
                    self.born.insert(path.clone(), Born::new(now));
                }
                if written {
                    self.pending.entry(path).or_insert(now + WRITE_GRACE);
                } else {
                    self.pending.remove(&path);
                    if seen.insert(path.clone()) {
                        paths.push(path);
                    }
                }
            }
        }
        if rescan {
            // Events were lost: directories may have appeared unseen. Watch what is
            // there now, then rebuild.
            // Watches of directories replaced meanwhile are stale: watch all anew.
            self.watched.clear();
            for root in self.roots.clone() {
                if root.is_dir() {
                    self.watch_tree(&root, None)?;
                }
            }
            for file in self.file_roots.clone() {
                if let Some(parent) = file.parent() {
                    self.add_watch(parent.to_path_buf())?;
                }
            }
            let _ = self.tx.send(Event::Rescan);
            // The rebuild it asks for covers every file held back: look at them now,
            // with no more holding, or they would make a second build once released.
            paths.extend(
                self.pending
                    .keys()
                    .filter(|p| seen.insert((*p).clone()))
                    .cloned(),
            );
            self.pending.clear();
            self.born.clear();
        }
        let hold = !rescan;
        // Files written but not closed for a while are looked at anyway.
        let overdue: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, due)| **due <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for path in overdue {
            self.pending.remove(&path);
            if seen.insert(path.clone()) {
                paths.push(path);
            }
        }
        self.stillborn
            .retain(|_, at| now.saturating_duration_since(*at) < STILLBORN_FOR);
        for path in paths {
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {
                    if self.watched.contains(&path) || self.filter.ignored(&path, true) {
                        continue;
                    }
                    // A new directory: watch it and everything below, and count the
                    // files already in it (written before the watch existed).
                    let mut files = Vec::new();
                    self.watch_tree(&path, Some(&mut files))?;
                    for file in files {
                        if self.content_changed(&file) {
                            changes.files.push(file);
                        }
                    }
                }
                Ok(_) => {
                    if !self.file_roots.contains(&path) && self.filter.ignored(&path, false) {
                        self.born.remove(&path);
                        continue;
                    }
                    self.vanishing.remove(&path);
                    self.stillborn.remove(&path);
                    if hold
                        && replaced.contains(&path)
                        && !self.born.contains_key(&path)
                        && self.born.len() < BORN_MAX
                    {
                        self.born.insert(path.clone(), Born::new(now));
                    }
                    // Just created: an atomic save may rename it away in a moment, once
                    // it is written.
                    if let Some(until) = self.born.get(&path).map(Born::until) {
                        if now < until {
                            let due = self.pending.entry(path).or_insert(until);
                            *due = (*due).max(until);
                            continue;
                        }
                        self.born.remove(&path);
                    }
                    if path
                        .file_name()
                        .is_some_and(|n| n == ".gitignore" || n == ".ignore")
                    {
                        if let Some(dir) = path.parent() {
                            // New rules: directories they no longer ignore get watched.
                            self.filter.load_dir(dir);
                            let dir = dir.to_path_buf();
                            self.watch_tree(&dir, None)?;
                        }
                    }
                    if self.content_changed(&path) {
                        changes.files.push(path);
                    }
                }
                Err(_) => {
                    // Deleted or renamed away. Whether it was a file or a directory
                    // is unknown now: ignored as either means ignored.
                    if forgotten.contains(&path) {
                        continue;
                    }
                    // Created and gone before hotrun looked: no file hotrun knew of
                    // changed (the temp file of an atomic save, renamed over the
                    // original, whose own event counts).
                    if self.born.remove(&path).is_some() {
                        if self.stillborn.len() < BORN_MAX {
                            self.stillborn.insert(path, now);
                        }
                        continue;
                    }
                    if self.stillborn.contains_key(&path) && !self.hashes.contains_key(&path) {
                        continue;
                    }
                    if self.watched.contains(&path) {
                        self.forget_dir(&path, &mut changes);
                        continue;
                    }
                    if self.filter.ignored(&path, false) || self.filter.ignored(&path, true) {
                        continue;
                    }
                    // Gone for now: a save may be about to write it anew (not when its
                    // directory went with it).
                    let since = *self.vanishing.entry(path.clone()).or_insert(now);
                    let dir_left = path.parent().is_some_and(Path::exists);
                    if hold
                        && dir_left
                        && now < since + VANISHED_HOLD
                        && self.vanishing.len() < BORN_MAX
                    {
                        self.pending.insert(path, since + VANISHED_HOLD);
                        continue;
                    }
                    self.vanishing.remove(&path);
                    self.hashes.remove(&path);
                    changes.files.push(path);
                }
            }
        }
        Ok(changes)
    }

    /// A watched directory is gone: forget it and everything below it.
    fn forget_dir(&mut self, dir: &Path, changes: &mut Changes) {
        self.watched.retain(|d| !d.starts_with(dir));
        self.hashes.retain(|f, _| !f.starts_with(dir));
        if !changes.removed_dirs.iter().any(|d| d == dir) {
            changes.removed_dirs.push(dir.to_path_buf());
        }
    }

    /// True unless the file holds exactly what it held the last time we looked.
    /// Hash the files of one directory watched at start that nothing changed since.
    fn prime(&mut self, before: std::time::SystemTime) {
        let Some(dir) = self.unprimed.pop().filter(|_| self.prime_budget > 0) else {
            self.unprimed = Vec::new();
            return;
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let old = entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.modified().is_ok_and(|t| t < before));
            if !old || self.hashes.contains_key(&path) || self.filter.ignored(&path, false) {
                continue;
            }
            if let Some(hash) = content_hash(&path) {
                self.hashes.insert(path, hash);
                self.prime_budget = self.prime_budget.saturating_sub(1);
            }
        }
    }

    fn content_changed(&mut self, path: &Path) -> bool {
        let Some(hash) = content_hash(path) else {
            return true;
        };
        self.hashes.insert(path.to_path_buf(), hash) != Some(hash)
    }
}

fn content_hash(path: &Path) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    let mut hasher = std::hash::DefaultHasher::new();
    // Only regular files are read: opening a FIFO would block until someone writes.
    if meta.len() > HASH_LIMIT || !meta.is_file() {
        use std::os::unix::fs::MetadataExt;
        hasher.write_u64(meta.len());
        hasher.write_i64(meta.mtime_nsec());
        hasher.write_i64(meta.mtime());
    } else {
        hasher.write(&std::fs::read(path).ok()?);
    }
    Some(hasher.finish())
}

/// Permission problems and the like: the directory cannot be watched, but that is
/// no reason to stop.
fn unwatchable(e: &notify::Error) -> bool {
    match &e.kind {
        notify::ErrorKind::Io(io) => matches!(
            io.raw_os_error(),
            Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
        ),
        _ => false,
    }
}

fn is_limit(e: &notify::Error) -> bool {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        notify::ErrorKind::Io(io) => {
            matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EMFILE))
        }
        _ => false,
    }
}

/// The one message for a full watch or instance limit: what happened, the sysctl that
/// raises it, and that hotrun goes on polling.
fn limit_message(e: &notify::Error, wanted: usize) -> String {
    let instances =
        matches!(&e.kind, notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE));
    let (key, suggested) = if instances {
        ("max_user_instances", 1024)
    } else {
        ("max_user_watches", 524288)
    };
    let current = std::fs::read_to_string(format!("/proc/sys/fs/inotify/{key}"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let what = if instances {
        "the OS limit on inotify instances is reached".to_string()
    } else {
        format!("the OS limit on inotify watches is reached ({wanted} directories to watch)")
    };
    format!(
        "{what}: fs.inotify.{key} = {current}. Polling every {} instead. Raise it with: sudo sysctl fs.inotify.{key}={suggested}",
        crate::text::format_duration(DEFAULT_POLL)
    )
}

/// Which paths are never watched nor counted.
struct Filter {
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
    fn new(spec: &WatchSpec) -> Result<Filter> {
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
    fn load_parents(&mut self, root: &Path) {
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

    fn load_dir(&mut self, dir: &Path) {
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

    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
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
    fn walk(&mut self, dir: &Path, dirs: &mut Vec<PathBuf>, mut files: Option<&mut Vec<PathBuf>>) {
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
struct Walk {
    stack: Vec<PathBuf>,
}

impl Walk {
    fn new(root: &Path) -> Walk {
        Walk {
            stack: vec![root.to_path_buf()],
        }
    }

    fn next(&mut self) -> Option<PathBuf> {
        self.stack.pop()
    }

    /// Read `dir`: queue its non-ignored subdirectories, collect its files.
    fn expand(&mut self, filter: &Filter, dir: &Path, mut files: Option<&mut Vec<PathBuf>>) {
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
