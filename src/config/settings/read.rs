//! Reading values out of the config file and the flags: each a small function that
//! says which key and where in the file a bad value is.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use globset::{GlobSet, GlobSetBuilder};
use toml::Spanned;

use crate::config::cli::Cli;
use crate::config::file::{AddressValue, DurationValue, Loaded};
use crate::config::values::{parse_address, parse_duration};
use crate::core::classify::{build_glob, expand_glob};

/// What every section is resolved from.
pub struct Input<'a> {
    pub cli: &'a Cli,
    pub file: &'a Loaded,
    /// What relative paths in the file are relative to.
    pub root: &'a Path,
    /// Where hotrun was started: what relative paths in flags are relative to.
    pub cwd: &'a Path,
}

/// Compiled globs and the patterns they came from (to print them back).
#[derive(Debug, Clone)]
pub struct Globs {
    pub patterns: Vec<String>,
    pub set: GlobSet,
}

/// A command from its flag or its key: an empty one is an error.
pub fn command(
    input: &Input,
    flag: &Option<String>,
    key: &str,
    value: &Option<Spanned<String>>,
) -> Result<Option<String>> {
    let file = input.file;
    let empty = "is empty: name the command to run, or leave the key out";
    match (flag, value) {
        (Some(cmd), _) if cmd.trim().is_empty() => {
            Err(anyhow!("--{}: {empty}", key.replace(['.', '_'], "-")))
        }
        (Some(cmd), _) => Ok(Some(cmd.clone())),
        (None, Some(cmd)) if cmd.get_ref().trim().is_empty() => {
            Err(file.error_at(cmd.span(), key, empty))
        }
        (None, Some(cmd)) => Ok(Some(cmd.get_ref().clone())),
        (None, None) => Ok(None),
    }
}

pub fn address_value(value: &AddressValue) -> Result<SocketAddr, String> {
    match value {
        AddressValue::Port(p) => u16::try_from(*p)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .map_err(|_| format!("invalid port {p}")),
        AddressValue::Text(t) => parse_address(t),
    }
}

/// An `env` table, its names checked: not empty, no `=`, no NUL (the OS could not
/// pass them on).
pub fn env_table(
    file: &Loaded,
    key: &str,
    table: &Option<BTreeMap<Spanned<String>, String>>,
) -> Result<Vec<(String, String)>> {
    let mut vars = Vec::new();
    for (name, value) in table.iter().flatten() {
        let problem = if name.get_ref().is_empty() {
            Some("an empty variable name")
        } else if name.get_ref().contains('=') {
            Some("a variable name cannot hold `=`")
        } else if name.get_ref().contains('\0') {
            Some("a variable name cannot hold a NUL character")
        } else if value.contains('\0') {
            Some("a value cannot hold a NUL character")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(file.error_at(name.span(), key, problem));
        }
        vars.push((name.get_ref().clone(), value.clone()));
    }
    Ok(vars)
}

pub fn file_duration(
    file: &Loaded,
    key: &str,
    value: &Option<Spanned<DurationValue>>,
) -> Result<Option<Duration>> {
    match value {
        Some(v) => duration_value(v.get_ref())
            .map(Some)
            .map_err(|e| file.error_at(v.span(), key, &e)),
        None => Ok(None),
    }
}

pub fn duration_value(value: &DurationValue) -> Result<Duration, String> {
    match value {
        DurationValue::Millis(ms) => Ok(Duration::from_millis(*ms)),
        DurationValue::Text(text) => parse_duration(text),
    }
}

/// Compile glob patterns relative to the project root: the file's list (or `default`
/// when the file has none) plus the flags'. A pattern without `/` matches a name at any
/// depth (as in .gitignore); `dir/**` also matches `dir` itself so the directory is
/// pruned as a whole.
pub fn compile_globs(
    file: &Loaded,
    key: &str,
    from_file: Option<&[Spanned<String>]>,
    from_flags: &[String],
    default: &[&str],
) -> Result<Globs> {
    let mut set = GlobSetBuilder::new();
    let mut patterns = Vec::new();
    let listed: Vec<(String, Option<std::ops::Range<usize>>)> = match from_file {
        Some(list) => list
            .iter()
            .map(|p| (p.get_ref().clone(), Some(p.span())))
            .collect(),
        None => default.iter().map(|p| (p.to_string(), None)).collect(),
    };
    let flags = from_flags.iter().map(|p| (p.clone(), None));
    for (pattern, span) in listed.into_iter().chain(flags) {
        for glob in expand_glob(&pattern) {
            let compiled = build_glob(&glob).map_err(|e| {
                let message = format!("invalid glob `{pattern}`: {}", e.kind());
                match &span {
                    Some(span) => file.error_at(span.clone(), key, &message),
                    None => anyhow!("--ignore: {message}"),
                }
            })?;
            set.add(compiled);
        }
        patterns.push(pattern);
    }
    Ok(Globs {
        patterns,
        set: set.build().context("cannot compile globs")?,
    })
}
