//! The command line, as clap parses it: raw input only. Nothing here is resolved or
//! validated beyond its shape; `settings` merges it with the config file.

use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  hotrun                          build, run and watch the Cargo app here
  hotrun init                     write a commented .hotrun.toml with every default
  hotrun init --from-air          convert a Go air project's .air.toml
  hotrun --release config         print the effective configuration
  hotrun -- --port 3000           arguments after -- go to the app, as with cargo run
  hotrun --bin api --release      pick the binary and profile like cargo run
  hotrun --build-cmd 'go build -o app .' --run-cmd ./app
  hotrun --ui json                one JSON event per line, for editors and tools

Exit codes:
  0  quit on request (q, Ctrl-C, SIGTERM, or `quit` on stdin in --ui json)
  1  hotrun failed while running (lost its watcher, …)
  2  usage or configuration error: nothing was started";

/// A development hot-reload runner for web apps: builds, runs, watches and swaps.
#[derive(Debug, Clone, Parser)]
#[command(name = "hotrun", version, about, after_help = EXAMPLES, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Subcommand>,

    #[command(flatten)]
    pub cargo: CargoArgs,

    #[command(flatten)]
    pub project: ProjectArgs,

    #[command(flatten)]
    pub watch: WatchArgs,

    #[command(flatten)]
    pub serve: ServeArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Quit after this many builds finished and the app settled (for tests).
    #[arg(long, hide = true, value_name = "N")]
    pub exit_after_builds: Option<u32>,

    /// Arguments for the app (replace `run.args`).
    #[arg(last = true, value_name = "ARGS")]
    pub app_args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cargo options (as for cargo run)")]
pub struct CargoArgs {
    /// Package to run.
    #[arg(short = 'p', long, value_name = "SPEC")]
    pub package: Option<String>,
    /// Binary to run.
    #[arg(long, value_name = "NAME", conflicts_with = "example")]
    pub bin: Option<String>,
    /// Example to run.
    #[arg(long, value_name = "NAME")]
    pub example: Option<String>,
    /// Build in release mode.
    #[arg(long, conflicts_with = "profile")]
    pub release: bool,
    /// Build with this profile.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Features to activate (comma or space separated; repeatable).
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Activate all features.
    #[arg(long)]
    pub all_features: bool,
    /// Do not activate the default feature.
    #[arg(long)]
    pub no_default_features: bool,
    /// Directory for build artifacts.
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Project")]
pub struct ProjectArgs {
    /// Config file to use instead of the nearest .hotrun.toml.
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Build command, run through `sh -c` (replaces cargo build).
    #[arg(long, value_name = "CMD")]
    pub build_cmd: Option<String>,
    /// Run command, run through `sh -c` (replaces running the Cargo binary).
    #[arg(long, value_name = "CMD")]
    pub run_cmd: Option<String>,
    /// Run CMD (through `sh -c`) when files matching GLOB change, without touching the
    /// app (repeatable; adds to `[[on_change]]`).
    #[arg(long, value_name = "GLOB=CMD")]
    pub on_change: Vec<String>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Watching")]
pub struct WatchArgs {
    /// Also watch this path (repeatable; adds to `watch.paths`).
    #[arg(short = 'w', long = "watch", value_name = "PATH")]
    pub watch: Vec<PathBuf>,
    /// Ignore paths matching this glob (repeatable; adds to `watch.ignore`).
    #[arg(short = 'i', long = "ignore", value_name = "GLOB")]
    pub ignore: Vec<String>,
    /// Settle window after the last change before building (e.g. 30ms, 1s).
    #[arg(long, value_name = "DUR")]
    pub debounce: Option<String>,
    /// Poll for changes instead of using OS notifications [default interval: 500ms].
    #[arg(long, value_name = "DUR", num_args = 0..=1, default_missing_value = "")]
    pub poll: Option<String>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Serving")]
pub struct ServeArgs {
    /// Bind this address once and pass the socket to every app generation
    /// (socket activation; repeatable; adds to `run.listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Serve this public address through hotrun's proxy.
    #[arg(long, value_name = "ADDR")]
    pub proxy: Option<String>,
    /// The app's own address behind the proxy.
    #[arg(long, value_name = "ADDR")]
    pub app: Option<String>,
    /// How to tell the app is ready: tcp:ADDR or http:URL.
    #[arg(long, value_name = "PROBE")]
    pub ready: Option<String>,
    /// Do not tell browsers to reload.
    #[arg(long)]
    pub no_reload: bool,
}

/// What to do instead of running.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Subcommand {
    /// Write a commented .hotrun.toml with every key and its default.
    Init {
        /// Overwrite an existing .hotrun.toml.
        #[arg(long)]
        force: bool,
        /// Convert a Go `air` configuration instead [default FILE: .air.toml].
        #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = ".air.toml")]
        from_air: Option<PathBuf>,
    },
    /// Print the effective configuration (defaults, file and flags) as TOML.
    Config,
    /// Print a completion script for a shell.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// How to show progress [default: auto: panel on a terminal, else plain].
    #[arg(long, value_enum, value_name = "MODE")]
    pub ui: Option<UiMode>,
    /// When to use colours.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
    /// Say more (classification of every change).
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UiMode {
    Auto,
    Panel,
    Plain,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_flags_accumulate_and_single_flags_take_the_last_value() {
        let cli = Cli::try_parse_from([
            "hotrun", "-i", "a/**", "-i", "b", "--ui", "json", "--ui", "plain", "--", "--port",
            "3000",
        ])
        .unwrap();
        assert_eq!(cli.watch.ignore, vec!["a/**", "b"]);
        assert_eq!(cli.output.ui, Some(UiMode::Plain));
        assert_eq!(cli.app_args, vec!["--port", "3000"]);
    }

    #[test]
    fn poll_takes_an_optional_interval() {
        assert_eq!(
            Cli::try_parse_from(["hotrun", "--poll"])
                .unwrap()
                .watch
                .poll
                .as_deref(),
            Some("")
        );
        assert_eq!(
            Cli::try_parse_from(["hotrun", "--poll", "1s"])
                .unwrap()
                .watch
                .poll
                .as_deref(),
            Some("1s")
        );
        assert!(Cli::try_parse_from(["hotrun", "--bin", "a", "--example", "b"]).is_err());
    }
}
