//! `hotrun completions SHELL`: the shell completion script clap writes from the
//! command line's definition.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;

use crate::config::cli::Cli;

/// Print the completion script for `shell`.
pub fn print(shell: clap_complete::Shell) -> Result<()> {
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut command, "hotrun", &mut out);
    out.flush()?;
    Ok(())
}
