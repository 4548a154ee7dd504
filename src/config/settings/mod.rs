//! Resolved settings: the command line merged over the config file merged over the
//! defaults, with globs compiled, paths made absolute and durations parsed. Built once
//! at start and never changed; only `Settings` travels through the program.
//!
//! Merge rules: flags override the file, the file overrides defaults;
//! list-valued flags (`-w`, `-i`) add to the file's lists; `-- ARGS` replaces `run.args`.

mod build;
mod pipeline;
mod project;
mod read;
mod run;
mod serve;
mod ui;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

pub use build::{BuildSettings, CargoSelection};
pub use pipeline::{PipelineSettings, SidecarSettings, TaskSettings};
pub use run::RunSettings;
pub use serve::{ProxySettings, ReloadSettings};
pub use ui::{is_terminal, ui_mode_name, Ui, UiSettings};
pub use watch::{WatchSettings, DEFAULT_POLL};

use crate::config::cli::Cli;
use crate::config::file::{self as config, Loaded};
use crate::core::options::Options;
use crate::text::format_duration;
use read::Input;

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
    /// `[[on_change]]` and `[[sidecar]]`.
    pub pipeline: PipelineSettings,
    pub exit_after_builds: Option<u32>,
    /// What hotrun chose by itself for a project with no build or run command (a Go
    /// module), said once at start.
    pub detected: Option<String>,
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
            swap: crate::core::options::Swap::Restart,
            routes: false,
            tasks: self
                .pipeline
                .tasks
                .iter()
                .map(|t| {
                    (
                        t.name.clone(),
                        format!("{} on {:?}", t.run, t.paths.patterns),
                    )
                })
                .collect(),
            output_latency: Duration::from_millis(300) + self.watch.poll.unwrap_or_default() * 2,
            sidecars: self
                .pipeline
                .sidecars
                .iter()
                .map(|s| (s.name.clone(), s.restart))
                .collect(),
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
    let input = Input {
        cli,
        file,
        root: &root,
        cwd: &cwd,
    };
    let commands = project::resolve(&input, cargo_root)?;
    let build = build::resolve(&input, commands.build)?;
    let run = run::resolve(&input, commands.run)?;
    let timing = watch::timing(&input)?;
    check_limits(&input, &run, timing)?;
    let watch = watch::resolve(&input, commands.include, timing)?;
    let proxy = serve::proxy(&input)?;
    let reload = serve::reload(&input)?;
    let ui = ui::resolve(&input);
    let pipeline = pipeline::resolve(&input)?;
    Ok(Settings {
        pipeline,
        config_file: loaded.map(|l| l.path),
        cargo_root: commands.cargo_root,
        build,
        run,
        watch,
        proxy,
        reload,
        ui,
        exit_after_builds: cli.exit_after_builds,
        detected: commands.detected,
        cwd,
        root,
    })
}

/// The longest settle window…
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(10);
/// …polling interval…
pub const MAX_POLL: Duration = Duration::from_secs(60);
/// …stop timeout…
pub const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(300);
/// …and readiness or proxy wait hotrun accepts.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// Durations past the limits are mistakes (`debounce = "1h"` would mean no builds at
/// all): an error naming the key or flag.
fn check_limits(input: &Input, run: &RunSettings, timing: watch::Timing) -> Result<()> {
    let (cli, file) = (input.cli, input.file);
    let (r, w, fc) = (&file.config.run, &file.config.watch, &file.config);
    let (debounce, poll) = (timing.debounce, timing.poll);
    let (stop_timeout, ready_timeout) = (run.stop_timeout, run.ready_timeout);
    let proxy_timeout = serve::proxy_timeout(input)?;
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
    Ok(())
}

/// Go's `air` reads this file; hotrun does too, when there is no `.hotrun.toml`.
pub const AIR_FILE: &str = ".air.toml";

