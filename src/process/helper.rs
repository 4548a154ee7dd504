//! The helper itself: `hotrun __supervise`, a tiny single-threaded process between
//! hotrun and one command (see the [folder's docs](super) for what it guarantees).

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, killpg, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::procfs::{children_of, RECHECK};
use super::status::{Status, MODE};
use crate::core::event::ExitStatus;

/// How long leftovers get after hotrun itself went away.
const ORPHAN_GRACE: Duration = Duration::from_millis(500);

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

/// What hotrun passes the helper on its command line.
struct Args {
    /// hotrun's pid: the helper's parent, as long as hotrun lives.
    parent: i32,
    status_fd: RawFd,
    stop_signal: Signal,
    stop_timeout: Duration,
    listen_fds: Vec<RawFd>,
    command: Vec<CString>,
}

impl Args {
    fn parse(args: &[OsString]) -> Result<Args> {
        let arg = |i: usize| -> Result<String> {
            Ok(args
                .get(i)
                .context("missing argument")?
                .to_string_lossy()
                .into_owned())
        };
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
        Ok(Args {
            parent: arg(0)?.parse()?,
            status_fd: arg(1)?.parse()?,
            stop_signal: Signal::try_from(arg(2)?.parse::<i32>()?)?,
            stop_timeout: Duration::from_millis(arg(3)?.parse()?),
            listen_fds,
            command: args[6..]
                .iter()
                .map(|a| CString::new(a.as_bytes()))
                .collect::<Result<_, _>>()?,
        })
    }
}

fn run_helper(args: &[OsString]) -> Result<i32> {
    let args = Args::parse(args)?;
    // SAFETY: the fd number was handed to us by hotrun and is ours alone from now on.
    let status = unsafe { OwnedFd::from_raw_fd(args.status_fd) };
    nix::fcntl::fcntl(
        status.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    let mut status = std::fs::File::from(status);
    let Some(signals) = arm(args.parent)? else {
        // hotrun died before the death signal was armed.
        return Ok(0);
    };
    let app = start(&args, &status)?;
    let _ = writeln!(status, "{}", Status::Started(app.as_raw() as u32).line());
    let ended = supervise(app, &signals, args.stop_signal, args.stop_timeout)?;
    let exit = match ended {
        Some(WaitStatus::Exited(_, code)) => ExitStatus {
            code: Some(code),
            signal: None,
        },
        Some(WaitStatus::Signaled(_, sig, _)) => ExitStatus {
            code: None,
            signal: Some(sig as i32),
        },
        _ => ExitStatus {
            code: Some(-1),
            signal: None,
        },
    };
    let _ = writeln!(status, "{}", Status::Exited(exit).line());
    Ok(0)
}

/// Take signals only synchronously (with sigtimedwait), learn of hotrun's death
/// (SIGUSR2) and adopt orphans. `None` when hotrun is already gone.
fn arm(parent: i32) -> Result<Option<SigSet>> {
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
    Ok((nix::unistd::getppid().as_raw() == parent).then_some(signals))
}

/// Fork and exec the command in a process group of its own; returns its pid.
fn start(args: &Args, status: &std::fs::File) -> Result<Pid> {
    let helper = std::process::id() as libc::pid_t;
    // SAFETY: the helper is single-threaded, so fork is sound; the child only calls
    // async-signal-safe functions (and set_var/execvp, fine in a single-threaded child).
    let app = match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => exec(args, status.as_raw_fd(), helper),
        nix::unistd::ForkResult::Parent { child } => child,
    };
    let _ = nix::unistd::setpgid(app, app);
    Ok(app)
}

/// In the forked child: become the command, or say why not on the status pipe.
fn exec(args: &Args, status_fd: RawFd, helper: libc::pid_t) -> ! {
    let (listen_fds, command) = (&args.listen_fds, &args.command);
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
    // SAFETY: fcntl, dup2 and close on fds this process owns; single-threaded child.
    let status_fd = unsafe {
        if listen_fds.is_empty() {
            status_fd
        } else {
            hand_over_sockets(listen_fds, status_fd)
        }
    };
    // Rust ignores SIGPIPE at start and exec keeps ignored signals: give the
    // command the default, as a shell would.
    // SAFETY: signal(2) is async-signal-safe.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let err = nix::unistd::execvp(&command[0], command).unwrap_err();
    let message = Status::Failed(format!(
        "cannot run `{}`: {}",
        command[0].to_string_lossy(),
        err.desc()
    ))
    .line()
        + "\n";
    // SAFETY: write(2) of a buffer we own to the status pipe.
    unsafe { libc::write(status_fd, message.as_ptr().cast(), message.len()) };
    // SAFETY: leave the forked child without running the parent's destructors.
    unsafe { libc::_exit(127) }
}

/// Reap until the command and everything it left are gone; stop it on a stop request
/// (the stop signal, then SIGKILL after the stop timeout) or when hotrun dies. Returns
/// how the command ended.
fn supervise(
    app: Pid,
    signals: &SigSet,
    stop_signal: Signal,
    stop_timeout: Duration,
) -> Result<Option<WaitStatus>> {
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
        match wait_signal(signals, timeout) {
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
    Ok(app_status)
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
            let message =
                Status::Failed(format!("cannot pass the listening sockets: {what}")).line() + "\n";
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
