//! Where raw notifications come from: inotify (through notify), one watch per
//! directory, or a poller of hotrun's own that compares nanosecond mtimes, sizes and
//! inodes when inotify is unavailable or full.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use notify::event::{CreateKind, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};

pub type RawEvent = notify::Result<notify::Event>;

/// The wake-up `WatchHandle::stop` sends.
pub fn is_stop(event: &RawEvent) -> bool {
    matches!(event, Err(e) if matches!(&e.kind, notify::ErrorKind::Generic(s) if s == "stop"))
}

pub enum Backend {
    Native(notify::RecommendedWatcher),
    Poll(Poller),
}

impl Backend {
    pub fn watch(&mut self, dir: &Path) -> notify::Result<()> {
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
pub struct Stamp {
    mtime_ns: i128,
    size: u64,
    inode: u64,
    dir: bool,
}

pub type Snapshot = HashMap<PathBuf, Stamp>;

/// Polls the watched directories (each one level deep, like the native watches) on
/// its own thread and reports differences as notify events.
pub struct Poller {
    dirs: std::sync::Arc<std::sync::Mutex<HashMap<PathBuf, Snapshot>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Poller {
    pub fn new(tx: mpsc::Sender<RawEvent>, interval: Duration) -> std::io::Result<Poller> {
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

    pub fn watch(&mut self, dir: &Path) -> notify::Result<()> {
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

pub fn scan(dir: &Path) -> std::io::Result<Snapshot> {
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

pub fn diff(old: &Snapshot, new: &Snapshot, events: &mut Vec<notify::Event>) {
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
