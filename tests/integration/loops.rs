//! Rebuild loops that must not happen: a build script that rewrites a source file with
//! the same content, a build that writes into its declared outputs, an app that writes
//! a log and a database journal beside its sources. Each test ends with a sentinel edit
//! and checks that the only build after the suspect one is the sentinel's: a loop would
//! show as an extra build or an extra file in between, with no fixed sleep.

use serde_json::Value;

use hotrun_support::*;

/// Builds started since `from`, with their files.
fn builds(h: &Hotrun, from: usize) -> Vec<Value> {
    h.events_since(from)
        .into_iter()
        .filter(|e| e["event"] == "build_started")
        .collect()
}

/// Edit `file`, wait for the build it starts; fail if any other build came first.
fn sentinel(h: &mut Hotrun, from: usize, file: &std::path::Path, text: &str) {
    write(file, text);
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    h.wait_for("build_started", |e| e["files"].to_string().contains(&name));
    h.wait("build_finished");
    let all = builds(h, from);
    if all.len() != 1 || all[0]["files"].as_array().map(Vec::len) != Some(1) {
        h.fail(&format!(
            "expected only the sentinel's build (of {name}), got: {all:?}"
        ));
    }
}

#[test]
fn a_build_script_that_rewrites_a_source_identically_builds_once() {
    let dir = fixture("webapp");
    let generated = "pub const GENERATED: u32 = 1;\n";
    write(&dir.path().join("src/generated.rs"), generated);
    write(
        &dir.path().join("build.rs"),
        &format!(
            "fn main() {{\n    std::fs::write(\"src/generated.rs\", {generated:?}).unwrap();\n}}\n"
        ),
    );
    edit(
        &dir.path().join("src/main.rs"),
        "fn main() {",
        "#[allow(dead_code)]\nmod generated;\n\nfn main() {",
    );
    // As in a real project, the file was there well before hotrun started (hotrun
    // takes a file written just before it started for one that may still change).
    let before = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("src/generated.rs"))
        .unwrap()
        .set_modified(before)
        .unwrap();
    let port = free_port();
    let mut h = hotrun(dir.path()).port(port).start();
    h.wait("app_ready");
    // A build that runs the build script (every change to the package reruns it).
    edit(&dir.path().join("src/main.rs"), "\"v1\"", "\"v2\"");
    h.wait("build_finished");
    h.wait("app_ready");
    wait_http(port, "v2", &h);
    let from = h.cursor();
    sentinel(
        &mut h,
        from,
        &dir.path().join("src/lib_note.rs"),
        "// a new file in the package\n",
    );
    // Also the very first build's rewrite (of a file as it was when hotrun started)
    // was no change: three builds in all — the first, the edit's, the sentinel's.
    let all = builds(&h, 0);
    if all.len() != 3 {
        h.fail(&format!("expected three builds in all, got: {all:?}"));
    }
}

#[test]
fn a_build_writing_into_its_declared_outputs_builds_once() {
    let dir = command_project(
        "[build]\ncmd = \"mkdir -p dist && date +%s%N > dist/stamp.txt && cp main.go dist/app.go\"\noutputs = [\"dist/**\"]\n[run]\ncmd = \"sleep 1000\"\n",
    );
    write(&dir.path().join("main.go"), "package main");
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    write(&dir.path().join("main.go"), "package main // 2");
    h.wait("build_finished");
    h.wait("app_started");
    let from = h.cursor();
    sentinel(&mut h, from, &dir.path().join("other.go"), "package main");
    // The outputs were written every time, and never counted as a change.
    let changes: Vec<Value> = h
        .events_since(0)
        .into_iter()
        .filter(|e| e["event"] == "change" && e["paths"].to_string().contains("dist"))
        .collect();
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn an_app_writing_a_log_and_a_journal_beside_its_sources_changes_nothing() {
    let dir = command_project(
        "[build]\ncmd = \"true\"\n[run]\ncmd = \"while true; do date >> app.log; date > data.db-journal; date > data.db-wal; sleep 0.02; done\"\n",
    );
    write(&dir.path().join("main.go"), "package main");
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    let from = h.cursor();
    // Let the app write a while: the log must have grown before the sentinel.
    let log = dir.path().join("app.log");
    let deadline = std::time::Instant::now() + DEADLINE;
    while std::fs::metadata(&log).map_or(0, |m| m.len()) < 500 {
        assert!(
            std::time::Instant::now() < deadline,
            "the app never wrote its log"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sentinel(
        &mut h,
        from,
        &dir.path().join("main.go"),
        "package main // 2",
    );
    let noted: Vec<Value> = h
        .events_since(0)
        .into_iter()
        .filter(|e| e["event"] == "change" && !e["paths"].to_string().contains("main.go"))
        .collect();
    assert!(noted.is_empty(), "{noted:?}");
}
