//! Everything Cargo: `cargo metadata` (workspace root, real target dir, the package and
//! binary `cargo run` would pick, the packages to watch), the `cargo build` command
//! line, its JSON messages turned into diagnostics, and dep-info files.

use std::time::Instant;

use super::outcome::{build_outcome, first_line, plain_error, stamp};
use crate::config::settings::Settings;
use crate::core::event::BuildOutcome;
use crate::process::client::Spec;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use cargo_metadata::{Message, Metadata, MetadataCommand, Package, TargetKind};

use crate::config::settings::CargoSelection;
use crate::core::event::Diagnostic;

/// The resolved Cargo side of a project.
#[derive(Debug, Clone)]
pub struct CargoProject {
    pub workspace_root: PathBuf,
    pub target_dir: PathBuf,
    pub package: PackageInfo,
    /// The target to run: a bin or an example.
    pub target: RunTarget,
    /// Manifest directories of every workspace member and local path dependency.
    pub package_roots: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunTarget {
    Bin(String),
    Example(String),
}

impl RunTarget {
    pub fn name(&self) -> &str {
        match self {
            RunTarget::Bin(n) | RunTarget::Example(n) => n,
        }
    }
}

/// What `cargo run` puts in a binary's environment.
#[derive(Debug, Clone)]
pub struct PackageInfo {
    pub name: String,
    pub manifest_path: PathBuf,
    pub env: Vec<(String, String)>,
}

impl CargoProject {
    /// Run `cargo metadata` in `cwd` and pick what to run like `cargo run` does.
    pub fn load(cwd: &Path, selection: &CargoSelection) -> Result<CargoProject> {
        let mut cmd = MetadataCommand::new();
        cmd.current_dir(cwd);
        let metadata = cmd.exec().map_err(|e| match e {
            cargo_metadata::Error::CargoMetadata { stderr } => {
                anyhow!("cargo metadata failed:\n{}", stderr.trim_end())
            }
            other => anyhow!("cargo metadata failed: {other}"),
        })?;
        resolve(metadata, cwd, selection)
    }

    /// `cargo build` arguments for this selection.
    pub fn build_args(&self, selection: &CargoSelection) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "build".into(),
            "--message-format=json-diagnostic-rendered-ansi".into(),
            "--manifest-path".into(),
            self.package.manifest_path.clone().into(),
            "-p".into(),
            self.package.name.clone().into(),
        ];
        match &self.target {
            RunTarget::Bin(name) => args.extend(["--bin".into(), name.into()]),
            RunTarget::Example(name) => args.extend(["--example".into(), name.into()]),
        }
        if let Some(profile) = &selection.profile {
            args.extend(["--profile".into(), profile.into()]);
        } else if selection.release {
            args.push("--release".into());
        }
        if !selection.features.is_empty() {
            args.extend(["--features".into(), selection.features.join(",").into()]);
        }
        if selection.all_features {
            args.push("--all-features".into());
        }
        if selection.no_default_features {
            args.push("--no-default-features".into());
        }
        if let Some(dir) = &selection.target_dir {
            args.extend(["--target-dir".into(), dir.into()]);
        }
        args.extend(selection.cargo_args.iter().map(OsString::from));
        args
    }
}

