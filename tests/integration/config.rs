//! `.hotrun.toml`: precise errors, `init`, `config`, completions, and live reload.

use hotrun_support::*;

fn run_in(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(hotrun_bin())
        .current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_error_class_names_file_line_and_key_and_starts_nothing() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[watch]\ndebunce = \"30ms\"\n",
            ":2:1:",
            "did you mean `debounce`?",
        ),
        ("[wacth]\n", ":1:", "did you mean `watch`?"),
        ("[build]\nrelease = \"yes\"\n", ":2:11:", "`build.release`"),
        (
            "[watch]\ndebounce = \"fast\"\n",
            ":2:12:",
            "`watch.debounce`",
        ),
        (
            "[run]\nstop_signal = \"SIGNOPE\"\n",
            ":2:15:",
            "`run.stop_signal`",
        ),
        ("[run]\nlisten = [\"nope\"]\n", ":2:11:", "`run.listen`"),
        (
            "[proxy]\nlisten = \"localhost:99999\"\n",
            ":2:10:",
            "`proxy.listen`",
        ),
        ("[watch]\nignore = [\"a/[\"]\n", ":2:11:", "`watch.ignore`"),
        ("[run]\nready = \"ftp:x\"\n", ":2:9:", "`run.ready`"),
        ("[build]\nbin = \"nope\"\n", ":2:7:", "`build.bin`"),
        ("[build]\npackage = \"nope\"\n", ":2:11:", "`build.package`"),
    ];
    for (config, position, key) in cases {
        let app = fixture("webapp");
        write(&app.path().join(".hotrun.toml"), config);
        let (code, stdout, stderr) = run_in(app.path(), &["--ui", "json"]);
        assert_eq!(code, 2, "{config}: {stderr}");
        assert!(
            stderr.contains(&format!(".hotrun.toml{position}")),
            "{config}: {stderr}"
        );
        assert!(stderr.contains(key), "{config}: {stderr}");
        assert!(stdout.is_empty(), "nothing started: {stdout}");
        assert!(
            !app.path().join("target").exists(),
            "nothing was built: {config}"
        );
    }
}

