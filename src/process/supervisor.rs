//! Process lifecycles that can never leak: every build and every app generation runs
//! under a tiny single-threaded helper — hotrun re-executed as `hotrun __supervise` —
//! that
//!
//! - has its own parent-death signal (so it learns when hotrun dies, even by SIGKILL;
//!   PR_SET_PDEATHSIG fires when the *thread* that spawned it exits, which is why hotrun
//!   spawns from its single main thread),
//! - is a child subreaper (so processes the app double-forks come back to it),
//! - gives the command a parent-death signal of its own (SIGKILL), so the app dies
//!   with a helper that is killed, and marks it and all it starts with
//!   [`MARK`], so hotrun can find and kill what such a helper leaves behind,
//! - starts the command in a new process group (sockets and `LISTEN_PID` are set up in
//!   the child, after fork, where the pid is known),
//! - on a stop request sends the stop signal to that group, waits the stop timeout,
//!   then SIGKILLs the group and every remaining descendant, reaps them all, and exits.
//!
//! It reports to hotrun on a status pipe: `started PID`, then `exited code N` or
//! `exited signal N`, or `failed MESSAGE` when the command could not be executed.
//! The command's stdin, stdout and stderr are the helper's own, so output reaches
//! hotrun without a copy in between.
//!
//! This module holds both sides: [`spawn`] (in hotrun) and [`main`] (in the helper).

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, killpg, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The hidden first argument that turns hotrun into the helper.
pub const MODE: &str = "__supervise";

/// How often what is left after SIGKILL is checked (and killed) again.
const RECHECK: Duration = Duration::from_millis(50);

/// How long leftovers get after hotrun itself went away.
const ORPHAN_GRACE: Duration = Duration::from_millis(500);

/// What to run and how to stop it.
#[derive(Debug, Clone)]
pub struct Spec {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Added to hotrun's environment.
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    /// Give the command a stdin pipe (else /dev/null).
    pub stdin: bool,
    /// Listening sockets handed to the command as fds 3, 4, … with `LISTEN_FDS`,
    /// `LISTEN_PID` (its own pid) and `LISTEN_FDS_FIRST_FD` (socket activation).
    pub listen_fds: Vec<RawFd>,
}

/// Every process a helper starts, and all they start, carry this variable, with a
/// value of their own per helper: when a helper is killed from outside (`kill -9`, the
/// OOM killer), hotrun finds what it leaves behind by it (see [`kill_marked`]).
pub const MARK: &str = "HOTRUN_SUPERVISOR";

/// A running helper, as hotrun sees it.
pub struct Supervised {
    pub child: tokio::process::Child,
    pub status: Option<StatusReader>,
    /// The value of [`MARK`] its processes carry.
    pub mark: String,
}

pub type StatusReader = tokio::io::Lines<BufReader<tokio::net::unix::pipe::Receiver>>;

/// One line of the status pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Started(u32),
    Exited(crate::core::event::ExitStatus),
    Failed(String),
}

impl Status {
    pub fn parse(line: &str) -> Option<Status> {
        let (word, rest) = line.split_once(' ')?;
        match word {
            "started" => rest.parse().ok().map(Status::Started),
            "exited" => {
                let (kind, n) = rest.split_once(' ')?;
                let n: i32 = n.parse().ok()?;
                Some(Status::Exited(match kind {
                    "code" => crate::core::event::ExitStatus {
                        code: Some(n),
                        signal: None,
                    },
                    _ => crate::core::event::ExitStatus {
                        code: None,
                        signal: Some(n),
                    },
                }))
            }
            "failed" => Some(Status::Failed(rest.to_string())),
            _ => None,
        }
    }
}

