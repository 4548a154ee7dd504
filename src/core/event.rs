//! The vocabulary between modules: every source turns what it sees into an [`Event`],
//! and `State::update` (in `core::state`, which uses this vocabulary) answers with
//! [`Effect`]s for the loop to perform.
//!
//! Nothing here does I/O; these are plain data types.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// At most this many paths in one report (a JSON event, a line); its `count` says how
/// many there were.
pub const PATHS_MAX: usize = 1000;

/// Something that happened, from any source.
#[derive(Debug, Clone)]
pub enum Event {
    /// Files changed on disk (already filtered by ignore rules and content hashes),
    /// and watched directories that were removed or renamed away.
    Changed {
        files: Vec<PathBuf>,
        removed_dirs: Vec<PathBuf>,
    },
    /// The watcher got file events and is still looking at them (reading, hashing): a
    /// burst goes on, even when sorting a big one takes longer than the settle window.
    Changing,
    /// Every directory is watched; changes count from now on.
    Watching {
        roots: Vec<PathBuf>,
        directories: usize,
        polling: Option<Duration>,
    },
    /// The watcher lost events (queue overflow): anything may have changed.
    Rescan,
    /// A run-time problem that hotrun works around (fallback to polling, an unreadable
    /// env file…): shown once, as json `error`.
    Notice(String),
    /// A run-time problem that ends hotrun (exit code 1).
    Fatal(String),
    /// The earliest deadline the state asked for has passed.
    Tick,
    /// A second passed while the panel shows (its uptime and build timer move): a
    /// redraw, nothing else.
    Clock,
    /// A line of build output.
    BuildOutput { id: u64, line: String },
    /// The build process ended (or could not start).
    BuildFinished { id: u64, outcome: BuildOutcome },
    /// The app's process is running with this pid.
    AppStarted { gen: u64, pid: u32 },
    /// Generation `gen` answered its readiness probe.
    AppReady { gen: u64 },
    /// A line the app printed.
    AppOutput { stream: Stream, line: String },
    /// The app (and everything it started) is gone.
    /// `output`: the last lines it printed (stdout and stderr, in order, bounded),
    /// taken once its pipes reached end-of-file, so a crash says why.
    AppExited {
        gen: u64,
        status: ExitStatus,
        output: Vec<String>,
    },
    /// Generation `gen` said it is ready (`READY=1` on its `NOTIFY_SOCKET`).
    AppNotified { gen: u64 },
    /// An app hotrun gave no address to was found listening here (a URL to show).
    AppFound { url: String },
    /// A user command: a key, a json stdin word, or a signal.
    Command(Command),
    /// A key or terminal change for the panel.
    Ui(UiAction),
    /// A new config was applied; build or restart as its changes require, and start
    /// the sidecars again when `[[sidecar]]` changed.
    ConfigApplied {
        rebuild: bool,
        restart: bool,
        sidecars: bool,
    },
    /// A line printed by run `id` of an `[[on_change]]` command or a sidecar.
    ToolOutput { id: u64, line: String },
    /// Run `id` of an `[[on_change]]` command ended (or could not start).
    TaskFinished { id: u64, outcome: BuildOutcome },
    /// Run `id` of a sidecar is running with this pid.
    SidecarStarted { id: u64, pid: u32 },
    /// Run `id` of a sidecar (and all it started) is gone; its last lines say why.
    SidecarExited {
        id: u64,
        status: ExitStatus,
        output: Vec<String>,
    },
}

/// What the user can ask for, from the keyboard, json stdin or a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Rebuild,
    Restart,
    Pause,
    Resume,
    /// The panel's `p` key.
    TogglePause,
    Quit,
}

/// Keys and terminal changes that only concern what is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiAction {
    /// Clear the screen (`c`).
    Clear,
    /// Open the public URL in a browser (`o`).
    Open,
    /// The terminal was resized.
    Redraw,
}

impl Command {
    /// The one-word form read from stdin in `--ui json`.
    pub fn parse(word: &str) -> Option<Command> {
        Some(match word.trim() {
            "rebuild" => Command::Rebuild,
            "restart" => Command::Restart,
            "pause" => Command::Pause,
            "resume" => Command::Resume,
            "quit" => Command::Quit,
            _ => return None,
        })
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Build,
    AppStdout,
    AppStderr,
}

/// How a process ended: an exit code or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "code {code}"),
            (None, Some(sig)) => write!(f, "signal {}", crate::text::signal_name(sig)),
            (None, None) => write!(f, "unknown status"),
        }
    }
}

/// One compiler or build-tool message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub level: String,
    pub message: String,
    /// The text as the tool printed it (ANSI colours kept).
    pub rendered: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// Identity of a built executable: when all four match the running one, there is no swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executable {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
}

/// The result of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    pub ok: bool,
    /// Killed because a newer change superseded it.
    pub cancelled: bool,
    pub duration: Duration,
    pub diagnostics: Vec<Diagnostic>,
    /// The executable to run (Cargo builds); `None` for command builds.
    pub executable: Option<Executable>,
    /// Every file the build read (Cargo dep-info), for classifying later changes.
    pub input_files: Vec<PathBuf>,
    /// Directories the build depends on as a whole (a `rerun-if-changed` directory).
    pub input_dirs: Vec<PathBuf>,
}

impl BuildOutcome {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.level == "error" || d.level.starts_with("error:"))
            .count()
    }
    pub fn warnings(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.level == "warning")
            .count()
    }
}

