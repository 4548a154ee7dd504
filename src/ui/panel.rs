//! The status panel: a pure function of the state, the width and the time, so every
//! state and width is a unit test. It returns plain lines plus where the state word is,
//! so colour is added by the caller and truncation never cuts an escape sequence.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::core::event::ExitStatus;
use crate::core::state::{App, Build, LastBuild, SidecarRun, State, TaskRun};
use crate::text::format_duration;

/// What the panel shows besides the state: addresses to open, the project root (to
/// shorten paths).
#[derive(Debug, Clone, Default)]
pub struct PanelInfo {
    /// (label, URL), most public first: `o` opens the first.
    pub urls: Vec<(&'static str, String)>,
    pub root: PathBuf,
}

/// The colour family of the state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Busy,
    Bad,
    Quiet,
}

/// One rendered panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Lines without colour, each at most `width - 1` characters.
    pub lines: Vec<String>,
    /// The state word: it starts line 1 (after the rule).
    pub state: String,
    pub tone: Tone,
}

const WIDE: usize = 60;

pub fn render(state: &State, info: &PanelInfo, width: usize, now: Instant) -> Rendered {
    let width = width.max(4);
    let (word, tone) = state_word(state, now);
    let compact = width < WIDE;

    let mut status = vec![word.clone()];
    if let Some(s) = &state.last_summary {
        let took = format_duration(s.duration);
        status.push(if compact {
            format!("{took} {}E {}W", s.errors, s.warnings)
        } else {
            format!(
                "last build {} in {took} · {} · {}",
                if s.ok { "ok" } else { "failed" },
                plural(s.errors, "error"),
                plural(s.warnings, "warning")
            )
        });
    }
    let mut lines = vec![
        "─".repeat(width.saturating_sub(1)),
        fit(&status.join(if compact { " · " } else { "  │  " }), width),
    ];

    let mut second = Vec::new();
    if let Some((pid, since)) = app_pid(state) {
        let up = short_duration(now.saturating_duration_since(since));
        let restarts = state.starts.saturating_sub(1) as usize;
        second.push(if compact {
            format!("pid {pid} up {up}")
        } else {
            format!("pid {pid} · up {up} · {}", plural(restarts, "restart"))
        });
    }
    if !compact {
        if !state.trigger_files.is_empty() {
            second.push(format!(
                "changed {}",
                files(&state.trigger_files, &info.root)
            ));
        }
        for (label, url) in &info.urls {
            second.push(format!("{label} {url}"));
        }
    }
    // Why the app died, in its own last words (the panic message, say): last, so the
    // addresses stay in view, and without colours or control characters.
    if let (App::Exited { why: Some(why), .. }, Build::Idle) = (&state.app, &state.build) {
        if !state.paused && !matches!(state.last, LastBuild::Failed { .. }) {
            let words: String = crate::text::strip_ansi(why)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(300)
                .collect();
            second.push(format!("last output: {}", words.trim()));
        }
    }
    if !second.is_empty() {
        lines.push(fit(&second.join("  │  "), width));
    }
    lines.extend(pipeline_lines(state, now).iter().map(|l| fit(l, width)));
    let keys = if compact {
        "r R p c o q".to_string()
    } else {
        let pause = if state.paused { "resume" } else { "pause" };
        format!("r rebuild  R restart  p {pause}  c clear  o open  q quit")
    };
    lines.push(fit(&keys, width));
    Rendered {
        lines,
        state: fit(&word, width),
        tone,
    }
}

