//! hotrun at work: setup (`setup`), then one loop (`event_loop`) that takes events
//! from every source (`sources`, the watcher, the helpers, the servers), hands each
//! to `State::update` and performs the effects it returns (`effects`). The only
//! folder that sees every other one.

use anyhow::{Context, Result};

use crate::config::cli::Cli;
use crate::config::settings::Settings;
use crate::web::sockets::Sockets;

mod effects;
mod event_loop;
#[cfg(test)]
mod proptests;
mod readiness;
mod setup;
mod sources;

pub use setup::{bind, prepare, Prepared};

/// The whole program: the helper mode, a subcommand, or a run. Returns the exit code:
/// 0, 1 when a run failed, 2 for bad input (nothing was started).
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    use clap::Parser;
    if args
        .get(1)
        .is_some_and(|a| a == crate::process::status::MODE)
    {
        crate::process::helper::main(&args[2..]);
    }
    crate::ui::terminal::install_panic_hook();
    let cli = Cli::parse_from(args);
    if let Some(command) = &cli.command {
        return match crate::commands::run(command, &cli) {
            Ok(()) => 0,
            Err(e) => failed(2, e),
        };
    }
    let setup = Settings::load(&cli)
        .and_then(|s| prepare(s, cli))
        .and_then(|p| bind(&p).map(|sockets| (p, sockets)));
    let (prepared, sockets) = match setup {
        Ok(setup) => setup,
        Err(e) => return failed(2, e),
    };
    match run(prepared, sockets) {
        Ok(code) => code,
        Err(e) => failed(1, e),
    }
}

fn failed(code: i32, error: anyhow::Error) -> i32 {
    eprintln!("hotrun: error: {error:#}");
    code
}

/// How long queued output may hold up hotrun's exit.
const OUTPUT_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// Run until quit. Returns the exit code.
pub fn run(prepared: Prepared, sockets: Sockets) -> Result<i32> {
    // One thread: every process is spawned from the main thread, which lives as long
    // as hotrun does, so the helpers' parent-death signal fires only when hotrun dies.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(event_loop::run(prepared, sockets));
    // The stdin reader sits in a blocking read that never returns: don't wait for it.
    runtime.shutdown_background();
    // What is still queued goes out, unless nobody reads it: then the exit goes on.
    crate::ui::out::flush(OUTPUT_FLUSH);
    result
}
