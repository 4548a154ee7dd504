//! What to build and run: the commands the user gave, else Cargo, else a language
//! hotrun knows by a file at the root (a Go module).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::read::{command, Input};
use crate::config::file as config;

/// The build and run commands, and whether Cargo builds.
pub struct Commands {
    pub build: Option<String>,
    pub run: Option<String>,
    /// The Cargo workspace root, when Cargo builds.
    pub cargo_root: Option<PathBuf>,
    /// `watch.include` when the file has none (a detected language's sources).
    pub include: &'static [&'static str],
    /// What hotrun chose by itself, said once at start.
    pub detected: Option<String>,
}

/// The commands for this project; `cargo_root` is the Cargo workspace found, if any.
pub fn resolve(input: &Input, cargo_root: Option<PathBuf>) -> Result<Commands> {
    let (cli, file, root, cwd) = (input.cli, input.file, input.root, input.cwd);
    let (b, r) = (&file.config.build, &file.config.run);
    let mut build_cmd = command(input, &cli.project.build_cmd, "build.cmd", &b.cmd)?;
    let mut run_cmd = command(input, &cli.project.run_cmd, "run.cmd", &r.cmd)?;
    // No Cargo.toml and no commands: a project of a language hotrun knows.
    let mut detected = None;
    let mut default_include: &[&str] = &[];
    if cargo_root.is_none() && build_cmd.is_none() && run_cmd.is_none() {
        if let Some(found) = detect(root) {
            build_cmd = Some(found.build);
            run_cmd = Some(found.run);
            default_include = found.include;
            detected = Some(found.said);
        }
    }
    // A build command takes over from Cargo; a run command alone runs what Cargo built.
    let cargo_root = if build_cmd.is_some() {
        if cargo_root.is_some() && run_cmd.is_none() {
            bail!(
                "a build command is set (`build.cmd` or --build-cmd) but no run command: hotrun cannot know what it builds; set `run.cmd` in {} or pass --run-cmd",
                config::FILE_NAME
            );
        }
        None
    } else {
        cargo_root
    };
    if cargo_root.is_none() && run_cmd.is_none() {
        bail!(
            "no Cargo.toml here or above {}, and no run command: set `run.cmd` (and `build.cmd`) in {} or pass --run-cmd",
            cwd.display(),
            config::FILE_NAME
        );
    }
    Ok(Commands {
        build: build_cmd,
        run: run_cmd,
        cargo_root,
        include: default_include,
        detected,
    })
}

/// What hotrun runs, with no config, in a project of a language it knows.
struct Detected {
    build: String,
    run: String,
    include: &'static [&'static str],
    said: String,
}

/// Go: a `go.mod` at the root. Built as `air` does with no config, with the binary in
/// hotrun's cache (outside the project, so never watched). One table, the place for
/// more languages.
fn detect(root: &Path) -> Option<Detected> {
    const LANGUAGES: &[(&str, &str, &[&str])] =
        &[("go.mod", "Go module", &["**/*.go", "go.mod", "go.sum"])];
    let (marker, what, include) = LANGUAGES
        .iter()
        .find(|(marker, _, _)| root.join(marker).is_file())?;
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    // One binary per project: the root's path, hashed.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in root.as_os_str().as_encoded_bytes() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let binary = cache.join(format!("hotrun/go-{hash:016x}/app"));
    let quoted = shell_quote(&binary.to_string_lossy());
    let build = format!("go build -o {quoted} .");
    Some(Detected {
        said: format!(
            "{what} ({marker}): building with `{build}`, running {quoted}, watching {}; set build.cmd and run.cmd in {} to change that",
            include.join(", "),
            config::FILE_NAME
        ),
        build,
        run: quoted,
        include,
    })
}

/// `text` as one word for `sh`.
fn shell_quote(text: &str) -> String {
    if text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
