//! The one loop that follows a helper from start to reap, for builds and apps alike:
//! its command's stdout and stderr line by line, its status pipe, a short grace for
//! output still coming once the command has exited (a grandchild holding the pipes),
//! and the cleanup after a helper killed from outside.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::client::{kill_marked, Supervised};
use super::lines::LineReader;
use super::status::{Status, StatusReader};
use crate::core::event::ExitStatus;

/// How long output may go on once the command has exited: then it counts as done
/// without waiting for end-of-file.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// Which pipe a line came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipe {
    Stdout,
    Stderr,
}

/// What a build or an app does with what its helper says.
pub trait Sink {
    /// One line of the command's output.
    fn line(&mut self, pipe: Pipe, line: String);
    /// The command runs, as `pid`.
    fn started(&mut self, _pid: u32) {}
    /// The helper could not run the command (`why` says what failed).
    fn failed(&mut self, _why: String) {}
    /// The helper died without a word (killed from outside); `leftovers` processes it
    /// left behind were killed after it.
    fn helper_killed(&mut self, _leftovers: usize) {}
}

/// What to say when the helper of `what` (pid `helper_pid`) was killed from outside and
/// `leftovers` processes it left behind were killed after it.
pub fn helper_killed_line(what: &str, stopped: &str, helper_pid: u32, leftovers: usize) -> String {
    format!(
        "hotrun: the helper of {what} (hotrun {}, pid {helper_pid}) was killed; {stopped} was stopped with it{}",
        super::status::MODE,
        match leftovers {
            0 => String::new(),
            1 => " (1 leftover process killed)".to_string(),
            n => format!(" ({n} leftover processes killed)"),
        }
    )
}

/// Read the helper's output and status until both are done (or the grace after the
/// command's exit has passed). Returns the command's exit status, `None` when the
/// helper died before saying it.
pub async fn follow(helper: &mut Supervised, sink: &mut impl Sink) -> Option<ExitStatus> {
    let mut stdout = LineReader::new(helper.child.stdout.take());
    let mut stderr = LineReader::new(helper.child.stderr.take());
    let mut status = helper.status.take();
    let mut exit = None;
    let grace = tokio::time::sleep(Duration::MAX);
    tokio::pin!(grace);
    let mut grace_set = false;
    let (mut out_open, mut err_open, mut status_open) = (true, true, status.is_some());
    // Output and status come on different pipes: the first lines wait for word that
    // the command started, so a sink hears of its start first.
    let mut early = status_open.then(Vec::new);
    while out_open || err_open || status_open {
        tokio::select! {
            line = stdout.next(), if out_open => match line {
                Some(line) => pass(&mut early, sink, Pipe::Stdout, line),
                None => out_open = false,
            },
            line = stderr.next(), if err_open => match line {
                Some(line) => pass(&mut early, sink, Pipe::Stderr, line),
                None => err_open = false,
            },
            () = &mut grace, if grace_set => break,
            line = next_status(&mut status), if status_open => match line.as_deref().map(Status::parse) {
                Some(Some(Status::Started(pid))) => {
                    sink.started(pid);
                    release(&mut early, sink);
                }
                Some(Some(Status::Failed(why))) => {
                    release(&mut early, sink);
                    sink.failed(why);
                }
                Some(Some(Status::Exited(s))) => {
                    release(&mut early, sink);
                    exit = Some(s);
                    grace.as_mut().reset(tokio::time::Instant::now() + OUTPUT_GRACE);
                    grace_set = true;
                }
                Some(None) => {}
                None => {
                    status_open = false;
                    release(&mut early, sink);
                    if exit.is_none() {
                        // Its command died with it (parent-death signal); what that
                        // started is found and killed, and output it may still hold
                        // open is not waited for.
                        let leftovers = kill_marked(&helper.mark).await;
                        sink.helper_killed(leftovers);
                    }
                    // The grace runs from the helper's end (right after `exited`).
                    grace.as_mut().reset(tokio::time::Instant::now() + OUTPUT_GRACE);
                    grace_set = true;
                }
            },
        }
    }
    release(&mut early, sink);
    exit
}

/// At most this many lines wait for word that the command started.
const EARLY_MAX: usize = 64;

/// Pass `line` to the sink, or hold it while the start is not said yet.
fn pass(early: &mut Option<Vec<(Pipe, String)>>, sink: &mut impl Sink, pipe: Pipe, line: String) {
    if let Some(held) = early.as_mut() {
        if held.len() < EARLY_MAX {
            held.push((pipe, line));
            return;
        }
        release(early, sink);
    }
    sink.line(pipe, line);
}

/// Pass on the lines held back; from now on lines go straight through.
fn release(early: &mut Option<Vec<(Pipe, String)>>, sink: &mut impl Sink) {
    for (pipe, line) in early.take().unwrap_or_default() {
        sink.line(pipe, line);
    }
}

/// Reap the helper and mark it reaped (so a stop request never signals a recycled
/// pid). Returns `exit`, else how the helper itself ended.
pub async fn reap(
    helper: &mut Supervised,
    reaped: &Arc<AtomicBool>,
    exit: Option<ExitStatus>,
) -> ExitStatus {
    let waited = helper.child.wait().await;
    reaped.store(true, Ordering::SeqCst);
    exit.unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        let waited = waited.ok();
        ExitStatus {
            code: waited.and_then(|s| s.code()),
            signal: waited.and_then(|s| s.signal()),
        }
    })
}

async fn next_status(lines: &mut Option<StatusReader>) -> Option<String> {
    lines.as_mut()?.next_line().await.ok().flatten()
}
