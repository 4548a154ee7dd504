//! Bad input is a clear message naming what and where, exit code 2, nothing started.

use hotrun_support::*;

#[test]
fn an_unknown_config_key_names_file_line_and_column() {
    let dir = command_project("[run]\ncmd = \"true\"\n\n[watch]\ndebunce = \"30ms\"\n");
    let (code, stdout, stderr) = hotrun(dir.path()).run();
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(".hotrun.toml:5:1"), "{stderr}");
    assert!(stderr.contains("debunce"), "{stderr}");
    assert!(stdout.is_empty(), "nothing started: {stdout}");
}

#[test]
fn bad_values_name_their_position() {
    for (config, position, word) in [
        (
            "[run]\ncmd = \"true\"\nstop_signal = \"SIGNOPE\"\n",
            ":3:15",
            "SIGNOPE",
        ),
        (
            "[run]\ncmd = \"true\"\nstop_timeout = \"5 parsecs\"\n",
            ":3:16",
            "parsecs",
        ),
        (
            "[run]\ncmd = \"true\"\n[watch]\nignore = [\"ok/**\", \"bad/[\"]\n",
            ":4:20",
            "bad/[",
        ),
    ] {
        let dir = command_project(config);
        let (code, stdout, stderr) = hotrun(dir.path()).run();
        assert_eq!(code, 2, "{config}: {stderr}");
        assert!(
            stderr.contains(position) && stderr.contains(word),
            "{config}: {stderr}"
        );
        assert!(stdout.is_empty(), "nothing started: {stdout}");
    }
}

#[test]
fn no_cargo_project_and_no_run_command_is_a_usage_error() {
    let dir = TempDir::new();
    let (code, _, stderr) = hotrun(dir.path()).run();
    assert_eq!(code, 2);
    assert!(stderr.contains("run.cmd"), "{stderr}");
}

#[test]
fn an_unknown_binary_is_reported_with_the_choices() {
    let app = fixture("webapp");
    let (code, stdout, stderr) = hotrun(app.path()).args(&["--bin", "nope"]).run();
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("nope") && stderr.contains("webapp"),
        "{stderr}"
    );
    assert!(stdout.is_empty());
    assert!(
        !app.path().join("target/debug/webapp").exists(),
        "nothing was built"
    );
}

#[test]
fn a_bad_flag_is_a_usage_error() {
    let dir = TempDir::new();
    let (code, _, stderr) = hotrun(dir.path())
        .args(&["--run-cmd", "true", "--debounce", "soon"])
        .run();
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--debounce") && stderr.contains("soon"),
        "{stderr}"
    );
}

#[test]
fn values_that_cannot_work_are_refused_with_their_key_and_position() {
    for (config, position, key) in [
        (
            "[run]\ncmd = \"true\"\ncwd = \"no/such/dir\"\n",
            ":3:7",
            "run.cwd",
        ),
        (
            "[build]\ncmd = \"  \"\n[run]\ncmd = \"true\"\n",
            ":2:7",
            "build.cmd",
        ),
        ("[run]\ncmd = \"\"\n", ":2:7", "run.cmd"),
        (
            "[run]\ncmd = \"true\"\n[run.env]\n\"A=B\" = \"x\"\n",
            ":4:1",
            "run.env",
        ),
        (
            "[run]\ncmd = \"true\"\n[run.env]\n\"\" = \"x\"\n",
            ":4:1",
            "run.env",
        ),
        (
            "[run]\ncmd = \"true\"\n[run.env]\n\"A\\u0000B\" = \"x\"\n",
            ":4:1",
            "run.env",
        ),
        (
            "[run]\ncmd = \"true\"\n[build.env]\n\"A=\" = \"x\"\n",
            ":4:1",
            "build.env",
        ),
        (
            "[run]\ncmd = \"true\"\n[watch]\ndebounce = \"1h\"\n",
            ":4:12",
            "watch.debounce",
        ),
        (
            "[run]\ncmd = \"true\"\nstop_timeout = \"2h\"\n",
            ":3:16",
            "run.stop_timeout",
        ),
        (
            "[run]\ncmd = \"true\"\n[proxy]\nlisten = 3000\ntimeout = \"1d\"\n",
            ":5:11",
            "proxy.timeout",
        ),
    ] {
        let dir = command_project(config);
        let (code, stdout, stderr) = hotrun(dir.path()).run();
        assert_eq!(code, 2, "{config}: {stderr}");
        assert!(
            stderr.contains(position) && stderr.contains(&format!("`{key}`")),
            "{config}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
        assert!(stdout.is_empty(), "nothing started: {stdout}");
    }
    // The same from the command line.
    let dir = command_project("[run]\ncmd = \"true\"\n");
    for (args, word) in [
        (&["--debounce", "1h"][..], "--debounce"),
        (&["--run-cmd", ""][..], "--run-cmd"),
    ] {
        let (code, _, stderr) = hotrun(dir.path()).args(args).run();
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(word), "{args:?}: {stderr}");
    }
}
