//! Everything hotrun shows. `--ui panel`: the plain lines scroll above a status panel
//! kept at the bottom of the terminal. `--ui plain`: timestamped lines tagged by source,
//! colours only where allowed. `--ui json`: one object per line with `event` and
//! `ts_ms`, for editors and tools. Nothing else in hotrun prints while it runs.

pub mod json;
pub mod out;
pub mod panel;
pub mod plain;
pub mod terminal;

use serde_json::Value;

use crate::config::settings::{Ui, UiSettings};
use crate::core::event::Report;
use plain::{plural, Tag};

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
                    self.emit(line, droppable(report))
                }
                None => Ok(()),
            },
            Ui::Plain | Ui::Panel => {
                if self.settings.clear_on_rebuild && matches!(report, Report::BuildStarted { .. }) {
                    self.clear();
                }
                match self.plain(report) {
                    Some((tag, text)) => self.line(tag, &text, droppable(report)),
                    None => Ok(()),
                }
            }
        };
        if result.is_err() {
            self.lost = true;
        }
        result
    }

    /// The JSON object for `report` in these settings.
    pub(crate) fn json(&self, report: &Report) -> Option<Value> {
        json::json(report, &self.settings)
    }

    /// The plain line for `report` in these settings.
    pub(crate) fn plain(&self, report: &Report) -> Option<(Tag, String)> {
        plain::plain(report, &self.settings, &self.root)
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
        let line = plain::format_line(&tag, text, self.settings.color);
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

/// Output lines may be dropped when stdout is not read fast enough; what hotrun says
/// itself never is.
fn droppable(report: &Report) -> bool {
    matches!(report, Report::Output { .. } | Report::ToolOutput { .. })
}

/// About what erasing and drawing the panel takes, in bytes.
const PANEL_BYTES: usize = 1024;
