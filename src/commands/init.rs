//! `hotrun init [--from-air [FILE]]`: write a `.hotrun.toml` — the commented reference
//! of every key, or an air configuration converted — never over an existing one
//! unless asked.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::config::file::FILE_NAME;
use crate::config::reference;

/// Write `.hotrun.toml` in the current directory.
pub fn init(force: bool, from_air: Option<&Path>) -> Result<()> {
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
            crate::config::file::parse(&path, converted.text.clone())
                .context("the converted configuration does not load (please report this)")?;
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
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("hotrun: wrote {}", path.display());
    Ok(())
}
