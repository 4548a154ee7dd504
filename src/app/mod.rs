//! Starts one app generation under the supervisor helper, with the environment
//! `cargo run` would give it plus `run.env_file` and `run.env`, and turns what happens
//! to it into app events. Stopping is the helper's job (see `process`).

mod command;
mod env;
mod notify;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::process::ChildStdin;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Mutex;

use crate::build::Project;
use crate::config::settings::Settings;
use crate::core::event::{Event, Stream};
use crate::process::client::{self, Handle, Spec};
use crate::process::collect::{self, Pipe, Sink};
use crate::process::lines::{say_dropped, LastLines, Throttle};
use command::command_line;
use env::environment;
use tokio::io::AsyncWriteExt;

/// Where hotrun's stdin goes in plain mode: the current app's stdin pipe, and what was
/// typed while no app ran (delivered to the next one).
pub type StdinSlot = Arc<Mutex<AppStdin>>;

#[derive(Default)]
pub struct AppStdin {
    pub pipe: Option<ChildStdin>,
    pub pending: Vec<u8>,
}

/// At most this much typed input waits for an app to start.
pub const STDIN_PENDING_MAX: usize = 64 * 1024;

/// What every app generation gets from hotrun besides its settings.
pub struct AppContext<'a> {
    /// The `run.listen` sockets (passed as fds 3, 4, …).
    pub listen_fds: &'a [std::os::fd::RawFd],
    /// Environment for finding its address (`PORT` behind the proxy).
    pub env: &'a [(String, String)],
    /// Where hotrun's stdin goes (`--ui plain`).
    pub stdin_slot: Option<StdinSlot>,
    /// Give it a `NOTIFY_SOCKET` to say when it is ready (listen mode).
    pub notify: bool,
}

/// Start generation `gen`; returns the helper's handle (to stop it).
pub fn start(
    gen: u64,
    executable: Option<&Path>,
    settings: &Settings,
    project: &Project,
    tx: UnboundedSender<Event>,
    context: AppContext<'_>,
) -> Result<Handle> {
    let stdin_slot = context.stdin_slot;
    let mut env = environment(settings, project, context.env, &tx);
    let (program, args) = command_line(settings, executable)?;
    let notify = match context.notify.then(|| notify::Notify::bind(gen)) {
        Some(Ok(notify)) => {
            env.push(("NOTIFY_SOCKET".into(), notify.path.clone().into()));
            Some(notify)
        }
        Some(Err(e)) => {
            let _ = tx.send(Event::Notice(format!(
                "cannot make the app's NOTIFY_SOCKET ({e}): it swaps by stop-then-start"
            )));
            None
        }
        None => None,
    };
    let spec = Spec {
        program,
        args,
        env,
        cwd: settings.run.cwd.clone(),
        stop_signal: settings.run.stop_signal,
        stop_timeout: settings.run.stop_timeout,
        stdin: stdin_slot.is_some(),
        listen_fds: context.listen_fds.to_vec(),
    };
    let mut helper = client::spawn(&spec).context("cannot start the app")?;
    let handle = Handle::new(
        helper
            .child
            .id()
            .context("the app's supervisor exited at once")?,
    );
    let reaped = handle.reaped.clone();
    if let Some(notify) = notify {
        notify.listen(gen, reaped.clone(), tx.clone());
    }
    let stdin = helper.child.stdin.take();
    let helper_pid = helper.child.id().unwrap_or_default();
    tokio::spawn(async move {
        if let (Some(slot), Some(mut stdin)) = (&stdin_slot, stdin) {
            let mut slot = slot.lock().await;
            let pending = std::mem::take(&mut slot.pending);
            if pending.is_empty() || stdin.write_all(&pending).await.is_ok() {
                slot.pipe = Some(stdin);
            }
        }
        let mut sink = AppSink {
            tx,
            gen,
            helper_pid,
            // Kept here, before any output is passed on (or dropped on the way).
            last: LastLines::default(),
            throttle: Throttle::default(),
        };
        let exit = collect::follow(&mut helper, &mut sink).await;
        let AppSink {
            tx,
            mut last,
            mut throttle,
            ..
        } = sink;
        say_dropped(&tx, &mut throttle);
        if let Some(slot) = &stdin_slot {
            slot.lock().await.pipe.take();
        }
        let status = collect::reap(&mut helper, &reaped, exit).await;
        let _ = tx.send(Event::AppExited {
            gen,
            status,
            output: last.take(),
        });
    });
    Ok(handle)
}

/// What an app's helper says, turned into app events.
struct AppSink {
    tx: UnboundedSender<Event>,
    gen: u64,
    helper_pid: u32,
    last: LastLines,
    throttle: Throttle,
}

impl AppSink {
    /// Send one line of the app's output to the loop, unless the loop is behind (then
    /// it is dropped, and counted).
    fn pass(&mut self, stream: Stream, line: String) {
        self.last.push(&line);
        if self.throttle.admit(&line) {
            say_dropped(&self.tx, &mut self.throttle);
            let _ = self.tx.send(Event::AppOutput { stream, line });
        }
    }
}

impl Sink for AppSink {
    fn line(&mut self, pipe: Pipe, line: String) {
        let stream = match pipe {
            Pipe::Stdout => Stream::AppStdout,
            Pipe::Stderr => Stream::AppStderr,
        };
        self.pass(stream, line);
    }

    fn started(&mut self, pid: u32) {
        let _ = self.tx.send(Event::AppStarted { gen: self.gen, pid });
    }

    fn failed(&mut self, why: String) {
        self.pass(Stream::AppStderr, format!("hotrun: {why}"));
    }

    fn helper_killed(&mut self, leftovers: usize) {
        let line = collect::helper_killed_line("the app", "the app", self.helper_pid, leftovers);
        self.last.push(&line);
        let _ = self.tx.send(Event::Notice(line));
    }
}