/// One line for the `[[on_change]]` commands together, one per sidecar.
fn pipeline_lines(state: &State, now: Instant) -> Vec<String> {
    let pipeline = &state.pipeline;
    let mut lines = Vec::new();
    let tasks: Vec<String> = pipeline
        .tasks
        .iter()
        .map(|t| {
            let what = match (&t.run, t.took) {
                (TaskRun::Running { started, .. }, _) => format!(
                    "running {}",
                    short_duration(now.saturating_duration_since(*started))
                ),
                (TaskRun::Settling { .. }, _) => "waiting".to_string(),
                (TaskRun::Idle, _) if t.failed.is_some() => "failed".to_string(),
                (TaskRun::Idle, Some(took)) => format!("ok {}", format_duration(took)),
                (TaskRun::Idle, None) => "idle".to_string(),
            };
            format!("{} {what}", t.name)
        })
        .collect();
    if !tasks.is_empty() {
        lines.push(format!("on change: {}", tasks.join(" · ")));
    }
    for sidecar in &pipeline.sidecars {
        let what = match &sidecar.run {
            SidecarRun::Pending | SidecarRun::Spawning { .. } => "starting".to_string(),
            SidecarRun::Running { pid, since, .. } => format!(
                "running · pid {pid} · up {}",
                short_duration(now.saturating_duration_since(*since))
            ),
            SidecarRun::Waiting { until, status } => format!(
                "exited ({status}) · again in {}",
                short_duration(until.saturating_duration_since(now))
            ),
            SidecarRun::Exited { status } => format!("exited ({status})"),
            SidecarRun::Stopping { .. } => "stopping".to_string(),
            SidecarRun::Stopped => "stopped".to_string(),
        };
        let restarts = match sidecar.restarts {
            0 => String::new(),
            n => format!(" · {}", plural(n as usize, "restart")),
        };
        lines.push(format!("sidecar {} {what}{restarts}", sidecar.name));
    }
    lines
}

fn state_word(state: &State, now: Instant) -> (String, Tone) {
    if state.paused {
        return ("paused".into(), Tone::Quiet);
    }
    match &state.build {
        Build::Running { started, .. } => {
            let elapsed = now.saturating_duration_since(*started);
            return (format!("building {}", short_duration(elapsed)), Tone::Busy);
        }
        Build::Settling { .. } => return ("building".into(), Tone::Busy),
        Build::Idle => {}
    }
    if let LastBuild::Failed { .. } = state.last {
        return ("build failed".into(), Tone::Bad);
    }
    if let Some(incoming) = &state.incoming {
        // The old app serves while the new one starts beside it.
        let elapsed = now.saturating_duration_since(incoming.since);
        return (format!("swapping {}", short_duration(elapsed)), Tone::Busy);
    }
    match &state.app {
        App::Ready { .. } => ("running".into(), Tone::Good),
        App::Starting { .. } | App::Spawning { .. } => ("starting".into(), Tone::Busy),
        App::Stopping { .. } => ("swapping".into(), Tone::Busy),
        App::Exited { status, .. } => (format!("app exited ({})", exit_words(status)), Tone::Bad),
        App::None => ("watching".into(), Tone::Quiet),
    }
}

fn exit_words(status: &ExitStatus) -> String {
    status.to_string()
}