fn resolve(metadata: Metadata, cwd: &Path, selection: &CargoSelection) -> Result<CargoProject> {
    let workspace_root = PathBuf::from(metadata.workspace_root.as_std_path());
    let target_dir = selection
        .target_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(metadata.target_directory.as_std_path()));
    let members: BTreeSet<_> = metadata.workspace_members.iter().collect();
    let local: Vec<&Package> = metadata
        .packages
        .iter()
        .filter(|p| members.contains(&p.id) || p.source.is_none())
        .collect();
    let workspace: Vec<&Package> = metadata
        .packages
        .iter()
        .filter(|p| members.contains(&p.id))
        .collect();

    let package = match &selection.package {
        Some(spec) => *workspace
            .iter()
            .find(|p| p.name.as_str() == spec.as_str() || p.id.repr == *spec)
            .ok_or_else(|| {
                anyhow!(
                    "package `{spec}` is not in the workspace (members: {})",
                    names(workspace.iter().map(|p| p.name.as_str()))
                )
            })?,
        None => pick_package(&workspace, cwd, selection)?,
    };
    let target = pick_target(package, selection)?;

    let mut env = vec![
        (
            "CARGO_MANIFEST_DIR".to_string(),
            package
                .manifest_path
                .parent()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ),
        (
            "CARGO_MANIFEST_PATH".to_string(),
            package.manifest_path.to_string(),
        ),
        ("CARGO_PKG_NAME".to_string(), package.name.to_string()),
        ("CARGO_PKG_VERSION".to_string(), package.version.to_string()),
        (
            "CARGO_PKG_VERSION_MAJOR".to_string(),
            package.version.major.to_string(),
        ),
        (
            "CARGO_PKG_VERSION_MINOR".to_string(),
            package.version.minor.to_string(),
        ),
        (
            "CARGO_PKG_VERSION_PATCH".to_string(),
            package.version.patch.to_string(),
        ),
        (
            "CARGO_PKG_VERSION_PRE".to_string(),
            package.version.pre.to_string(),
        ),
        ("CARGO_PKG_AUTHORS".to_string(), package.authors.join(":")),
        (
            "CARGO_PKG_DESCRIPTION".to_string(),
            package.description.clone().unwrap_or_default(),
        ),
        (
            "CARGO_PKG_HOMEPAGE".to_string(),
            package.homepage.clone().unwrap_or_default(),
        ),
        (
            "CARGO_PKG_REPOSITORY".to_string(),
            package.repository.clone().unwrap_or_default(),
        ),
        (
            "CARGO_PKG_LICENSE".to_string(),
            package.license.clone().unwrap_or_default(),
        ),
    ];
    if let Some(cargo) = std::env::var_os("CARGO") {
        env.push(("CARGO".to_string(), cargo.to_string_lossy().into_owned()));
    }

    let mut package_roots: Vec<PathBuf> = local
        .iter()
        .filter_map(|p| {
            p.manifest_path
                .parent()
                .map(|d| PathBuf::from(d.as_std_path()))
        })
        .collect();
    package_roots.sort();
    package_roots.dedup();

    Ok(CargoProject {
        workspace_root,
        target_dir,
        package: PackageInfo {
            name: package.name.to_string(),
            manifest_path: PathBuf::from(package.manifest_path.as_std_path()),
            env,
        },
        target,
        package_roots,
    })
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = it.collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

fn runnable(p: &Package) -> bool {
    p.targets.iter().any(|t| t.kind.contains(&TargetKind::Bin))
}

/// The package `cargo run` would use: the one whose directory holds `cwd`, else the
/// only one with a binary.
fn pick_package<'a>(
    workspace: &[&'a Package],
    cwd: &Path,
    selection: &CargoSelection,
) -> Result<&'a Package> {
    let here = workspace
        .iter()
        .filter(|p| {
            p.manifest_path
                .parent()
                .is_some_and(|d| cwd.starts_with(d.as_std_path()))
        })
        .max_by_key(|p| p.manifest_path.components().count());
    if let Some(p) = here {
        return Ok(p);
    }
    let wanted = |p: &&&Package| match (&selection.bin, &selection.example) {
        (Some(bin), _) => p
            .targets
            .iter()
            .any(|t| t.kind.contains(&TargetKind::Bin) && t.name == *bin),
        (_, Some(ex)) => p
            .targets
            .iter()
            .any(|t| t.kind.contains(&TargetKind::Example) && t.name == *ex),
        _ => runnable(p),
    };
    let candidates: Vec<&&Package> = workspace.iter().filter(wanted).collect();
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => bail!("no package in this workspace has a binary to run"),
        many => bail!(
            "several packages could run; pick one with -p/--package or `build.package` (one of: {})",
            names(many.iter().map(|p| p.name.as_str()))
        ),
    }
}

/// The target `cargo run` would run: `--example`, `--bin`, `default-run`, or the only bin.
fn pick_target(package: &Package, selection: &CargoSelection) -> Result<RunTarget> {
    let of_kind = |kind: TargetKind| -> Vec<&str> {
        package
            .targets
            .iter()
            .filter(|t| t.kind.contains(&kind))
            .map(|t| t.name.as_str())
            .collect()
    };
    let bins = of_kind(TargetKind::Bin);
    if let Some(example) = &selection.example {
        let examples = of_kind(TargetKind::Example);
        if !examples.contains(&example.as_str()) {
            bail!(
                "package `{}` has no example `{example}` (examples: {})",
                package.name,
                names(examples.into_iter())
            );
        }
        return Ok(RunTarget::Example(example.clone()));
    }
    if let Some(bin) = &selection.bin {
        if !bins.contains(&bin.as_str()) {
            bail!(
                "package `{}` has no binary `{bin}` (binaries: {})",
                package.name,
                names(bins.into_iter())
            );
        }
        return Ok(RunTarget::Bin(bin.clone()));
    }
    if let Some(default) = &package.default_run {
        return Ok(RunTarget::Bin(default.clone()));
    }
    match bins.as_slice() {
        [one] => Ok(RunTarget::Bin(one.to_string())),
        [] => bail!("package `{}` has no binary to run", package.name),
        many => bail!(
            "package `{}` has several binaries; pick one with --bin or `build.bin` (one of: {})",
            package.name,
            many.join(", ")
        ),
    }
}

