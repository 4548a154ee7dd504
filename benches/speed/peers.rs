//! The peer tools (watchexec, cargo-watch, systemfd, Vite), each run in its own
//! process group, when they are installed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A peer tool running in its own process group; dropped, the group is killed.
pub struct Peer {
    child: Child,
}

impl Peer {
    pub fn start(dir: &Path, port: u16, argv: &[&str]) -> Peer {
        Peer::spawn(dir, port, argv, None)
    }

    /// Like `start`, with the peer's output in the file `log`.
    pub fn start_logged(dir: &Path, port: u16, argv: &[&str], log: &Path) -> Peer {
        Peer::spawn(dir, port, argv, Some(log))
    }

    /// `argv` (with `{port}` filled in, see [`argv_for`]) on `dir` once it serves `v1`
    /// on `port`.
    pub fn serving(dir: &Path, port: u16, name: &str, argv: &[&str]) -> Peer {
        let argv = argv_for(argv, port);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let peer = Peer::start(dir, port, &argv);
        hotrun_support::http::wait_serving(port, "v1", name);
        peer
    }

    fn spawn(dir: &Path, port: u16, argv: &[&str], log: Option<&Path>) -> Peer {
        use std::os::unix::process::CommandExt;
        let (stdout, stderr) = match log {
            Some(log) => {
                let out = std::fs::File::create(log).unwrap();
                (Stdio::from(out.try_clone().unwrap()), Stdio::from(out))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .current_dir(dir)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", argv[0]));
        Peer { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: signalling the process group this benchmark started.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGTERM);
        }
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() && start.elapsed().as_secs() < 5 {
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The peers' command lines: (name, mode, argv with `{port}` for the port).
pub fn peers() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let mut list = Vec::new();
    if installed("watchexec") {
        list.push((
            "watchexec -r",
            "direct",
            vec![
                "watchexec",
                "-r",
                "-e",
                "rs",
                "-w",
                "src",
                "--",
                "cargo",
                "run",
                "-q",
            ],
        ));
        list.push((
            "watchexec -r --socket",
            "listen",
            vec![
                "watchexec",
                "-r",
                "-e",
                "rs",
                "-w",
                "src",
                "--socket",
                "{port}",
                "--",
                "cargo",
                "run",
                "-q",
            ],
        ));
    }
    if installed("cargo-watch") {
        list.push((
            "cargo watch -x run",
            "direct",
            vec!["cargo", "watch", "-q", "-x", "run"],
        ));
        if installed("systemfd") {
            list.push((
                "systemfd + cargo watch",
                "listen",
                vec![
                    "systemfd",
                    "--no-pid",
                    "-q",
                    "-s",
                    "http::{port}",
                    "--",
                    "cargo",
                    "watch",
                    "-q",
                    "-x",
                    "run",
                ],
            ));
        }
    }
    list
}

pub fn argv_for(argv: &[&str], port: u16) -> Vec<String> {
    argv.iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect()
}
