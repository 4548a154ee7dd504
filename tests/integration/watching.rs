//! What counts as a change: ignored trees, editor droppings, docs, bursts, and the
//! fallback to polling when the OS watch limit is reached.

use hotrun_support::*;

/// Every event from `from` up to the next `build_started`, and that event.
fn until_build(h: &mut Hotrun) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mark = h.cursor();
    let started = h.wait("build_started");
    let events = h.events_since(mark);
    (events, started)
}

#[test]
fn ignored_paths_and_docs_never_build_or_restart() {
    let app = fixture("webapp");
    std::fs::create_dir_all(app.path().join(".git")).unwrap();
    std::fs::create_dir_all(app.path().join("generated")).unwrap();
    let port = free_port();
    let mut h = hotrun(app.path()).port(port).start();
    h.wait("app_started");
    wait_http(port, "v1", &h);
    h.wait("app_ready");

    let p = app.path();
    write(&p.join("target/debug/junk.rs"), "x");
    write(&p.join(".git/HEAD"), "ref: refs/heads/main");
    // `/generated/` is in the fixture's .gitignore; the fixture is not a git repository.
    write(&p.join("generated/out.rs"), "x");
    write(&p.join("src/.main.rs.swp"), "x");
    write(&p.join("src/main.rs~"), "x");
    write(&p.join("src/4913"), "x");
    write(&p.join("server.log"), "x");
    edit(&p.join("README.md"), "", "more words\n");
    write(&p.join("tests/it.rs"), "#[test] fn t() {}");

    // A real edit last: the next build must be for it alone.
    edit(&p.join("src/main.rs"), "\"v1\"", "\"v2\"");
    let (events, started) = until_build(&mut h);
    assert_eq!(
        started["files"].as_array().unwrap().len(),
        1,
        "only the real edit builds: {started}"
    );
    assert!(started["files"][0]
        .as_str()
        .unwrap()
        .ends_with("src/main.rs"));
    let changes: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "change")
        .map(|e| e.to_string())
        .collect();
    for ignored in [
        "target",
        ".git",
        "generated",
        ".swp",
        "main.rs~",
        "4913",
        "server.log",
    ] {
        assert!(
            !changes.iter().any(|c| c.contains(ignored)),
            "`{ignored}` was reported as a change: {changes:?}"
        );
    }
    assert!(
        changes
            .iter()
            .any(|c| c.contains("README.md") && c.contains("\"other\"")),
        "the README edit is noted as `other`: {changes:?}"
    );
    assert!(
        !events.iter().any(|e| e["event"] == "app_exited"),
        "nothing restarted before the real edit"
    );
    wait_http(port, "v2", &h);
}

#[test]
fn two_thousand_new_files_make_exactly_one_build() {
    let app = fixture("webapp");
    let port = free_port();
    // A wide settle window: the claim is one burst → one build, and a noisy shared
    // machine must not split the burst.
    let mut h = hotrun(app.path())
        .port(port)
        .args(&["--debounce", "500ms"])
        .start();
    h.wait("app_started");
    let mark = h.cursor();
    let src = app.path().join("src");
    for i in 0..2000 {
        std::fs::write(src.join(format!("gen_{i}.rs")), format!("// {i}\n")).unwrap();
    }
    h.wait("build_finished");
    // A sentinel edit after the burst: its build must be the second one.
    edit(&src.join("main.rs"), "\"v1\"", "\"v2\"");
    h.wait_for("build_started", |e| {
        e["files"].to_string().contains("main.rs") && e["files"].as_array().unwrap().len() == 1
    });
    let builds = h
        .events_since(mark)
        .iter()
        .filter(|e| e["event"] == "build_started")
        .count();
    assert_eq!(
        builds, 2,
        "the 2,000-file burst made exactly one build (plus the sentinel's)"
    );
    assert_eq!(
        h.events_since(mark)
            .iter()
            .filter(|e| e["event"] == "build_cancelled")
            .count(),
        0
    );
}

#[test]
fn directories_created_later_are_watched() {
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    write(&dir.path().join("pkg/deep/a.go"), "package a");
    let started = h.wait("build_started");
    assert!(
        started["files"].to_string().contains("pkg/deep/a.go"),
        "{started}"
    );
    h.wait("build_finished");
    // The new directory is watched now: a later edit inside it is seen too.
    write(&dir.path().join("pkg/deep/a.go"), "package b");
    let again = h.wait("build_started");
    assert!(
        again["files"].to_string().contains("pkg/deep/a.go"),
        "{again}"
    );
}

#[test]
fn an_identical_rewrite_is_not_a_change() {
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    write(&dir.path().join("main.go"), "package main");
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    write(&dir.path().join("main.go"), "package main // 1");
    h.wait("build_finished");
    write(&dir.path().join("main.go"), "package main // 1");
    write(&dir.path().join("other.go"), "package main");
    let started = h.wait("build_started");
    assert_eq!(started["files"].as_array().unwrap().len(), 1, "{started}");
    assert!(
        started["files"][0].as_str().unwrap().ends_with("other.go"),
        "{started}"
    );
}