#[test]
fn init_writes_every_default_and_refuses_to_overwrite() {
    let app = fixture("webapp");
    let (_, defaults, err) = run_in(app.path(), &["config"]);
    assert!(defaults.contains("[watch]"), "{err}");
    let (code, _, stderr) = run_in(app.path(), &["init"]);
    assert_eq!(code, 0, "{stderr}");
    let path = app.path().join(".hotrun.toml");
    let written = std::fs::read_to_string(&path).unwrap();
    // As written, it changes nothing.
    assert_eq!(run_in(app.path(), &["config"]).1, defaults);
    // With every default uncommented (not the examples), it still changes nothing.
    let mut previous = "";
    let mut lines = Vec::new();
    for l in written.lines() {
        let key = l.strip_prefix("# ").filter(|rest| {
            rest.split(' ').nth(1) == Some("=")
                && rest.starts_with(|c: char| c.is_ascii_lowercase())
        });
        lines.push(match key {
            Some(rest) if !previous.contains("an example") => rest,
            _ => l,
        });
        previous = l;
    }
    let uncommented = lines.join("\n");
    assert!(
        uncommented.contains("\ndebounce = \"30ms\""),
        "{uncommented}"
    );
    std::fs::write(&path, &uncommented).unwrap();
    // Every example line parses too, once uncommented.
    let mut previous = "";
    let mut lines = Vec::new();
    for l in written.lines() {
        lines.push(match l.strip_prefix("# ") {
            Some(rest) if previous.contains("an example") => rest,
            _ => l,
        });
        previous = l;
    }
    std::fs::write(app.path().join("examples.toml"), lines.join("\n")).unwrap();
    let (_, _, stderr) = run_in(app.path(), &["-c", "examples.toml", "config"]);
    // (They may not all make sense together — `bin` and `example` — but each parses.)
    assert!(!stderr.contains("expected"), "the examples parse: {stderr}");
    let (code, after, stderr) = run_in(app.path(), &["config"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(after, defaults, "uncommented defaults are the defaults");

    let (code, _, stderr) = run_in(app.path(), &["init"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        uncommented,
        "not overwritten"
    );
    assert_eq!(run_in(app.path(), &["init", "--force"]).0, 0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
}

#[test]
fn config_output_fed_back_gives_the_same_settings() {
    let app = fixture("webapp");
    write(
        &app.path().join(".hotrun.toml"),
        "[watch]\nignore = [\"data/**\"]\ndebounce = 45\n[run]\nargs = [\"--x\"]\nstop_signal = 2\nenv = { A = \"1\" }\n[build]\nfeatures = \"a,b\"\n",
    );
    let (code, first, stderr) = run_in(
        app.path(),
        &["--release", "-i", "*.tmp", "--listen", ":3999", "config"],
    );
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "release = true",
        "\"data/**\", \"*.tmp\"",
        "debounce = \"45ms\"",
        "stop_signal = \"SIGINT\"",
        "\"127.0.0.1:3999\"",
        "features = [\"a\", \"b\"]",
    ] {
        assert!(
            first.contains(expected),
            "`{expected}` missing from:\n{first}"
        );
    }
    let effective = app.path().join("effective.toml");
    std::fs::write(&effective, &first).unwrap();
    let (code, second, stderr) = run_in(app.path(), &["-c", "effective.toml", "config"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(second, first);
}

#[test]
fn completions_for_three_shells() {
    let dir = TempDir::new();
    for shell in ["bash", "zsh", "fish"] {
        let (code, stdout, stderr) = run_in(dir.path(), &["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(
            stdout.contains("hotrun") && stdout.contains("debounce"),
            "{shell}: {stdout}"
        );
    }
    assert_eq!(run_in(dir.path(), &["completions", "nushell-9000"]).0, 2);
}

#[test]
fn an_edited_config_applies_while_running_and_a_bad_edit_is_survived() {
    let dir = command_project(
        "[build]\ncmd = \"true\"\n[run]\ncmd = 'echo \"args: $*\"; sleep 1000'\nargs = [\"one\"]\n",
    );
    let config = dir.path().join(".hotrun.toml");
    let mut h = hotrun(dir.path()).start();
    h.wait("watching");
    h.wait_for("output", |e| e["line"] == "args: one");

    // run.args changed: the app restarts with them, without a build.
    std::fs::write(
        &config,
        "[build]\ncmd = \"true\"\n[run]\ncmd = 'echo \"args: $*\"; sleep 1000'\nargs = [\"two\"]\n",
    )
    .unwrap();
    let change = h.wait_for("change", |e| e["kind"] == "config");
    assert!(change["paths"].to_string().contains(".hotrun.toml"));
    h.wait_for("output", |e| e["line"] == "args: two");

    // An invalid edit: reported with its position, the app keeps running.
    let mark = h.cursor();
    std::fs::write(&config, "[run]\nargs = [\"three\"\n").unwrap();
    let error = h.wait("error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(".hotrun.toml:3:1:") && message.contains("previous"),
        "{message}"
    );

    // watch.ignore changed: the watcher starts again with it.
    std::fs::write(&config, "[build]\ncmd = \"true\"\n[run]\ncmd = 'echo \"args: $*\"; sleep 1000'\nargs = [\"two\"]\n[watch]\nignore = [\"gen/**\"]\n").unwrap();
    h.wait("watching");
    let since_bad = h.events_since(mark);
    assert!(
        !since_bad.iter().any(|e| e["event"] == "app_exited"),
        "the bad edit did not touch the app: {since_bad:?}"
    );
    write(&dir.path().join("gen/x.go"), "package gen");
    write(&dir.path().join("main.go"), "package main");
    let started = h.wait("build_started");
    assert_eq!(started["files"].as_array().unwrap().len(), 1, "{started}");
    assert!(
        started["files"][0].as_str().unwrap().ends_with("main.go"),
        "{started}"
    );
}

#[test]
fn a_changed_listen_address_needs_a_restart() {
    let dir = command_project("[run]\ncmd = \"sleep 1000\"\n");
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    std::fs::write(
        dir.path().join(".hotrun.toml"),
        "[run]\ncmd = \"sleep 1000\"\n[reload]\nlisten = \"127.0.0.1:35800\"\n",
    )
    .unwrap();
    let error = h.wait("error");
    assert!(
        error["message"].as_str().unwrap().contains("reload.listen"),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("restart hotrun"),
        "{error}"
    );
}

#[test]
fn a_single_watched_file_survives_an_atomic_save() {
    let dir = command_project(
        "[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n[watch]\nignore = [\"shared\"]\n",
    );
    let shared = dir.path().join("shared");
    write(&shared.join("config.toml"), "{}");
    write(&shared.join("other.toml"), "{}");
    let mut h = hotrun(dir.path())
        .args(&["-w", "shared/config.toml", "--watch", "shared/config.toml"])
        .start();
    h.wait("app_started");
    for round in 0..2 {
        // Write a temp file and rename it over: how editors save.
        let tmp = shared.join(".config.toml.tmp");
        std::fs::write(&tmp, format!("{{\"round\": {round}}}")).unwrap();
        std::fs::rename(&tmp, shared.join("config.toml")).unwrap();
        let started = h.wait("build_started");
        assert!(
            started["files"].to_string().contains("config.toml"),
            "{started}"
        );
        assert!(
            !started["files"].to_string().contains("other.toml"),
            "{started}"
        );
        h.wait("build_finished");
    }
}

#[test]
fn the_config_is_found_up_to_the_workspace_root_and_no_further() {
    let tmp = fixture("workspace");
    write(
        &tmp.path().join("ws/.hotrun.toml"),
        "[watch]\ndebounce = \"77ms\"\n",
    );
    let (code, out, err) = run_in(&tmp.path().join("ws/app/src"), &["config"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("debounce = \"77ms\""),
        "found from a member's subdirectory: {out}"
    );
    // Above the workspace root: not this project's.
    std::fs::rename(
        tmp.path().join("ws/.hotrun.toml"),
        tmp.path().join(".hotrun.toml"),
    )
    .unwrap();
    let (code, out, err) = run_in(&tmp.path().join("ws/app"), &["config"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("debounce = \"30ms\""), "{out}");
}
