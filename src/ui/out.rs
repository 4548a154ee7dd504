//! hotrun's stdout, written by a thread of its own through a bounded queue, so the
//! loop never waits on a slow or stuck reader (`hotrun | less` left alone, a paused
//! terminal) and an exit is never held up by output nobody reads.
//!
//! Lines of build and app output are dropped when the queue holds [`SOFT_MAX`] bytes;
//! anything else (hotrun's own events, the panel's lines) only past [`HARD_MAX`]; a
//! panel redraw that does not fit is skipped (the next one draws it all). What was
//! dropped is counted, and the printer says so once there is room again.

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Output lines wait in the queue up to this many bytes…
pub const SOFT_MAX: usize = 1024 * 1024;
/// …and hotrun's own lines up to this many.
pub const HARD_MAX: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Lines dropped since the printer last asked.
    dropped: usize,
    /// The writer is writing a chunk it took.
    busy: bool,
    /// A write failed: the reader is gone.
    lost: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The writer waits here for chunks; `flush` waits here for an empty queue.
    changed: Condvar,
}

static OUT: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    OUT.get_or_init(|| {
        let shared = Shared {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        };
        let started = std::thread::Builder::new()
            .name("hotrun-out".into())
            .spawn(write_all);
        if started.is_err() {
            // No thread: nothing can be written. Said by the exit code (lost output).
            shared.queue.lock().unwrap_or_else(|e| e.into_inner()).lost = true;
        }
        shared
    })
}

fn lock() -> std::sync::MutexGuard<'static, Queue> {
    shared().queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// Queue `bytes` for stdout. A `droppable` line (build or app output) is dropped when
/// the queue is past [`SOFT_MAX`], anything past [`HARD_MAX`]; false when dropped.
pub fn push(bytes: Vec<u8>, droppable: bool) -> bool {
    fits(bytes.len(), droppable) && push_whole(bytes)
}

/// Whether `len` more bytes would be taken now (see [`push`]); when not, one dropped
/// line is counted. The panel asks before it touches the screen's state, then pushes
/// with [`push_whole`]: its erase-and-redraw is never cut in half.
pub fn fits(len: usize, droppable: bool) -> bool {
    let mut queue = lock();
    let max = if droppable { SOFT_MAX } else { HARD_MAX };
    let fits = queue.bytes == 0 || queue.bytes + len <= max;
    if !fits && !queue.lost {
        queue.dropped += 1;
    }
    fits
}

/// Queue `bytes` whatever the bounds (after [`fits`] said yes); false when the reader
/// is gone.
pub fn push_whole(bytes: Vec<u8>) -> bool {
    let mut queue = lock();
    if queue.lost {
        return false;
    }
    queue.bytes += bytes.len();
    queue.chunks.push_back(bytes);
    drop(queue);
    shared().changed.notify_all();
    true
}

/// How many lines were dropped since the last call, once the queue has room for the
/// notice (so it is not dropped itself).
pub fn take_dropped() -> usize {
    let mut queue = lock();
    if queue.dropped > 0 && queue.bytes < SOFT_MAX / 2 {
        std::mem::take(&mut queue.dropped)
    } else {
        0
    }
}

/// A write failed: nobody reads hotrun's output any more.
pub fn lost() -> bool {
    lock().lost
}

/// Wait until everything queued is written, for at most `within`; false when output
/// was left unwritten (the reader is stuck) — the exit goes on without it.
pub fn flush(within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let shared = shared();
    let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    while !queue.lost && (queue.busy || !queue.chunks.is_empty()) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        queue = shared
            .changed
            .wait_timeout(queue, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    !queue.lost
}

/// The writer thread: takes what is queued and writes it to fd 1 (not through
/// `std::io::stdout`, whose lock a blocked write would hold at exit).
fn write_all() {
    // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop never closes it.
    let mut stdout = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    let shared = shared();
    loop {
        let batch: Vec<Vec<u8>> = {
            let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.busy = false;
            shared.changed.notify_all();
            while queue.chunks.is_empty() {
                queue = shared
                    .changed
                    .wait(queue)
                    .unwrap_or_else(|e| e.into_inner());
            }
            queue.busy = true;
            queue.bytes = 0;
            queue.chunks.drain(..).collect()
        };
        let mut text = Vec::with_capacity(batch.iter().map(Vec::len).sum());
        for chunk in batch {
            text.extend_from_slice(&chunk);
        }
        if stdout.write_all(&text).is_err() {
            let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.lost = true;
            queue.busy = false;
            queue.chunks.clear();
            shared.changed.notify_all();
            return;
        }
    }
}
