//! Runs the asset pipeline's processes under supervisor helpers, as builds and apps
//! run: an `[[on_change]]` command's run (its output tagged with its name, what it
//! amounts to when it ends) and a sidecar's (its output, its start, its exit). When
//! they run and what follows is the state's; this only starts them and reports.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::mpsc::UnboundedSender;

use crate::build::{command_outcome, keep_output};
use crate::config::settings::{SidecarSettings, TaskSettings};
use crate::core::event::{Diagnostic, Event};
use crate::process::client::{self, Handle, Spec};
use crate::process::collect::{self, Pipe, Sink};
use crate::process::lines::{say_dropped, LastLines, Throttle};

/// A command cancelled for a newer change gets this long to go before SIGKILL.
const TASK_STOP_TIMEOUT: Duration = Duration::from_millis(500);
/// A sidecar asked to stop (hotrun quits) gets this long.
const SIDECAR_STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Start run `id` of `task` in `root`; its output and end arrive on `tx` as
/// `ToolOutput` and `TaskFinished`. Returns the helper's handle (to cancel it).
pub fn start_task(
    id: u64,
    task: &TaskSettings,
    root: &std::path::Path,
    tx: UnboundedSender<Event>,
) -> Result<Handle> {
    let started = Instant::now();
    let spec = Spec {
        program: "sh".into(),
        args: vec!["-c".into(), task.run.clone().into()],
        env: Vec::new(),
        cwd: root.to_path_buf(),
        stop_signal: libc::SIGTERM,
        stop_timeout: TASK_STOP_TIMEOUT,
        stdin: false,
        listen_fds: Vec::new(),
    };
    let mut helper = client::spawn(&spec).with_context(|| format!("cannot run {}", task.name))?;
    let handle = Handle::new(helper.child.id().context("its supervisor exited at once")?);
    let reaped = handle.reaped.clone();
    let (name, run) = (task.name.clone(), task.run.clone());
    let helper_pid = helper.child.id().unwrap_or_default();
    tokio::spawn(async move {
        let mut sink = ToolSink::new(id, tx);
        sink.helper_pid = helper_pid;
        let exit = collect::follow(&mut helper, &mut sink).await;
        let status = collect::reap(&mut helper, &reaped, exit).await;
        say_dropped(&sink.tx, &mut sink.throttle);
        let mut outcome = command_outcome(sink.transcript, status.success(), started);
        if let Some(first) = outcome.diagnostics.first_mut() {
            name_failure(first, &name, &run, status);
        }
        let _ = sink.tx.send(Event::TaskFinished { id, outcome });
    });
    Ok(handle)
}

/// Say which command failed and how, in the first diagnostic (the overlay's title
/// line and the JSON `message`).
fn name_failure(
    first: &mut Diagnostic,
    name: &str,
    run: &str,
    status: crate::core::event::ExitStatus,
) {
    let output = std::mem::take(&mut first.rendered);
    first.message = if output.trim().is_empty() {
        format!("{name} failed with {status} (no output)")
    } else {
        let why = error_line(&output).unwrap_or(first.message.as_str());
        format!("{name} failed: {why}")
    };
    first.rendered = format!("{name}: $ {run}\n{output}");
    if output.trim().is_empty() {
        first
            .rendered
            .push_str(&format!("(exited with {status}, no output)"));
    }
}

/// The line of a tool's output that says what went wrong: the first that speaks of an
/// error and says more than `Error:`, without the box drawing around it (Tailwind
/// prints its banner first, then the error in a box).
fn error_line(output: &str) -> Option<&str> {
    output
        .lines()
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || "│┃┌└├─╭╰✗✘×▶>".contains(c)))
        .find(|l| {
            let lower = l.to_ascii_lowercase();
            lower.contains("error") && lower.trim_end_matches(':').trim() != "error"
        })
}

