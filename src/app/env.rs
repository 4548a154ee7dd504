//! The app's environment: its address, what `cargo run` would set, the env files, then
//! `run.env`.

use std::ffi::OsString;

use tokio::sync::mpsc::UnboundedSender;

use crate::build::Project;
use crate::config::settings::Settings;
use crate::core::event::Event;

/// The app's environment: its address (`PORT`), what `cargo run` sets, the env files
/// (read again at every start, so an edited `.env` takes effect with the next swap),
/// then `run.env`.
pub fn environment(
    settings: &Settings,
    project: &Project,
    address: &[(String, String)],
    tx: &UnboundedSender<Event>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    env.extend(address.iter().map(|(k, v)| (k.into(), v.into())));
    if let Project::Cargo(cargo) = project {
        env.extend(cargo.package.env.iter().map(|(k, v)| (k.into(), v.into())));
    }
    for file in &settings.run.env_files {
        // Re-read at every start, so an edited .env takes effect with the next swap.
        match std::fs::read_to_string(file) {
            Ok(text) => env.extend(
                parse_env_file(&text)
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into())),
            ),
            // A missing one is skipped (as air and most .env loaders do), said once.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                static SAID: std::sync::Mutex<Vec<std::path::PathBuf>> =
                    std::sync::Mutex::new(Vec::new());
                let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
                if !said.contains(file) {
                    said.push(file.clone());
                    let _ = tx.send(Event::Notice(format!(
                        "env file {} does not exist: the app starts without it",
                        file.display()
                    )));
                }
            }
            Err(e) => {
                let _ = tx.send(Event::Notice(format!(
                    "cannot read env file {}: {e}",
                    file.display()
                )));
            }
        }
    }
    env.extend(settings.run.env.iter().map(|(k, v)| (k.into(), v.into())));
    env
}

/// `.env` syntax: `KEY=value`, optional `export `, `#` comments, single quotes taken
/// literally, double quotes with `\n`, `\"` and `\\` escapes.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            continue;
        }
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))
        {
            inner.to_string()
        } else if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            let mut s = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') => s.push('\n'),
                        Some(other) => s.push(other),
                        None => s.push('\\'),
                    }
                } else {
                    s.push(c);
                }
            }
            s
        } else {
            // Unquoted: a ` #` starts a comment.
            value.split(" #").next().unwrap_or("").trim().to_string()
        };
        out.push((key.to_string(), value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files() {
        let text =
            "# comment\nA=1\nexport B = two \nC='lit $x'\nD=\"a\\nb\"\nE=x # note\nbad line\n";
        let vars = parse_env_file(text);
        assert_eq!(
            vars,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two".into()),
                ("C".into(), "lit $x".into()),
                ("D".into(), "a\nb".into()),
                ("E".into(), "x".into()),
            ]
        );
    }
}
