//! Build, run, swap: the std-only web app, a workspace with an outside path
//! dependency, and a C app built by a shell command.

use hotrun_support::*;

#[test]
fn saving_a_change_serves_the_new_version() {
    let app = fixture("webapp");
    let port = free_port();
    let mut h = hotrun(app.path()).port(port).start();
    h.wait("watching");
    let first = h.wait("build_finished");
    assert_eq!(first["ok"], true, "{first}");
    let started = h.wait("app_started");
    wait_http(port, "v1", &h);

    edit(&app.path().join("src/main.rs"), "\"v1\"", "\"v2\"");
    let change = h.wait_for("change", |e| e["kind"] == "build");
    assert!(
        change["paths"].to_string().contains("src/main.rs"),
        "{change}"
    );
    h.wait("build_started");
    assert_eq!(h.wait("build_finished")["ok"], true);
    let exited = h.wait("app_exited");
    assert_eq!(exited["requested"], true, "{exited}");
    let restarted = h.wait("app_started");
    assert_ne!(started["pid"], restarted["pid"]);
    wait_http(port, "v2", &h);
    assert_no_zombies(&h);
}

#[test]
fn a_compile_error_keeps_the_old_app_serving() {
    let app = fixture("webapp");
    let port = free_port();
    let mut h = hotrun(app.path()).port(port).start();
    h.wait("app_started");
    wait_http(port, "v1", &h);

    let main = app.path().join("src/main.rs");
    edit(
        &main,
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v1\"",
    );
    let failed = h.wait("build_finished");
    assert_eq!(failed["ok"], false, "{failed}");
    assert!(failed["errors"].as_u64().unwrap() >= 1, "{failed}");
    let diags = failed["diagnostics"].as_array().unwrap();
    let error = diags
        .iter()
        .find(|d| d["level"] == "error")
        .unwrap_or_else(|| h.fail("no error diagnostic"));
    assert_eq!(error["file"], "src/main.rs", "{error}");
    assert!(error["line"].as_u64().unwrap() >= 1, "{error}");
    assert!(
        error["rendered"].as_str().unwrap().contains("src/main.rs"),
        "{error}"
    );
    assert!(
        diags.iter().all(|d| !d["message"]
            .as_str()
            .unwrap()
            .starts_with("aborting due to")),
        "the summary line is not a diagnostic: {failed}"
    );
    // The old app still answers, every time.
    for _ in 0..20 {
        assert_eq!(http_get(port).as_deref(), Some("v1"));
    }

    edit(
        &main,
        "const VERSION: &str = \"v1\"",
        "const VERSION: &str = \"v3\";",
    );
    assert_eq!(h.wait("build_finished")["ok"], true);
    wait_http(port, "v3", &h);
}

#[test]
fn editing_a_path_dependency_outside_the_workspace_rebuilds() {
    let tmp = fixture("workspace");
    let ws = tmp.path().join("ws");
    let port = free_port();
    let mut h = hotrun(&ws).port(port).start();
    let watching = h.wait("watching");
    let roots = watching["roots"].to_string();
    assert!(
        roots.contains("greeting"),
        "the outside path dependency is watched: {watching}"
    );
    h.wait("app_started");
    wait_http(port, "hello v1", &h);

    edit(
        &tmp.path().join("greeting/src/lib.rs"),
        "hello v1",
        "hello v2",
    );
    let started = h.wait("build_started");
    assert!(
        started["files"].to_string().contains("greeting/src/lib.rs"),
        "{started}"
    );
    assert_eq!(h.wait("build_finished")["ok"], true);
    wait_http(port, "hello v2", &h);
}

#[test]
fn a_shell_built_c_app_works_the_same() {
    let app = fixture("shell");
    let port = free_port();
    let mut h = hotrun(app.path()).port(port).start();
    h.wait("app_started");
    wait_http(port, "v1", &h);

    let server = app.path().join("server.c");
    edit(&server, "#define VERSION \"v1\"", "#define VERSION \"v2\"");
    h.wait("build_started");
    assert_eq!(h.wait("build_finished")["ok"], true);
    wait_http(port, "v2", &h);

    // A compile error: the raw output plus one diagnostic per location, old app kept.
    edit(
        &server,
        "#define VERSION \"v2\"",
        "#define VERSION \"v2\" +",
    );
    let failed = h.wait("build_finished");
    assert_eq!(failed["ok"], false, "{failed}");
    let diags = failed["diagnostics"].as_array().unwrap();
    assert!(
        diags
            .iter()
            .any(|d| d["file"] == "server.c" && d["line"].as_u64().is_some()),
        "{failed}"
    );
    assert!(
        diags
            .iter()
            .any(|d| d["file"].is_null() && d["rendered"].as_str().unwrap().contains("server.c")),
        "{failed}"
    );
    assert_eq!(http_get(port).as_deref(), Some("v2"));

    // The build writes build/server: that must never count as a change.
    let changes = h.events_since(0);
    assert!(
        !changes
            .iter()
            .any(|e| e["event"] == "change" && e["paths"].to_string().contains("/build/")),
        "build outputs were reported as changes"
    );
}

#[test]
fn saves_during_a_build_cancel_it_and_the_last_save_wins() {
    let app = fixture("webapp");
    // A build script that takes a while, so saves land during the build.
    write(
        &app.path().join("build.rs"),
        "fn main() { std::thread::sleep(std::time::Duration::from_millis(1500)); }\n",
    );
    let port = free_port();
    let mut h = hotrun(app.path()).port(port).start();
    h.wait("app_started");
    wait_http(port, "v1", &h);

    // Watch every answer the app gives from now on.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (seen, stop) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(body) = http_get(port) {
                    seen.lock().unwrap().insert(body);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };

    let main = app.path().join("src/main.rs");
    edit(&main, "\"v1\"", "\"v2\"");
    h.wait("build_started");
    edit(&main, "\"v2\"", "\"v3\"");
    h.wait("build_cancelled");
    h.wait("build_started");
    edit(&main, "\"v3\"", "\"v4\"");
    h.wait("build_cancelled");
    let last = h.wait("build_started");
    assert!(last["files"].to_string().contains("src/main.rs"), "{last}");
    assert_eq!(h.wait("build_finished")["ok"], true);
    wait_http(port, "v4", &h);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    poller.join().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|b| b == "v1" || b == "v4"),
        "a superseded version was served: {seen:?}"
    );
    assert_no_zombies(&h);
}

#[test]
fn build_before_commands_run_first_and_their_failure_fails_the_build() {
    let dir = command_project(
        "[build]\nbefore = [\"echo generated > gen.txt\", \"test -f allow.txt\"]\ncmd = \"cat gen.txt\"\noutputs = [\"gen.txt\"]\n[run]\ncmd = \"sleep 1000\"\n",
    );
    let mut h = hotrun(dir.path()).start();
    let failed = h.wait("build_finished");
    assert_eq!(
        failed["ok"], false,
        "a failing `before` command fails the build: {failed}"
    );
    assert!(
        dir.path().join("gen.txt").exists(),
        "the first `before` command ran"
    );
    write(&dir.path().join("allow.txt"), "yes");
    h.wait_for("output", |e| {
        e["stream"] == "build" && e["line"] == "generated"
    });
    assert_eq!(h.wait("build_finished")["ok"], true);
    h.wait("app_started");
}
