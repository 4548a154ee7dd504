//! Resolved settings: the command line merged over the config file merged over the
//! defaults, with globs compiled, paths made absolute and durations parsed. Built once
//! at start and never changed; only `Settings` travels through the program.
//!
//! Merge rules (brief §1): flags override the file, the file overrides defaults;
//! list-valued flags (`-w`, `-i`) add to the file's lists; `-- ARGS` replaces `run.args`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use globset::{GlobSet, GlobSetBuilder};
use toml::Spanned;

use crate::config::cli::{Cli, ColorChoice, UiMode};
use crate::config::file::{
    self as config, AddressValue, DurationValue, Loaded, OnBusyValue, PollValue, RestartValue,
};
use crate::config::values::{parse_address, parse_duration, parse_ready, parse_signal, Ready};
use crate::core::classify::{build_glob, expand_glob, DEFAULT_ASSETS, DEFAULT_RESTART};
use crate::core::options::{OnBusy, Options, RestartPolicy};
use crate::text::format_duration;

pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(30);
pub const DEBOUNCE_CAP: Duration = Duration::from_secs(1);
/// How long a new app with no readiness check gets before it counts as ready.
pub const READY_GRACE: Duration = Duration::from_millis(200);
pub const DEFAULT_POLL: Duration = Duration::from_millis(500);
pub const DEFAULT_RELOAD_LISTEN: &str = "127.0.0.1:35729";

#[derive(Debug, Clone)]
pub struct Settings {
    /// Where hotrun was started.
    pub cwd: PathBuf,
    /// What relative paths and globs are relative to.
    pub root: PathBuf,
    pub config_file: Option<PathBuf>,
    /// The Cargo workspace root, when this is a Cargo project built by Cargo.
    pub cargo_root: Option<PathBuf>,
    pub build: BuildSettings,
    pub run: RunSettings,
    pub watch: WatchSettings,
    pub proxy: Option<ProxySettings>,
    pub reload: ReloadSettings,
    pub ui: UiSettings,
    pub exit_after_builds: Option<u32>,
    /// What hotrun chose by itself for a project with no build or run command (a Go
    /// module), said once at start.
    pub detected: Option<String>,
}

/// Compiled globs and the patterns they came from (to print them back).
#[derive(Debug, Clone)]
pub struct Globs {
    pub patterns: Vec<String>,
    pub set: GlobSet,
}

#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub listen: SocketAddr,
    pub app: Option<SocketAddr>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ReloadSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub hosts: Vec<String>,
    pub origins: Vec<String>,
}

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

#[derive(Debug, Clone)]
pub struct RunSettings {
    pub cmd: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub env_files: Vec<PathBuf>,
    pub cwd: PathBuf,
    pub listen: Vec<SocketAddr>,
    pub ready: Option<Ready>,
    pub ready_timeout: Duration,
    /// With no readiness check, a new app counts as ready this long after it started.
    pub ready_grace: Duration,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    pub restart: RestartPolicy,
}

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

impl Settings {
    /// What the state machine needs of these settings. `probe` is set once the sockets
    /// are bound (whether there is a readiness check depends on them).
    pub fn options(&self) -> Options {
        Options {
            debounce: self.watch.debounce,
            debounce_cap: self.watch.debounce_cap,
            on_busy: self.build.on_busy,
            restart: self.run.restart,
            ready_grace: self.run.ready_grace,
            probe: false,
            ready_timeout: self.run.ready_timeout,
            exit_after_builds: self.exit_after_builds,
        }
    }

    /// Read the config file (found or named) and merge the command line over it.
    pub fn load(cli: &Cli) -> Result<Settings> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let cargo_root = locate_cargo_workspace(&cwd);
        let config_path = match &cli.project.config {
            Some(path) => {
                let path = cwd.join(path);
                if !path.is_file() {
                    bail!("config file {} does not exist", path.display());
                }
                Some(path)
            }
            None => config::discover(&cwd, cargo_root.as_deref()),
        };
        // An air project as it is: its `.air.toml`, converted in memory.
        let config_path = config_path.or_else(|| {
            let air = cwd.join(AIR_FILE);
            (cargo_root.is_none() && air.is_file()).then_some(air)
        });
        let mut air_note = None;
        let loaded = match &config_path {
            Some(path) if is_air_file(path) => {
                let converted = crate::config::air::convert(path)?;
                let loaded = config::parse(path, converted.text).with_context(|| {
                    format!(
                        "{} converted does not load (please report this)",
                        path.display()
                    )
                })?;
                let dropped = match converted.unmapped.len() {
                    0 => String::new(),
                    n => format!("; {n} of its keys have no counterpart (`hotrun init --from-air` lists them)"),
                };
                air_note = Some(format!(
                    "using {} as hotrun settings (run `hotrun init --from-air` to keep a {}){dropped}",
                    path.display(),
                    config::FILE_NAME
                ));
                Some(loaded)
            }
            Some(path) => Some(config::load(path)?),
            None => None,
        };
        let mut settings = resolve(cli, cwd, cargo_root, loaded)?;
        if air_note.is_some() {
            settings.detected = air_note;
        }
        Ok(settings)
    }
}

