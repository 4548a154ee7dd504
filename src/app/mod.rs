//! Starts one app generation under the supervisor helper, with the environment
//! `cargo run` would give it plus `run.env_file` and `run.env`, and turns what happens
//! to it into app events. Stopping is the helper's job (see `process`).

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::process::ChildStdin;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Mutex;

use crate::build::Project;
use crate::config::settings::Settings;
use crate::core::event::{Event, Stream};
use crate::process::client::{self, Handle, Spec};
use crate::process::collect::{self, Pipe, Sink};
use crate::process::lines::{say_dropped, Throttle};
use crate::process::status::MODE;
use tokio::io::AsyncWriteExt;

/// Where hotrun's stdin goes in plain mode: the current app's stdin pipe, and what was
/// typed while no app ran (delivered to the next one).
pub type StdinSlot = Arc<Mutex<AppStdin>>;

#[derive(Default)]
pub struct AppStdin {
    pub pipe: Option<ChildStdin>,
    pub pending: Vec<u8>,
}

/// At most this much typed input waits for an app to start.
pub const STDIN_PENDING_MAX: usize = 64 * 1024;

/// The app's last output lines, kept to say why it died: at most this many lines…
const LAST_LINES: usize = 40;
/// …and this many bytes.
const LAST_BYTES: usize = 8 * 1024;

/// The last lines an app printed, bounded in lines and bytes.
#[derive(Debug, Default)]
pub struct LastLines {
    lines: std::collections::VecDeque<String>,
    bytes: usize,
}

impl LastLines {
    pub fn push(&mut self, line: &str) {
        // One very long line keeps its end, where the message usually is.
        let line = if line.len() > LAST_BYTES {
            let mut start = line.len() - LAST_BYTES;
            while !line.is_char_boundary(start) {
                start += 1;
            }
            &line[start..]
        } else {
            line
        };
        self.bytes += line.len();
        self.lines.push_back(line.to_string());
        while self.lines.len() > LAST_LINES || self.bytes > LAST_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len(),
                None => break,
            }
        }
    }

    pub fn take(&mut self) -> Vec<String> {
        self.bytes = 0;
        std::mem::take(&mut self.lines).into()
    }
}

/// What every app generation gets from hotrun besides its settings.
pub struct AppContext<'a> {
    /// The `run.listen` sockets (passed as fds 3, 4, …).
    pub listen_fds: &'a [std::os::fd::RawFd],
    /// Environment for finding its address (`PORT` behind the proxy).
    pub env: &'a [(String, String)],
    /// Where hotrun's stdin goes (`--ui plain`).
    pub stdin_slot: Option<StdinSlot>,
}

/// Start generation `gen`; returns the helper's handle (to stop it).
pub fn start(
    gen: u64,
    executable: Option<&Path>,
    settings: &Settings,
    project: &Project,
    tx: UnboundedSender<Event>,
    context: AppContext<'_>,
) -> Result<Handle> {
    let stdin_slot = context.stdin_slot;
    let env = environment(settings, project, context.env, &tx);
    let (program, args) = command_line(settings, executable)?;
    let spec = Spec {
        program,
        args,
        env,
        cwd: settings.run.cwd.clone(),
        stop_signal: settings.run.stop_signal,
        stop_timeout: settings.run.stop_timeout,
        stdin: stdin_slot.is_some(),
        listen_fds: context.listen_fds.to_vec(),
    };
    let mut helper = client::spawn(&spec).context("cannot start the app")?;
    let handle = Handle::new(
        helper
            .child
            .id()
            .context("the app's supervisor exited at once")?,
    );
    let reaped = handle.reaped.clone();
    let stdin = helper.child.stdin.take();
    let helper_pid = helper.child.id().unwrap_or_default();
    tokio::spawn(async move {
        if let (Some(slot), Some(mut stdin)) = (&stdin_slot, stdin) {
            let mut slot = slot.lock().await;
            let pending = std::mem::take(&mut slot.pending);
            if pending.is_empty() || stdin.write_all(&pending).await.is_ok() {
                slot.pipe = Some(stdin);
            }
        }
        let mut sink = AppSink {
            tx,
            gen,
            helper_pid,
            // Kept here, before any output is passed on (or dropped on the way).
            last: LastLines::default(),
            throttle: Throttle::default(),
        };
        let exit = collect::follow(&mut helper, &mut sink).await;
        let AppSink {
            tx,
            mut last,
            mut throttle,
            ..
        } = sink;
        say_dropped(&tx, &mut throttle);
        if let Some(slot) = &stdin_slot {
            slot.lock().await.pipe.take();
        }
        let status = collect::reap(&mut helper, &reaped, exit).await;
        let _ = tx.send(Event::AppExited {
            gen,
            status,
            output: last.take(),
        });
    });
    Ok(handle)
}