/// An `air` configuration by its name: `.air.toml`, `air.toml`, `*.air.toml`.
fn is_air_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "air.toml" || n.ends_with(".air.toml"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_file(text: &str) -> Result<Settings> {
        let loaded = config::parse(Path::new("c.toml"), text.into())?;
        let cli = <Cli as clap::Parser>::try_parse_from(["hotrun"])?;
        let site = PathBuf::from("/site");
        resolve(&cli, site.clone(), Some(site), Some(loaded))
    }

    // `[[on_change]]` and `[[sidecar]]` (`pipeline.rs`).
    fn resolve_with(text: &str, flags: &[&str]) -> Result<crate::config::settings::Settings> {
        let loaded = crate::config::file::parse(std::path::Path::new("c.toml"), text.into())?;
        let mut args = vec!["hotrun"];
        args.extend(flags);
        let cli = <crate::config::cli::Cli as clap::Parser>::try_parse_from(args)?;
        let site = PathBuf::from("/site");
        resolve(&cli, site.clone(), Some(site), Some(loaded))
    }

    fn error(text: &str, flags: &[&str]) -> String {
        format!("{:#}", resolve_with(text, flags).unwrap_err())
    }

    #[test]
    fn bad_sections_point_at_their_line() {
        assert_eq!(
            error("[[on_change]]\npaths = [\"a/**\"]\nrun = \" \"\n", &[]),
            "c.toml:3:7: `on_change[0].run`: is empty: name the command to run"
        );
        assert_eq!(
            error("[[on_change]]\npaths = []\nrun = \"x\"\n", &[]),
            "c.toml:2:9: `on_change[0].paths`: is empty: name the files whose changes run the command (globs)"
        );
        let twice = "[[on_change]]\npaths = [\"a\"]\nrun = \"x\"\nname = \"gen\"\n\
                     [[sidecar]]\nrun = \"y\"\nname = \"gen\"\n";
        assert_eq!(
            error(twice, &[]),
            "c.toml:7:8: `sidecar[0].name`: `gen` names another [[on_change]] or [[sidecar]] already"
        );
        assert!(error("[[on_change]]\nrun = \"x\"\n", &[]).contains("missing field `paths`"));
        assert!(
            error("[[sidecar]]\nrun = \"x\"\nrestart = \"sometimes\"\n", &[]).contains("restart")
        );
        assert_eq!(
            error("", &["--on-change", "styles/**"]),
            "--on-change styles/**: expected GLOB=CMD (for example 'styles/**=npx tailwindcss -i styles/app.css -o static/app.css')"
        );
        assert_eq!(
            error("", &["--on-change", "a[=x"]),
            "--on-change a[=x: invalid glob `a[`: unclosed character class; missing ']'"
        );
    }

    #[test]
    fn flags_add_to_the_file_s_commands() {
        let settings = resolve_with(
            "[[on_change]]\npaths = [\"styles/**\"]\nrun = \"npx tailwindcss -o static/a.css\"\n",
            &["--on-change", "**/*.templ=templ generate"],
        )
        .unwrap();
        let names: Vec<&str> = settings
            .pipeline
            .tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["tailwindcss", "templ"]);
        // A sidecar's outputs are where it runs.
        let web = std::env::temp_dir().join(format!("hotrun-sidecar-cwd-{}", std::process::id()));
        std::fs::create_dir_all(web.join("web")).unwrap();
        let loaded = config::parse(
            &web.join(".hotrun.toml"),
            "[[sidecar]]\nrun = \"esbuild --outdir=dist\"\ncwd = \"web\"\n".into(),
        )
        .unwrap();
        let cli = <Cli as clap::Parser>::try_parse_from(["hotrun"]).unwrap();
        let in_web = resolve(&cli, web.clone(), Some(web.clone()), Some(loaded)).unwrap();
        assert_eq!(in_web.pipeline.sidecars[0].outputs, ["/web/dist/"]);
        std::fs::remove_dir_all(&web).unwrap();
        assert_eq!(settings.pipeline.tasks[0].outputs, ["/static/a.css"]);
        assert!(settings.pipeline.tasks[1]
            .paths
            .set
            .is_match("views/x.templ"));
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
    fn durations_past_the_limits_are_errors_before_anything_else_of_watch() {
        // Far past the limit, still a duration: an error, never an overflow.
        let err = resolve_file("[watch]\ndebounce = \"2000000000000000000s\"\n").unwrap_err();
        assert!(
            format!("{err:#}").ends_with("is longer than hotrun allows (10s)"),
            "{err:#}"
        );
        // A bad glob as well: the duration is said first, as it always was.
        let err = resolve_file("[watch]\ndebounce = \"1m\"\nignore = [\"a[\"]\n").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "c.toml:2:12: `watch.debounce`: 60s is longer than hotrun allows (10s)"
        );
    }
}
