//! Everything hotrun shows. `--ui panel`: the plain lines scroll above a status panel
//! kept at the bottom of the terminal. `--ui plain`: timestamped lines tagged by source,
//! colours only where allowed. `--ui json`: one object per line with `event` and
//! `ts_ms`, for editors and tools. Nothing else in hotrun prints while it runs.

pub mod out;
pub mod panel;
pub mod terminal;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::config::settings::{Ui, UiSettings};
use crate::core::event::{ChangeKind, Report, Stream, PATHS_MAX};
use crate::text::{format_duration, strip_ansi};

pub struct Printer {
    settings: UiSettings,
    root: std::path::PathBuf,
    lost: bool,
    /// The terminal under the panel (`--ui panel` only).
    terminal: Option<terminal::Terminal>,
    info: panel::PanelInfo,
}

impl Printer {
    pub fn new(
        settings: UiSettings,
        root: std::path::PathBuf,
        info: panel::PanelInfo,
    ) -> std::io::Result<Printer> {
        let terminal = match settings.mode {
            Ui::Panel => Some(terminal::Terminal::enter()?),
            _ => None,
        };
        Ok(Printer {
            settings,
            root,
            lost: false,
            terminal,
            info,
        })
    }

    /// New settings (an edited config); the output mode and terminal stay.
    pub fn reconfigure(&mut self, settings: UiSettings, info: panel::PanelInfo) {
        self.settings = UiSettings {
            mode: self.settings.mode,
            ..settings
        };
        self.info = info;
    }

    /// The URL `o` opens: the most public one known.
    pub fn public_url(&self) -> Option<&str> {
        self.info.urls.first().map(|(_, u)| u.as_str())
    }

    /// Redraw the panel for `state` (panel mode only).
    pub fn draw_panel(&mut self, state: &crate::core::state::State, now: std::time::Instant) {
        if self.lost {
            return;
        }
        let Some(term) = self.terminal.as_mut() else {
            return;
        };
        // A reader this far behind gets the next redraw instead (the panel is small).
        if !out::fits(PANEL_BYTES, false) {
            return;
        }
        let r = panel::render(state, &self.info, term.width(), now);
        let widths = r.lines.iter().map(|l| terminal::display_width(l)).collect();
        let mut lines = r.lines;
        if self.settings.color {
            let colour = match r.tone {
                panel::Tone::Good => "\x1b[1;32m",
                panel::Tone::Busy => "\x1b[1;33m",
                panel::Tone::Bad => "\x1b[1;31m",
                panel::Tone::Quiet => "\x1b[1;36m",
            };
            let last = lines.len() - 1;
            lines[0] = format!("\x1b[2m{}\x1b[0m", lines[0]);
            if let Some(rest) = lines[1].strip_prefix(&r.state) {
                lines[1] = format!("{colour}{}\x1b[0m{rest}", r.state);
            }
            lines[last] = format!("\x1b[2m{}\x1b[0m", lines[last]);
        }
        if term.draw(&lines, widths).is_err() {
            self.lost = true;
        }
    }

    /// hotrun's output is gone (a closed pipe, a dead terminal).
    pub fn lost(&self) -> bool {
        self.lost
    }

    /// Clear the screen (`c`, `ui.clear_on_rebuild`).
    pub fn clear(&mut self) {
        match self.terminal.as_mut() {
            Some(term) => {
                let _ = term.clear_screen();
            }
            None if self.settings.mode == Ui::Plain
                && std::io::IsTerminal::is_terminal(&std::io::stdout()) =>
            {
                let _ = self.emit(b"\x1b[2J\x1b[3J\x1b[H".to_vec(), false);
            }
            None => {}
        }
    }

