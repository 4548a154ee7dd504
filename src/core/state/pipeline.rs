//! The asset pipeline's lifecycles, beside the build's and the app's: each
//! `[[on_change]]` command settles, runs, is cancelled by a newer change of its inputs
//! and ends ok or failed; each sidecar starts, runs, and starts again per its policy,
//! with backoff. Pure like the rest of the state: events in, effects out, no I/O.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::core::classify::Classifier;
use crate::core::event::{BuildOutcome, Diagnostic, Effect, ExitStatus, Report};
use crate::core::options::{Options, RestartPolicy};

/// Where an `[[on_change]]` command is.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskRun {
    Idle,
    /// Its inputs changed; waiting for the burst to end.
    Settling {
        first: Instant,
        last: Instant,
        files: BTreeSet<PathBuf>,
    },
    Running {
        id: u64,
        started: Instant,
        files: BTreeSet<PathBuf>,
    },
}

/// One `[[on_change]]` command.
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    /// What it runs and on which changes: a config edit that changes it makes it
    /// another command.
    what: String,
    pub run: TaskRun,
    /// The last run failed with these: shown over the page until a run succeeds.
    pub failed: Option<Vec<Diagnostic>>,
    /// How long the last run that ended took (whether it failed is `failed`).
    pub took: Option<Duration>,
    /// Until then what changes may still be its last run's writing (the watcher sees a
    /// file a little after it is written).
    quiet_until: Option<Instant>,
    /// Files it writes, learned (beside its named outputs, or changed during
    /// [`SUSPECT_STRIKES`] + 1 of its runs in a row): they never start it again — until one changes while nothing
    /// of it runs: then someone else wrote it, and it is an input after all.
    outputs: BTreeSet<PathBuf>,
    /// Files that changed while it did not run: what the user edits.
    inputs: BTreeSet<PathBuf>,
    /// Files not known either way that changed during a run (or just after) and ran it
    /// again, and how many times in a row (see [`SUSPECT_STRIKES`]).
    suspects: std::collections::BTreeMap<PathBuf, u8>,
}

/// A file not known either way that changed during (or just after) this many runs in
/// a row, each started again for it, is the command's own writing. Fewer could take a
/// user's quick saves (a save, then a formatter's) for output and miss one.
const SUSPECT_STRIKES: u8 = 2;

/// At most this many files learned as a command's outputs, inputs or suspects (each).
const OUTPUTS_MAX: usize = 1000;

/// Where a sidecar is.
#[derive(Debug, Clone, PartialEq)]
pub enum SidecarRun {
    /// Not started yet (hotrun starts them once it watches).
    Pending,
    /// Its helper is starting; its pid is not known yet.
    Spawning {
        id: u64,
        since: Instant,
    },
    Running {
        id: u64,
        pid: u32,
        since: Instant,
    },
    /// It exited by itself and starts again then.
    Waiting {
        until: Instant,
        status: ExitStatus,
    },
    /// It exited by itself and stays down (`restart = "never"`, or a clean exit with
    /// `"on-failure"`).
    Exited {
        status: ExitStatus,
    },
    /// Asked to stop (hotrun quits).
    Stopping {
        id: u64,
    },
    Stopped,
}

/// One `[[sidecar]]`.
#[derive(Debug, Clone)]
pub struct Sidecar {
    pub name: String,
    policy: RestartPolicy,
    pub run: SidecarRun,
    /// Times it was started again after exiting.
    pub restarts: u32,
    backoff: Duration,
}

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Every `[[on_change]]` command and sidecar.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    pub tasks: Vec<Task>,
    pub sidecars: Vec<Sidecar>,
    next_run: u64,
    /// Sidecar runs replaced by a config change, still stopping.
    retiring: std::collections::BTreeMap<u64, String>,
    /// The first runs were started (once hotrun watches).
    started: bool,
}