#[test]
fn the_watch_limit_gives_one_message_and_polling_keeps_working() {
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    for d in ["a", "b", "c"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    // The OS limit for real (a user namespace allowing 2 watches), or the knob.
    let mut h = hotrun(dir.path())
        .inotify_limit("max_inotify_watches", 2, ("HOTRUN_TEST_MAX_WATCHES", "2"))
        .start();
    let error = h.wait("error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("sysctl fs.inotify.max_user_watches="),
        "{message}"
    );
    assert!(message.to_lowercase().contains("polling"), "{message}");
    let watching = h.wait("watching");
    assert!(watching["polling_ms"].as_u64().is_some(), "{watching}");
    h.wait("app_started");
    write(&dir.path().join("b/x.go"), "package x");
    let started = h.wait("build_started");
    assert!(started["files"].to_string().contains("b/x.go"), "{started}");
    let errors = h
        .events_since(0)
        .iter()
        .filter(|e| e["event"] == "error")
        .count();
    assert_eq!(errors, 1, "the limit is reported once");
}

#[test]
fn no_inotify_instance_falls_back_to_polling() {
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    let mut h = hotrun(dir.path())
        .inotify_limit("max_inotify_instances", 0, ("HOTRUN_TEST_NO_INOTIFY", "1"))
        .start();
    let error = h.wait("error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("max_user_instances"),
        "{error}"
    );
    h.wait("app_started");
    write(&dir.path().join("x.go"), "package x");
    h.wait_for("build_started", |e| e["files"].to_string().contains("x.go"));
}

#[test]
fn poll_flag_forces_polling() {
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    write(&dir.path().join("old.go"), "package old");
    let mut h = hotrun(dir.path()).args(&["--poll", "100ms"]).start();
    let watching = h.wait("watching");
    assert_eq!(watching["polling_ms"], 100, "{watching}");
    h.wait("app_started");
    write(&dir.path().join("x.go"), "package x");
    h.wait_for("build_started", |e| e["files"].to_string().contains("x.go"));
    h.wait("build_finished");
    // An edit of a file that existed before, not only new files.
    write(
        &dir.path().join("old.go"),
        "package old // edited, and longer",
    );
    h.wait_for("build_started", |e| {
        e["files"].to_string().contains("old.go")
    });
}

#[test]
fn a_directory_replaced_by_a_new_one_is_watched_again() {
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    write(&dir.path().join("gen/a.go"), "package a");
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    // What a code generator or a branch switch does.
    std::fs::remove_dir_all(dir.path().join("gen")).unwrap();
    write(&dir.path().join("gen/a.go"), "package a // new");
    h.wait_for("build_started", |e| e["files"].to_string().contains("gen"));
    h.wait("build_finished");
    write(&dir.path().join("gen/a.go"), "package a // edited");
    h.wait_for("build_started", |e| {
        e["files"].to_string().contains("gen/a.go")
    });
}

#[test]
fn a_source_directory_moved_away_rebuilds() {
    let app = fixture("webapp");
    write(&app.path().join("src/handlers/mod.rs"), "// unused\n");
    let elsewhere = TempDir::new();
    let port = free_port();
    let mut h = hotrun(app.path()).port(port).start();
    h.wait("app_started");
    std::fs::rename(
        app.path().join("src/handlers"),
        elsewhere.path().join("handlers"),
    )
    .unwrap();
    let started = h.wait("build_started");
    assert!(
        started["files"].to_string().contains("src/handlers"),
        "{started}"
    );
}

#[test]
fn a_fifo_in_the_tree_does_not_stall_watching() {
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    let fifo = dir.path().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    h.wait_for("build_started", |e| e["files"].to_string().contains("pipe"));
    h.wait("build_finished");
    write(&dir.path().join("main.go"), "package main");
    h.wait_for("build_started", |e| {
        e["files"].to_string().contains("main.go")
    });
}

#[test]
fn a_watch_queue_overflow_rebuilds_once() {
    let queue: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(16384);
    // Each new file is at least two events (create, close-write).
    let files = queue / 2 + 1000;
    if files > 100_000 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "max_queued_events is {queue}: too many files to overflow it in a test"
        );
        eprintln!("SKIPPED: max_queued_events is {queue}: too many files to overflow it here");
        return;
    }
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    std::fs::create_dir_all(dir.path().join("burst")).unwrap();
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    let from = h.cursor();
    // hotrun stopped (SIGSTOP) reads nothing: the kernel's queue overflows for real.
    h.signal(libc::SIGSTOP);
    for i in 0..files {
        std::fs::write(dir.path().join(format!("burst/f{i}.go")), "package x").unwrap();
    }
    h.signal(libc::SIGCONT);
    let error = h.wait("error");
    assert!(
        error["message"].as_str().unwrap().contains("overflow"),
        "{error}"
    );
    h.wait("build_finished");
    // Then quiet: the overflow and the burst it hid were one build.
    h.send("rebuild");
    h.wait("build_finished");
    let events = h.events_since(from);
    let builds = events
        .iter()
        .filter(|e| e["event"] == "build_started")
        .count();
    if builds != 2 {
        let names: Vec<String> = events
            .iter()
            .map(|e| format!("{} {}", e["ts_ms"], e["event"]))
            .collect();
        h.fail(&format!(
            "{builds} builds, not one for the overflow and its burst and one asked for: {names:?}"
        ));
    }
}
