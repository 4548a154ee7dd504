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

mod backend;
mod filter;
mod limits;
mod spec;
mod thread;

use std::sync::mpsc;

use anyhow::{Context, Result};
use tokio::sync::mpsc::UnboundedSender;

use crate::core::event::Event;
use backend::RawEvent;
pub use spec::WatchSpec;
use thread::WatchThread;

/// Start watching on a new thread. Sends `Event::Watching` once every directory is
/// watched, then `Event::Changed` for every batch of real changes.
pub fn start(spec: WatchSpec, tx: UnboundedSender<Event>) -> Result<WatchHandle> {
    let (raw_tx, raw_rx) = mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handle = WatchHandle {
        raw_tx: raw_tx.clone(),
        stop: stop.clone(),
    };
    let filter = filter::Filter::new(&spec)?;
    std::thread::Builder::new()
        .name("hotrun-watch".into())
        .spawn(move || {
            let mut w = WatchThread::new(&spec, filter, raw_tx, tx);
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