/// The settings for `cli` over the config file `loaded` (already read), without reading
/// any file.
pub(crate) fn resolve(
    cli: &Cli,
    cwd: PathBuf,
    cargo_root: Option<PathBuf>,
    loaded: Option<Loaded>,
) -> Result<Settings> {
    let root = match (&loaded, &cargo_root) {
        (Some(l), _) => l
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.clone()),
        (None, Some(r)) => r.clone(),
        (None, None) => cwd.clone(),
    };
    let empty = Loaded {
        path: PathBuf::from(config::FILE_NAME),
        text: String::new(),
        config: Default::default(),
    };
    let file = loaded.as_ref().unwrap_or(&empty);
    let fc = &file.config;
    let (b, r, w, u) = (&fc.build, &fc.run, &fc.watch, &fc.ui);

    let command = |flag: &Option<String>, key: &str, value: &Option<Spanned<String>>| {
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
    };
    let mut build_cmd = command(&cli.project.build_cmd, "build.cmd", &b.cmd)?;
    let mut run_cmd = command(&cli.project.run_cmd, "run.cmd", &r.cmd)?;
    // No Cargo.toml and no commands: a project of a language hotrun knows.
    let mut detected = None;
    let mut default_include: &[&str] = &[];
    if cargo_root.is_none() && build_cmd.is_none() && run_cmd.is_none() {
        if let Some(found) = detect(&root) {
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
    let build = BuildSettings {
        cmd: build_cmd,
        before: b.before.clone().unwrap_or_default(),
        outputs,
        cargo,
        cargo_positions,
        on_busy: match b.on_busy {
            Some(OnBusyValue::Queue) => OnBusy::Queue,
            _ => OnBusy::Restart,
        },
        env: env_table(file, "build.env", &b.env)?,
    };

    let stop_signal = match &r.stop_signal {
        Some(s) => {
            parse_signal(s.get_ref()).map_err(|e| file.error_at(s.span(), "run.stop_signal", &e))?
        }
        None => libc::SIGTERM,
    };
    let stop_timeout =
        file_duration(file, "run.stop_timeout", &r.stop_timeout)?.unwrap_or(Duration::from_secs(5));
    let mut listen = Vec::new();
    for a in r.listen.iter().flatten() {
        listen.push(
            address_value(a.get_ref()).map_err(|e| file.error_at(a.span(), "run.listen", &e))?,
        );
    }
    for a in &cli.serve.listen {
        listen.push(parse_address(a).map_err(|e| anyhow!("--listen: {e}"))?);
    }
    let ready = match (&cli.serve.ready, &r.ready) {
        (Some(text), _) => Some(parse_ready(text).map_err(|e| anyhow!("--ready: {e}"))?),
        (None, Some(s)) => {
            Some(parse_ready(s.get_ref()).map_err(|e| file.error_at(s.span(), "run.ready", &e))?)
        }
        (None, None) => None,
    };
    let ready_timeout = file_duration(file, "run.ready_timeout", &r.ready_timeout)?
        .unwrap_or(Duration::from_secs(30));
    let run = RunSettings {
        cmd: run_cmd,
        args: if cli.app_args.is_empty() {
            r.args.clone().unwrap_or_default()
        } else {
            cli.app_args.clone()
        },
        env: env_table(file, "run.env", &r.env)?,
        env_files: r
            .env_file
            .clone()
            .map(|f| f.into_vec())
            .unwrap_or_default()
            .iter()
            .map(|f| root.join(f))
            .collect(),
        cwd: match &r.cwd {
            Some(dir) if !root.join(dir.get_ref()).is_dir() => {
                return Err(file.error_at(
                    dir.span(),
                    "run.cwd",
                    &format!(
                        "the directory {} does not exist",
                        root.join(dir.get_ref()).display()
                    ),
                ))
            }
            Some(dir) => root.join(dir.get_ref()),
            None => cwd.clone(),
        },
        listen,
        ready,
        ready_timeout,
        ready_grace: READY_GRACE,
        stop_signal,
        stop_timeout,
        restart: match r.restart {
            Some(RestartValue::OnFailure) => RestartPolicy::OnFailure,
            Some(RestartValue::Always) => RestartPolicy::Always,
            _ => RestartPolicy::Never,
        },
    };

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
    let proxy_timeout = proxy_timeout_value(file, &fc.proxy)?;
    // Values past these are mistakes (`debounce = "1h"` would mean no builds at all).
    let longest = [
        (
            "watch.debounce",
            cli.watch.debounce.as_ref().map(|_| "--debounce"),
            w.debounce.as_ref().map(|d| d.span()),
            Some(debounce),
            MAX_DEBOUNCE,
        ),
        (
            "watch.poll",
            cli.watch.poll.as_ref().map(|_| "--poll"),
            w.poll.as_ref().map(|p| p.span()),
            poll,
            MAX_POLL,
        ),
        (
            "run.stop_timeout",
            None,
            r.stop_timeout.as_ref().map(|d| d.span()),
            Some(stop_timeout),
            MAX_STOP_TIMEOUT,
        ),
        (
            "run.ready_timeout",
            None,
            r.ready_timeout.as_ref().map(|d| d.span()),
            Some(ready_timeout),
            MAX_WAIT,
        ),
        (
            "proxy.timeout",
            None,
            fc.proxy.timeout.as_ref().map(|d| d.span()),
            Some(proxy_timeout),
            MAX_WAIT,
        ),
    ];
    for (key, flag, span, value, max) in longest {
        if value.is_some_and(|v| v > max) {
            let message = format!(
                "{} is longer than hotrun allows ({})",
                format_duration(value.unwrap_or_default()),
                format_duration(max)
            );
            return Err(match (flag, span) {
                (Some(flag), _) => anyhow!("{flag}: {message}"),
                (None, Some(span)) => file.error_at(span, key, &message),
                (None, None) => anyhow!("`{key}`: {message}"),
            });
        }
    }
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
        None if !default_include.is_empty() => Some(compile_globs(
            file,
            "watch.include",
            None,
            &[],
            default_include,
        )?),
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
    let watch = WatchSettings {
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
        debounce_cap: DEBOUNCE_CAP.max(debounce * 10),
        poll,
    };

    let p = &fc.proxy;
    let proxy_listen = match (&cli.serve.proxy, &p.listen) {
        (Some(text), _) => Some(parse_address(text).map_err(|e| anyhow!("--proxy: {e}"))?),
        (None, Some(a)) => Some(
            address_value(a.get_ref()).map_err(|e| file.error_at(a.span(), "proxy.listen", &e))?,
        ),
        (None, None) => None,
    };
    let proxy_app = match (&cli.serve.app, &p.app) {
        (Some(text), _) => Some(parse_address(text).map_err(|e| anyhow!("--app: {e}"))?),
        (None, Some(a)) => {
            Some(address_value(a.get_ref()).map_err(|e| file.error_at(a.span(), "proxy.app", &e))?)
        }
        (None, None) => None,
    };
    if proxy_app.is_some() && proxy_listen.is_none() {
        let span = p.app.as_ref().map(|a| a.span()).unwrap_or(0..0);
        return Err(file.error_at(
            span,
            "proxy.app",
            "needs `proxy.listen` (or --proxy) as well",
        ));
    }
    let proxy = proxy_listen.map(|listen| ProxySettings {
        listen,
        app: proxy_app,
        timeout: proxy_timeout,
    });

    let rl = &fc.reload;
    let reload_listen = match &rl.listen {
        Some(a) => {
            address_value(a.get_ref()).map_err(|e| file.error_at(a.span(), "reload.listen", &e))?
        }
        None => parse_address(DEFAULT_RELOAD_LISTEN).expect("the default address parses"),
    };
    let reload = ReloadSettings {
        enabled: !cli.serve.no_reload && rl.enabled.unwrap_or(true),
        listen: reload_listen,
        hosts: rl.hosts.clone().unwrap_or_default(),
        origins: rl.origins.clone().unwrap_or_default(),
    };

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

    Ok(Settings {
        cwd,
        root,
        config_file: loaded.map(|l| l.path),
        cargo_root,
        build,
        run,
        watch,
        proxy,
        reload,
        ui: UiSettings {
            mode,
            requested_mode,
            color,
            requested_color,
            clear_on_rebuild,
            verbose: cli.output.verbose,
        },
        exit_after_builds: cli.exit_after_builds,
        detected,
    })
}

/// Go's `air` reads this file; hotrun does too, when there is no `.hotrun.toml`.
pub const AIR_FILE: &str = ".air.toml";

/// An `air` configuration by its name: `.air.toml`, `air.toml`, `*.air.toml`.
fn is_air_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "air.toml" || n.ends_with(".air.toml"))
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

