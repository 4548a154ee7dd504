//! Builds by command (`build.before`, then `build.cmd`): how they run, and what their
//! output says when they fail.

use std::ffi::OsString;
use std::time::Instant;

use super::locations::locations;
use super::outcome::{build_outcome, first_line};
use crate::config::settings::Settings;
use crate::core::event::{BuildOutcome, Diagnostic};
use crate::process::client::Spec;

/// `build.before` then `build.cmd`, each through its own `sh -c`, stopping at the
/// first failure; `None` when there is nothing to run.
pub fn spec(settings: &Settings, env: Vec<(OsString, OsString)>) -> Option<Spec> {
    let mut steps: Vec<String> = settings.build.before.clone();
    steps.extend(settings.build.cmd.clone());
    if steps.is_empty() {
        return None;
    }
    // Each step through its own `sh -c`, stopping at the first failure.
    let script = (1..=steps.len())
        .map(|i| format!("sh -c \"${i}\""))
        .collect::<Vec<_>>()
        .join(" && ");
    let mut args: Vec<OsString> = vec!["-c".into(), script.into(), "sh".into()];
    args.extend(steps.into_iter().map(OsString::from));
    Some(Spec {
        program: "sh".into(),
        args,
        env,
        cwd: settings.root.clone(),
        stop_signal: libc::SIGTERM,
        stop_timeout: std::time::Duration::from_millis(500),
        stdin: false,
        listen_fds: Vec::new(),
    })
}

/// A build command's whole output, and the `path:line:col:` locations in it.
pub fn outcome(transcript: String, success: bool, started: Instant) -> BuildOutcome {
    let mut diagnostics = Vec::new();
    if !success {
        let found = locations(&transcript);
        // The whole output is kept; it counts as the error only when no
        // `path:line:col:` location says more precisely what went wrong.
        diagnostics.push(Diagnostic {
            level: if found.is_empty() { "error" } else { "note" }.into(),
            message: first_line(&transcript),
            rendered: transcript.clone(),
            file: None,
            line: None,
            column: None,
        });
        diagnostics.extend(found);
    }
    build_outcome(success, started, diagnostics, None)
}
