//! The one owner of hotrun's state and the one place decisions are made.
//!
//! [`State::update`] takes an [`Event`] and the current time and returns the [`Effect`]s
//! to perform. It does no I/O and reads no clock, so every hard case — a save during a
//! build, a save during a swap, a failed build while the old app runs, the app dying
//! during a build — is a plain unit test. The build and the app are two lifecycles side
//! by side, because the old app keeps serving while the new one builds.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::core::classify::Classifier;
use crate::core::event::{
    Browser, BuildOutcome, ChangeKind, Command, Diagnostic, Effect, Event, Executable, ExitStatus,
    Report, Stream,
};
use crate::core::options::{OnBusy, Options, RestartPolicy, Swap};

mod pipeline;
pub use pipeline::{Pipeline, SidecarRun, TaskRun};

/// The build lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub enum Build {
    Idle,
    /// Build inputs changed; waiting for the burst to end.
    Settling {
        first: Instant,
        last: Instant,
        files: BTreeSet<PathBuf>,
    },
    Running {
        id: u64,
        started: Instant,
        files: Vec<PathBuf>,
        /// With `on_busy = "queue"`: changes seen during this build.
        queued: Option<BTreeSet<PathBuf>>,
    },
}

/// The app lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub enum App {
    /// Nothing started yet (first build running or failed).
    None,
    /// The supervisor is starting; the app's pid is not known yet.
    Spawning {
        gen: u64,
        since: Instant,
    },
    Starting {
        gen: u64,
        pid: u32,
        since: Instant,
    },
    Ready {
        gen: u64,
        pid: u32,
        since: Instant,
    },
    /// Asked to stop; `then_start` swaps in the newest build once it is gone.
    Stopping {
        gen: u64,
        pid: Option<u32>,
        since: Instant,
        then_start: bool,
    },
    /// Exited by itself (or could not start); `why` is its last line of output.
    Exited {
        status: ExitStatus,
        at: Instant,
        why: Option<String>,
    },
}

/// A new generation starting beside the one that serves (a blue-green swap). It takes
/// the traffic once it is ready; if it exits or does not get ready in time first, it is
/// rolled back and the old one goes on as if nothing happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub gen: u64,
    /// Known once its helper says it started.
    pub pid: Option<u32>,
    pub since: Instant,
    /// It said `READY=1` before its helper said it started.
    notified: bool,
    /// It did not get ready in time and was asked to stop: rolled back once it exits.
    given_up: bool,
    /// What it was started from: what runs once it takes over.
    executable: Option<Executable>,
}

/// What the last finished build said.
#[derive(Debug, Clone, PartialEq)]
pub enum LastBuild {
    None,
    Ok,
    Failed { diagnostics: Vec<Diagnostic> },
}

/// A successful build that can be run.
#[derive(Debug, Clone, PartialEq)]
struct Runnable {
    executable: Option<Executable>,
}

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct State {
    options: Options,
    classifier: Classifier,
    pub build: Build,
    /// The generation that serves (or the one swapped in by stop-then-start).
    pub app: App,
    /// A newer generation starting beside it, in a blue-green swap.
    pub incoming: Option<Incoming>,
    /// Generations asked to stop once a newer one took over, or rolled back: their
    /// exits are expected and said as such.
    retiring: BTreeSet<u64>,
    /// The app said `READY=1` on its `NOTIFY_SOCKET` (so overlapping swaps can wait
    /// for its word: `Swap::OverlapWhenNotified`).
    notifies: bool,
    /// A new generation clashed with the one serving (a port or lock it takes for
    /// itself): swaps stop-then-start from then on.
    overlap_failed: bool,
    pub last: LastBuild,
    /// The newest successful build.
    runnable: Option<Runnable>,
    /// The executable the current app generation was started from.
    running: Option<Executable>,
    next_build: u64,
    next_gen: u64,
    pub builds_finished: u32,
    pub paused: bool,
    /// Build inputs that changed while paused (`Some` even when empty after a rescan).
    paused_files: Option<BTreeSet<PathBuf>>,
    /// The watcher is sorting events it got (`Event::Changing`) and has not said what
    /// changed yet: the burst is not over, whatever the clock says.
    sorting: bool,
    quitting: Option<i32>,
    restart_at: Option<Instant>,
    backoff: Duration,
    /// Automatic restarts after a crash (`run.restart`).
    pub restarts: u32,
    /// App generations started so far (swaps and restarts included).
    pub starts: u32,
    /// What the last finished build said, for the panel.
    pub last_summary: Option<Summary>,
    /// The files that started the current or last build.
    pub trigger_files: Vec<PathBuf>,
    /// Build inputs and other files changed in the current burst, reported once per
    /// kind when it is over (a branch switch is one `change`, not hundreds): paths kept
    /// (at most `event::PATHS_MAX`) and how many there were.
    unreported: std::collections::BTreeMap<ChangeKind, (Vec<PathBuf>, usize)>,
    /// When the burst counts as over, unless a build starts first.
    report_at: Option<Instant>,
    /// The `[[on_change]]` commands and sidecars.
    pub pipeline: Pipeline,
}

