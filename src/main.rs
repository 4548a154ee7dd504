//! hotrun: build, run, watch and swap a web app on every save.

mod air;
mod app;
mod builder;
mod cache;
mod cargo;
mod classify;
mod cli;
mod commands;
mod config;
mod event;
mod inject;
mod lines;
#[cfg(test)]
mod proptests;
mod proxy;
mod reference;
mod reload;
mod runner;
mod serve;
mod settings;
mod state;
mod supervisor;
mod ui;
mod watch;

use clap::Parser;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == supervisor::MODE) {
        supervisor::main(&args[2..]);
    }
    ui::terminal::install_panic_hook();
    let cli = cli::Cli::parse();
    if let Some(command) = &cli.command {
        match commands::run(command, &cli) {
            Ok(()) => std::process::exit(0),
            Err(e) => exit(2, e),
        }
    }
    let setup = settings::Settings::load(&cli)
        .and_then(|s| app::prepare(s, cli))
        .and_then(|p| app::bind(&p).map(|sockets| (p, sockets)));
    let (prepared, sockets) = match setup {
        Ok(setup) => setup,
        Err(e) => exit(2, e),
    };
    match app::run(prepared, sockets) {
        Ok(code) => std::process::exit(code),
        Err(e) => exit(1, e),
    }
}

fn exit(code: i32, error: anyhow::Error) -> ! {
    eprintln!("hotrun: error: {error:#}");
    std::process::exit(code)
}

/// `SIGTERM` for 15, or the number when it names no signal.
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map_or_else(|_| signal.to_string(), |s| s.as_str().to_string())
}