/// Start the helper for `spec`. Must be called from hotrun's main thread (see the
/// module docs on PR_SET_PDEATHSIG).
pub fn spawn(spec: &Spec) -> Result<Supervised> {
    static SPAWNED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mark = format!(
        "{}-{}",
        std::process::id(),
        SPAWNED.fetch_add(1, Ordering::Relaxed)
    );
    let exe = std::env::current_exe().context("cannot find hotrun's own executable")?;
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let write_fd = write.as_raw_fd();
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg(MODE)
        .arg(std::process::id().to_string())
        .arg(write_fd.to_string())
        .arg(spec.stop_signal.to_string())
        .arg(spec.stop_timeout.as_millis().to_string())
        .arg(if spec.listen_fds.is_empty() {
            "-".to_string()
        } else {
            let fds: Vec<String> = spec.listen_fds.iter().map(|fd| fd.to_string()).collect();
            fds.join(",")
        })
        .arg("--")
        .arg(&spec.program)
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(MARK, &mark)
        .current_dir(&spec.cwd)
        .stdin(if spec.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Terminal signals (Ctrl-C) go to hotrun alone, which then stops everything in order.
        .process_group(0)
        .kill_on_drop(false);
    // SAFETY: fcntl is async-signal-safe; it only clears FD_CLOEXEC on the status pipe
    // and the listening sockets in the child so the helper inherits them. (They stay
    // close-on-exec in hotrun, so no build ever gets them.)
    let inherit: Vec<RawFd> = std::iter::once(write_fd)
        .chain(spec.listen_fds.iter().copied())
        .collect();
    unsafe {
        cmd.pre_exec(move || {
            for fd in &inherit {
                if libc::fcntl(*fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", spec.program.to_string_lossy()))?;
    drop(write);
    let flags = nix::fcntl::fcntl(read.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
    let mut flags = nix::fcntl::OFlag::from_bits_truncate(flags);
    flags.insert(nix::fcntl::OFlag::O_NONBLOCK);
    nix::fcntl::fcntl(read.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
    let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(read)?;
    Ok(Supervised {
        child,
        status: Some(BufReader::new(receiver).lines()),
        mark,
    })
}

/// How long [`kill_marked`] goes on finding and killing.
const LEFTOVER_HUNT: Duration = Duration::from_secs(2);

/// A helper died without saying its command exited: SIGKILL every process that
/// carries its `mark` (its command, and daemons that left its process group and
/// session), again until none is left. Returns how many were killed.
pub async fn kill_marked(mark: &str) -> usize {
    let needle = format!("{MARK}={mark}");
    let until = Instant::now() + LEFTOVER_HUNT;
    let mut killed = std::collections::HashSet::new();
    loop {
        let found = marked(needle.as_bytes());
        if found.is_empty() || Instant::now() >= until {
            return killed.len();
        }
        for pid in found {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            killed.insert(pid);
        }
        tokio::time::sleep(RECHECK).await;
    }
}

/// Live processes whose environment holds `needle` (`NAME=value`), from /proc.
fn marked(needle: &[u8]) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle))
        })
        // A zombie is dead already (its parent reaps it).
        .filter(|pid| state_of(*pid).is_some_and(|state| state != 'Z'))
        .collect()
}

/// What hotrun keeps of a running helper to stop it later.
#[derive(Debug, Clone)]
pub struct Handle {
    pid: u32,
    /// Set by the task that reaps the helper, right after reaping it (nothing else
    /// runs in between on hotrun's single thread), so a stop request never signals a
    /// recycled pid.
    pub reaped: Arc<AtomicBool>,
}

impl Handle {
    pub fn new(pid: u32) -> Handle {
        Handle {
            pid,
            reaped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The helper's pid: its command and all it starts are below it.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Ask the helper to stop its command (stop signal, timeout, SIGKILL).
    pub fn request_stop(&self) {
        if !self.reaped.load(Ordering::SeqCst) {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        }
    }
}

/// The helper's entry point:
/// `hotrun __supervise PARENT STATUS_FD SIGNAL TIMEOUT_MS LISTEN_FDS|- -- PROGRAM ARGS…`.
pub fn main(args: &[OsString]) -> ! {
    match run_helper(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("hotrun supervisor: {e:#}");
            std::process::exit(125)
        }
    }
}

fn run_helper(args: &[OsString]) -> Result<i32> {
    let arg = |i: usize| -> Result<String> {
        Ok(args
            .get(i)
            .context("missing argument")?
            .to_string_lossy()
            .into_owned())
    };
    let parent: i32 = arg(0)?.parse()?;
    let status_fd: i32 = arg(1)?.parse()?;
    let stop_signal = Signal::try_from(arg(2)?.parse::<i32>()?)?;
    let stop_timeout = Duration::from_millis(arg(3)?.parse()?);
    let listen_fds: Vec<RawFd> = match arg(4)?.as_str() {
        "-" => Vec::new(),
        list => list
            .split(',')
            .map(|fd| fd.parse())
            .collect::<Result<_, _>>()?,
    };
    if arg(5)? != "--" || args.len() < 7 {
        bail!(
            "usage: hotrun {MODE} PARENT STATUS_FD SIGNAL TIMEOUT_MS LISTEN_FDS -- PROGRAM [ARGS…]"
        );
    }
    let command: Vec<CString> = args[6..]
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    // SAFETY: the fd number was handed to us by hotrun and is ours alone from now on.
    let status = unsafe { OwnedFd::from_raw_fd(status_fd) };
    nix::fcntl::fcntl(
        status.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    let mut status = std::fs::File::from(status);

    // Signals are only ever received synchronously, below, with sigtimedwait.
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR2,
    ] {
        signals.add(s);
    }
    signals.thread_block()?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGUSR2)?;
    nix::sys::prctl::set_child_subreaper(true)?;
    if nix::unistd::getppid().as_raw() != parent {
        // hotrun died before the death signal was armed.
        return Ok(0);
    }

    let helper = std::process::id() as libc::pid_t;
    // SAFETY: the helper is single-threaded, so fork is sound; the child only calls
    // async-signal-safe functions (and set_var/execvp, fine in a single-threaded child).
    let app = match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            // The command dies with its helper, however the helper dies.
            // SAFETY: prctl and getppid are async-signal-safe.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != helper {
                    libc::_exit(127);
                }
            }
            let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            let _ = SigSet::empty().thread_set_mask();
            let status_fd = status.as_raw_fd();
            // SAFETY: fcntl, dup2 and close on fds this process owns; single-threaded child.
            let status_fd = unsafe {
                if listen_fds.is_empty() {
                    status_fd
                } else {
                    hand_over_sockets(&listen_fds, status_fd)
                }
            };
            // Rust ignores SIGPIPE at start and exec keeps ignored signals: give the
            // command the default, as a shell would.
            // SAFETY: signal(2) is async-signal-safe.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            let err = nix::unistd::execvp(&command[0], &command).unwrap_err();
            let message = format!(
                "failed cannot run `{}`: {}\n",
                command[0].to_string_lossy(),
                err.desc()
            );
            // SAFETY: write(2) of a buffer we own to the status pipe.
            unsafe { libc::write(status_fd, message.as_ptr().cast(), message.len()) };
            // SAFETY: leave the forked child without running the parent's destructors.
            unsafe { libc::_exit(127) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    let _ = nix::unistd::setpgid(app, app);
    let _ = writeln!(status, "started {app}");

    let mut app_status: Option<WaitStatus> = None;
    // When the stop signal turns into SIGKILL.
    let mut kill_at: Option<Instant> = None;
    // SIGKILL was sent; what remains is only waited for (and killed again now and
    // then, in case something new appeared).
    let mut killed = false;
    loop {
        // Reap everything that has ended: the app, and orphans handed to us.
        let mut any_left = true;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(ws) => {
                    if ws.pid() == Some(app) {
                        app_status = Some(ws);
                    }
                }
                Err(nix::errno::Errno::ECHILD) => {
                    any_left = false;
                    break;
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if app_status.is_some() && !any_left {
            break;
        }
        if app_status.is_some() || killed {
            // The app is gone (what it left behind is killed, not waited for), or
            // everything was SIGKILLed and is on its way out.
            kill_everything(app);
            killed = true;
        }
        let timeout = match kill_at {
            _ if killed => RECHECK,
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        match wait_signal(&signals, timeout) {
            Some(Signal::SIGCHLD) | None => {}
            Some(Signal::SIGUSR2) => {
                // hotrun is gone: stop quickly, nobody waits for a graceful exit.
                if !killed {
                    let _ = killpg(app, stop_signal);
                    let at = Instant::now() + stop_timeout.min(ORPHAN_GRACE);
                    kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
                }
            }
            Some(_) => {
                if kill_at.is_none() && !killed {
                    let _ = killpg(app, stop_signal);
                    kill_at = Some(Instant::now() + stop_timeout);
                }
            }
        }
        if kill_at.is_some_and(|at| Instant::now() >= at) {
            kill_at = None;
            kill_everything(app);
            killed = true;
        }
    }
    let line = match app_status {
        Some(WaitStatus::Exited(_, code)) => format!("exited code {code}"),
        Some(WaitStatus::Signaled(_, sig, _)) => format!("exited signal {}", sig as i32),
        _ => "exited code -1".to_string(),
    };
    let _ = writeln!(status, "{line}");
    Ok(0)
}

/// In the forked child: put the listening sockets at fds 3, 4, … and announce them the
/// systemd way (`LISTEN_PID` is this process's pid, known only now, after fork).
/// Returns where the status pipe is now (moved out of the way, still close-on-exec).
///
/// # Safety
/// Only in a single-threaded child between fork and exec.
unsafe fn hand_over_sockets(listen_fds: &[RawFd], status_fd: RawFd) -> RawFd {
    let n = listen_fds.len() as RawFd;
    // SAFETY: see the function's contract.
    unsafe {
        // Move everything above the target range first, so no dup2 clobbers a source.
        let above = 3 + n;
        let status = libc::fcntl(status_fd, libc::F_DUPFD_CLOEXEC, above);
        let fail = |what: &str| -> ! {
            let message = format!("failed cannot pass the listening sockets: {what}\n");
            libc::write(status, message.as_ptr().cast(), message.len());
            libc::_exit(127)
        };
        let mut moved = Vec::with_capacity(listen_fds.len());
        for fd in listen_fds {
            let copy = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, above);
            if copy < 0 {
                fail("out of file descriptors");
            }
            moved.push(copy);
        }
        let targets = 3..3 + n;
        for fd in listen_fds {
            if !targets.contains(fd) {
                libc::close(*fd);
            }
        }
        for (i, fd) in moved.iter().enumerate() {
            // dup2 leaves the new fd without close-on-exec: the app inherits it.
            if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                fail("dup2 failed");
            }
            libc::close(*fd);
        }
        std::env::set_var("LISTEN_FDS", listen_fds.len().to_string());
        std::env::set_var("LISTEN_PID", std::process::id().to_string());
        std::env::set_var("LISTEN_FDS_FIRST_FD", "3");
        status
    }
}

/// Wait for one of `set` for at most `timeout`.
fn wait_signal(set: &SigSet, timeout: Duration) -> Option<Signal> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: plain FFI call with valid pointers; nix has no sigtimedwait.
    let n = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
    if n < 0 {
        None
    } else {
        Signal::try_from(n).ok()
    }
}

/// SIGKILL the app's group and every process that was reparented to this helper.
fn kill_everything(group: Pid) {
    let _ = killpg(group, Signal::SIGKILL);
    let me = std::process::id() as i32;
    for pid in children_of(me) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Direct children of `parent`, from /proc.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

/// The fields of /proc/PID/stat after the command name (which may hold spaces and
/// parentheses: they start after the last ')'): state, parent pid, …
fn stat_fields(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.get(stat.rfind(')')? + 2..)?.to_string())
}

/// The parent pid of `pid`, from /proc/PID/stat.
pub fn parent_of(pid: i32) -> Option<i32> {
    stat_fields(pid)?.split(' ').nth(1)?.parse().ok()
}

/// The state letter of `pid` (`R`, `S`, `Z`…), from /proc/PID/stat.
fn state_of(pid: i32) -> Option<char> {
    stat_fields(pid)?.chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        assert_eq!(Status::parse("started 42"), Some(Status::Started(42)));
        assert_eq!(
            Status::parse("exited code 3"),
            Some(Status::Exited(crate::core::event::ExitStatus {
                code: Some(3),
                signal: None
            }))
        );
        assert_eq!(
            Status::parse("exited signal 9"),
            Some(Status::Exited(crate::core::event::ExitStatus {
                code: None,
                signal: Some(9)
            }))
        );
        assert!(matches!(
            Status::parse("failed cannot run"),
            Some(Status::Failed(_))
        ));
        assert_eq!(Status::parse("nonsense"), None);
    }

    #[test]
    fn parent_of_self_is_known() {
        assert_eq!(
            parent_of(std::process::id() as i32),
            Some(std::os::unix::process::parent_id() as i32)
        );
    }
}
