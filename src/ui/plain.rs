//! `--ui plain` (and the lines above the panel): timestamped lines tagged by source,
//! colours only where allowed.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::settings::UiSettings;
use crate::core::event::{ChangeKind, Report, Stream};
use crate::text::{format_duration, shown};

/// Who a line is from: its tag and colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    Hotrun,
    Error,
    Build,
    App,
    /// An `[[on_change]]` command or a sidecar, by its name.
    Tool(String),
}

/// The line for `report`, and its tag; none for what plain output leaves out.
pub fn plain(report: &Report, settings: &UiSettings, root: &Path) -> Option<(Tag, String)> {
    let some = |paths: &[std::path::PathBuf], count: usize| {
        let mut names: Vec<String> = paths.iter().take(3).map(|p| rel(root, p)).collect();
        if count > names.len() {
            names.push(format!("and {} more", count - names.len()));
        }
        names.join(", ")
    };
    let files = |paths: &[std::path::PathBuf]| some(paths, paths.len());
    Some(match report {
        Report::Watching {
            roots,
            directories,
            polling,
        } => {
            let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
            let how = match polling {
                Some(p) => format!(" (polling every {})", format_duration(*p)),
                None => String::new(),
            };
            (
                Tag::Hotrun,
                format!(
                    "watching {directories} directories under {}{how}",
                    roots.join(", ")
                ),
            )
        }
        Report::Change { paths, kind, count } => {
            if !settings.verbose && *kind != ChangeKind::Config {
                return None;
            }
            let kind = match kind {
                ChangeKind::Build => "build input",
                ChangeKind::Restart => "restarts the app",
                ChangeKind::Asset => "asset: browsers reload",
                ChangeKind::Css => "stylesheet: browsers swap it",
                ChangeKind::Config => "config file",
                ChangeKind::Other => "ignored (not a build input)",
            };
            (
                Tag::Hotrun,
                format!("changed: {} — {kind}", some(paths, *count)),
            )
        }
        Report::BuildStarted { files: f } if f.is_empty() => (Tag::Hotrun, "building".into()),
        Report::BuildStarted { files: f } => (Tag::Hotrun, format!("building ({})", files(f))),
        Report::BuildFinished { outcome } => {
            let took = format_duration(outcome.duration);
            let (errors, warnings) = (outcome.errors(), outcome.warnings());
            let warn = match warnings {
                0 => String::new(),
                1 => ", 1 warning".into(),
                n => format!(", {n} warnings"),
            };
            if outcome.ok {
                (Tag::Hotrun, format!("build ok in {took}{warn}"))
            } else {
                let first = outcome
                    .diagnostics
                    .iter()
                    .find(|d| d.level == "error")
                    .map(|d| match (&d.file, d.line) {
                        (Some(f), Some(l)) => format!(": {f}:{l}: {}", d.message),
                        _ => format!(": {}", d.message),
                    })
                    .unwrap_or_default();
                let errs = if errors == 1 {
                    "1 error".to_string()
                } else {
                    format!("{errors} errors")
                };
                (Tag::Error, format!("build failed in {took} ({errs}{warn}){first} — the running app is untouched"))
            }
        }
        Report::BuildCancelled => (Tag::Hotrun, "build cancelled: newer changes".into()),
        Report::AppStarted { pid } => (Tag::Hotrun, format!("app started (pid {pid})")),
        Report::AppReady { .. } => return None,
        Report::AppExited {
            status,
            requested: true,
            ..
        } => (Tag::Hotrun, format!("app stopped ({status})")),
        Report::AppExited {
            status,
            rolled_back: true,
            ..
        } => (
            Tag::Error,
            format!("the new app exited on start with {status}: rolled back"),
        ),
        Report::AppExited {
            status,
            requested: false,
            ..
        } => (
            Tag::Error,
            format!("app exited by itself with {status}; it starts again after the next change"),
        ),
        Report::Output {
            stream: Stream::Build,
            line,
        } => (Tag::Build, shown(line, settings.color)),
        Report::Output { line, .. } => (Tag::App, shown(line, settings.color)),
        Report::ToolOutput { name, line, .. } => {
            (Tag::Tool(name.clone()), shown(line, settings.color))
        }
        Report::TaskStarted { name, files: f } if f.is_empty() => {
            (Tag::Hotrun, format!("running {name}"))
        }
        Report::TaskStarted { name, files: f } => {
            (Tag::Hotrun, format!("running {name} ({})", files(f)))
        }
        Report::TaskFinished { name, outcome } => {
            let took = format_duration(outcome.duration);
            if outcome.ok {
                (Tag::Hotrun, format!("{name} ok in {took}"))
            } else {
                // Its first diagnostic names it already: `tailwind failed: why`, or
                // `tailwind failed with code 1 (no output)`.
                let message = outcome.diagnostics.first().map(|d| d.message.as_str());
                let rest = message
                    .map(|m| m.strip_prefix(&format!("{name} failed")).unwrap_or(m))
                    .map(|m| match m.strip_prefix(':') {
                        Some(why) => format!(": {}", why.trim()),
                        None if m.starts_with(' ') => m.to_string(),
                        None => format!(": {m}"),
                    })
                    .unwrap_or_default();
                (
                    Tag::Error,
                    format!("{name} failed in {took}{rest} — the app is untouched"),
                )
            }
        }
        Report::TaskCancelled { name } => (Tag::Hotrun, format!("{name} cancelled: newer changes")),
        Report::SidecarStarted { name, pid } => {
            (Tag::Hotrun, format!("sidecar {name} started (pid {pid})"))
        }
        Report::SidecarExited {
            name,
            status,
            requested: true,
            ..
        } => (Tag::Hotrun, format!("sidecar {name} stopped ({status})")),
        Report::SidecarExited {
            name,
            status,
            restart_in,
            ..
        } => (
            Tag::Error,
            match restart_in {
                Some(wait) => format!(
                    "sidecar {name} exited with {status}; starting it again in {}",
                    format_duration(*wait)
                ),
                None => format!("sidecar {name} exited with {status}"),
            },
        ),
        // Worth a line when a tab changes: a reload or a stylesheet swap.
        Report::ReloadSent { kind, clients } => {
            if *clients == 0 {
                return None;
            }
            let tabs = format!("{clients} tab{}", plural(*clients));
            let text = match *kind {
                "compiled" | "reload" => format!("browser: reloading {tabs}"),
                "css" => format!("browser: stylesheet swapped in {tabs}"),
                // The rest changes nothing on the page: worth a line in -v only.
                _ if !settings.verbose => return None,
                "error" => format!("browser: showing the errors in {tabs}"),
                "ok" => format!("browser: overlay cleared in {tabs}"),
                "exited" => format!("browser: told {tabs} the app exited"),
                other => format!("browser: `{other}` sent to {tabs}"),
            };
            (Tag::Hotrun, text)
        }
        Report::Error { message } => (Tag::Error, message.clone()),
        Report::Urls { urls } => {
            let urls: Vec<String> = urls
                .iter()
                .map(|(what, url)| format!("{what} {url}"))
                .collect();
            (Tag::Hotrun, urls.join("  ·  "))
        }
        Report::Info { message } => (Tag::Hotrun, message.clone()),
    })
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A line as printed: the time, the tag (coloured when colour is on), the text.
pub fn format_line(tag: &Tag, text: &str, color: bool) -> String {
    let (name, colour) = match tag {
        Tag::Hotrun => ("hotrun", "\x1b[1;36m"),
        Tag::Error => ("hotrun", "\x1b[1;31m"),
        Tag::Build => ("build ", "\x1b[33m"),
        Tag::App => ("app   ", "\x1b[32m"),
        Tag::Tool(name) => (name.as_str(), "\x1b[35m"),
    };
    let name = format!("{name:<6}");
    let time = clock();
    if color {
        format!("\x1b[2m{time}\x1b[0m {colour}{name}\x1b[0m {text}")
    } else {
        format!("{time} {name} {text}")
    }
}

/// Local wall-clock time, `HH:MM:SS.mmm`.
fn clock() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed struct we own.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_millis()
    )
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cli::{ColorChoice, UiMode};
    use crate::config::settings::Ui;

    fn settings() -> UiSettings {
        UiSettings {
            mode: Ui::Plain,
            requested_mode: UiMode::Plain,
            color: false,
            requested_color: ColorChoice::Never,
            clear_on_rebuild: false,
            verbose: false,
        }
    }

    #[test]
    fn a_command_s_lines_are_tagged_with_its_name_and_its_failure_says_what_failed() {
        let root = Path::new("/p");
        let (tag, text) = plain(
            &Report::ToolOutput {
                sidecar: false,
                name: "tailwind".into(),
                line: "Done in 41ms".into(),
            },
            &settings(),
            root,
        )
        .unwrap();
        let line = format_line(&tag, &text, false);
        assert!(line.ends_with(" tailwind Done in 41ms"), "{line}");
        // Short names keep the column of the others.
        let line = format_line(&Tag::Tool("sass".into()), "x", false);
        assert!(line.ends_with(" sass   x"), "{line}");
        let failed = crate::core::event::BuildOutcome {
            ok: false,
            cancelled: false,
            duration: std::time::Duration::from_millis(120),
            diagnostics: vec![crate::core::event::Diagnostic {
                level: "error".into(),
                message: "tailwind failed: CssSyntaxError".into(),
                rendered: String::new(),
                file: None,
                line: None,
                column: None,
            }],
            executable: None,
            input_files: Vec::new(),
            input_dirs: Vec::new(),
        };
        let (tag, text) = plain(
            &Report::TaskFinished {
                name: "tailwind".into(),
                outcome: failed,
            },
            &settings(),
            root,
        )
        .unwrap();
        assert_eq!(tag, Tag::Error);
        assert_eq!(
            text,
            "tailwind failed in 120ms: CssSyntaxError — the app is untouched"
        );
    }
}
