//! The shape of `.hotrun.toml`, as written: every key optional, unknown keys rejected,
//! and the values that need checking kept with their spans so an error can point at
//! the line and column. Finding and reading the file lives here too; turning it into
//! resolved settings is `settings`' job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::config::cli::{ColorChoice, UiMode};

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
    pub proxy: ProxyFile,
    #[serde(default)]
    pub reload: ReloadFile,
    #[serde(default)]
    pub ui: UiFile,
    /// `[[on_change]]`: commands run when matching files change.
    #[serde(default)]
    pub on_change: Vec<OnChangeFile>,
    /// `[[sidecar]]`: long-running helpers started and stopped with hotrun.
    #[serde(default)]
    pub sidecar: Vec<SidecarFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnChangeFile {
    pub paths: Spanned<Vec<Spanned<String>>>,
    pub run: Spanned<String>,
    pub name: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarFile {
    pub run: Spanned<String>,
    pub name: Option<Spanned<String>>,
    pub restart: Option<RestartValue>,
    pub cwd: Option<Spanned<PathBuf>>,
    pub env: Option<BTreeMap<Spanned<String>, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildFile {
    pub cmd: Option<Spanned<String>>,
    pub before: Option<Vec<String>>,
    pub outputs: Option<Vec<Spanned<String>>>,
    pub package: Option<Spanned<String>>,
    pub bin: Option<Spanned<String>>,
    pub example: Option<Spanned<String>>,
    pub release: Option<bool>,
    pub profile: Option<String>,
    pub features: Option<OneOrMany>,
    pub all_features: Option<bool>,
    pub no_default_features: Option<bool>,
    pub target_dir: Option<PathBuf>,
    pub cargo_args: Option<Vec<String>>,
    pub on_busy: Option<OnBusyValue>,
    pub env: Option<BTreeMap<Spanned<String>, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    pub cmd: Option<Spanned<String>>,
    pub args: Option<Vec<String>>,
    pub env: Option<BTreeMap<Spanned<String>, String>>,
    pub env_file: Option<OneOrMany>,
    pub cwd: Option<Spanned<PathBuf>>,
    pub listen: Option<Vec<Spanned<AddressValue>>>,
    pub ready: Option<Spanned<String>>,
    pub ready_timeout: Option<Spanned<DurationValue>>,
    pub stop_signal: Option<Spanned<SignalValue>>,
    pub stop_timeout: Option<Spanned<DurationValue>>,
    pub restart: Option<RestartValue>,
    pub swap: Option<SwapValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchFile {
    pub paths: Option<Vec<PathBuf>>,
    pub ignore: Option<Vec<Spanned<String>>>,
    pub include: Option<Vec<Spanned<String>>>,
    pub assets: Option<Vec<Spanned<String>>>,
    pub restart: Option<Vec<Spanned<String>>>,
    pub rebuild: Option<Vec<Spanned<String>>>,
    pub debounce: Option<Spanned<DurationValue>>,
    pub poll: Option<Spanned<PollValue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyFile {
    pub listen: Option<Spanned<AddressValue>>,
    pub app: Option<Spanned<AddressValue>>,
    pub timeout: Option<Spanned<DurationValue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadFile {
    pub enabled: Option<bool>,
    pub listen: Option<Spanned<AddressValue>>,
    pub hosts: Option<Vec<String>>,
    pub origins: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiFile {
    pub mode: Option<UiMode>,
    pub color: Option<ColorChoice>,
    pub clear_on_rebuild: Option<bool>,
}

/// `3000`, `":3000"`, `"127.0.0.1:3000"`, `"localhost:3000"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AddressValue {
    Port(i64),
    Text(String),
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

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwapValue {
    Overlap,
    Restart,
}

/// A config file as read: where it is, its text (for error positions) and its content.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub text: String,
    pub config: FileConfig,
}

impl Loaded {
    /// `file:line:column: `key`: message`, for the value of `key` at byte range `span`.
    pub fn error_at(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: &str,
    ) -> anyhow::Error {
        let (line, column) = line_column(&self.text, span.start);
        anyhow::anyhow!(
            "{}:{line}:{column}: `{key}`: {message}",
            self.path.display()
        )
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
    let deserializer = toml::Deserializer::new(&text);
    let config: FileConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        // Values kept with their position add a serde-internal segment to the path.
        let key = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let inner = e.into_inner();
        let span = inner.span();
        let position = span
            .as_ref()
            .map(|s| {
                let (l, c) = line_column(&text, s.start);
                format!(":{l}:{c}")
            })
            .unwrap_or_default();
        let message = match inner.message().trim_end() {
            // toml says nothing for a file that ends where a value should be
            // (`debounce =`), nor for a carriage return without a line feed.
            "" if span.is_some_and(|s| s.start >= text.len()) => {
                "unexpected end of file".to_string()
            }
            "" => "invalid TOML".to_string(),
            message => friendly(message),
        };
        let hint = did_you_mean(&message)
            .map(|s| format!(", did you mean `{s}`?"))
            .unwrap_or_default();
        let key = if key == "." || message.starts_with("unknown field") {
            String::new()
        } else {
            format!("`{key}`: ")
        };
        anyhow::anyhow!("{}{position}: {key}{message}{hint}", path.display())
    })?;
    Ok(Loaded {
        path: path.to_path_buf(),
        text,
        config,
    })
}

/// serde's words for a value of none of a key's accepted shapes, in the user's terms.
fn friendly(message: &str) -> String {
    let Some(name) = message.strip_prefix("data did not match any variant of untagged enum ")
    else {
        return message.to_string();
    };
    match name.trim() {
        "DurationValue" => "expected a duration like 30ms or 5s (a bare number means milliseconds)",
        "SignalValue" => "expected a signal like SIGTERM, TERM or 15",
        "AddressValue" => "expected an address like 3000, :3000 or 127.0.0.1:3000",
        "OneOrMany" => "expected a string or a list of strings",
        "PollValue" => "expected true, false or a polling interval like 500ms",
        _ => return message.to_string(),
    }
    .to_string()
}

/// For serde's "unknown field `debunce`, expected one of `paths`, …": the nearest
/// expected name, when it is near enough to be what was meant.
pub fn did_you_mean(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    let candidates = expected.split('`').skip(1).step_by(2);
    candidates
        .map(|c| (edit_distance(unknown, c), c))
        .filter(|(d, c)| *d <= (c.len().max(unknown.len()) / 3).max(2))
        .min()
        .map(|(_, c)| c.to_string())
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
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
    fn unknown_keys_suggest_the_nearest_one() {
        let err = parse(Path::new("c.toml"), "[watch]\ndebunce = 5\n".into()).unwrap_err();
        assert!(
            format!("{err:#}").ends_with("did you mean `debounce`?"),
            "{err:#}"
        );
        let err = parse(Path::new("c.toml"), "[wacth]\n".into()).unwrap_err();
        assert!(
            format!("{err:#}").contains("did you mean `watch`?"),
            "{err:#}"
        );
        let err = parse(Path::new("c.toml"), "[watch]\nzzzzzz = 5\n".into()).unwrap_err();
        assert!(!format!("{err:#}").contains("did you mean"), "{err:#}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = parse(Path::new("c.toml"), "[build]\nrelease = \"yes\"\n".into()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.starts_with("c.toml:2:11: `build.release`: "), "{msg}");
    }

    #[test]
    fn values_of_no_accepted_shape_say_what_was_expected() {
        let err = parse(Path::new("c.toml"), "[watch]\ndebounce = -1\n".into()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.starts_with("c.toml:2:12: `watch.debounce`: expected a duration"),
            "{msg}"
        );
    }

    #[test]
    fn errors_toml_says_nothing_about_still_say_something() {
        let error =
            |text: &str| format!("{:#}", parse(Path::new("c.toml"), text.into()).unwrap_err());
        assert_eq!(
            error("[watch]\ndebounce ="),
            "c.toml:2:11: unexpected end of file"
        );
        assert_eq!(
            error("[build]\nenv = { A ="),
            "c.toml:2:12: unexpected end of file"
        );
        assert_eq!(error("\r"), "c.toml:1:1: invalid TOML");
        assert_eq!(error("# x\r"), "c.toml:1:4: invalid TOML");
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab", 0), (1, 1));
    }
}
