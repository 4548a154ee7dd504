//! The watcher's own thread: raw notifications in, `Changing`/`Changed`/`Rescan` out.
//! A file being written is looked at once its writer closes it; a save that renames
//! files (atomic saves, backup renames) is one change of the saved file; content that
//! did not change is no change (content hashes).

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use notify::Watcher;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::settings::DEFAULT_POLL;
use crate::core::event::Event;

use super::backend::{is_stop, Backend, Poller, RawEvent};
use super::filter::{Filter, Walk};
use super::limits::{is_limit, limit_message, test_watch_limit, unwatchable};
use super::spec::WatchSpec;

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

/// One batch being sorted: the paths it names, and what it amounts to so far.
struct Sorting {
    now: Instant,
    /// Paths to look at, each once, in the order they came.
    paths: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    changes: Changes,
    /// Watched directories that went away in this batch.
    forgotten: HashSet<PathBuf>,
    /// Paths removed or renamed away in this batch: one that exists again when looked
    /// at is a new file, maybe still being written (vim's and Emacs' saves rename the
    /// old file away, then write the new one).
    replaced: HashSet<PathBuf>,
    /// Directories renamed into an ignored place, and their new names.
    moved_away: HashSet<PathBuf>,
    /// Files may be held back (not after a rescan: its rebuild covers them all).
    hold: bool,
}

impl Sorting {
    fn new(now: Instant) -> Sorting {
        Sorting {
            now,
            paths: Vec::new(),
            seen: HashSet::new(),
            changes: Changes::default(),
            forgotten: HashSet::new(),
            replaced: HashSet::new(),
            moved_away: HashSet::new(),
            hold: true,
        }
    }

    fn look_at(&mut self, path: PathBuf) {
        if self.seen.insert(path.clone()) {
            self.paths.push(path);
        }
    }
}

/// What waiting for the watcher's next event came to.
enum Next {
    Event(RawEvent),
    /// A file held back is due to be looked at.
    Due,
    /// Every sender is gone.
    Closed,
}

pub struct WatchThread {
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
    pub tx: UnboundedSender<Event>,
    limit: Option<usize>,
}

impl WatchThread {
    pub fn new(
        spec: &WatchSpec,
        filter: Filter,
        raw_tx: mpsc::Sender<RawEvent>,
        tx: UnboundedSender<Event>,
    ) -> WatchThread {
        WatchThread {
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
        }
    }

    /// Watch `roots`, then sort batches of notifications into `Changing`/`Changed`
    /// until stopped (or the project directory is gone).
    pub fn run(
        &mut self,
        roots: &[PathBuf],
        raw_rx: mpsc::Receiver<RawEvent>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<()> {
        let primed_before = self.watch_roots(roots)?;
        loop {
            let first = match self.next_event(&raw_rx, primed_before) {
                Next::Event(event) => Some(event),
                Next::Due => None,
                Next::Closed => break,
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
            // holds any more (its paths, its build, the app's directory). Looked at
            // after every batch, and after every late look at held files too: the
            // root's own removal may come after the batch that removed what was in it
            // (a stat per root).
            let dir_gone = |r: &&PathBuf| !self.file_roots.contains(*r) && !r.is_dir();
            if let Some(gone) = self.roots.iter().find(dir_gone) {
                let _ = self.tx.send(Event::Fatal(format!(
                    "the project directory {} was removed or renamed: hotrun stops (start it again where the project is now)",
                    gone.display()
                )));
                break;
            }
        }
        Ok(())
    }

    /// Start the backend (inotify, else polling), watch every root, and say so
    /// (`Watching`). Returns the time before which files count as there at start.
    fn watch_roots(&mut self, roots: &[PathBuf]) -> Result<std::time::SystemTime> {
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
        Ok(started.checked_sub(PRIME_MARGIN).unwrap_or(started))
    }

    /// Wait for the next raw event, or until a held file is due; between events,
    /// hash what was there at start.
    fn next_event(
        &mut self,
        raw_rx: &mpsc::Receiver<RawEvent>,
        primed_before: std::time::SystemTime,
    ) -> Next {
        loop {
            if !self.unprimed.is_empty() {
                // Between events, hash what was there at start, a few files at a time.
                match raw_rx.try_recv() {
                    Ok(event) => return Next::Event(event),
                    Err(mpsc::TryRecvError::Empty) => {
                        let now = Instant::now();
                        if self.pending.values().any(|due| *due <= now) {
                            return Next::Due;
                        }
                        self.prime(primed_before);
                    }
                    Err(mpsc::TryRecvError::Disconnected) => return Next::Closed,
                }
            } else {
                // Sleep until an event comes, or until a file still being written is due.
                let due = self.pending.values().min().copied();
                match due {
                    Some(at) => {
                        match raw_rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                            Ok(event) => return Next::Event(event),
                            Err(mpsc::RecvTimeoutError::Timeout) => return Next::Due,
                            Err(mpsc::RecvTimeoutError::Disconnected) => return Next::Closed,
                        }
                    }
                    None => match raw_rx.recv() {
                        Ok(event) => return Next::Event(event),
                        Err(_) => return Next::Closed,
                    },
                }
            }
        }
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
        let mut s = Sorting::new(Instant::now());
        self.find_moved_away(&batch, &mut s);
        if self.sort_events(batch, &mut s) {
            self.rescan(&mut s)?;
        }
        // Files written but not closed for a while are looked at anyway.
        self.release_overdue(&mut s);
        self.stillborn
            .retain(|_, at| s.now.saturating_duration_since(*at) < STILLBORN_FOR);
        for path in std::mem::take(&mut s.paths) {
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => self.look_at_dir(path, &mut s)?,
                Ok(_) => self.look_at_file(path, &mut s)?,
                // Deleted or renamed away.
                Err(_) => self.look_at_gone(path, &mut s),
            }
        }
        Ok(s.changes)
    }