fn app_pid(state: &State) -> Option<(u32, Instant)> {
    match state.app {
        App::Starting { pid, since, .. } | App::Ready { pid, since, .. } => Some((pid, since)),
        _ => None,
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `4s`, `3m12s`, `2h05m`: seconds are enough for a panel.
fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{}.{}s", s, d.subsec_millis() / 100),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn files(paths: &[PathBuf], root: &Path) -> String {
    let shown: Vec<String> = paths
        .iter()
        .take(3)
        .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
        .collect();
    let more = paths.len().saturating_sub(3);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Cut to `width - 1` columns (the last column is left free so no terminal wraps);
/// wide characters (CJK, emoji) count as two.
fn fit(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let max = width.saturating_sub(1);
    if unicode_width::UnicodeWidthStr::width(text) <= max {
        return text.to_string();
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        cut.push(c);
        used += w;
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::classify::{Classifier, Inputs};
    use crate::core::event::{BuildOutcome, Diagnostic, Event, Executable};
    use crate::core::options::{OnBusy, Options, RestartPolicy};

    fn state() -> State {
        state_with(Vec::new(), Vec::new())
    }

    fn state_with(tasks: Vec<(String, String)>, sidecars: Vec<(String, RestartPolicy)>) -> State {
        let options = Options {
            debounce: Duration::from_millis(30),
            debounce_cap: Duration::from_secs(1),
            on_busy: OnBusy::Restart,
            restart: RestartPolicy::Never,
            ready_grace: Duration::from_millis(200),
            probe: false,
            ready_timeout: Duration::from_secs(30),
            exit_after_builds: None,
            swap: crate::core::options::Swap::Restart,
            routes: false,
            tasks,
            sidecars,
            output_latency: Duration::from_millis(300),
        };
        let classifier = Classifier::new(
            PathBuf::from("/p"),
            Inputs::Cargo {
                packages: vec![PathBuf::from("/p")],
                example: false,
            },
            globset::GlobSet::empty(),
        );
        State::new(options, classifier)
    }

    fn outcome(ok: bool) -> BuildOutcome {
        BuildOutcome {
            ok,
            cancelled: false,
            duration: Duration::from_millis(1234),
            diagnostics: if ok {
                Vec::new()
            } else {
                vec![Diagnostic {
                    level: "error".into(),
                    message: "expected `;`".into(),
                    rendered: String::new(),
                    file: Some("src/main.rs".into()),
                    line: Some(3),
                    column: Some(5),
                }]
            },
            executable: Some(Executable {
                path: "/p/target/debug/app".into(),
                size: 1,
                mtime_ns: 1,
                inode: 1,
            }),
            input_files: Vec::new(),
            input_dirs: Vec::new(),
        }
    }

    fn info() -> PanelInfo {
        PanelInfo {
            urls: vec![("proxy", "http://127.0.0.1:3000".into())],
            root: PathBuf::from("/p"),
        }
    }

    /// A state with the app running for 75 s after one good build.
    fn running(t0: Instant) -> State {
        let mut st = state();
        st.start(t0);
        st.update(
            Event::BuildFinished {
                id: 1,
                outcome: outcome(true),
            },
            t0,
        );
        st.update(Event::AppStarted { gen: 1, pid: 4242 }, t0);
        st.update(Event::Tick, t0 + Duration::from_secs(1));
        st
    }

    #[test]
    fn commands_share_a_line_and_each_sidecar_has_one() {
        let t0 = Instant::now();
        let mut st = state_with(
            vec![
                ("tailwind".into(), "a".into()),
                ("templ".into(), "b".into()),
            ],
            vec![("esbuild".into(), RestartPolicy::OnFailure)],
        );
        let watching = Event::Watching {
            roots: vec![PathBuf::from("/p")],
            directories: 1,
            polling: None,
        };
        st.update(watching, t0);
        // Runs 1 and 2 are the sidecar's and tailwind's; templ's is 3.
        st.update(Event::SidecarStarted { id: 1, pid: 77 }, t0);
        let ok = BuildOutcome {
            executable: None,
            duration: Duration::from_millis(41),
            ..outcome(true)
        };
        st.update(
            Event::TaskFinished { id: 2, outcome: ok },
            t0 + Duration::from_millis(50),
        );
        let r = render(&st, &info(), 100, t0 + Duration::from_millis(300));
        let lines = r.lines.join("\n");
        assert!(
            lines.contains("on change: tailwind ok 41ms · templ running 0.3s"),
            "{lines}"
        );
        assert!(
            lines.contains("sidecar esbuild running · pid 77 · up 0.3s"),
            "{lines}"
        );
        st.update(
            Event::SidecarExited {
                id: 1,
                status: ExitStatus {
                    code: Some(1),
                    signal: None,
                },
                output: Vec::new(),
            },
            t0 + Duration::from_secs(1),
        );
        let r = render(&st, &info(), 100, t0 + Duration::from_secs(1));
        assert!(
            r.lines
                .iter()
                .any(|l| l == "sidecar esbuild exited (code 1) · again in 1.0s"),
            "{:?}",
            r.lines
        );
    }

    #[test]
    fn running_at_80_columns() {
        let t0 = Instant::now();
        let st = running(t0);
        let r = render(&st, &info(), 80, t0 + Duration::from_secs(75));
        assert_eq!(r.state, "running");
        assert_eq!(r.tone, Tone::Good);
        assert_eq!(
            r.lines[1],
            "running  │  last build ok in 1.23s · 0 errors · 0 warnings"
        );
        assert_eq!(
            r.lines[2],
            "pid 4242 · up 1m15s · 0 restarts  │  proxy http://127.0.0.1:3000"
        );
        assert!(r
            .lines
            .last()
            .unwrap()
            .starts_with("r rebuild  R restart  p pause"));
        assert!(r.lines.iter().all(|l| l.chars().count() < 80));
    }

    #[test]
    fn everything_fits_at_160_columns() {
        let t0 = Instant::now();
        let mut st = running(t0);
        st.update(
            Event::Changed {
                files: vec![PathBuf::from("/p/src/main.rs")],
                removed_dirs: Vec::new(),
            },
            t0 + Duration::from_secs(2),
        );
        st.update(Event::Tick, t0 + Duration::from_secs(3));
        let r = render(&st, &info(), 160, t0 + Duration::from_millis(4500));
        assert_eq!(r.state, "building 1.5s");
        assert_eq!(r.tone, Tone::Busy);
        assert_eq!(
            r.lines[1],
            "building 1.5s  │  last build ok in 1.23s · 0 errors · 0 warnings"
        );
        assert_eq!(
            r.lines[2],
            "pid 4242 · up 4.5s · 0 restarts  │  changed src/main.rs  │  proxy http://127.0.0.1:3000"
        );
    }

    #[test]
    fn a_failed_build_at_40_columns_is_compact() {
        let t0 = Instant::now();
        let mut st = running(t0);
        st.update(Event::Command(crate::core::event::Command::Rebuild), t0);
        st.update(
            Event::BuildFinished {
                id: 2,
                outcome: outcome(false),
            },
            t0,
        );
        let r = render(&st, &info(), 40, t0 + Duration::from_secs(5));
        assert_eq!(r.state, "build failed");
        assert_eq!(r.tone, Tone::Bad);
        assert_eq!(r.lines.len(), 4, "{:?}", r.lines);
        assert_eq!(r.lines[1], "build failed · 1.23s 1E 0W");
        assert_eq!(r.lines[2], "pid 4242 up 5.0s");
        assert_eq!(r.lines[3], "r R p c o q");
        assert!(r.lines.iter().all(|l| l.chars().count() < 40));
    }

    #[test]
    fn wide_characters_never_overflow() {
        let t0 = Instant::now();
        let mut st = running(t0);
        st.trigger_files = vec![PathBuf::from("/p/src/日本語のファイル名前/ハンドラー.rs")];
        for width in [10, 30, 41, 80] {
            let r = render(&st, &info(), width, t0);
            for line in &r.lines {
                assert!(
                    unicode_width::UnicodeWidthStr::width(line.as_str()) < width,
                    "{width}: {line}"
                );
            }
        }
    }

    #[test]
    fn exited_paused_and_watching() {
        let t0 = Instant::now();
        let mut st = running(t0);
        st.update(
            Event::AppExited {
                gen: 1,
                status: ExitStatus {
                    code: Some(3),
                    signal: None,
                },
                output: vec![
                    "\x1b[31mError:\x1b[0m missing DATABASE_URL".into(),
                    "".into(),
                ],
            },
            t0,
        );
        let r = render(&st, &info(), 80, t0);
        assert_eq!(
            (r.state.as_str(), r.tone),
            ("app exited (code 3)", Tone::Bad)
        );
        // Its last words, without colours, after the addresses.
        assert!(
            r.lines[2].contains("last output: Error: missing DATABASE_URL"),
            "{:?}",
            r.lines
        );
        st.update(Event::Command(crate::core::event::Command::TogglePause), t0);
        let r = render(&st, &info(), 80, t0);
        assert_eq!((r.state.as_str(), r.tone), ("paused", Tone::Quiet));
        assert!(r.lines.last().unwrap().contains("p resume"));
        let fresh = state();
        assert_eq!(
            render(&fresh, &PanelInfo::default(), 80, t0).state,
            "watching"
        );
    }
}