/// What one build learned from cargo's stdout.
#[derive(Debug, Default)]
pub struct MessageCollector {
    pub diagnostics: Vec<Diagnostic>,
    pub executable: Option<PathBuf>,
}

impl MessageCollector {
    /// Feed one stdout line; returns the human text to show for it, if any.
    pub fn line(
        &mut self,
        line: &str,
        workspace_root: &Path,
        target: &RunTarget,
    ) -> Option<String> {
        let Ok(message) = serde_json::from_str::<Message>(line) else {
            return if line.trim().is_empty() {
                None
            } else {
                Some(line.to_string())
            };
        };
        match message {
            Message::CompilerArtifact(artifact) => {
                let kind = match target {
                    RunTarget::Bin(_) => TargetKind::Bin,
                    RunTarget::Example(_) => TargetKind::Example,
                };
                if artifact.target.name == target.name() && artifact.target.kind.contains(&kind) {
                    if let Some(exe) = artifact.executable {
                        self.executable = Some(PathBuf::from(exe.as_std_path()));
                    }
                }
                None
            }
            Message::CompilerMessage(msg) => {
                let diag = &msg.message;
                let rendered = diag
                    .rendered
                    .clone()
                    .unwrap_or_else(|| diag.message.clone());
                if is_summary(&diag.message) {
                    return None;
                }
                let primary = diag.spans.iter().find(|s| s.is_primary);
                let file = primary.map(|s| relative_to(&s.file_name, workspace_root));
                self.diagnostics.push(Diagnostic {
                    level: level_name(&diag.level),
                    message: diag.message.clone(),
                    rendered: rendered.clone(),
                    file,
                    line: primary.map(|s| s.line_start as u32),
                    column: primary.map(|s| s.column_start as u32),
                });
                Some(rendered.trim_end().to_string())
            }
            Message::BuildScriptExecuted(_) | Message::BuildFinished(_) => None,
            Message::TextLine(text) => Some(text),
            _ => None,
        }
    }
}

/// rustc's closing lines ("aborting due to 2 previous errors", "3 warnings emitted")
/// are not diagnostics of their own.
fn is_summary(message: &str) -> bool {
    message.starts_with("aborting due to")
        || (message.ends_with("emitted") && message.contains("warning"))
        || message.starts_with("For more information about")
        || message.starts_with("Some errors have detailed explanations")
}

fn level_name(level: &cargo_metadata::diagnostic::DiagnosticLevel) -> String {
    use cargo_metadata::diagnostic::DiagnosticLevel as L;
    match level {
        L::Ice => "error",
        L::Error => "error",
        L::Warning => "warning",
        L::FailureNote => "note",
        L::Note => "note",
        L::Help => "help",
        _ => "note",
    }
    .to_string()
}

