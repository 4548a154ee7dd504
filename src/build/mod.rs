//! Runs one build under the supervisor helper and turns what it prints into build
//! events: Cargo's JSON messages into diagnostics and the executable path, a build
//! command's output into one rendered diagnostic plus one per `path:line:col:` found.

pub mod cargo;
pub mod locations;
#[cfg(test)]
mod proptests;

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::settings::Settings;
use crate::core::event::{BuildOutcome, Diagnostic, Event, Executable};
use crate::process::client::{self, Handle, Spec};
use crate::process::collect::{self, Pipe, Sink};
use crate::process::lines::{say_dropped, Throttle};
use cargo::{CargoProject, MessageCollector};

/// How to build this project.
#[derive(Debug, Clone)]
pub enum Project {
    Cargo(Arc<CargoProject>),
    Command,
}

/// Start build `id`; its events arrive on `tx`. Returns the helper's handle (to
/// cancel it), or `None` when there was nothing to run.
pub fn start(
    id: u64,
    settings: &Settings,
    project: &Project,
    tx: UnboundedSender<Event>,
) -> Result<Option<Handle>> {
    let started = Instant::now();
    let env: Vec<(OsString, OsString)> = settings
        .build
        .env
        .iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let spec = match project {
        Project::Cargo(cargo) => cargo_spec(settings, cargo, env),
        Project::Command => match command_spec(settings, env) {
            Some(spec) => spec,
            None => {
                // Nothing to build: a run command alone.
                let outcome = outcome(true, started, Vec::new(), None);
                let _ = tx.send(Event::BuildFinished { id, outcome });
                return Ok(None);
            }
        },
    };
    let mut helper = client::spawn(&spec)?;
    let handle = helper.child.id().map(Handle::new);
    let reaped = handle
        .as_ref()
        .map_or_else(Default::default, |h| h.reaped.clone());
    let project = project.clone();
    tokio::spawn(async move {
        let mut sink = BuildSink {
            tx,
            id,
            project,
            collector: MessageCollector::default(),
            transcript: String::new(),
            unexplained: String::new(),
            throttle: Throttle::default(),
        };
        let exit = collect::follow(&mut helper, &mut sink).await;
        collect::reap(&mut helper, &reaped, exit).await;
        let success = exit.is_some_and(|s| s.success());
        let tx = sink.tx.clone();
        let outcome = sink.outcome(success, started);
        let _ = tx.send(Event::BuildFinished { id, outcome });
    });
    Ok(handle)
}

/// `cargo build` with JSON messages, no progress bar, colours when hotrun has them.
fn cargo_spec(
    settings: &Settings,
    cargo: &CargoProject,
    mut env: Vec<(OsString, OsString)>,
) -> Spec {
    env.push(("CARGO_TERM_PROGRESS_WHEN".into(), "never".into()));
    if settings.ui.color {
        env.push(("CARGO_TERM_COLOR".into(), "always".into()));
    }
    Spec {
        program: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        args: cargo.build_args(&settings.build.cargo),
        env,
        cwd: settings.cwd.clone(),
        stop_signal: libc::SIGTERM,
        stop_timeout: std::time::Duration::from_millis(500),
        stdin: false,
        listen_fds: Vec::new(),
    }
}

/// `build.before` then `build.cmd`, each through its own `sh -c`, stopping at the
/// first failure; `None` when there is nothing to run.
fn command_spec(settings: &Settings, env: Vec<(OsString, OsString)>) -> Option<Spec> {
    let mut steps: Vec<String> = settings.build.before.clone();
    steps.extend(settings.build.cmd.clone());
    if steps.is_empty() {
        return None;
    }
    // Each step through its own `sh -c`, stopping at the first failure.
    let script = (1..=steps.len())
        .map(|i| format!("sh -c \"${i}\""))
        .collect::<Vec<_>>()
        .join(" && ");
    let mut args: Vec<OsString> = vec!["-c".into(), script.into(), "sh".into()];
    args.extend(steps.into_iter().map(OsString::from));
    Some(Spec {
        program: "sh".into(),
        args,
        env,
        cwd: settings.root.clone(),
        stop_signal: libc::SIGTERM,
        stop_timeout: std::time::Duration::from_millis(500),
        stdin: false,
        listen_fds: Vec::new(),
    })
}

/// What a build's helper says: Cargo's JSON messages collected, a build command's
/// output kept for its diagnostics, every line passed on to be shown.
struct BuildSink {
    tx: UnboundedSender<Event>,
    id: u64,
    project: Project,
    collector: MessageCollector,
    /// All output, for a build command's diagnostics.
    transcript: String,
    /// Cargo's stderr that is not its progress (build-script panics, manifest errors).
    unexplained: String,
    throttle: Throttle,
}