/// The app's environment: its address (`PORT`), what `cargo run` sets, the env files
/// (read again at every start, so an edited `.env` takes effect with the next swap),
/// then `run.env`.
fn environment(
    settings: &Settings,
    project: &Project,
    address: &[(String, String)],
    tx: &UnboundedSender<Event>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    env.extend(address.iter().map(|(k, v)| (k.into(), v.into())));
    if let Project::Cargo(cargo) = project {
        env.extend(cargo.package.env.iter().map(|(k, v)| (k.into(), v.into())));
    }
    for file in &settings.run.env_files {
        // Re-read at every start, so an edited .env takes effect with the next swap.
        match std::fs::read_to_string(file) {
            Ok(text) => env.extend(
                parse_env_file(&text)
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into())),
            ),
            // A missing one is skipped (as air and most .env loaders do), said once.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                static SAID: std::sync::Mutex<Vec<std::path::PathBuf>> =
                    std::sync::Mutex::new(Vec::new());
                let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
                if !said.contains(file) {
                    said.push(file.clone());
                    let _ = tx.send(Event::Notice(format!(
                        "env file {} does not exist: the app starts without it",
                        file.display()
                    )));
                }
            }
            Err(e) => {
                let _ = tx.send(Event::Notice(format!(
                    "cannot read env file {}: {e}",
                    file.display()
                )));
            }
        }
    }
    env.extend(settings.run.env.iter().map(|(k, v)| (k.into(), v.into())));
    env
}

/// What runs: `run.cmd` through `sh -c` (see [`exec_line`]), else the built
/// executable, with `run.args`. Fails when there is neither, or `run.cwd` is gone.
fn command_line(
    settings: &Settings,
    executable: Option<&Path>,
) -> Result<(OsString, Vec<OsString>)> {
    let (program, args): (OsString, Vec<OsString>) = match (&settings.run.cmd, executable) {
        (Some(cmd), _) => {
            let mut args: Vec<OsString> = vec!["-c".into(), exec_line(cmd).into(), "sh".into()];
            args.extend(settings.run.args.iter().map(OsString::from));
            ("sh".into(), args)
        }
        (None, Some(exe)) => (
            exe.as_os_str().to_owned(),
            settings.run.args.iter().map(OsString::from).collect(),
        ),
        (None, None) => anyhow::bail!("nothing to run: no run command and no executable"),
    };
    if !settings.run.cwd.is_dir() {
        anyhow::bail!(
            "the app's directory {} (`run.cwd`, else where hotrun started) is gone",
            settings.run.cwd.display()
        );
    }
    Ok((program, args))
}

/// What an app's helper says, turned into app events.
struct AppSink {
    tx: UnboundedSender<Event>,
    gen: u64,
    helper_pid: u32,
    last: LastLines,
    throttle: Throttle,
}

impl AppSink {
    /// Send one line of the app's output to the loop, unless the loop is behind (then
    /// it is dropped, and counted).
    fn pass(&mut self, stream: Stream, line: String) {
        self.last.push(&line);
        if self.throttle.admit(&line) {
            say_dropped(&self.tx, &mut self.throttle);
            let _ = self.tx.send(Event::AppOutput { stream, line });
        }
    }
}

impl Sink for AppSink {
    fn line(&mut self, pipe: Pipe, line: String) {
        let stream = match pipe {
            Pipe::Stdout => Stream::AppStdout,
            Pipe::Stderr => Stream::AppStderr,
        };
        self.pass(stream, line);
    }

    fn started(&mut self, pid: u32) {
        let _ = self.tx.send(Event::AppStarted { gen: self.gen, pid });
    }

    fn failed(&mut self, why: String) {
        self.pass(Stream::AppStderr, format!("hotrun: {why}"));
    }