fn relative_to(file: &str, root: &Path) -> String {
    let path = Path::new(file);
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Cargo's own status lines on stderr, which are progress rather than problems.
pub fn is_cargo_status(line: &str) -> bool {
    let t = crate::text::strip_ansi(line);
    let word = t.trim_start().split(' ').next().unwrap_or("");
    matches!(
        word,
        "Compiling"
            | "Checking"
            | "Finished"
            | "Blocking"
            | "Updating"
            | "Locking"
            | "Downloading"
            | "Downloaded"
            | "Fresh"
            | "Running"
            | "Adding"
            | "Fetching"
            | "Building"
            | "Packaging"
    ) || t.starts_with("error: could not compile")
        || (t.starts_with("warning: `") && t.contains("generated"))
        || t.trim_start().starts_with("Building [")
}

/// The files and directories a `.d` dep-info file lists (Makefile syntax, `\ ` escapes).
pub fn parse_dep_info(text: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((_target, deps)) = split_rule(line) else {
            continue;
        };
        let mut current = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    current.push(' ');
                    chars.next();
                }
                ' ' => {
                    if !current.is_empty() {
                        out.push(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            out.push(PathBuf::from(current));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `target: deps` — the colon that is not escaped and is followed by a space or the end.
fn split_rule(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b':'
            && (i == 0 || bytes[i - 1] != b'\\')
            && (i + 1 == bytes.len() || bytes[i + 1] == b' ')
        {
            return Some((&line[..i], &line[i + 1..]));
        }
    }
    None
}

/// The dep-info file cargo writes beside an executable.
pub fn dep_info_path(executable: &Path) -> PathBuf {
    executable.with_extension("d")
}

pub fn read_dep_info(executable: &Path) -> Result<Vec<PathBuf>> {
    let path = dep_info_path(executable);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(parse_dep_info(&text))
}

/// `cargo build` with JSON messages, no progress bar, colours when hotrun has them.
pub fn spec(settings: &Settings, cargo: &CargoProject, mut env: Vec<(OsString, OsString)>) -> Spec {
    env.push(("CARGO_TERM_PROGRESS_WHEN".into(), "never".into()));
    if settings.ui.color {
        env.push(("CARGO_TERM_COLOR".into(), "always".into()));
    }
    Spec {
        program: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        args: cargo.build_args(&settings.build.cargo),
        env,
        cwd: settings.cwd.clone(),
        stop_signal: libc::SIGTERM,
        stop_timeout: std::time::Duration::from_millis(500),
        stdin: false,
        listen_fds: Vec::new(),
    }
}

/// Cargo's diagnostics, the executable it named, and its dep-info: the files the
/// next build depends on.
pub fn outcome(
    collector: MessageCollector,
    unexplained: String,
    success: bool,
    started: Instant,
) -> BuildOutcome {
    let mut diagnostics = collector.diagnostics;
    let executable = collector.executable.as_deref().and_then(stamp);
    let ok = success && executable.is_some();
    if !ok && !unexplained.trim().is_empty() {
        // Build-script panics, manifest errors: shown too.
        diagnostics.push(Diagnostic {
            level: "error".into(),
            message: first_line(&unexplained),
            rendered: unexplained,
            file: None,
            line: None,
            column: None,
        });
    }
    if success && executable.is_none() {
        diagnostics.push(plain_error(
            "cargo build succeeded but named no executable for the target",
        ));
    }
    let mut outcome = build_outcome(ok, started, diagnostics, executable.clone());
    if let Some(exe) = &executable {
        if let Ok(inputs) = read_dep_info(&exe.path) {
            // Event paths are canonical; so must these be.
            let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = inputs
                .into_iter()
                .map(|p| p.canonicalize().unwrap_or(p))
                .partition(|p| p.is_dir());
            outcome.input_files = files;
            outcome.input_dirs = dirs;
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_with_escaped_spaces() {
        let text = "/t/debug/app: /w/src/main.rs /w/my\\ dir/page.html /dep/src/lib.rs\n\n/w/src/main.rs:\n";
        let deps = parse_dep_info(text);
        assert_eq!(
            deps,
            vec![
                PathBuf::from("/dep/src/lib.rs"),
                PathBuf::from("/w/my dir/page.html"),
                PathBuf::from("/w/src/main.rs")
            ]
        );
    }

    #[test]
    fn compiler_messages_become_diagnostics() {
        let mut c = MessageCollector::default();
        let line = r#"{"reason":"compiler-message","package_id":"webapp 0.1.0 (path+file:///w)","manifest_path":"/w/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"webapp","src_path":"/w/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true},"message":{"rendered":"\u001b[1merror\u001b[0m: nope\n --> src/main.rs:3:5\n","$message_type":"diagnostic","children":[],"code":null,"level":"error","message":"nope","spans":[{"byte_end":10,"byte_start":5,"column_end":10,"column_start":5,"expansion":null,"file_name":"src/main.rs","is_primary":true,"label":null,"line_end":3,"line_start":3,"suggested_replacement":null,"suggestion_applicability":null,"text":[]}]}}"#;
        let shown = c.line(line, Path::new("/w"), &RunTarget::Bin("webapp".into()));
        assert!(shown.unwrap().contains("nope"));
        assert_eq!(c.diagnostics.len(), 1);
        let d = &c.diagnostics[0];
        assert_eq!(
            (d.level.as_str(), d.file.as_deref(), d.line, d.column),
            ("error", Some("src/main.rs"), Some(3), Some(5))
        );
        let abort = line.replace(
            r#""message":"nope""#,
            r#""message":"aborting due to 1 previous error""#,
        );
        c.line(&abort, Path::new("/w"), &RunTarget::Bin("webapp".into()));
        assert_eq!(c.diagnostics.len(), 1, "the summary is not counted");
    }

    #[test]
    fn non_json_lines_are_kept() {
        let mut c = MessageCollector::default();
        assert_eq!(
            c.line(
                "thread 'main' panicked",
                Path::new("/"),
                &RunTarget::Bin("x".into())
            )
            .as_deref(),
            Some("thread 'main' panicked")
        );
    }

    #[test]
    fn status_lines() {
        assert!(is_cargo_status("   Compiling webapp v0.1.0 (/w)"));
        assert!(is_cargo_status(
            "error: could not compile `webapp` (bin \"webapp\") due to 1 previous error"
        ));
        assert!(!is_cargo_status(
            "error: failed to parse manifest at `/w/Cargo.toml`"
        ));
    }
}