impl BuildSink {
    fn send(&mut self, text: &str) {
        for line in text.split('\n') {
            if self.throttle.admit(line) {
                say_dropped(&self.tx, &mut self.throttle);
                let _ = self.tx.send(Event::BuildOutput {
                    id: self.id,
                    line: line.to_string(),
                });
            }
        }
    }
}

impl BuildSink {
    /// What the build amounts to, once its helper is reaped.
    fn outcome(self, success: bool, started: Instant) -> BuildOutcome {
        match &self.project {
            Project::Cargo(_) => self.cargo_outcome(success, started),
            Project::Command => self.command_outcome(success, started),
        }
    }

    /// Cargo's diagnostics, the executable it named, and its dep-info: the files the
    /// next build depends on.
    fn cargo_outcome(self, success: bool, started: Instant) -> BuildOutcome {
        let (collector, unexplained) = (self.collector, self.unexplained);
        let mut diagnostics = collector.diagnostics;
        let executable = collector.executable.as_deref().and_then(stamp);
        let ok = success && executable.is_some();
        if !ok && !unexplained.trim().is_empty() {
            // Build-script panics, manifest errors: shown too.
            diagnostics.push(Diagnostic {
                level: "error".into(),
                message: first_line(&unexplained),
                rendered: unexplained,
                file: None,
                line: None,
                column: None,
            });
        }
        if success && executable.is_none() {
            diagnostics.push(plain_error(
                "cargo build succeeded but named no executable for the target",
            ));
        }
        let mut outcome = outcome(ok, started, diagnostics, executable.clone());
        if let Some(exe) = &executable {
            if let Ok(inputs) = cargo::read_dep_info(&exe.path) {
                // Event paths are canonical; so must these be.
                let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = inputs
                    .into_iter()
                    .map(|p| p.canonicalize().unwrap_or(p))
                    .partition(|p| p.is_dir());
                outcome.input_files = files;
                outcome.input_dirs = dirs;
            }
        }
        outcome
    }

    /// A build command's whole output, and the `path:line:col:` locations in it.
    fn command_outcome(self, success: bool, started: Instant) -> BuildOutcome {
        let transcript = self.transcript;
        let mut diagnostics = Vec::new();
        if !success {
            let found = locations::locations(&transcript);
            // The whole output is kept; it counts as the error only when no
            // `path:line:col:` location says more precisely what went wrong.
            diagnostics.push(Diagnostic {
                level: if found.is_empty() { "error" } else { "note" }.into(),
                message: first_line(&transcript),
                rendered: transcript.clone(),
                file: None,
                line: None,
                column: None,
            });
            diagnostics.extend(found);
        }
        outcome(success, started, diagnostics, None)
    }
}

impl Sink for BuildSink {
    fn line(&mut self, pipe: Pipe, line: String) {
        match (pipe, &self.project) {
            (Pipe::Stdout, Project::Cargo(c)) => {
                if let Some(text) = self.collector.line(&line, &c.workspace_root, &c.target) {
                    self.send(&text);
                }
            }
            (Pipe::Stdout, Project::Command) => {
                self.send(&line);
                keep(&mut self.transcript, &line);
            }
            (Pipe::Stderr, _) => {
                self.send(&line);
                keep(&mut self.transcript, &line);
                if !cargo::is_cargo_status(&line) {
                    keep(&mut self.unexplained, &line);
                }
            }
        }
    }
}

fn outcome(
    ok: bool,
    started: Instant,
    diagnostics: Vec<Diagnostic>,
    executable: Option<Executable>,
) -> BuildOutcome {
    BuildOutcome {
        ok,
        cancelled: false,
        duration: started.elapsed(),
        diagnostics,
        executable,
        input_files: Vec::new(),
        input_dirs: Vec::new(),
    }
}

fn plain_error(message: &str) -> Diagnostic {
    Diagnostic {
        level: "error".into(),
        message: message.into(),
        rendered: message.into(),
        file: None,
        line: None,
        column: None,
    }
}

fn first_line(text: &str) -> String {
    let plain = crate::text::strip_ansi(text);
    plain
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("build failed")
        .trim()
        .to_string()
}

/// Path, size, mtime and inode of a built executable.
pub fn stamp(path: &Path) -> Option<Executable> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Executable {
        path: path.to_path_buf(),
        size: meta.len(),
        mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        inode: meta.ino(),
    })
}

/// A build's output kept for its diagnostics: at most this much (the first errors are
/// what matters).
const TRANSCRIPT_MAX: usize = 1024 * 1024;

/// Append `line` to `text` while it is under [`TRANSCRIPT_MAX`].
fn keep(text: &mut String, line: &str) {
    const CUT: &str = "… (more output, not kept)\n";
    if text.len() + line.len() < TRANSCRIPT_MAX {
        text.push_str(line);
        text.push('\n');
    } else if !text.ends_with(CUT) {
        text.push_str(CUT);
    }
}