/// The last finished build, in numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub ok: bool,
    pub duration: Duration,
    pub errors: usize,
    pub warnings: usize,
}

impl State {
    pub fn new(options: Options, classifier: Classifier) -> State {
        State {
            classifier,
            build: Build::Idle,
            app: App::None,
            incoming: None,
            retiring: BTreeSet::new(),
            notifies: false,
            overlap_failed: false,
            last: LastBuild::None,
            runnable: None,
            running: None,
            next_build: 0,
            next_gen: 0,
            builds_finished: 0,
            paused: false,
            paused_files: None,
            sorting: false,
            quitting: None,
            restart_at: None,
            backoff: BACKOFF_START,
            restarts: 0,
            starts: 0,
            last_summary: None,
            trigger_files: Vec::new(),
            unreported: Default::default(),
            report_at: None,
            pipeline: Pipeline::new(&options),
            options,
        }
    }

    /// The first build, at start (the loop sends `Event::Watching` instead, which
    /// starts it once watching is set up).
    #[cfg(test)]
    pub fn start(&mut self, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.start_build(Vec::new(), now, &mut fx);
        fx
    }

    /// New settings from an edited config file.
    pub fn reconfigure(&mut self, options: Options, classifier: Classifier) {
        self.options = options;
        self.classifier = classifier.keep_dep_info_from(&self.classifier);
    }

    /// The earliest time `update(Event::Tick, …)` has something to do, if any. While
    /// nothing is pending there is none, so an idle hotrun never wakes up.
    pub fn next_deadline(&self) -> Option<Instant> {
        let settle = match &self.build {
            // The first build waits for the commands' first runs, not for a clock.
            Build::Settling { .. } if self.first_build_waits() => None,
            Build::Settling { first, last, .. } => Some(self.settle_deadline(*first, *last)),
            _ => None,
        };
        let grace = match &self.app {
            App::Starting { since, .. } => Some(*since + self.ready_wait()),
            _ => None,
        };
        let incoming = self
            .incoming
            .as_ref()
            .filter(|i| !i.given_up)
            .map(|i| i.since + self.options.ready_timeout);
        // A settling build says its burst when it starts.
        let report = self
            .report_at
            .filter(|_| !matches!(self.build, Build::Settling { .. }));
        let pipeline = self.pipeline.next_deadline(&self.options);
        [settle, grace, incoming, self.restart_at, report, pipeline]
            .into_iter()
            .flatten()
            .min()
    }

    /// How long a starting app gets before it counts as ready.
    fn ready_wait(&self) -> Duration {
        if self.options.probe {
            self.options.ready_timeout
        } else {
            self.options.ready_grace
        }
    }

    /// Whether the app answers requests now (the proxy forwards only then).
    pub fn serving(&self) -> bool {
        matches!(self.app, App::Ready { .. })
    }

    /// Whether an app that answers is on its way: a build runs or waits to, an app
    /// starts, a swap or a restart is under way. When none is, the proxy answers at
    /// once instead of holding requests for nothing.
    pub fn coming(&self) -> bool {
        if self.quitting.is_some() {
            return false;
        }
        let building = matches!(self.build, Build::Running { .. })
            || (matches!(self.build, Build::Settling { .. }) && !self.paused);
        let starting = match self.app {
            App::Spawning { .. } | App::Starting { .. } => true,
            App::Stopping { then_start, .. } => then_start,
            App::None => matches!(self.last, LastBuild::None),
            App::Ready { .. } | App::Exited { .. } => false,
        };
        let incoming = self.incoming.as_ref().is_some_and(|i| !i.given_up);
        building || starting || incoming || self.restart_at.is_some()
    }

    /// Whether the next swap starts the new generation beside the serving one.
    fn overlaps(&self) -> bool {
        !self.overlap_failed
            && match self.options.swap {
                Swap::Restart => false,
                Swap::Overlap => true,
                Swap::OverlapWhenNotified => self.notifies,
            }
    }

    /// Why no app answers right now, in words for the proxy's 502 page.
    pub fn waiting_for(&self) -> String {
        if self.quitting.is_some() {
            return "hotrun is stopping".into();
        }
        if self.paused {
            return "watching is paused (resume to build the latest changes)".into();
        }
        if let (App::Exited { status, .. }, Some(_)) = (&self.app, self.restart_at) {
            return format!("the app exited with {status}; restarting it");
        }
        if let LastBuild::Failed { diagnostics } = &self.last {
            if !matches!(self.build, Build::Running { .. }) {
                let first = diagnostics
                    .iter()
                    .find(|d| d.level == "error")
                    .or(diagnostics.first())
                    .map(|d| match (&d.file, d.line) {
                        (Some(f), Some(l)) => format!(": {f}:{l}: {}", d.message),
                        _ => format!(": {}", d.message),
                    })
                    .unwrap_or_default();
                return format!("the build failed{first}");
            }
        }
        if self.incoming.as_ref().is_some_and(|i| !i.given_up) {
            return "starting the app".into();
        }
        match (&self.app, &self.build) {
            (App::Exited { status, .. }, Build::Idle) => {
                format!("the app exited with {status}; it starts again after the next change")
            }
            (_, Build::Running { .. } | Build::Settling { .. }) => "building".into(),
            (App::Starting { .. } | App::Spawning { .. } | App::Stopping { .. }, _) => {
                "starting the app".into()
            }
            _ => "waiting for the app".into(),
        }
    }

