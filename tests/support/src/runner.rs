//! The real hotrun binary run in `--ui json` (or `--ui plain`): a builder for its
//! command line, and the running hotrun, whose JSON events (or plain lines) a test
//! waits for.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{fixture, free_port, hotrun_bin, TempDir, DEADLINE};

#[derive(Default)]
struct Output {
    events: Vec<Value>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    closed: bool,
}

/// A running hotrun.
pub struct Hotrun {
    pub child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<(Mutex<Output>, Condvar)>,
    /// Index of the next event `wait` looks at…
    cursor: usize,
    /// …and of the next stdout line `wait_line` looks at (`--ui plain`).
    line_cursor: usize,
    command: String,
    pub dir: PathBuf,
}

pub struct Builder {
    cmd: Command,
    dir: PathBuf,
    text: String,
    args: Vec<String>,
    reload: bool,
    /// Run in a user namespace with this inotify limit: (file under /proc/sys/user, value).
    limit: Option<(String, u32)>,
}

pub fn hotrun(dir: &Path) -> Builder {
    hotrun_from(hotrun_bin(), dir)
}

/// As [`hotrun`], with the hotrun binary at `binary` (a copy the test may replace).
pub fn hotrun_from(binary: &Path, dir: &Path) -> Builder {
    let mut cmd = Command::new(binary);
    cmd.current_dir(dir)
        .arg("--ui")
        .arg("json")
        .env_remove("NO_COLOR");
    Builder {
        cmd,
        dir: dir.to_path_buf(),
        text: "hotrun --ui json".to_string(),
        args: Vec::new(),
        reload: false,
        limit: None,
    }
}

impl Builder {
    pub fn args(mut self, args: &[&str]) -> Builder {
        self.args.extend(args.iter().map(|a| a.to_string()));
        for a in args {
            self.text.push(' ');
            self.text.push_str(a);
        }
        self
    }
    pub fn env(mut self, key: &str, value: &str) -> Builder {
        self.cmd.env(key, value);
        self.text = format!("{key}={value} {}", self.text);
        self
    }
    pub fn port(self, port: u16) -> Builder {
        self.env("PORT", &port.to_string())
    }
    /// hotrun's proxy on `port` (`--proxy`).
    pub fn proxy(self, port: u16) -> Builder {
        self.args(&["--proxy", &port.to_string()])
    }

    /// Browser reload is off (`--no-reload`) unless a test asks for it: without the
    /// proxy every hotrun would serve it on the same default port.
    pub fn reload(mut self) -> Builder {
        self.reload = true;
        self
    }

    /// Run hotrun in a user namespace whose inotify limit `limit` (`max_inotify_watches`
    /// or `max_inotify_instances` under /proc/sys/user) is `value`: the real OS limit.
    /// Where user namespaces are not allowed, the hidden knob `knob` simulates it, said
    /// loudly (and under CI=true that is a failure: CI machines allow them).
    pub fn inotify_limit(mut self, limit: &str, value: u32, knob: (&str, &str)) -> Builder {
        let allowed = Command::new("unshare")
            .args(["-U", "-r", "true"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if allowed {
            self.limit = Some((limit.to_string(), value));
        } else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "user namespaces (unshare -U -r) are not allowed on this CI machine"
            );
            eprintln!(
                "NOTE: user namespaces are not allowed here: simulating {limit} with {knob:?}"
            );
            self = self.env(knob.0, knob.1);
        }
        self
    }

    fn finish_args(&mut self) {
        if !self.reload {
            self.cmd.arg("--no-reload");
            self.text = self.text.replacen("--ui json", "--ui json --no-reload", 1);
        }
        self.cmd.args(&self.args);
        if let Some((limit, value)) = self.limit.take() {
            // unshare and sh both exec: hotrun keeps the pid the test started.
            let mut cmd = Command::new("unshare");
            cmd.args(["-U", "-r", "sh", "-c"]).arg(format!(
                "echo {value} > /proc/sys/user/{limit} && exec \"$0\" \"$@\""
            ));
            cmd.arg(self.cmd.get_program()).args(self.cmd.get_args());
            for (key, value) in self.cmd.get_envs() {
                match value {
                    Some(value) => cmd.env(key, value),
                    None => cmd.env_remove(key),
                };
            }
            if let Some(dir) = self.cmd.get_current_dir() {
                cmd.current_dir(dir);
            }
            self.cmd = cmd;
            self.text = format!("unshare -U -r ({limit} = {value}) {}", self.text);
        }
    }

