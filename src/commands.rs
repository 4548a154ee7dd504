//! The subcommands that do something other than run: `init`, `config`, `completions`.

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, Subcommand};
use crate::config::FILE_NAME;
use crate::reference;
use crate::settings::Settings;

/// Run `command`; errors are usage errors (exit code 2).
pub fn run(command: &Subcommand, cli: &Cli) -> Result<()> {
    match command {
        Subcommand::Init { force } => {
            let path = std::env::current_dir()?.join(FILE_NAME);
            if path.exists() && !force {
                bail!(
                    "{} already exists; pass --force to overwrite it",
                    path.display()
                );
            }
            std::fs::write(&path, reference::init_template())
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("hotrun: wrote {}", path.display());
        }
        Subcommand::Config => {
            let settings = Settings::load(cli)?;
            print!("{}", reference::effective(&settings));
        }
        Subcommand::Completions { shell } => {
            let mut command = Cli::command();
            let mut out = std::io::stdout().lock();
            clap_complete::generate(*shell, &mut command, "hotrun", &mut out);
            out.flush()?;
        }
    }
    Ok(())
}
