//! `--ui json`: one object per line with `event` and `ts_ms`, for editors and tools.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::config::settings::UiSettings;
use crate::core::event::{Report, PATHS_MAX};
use crate::text::{shown, strip_ansi};

/// The JSON object for `report`; none for what JSON leaves out (info lines).
pub fn json(report: &Report, settings: &UiSettings) -> Option<Value> {
    let (event, mut fields) = match report {
        Report::Watching {
            roots,
            directories,
            polling,
        } => (
            "watching",
            with_paths(
                json!({ "directories": directories, "polling_ms": polling.map(|p| p.as_millis() as u64) }),
                "roots",
                roots,
            ),
        ),
        Report::Change { paths, count, kind } => {
            let mut fields = with_paths(json!({ "kind": kind }), "paths", paths);
            fields["count"] = json!(count);
            ("change", fields)
        }
        Report::BuildStarted { files } => ("build_started", with_paths(json!({}), "files", files)),
        Report::BuildFinished { outcome } => {
            let diagnostics = diagnostics(outcome, settings);
            (
                "build_finished",
                json!({
                    "ok": outcome.ok,
                    "duration_ms": outcome.duration.as_millis() as u64,
                    "errors": outcome.errors(),
                    "warnings": outcome.warnings(),
                    "diagnostics": diagnostics,
                }),
            )
        }
        Report::BuildCancelled => ("build_cancelled", json!({})),
        Report::AppStarted { pid } => ("app_started", json!({ "pid": pid })),
        Report::AppReady { after } => {
            ("app_ready", json!({ "after_ms": after.as_millis() as u64 }))
        }
        Report::AppExited {
            status,
            requested,
            output,
            rolled_back,
        } => {
            let output: Vec<String> = output.iter().map(|l| shown(l, settings.color)).collect();
            (
                "app_exited",
                json!({ "code": status.code, "signal": status.signal, "requested": requested, "rolled_back": rolled_back, "output": output }),
            )
        }
        Report::Output { stream, line } => (
            "output",
            json!({ "stream": stream, "line": shown(line, settings.color) }),
        ),
        Report::ToolOutput {
            sidecar,
            name,
            line,
        } => (
            "output",
            json!({ "stream": if *sidecar { "sidecar" } else { "task" }, "name": name, "line": shown(line, settings.color) }),
        ),
        Report::TaskStarted { name, files } => (
            "task_started",
            with_paths(json!({ "name": name }), "files", files),
        ),
        Report::TaskFinished { name, outcome } => (
            "task_finished",
            json!({
                "name": name,
                "ok": outcome.ok,
                "duration_ms": outcome.duration.as_millis() as u64,
                "diagnostics": diagnostics(outcome, settings),
            }),
        ),
        Report::TaskCancelled { name } => ("task_cancelled", json!({ "name": name })),
        Report::SidecarStarted { name, pid } => {
            ("sidecar_started", json!({ "name": name, "pid": pid }))
        }
        Report::SidecarExited {
            name,
            status,
            requested,
            output,
            restart_in,
        } => {
            let output: Vec<String> = output.iter().map(|l| shown(l, settings.color)).collect();
            (
                "sidecar_exited",
                json!({
                    "name": name,
                    "code": status.code,
                    "signal": status.signal,
                    "requested": requested,
                    "output": output,
                    "restart_in_ms": restart_in.map(|d| d.as_millis() as u64),
                }),
            )
        }
        Report::ReloadSent { kind, clients } => {
            ("reload_sent", json!({ "kind": kind, "clients": clients }))
        }
        Report::Error { message } => ("error", json!({ "message": message })),
        Report::Urls { urls } => {
            let mut fields = json!({});
            for (what, url) in urls {
                fields[*what] = json!(url);
            }
            ("urls", fields)
        }
        Report::Info { .. } => return None,
    };
    fields["event"] = json!(event);
    fields["ts_ms"] = json!(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64));
    Some(fields)
}

/// An outcome's diagnostics, their rendered text without colours unless colour is on.
fn diagnostics(outcome: &crate::core::event::BuildOutcome, settings: &UiSettings) -> Vec<Value> {
    outcome
        .diagnostics
        .iter()
        .map(|d| {
            let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
            if !settings.color {
                v["rendered"] = Value::String(strip_ansi(&d.rendered));
            }
            v
        })
        .collect()
}

/// Paths in JSON: `name` holds them as strings, a name that is not UTF-8 with U+FFFD
/// where its bad bytes were (never a panic). When any is not UTF-8, `name_base64` holds
/// every path's exact bytes, base64, in the same order, for tools that need the file.
/// Lists longer than [`PATHS_MAX`] are cut there (the event's `count` says how
/// many there were).
fn with_paths(mut fields: Value, name: &str, paths: &[std::path::PathBuf]) -> Value {
    use std::os::unix::ffi::OsStrExt;
    let paths = &paths[..paths.len().min(PATHS_MAX)];
    fields[name] = paths
        .iter()
        .map(|p| Value::String(p.to_string_lossy().into_owned()))
        .collect();
    if paths.iter().any(|p| p.to_str().is_none()) {
        fields[format!("{name}_base64")] = paths
            .iter()
            .map(|p| Value::String(data_encoding::BASE64.encode(p.as_os_str().as_bytes())))
            .collect();
    }
    fields
}
