//! hotrun's side of a helper: start it ([`spawn`]), ask it to stop ([`Handle`]), and
//! clean up after one killed from outside ([`kill_marked`]).

use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::procfs::{self, RECHECK};
use super::status::{StatusReader, MODE};

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

/// Start the helper for `spec`. Must be called from hotrun's main thread (see the
/// `process` folder's docs on PR_SET_PDEATHSIG).
pub fn spawn(spec: &Spec) -> Result<Supervised> {
    static SPAWNED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mark = format!(
        "{}-{}",
        std::process::id(),
        SPAWNED.fetch_add(1, Ordering::Relaxed)
    );
    let exe = own_executable()?;
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let write_fd = write.as_raw_fd();
    let mut cmd = tokio::process::Command::new(exe);
    // Its name in `ps`, even when started through `/proc/self/exe`.
    cmd.arg0("hotrun");
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

/// hotrun's own executable, to start the helper from. When the file was replaced or
/// removed while hotrun runs (`cargo install`, a rebuild of hotrun itself), its path
/// names nothing any more; `/proc/self/exe` still opens the running one.
fn own_executable() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe().context("cannot find hotrun's own executable")?;
    if exe.is_file() {
        Ok(exe)
    } else {
        Ok(std::path::PathBuf::from("/proc/self/exe"))
    }
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
        let found = procfs::marked(needle.as_bytes());
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
