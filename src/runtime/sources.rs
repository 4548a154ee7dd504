//! Where events come from besides the watcher and the helpers: signals, stdin (commands
//! in `--ui json`, the app's input in `--ui plain`) and the clocks.

use std::time::Instant;

use anyhow::{Context, Result};
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedSender;

use crate::app::{self, StdinSlot};
use crate::core::event::{Command, Event};
use crate::process::lines::LineReader;

/// SIGINT and SIGTERM quit (exit 0); SIGHUP means the terminal is gone (exit 1).
/// Either way the app gets its stop signal first.
pub(super) fn listen_for_signals(tx: UnboundedSender<Event>) -> Result<()> {
    for kind in [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ] {
        let mut stream = signal(kind).context("cannot listen for signals")?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                let event = if kind == SignalKind::hangup() {
                    Event::Fatal("the terminal hung up (SIGHUP)".into())
                } else {
                    Event::Command(Command::Quit)
                };
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

/// `--ui json`: one-word commands on stdin.
pub(super) fn read_commands(tx: UnboundedSender<Event>) {
    tokio::spawn(async move {
        let mut lines = LineReader::new(Some(tokio::io::stdin()));
        while let Some(line) = lines.next().await {
            if line.trim().is_empty() {
                continue;
            }
            let event = match Command::parse(&line) {
                Some(command) => Event::Command(command),
                None => Event::Notice(format!(
                    "unknown command `{}` on stdin (rebuild, restart, pause, resume, quit)",
                    line.trim()
                )),
            };
            if tx.send(event).is_err() {
                break;
            }
        }
    });
}

/// `--ui plain`: stdin goes to the app (through a pipe, so an app in its own process
/// group is never stopped by SIGTTIN).
pub(super) fn forward_stdin(slot: StdinSlot) {
    tokio::spawn(async move {
        let mut lines = LineReader::new(Some(tokio::io::stdin()));
        while let Some(mut line) = lines.next().await {
            line.push('\n');
            let mut slot = slot.lock().await;
            let slot = &mut *slot;
            if let Some(pipe) = slot.pipe.as_mut() {
                if pipe.write_all(line.as_bytes()).await.is_err() {
                    slot.pipe = None;
                }
            } else if slot.pending.len() + line.len() <= app::STDIN_PENDING_MAX {
                // No app right now (building, swapping): the next one gets it.
                slot.pending.extend_from_slice(line.as_bytes());
            }
        }
    });
}

pub(super) async fn sleep_until(deadline: Option<Instant>) {
    if let Some(at) = deadline {
        tokio::time::sleep_until(at.into()).await;
    }
}

pub(super) async fn tick(clock: &mut Option<tokio::time::Interval>) {
    if let Some(clock) = clock {
        clock.tick().await;
    }
}