/// One warning per address hotrun listens on that is not loopback: who can reach it.
pub fn exposed(settings: &Settings) -> Vec<String> {
    let mut bound: Vec<(&str, SocketAddr)> = settings
        .run
        .listen
        .iter()
        .map(|a| ("run.listen", *a))
        .collect();
    if let Some(proxy) = &settings.proxy {
        bound.push(("proxy.listen", proxy.listen));
    }
    if settings.reload.enabled && settings.proxy.is_none() {
        bound.push(("reload.listen", settings.reload.listen));
    }
    bound
        .into_iter()
        .filter(|(_, addr)| !addr.ip().is_loopback())
        .map(|(key, addr)| {
            let who = if addr.ip().is_unspecified() {
                "every network this machine is on"
            } else {
                "the network of that address"
            };
            format!(
                "`{key}` {addr} is not a loopback address: anyone on {who} can reach it on port {}",
                addr.port()
            )
        })
        .collect()
}

/// Both stdin (keys) and stdout (the panel) are a terminal.
pub fn is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::io::IsTerminal::is_terminal(&std::io::stdin())
}

fn address_value(value: &AddressValue) -> Result<SocketAddr, String> {
    match value {
        AddressValue::Port(p) => u16::try_from(*p)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .map_err(|_| format!("invalid port {p}")),
        AddressValue::Text(t) => parse_address(t),
    }
}