/// Start run `id` of `sidecar`; its output, start and exit arrive on `tx`. Its stdin
/// is a pipe hotrun holds open (watchers such as `tailwindcss --watch` stop at its
/// end), and it dies with hotrun, like every helper's command.
pub fn start_sidecar(
    id: u64,
    sidecar: &SidecarSettings,
    tx: UnboundedSender<Event>,
) -> Result<Handle> {
    let spec = Spec {
        program: "sh".into(),
        args: vec!["-c".into(), sidecar.run.clone().into()],
        env: sidecar
            .env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect(),
        cwd: sidecar.cwd.clone(),
        stop_signal: libc::SIGTERM,
        stop_timeout: SIDECAR_STOP_TIMEOUT,
        stdin: true,
        listen_fds: Vec::new(),
    };
    let mut helper =
        client::spawn(&spec).with_context(|| format!("cannot start sidecar {}", sidecar.name))?;
    let handle = Handle::new(helper.child.id().context("its supervisor exited at once")?);
    let reaped = handle.reaped.clone();
    let name = sidecar.name.clone();
    tokio::spawn(async move {
        // Held until it exits; never written to.
        let _stdin = helper.child.stdin.take();
        let mut sink = ToolSink::new(id, tx);
        sink.sidecar = Some(name);
        sink.helper_pid = helper.child.id().unwrap_or_default();
        let exit = collect::follow(&mut helper, &mut sink).await;
        let status = collect::reap(&mut helper, &reaped, exit).await;
        say_dropped(&sink.tx, &mut sink.throttle);
        let output = sink.last.take();
        let _ = sink.tx.send(Event::SidecarExited { id, status, output });
    });
    Ok(handle)
}

/// What a command's or a sidecar's helper says, turned into events.
struct ToolSink {
    id: u64,
    tx: UnboundedSender<Event>,
    throttle: Throttle,
    /// A command's output, for its diagnostics when it fails (bounded).
    transcript: String,
    /// A sidecar's last lines, to say why it exited.
    last: LastLines,
    /// A sidecar's name (`None` for a command).
    sidecar: Option<String>,
    helper_pid: u32,
}

impl ToolSink {
    fn new(id: u64, tx: UnboundedSender<Event>) -> ToolSink {
        ToolSink {
            id,
            tx,
            throttle: Throttle::default(),
            transcript: String::new(),
            last: LastLines::default(),
            sidecar: None,
            helper_pid: 0,
        }
    }

    fn pass(&mut self, line: String) {
        if self.sidecar.is_some() {
            self.last.push(&line);
        } else {
            keep_output(&mut self.transcript, &line);
        }
        if self.throttle.admit(&line) {
            say_dropped(&self.tx, &mut self.throttle);
            let _ = self.tx.send(Event::ToolOutput { id: self.id, line });
        }
    }
}

impl Sink for ToolSink {
    fn line(&mut self, _pipe: Pipe, line: String) {
        self.pass(line);
    }

    fn started(&mut self, pid: u32) {
        if self.sidecar.is_some() {
            let _ = self.tx.send(Event::SidecarStarted { id: self.id, pid });
        }
    }

    fn failed(&mut self, why: String) {
        self.pass(format!("hotrun: {why}"));
    }

    fn helper_killed(&mut self, leftovers: usize) {
        let what = match &self.sidecar {
            Some(name) => format!("sidecar {name}"),
            None => "a command".to_string(),
        };
        let line = collect::helper_killed_line(&what, "what it ran", self.helper_pid, leftovers);
        self.last.push(&line);
        let _ = self.tx.send(Event::Notice(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_line_is_the_one_that_says_what_went_wrong() {
        let tailwind = "≈ tailwindcss v4.3.5\n\nError:\n┌\n│ Error: Cannot apply unknown utility class `x`\n└\n";
        assert_eq!(
            error_line(tailwind),
            Some("Error: Cannot apply unknown utility class `x`")
        );
        let sass =
            "Error: expected \"{\".\n  ╷\n1 │ h1 \n  ╵\n  styles/app.scss 1:4  root stylesheet\n";
        assert_eq!(error_line(sass), Some("Error: expected \"{\"."));
        assert_eq!(error_line("nothing wrong said\n"), None);
    }
}
