//! `[watch]`: what is watched and ignored, what a change means (assets, restarts,
//! rebuilds), how long a burst settles, polling.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::read::{compile_globs, duration_value, file_duration, Globs, Input};
use crate::config::file::PollValue;
use crate::config::values::parse_duration;
use crate::core::classify::{DEFAULT_ASSETS, DEFAULT_RESTART};

pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(30);
/// A burst that never settles builds after this long at least…
pub const DEBOUNCE_CAP: Duration = Duration::from_secs(1);
pub const DEFAULT_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// Extra paths to watch, absolute.
    pub paths: Vec<PathBuf>,
    pub ignore: Globs,
    pub include: Option<Globs>,
    pub assets: Globs,
    /// `watch.assets` was written by the user (not the defaults): its files are watched
    /// even where `.gitignore` ignores them.
    pub assets_named: bool,
    pub restart: Globs,
    pub rebuild: Globs,
    pub debounce: Duration,
    /// A burst that never settles still builds after this long.
    pub debounce_cap: Duration,
    pub poll: Option<Duration>,
}

/// How long a burst settles, and how often to poll: read first, so the limits on
/// durations are checked before anything else of `[watch]`.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub debounce: Duration,
    pub poll: Option<Duration>,
}

/// `watch.debounce`, `watch.poll` and their flags.
pub fn timing(input: &Input) -> Result<Timing> {
    let (cli, file) = (input.cli, input.file);
    let w = &file.config.watch;
    let debounce = match &cli.watch.debounce {
        Some(text) => parse_duration(text).map_err(|e| anyhow!("--debounce: {e}"))?,
        None => file_duration(file, "watch.debounce", &w.debounce)?.unwrap_or(DEFAULT_DEBOUNCE),
    };
    let poll = match (&cli.watch.poll, &w.poll) {
        (Some(text), _) if text.is_empty() => Some(DEFAULT_POLL),
        (Some(text), _) => Some(parse_duration(text).map_err(|e| anyhow!("--poll: {e}"))?),
        (None, Some(p)) => match p.get_ref() {
            PollValue::Enabled(true) => Some(DEFAULT_POLL),
            PollValue::Enabled(false) => None,
            PollValue::Interval(d) => {
                Some(duration_value(d).map_err(|e| file.error_at(p.span(), "watch.poll", &e))?)
            }
        },
        (None, None) => None,
    };
    if poll.is_some_and(|p| p < Duration::from_millis(10)) {
        let message = "the polling interval must be at least 10ms";
        return Err(match (&cli.watch.poll, &w.poll) {
            (None, Some(p)) => file.error_at(p.span(), "watch.poll", message),
            _ => anyhow!("--poll: {message}"),
        });
    }
    Ok(Timing { debounce, poll })
}

/// `[watch]` and the watch flags; `include` is the default `watch.include` decided for
/// the project.
pub fn resolve(input: &Input, include: &[&str], timing: Timing) -> Result<WatchSettings> {
    let (cli, file, root, cwd) = (input.cli, input.file, input.root, input.cwd);
    let w = &file.config.watch;
    let Timing { debounce, poll } = timing;
    let mut paths: Vec<PathBuf> = w
        .paths
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|p| root.join(p))
        .collect();
    paths.extend(cli.watch.watch.iter().map(|p| cwd.join(p)));
    let ignore = compile_globs(
        file,
        "watch.ignore",
        w.ignore.as_deref(),
        &cli.watch.ignore,
        &[],
    )?;
    let include = match &w.include {
        Some(globs) => Some(compile_globs(file, "watch.include", Some(globs), &[], &[])?),
        None if !include.is_empty() => {
            Some(compile_globs(file, "watch.include", None, &[], include)?)
        }
        None => None,
    };
    let assets = compile_globs(
        file,
        "watch.assets",
        w.assets.as_deref(),
        &[],
        DEFAULT_ASSETS,
    )?;
    let restart = compile_globs(
        file,
        "watch.restart",
        w.restart.as_deref(),
        &[],
        DEFAULT_RESTART,
    )?;

    let rebuild = compile_globs(file, "watch.rebuild", w.rebuild.as_deref(), &[], &[])?;
    Ok(WatchSettings {
        paths,
        ignore,
        include,
        assets,
        assets_named: w.assets.is_some(),
        restart,
        rebuild,
        debounce,
        // A long settle window stretches the cap with it, so one slow burst stays one
        // build.
        debounce_cap: DEBOUNCE_CAP.max(debounce.saturating_mul(10)),
        poll,
    })
}