/// The Cargo workspace root above `cwd`, if there is a Cargo.toml at all.
fn locate_cargo_workspace(cwd: &Path) -> Option<PathBuf> {
    cwd.ancestors().find(|d| d.join("Cargo.toml").is_file())?;
    let out =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["locate-project", "--workspace", "--message-format", "plain"])
            .current_dir(cwd)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
    if !out.status.success() {
        // A broken manifest: let cargo metadata report it properly later.
        return cwd
            .ancestors()
            .find(|d| d.join("Cargo.toml").is_file())
            .map(Path::to_path_buf);
    }
    let manifest = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    manifest.parent().map(Path::to_path_buf)
}

/// An `env` table, its names checked: not empty, no `=`, no NUL (the OS could not
/// pass them on).
fn env_table(
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

fn proxy_timeout_value(file: &Loaded, p: &crate::config::file::ProxyFile) -> Result<Duration> {
    Ok(file_duration(file, "proxy.timeout", &p.timeout)?.unwrap_or(Duration::from_secs(30)))
}

/// The longest settle window…
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(10);
/// …polling interval…
pub const MAX_POLL: Duration = Duration::from_secs(60);
/// …stop timeout…
pub const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(300);
/// …and readiness or proxy wait hotrun accepts.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

fn file_duration(
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

fn duration_value(value: &DurationValue) -> Result<Duration, String> {
    match value {
        DurationValue::Millis(ms) => Ok(Duration::from_millis(*ms)),
        DurationValue::Text(text) => parse_duration(text),
    }
}

/// Compile glob patterns relative to the project root: the file's list (or `default`
/// when the file has none) plus the flags'. A pattern without `/` matches a name at any
/// depth (as in .gitignore); `dir/**` also matches `dir` itself so the directory is
/// pruned as a whole.
fn compile_globs(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_file(text: &str) -> Result<Settings> {
        let loaded = config::parse(Path::new("c.toml"), text.into())?;
        let cli = <Cli as clap::Parser>::try_parse_from(["hotrun"])?;
        let site = PathBuf::from("/site");
        resolve(&cli, site.clone(), Some(site), Some(loaded))
    }

    #[test]
    fn values_out_of_range_point_at_the_file() {
        let err = resolve_file("[watch]\npoll = \"5ms\"\n").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "c.toml:2:8: `watch.poll`: the polling interval must be at least 10ms"
        );
        let err = resolve_file("[watch]\ndebounce = \"99999999999999999999h\"\n").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "c.toml:2:12: `watch.debounce`: duration `99999999999999999999h` is too long"
        );
    }

    #[test]
    fn globs_without_slash_match_at_any_depth() {
        let set = |p: &str| {
            let mut b = GlobSetBuilder::new();
            for g in expand_glob(p) {
                b.add(build_glob(&g).unwrap());
            }
            b.build().unwrap()
        };
        assert!(set("*.log").is_match("a/b/c.log"));
        assert!(set("*.log").is_match("c.log"));
        assert!(!set("/*.log").is_match("a/c.log"));
        assert!(!set("src/*.rs").is_match("src/a/b.rs"));
        assert!(set("src/**/*.rs").is_match("src/a/b.rs"));
        assert!(set("data/**").is_match("data"));
        assert!(set("data/").is_match("data/x/y"));
    }
}
