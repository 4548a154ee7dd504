//! The shape of `.hotrun.toml`, as written: every key optional, unknown keys rejected,
//! and the values that need checking kept with their spans so an error can point at
//! the line and column. Finding and reading the file lives here too; turning it into
//! resolved settings is `settings`' job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::cli::{ColorChoice, UiMode};

pub const FILE_NAME: &str = ".hotrun.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub build: BuildFile,
    #[serde(default)]
    pub run: RunFile,
    #[serde(default)]
    pub watch: WatchFile,
    #[serde(default)]
    pub ui: UiFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildFile {
    pub cmd: Option<String>,
    pub before: Option<Vec<String>>,
    pub outputs: Option<Vec<Spanned<String>>>,
    pub package: Option<String>,
    pub bin: Option<String>,
    pub example: Option<String>,
    pub release: Option<bool>,
    pub profile: Option<String>,
    pub features: Option<OneOrMany>,
    pub all_features: Option<bool>,
    pub no_default_features: Option<bool>,
    pub target_dir: Option<PathBuf>,
    pub cargo_args: Option<Vec<String>>,
    pub on_busy: Option<OnBusyValue>,
    pub env: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    pub cmd: Option<String>,
    pub args: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub env_file: Option<OneOrMany>,
    pub cwd: Option<PathBuf>,
    pub stop_signal: Option<Spanned<SignalValue>>,
    pub stop_timeout: Option<Spanned<DurationValue>>,
    pub restart: Option<RestartValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchFile {
    pub paths: Option<Vec<PathBuf>>,
    pub ignore: Option<Vec<Spanned<String>>>,
    pub include: Option<Vec<Spanned<String>>>,
    pub rebuild: Option<Vec<Spanned<String>>>,
    pub debounce: Option<Spanned<DurationValue>>,
    pub poll: Option<Spanned<PollValue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiFile {
    pub mode: Option<UiMode>,
    pub color: Option<ColorChoice>,
}

/// A string or a list of strings (`features = "a,b"` or `features = ["a", "b"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `30ms`, `5s`, or a bare number of milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DurationValue {
    Millis(u64),
    Text(String),
}

/// `SIGTERM`, `TERM` or `15`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SignalValue {
    Number(i64),
    Name(String),
}

/// `poll = true`, or an interval.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PollValue {
    Enabled(bool),
    Interval(DurationValue),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnBusyValue {
    Restart,
    Queue,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartValue {
    Never,
    OnFailure,
    Always,
}

/// A config file as read: where it is, its text (for error positions) and its content.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub text: String,
    pub config: FileConfig,
}

impl Loaded {
    /// `file:line:column: message`, for a value found at byte range `span`.
    pub fn error_at(&self, span: std::ops::Range<usize>, message: &str) -> anyhow::Error {
        let (line, column) = line_column(&self.text, span.start);
        anyhow::anyhow!("{}:{line}:{column}: {message}", self.path.display())
    }
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

pub fn parse(path: &Path, text: String) -> Result<Loaded> {
    let config: FileConfig = toml::from_str(&text).map_err(|e| {
        let position = e
            .span()
            .map(|s| {
                let (l, c) = line_column(&text, s.start);
                format!(":{l}:{c}")
            })
            .unwrap_or_default();
        anyhow::anyhow!("{}{position}: {}", path.display(), e.message())
    })?;
    Ok(Loaded {
        path: path.to_path_buf(),
        text,
        config,
    })
}

pub fn load(path: &Path) -> Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    parse(path, text)
}

/// The nearest `.hotrun.toml` from `start` upwards, stopping at `boundary` (the Cargo
/// workspace root), else at a git root or the home directory.
pub fn discover(start: &Path, boundary: Option<&Path>) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    for dir in start.ancestors() {
        let candidate = dir.join(FILE_NAME);
        if candidate.is_file() {
            return Some(candidate);
        }
        let at_boundary = match boundary {
            Some(b) => dir == b,
            None => dir.join(".git").exists() || Some(dir) == home.as_deref(),
        };
        if at_boundary {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_with_a_position() {
        let err = parse(Path::new(".hotrun.toml"), "[watch]\ndebunce = 5\n".into()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.starts_with(".hotrun.toml:2:1: "), "{msg}");
        assert!(msg.contains("debunce"), "{msg}");
    }

    #[test]
    fn values_of_several_shapes_parse() {
        let text = r#"
[build]
features = "a,b"
[run]
stop_signal = 15
stop_timeout = "2s"
env_file = [".env", ".env.local"]
restart = "on-failure"
[watch]
debounce = 40
poll = true
"#;
        let loaded = parse(Path::new("x"), text.into()).unwrap();
        assert!(matches!(
            loaded.config.run.restart,
            Some(RestartValue::OnFailure)
        ));
        assert!(matches!(
            loaded.config.watch.debounce.unwrap().into_inner(),
            DurationValue::Millis(40)
        ));
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab", 0), (1, 1));
    }
}