    /// Show one report. An error means hotrun's output is gone (a closed pipe, a
    /// hung-up terminal); nothing more is written after that.
    pub fn report(&mut self, report: &Report) -> std::io::Result<()> {
        if self.lost {
            return Ok(());
        }
        let dropped = out::take_dropped();
        if dropped > 0 {
            self.report(&Report::Error {
                message: format!(
                    "{dropped} line{} of output dropped: they came faster than hotrun's output is read",
                    plural(dropped)
                ),
            })?;
        }
        let result = match self.settings.mode {
            Ui::Json => match self.json(report) {
                Some(value) => {
                    let mut line = value.to_string().into_bytes();
                    line.push(b'\n');
                    self.emit(line, matches!(report, Report::Output { .. }))
                }
                None => Ok(()),
            },
            Ui::Plain | Ui::Panel => {
                if self.settings.clear_on_rebuild && matches!(report, Report::BuildStarted { .. }) {
                    self.clear();
                }
                match self.plain(report) {
                    Some((tag, text)) => {
                        self.line(tag, &text, matches!(report, Report::Output { .. }))
                    }
                    None => Ok(()),
                }
            }
        };
        if result.is_err() {
            self.lost = true;
        }
        result
    }

    fn rel(&self, path: &std::path::Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn text(&self, line: &str) -> String {
        if self.settings.color {
            keep_colours(line)
        } else {
            strip_ansi(line)
        }
    }

    pub(crate) fn json(&self, report: &Report) -> Option<Value> {
        let (event, mut fields) = match report {
            Report::Watching {
                roots,
                directories,
                polling,
            } => (
                "watching",
                with_paths(
                    json!({ "directories": directories, "polling_ms": polling.map(|p| p.as_millis() as u64) }),
                    "roots",
                    roots,
                ),
            ),
            Report::Change { paths, count, kind } => {
                let mut fields = with_paths(json!({ "kind": kind }), "paths", paths);
                fields["count"] = json!(count);
                ("change", fields)
            }
            Report::BuildStarted { files } => {
                ("build_started", with_paths(json!({}), "files", files))
            }
            Report::BuildFinished { outcome } => {
                let diagnostics: Vec<Value> = outcome
                    .diagnostics
                    .iter()
                    .map(|d| {
                        let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
                        if !self.settings.color {
                            v["rendered"] = Value::String(strip_ansi(&d.rendered));
                        }
                        v
                    })
                    .collect();
                (
                    "build_finished",
                    json!({
                        "ok": outcome.ok,
                        "duration_ms": outcome.duration.as_millis() as u64,
                        "errors": outcome.errors(),
                        "warnings": outcome.warnings(),
                        "diagnostics": diagnostics,
                    }),
                )
            }
            Report::BuildCancelled => ("build_cancelled", json!({})),
            Report::AppStarted { pid } => ("app_started", json!({ "pid": pid })),
            Report::AppReady { after } => {
                ("app_ready", json!({ "after_ms": after.as_millis() as u64 }))
            }
            Report::AppExited {
                status,
                requested,
                output,
            } => {
                let output: Vec<String> = output.iter().map(|l| self.text(l)).collect();
                (
                    "app_exited",
                    json!({ "code": status.code, "signal": status.signal, "requested": requested, "output": output }),
                )
            }
            Report::Output { stream, line } => (
                "output",
                json!({ "stream": stream, "line": self.text(line) }),
            ),
            Report::ReloadSent { kind, clients } => {
                ("reload_sent", json!({ "kind": kind, "clients": clients }))
            }
            Report::Error { message } => ("error", json!({ "message": message })),
            Report::Urls { urls } => {
                let mut fields = json!({});
                for (what, url) in urls {
                    fields[*what] = json!(url);
                }
                ("urls", fields)
            }
            Report::Info { .. } => return None,
        };
        fields["event"] = json!(event);
        fields["ts_ms"] = json!(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64));
        Some(fields)
    }

