//! `[build]`: the build command or what Cargo is told, what the build writes, what
//! happens to a save during a build.

use std::path::PathBuf;

use anyhow::Result;
use toml::Spanned;

use super::read::{compile_globs, env_table, Globs, Input};
use crate::config::file::{self as config, OnBusyValue};
use crate::core::options::OnBusy;

#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub cmd: Option<String>,
    pub before: Vec<String>,
    /// Files the build writes: never watched.
    pub outputs: Globs,
    pub cargo: CargoSelection,
    /// Where the config file named a package, bin or example: (key, value, `file:line:col`).
    pub cargo_positions: Vec<(&'static str, String, String)>,
    pub on_busy: OnBusy,
    pub env: Vec<(String, String)>,
}

/// What `cargo run` would be told.
#[derive(Debug, Clone, Default)]
pub struct CargoSelection {
    pub package: Option<String>,
    pub bin: Option<String>,
    pub example: Option<String>,
    pub release: bool,
    pub profile: Option<String>,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    pub target_dir: Option<PathBuf>,
    pub cargo_args: Vec<String>,
}

/// `[build]` and the Cargo flags; `cmd` is the build command decided for the project.
pub fn resolve(input: &Input, cmd: Option<String>) -> Result<BuildSettings> {
    let (cli, file, root, cwd) = (input.cli, input.file, input.root, input.cwd);
    let b = &file.config.build;
    let mut features: Vec<String> = b.features.clone().map(|f| f.into_vec()).unwrap_or_default();
    features.extend(cli.cargo.features.iter().cloned());
    let features = features
        .iter()
        .flat_map(|f| f.split([',', ' ']))
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    let release = cli.cargo.release || b.release.unwrap_or(false);
    let profile = cli.cargo.profile.clone().or_else(|| {
        if cli.cargo.release {
            None
        } else {
            b.profile.clone()
        }
    });
    let from_file = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
    let cargo = CargoSelection {
        package: cli.cargo.package.clone().or_else(|| from_file(&b.package)),
        bin: cli.cargo.bin.clone().or_else(|| {
            if cli.cargo.example.is_some() {
                None
            } else {
                from_file(&b.bin)
            }
        }),
        example: cli.cargo.example.clone().or_else(|| {
            if cli.cargo.bin.is_some() {
                None
            } else {
                from_file(&b.example)
            }
        }),
        release: release && profile.is_none(),
        profile,
        features,
        all_features: cli.cargo.all_features || b.all_features.unwrap_or(false),
        no_default_features: cli.cargo.no_default_features
            || b.no_default_features.unwrap_or(false),
        target_dir: cli
            .cargo
            .target_dir
            .as_ref()
            .map(|p| cwd.join(p))
            .or_else(|| b.target_dir.as_ref().map(|p| root.join(p))),
        cargo_args: b.cargo_args.clone().unwrap_or_default(),
    };
    if cargo.bin.is_some() && cargo.example.is_some() {
        let span = b.example.as_ref().map(|s| s.span()).unwrap_or(0..0);
        return Err(file.error_at(
            span,
            "build.example",
            "`build.bin` and `build.example` cannot both be set",
        ));
    }

    let outputs = compile_globs(file, "build.outputs", b.outputs.as_deref(), &[], &[])?;
    let mut cargo_positions = Vec::new();
    for (key, value, flag) in [
        ("build.package", &b.package, &cli.cargo.package),
        ("build.bin", &b.bin, &cli.cargo.bin),
        ("build.example", &b.example, &cli.cargo.example),
    ] {
        if let (Some(v), None) = (value, flag) {
            let (line, column) = config::line_column(&file.text, v.span().start);
            let position = format!("{}:{line}:{column}", file.path.display());
            cargo_positions.push((key, v.get_ref().clone(), position));
        }
    }
    Ok(BuildSettings {
        cmd,
        before: b.before.clone().unwrap_or_default(),
        outputs,
        cargo,
        cargo_positions,
        on_busy: match b.on_busy {
            Some(OnBusyValue::Queue) => OnBusy::Queue,
            _ => OnBusy::Restart,
        },
        env: env_table(file, "build.env", &b.env)?,
    })
}