/// What a changed path means: what hotrun does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Build,
    /// Restart the app without building (`.env`, `watch.restart`).
    Restart,
    /// The browser reloads, no build (`watch.assets`).
    Asset,
    /// A stylesheet: the browser swaps it in place.
    Css,
    /// hotrun's own config file.
    Config,
    Other,
}

/// A message for the open browser tabs (the reload protocol of `assets/client.js`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Browser {
    /// A build started.
    Building { files: Vec<PathBuf> },
    /// A new app is live and answers: reload.
    Compiled,
    /// A build succeeded without changing the binary: clear the overlay.
    Ok,
    /// The failing `[[on_change]]` commands succeeded and nothing else fails: clear the
    /// overlay (`ok` on the wire), whatever the build or the app is doing.
    Fixed,
    /// A build or an `[[on_change]]` command failed: show the diagnostics over the
    /// page, under `title` (`None`: "Build failed").
    Error {
        diagnostics: Vec<Diagnostic>,
        title: Option<String>,
        /// A build just ended (failed): else a command did, and what the build and the
        /// app do is as it was.
        build_ended: bool,
    },
    /// The app stopped by itself; its last output lines say why. `rolled_back`: it was
    /// a new generation that died on start, and the old one still serves (the page keeps
    /// its build).
    Exited {
        status: ExitStatus,
        output: Vec<String>,
        rolled_back: bool,
    },
    /// An asset changed: reload.
    Reload { path: PathBuf },
    /// A stylesheet changed: swap it in place.
    Css { path: PathBuf },
}

impl Browser {
    /// The message's `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Browser::Building { .. } => "building",
            Browser::Compiled => "compiled",
            Browser::Ok | Browser::Fixed => "ok",
            Browser::Error { .. } => "error",
            Browser::Exited { .. } => "exited",
            Browser::Reload { .. } => "reload",
            Browser::Css { .. } => "css",
        }
    }
}

/// Something for the user interface to show; each maps to one json event.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Watching {
        roots: Vec<PathBuf>,
        directories: usize,
        polling: Option<Duration>,
    },
    Change {
        /// At most [`PATHS_MAX`] of them…
        paths: Vec<PathBuf>,
        /// …of this many.
        count: usize,
        kind: ChangeKind,
    },
    BuildStarted {
        files: Vec<PathBuf>,
    },
    BuildFinished {
        outcome: BuildOutcome,
    },
    BuildCancelled,
    AppStarted {
        pid: u32,
    },
    AppReady {
        after: Duration,
    },
    AppExited {
        status: ExitStatus,
        /// True when hotrun stopped it (a swap or quit), false when it exited by itself.
        requested: bool,
        /// The app's last output lines, when it exited by itself.
        output: Vec<String>,
        /// A new generation that died (or never got ready) beside the one that serves:
        /// the old one goes on serving.
        rolled_back: bool,
    },
    Output {
        stream: Stream,
        line: String,
    },
    /// A line from an `[[on_change]]` command or a sidecar, tagged with its name.
    ToolOutput {
        sidecar: bool,
        name: String,
        line: String,
    },
    /// An `[[on_change]]` command started, for these changed files (none at start).
    TaskStarted {
        name: String,
        files: Vec<PathBuf>,
    },
    /// It ended: `outcome` as a build's (no executable).
    TaskFinished {
        name: String,
        outcome: BuildOutcome,
    },
    /// It was stopped for a newer change (it runs again).
    TaskCancelled {
        name: String,
    },
    SidecarStarted {
        name: String,
        pid: u32,
    },
    SidecarExited {
        name: String,
        status: ExitStatus,
        /// hotrun stopped it (quit, a config change).
        requested: bool,
        /// Its last lines, when it exited by itself.
        output: Vec<String>,
        /// When it starts again, if it does.
        restart_in: Option<Duration>,
    },
    /// A message went to the open browser tabs.
    ReloadSent {
        kind: &'static str,
        clients: usize,
    },
    /// A run-time problem worth a line (json `error`).
    Error {
        message: String,
    },
    /// Plain-mode information with no json event of its own.
    /// Where to go: (what, URL), most public first (`proxy`, `listen`, `app`, `reload`).
    Urls {
        urls: Vec<(&'static str, String)>,
    },
    Info {
        message: String,
    },
}

/// What the loop must do; produced only by `State::update`.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    StartBuild {
        id: u64,
        files: Vec<PathBuf>,
    },
    CancelBuild {
        id: u64,
    },
    /// Start generation `gen` of the app; `executable` is the Cargo binary, if any.
    SpawnApp {
        gen: u64,
        executable: Option<PathBuf>,
    },
    /// Ask generation `gen` to stop (stop signal, timeout, then SIGKILL).
    StopApp {
        gen: u64,
    },
    /// Probe generation `gen` until it answers (then `Event::AppReady`).
    Probe {
        gen: u64,
    },
    /// Send new requests to generation `gen` (it took over in a blue-green swap).
    Route {
        gen: u64,
    },
    /// Run `id` of `[[on_change]]` command `task` (by index).
    StartTask {
        id: u64,
        task: usize,
    },
    /// Stop run `id` of an `[[on_change]]` command (a newer change came).
    CancelTask {
        id: u64,
    },
    /// Start run `id` of sidecar `sidecar` (by index).
    StartSidecar {
        id: u64,
        sidecar: usize,
    },
    /// Stop run `id` of a sidecar (stop signal, timeout, then SIGKILL).
    StopSidecar {
        id: u64,
    },
    /// `.hotrun.toml` changed: read it again and apply what changed.
    ReloadConfig,
    /// Clear the screen, open the browser, redraw.
    Ui(UiAction),
    /// Tell the open browser tabs something.
    Browser(Browser),
    Report(Report),
    Exit(i32),
}