    pub(crate) fn plain(&self, report: &Report) -> Option<(Tag, String)> {
        let some = |paths: &[std::path::PathBuf], count: usize| {
            let mut names: Vec<String> = paths.iter().take(3).map(|p| self.rel(p)).collect();
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
                if !self.settings.verbose && *kind != ChangeKind::Config {
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
                requested: false,
                ..
            } => (
                Tag::Error,
                format!(
                    "app exited by itself with {status}; it starts again after the next change"
                ),
            ),
            Report::Output {
                stream: Stream::Build,
                line,
            } => (Tag::Build, self.text(line)),
            Report::Output { line, .. } => (Tag::App, self.text(line)),
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
                    _ if !self.settings.verbose => return None,
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

    /// Queue `bytes` for stdout (see `out`); an error once the reader is gone.
    fn emit(&mut self, bytes: Vec<u8>, droppable: bool) -> std::io::Result<()> {
        if out::push(bytes, droppable) || !out::lost() {
            Ok(())
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
    }

    fn line(&mut self, tag: Tag, text: &str, droppable: bool) -> std::io::Result<()> {
        let (name, colour) = match tag {
            Tag::Hotrun => ("hotrun", "\x1b[1;36m"),
            Tag::Error => ("hotrun", "\x1b[1;31m"),
            Tag::Build => ("build ", "\x1b[33m"),
            Tag::App => ("app   ", "\x1b[32m"),
        };
        let time = clock();
        let line = if self.settings.color {
            format!("\x1b[2m{time}\x1b[0m {colour}{name}\x1b[0m {text}")
        } else {
            format!("{time} {name} {text}")
        };
        if let Some(term) = self.terminal.as_mut() {
            // Asked before the panel is erased: a line dropped leaves the screen as is.
            if !out::fits(line.len() + PANEL_BYTES, droppable) {
                return Ok(());
            }
            return term.print_line(&line);
        }
        let mut line = line.into_bytes();
        line.push(b'\n');
        self.emit(line, droppable)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Tag {
    Hotrun,
    Error,
    Build,
    App,
}

/// Paths in JSON: `name` holds them as strings, a name that is not UTF-8 with U+FFFD
/// where its bad bytes were (never a panic). When any is not UTF-8, `name_base64` holds
/// every path's exact bytes, base64, in the same order, for tools that need the file.
/// Lists longer than [`PATHS_MAX`] are cut there (the event's `count` says how
/// many there were).
fn with_paths(mut fields: Value, name: &str, paths: &[std::path::PathBuf]) -> Value {
    use std::os::unix::ffi::OsStrExt;
    let paths = &paths[..paths.len().min(PATHS_MAX)];
    fields[name] = paths
        .iter()
        .map(|p| Value::String(p.to_string_lossy().into_owned()))
        .collect();
    if paths.iter().any(|p| p.to_str().is_none()) {
        fields[format!("{name}_base64")] = paths
            .iter()
            .map(|p| Value::String(data_encoding::BASE64.encode(p.as_os_str().as_bytes())))
            .collect();
    }
    fields
}

/// About what erasing and drawing the panel takes, in bytes.
const PANEL_BYTES: usize = 1024;

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

/// Keep a line's colours (SGR sequences) but nothing that moves the cursor, clears the
/// screen or switches screens — those would wreck the lines above the panel — and end
/// it with a reset so a colour never bleeds into the next line.
pub fn keep_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    let mut coloured = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut sequence = String::from("\x1b[");
                for c in chars.by_ref() {
                    sequence.push(c);
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
                if sequence.ends_with('m') {
                    coloured = true;
                    out.push_str(&sequence);
                }
            }
            '\x1b' => {
                // Any other escape: drop it and what it introduces.
                let rest: String = chars.clone().collect();
                let stripped = strip_ansi(&format!("\x1b{rest}"));
                out.push_str(&stripped);
                break;
            }
            '\r' | '\x08' | '\x07' => {}
            c => out.push(c),
        }
    }
    if coloured {
        out.push_str("\x1b[0m");
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_colours_but_not_cursor_moves() {
        assert_eq!(keep_colours("\x1b[31mred"), "\x1b[31mred\x1b[0m");
        assert_eq!(keep_colours("up\x1b[3Aabove\x1b[2J"), "upabove");
        assert_eq!(keep_colours("plain\r"), "plain");
    }

    #[test]
    fn strips_colours() {
        assert_eq!(strip_ansi("\x1b[1m\x1b[31merror\x1b[0m: x"), "error: x");
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(
            strip_ansi("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"),
            "link"
        );
    }
}
