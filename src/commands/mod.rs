//! The subcommands that do something other than run: `init`, `config`, `completions`.

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;

use crate::config::cli::{Cli, Subcommand};
use crate::config::file::FILE_NAME;
use crate::config::reference;
use crate::config::settings::Settings;

/// Run `command`; errors are usage errors (exit code 2).
pub fn run(command: &Subcommand, cli: &Cli) -> Result<()> {
    match command {
        Subcommand::Init { force, from_air } => {
            let path = std::env::current_dir()?.join(FILE_NAME);
            if path.exists() && !force {
                bail!(
                    "{} already exists; pass --force to overwrite it",
                    path.display()
                );
            }
            let text = match from_air {
                Some(air) => {
                    let converted = crate::config::air::convert(air)?;
                    // What is written must be what hotrun accepts.
                    crate::config::file::parse(&path, converted.text.clone()).context(
                        "the converted configuration does not load (please report this)",
                    )?;
                    for (key, why) in &converted.unmapped {
                        eprintln!("hotrun: not carried over: {key}: {why}");
                    }
                    converted.text
                }
                None => {
                    if std::env::current_dir()?
                        .join(crate::config::settings::AIR_FILE)
                        .is_file()
                    {
                        eprintln!(
                            "hotrun: there is an {} here: `hotrun init --from-air --force` writes its settings instead",
                            crate::config::settings::AIR_FILE
                        );
                    }
                    reference::init_template()
                }
            };
            std::fs::write(&path, text)
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