    pub fn start(mut self) -> Hotrun {
        self.finish_args();
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("cannot start hotrun");
        let output: Arc<(Mutex<Output>, Condvar)> = Default::default();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let out = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let (lock, cv) = &*out;
                let mut o = lock.lock().unwrap();
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    o.events.push(v);
                }
                o.stdout.push(line);
                cv.notify_all();
            }
            let (lock, cv) = &*out;
            lock.lock().unwrap().closed = true;
            cv.notify_all();
        });
        let err = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                err.0.lock().unwrap().stderr.push(line);
            }
        });
        Hotrun {
            stdin: child.stdin.take(),
            child,
            output,
            cursor: 0,
            line_cursor: 0,
            command: self.text,
            dir: self.dir,
        }
    }

    /// Run to completion (for setup errors): exit code, stdout, stderr.
    pub fn run(mut self) -> (i32, String, String) {
        self.finish_args();
        self.cmd.stdin(Stdio::null());
        let out = self.cmd.output().expect("cannot run hotrun");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Hotrun {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fail the test with everything a reader needs to see why.
    pub fn fail(&self, message: &str) -> ! {
        let o = self.output.0.lock().unwrap();
        panic!(
            "{message}\n--- command: {}\n--- dir: {}\n--- stdout:\n{}\n--- stderr:\n{}\n",
            self.command,
            self.dir.display(),
            o.stdout.join("\n"),
            o.stderr.join("\n")
        );
    }

    /// The next event (after the cursor) with this name that satisfies `pred`;
    /// moves the cursor past it.
    pub fn wait_for(&mut self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        let (lock, cv) = &*self.output;
        let mut o = lock.lock().unwrap();
        loop {
            while self.cursor < o.events.len() {
                let ev = &o.events[self.cursor];
                self.cursor += 1;
                if ev["event"] == name && pred(ev) {
                    return ev.clone();
                }
            }
            if o.closed || start.elapsed() > DEADLINE {
                drop(o);
                self.fail(&format!(
                    "no `{name}` event came (hotrun {})",
                    if start.elapsed() > DEADLINE {
                        "timed out"
                    } else {
                        "closed its output"
                    }
                ));
            }
            o = cv.wait_timeout(o, Duration::from_millis(200)).unwrap().0;
        }
    }

    /// The next stdout line (after the line cursor) that satisfies `pred`, for hotrun
    /// started with `--ui plain`; moves the cursor past it.
    pub fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        let (lock, cv) = &*self.output;
        let mut o = lock.lock().unwrap();
        loop {
            while self.line_cursor < o.stdout.len() {
                let line = &o.stdout[self.line_cursor];
                self.line_cursor += 1;
                if pred(line) {
                    return line.clone();
                }
            }
            if o.closed || start.elapsed() > DEADLINE {
                drop(o);
                self.fail(&format!("no line came with {what}"));
            }
            o = cv.wait_timeout(o, Duration::from_millis(200)).unwrap().0;
        }
    }

    /// Stdout lines so far (plain mode).
    pub fn lines(&self) -> Vec<String> {
        self.output.0.lock().unwrap().stdout.clone()
    }

    pub fn wait(&mut self, name: &str) -> Value {
        self.wait_for(name, |_| true)
    }

    /// Events seen so far, from index `from`.
    pub fn events_since(&self, from: usize) -> Vec<Value> {
        self.output.0.lock().unwrap().events[from..].to_vec()
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Write one line to hotrun's stdin (a json command).
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Wait for hotrun to exit; its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if start.elapsed() > DEADLINE {
                self.fail("hotrun did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Hotrun {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(libc::SIGTERM);
            let start = Instant::now();
            while self.child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The pid printed by the app in an `output` line like `child 1234`.
pub fn pid_from_output(hotrun: &mut Hotrun, prefix: &str) -> u32 {
    let ev = hotrun.wait_for("output", |e| {
        e["line"].as_str().is_some_and(|l| l.starts_with(prefix))
    });
    ev["line"].as_str().unwrap()[prefix.len()..]
        .trim()
        .parse()
        .unwrap()
}

/// hotrun with browser reload behind its proxy on a free port, once the first app is
/// ready; the proxy's port.
pub fn behind_proxy(dir: &Path) -> (Hotrun, u16) {
    let port = free_port();
    let mut h = hotrun(dir).reload().proxy(port).start();
    h.wait("app_ready");
    (h, port)
}

/// The site fixture behind the proxy, with browser reload; returns the proxy port once
/// the first app is ready.
pub fn site_behind_proxy() -> (TempDir, Hotrun, u16) {
    let dir = fixture("site");
    let (h, port) = behind_proxy(dir.path());
    (dir, h, port)
}