    fn settle_deadline(&self, first: Instant, last: Instant) -> Instant {
        let cap = first + self.options.debounce_cap;
        if self.sorting {
            cap
        } else {
            (last + self.options.debounce).min(cap)
        }
    }

    pub fn update(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::Changed {
                files,
                removed_dirs,
            } => {
                if std::mem::take(&mut self.sorting) {
                    // The window counts from when the watcher is done sorting.
                    if let Build::Settling { last, .. } = &mut self.build {
                        *last = now;
                    }
                }
                self.on_changed(files, removed_dirs, now, &mut fx)
            }
            Event::Rescan => {
                // Worth the json `error`: hotrun works around it, but it should be rare.
                fx.push(Effect::Report(Report::Error {
                    message: "file events were lost (the OS watch queue overflowed): rebuilding"
                        .into(),
                }));
                if self.paused {
                    self.paused_files.get_or_insert_with(BTreeSet::new);
                } else if self.quitting.is_none() {
                    self.on_build_input(BTreeSet::new(), now, &mut fx);
                }
            }
            Event::Notice(message) => fx.push(Effect::Report(Report::Error { message })),
            Event::Changing => self.sorting = true,
            Event::Watching {
                roots,
                directories,
                polling,
            } => {
                fx.push(Effect::Report(Report::Watching {
                    roots,
                    directories,
                    polling,
                }));
                // The first build starts once every directory is watched, so no save
                // made while it runs can go unseen; after the `[[on_change]]` commands'
                // first runs, so the first page has what they make.
                if self.next_build == 0 && !self.pipeline.started() && self.quitting.is_none() {
                    self.pipeline.start(now, &mut fx);
                    self.release_first_build(now, &mut fx);
                }
            }
            Event::Fatal(message) => {
                fx.push(Effect::Report(Report::Error { message }));
                self.quit(1, now, &mut fx);
            }
            Event::Tick => self.on_tick(now, &mut fx),
            Event::Clock => {}
            Event::BuildOutput { id, line } => {
                if matches!(self.build, Build::Running { id: running, .. } if running == id) {
                    fx.push(Effect::Report(Report::Output {
                        stream: Stream::Build,
                        line,
                    }));
                }
            }
            Event::BuildFinished { id, outcome } => {
                self.on_build_finished(id, outcome, now, &mut fx)
            }
            Event::AppStarted { gen, pid } if self.is_incoming(gen) => {
                let Some(incoming) = self.incoming.as_mut() else {
                    return fx;
                };
                incoming.pid = Some(pid);
                fx.push(Effect::Report(Report::AppStarted { pid }));
                if incoming.notified {
                    self.take_over(now, &mut fx);
                } else if self.options.swap == Swap::Overlap && self.options.probe {
                    fx.push(Effect::Probe { gen });
                }
            }
            Event::AppReady { gen } if self.is_incoming(gen) => {
                if self.options.swap == Swap::Overlap {
                    self.take_over(now, &mut fx);
                }
            }
            Event::AppNotified { gen } => self.on_notified(gen, now, &mut fx),
            Event::AppStarted { gen, pid } => {
                if let App::Spawning { gen: g, since } = self.app {
                    if g == gen {
                        self.app = App::Starting { gen, pid, since };
                        fx.push(Effect::Report(Report::AppStarted { pid }));
                        if self.options.probe {
                            fx.push(Effect::Probe { gen });
                        }
                    }
                } else if let App::Stopping {
                    gen: g,
                    pid: p @ None,
                    ..
                } = &mut self.app
                {
                    if *g == gen {
                        *p = Some(pid);
                        fx.push(Effect::Report(Report::AppStarted { pid }));
                    }
                }
            }
            Event::AppReady { gen } => self.on_ready(gen, now, &mut fx),
            Event::AppOutput { stream, line } => {
                fx.push(Effect::Report(Report::Output { stream, line }))
            }
            Event::AppExited {
                gen,
                status,
                output,
            } => self.on_app_exited(gen, status, output, now, &mut fx),
            Event::AppFound { url } => fx.push(Effect::Report(Report::Urls {
                urls: vec![("app", url)],
            })),
            Event::Command(command) => self.on_command(command, now, &mut fx),
            Event::Ui(action) => fx.push(Effect::Ui(action)),
            Event::ConfigApplied {
                rebuild,
                restart,
                sidecars,
            } => {
                if self.quitting.is_none() {
                    if self
                        .pipeline
                        .reconfigure(&self.options, sidecars, now, &mut fx)
                    {
                        self.show_failures(false, &mut fx);
                    }
                    self.release_first_build(now, &mut fx);
                    if rebuild {
                        self.on_build_input(BTreeSet::new(), now, &mut fx);
                    } else if restart && self.runnable.is_some() {
                        self.restart_app(now, &mut fx);
                    }
                }
            }
            Event::ToolOutput { id, line } => fx.extend(self.pipeline.on_output(id, line)),
            Event::TaskFinished { id, outcome } => {
                if self
                    .pipeline
                    .on_task_finished(&self.options, id, outcome, now, &mut fx)
                {
                    self.show_failures(false, &mut fx);
                }
                self.release_first_build(now, &mut fx);
            }
            Event::SidecarStarted { id, pid } => self.pipeline.on_sidecar_started(id, pid, &mut fx),
            Event::SidecarExited { id, status, output } => {
                let quitting = self.quitting.is_some();
                self.pipeline
                    .on_sidecar_exited(id, status, output, quitting, now, &mut fx)
            }
        }
        self.check_exit_after_builds(now, &mut fx);
        self.check_quit_done(&mut fx);
        fx
    }

    /// No build has started yet, and the `[[on_change]]` commands' first runs (or
    /// their reruns) are not over: the first build waits for what they make.
    fn first_build_waits(&self) -> bool {
        self.next_build == 0
            && self.pipeline.started()
            && self.pipeline.busy()
            && self.quitting.is_none()
    }

    /// The commands' first runs are over (or there are none): the first build starts,
    /// with what changed meanwhile. (A build asked for meanwhile, `r`, was the first.)
    fn release_first_build(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if self.next_build != 0
            || !self.pipeline.started()
            || self.pipeline.busy()
            || self.quitting.is_some()
        {
            return;
        }
        let files = match std::mem::replace(&mut self.build, Build::Idle) {
            Build::Settling { files, .. } => files.into_iter().collect(),
            _ => Vec::new(),
        };
        self.start_build(files, now, fx);
    }

    /// What the page shows of failures: the failing commands' diagnostics and the
    /// failed build's (the commands' first: the overlay shows a bounded number), or
    /// nothing. `after_build`: a build just ended (without a new app) — else a command
    /// did, and a page with no failure left shows what holds of the app.
    fn show_failures(&self, after_build: bool, fx: &mut Vec<Effect>) {
        let mut diagnostics = self.pipeline.failures();
        if let LastBuild::Failed { diagnostics: build } = &self.last {
            diagnostics.extend(build.iter().cloned());
        }
        if !diagnostics.is_empty() {
            fx.push(Effect::Browser(Browser::Error {
                diagnostics,
                title: self.failure_title(),
                build_ended: after_build,
            }));
        } else if after_build {
            fx.push(Effect::Browser(Browser::Ok));
        } else {
            fx.push(Effect::Browser(Browser::Fixed));
            if let App::Exited { status, why, .. } = &self.app {
                // The app is still down: that is what the page shows again.
                fx.push(Effect::Browser(Browser::Exited {
                    status: *status,
                    output: why.iter().cloned().collect(),
                    rolled_back: false,
                }));
            }
        }
    }

    /// The overlay's title when commands failed: "tailwind failed", "The build and
    /// sass failed"; `None` when only the build did.
    fn failure_title(&self) -> Option<String> {
        let failing = self.pipeline.failing();
        if failing.is_empty() {
            return None;
        }
        let names = match failing.as_slice() {
            [one] => one.to_string(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
            [] => String::new(),
        };
        Some(match self.last {
            LastBuild::Failed { .. } => format!("The build and {names} failed"),
            _ => format!("{names} failed"),
        })
    }

    /// A new app is live: the tabs reload, and see the failing commands' output again.
    fn compiled(&self, fx: &mut Vec<Effect>) {
        fx.push(Effect::Browser(Browser::Compiled));
        let failures = self.pipeline.failures();
        if !failures.is_empty() {
            fx.push(Effect::Browser(Browser::Error {
                diagnostics: failures,
                title: self.failure_title(),
                build_ended: false,
            }));
        }
    }

    fn on_changed(
        &mut self,
        files: Vec<PathBuf>,
        removed_dirs: Vec<PathBuf>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if self.quitting.is_some() {
            return;
        }
        self.pipeline.on_changed(&self.classifier, &files, now, fx);
        let last_failed = matches!(self.last, LastBuild::Failed { .. });
        let mut by_kind: std::collections::BTreeMap<ChangeKind, Vec<PathBuf>> = Default::default();
        let files = files.into_iter().map(|f| (f, false));
        let dirs = removed_dirs.into_iter().map(|d| (d, true));
        for (path, dir) in files.chain(dirs) {
            let kind = if dir {
                self.classifier.classify_removed_dir(&path, last_failed)
            } else {
                self.classifier.classify(&path, last_failed)
            };
            by_kind.entry(kind).or_default().push(path);
        }
        for (kind, paths) in &by_kind {
            if matches!(kind, ChangeKind::Build | ChangeKind::Other) {
                // Said when the burst is over: see `report_changes`.
                let (kept, count) = self.unreported.entry(*kind).or_default();
                *count += paths.len();
                let room = crate::core::event::PATHS_MAX.saturating_sub(kept.len());
                kept.extend(paths.iter().take(room).cloned());
                self.report_at = Some(now + self.options.debounce);
            } else {
                // Acted on at once, and said at once.
                fx.push(Effect::Report(Report::Change {
                    paths: paths.clone(),
                    count: paths.len(),
                    kind: *kind,
                }));
            }
        }
        if by_kind.contains_key(&ChangeKind::Config) {
            fx.push(Effect::ReloadConfig);
        }
        if self.paused {
            if let Some(build) = by_kind.remove(&ChangeKind::Build) {
                self.paused_files
                    .get_or_insert_with(BTreeSet::new)
                    .extend(build);
            }
            return;
        }
        // Assets and stylesheets go to the browser at once: no settle window, no build.
        if let Some(css) = by_kind.get(&ChangeKind::Css) {
            for path in css {
                fx.push(Effect::Browser(Browser::Css { path: path.clone() }));
            }
        }
        if let Some(asset) = by_kind.get(&ChangeKind::Asset) {
            fx.push(Effect::Browser(Browser::Reload {
                path: asset[0].clone(),
            }));
        }
        // `.env` and the like: the app restarts with them, without a build.
        if by_kind.contains_key(&ChangeKind::Restart) && self.runnable.is_some() {
            self.restart_app(now, fx);
        }
        if let Some(build) = by_kind.remove(&ChangeKind::Build) {
            self.on_build_input(build.into_iter().collect(), now, fx);
        }
    }

    fn on_build_input(&mut self, files: BTreeSet<PathBuf>, now: Instant, fx: &mut Vec<Effect>) {
        match &mut self.build {
            Build::Idle => {
                self.build = Build::Settling {
                    first: now,
                    last: now,
                    files,
                }
            }
            Build::Settling {
                last,
                files: pending,
                ..
            } => {
                *last = now;
                pending.extend(files);
            }
            Build::Running {
                queued: Some(queued),
                ..
            } => queued.extend(files),
            Build::Running {
                id,
                files: running,
                queued: None,
                ..
            } => {
                if self.options.on_busy == OnBusy::Queue {
                    self.build = match std::mem::replace(&mut self.build, Build::Idle) {
                        Build::Running {
                            id,
                            started,
                            files: f,
                            ..
                        } => Build::Running {
                            id,
                            started,
                            files: f,
                            queued: Some(files),
                        },
                        other => other,
                    };
                    return;
                }
                let id = *id;
                let mut all: BTreeSet<PathBuf> = running.drain(..).collect();
                all.extend(files);
                fx.push(Effect::CancelBuild { id });
                fx.push(Effect::Report(Report::BuildCancelled));
                self.build = Build::Settling {
                    first: now,
                    last: now,
                    files: all,
                };
            }
        }
    }

    /// Say the changes of the burst so far, one `change` per kind.
    fn report_changes(&mut self, fx: &mut Vec<Effect>) {
        self.report_at = None;
        for (kind, (paths, count)) in std::mem::take(&mut self.unreported) {
            fx.push(Effect::Report(Report::Change { paths, count, kind }));
        }
    }

    fn on_tick(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let ready_timeout = self.options.ready_timeout;
        if let Some(incoming) = self.incoming.as_mut() {
            if !incoming.given_up && now >= incoming.since + ready_timeout {
                incoming.given_up = true;
                fx.push(Effect::StopApp { gen: incoming.gen });
                fx.push(Effect::Report(Report::Error {
                    message: format!(
                        "the new app did not get ready within {} (run.ready_timeout): rolling back, the old one keeps serving",
                        crate::text::format_duration(ready_timeout)
                    ),
                }));
            }
        }
        self.pipeline.on_tick(&self.options, now, fx);
        if let Build::Settling { first, last, files } = &self.build {
            if now >= self.settle_deadline(*first, *last) && !self.first_build_waits() {
                let files = files.iter().cloned().collect();
                self.start_build(files, now, fx);
            }
        }
        // A settling build says its burst when it starts.
        if self.report_at.is_some_and(|at| now >= at)
            && !matches!(self.build, Build::Settling { .. })
        {
            self.report_changes(fx);
        }
        if let App::Starting { gen, since, .. } = self.app {
            if now >= since + self.ready_wait() {
                if self.options.probe {
                    fx.push(Effect::Report(Report::Error {
                        message: format!(
                            "the app did not answer its readiness probe within {} (run.ready_timeout); going on as if it were ready",
                            crate::text::format_duration(self.options.ready_timeout)
                        ),
                    }));
                }
                self.on_ready(gen, now, fx);
            }
        }
        if let Some(at) = self.restart_at {
            if now >= at {
                self.restart_at = None;
                if matches!(self.app, App::Exited { .. } | App::None) && self.quitting.is_none() {
                    self.restarts += 1;
                    self.spawn(now, fx);
                }
            }
        }
    }

    /// Generation `gen` is the one starting beside the serving one (and still may
    /// take over).
    fn is_incoming(&self, gen: u64) -> bool {
        self.incoming
            .as_ref()
            .is_some_and(|i| i.gen == gen && !i.given_up)
    }

    /// The starting generation answers: it serves now.
    fn on_ready(&mut self, gen: u64, now: Instant, fx: &mut Vec<Effect>) {
        if let App::Starting { gen: g, pid, since } = self.app {
            if g == gen {
                if self.options.routes {
                    // On a port of its own: requests go there from now on.
                    fx.push(Effect::Route { gen });
                }
                self.app = App::Ready { gen, pid, since };
                fx.push(Effect::Report(Report::AppReady {
                    after: now.saturating_duration_since(since),
                }));
                self.compiled(fx);
            }
        }
    }

    /// `READY=1` from generation `gen`: the app can say when it is ready, so later swaps
    /// may overlap (`Swap::OverlapWhenNotified`); and this generation is.
    fn on_notified(&mut self, gen: u64, now: Instant, fx: &mut Vec<Effect>) {
        if self.options.swap == Swap::OverlapWhenNotified && !self.notifies {
            self.notifies = true;
            fx.push(info(
                "the app says when it is ready (NOTIFY_SOCKET): swaps start the new app beside the old one from now on",
            ));
        }
        match self.incoming.as_mut() {
            Some(incoming) if incoming.gen == gen && !incoming.given_up => {
                if incoming.pid.is_some() {
                    self.take_over(now, fx);
                } else {
                    incoming.notified = true;
                }
            }
            _ => self.on_ready(gen, now, fx),
        }
    }

    /// Let the incoming generation go (a newer build, a quit): stopped, its exit
    /// expected.
    fn drop_incoming(&mut self, fx: &mut Vec<Effect>) {
        if let Some(incoming) = self.incoming.take() {
            if !incoming.given_up {
                fx.push(Effect::StopApp { gen: incoming.gen });
            }
            self.retiring.insert(incoming.gen);
        }
    }

    /// Start the newest build beside the generation that serves.
    fn spawn_incoming(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let Some(runnable) = &self.runnable else {
            return;
        };
        self.next_gen += 1;
        self.starts += 1;
        let gen = self.next_gen;
        let executable = runnable.executable.clone();
        fx.push(Effect::SpawnApp {
            gen,
            executable: executable.as_ref().map(|e| e.path.clone()),
        });
        self.incoming = Some(Incoming {
            gen,
            pid: None,
            since: now,
            notified: false,
            given_up: false,
            executable,
        });
    }

    /// The incoming generation is ready: new requests go to it, the old one finishes
    /// what it is answering and stops.
    fn take_over(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let Some(incoming) = self.incoming.take() else {
            return;
        };
        fx.push(Effect::Route { gen: incoming.gen });
        match self.app {
            App::Spawning { gen, .. } | App::Starting { gen, .. } | App::Ready { gen, .. } => {
                fx.push(Effect::StopApp { gen });
                self.retiring.insert(gen);
            }
            App::Stopping { gen, .. } => {
                self.retiring.insert(gen);
            }
            App::None | App::Exited { .. } => {}
        }
        self.running = incoming.executable;
        self.app = App::Ready {
            gen: incoming.gen,
            pid: incoming.pid.unwrap_or_default(),
            since: incoming.since,
        };
        fx.push(Effect::Report(Report::AppReady {
            after: now.saturating_duration_since(incoming.since),
        }));
        // Only now: a reload gets the new build.
        self.compiled(fx);
    }

    /// The incoming generation died or did not get ready in time: the one serving goes
    /// on untouched, and the failure is shown like a failed build. A clash with the old
    /// generation (a port or a lock the app takes for itself) makes swaps
    /// stop-then-start from now on, starting with this one.
    fn roll_back(
        &mut self,
        status: ExitStatus,
        output: Vec<String>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(incoming) = self.incoming.take() else {
            return;
        };
        if !matches!(self.app, App::Ready { .. }) {
            // The old app is gone too (it exited by itself meanwhile): nothing to roll
            // back to. This one crashed like any app.
            self.crashed(status, output, incoming.since, now, fx);
            return;
        }
        fx.push(Effect::Report(Report::AppExited {
            status,
            requested: false,
            output: output.clone(),
            rolled_back: true,
        }));
        // Killed by hotrun after its ready timeout: its last words are no clash.
        let clash = !incoming.given_up && output.iter().any(|l| clashes(l));
        if clash && !self.overlap_failed {
            self.overlap_failed = true;
            fx.push(Effect::Report(Report::Error {
                message: "the new app clashed with the one running (a port or a lock it takes for itself): swapping by stop-then-start from now on (set run.swap = \"restart\" to say so)".into(),
            }));
            if self.quitting.is_none() {
                self.swap(now, fx);
            }
            return;
        }
        fx.push(Effect::Browser(Browser::Exited {
            status,
            output,
            rolled_back: true,
        }));
        fx.push(info(
            "the new app did not start: the old one keeps serving; the next save tries again",
        ));
    }

    /// Start the app again with the newest build, even if the binary did not change (a
    /// restart asked for, an `.env` or `[run]` change): a generation already starting
    /// was started with what changed, so it is dropped too.
    fn restart_app(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        self.restart_at = None;
        self.running = None;
        self.drop_incoming(fx);
        self.swap(now, fx);
    }

    fn start_build(&mut self, files: Vec<PathBuf>, now: Instant, fx: &mut Vec<Effect>) {
        self.report_changes(fx);
        self.next_build += 1;
        self.trigger_files = files.clone();
        let id = self.next_build;
        fx.push(Effect::Report(Report::BuildStarted {
            files: files.clone(),
        }));
        fx.push(Effect::StartBuild {
            id,
            files: files.clone(),
        });
        fx.push(Effect::Browser(Browser::Building {
            files: files.clone(),
        }));
        self.build = Build::Running {
            id,
            started: now,
            files,
            queued: None,
        };
    }

    fn on_build_finished(
        &mut self,
        id: u64,
        outcome: BuildOutcome,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Build::Running {
            id: running,
            queued,
            ..
        } = &mut self.build
        else {
            return;
        };
        if *running != id {
            return;
        }
        let queued = queued.take();
        self.build = Build::Idle;
        // Queued changes build again, even an empty set (a rescan asked for it).
        if let Some(files) = queued {
            self.build = Build::Settling {
                first: now,
                last: now,
                files,
            };
        }
        self.builds_finished += 1;
        self.last_summary = Some(Summary {
            ok: outcome.ok,
            duration: outcome.duration,
            errors: outcome.errors(),
            warnings: outcome.warnings(),
        });
        fx.push(Effect::Report(Report::BuildFinished {
            outcome: outcome.clone(),
        }));
        if !outcome.ok {
            // A failed build is a state, never a reason to touch the running app.
            self.last = LastBuild::Failed {
                diagnostics: outcome.diagnostics,
            };
            self.show_failures(true, fx);
            return;
        }
        self.last = LastBuild::Ok;
        self.classifier
            .set_dep_info(&outcome.input_files, &outcome.input_dirs);
        self.runnable = Some(Runnable {
            executable: outcome.executable,
        });
        self.backoff = BACKOFF_START;
        self.restart_at = None;
        if self.quitting.is_some() {
            return;
        }
        self.swap(now, fx);
    }

    /// Put the newest good build in place of whatever runs now.
    fn swap(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let new = self.runnable.as_ref().and_then(|r| r.executable.clone());
        if self.overlaps() && matches!(self.app, App::Ready { .. }) {
            let running = match &self.incoming {
                Some(incoming) => &incoming.executable,
                None => &self.running,
            };
            if new.is_some() && new == *running {
                fx.push(info("binary unchanged: the app keeps running"));
                self.show_failures(true, fx);
                return;
            }
            // A newer build while one starts: that one is dropped for it.
            self.drop_incoming(fx);
            self.spawn_incoming(now, fx);
            return;
        }
        self.drop_incoming(fx);
        let unchanged = new.is_some() && new == self.running;
        if unchanged && matches!(self.app, App::Starting { .. } | App::Ready { .. }) {
            fx.push(info("binary unchanged: the app keeps running"));
            self.show_failures(true, fx);
            return;
        }
        match &mut self.app {
            App::Starting { gen, .. } | App::Ready { gen, .. } => {
                let gen = *gen;
                self.stop(gen, true, now, fx);
            }
            App::Spawning { gen, .. } => {
                let gen = *gen;
                self.stop(gen, true, now, fx);
            }
            App::Stopping { then_start, .. } => *then_start = true,
            App::None | App::Exited { .. } => self.spawn(now, fx),
        }
    }

    fn stop(&mut self, gen: u64, then_start: bool, now: Instant, fx: &mut Vec<Effect>) {
        let pid = match self.app {
            App::Starting { pid, .. } | App::Ready { pid, .. } => Some(pid),
            _ => None,
        };
        fx.push(Effect::StopApp { gen });
        self.app = App::Stopping {
            gen,
            pid,
            since: now,
            then_start,
        };
    }

    fn spawn(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let Some(runnable) = &self.runnable else {
            return;
        };
        self.next_gen += 1;
        self.starts += 1;
        let gen = self.next_gen;
        self.running = runnable.executable.clone();
        fx.push(Effect::SpawnApp {
            gen,
            executable: runnable.executable.as_ref().map(|e| e.path.clone()),
        });
        self.app = App::Spawning { gen, since: now };
    }

    fn on_app_exited(
        &mut self,
        gen: u64,
        status: ExitStatus,
        output: Vec<String>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if self.retiring.remove(&gen) {
            fx.push(Effect::Report(Report::AppExited {
                status,
                requested: true,
                output: Vec::new(),
                rolled_back: false,
            }));
            return;
        }
        if self.incoming.as_ref().is_some_and(|i| i.gen == gen) {
            self.roll_back(status, output, now, fx);
            return;
        }
        match self.app {
            App::Stopping {
                gen: g, then_start, ..
            } if g == gen => {
                fx.push(Effect::Report(Report::AppExited {
                    status,
                    requested: true,
                    output: Vec::new(),
                    rolled_back: false,
                }));
                self.app = App::None;
                if then_start && self.quitting.is_none() {
                    self.spawn(now, fx);
                }
            }
            App::Spawning { gen: g, since }
            | App::Starting { gen: g, since, .. }
            | App::Ready { gen: g, since, .. }
                if g == gen =>
            {
                self.crashed(status, output, since, now, fx)
            }
            _ => {}
        }
    }

    /// The app exited by itself (or a new one died with no old one left to serve):
    /// said, shown over the page, and started again per `run.restart`.
    fn crashed(
        &mut self,
        status: ExitStatus,
        output: Vec<String>,
        since: Instant,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        fx.push(Effect::Report(Report::AppExited {
            status,
            requested: false,
            output: output.clone(),
            rolled_back: false,
        }));
        let why = output.iter().rev().find(|l| !l.trim().is_empty()).cloned();
        fx.push(Effect::Browser(Browser::Exited {
            status,
            output,
            rolled_back: false,
        }));
        self.app = App::Exited {
            status,
            at: now,
            why,
        };
        let again = match self.options.restart {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => !status.success(),
            RestartPolicy::Always => true,
        };
        // A new generation on its way takes over anyway.
        if again && self.quitting.is_none() && self.incoming.is_none() {
            // An app that ran a good while starts the backoff over.
            if now.saturating_duration_since(since) > BACKOFF_MAX {
                self.backoff = BACKOFF_START;
            }
            self.restart_at = Some(now + self.backoff);
            fx.push(info(&format!(
                "restarting the app in {}",
                crate::text::format_duration(self.backoff)
            )));
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
    }

    fn on_command(&mut self, command: Command, now: Instant, fx: &mut Vec<Effect>) {
        match command {
            Command::Quit => {
                if self.quitting.is_some() {
                    // Asked twice: stop waiting for the app's graceful exit.
                    fx.push(Effect::Exit(self.quitting.unwrap_or(0)));
                } else {
                    self.quit(0, now, fx);
                }
            }
            _ if self.quitting.is_some() => {}
            Command::Rebuild => {
                if let Build::Running { id, .. } = self.build {
                    fx.push(Effect::CancelBuild { id });
                    fx.push(Effect::Report(Report::BuildCancelled));
                }
                let files = match std::mem::replace(&mut self.build, Build::Idle) {
                    Build::Settling { files, .. } => files.into_iter().collect(),
                    _ => Vec::new(),
                };
                self.start_build(files, now, fx);
            }
            Command::Restart => {
                if self.runnable.is_none() {
                    fx.push(info("nothing to restart: no build has succeeded yet"));
                    return;
                }
                self.restart_app(now, fx);
            }
            Command::TogglePause => {
                let next = if self.paused {
                    Command::Resume
                } else {
                    Command::Pause
                };
                self.on_command(next, now, fx);
            }
            Command::Pause => {
                self.paused = true;
                fx.push(info(
                    "paused: changes are noted but not built (resume to build)",
                ));
            }
            Command::Resume => {
                self.paused = false;
                fx.push(info("watching again"));
                if let Some(files) = self.paused_files.take() {
                    self.on_build_input(files, now, fx);
                }
            }
        }
    }

    fn quit(&mut self, code: i32, now: Instant, fx: &mut Vec<Effect>) {
        if self.quitting.is_some() {
            return;
        }
        self.quitting = Some(code);
        self.restart_at = None;
        self.report_changes(fx);
        if let Build::Running { id, .. } = self.build {
            fx.push(Effect::CancelBuild { id });
        }
        self.build = Build::Idle;
        self.pipeline.quit(fx);
        self.drop_incoming(fx);
        match self.app {
            App::Spawning { gen, .. } | App::Starting { gen, .. } | App::Ready { gen, .. } => {
                self.stop(gen, false, now, fx)
            }
            App::Stopping {
                ref mut then_start, ..
            } => *then_start = false,
            App::None | App::Exited { .. } => {}
        }
    }

    fn check_exit_after_builds(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let Some(n) = self.options.exit_after_builds else {
            return;
        };
        let settled = matches!(self.build, Build::Idle)
            && matches!(self.app, App::None | App::Ready { .. } | App::Exited { .. })
            && self.incoming.is_none()
            && self.restart_at.is_none()
            && !self.pipeline.busy();
        if self.quitting.is_none() && self.builds_finished >= n && settled {
            self.quit(0, now, fx);
        }
    }

    fn check_quit_done(&mut self, fx: &mut Vec<Effect>) {
        if let Some(code) = self.quitting {
            if matches!(self.app, App::None | App::Exited { .. })
                && self.incoming.is_none()
                && self.retiring.is_empty()
                && self.pipeline.done()
                && !fx.iter().any(|e| matches!(e, Effect::Exit(_)))
            {
                fx.push(Effect::Exit(code));
            }
        }
    }
}

/// An output line that says the app could not take something the generation before it
/// holds: its own fixed port, a lock.
fn clashes(line: &str) -> bool {
    let line = line.to_ascii_lowercase();
    [
        "address already in use",
        "eaddrinuse",
        "only one usage of each socket address",
        "database is locked",
        "locked by another process",
        "could not acquire lock",
        "already locked",
    ]
    .iter()
    .any(|needle| line.contains(needle))
}

fn info(message: &str) -> Effect {
    Effect::Report(Report::Info {
        message: message.to_string(),
    })
}

#[cfg(test)]
mod tests;
