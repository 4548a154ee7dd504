//! `[ui]`: how hotrun shows what happens — the panel, plain lines or JSON — and colour.

use super::read::Input;
use crate::config::cli::{ColorChoice, UiMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ui {
    Panel,
    Plain,
    Json,
}

/// What the user asked for (`--ui`, `ui.mode`), printed back by `hotrun config`.
pub fn ui_mode_name(mode: UiMode) -> &'static str {
    match mode {
        UiMode::Auto => "auto",
        UiMode::Panel => "panel",
        UiMode::Plain => "plain",
        UiMode::Json => "json",
    }
}

#[derive(Debug, Clone)]
pub struct UiSettings {
    pub mode: Ui,
    /// As asked for, before `auto` was decided.
    pub requested_mode: UiMode,
    pub color: bool,
    pub requested_color: ColorChoice,
    pub clear_on_rebuild: bool,
    pub verbose: bool,
}

/// `[ui]` and the output flags.
pub fn resolve(input: &Input) -> UiSettings {
    let (cli, u) = (input.cli, &input.file.config.ui);
    let requested_color = cli.output.color.or(u.color).unwrap_or(ColorChoice::Auto);
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && match requested_color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::io::IsTerminal::is_terminal(&std::io::stdout()),
        };
    let requested_mode = cli.output.ui.or(u.mode).unwrap_or(UiMode::Auto);
    let mode = match requested_mode {
        UiMode::Json => Ui::Json,
        // Checked against the terminal only when hotrun runs (`hotrun config` may pipe).
        UiMode::Panel => Ui::Panel,
        UiMode::Auto if is_terminal() => Ui::Panel,
        UiMode::Plain | UiMode::Auto => Ui::Plain,
    };
    let clear_on_rebuild = u.clear_on_rebuild.unwrap_or(false);
    UiSettings {
        mode,
        requested_mode,
        color,
        requested_color,
        clear_on_rebuild,
        verbose: cli.output.verbose,
    }
}

/// Both stdin (keys) and stdout (the panel) are a terminal.
pub fn is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::io::IsTerminal::is_terminal(&std::io::stdin())
}
