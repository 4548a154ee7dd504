//! The status panel in a real terminal: tmux runs hotrun, `send-keys` types, and
//! `capture-pane` reads the screen.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hotrun_support::*;

struct Tmux {
    session: String,
}

impl Tmux {
    /// `name` tells this test's session from those of other tests running at once.
    fn start(dir: &Path, name: &str, command: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "tmux is missing: .ci/run must install it"
            );
            eprintln!("SKIPPED: the panel test needs tmux, which is not installed");
            return None;
        }
        let session = format!("hotrun-test-{}-{name}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "110",
                "-y",
                "24",
                "-c",
            ])
            .arg(dir)
            .arg(command)
            .env_remove("TMUX")
            .status()
            .unwrap();
        assert!(status.success());
        Some(Tmux { session })
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-S", "-2000", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The panel: the lines from the last rule down.
    fn panel(&self) -> String {
        let screen = self.screen();
        let start = screen
            .rfind('─')
            .map_or(0, |i| screen[..i].rfind('\n').map_or(0, |n| n + 1));
        screen[start..].to_string()
    }

    fn wait(&self, what: &str, pred: impl Fn(&str, &str) -> bool) {
        let start = Instant::now();
        loop {
            let (screen, panel) = (self.screen(), self.panel());
            if pred(&screen, &panel) {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "waited for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&self, keys: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.session, keys])
            .status()
            .unwrap();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

fn builds(screen: &str) -> usize {
    screen
        .lines()
        .filter(|l| l.contains(" hotrun building"))
        .count()
}

#[test]
fn the_panel_shows_state_and_takes_keys() {
    let app = fixture("webapp");
    let port = free_port();
    // The app under a shell that records its stop signal.
    write(
        &app.path().join(".hotrun.toml"),
        "[run]\ncmd = 'trap \"echo stopped > stopped.txt; exit 0\" TERM; ./target/debug/webapp & wait $!'\n",
    );
    let command = format!(
        "PORT={port} {} ; echo \"exit=$?\" > exit.txt; stty -a > stty.txt; sleep 600",
        hotrun_bin().display()
    );
    let Some(tmux) = Tmux::start(app.path(), "keys", &command) else {
        return;
    };
    tmux.wait("running", |_, panel| {
        panel.contains("running") && panel.contains("last build ok")
    });
    assert!(tmux.panel().contains("q quit"));

    // A save: the panel shows the new build's duration.
    let main = app.path().join("src/main.rs");
    edit(&main, "\"v1\"", "\"v2\"");
    tmux.wait("a second build", |screen, panel| {
        builds(screen) >= 2 && panel.contains("running") && panel.contains("changed src/main.rs")
    });
    let panel = tmux.panel();
    assert!(
        panel.contains("last build ok in ") && panel.contains("1 restart"),
        "{panel}"
    );

    // A compile error: `build failed` and the count.
    edit(
        &main,
        "const VERSION: &str = \"v2\";",
        "const VERSION: &str = \"v2\"",
    );
    tmux.wait("build failed", |_, panel| {
        panel.contains("build failed") && panel.contains("1 error")
    });
    assert_eq!(
        http_get(port).as_deref(),
        Some("v2"),
        "the old app still serves"
    );
    edit(
        &main,
        "const VERSION: &str = \"v2\"",
        "const VERSION: &str = \"v3\";",
    );
    tmux.wait("fixed", |_, panel| {
        panel.contains("running") && panel.contains("last build ok")
    });

    // `r` builds.
    let before = builds(&tmux.screen());
    tmux.keys("r");
    tmux.wait("a build from r", |screen, panel| {
        builds(screen) == before + 1 && panel.contains("last build ok")
    });

    // `p` pauses: a save makes no build; `p` again resumes and builds it.
    tmux.keys("p");
    tmux.wait("paused", |_, panel| {
        panel.contains("paused") && panel.contains("p resume")
    });
    let before = builds(&tmux.screen());
    edit(&main, "\"v3\"", "\"v4\"");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(builds(&tmux.screen()), before, "no build while paused");
    tmux.keys("p");
    tmux.wait("the held change builds", |screen, panel| {
        builds(screen) == before + 1 && panel.contains("running")
    });
    wait_http_plain(port, "v4");

    // `q` quits: exit 0, the app got its stop signal, the terminal is cooked again.
    tmux.keys("q");
    let exit = app.path().join("exit.txt");
    let start = Instant::now();
    while !app.path().join("stty.txt").exists() {
        assert!(
            start.elapsed() < DEADLINE,
            "hotrun did not quit:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "exit=0");
    assert!(
        app.path().join("stopped.txt").exists(),
        "the app got its stop signal"
    );
    let stty = std::fs::read_to_string(app.path().join("stty.txt")).unwrap();
    assert!(
        stty.contains(" icanon") && stty.contains(" echo"),
        "cooked mode again: {stty}"
    );
    assert!(
        !tmux.screen().contains("r rebuild  R restart"),
        "the panel was taken away"
    );
}

fn wait_http_plain(port: u16, body: &str) {
    let start = Instant::now();
    while http_get(port).as_deref() != Some(body) {
        assert!(
            start.elapsed() < DEADLINE,
            "port {port} never answered {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_panel_shows_the_on_change_commands_and_the_sidecars() {
    let app = command_project("[run]\ncmd = 'exec sleep 1000'\n");
    // The sidecar's pid, written where hotrun does not watch.
    let out = TempDir::new();
    let pid_file = out.path().join("sidecar.pid");
    let mut config = std::fs::read_to_string(app.path().join(".hotrun.toml")).unwrap();
    config.push_str(&format!(
        "[[sidecar]]\nname = \"watcher\"\nrun = 'echo $$ > {}; exec sleep 1000'\n",
        pid_file.display()
    ));
    write(&app.path().join(".hotrun.toml"), &config);
    crate::pipeline::add_generator(app.path(), "gen", r#"["styles/**"]"#);
    let command = format!("{} ; sleep 600", hotrun_bin().display());
    let Some(tmux) = Tmux::start(app.path(), "pipeline", &command) else {
        return;
    };

    tmux.wait("the first run and the sidecar", |_, panel| {
        panel.contains("on change: gen ok ") && panel.contains("sidecar watcher running · pid ")
    });
    let start = Instant::now();
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .filter(|p| p.ends_with('\n'))
        {
            break pid.trim().to_string();
        }
        assert!(start.elapsed() < DEADLINE, "the sidecar wrote no pid");
        std::thread::sleep(Duration::from_millis(20));
    };
    tmux.wait("the sidecar's pid and uptime", |_, panel| {
        panel.contains(&format!("sidecar watcher running · pid {pid} · up "))
    });

    let input = app.path().join("styles/in.css");
    write(&input, "h1 { color: error; }\n");
    tmux.wait("the failed run", |_, panel| {
        panel.contains("on change: gen failed")
    });
    write(&input, "h1 { color: rgb(1, 2, 3); }\n");
    tmux.wait("the fixed run", |_, panel| {
        panel.contains("on change: gen ok ")
    });
    assert!(
        tmux.panel()
            .contains(&format!("sidecar watcher running · pid {pid} · up ")),
        "{}",
        tmux.panel()
    );
}