    /// Directories renamed into an ignored place (Cargo creates `target/` under a
    /// temporary name, then renames it): no source directory went away.
    fn find_moved_away(&mut self, batch: &[RawEvent], s: &mut Sorting) {
        for event in batch.iter().flatten() {
            if let (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), [from, to]) =
                (&event.kind, event.paths.as_slice())
            {
                if self.watched.contains(from) && self.filter.ignored(to, true) {
                    self.watched.retain(|d| !d.starts_with(from));
                    s.moved_away.insert(from.clone());
                    s.moved_away.insert(to.clone());
                }
            }
        }
    }

    /// Sort the batch's events into paths to look at (now or later). Returns whether
    /// events were lost (a rescan is due).
    fn sort_events(&mut self, batch: Vec<RawEvent>, s: &mut Sorting) -> bool {
        let native = matches!(self.backend, Some(Backend::Native(_)));
        let mut rescan = false;
        for event in batch {
            match event {
                Ok(event) if event.need_rescan() => rescan = true,
                Ok(event) => self.sort_event(event, native, s),
                Err(e) if is_limit(&e) => {
                    let _ = self
                        .tx
                        .send(Event::Notice(limit_message(&e, self.watched.len())));
                }
                Err(_) => {}
            }
        }
        rescan
    }

    /// One event: its paths to look at now, or once their writer is done.
    fn sort_event(&mut self, event: notify::Event, native: bool, s: &mut Sorting) {
        let written = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => false,
            EventKind::Access(_) => return,
            // The poll backend reports an edit as a new modification time.
            EventKind::Modify(ModifyKind::Metadata(_)) if native => return,
            EventKind::Create(CreateKind::File) | EventKind::Modify(ModifyKind::Data(_)) => native,
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
            s.replaced.insert(source.clone());
        }
        // A file renamed into place, or closed by its writer, is whole.
        match (&event.kind, event.paths.as_slice()) {
            (EventKind::Modify(ModifyKind::Name(RenameMode::To)), [to])
            | (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), [_, to]) => {
                s.replaced.remove(to);
                self.born.remove(to);
            }
            (EventKind::Access(AccessKind::Close(AccessMode::Write)), [to]) => {
                s.replaced.remove(to);
                if let Some(born) = self.born.get_mut(to) {
                    born.closed = Some(s.now);
                }
            }
            _ => {}
        }
        for path in event.paths {
            if s.moved_away.contains(&path) {
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
                self.forget_dir(&path, &mut s.changes);
                s.forgotten.insert(path.clone());
            }
            if created && !self.hashes.contains_key(&path) && self.born.len() < BORN_MAX {
                self.stillborn.remove(&path);
                self.born.insert(path.clone(), Born::new(s.now));
            }
            if written {
                self.pending.entry(path).or_insert(s.now + WRITE_GRACE);
            } else {
                self.pending.remove(&path);
                s.look_at(path);
            }
        }
    }

    /// Events were lost: directories may have appeared unseen. Watch what is there
    /// now, then rebuild.
    fn rescan(&mut self, s: &mut Sorting) -> Result<()> {
        s.hold = false;
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
        for path in self.pending.keys() {
            s.look_at(path.clone());
        }
        self.pending.clear();
        self.born.clear();
        Ok(())
    }

    fn release_overdue(&mut self, s: &mut Sorting) {
        let overdue: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, due)| **due <= s.now)
            .map(|(p, _)| p.clone())
            .collect();
        for path in overdue {
            self.pending.remove(&path);
            s.look_at(path);
        }
    }

    /// A directory: watch it (and everything below) if it is new.
    fn look_at_dir(&mut self, path: PathBuf, s: &mut Sorting) -> Result<()> {
        if self.watched.contains(&path) || self.filter.ignored(&path, true) {
            return Ok(());
        }
        // A new directory: watch it and everything below, and count the
        // files already in it (written before the watch existed).
        let mut files = Vec::new();
        self.watch_tree(&path, Some(&mut files))?;
        for file in files {
            if self.content_changed(&file) {
                s.changes.files.push(file);
            }
        }
        Ok(())
    }

    /// A file that is there: a change if its content is new, unless it is held.
    fn look_at_file(&mut self, path: PathBuf, s: &mut Sorting) -> Result<()> {
        if !self.file_roots.contains(&path) && self.filter.ignored(&path, false) {
            self.born.remove(&path);
            return Ok(());
        }
        self.vanishing.remove(&path);
        self.stillborn.remove(&path);
        if s.hold
            && s.replaced.contains(&path)
            && !self.born.contains_key(&path)
            && self.born.len() < BORN_MAX
        {
            self.born.insert(path.clone(), Born::new(s.now));
        }
        // Just created: an atomic save may rename it away in a moment, once
        // it is written.
        if let Some(until) = self.born.get(&path).map(Born::until) {
            if s.now < until {
                let due = self.pending.entry(path).or_insert(until);
                *due = (*due).max(until);
                return Ok(());
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
            s.changes.files.push(path);
        }
        Ok(())
    }

    /// A path that is gone: a change unless it never was one (a temp file) or may come
    /// back in a moment (a save that renames the old file away first).
    fn look_at_gone(&mut self, path: PathBuf, s: &mut Sorting) {
        // Deleted or renamed away. Whether it was a file or a directory
        // is unknown now: ignored as either means ignored.
        if s.forgotten.contains(&path) {
            return;
        }
        // Created and gone before hotrun looked: no file hotrun knew of
        // changed (the temp file of an atomic save, renamed over the
        // original, whose own event counts).
        if self.born.remove(&path).is_some() {
            if self.stillborn.len() < BORN_MAX {
                self.stillborn.insert(path, s.now);
            }
            return;
        }
        if self.stillborn.contains_key(&path) && !self.hashes.contains_key(&path) {
            return;
        }
        if self.watched.contains(&path) {
            self.forget_dir(&path, &mut s.changes);
            return;
        }
        if self.filter.ignored(&path, false) || self.filter.ignored(&path, true) {
            return;
        }
        // Gone for now: a save may be about to write it anew (not when its
        // directory went with it).
        let since = *self.vanishing.entry(path.clone()).or_insert(s.now);
        let dir_left = path.parent().is_some_and(Path::exists);
        if s.hold && dir_left && s.now < since + VANISHED_HOLD && self.vanishing.len() < BORN_MAX {
            self.pending.insert(path, since + VANISHED_HOLD);
            return;
        }
        self.vanishing.remove(&path);
        self.hashes.remove(&path);
        s.changes.files.push(path);
    }

    /// A watched directory is gone: forget it and everything below it.
    fn forget_dir(&mut self, dir: &Path, changes: &mut Changes) {
        self.watched.retain(|d| !d.starts_with(dir));
        self.hashes.retain(|f, _| !f.starts_with(dir));
        if !changes.removed_dirs.iter().any(|d| d == dir) {
            changes.removed_dirs.push(dir.to_path_buf());
        }
    }

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

    /// True unless the file holds exactly what it held the last time we looked.
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
