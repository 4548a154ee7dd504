//! Beyond Cargo: a Go app (standard library only) and a move over from air.

use hotrun_support::http::{assert_no_failures_and_no_wait_for_a_build, ts, Hammer};
use hotrun_support::*;

/// The Go fixture, or `None` (loudly) where Go is not installed; under CI a missing Go
/// is a failure.
fn go_app() -> Option<TempDir> {
    if std::process::Command::new("go")
        .arg("version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "Go is missing: .ci/run must install golang-go"
        );
        eprintln!("SKIPPED: the Go tests need `go` (Debian's golang-go)");
        return None;
    }
    Some(fixture("goapp"))
}

/// hotrun on the Go fixture in `dir` as it is: it serves v1, then v2 after an edit.
fn runs_and_swaps(dir: &std::path::Path) {
    let port = free_port();
    let mut h = go(dir).port(port).start();
    h.wait("app_ready");
    wait_http(port, "v1", &h);
    edit(&dir.join("main.go"), "\"v1\"", "\"v2\"");
    wait_http(port, "v2", &h);
}

fn go(dir: &std::path::Path) -> Builder {
    // Never download a toolchain.
    hotrun(dir).env("GOTOOLCHAIN", "local")
}

#[test]
fn a_go_app_rebuilds_swaps_and_reports_errors_with_locations() {
    let Some(app) = go_app() else { return };
    let port = free_port();
    let mut h = go(app.path()).port(port).start();
    h.wait("app_ready");
    wait_http(port, "v1", &h);
    let main = app.path().join("main.go");
    edit(&main, "const version = \"v1\"", "const version = \"v2\"");
    wait_http(port, "v2", &h);

    edit(&main, "const version = \"v2\"", "const version = \"v2\" +");
    let failed = h.wait_for("build_finished", |e| e["ok"] == false);
    let diags = failed["diagnostics"].as_array().unwrap();
    let located = diags
        .iter()
        .find(|d| d["file"] == "main.go")
        .unwrap_or_else(|| h.fail(&format!("no main.go diagnostic: {failed}")));
    assert!(
        located["line"].as_u64().is_some() && located["column"].as_u64().is_some(),
        "{located}"
    );
    assert_eq!(
        failed["errors"], 1,
        "the located error counts, the raw output beside it does not: {failed}"
    );
    for _ in 0..10 {
        assert_eq!(
            http_get(port).as_deref(),
            Some("v2"),
            "the old app keeps serving"
        );
    }
}

#[test]
fn a_go_app_behind_the_proxy_and_with_socket_passing_never_fails_a_request() {
    for mode in ["--proxy", "--listen"] {
        let Some(app) = go_app() else { return };
        let port = free_port();
        let mut h = go(app.path()).args(&[mode, &port.to_string()]).start();
        h.wait("app_ready");
        wait_http(port, "v1", &h);
        let hammer = Hammer::start(port);
        let main = app.path().join("main.go");
        let mut builds = Vec::new();
        for n in 2..=3 {
            edit(&main, &format!("\"v{}\"", n - 1), &format!("\"v{n}\""));
            let started = h.wait("build_started");
            let finished = h.wait("build_finished");
            h.wait("app_ready");
            wait_http(port, &format!("v{n}"), &h);
            builds.push((ts(&started), ts(&finished)));
        }
        let samples = hammer.finish();
        eprintln!("mode {mode}: {} requests", samples.len());
        assert_no_failures_and_no_wait_for_a_build(&samples, &builds);
    }
}

#[test]
fn init_from_air_converts_airs_example_and_runs_the_go_app() {
    let Some(app) = go_app() else { return };
    std::fs::remove_file(app.path().join(".hotrun.toml")).unwrap();
    let (code, _, stderr) = go(app.path())
        .args(&["init", "--from-air", "air.toml"])
        .run();
    assert_eq!(code, 0, "{stderr}");
    for unmapped in ["build.stop_on_error", "build.log", "color"] {
        assert!(
            stderr.contains(&format!("not carried over: {unmapped}")),
            "{unmapped}: {stderr}"
        );
    }
    let written = std::fs::read_to_string(app.path().join(".hotrun.toml")).unwrap();
    for expected in [
        "cmd = \"go build -o ./tmp/main .\"",
        "cmd = \"./tmp/main\"",
        "\"**/*.go\"",
        "\"tmp/\"",
        "debounce = \"1000ms\"",
        "stop_on_error",
    ] {
        assert!(
            written.contains(expected),
            "`{expected}` missing:\n{written}"
        );
    }
    // Refuses to overwrite without --force.
    assert_eq!(
        go(app.path())
            .args(&["init", "--from-air", "air.toml"])
            .run()
            .0,
        2
    );

    runs_and_swaps(app.path());
}

#[test]
fn a_go_module_runs_with_no_config() {
    let Some(app) = go_app() else { return };
    std::fs::remove_file(app.path().join(".hotrun.toml")).unwrap();
    let cache = TempDir::new();
    let port = free_port();
    let mut h = go(app.path())
        .env("XDG_CACHE_HOME", cache.path().to_str().unwrap())
        .port(port)
        .start();
    h.wait("app_ready");
    wait_http(port, "v1", &h);
    // The binary is in hotrun's cache, not in the project.
    assert!(!app.path().join("tmp").exists() && !app.path().join("build").exists());
    edit(&app.path().join("main.go"), "\"v1\"", "\"v2\"");
    wait_http(port, "v2", &h);
    // Only Go sources build: a note beside them does not.
    let from = h.cursor();
    write(&app.path().join("NOTES.md"), "notes");
    edit(&app.path().join("main.go"), "\"v2\"", "\"v3\"");
    let started = h.wait("build_started");
    assert_eq!(
        started["files"],
        serde_json::json!([app.path().join("main.go").to_str().unwrap()]),
        "{:?}",
        h.events_since(from)
    );
    wait_http(port, "v3", &h);
    // Plain output says what hotrun chose, and how to change it.
    let (code, stdout, _) = go(app.path())
        .env("XDG_CACHE_HOME", cache.path().to_str().unwrap())
        .args(&["config"])
        .run();
    assert_eq!(code, 0);
    assert!(stdout.contains("go build -o"), "{stdout}");
    drop(h);
    let mut plain = go(app.path())
        .args(&["--ui", "plain", "--no-reload"])
        .env("XDG_CACHE_HOME", cache.path().to_str().unwrap())
        .port(free_port())
        .start();
    let said = plain.wait_line("what hotrun chose", |l| l.contains("Go module"));
    drop(plain);
    assert!(
        said.contains("go build -o") && said.contains("build.cmd"),
        "{said}"
    );
}

#[test]
fn an_air_project_runs_as_it_is() {
    let Some(app) = go_app() else { return };
    std::fs::remove_file(app.path().join(".hotrun.toml")).unwrap();
    std::fs::rename(app.path().join("air.toml"), app.path().join(".air.toml")).unwrap();
    runs_and_swaps(app.path());
    // `hotrun init` there points at the converter.
    let (code, _, stderr) = go(app.path()).args(&["init"]).run();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("--from-air"), "{stderr}");
    std::fs::remove_file(app.path().join(".hotrun.toml")).unwrap();
    // `-c` names an air file anywhere.
    std::fs::rename(app.path().join(".air.toml"), app.path().join("air.toml")).unwrap();
    let port = free_port();
    let mut h = go(app.path()).port(port).args(&["-c", "air.toml"]).start();
    h.wait("app_ready");
    wait_http(port, "v2", &h);
}
