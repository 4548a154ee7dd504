//! Runs one build under the supervisor helper and turns what it prints into build
//! events: Cargo's JSON messages into diagnostics and the executable path, a build
//! command's output into one rendered diagnostic plus one per `path:line:col:` found.

pub mod cargo;
mod command;
pub mod locations;
mod outcome;
#[cfg(test)]
mod proptests;

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::settings::Settings;
use crate::core::event::{BuildOutcome, Event};
use crate::process::client::{self, Handle};
use crate::process::collect::{self, Pipe, Sink};
use crate::process::lines::{say_dropped, Throttle};
use cargo::{CargoProject, MessageCollector};
use outcome::keep;

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
        Project::Cargo(cargo) => cargo::spec(settings, cargo, env),
        Project::Command => match command::spec(settings, env) {
            Some(spec) => spec,
            None => {
                // Nothing to build: a run command alone.
                let outcome = outcome::build_outcome(true, started, Vec::new(), None);
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

/// The outcome of a build or a command that could not start: failed, saying why.
pub fn not_run(message: &str) -> BuildOutcome {
    outcome::build_outcome(
        false,
        Instant::now(),
        vec![outcome::plain_error(message)],
        None,
    )
}

/// What a command's output amounts to, as a build command's would: on failure, its
/// whole output and the `path:line:col:` locations in it. (`[[on_change]]` commands
/// are reported like builds.)
pub fn command_outcome(transcript: String, success: bool, started: Instant) -> BuildOutcome {
    command::outcome(transcript, success, started)
}

/// Keep `line` of a command's output for [`command_outcome`] (bounded).
pub fn keep_output(transcript: &mut String, line: &str) {
    keep(transcript, line)
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
            Project::Cargo(_) => cargo::outcome(self.collector, self.unexplained, success, started),
            Project::Command => command::outcome(self.transcript, success, started),
        }
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
