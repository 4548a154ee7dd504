//! `--ui plain`: timestamped lines tagged by source, colours only when allowed, stdin
//! passed to the app; and the hidden `--exit-after-builds` bound used by tools.

use hotrun_support::*;

fn plain(dir: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["--ui", "plain", "--exit-after-builds", "1"];
    args.extend_from_slice(extra);
    hotrun(dir).args(&args).run()
}

#[test]
fn plain_lines_are_timestamped_and_tagged_by_source() {
    let dir = command_project(
        "[build]\ncmd = \"echo compiling\"\n[run]\ncmd = \"echo serving; sleep 1000\"\n",
    );
    let (code, stdout, stderr) = plain(dir.path(), &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let line = |tag: &str, text: &str| {
        stdout.lines().any(|l| {
            let mut parts = l.splitn(3, ' ');
            let time = parts.next().unwrap_or("");
            time.len() == 12
                && time.as_bytes()[2] == b':'
                && parts.next() == Some(tag)
                && parts.next().unwrap_or("").trim_start().starts_with(text)
        })
    };
    assert!(line("build", "compiling"), "{stdout}");
    assert!(line("app", "serving"), "{stdout}");
    assert!(line("hotrun", "build ok"), "{stdout}");
    assert!(line("hotrun", "app started"), "{stdout}");
    assert!(
        !stdout.contains('\x1b'),
        "no colours when stdout is not a terminal: {stdout:?}"
    );
}

#[test]
fn colour_is_forced_by_flag_and_no_color_wins() {
    let dir = command_project("[run]\ncmd = \"echo serving; sleep 1000\"\n");
    let (_, coloured, _) = plain(dir.path(), &["--color", "always"]);
    assert!(coloured.contains("\x1b["), "{coloured:?}");
    let (code, out, err) = hotrun(dir.path())
        .env("NO_COLOR", "1")
        .args(&[
            "--ui",
            "plain",
            "--exit-after-builds",
            "1",
            "--color",
            "always",
        ])
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\x1b'), "NO_COLOR always wins: {out:?}");
}

#[test]
fn stdin_reaches_the_app_in_plain_mode() {
    let dir = command_project("[run]\ncmd = 'read line; echo \"got $line\"; sleep 1000'\n");
    let mut cmd = std::process::Command::new(hotrun_bin());
    cmd.current_dir(dir.path())
        .args(["--ui", "plain"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::{BufRead, Write};
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello app\n")
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.ends_with("got hello app") {
                let _ = tx.send(());
            }
        }
    });
    let found = rx.recv_timeout(DEADLINE).is_ok();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(found, "the app read hotrun's stdin");
}