impl Pipeline {
    pub fn new(options: &Options) -> Pipeline {
        Pipeline {
            tasks: tasks(options),
            sidecars: sidecars(options),
            ..Default::default()
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_run += 1;
        self.next_run
    }

    /// At start: every sidecar starts, and every command runs once (before the first
    /// build, so the first page has what they make).
    pub fn start(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        for i in 0..self.sidecars.len() {
            self.start_sidecar(i, now, fx);
        }
        for i in 0..self.tasks.len() {
            self.start_task(i, BTreeSet::new(), now, fx);
        }
    }

    /// The first runs were started.
    pub fn started(&self) -> bool {
        self.started
    }

    /// A command runs or waits to.
    pub fn busy(&self) -> bool {
        self.tasks.iter().any(|t| t.run != TaskRun::Idle)
    }

    /// No sidecar is running or on its way out.
    pub fn done(&self) -> bool {
        self.retiring.is_empty()
            && self.sidecars.iter().all(|s| {
                !matches!(
                    s.run,
                    SidecarRun::Spawning { .. }
                        | SidecarRun::Running { .. }
                        | SidecarRun::Stopping { .. }
                )
            })
    }

    /// What the failing commands said, in their order.
    pub fn failures(&self) -> Vec<Diagnostic> {
        self.tasks
            .iter()
            .filter_map(|t| t.failed.as_ref())
            .flatten()
            .cloned()
            .collect()
    }

    /// The names of the commands whose last run failed.
    pub fn failing(&self) -> Vec<&str> {
        self.tasks
            .iter()
            .filter(|t| t.failed.is_some())
            .map(|t| t.name.as_str())
            .collect()
    }

    /// The earliest time a command's burst is over or a sidecar starts again.
    pub fn next_deadline(&self, options: &Options) -> Option<Instant> {
        let settled = self.tasks.iter().filter_map(|t| match &t.run {
            TaskRun::Settling { first, last, .. } => Some(settle(options, *first, *last)),
            _ => None,
        });
        let restarts = self.sidecars.iter().filter_map(|s| match s.run {
            SidecarRun::Waiting { until, .. } => Some(until),
            _ => None,
        });
        settled.chain(restarts).min()
    }

    /// Files changed: the commands whose inputs they are run once the burst is over. A
    /// change during a run stops it and runs it again (the last edit wins); what a
    /// command wrote is never an input of it.
    pub fn on_changed(
        &mut self,
        classifier: &Classifier,
        files: &[PathBuf],
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if self.tasks.is_empty() {
            return;
        }
        for file in files {
            for i in classifier.tasks_for(file) {
                let Some(task) = self.tasks.get_mut(i) else {
                    continue;
                };
                let quiet = task.quiet_until.is_some_and(|q| now <= q);
                let idle = task.run == TaskRun::Idle && !quiet;
                if idle {
                    // Nothing of its own runs: whoever wrote this, it is an input.
                    task.outputs.remove(file);
                    task.suspects.remove(file);
                    learn(&mut task.inputs, file);
                } else if task.outputs.contains(file) {
                    continue;
                }
                let known = task.inputs.contains(file);
                if !idle && !known {
                    // Changed while it runs or just after: beside what it says it
                    // writes, or changed during runs in a row (each started again for
                    // it), it is the command's own writing. Else it is taken for an edit.
                    let strikes = task.suspects.get(file).copied().unwrap_or(0);
                    if classifier.beside_output(i, file) || strikes >= SUSPECT_STRIKES {
                        task.suspects.remove(file);
                        learn(&mut task.outputs, file);
                        continue;
                    }
                    if task.suspects.len() < OUTPUTS_MAX || strikes > 0 {
                        task.suspects.insert(file.clone(), strikes + 1);
                    }
                }
                match &mut task.run {
                    TaskRun::Idle => {
                        task.run = TaskRun::Settling {
                            first: now,
                            last: now,
                            files: BTreeSet::from([file.clone()]),
                        }
                    }
                    TaskRun::Settling { last, files, .. } => {
                        *last = now;
                        files.insert(file.clone());
                    }
                    TaskRun::Running { id, files, .. } => {
                        fx.push(Effect::CancelTask { id: *id });
                        fx.push(Effect::Report(Report::TaskCancelled {
                            name: task.name.clone(),
                        }));
                        let mut files = std::mem::take(files);
                        files.insert(file.clone());
                        task.run = TaskRun::Settling {
                            first: now,
                            last: now,
                            files,
                        };
                    }
                }
            }
        }
    }

    pub fn on_tick(&mut self, options: &Options, now: Instant, fx: &mut Vec<Effect>) {
        for i in 0..self.tasks.len() {
            if let TaskRun::Settling { first, last, files } = &self.tasks[i].run {
                if now >= settle(options, *first, *last) {
                    let files = files.clone();
                    self.start_task(i, files, now, fx);
                }
            }
        }
        for i in 0..self.sidecars.len() {
            if let SidecarRun::Waiting { until, .. } = self.sidecars[i].run {
                if now >= until {
                    self.sidecars[i].restarts += 1;
                    self.start_sidecar(i, now, fx);
                }
            }
        }
    }

    fn start_task(
        &mut self,
        i: usize,
        files: BTreeSet<PathBuf>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let id = self.next_id();
        let task = &mut self.tasks[i];
        fx.push(Effect::Report(Report::TaskStarted {
            name: task.name.clone(),
            files: files.iter().cloned().collect(),
        }));
        fx.push(Effect::StartTask { id, task: i });
        task.run = TaskRun::Running {
            id,
            started: now,
            files,
        };
    }

    fn start_sidecar(&mut self, i: usize, now: Instant, fx: &mut Vec<Effect>) {
        let id = self.next_id();
        fx.push(Effect::StartSidecar { id, sidecar: i });
        self.sidecars[i].run = SidecarRun::Spawning { id, since: now };
    }

    /// The name of whatever runs as `id` now: its output is shown tagged with it.
    pub fn on_output(&self, id: u64, line: String) -> Option<Effect> {
        let task = self
            .tasks
            .iter()
            .find(|t| matches!(t.run, TaskRun::Running { id: i, .. } if i == id));
        if let Some(task) = task {
            return Some(Effect::Report(Report::ToolOutput {
                sidecar: false,
                name: task.name.clone(),
                line,
            }));
        }
        self.sidecars
            .iter()
            .find(|s| sidecar_id(&s.run) == Some(id))
            .map(|s| {
                Effect::Report(Report::ToolOutput {
                    sidecar: true,
                    name: s.name.clone(),
                    line,
                })
            })
    }

    /// Run `id` of a command ended. Returns whether what the page shows of the
    /// pipeline's failures changed.
    pub fn on_task_finished(
        &mut self,
        options: &Options,
        id: u64,
        outcome: BuildOutcome,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> bool {
        let Some(task) = self
            .tasks
            .iter_mut()
            .find(|t| matches!(t.run, TaskRun::Running { id: i, .. } if i == id))
        else {
            // Cancelled: a newer run is on its way.
            return false;
        };
        task.run = TaskRun::Idle;
        task.quiet_until = Some(now + options.output_latency);
        task.took = Some(outcome.duration);
        let was_failing = task.failed.is_some();
        task.failed = (!outcome.ok).then(|| outcome.diagnostics.clone());
        fx.push(Effect::Report(Report::TaskFinished {
            name: task.name.clone(),
            outcome,
        }));
        was_failing || task.failed.is_some()
    }

    pub fn on_sidecar_started(&mut self, id: u64, pid: u32, fx: &mut Vec<Effect>) {
        for sidecar in &mut self.sidecars {
            if let SidecarRun::Spawning { id: i, since } = sidecar.run {
                if i == id {
                    sidecar.run = SidecarRun::Running { id, pid, since };
                    fx.push(Effect::Report(Report::SidecarStarted {
                        name: sidecar.name.clone(),
                        pid,
                    }));
                }
            }
        }
    }

    /// Run `id` of a sidecar is gone: expected when hotrun stopped it, else started
    /// again per its policy (backoff 1 s doubling to 30 s, from 1 s again after a run
    /// longer than that).
    pub fn on_sidecar_exited(
        &mut self,
        id: u64,
        status: ExitStatus,
        output: Vec<String>,
        quitting: bool,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if let Some(name) = self.retiring.remove(&id) {
            fx.push(stopped(name, status));
            return;
        }
        let Some(sidecar) = self
            .sidecars
            .iter_mut()
            .find(|s| sidecar_id(&s.run) == Some(id))
        else {
            return;
        };
        let name = sidecar.name.clone();
        let (since, stopping) = match sidecar.run {
            SidecarRun::Spawning { since, .. } | SidecarRun::Running { since, .. } => {
                (since, false)
            }
            _ => (now, true),
        };
        if stopping || quitting {
            sidecar.run = SidecarRun::Stopped;
            fx.push(stopped(name, status));
            return;
        }
        let again = match sidecar.policy {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => !status.success(),
            RestartPolicy::Always => true,
        };
        let restart_in = again.then(|| {
            if now.saturating_duration_since(since) > BACKOFF_MAX {
                sidecar.backoff = BACKOFF_START;
            }
            let wait = sidecar.backoff;
            sidecar.backoff = (sidecar.backoff * 2).min(BACKOFF_MAX);
            wait
        });
        sidecar.run = match restart_in {
            Some(wait) => SidecarRun::Waiting {
                until: now + wait,
                status,
            },
            None => SidecarRun::Exited { status },
        };
        fx.push(Effect::Report(Report::SidecarExited {
            name,
            status,
            requested: false,
            output,
            restart_in,
        }));
    }

    /// hotrun quits: commands are stopped, sidecars asked to stop.
    pub fn quit(&mut self, fx: &mut Vec<Effect>) {
        for task in &mut self.tasks {
            if let TaskRun::Running { id, .. } = task.run {
                fx.push(Effect::CancelTask { id });
            }
            task.run = TaskRun::Idle;
        }
        for sidecar in &mut self.sidecars {
            sidecar.run = match sidecar.run {
                SidecarRun::Spawning { id, .. } | SidecarRun::Running { id, .. } => {
                    fx.push(Effect::StopSidecar { id });
                    SidecarRun::Stopping { id }
                }
                SidecarRun::Stopping { id } => SidecarRun::Stopping { id },
                _ => SidecarRun::Stopped,
            };
        }
    }

    /// New settings: commands that changed (what they run, on which changes) are
    /// stopped and run once as new ones, as at start; when `[[sidecar]]` changed,
    /// every sidecar is stopped and the new ones started. Returns whether a failure the
    /// page shows went with a command that changed.
    pub fn reconfigure(
        &mut self,
        options: &Options,
        restart_sidecars: bool,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> bool {
        let mut old = std::mem::take(&mut self.tasks);
        let mut dropped_failure = false;
        for (i, wanted) in options.tasks.iter().enumerate() {
            let kept = old
                .iter()
                .position(|t| t.name == wanted.0 && t.what == wanted.1)
                .map(|at| old.remove(at));
            match kept {
                Some(task) => self.tasks.push(task),
                None => {
                    self.tasks.push(new_task(wanted));
                    if self.started {
                        self.start_task(i, BTreeSet::new(), now, fx);
                    }
                }
            }
        }
        for gone in old {
            if let TaskRun::Running { id, .. } = gone.run {
                fx.push(Effect::CancelTask { id });
            }
            dropped_failure |= gone.failed.is_some();
        }
        if restart_sidecars {
            for sidecar in &self.sidecars {
                if let Some(id) = sidecar_id(&sidecar.run) {
                    fx.push(Effect::StopSidecar { id });
                    self.retiring.insert(id, sidecar.name.clone());
                }
            }
            self.sidecars = sidecars(options);
            if self.started {
                for i in 0..self.sidecars.len() {
                    self.start_sidecar(i, now, fx);
                }
            }
        }
        dropped_failure
    }
}

/// A sidecar hotrun stopped is gone.
fn stopped(name: String, status: ExitStatus) -> Effect {
    Effect::Report(Report::SidecarExited {
        name,
        status,
        requested: true,
        output: Vec::new(),
        restart_in: None,
    })
}

/// Remember `file` in a bounded set.
fn learn(set: &mut BTreeSet<PathBuf>, file: &std::path::Path) {
    if set.len() < OUTPUTS_MAX || set.contains(file) {
        set.insert(file.to_path_buf());
    }
}

/// The run of a sidecar whose helper may still be alive.
fn sidecar_id(run: &SidecarRun) -> Option<u64> {
    match *run {
        SidecarRun::Spawning { id, .. }
        | SidecarRun::Running { id, .. }
        | SidecarRun::Stopping { id } => Some(id),
        _ => None,
    }
}

fn settle(options: &Options, first: Instant, last: Instant) -> Instant {
    (last + options.debounce).min(first + options.debounce_cap)
}

fn tasks(options: &Options) -> Vec<Task> {
    options.tasks.iter().map(new_task).collect()
}

fn new_task((name, what): &(String, String)) -> Task {
    Task {
        name: name.clone(),
        what: what.clone(),
        run: TaskRun::Idle,
        failed: None,
        took: None,
        quiet_until: None,
        outputs: BTreeSet::new(),
        inputs: BTreeSet::new(),
        suspects: Default::default(),
    }
}

fn sidecars(options: &Options) -> Vec<Sidecar> {
    options
        .sidecars
        .iter()
        .map(|(name, policy)| Sidecar {
            name: name.clone(),
            policy: *policy,
            run: SidecarRun::Pending,
            restarts: 0,
            backoff: BACKOFF_START,
        })
        .collect()
}
