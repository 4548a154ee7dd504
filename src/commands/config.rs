//! `hotrun config`: the effective settings, in the shape of `.hotrun.toml`.

use anyhow::Result;

use crate::config::cli::Cli;
use crate::config::reference;
use crate::config::settings::Settings;

/// Print the settings `cli` resolves to (flags over the file over the defaults).
pub fn print(cli: &Cli) -> Result<()> {
    let settings = Settings::load(cli)?;
    print!("{}", reference::effective(&settings));
    Ok(())
}
