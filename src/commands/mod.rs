//! The subcommands that do something other than run: `init`, `config`, `completions`.

mod completions;
mod config;
mod init;

use anyhow::Result;

use crate::config::cli::{Cli, Subcommand};

/// Run `command`; errors are usage errors (exit code 2).
pub fn run(command: &Subcommand, cli: &Cli) -> Result<()> {
    match command {
        Subcommand::Init { force, from_air } => init::init(*force, from_air.as_deref()),
        Subcommand::Config => config::print(cli),
        Subcommand::Completions { shell } => completions::print(*shell),
    }
}
