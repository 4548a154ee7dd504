//! Bad input is a clear message naming what and where, exit code 2, nothing started.

use crate::support::*;

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
