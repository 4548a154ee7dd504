//! What the state machine is told about the user's choices: timings and policies,
//! already resolved from the settings.

use std::time::Duration;

/// What to do with a build input that changes while a build runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBusy {
    /// Cancel the running build and start again (the default).
    Restart,
    /// Let it finish, then build again.
    Queue,
}

/// When an app that exited by itself is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Never,
    OnFailure,
    Always,
}

/// How an app generation replaces the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    /// Stop the old one, then start the new one.
    Restart,
    /// Start the new one beside the old one, which serves until the new one is ready
    /// (its probe answers on its own port, behind the proxy).
    Overlap,
    /// As `Overlap`, once the app has said `READY=1` on its `NOTIFY_SOCKET` (listen
    /// mode: the generations share one socket, so only the app can tell it is ready).
    OverlapWhenNotified,
}

/// The settings the state machine needs (a small, copyable slice of `Settings`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Settle window: a burst ends this long after its last event.
    pub debounce: Duration,
    /// A burst that never ends still builds after this long.
    pub debounce_cap: Duration,
    pub on_busy: OnBusy,
    pub restart: RestartPolicy,
    /// Without a readiness probe, the app counts as ready after this grace period.
    pub ready_grace: Duration,
    /// A readiness probe runs for each new app (`Effect::Probe`)…
    pub probe: bool,
    /// …and gives up after this long (the app then counts as ready anyway).
    pub ready_timeout: Duration,
    /// Hidden test knob: quit once this many builds finished and the app settled.
    pub exit_after_builds: Option<u32>,
    /// How swaps go.
    pub swap: Swap,
    /// Each generation listens on a port of its own behind the proxy: the proxy is
    /// pointed at one once it serves (`Effect::Route`).
    pub routes: bool,
    /// The `[[on_change]]` commands, in order: name, and what it runs on which changes
    /// (to tell a changed one at a config edit). What starts them is the classifier's
    /// (`Classifier::tasks_for`).
    pub tasks: Vec<(String, String)>,
    /// A file a command wrote is seen this long after it exited at the latest (the
    /// watcher holds a created file 50 ms, a vanished one 250 ms; a poller sees it at
    /// its next look).
    pub output_latency: Duration,
    /// The sidecars: name and when to start one again that exited.
    pub sidecars: Vec<(String, RestartPolicy)>,
}