    fn helper_killed(&mut self, leftovers: usize) {
        let line = format!(
            "hotrun: the app's helper (hotrun {}, pid {}) was killed; the app was stopped with it{}",
            MODE,
            self.helper_pid,
            match leftovers {
                0 => String::new(),
                1 => " (1 leftover process killed)".to_string(),
                n => format!(" ({n} leftover processes killed)"),
            }
        );
        self.last.push(&line);
        let _ = self.tx.send(Event::Notice(line));
    }
}

/// The `sh -c` script for `run.cmd`: `exec` in front of the command, so the app is the
/// process hotrun signals, with `run.args` appended as `"$@"`. Leading `NAME=value`
/// words stay in front (`APP_ENV=dev exec ./app`). A compound line (`a && b`, a
/// pipeline, a loop) or one starting with a shell builtin is run as written, with
/// the arguments in `$@` for it to use.
pub fn exec_line(cmd: &str) -> String {
    const BUILTINS: &[&str] = &[
        "exec", "cd", "export", "if", "for", "while", "until", "case", "{", "[", "[[", "set",
        "source", ".", "eval", "exit", "trap", "ulimit", "umask", "unset", "wait", "read", "local",
        "alias", "!",
    ];
    let line = cmd.trim();
    // Quoting, expansions and comments need a real shell parser: run those as written.
    if line.contains([
        '&', '|', ';', '\n', '(', ')', '`', '\'', '"', '\\', '$', '#',
    ]) {
        return line.to_string();
    }
    let mut offset = 0;
    for word in line.split_whitespace() {
        let at = offset + line[offset..].find(word).unwrap_or(0);
        offset = at + word.len();
        let is_assignment = word.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if is_assignment {
            continue;
        }
        if BUILTINS.contains(&word) {
            return line.to_string();
        }
        return format!("{}exec {} \"$@\"", &line[..at], &line[at..]);
    }
    line.to_string()
}

/// `.env` syntax: `KEY=value`, optional `export `, `#` comments, single quotes taken
/// literally, double quotes with `\n`, `\"` and `\\` escapes.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            continue;
        }
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))
        {
            inner.to_string()
        } else if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            let mut s = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') => s.push('\n'),
                        Some(other) => s.push(other),
                        None => s.push('\\'),
                    }
                } else {
                    s.push(c);
                }
            }
            s
        } else {
            // Unquoted: a ` #` starts a comment.
            value.split(" #").next().unwrap_or("").trim().to_string()
        };
        out.push((key.to_string(), value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_are_bounded_in_lines_and_bytes() {
        let mut last = LastLines::default();
        for n in 0..100 {
            last.push(&format!("line {n}"));
        }
        let lines = last.take();
        assert_eq!(lines.len(), LAST_LINES);
        assert_eq!(lines.last().unwrap(), "line 99");
        let mut last = LastLines::default();
        last.push("first");
        last.push(&"é".repeat(LAST_BYTES));
        let lines = last.take();
        assert_eq!(lines.len(), 1, "the long line pushed the first one out");
        assert!(lines[0].len() <= LAST_BYTES && lines[0].chars().all(|c| c == 'é'));
        last.push("after");
        assert_eq!(last.take(), vec!["after".to_string()]);
    }

    #[test]
    fn run_commands_get_exec() {
        assert_eq!(exec_line("./build/app --x"), "exec ./build/app --x \"$@\"");
        assert_eq!(
            exec_line("APP_ENV=dev ./main"),
            "APP_ENV=dev exec ./main \"$@\""
        );
        assert_eq!(exec_line("exec ./app"), "exec ./app");
        assert_eq!(exec_line("cd web && ./server"), "cd web && ./server");
        assert_eq!(exec_line("echo hi; sleep 1"), "echo hi; sleep 1");
        assert_eq!(exec_line("export A=1"), "export A=1");
        assert_eq!(
            exec_line("FOO=\"a b\" printenv FOO"),
            "FOO=\"a b\" printenv FOO"
        );
    }

    #[test]
    fn env_files() {
        let text =
            "# comment\nA=1\nexport B = two \nC='lit $x'\nD=\"a\\nb\"\nE=x # note\nbad line\n";
        let vars = parse_env_file(text);
        assert_eq!(
            vars,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two".into()),
                ("C".into(), "lit $x".into()),
                ("D".into(), "a\nb".into()),
                ("E".into(), "x".into()),
            ]
        );
    }
}
