//! `[run]`: what runs the app, with what environment, where it listens, when it is
//! ready, how it is stopped and whether it is started again.

use std::time::Duration;

use anyhow::{anyhow, Result};

use super::read::{address_value, env_table, file_duration, Input};
use crate::config::file::{RestartValue, SwapValue};
use crate::config::values::{parse_address, parse_ready, parse_signal, Ready};
use crate::core::options::RestartPolicy;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How long a new app with no readiness check gets before it counts as ready.
pub const READY_GRACE: Duration = Duration::from_millis(200);

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
    /// Swaps may start the new generation beside the old one (`run.swap = "overlap"`,
    /// the default), where the way the app is served allows it.
    pub overlap: bool,
}

/// `[run]` and the serving flags; `cmd` is the run command decided for the project.
pub fn resolve(input: &Input, cmd: Option<String>) -> Result<RunSettings> {
    let (cli, file, root, cwd) = (input.cli, input.file, input.root, input.cwd);
    let r = &file.config.run;
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
    Ok(RunSettings {
        cmd,
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
            None => cwd.to_path_buf(),
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
        overlap: !matches!(r.swap, Some(SwapValue::Restart)),
    })
}
