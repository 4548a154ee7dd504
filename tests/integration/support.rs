//! Test support: fixture projects copied into temp dirs, the real hotrun binary run in
//! `--ui json`, and waits on observable facts (a JSON event, an HTTP answer, a file)
//! with deadlines. On a failed assertion the command, directory, stdout and stderr are
//! dumped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: builds on a loaded two-core machine can be slow. Tests wait on facts, so
/// a long deadline costs nothing when things work.
pub const DEADLINE: Duration = Duration::from_secs(120);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("hotrun-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir.canonicalize().unwrap())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copy `tests/fixtures/NAME` into a new temp dir; returns the temp dir (its root holds
/// the fixture's contents).
pub fn fixture(name: &str) -> TempDir {
    let tmp = TempDir::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    copy_dir(&src, tmp.path());
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == "build" {
            continue;
        }
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Replace `from` with `to` in a file, asserting `from` was there.
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One plain HTTP GET; the body, or None when nothing answered.
pub fn http_get(port: u16) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.trim().to_string())
}

/// Wait until the app on `port` answers with `body`.
pub fn wait_http(port: u16, body: &str, hotrun: &Hotrun) {
    let start = Instant::now();
    loop {
        if http_get(port).as_deref() == Some(body) {
            return;
        }
        if start.elapsed() > DEADLINE {
            hotrun.fail(&format!(
                "port {port} never answered {body:?} (last answer: {:?})",
                http_get(port)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
    /// Index of the next event `wait` looks at.
    cursor: usize,
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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotrun"));
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

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// Wait until `pid` is gone (dead and reaped, or at least dead).
pub fn wait_gone(pid: u32, what: &str, hotrun: &Hotrun) {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > Duration::from_secs(30) {
            hotrun.fail(&format!("{what} (pid {pid}) is still alive"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pids of every process now.
pub fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

/// Every process whose parent chain leads to `root`, with its state letter.
pub fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut parents = Vec::new();
    for pid in pids() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.trim().to_string()) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("").to_string();
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        parents.push((pid, ppid, state));
    }
    let mut found = vec![];
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, state) in &parents {
            if *ppid == p {
                found.push((*pid, state.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

pub fn assert_no_zombies(hotrun: &Hotrun) {
    let zombies: Vec<_> = descendants(hotrun.pid())
        .into_iter()
        .filter(|(_, s)| s == "Z")
        .collect();
    if !zombies.is_empty() {
        hotrun.fail(&format!("zombie processes under hotrun: {zombies:?}"));
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

/// A command-built project with this `.hotrun.toml`.
pub fn command_project(config: &str) -> TempDir {
    let tmp = TempDir::new();
    write(&tmp.path().join(".hotrun.toml"), config);
    tmp
}
