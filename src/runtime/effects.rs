//! The effects the state asks for, carried out: builds and apps started and stopped,
//! reports printed, browsers told, readiness probed, the config reloaded. Everything
//! here acts; nothing here decides.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use super::readiness::{self, Finder, Probe};
use super::setup::{panel_info, prepare};
use crate::app::{self, StdinSlot};
use crate::build::{self, Project};
use crate::config::{self, cli::Cli, settings::Settings};
use crate::core::classify::Classifier;
use crate::core::event::{Effect, Event, ExitStatus, Report, UiAction};
use crate::core::options::Options;
use crate::core::state::State;
use crate::pipeline;
use crate::process::client::Handle;
use crate::ui::Printer;
use crate::watch::{self, WatchHandle, WatchSpec};
use crate::web::hub::Hub;
use crate::web::proxy::{Gate, ProxyHandle};

/// The side of the loop that touches the world.
pub(super) struct Effects {
    /// The `run.listen` sockets, open for as long as hotrun runs…
    pub(super) _listeners: Vec<std::net::TcpListener>,
    /// …and their fds, handed to every app generation.
    pub(super) listen_fds: Vec<std::os::fd::RawFd>,
    pub(super) listen_addrs: Vec<std::net::SocketAddr>,
    /// The app's address behind the proxy.
    pub(super) proxy_app: Option<std::net::SocketAddr>,
    /// Where the app really listens was said (once per run).
    pub(super) found_said: Arc<std::sync::atomic::AtomicBool>,
    /// The URL last shown for an app given no address.
    pub(super) direct_url: Arc<std::sync::Mutex<Option<String>>>,
    /// Environment the app needs to find its address (`PORT` behind the proxy).
    pub(super) app_env: Vec<(String, String)>,
    pub(super) probe: Option<Probe>,
    pub(super) proxy: Option<ProxyHandle>,
    /// hotrun's output went away and that was said (as a fatal event) once.
    pub(super) lost_reported: bool,
    pub(super) settings: Arc<Settings>,
    pub(super) project: Project,
    pub(super) tx: UnboundedSender<Event>,
    pub(super) printer: Printer,
    /// Build id → its helper.
    pub(super) builds: HashMap<u64, Handle>,
    /// App generation → its helper.
    pub(super) apps: HashMap<u64, Handle>,
    /// `[[on_change]]` run → its helper.
    pub(super) tasks: HashMap<u64, Handle>,
    /// Sidecar run → its helper.
    pub(super) sidecars: HashMap<u64, Handle>,
    pub(super) stdin_slot: Option<StdinSlot>,
    /// The open browser tabs (`reload.enabled`).
    pub(super) hub: Option<Arc<Hub>>,
    /// Where the reload script is served without the proxy.
    pub(super) reload_url: Option<String>,
    /// The watcher, and what it watches.
    pub(super) watcher: WatchHandle,
    pub(super) watched: WatchSpec,
    /// A replaced watcher still running until its successor watches.
    pub(super) retiring: Option<WatchHandle>,
    /// The command line, to read the config file again with the same flags.
    pub(super) cli: Cli,
    /// Each app generation listens on a port of its own behind the proxy (`PORT`), so a
    /// new one can start beside the old one (`Swap::Overlap`)…
    pub(super) own_ports: bool,
    /// …and these: generation → where it listens (its `PORT`, or where the probe found
    /// it when it listens elsewhere).
    pub(super) gen_addrs: HashMap<u64, Arc<std::sync::Mutex<std::net::SocketAddr>>>,
    /// How swaps can go with the sockets bound at start (`run.swap` may say restart).
    pub(super) swap: crate::core::options::Swap,
}

/// What performing an effect leaves for the loop to do.
pub(super) enum Performed {
    Done,
    /// Exit now with this code.
    Exit(i32),
    /// The config was reloaded.
    Reconfigured(Box<Reconfigured>),
}

/// What the state goes on with after a config reload, and then takes.
pub(super) struct Reconfigured {
    pub(super) options: Options,
    pub(super) classifier: Classifier,
    pub(super) applied: Event,
}

impl Effects {
    /// Tell the proxy whether an app answers now.
    pub(super) fn set_gate(&self, state: &State) {
        if let Some(proxy) = &self.proxy {
            proxy.set(if state.serving() {
                Gate::Open
            } else if state.coming() {
                Gate::Waiting(state.waiting_for())
            } else {
                Gate::Down(state.waiting_for())
            });
        }
    }

    /// Probe generation `gen` until it answers or is gone. An app that does not answer
    /// where it was told to is looked for where it does listen (see [`Finder`]).
    fn probe(&self, gen: u64) {
        let (Some(probe), Some(app)) = (self.probe.clone(), self.watched(gen)) else {
            return;
        };
        // A generation on its own port is probed there.
        let probe = match (probe, self.gen_addrs.get(&gen)) {
            (Probe::Tcp(_), Some(addr)) => {
                Probe::Tcp(*addr.lock().unwrap_or_else(|e| e.into_inner()))
            }
            (probe, _) => probe,
        };
        // Past the timeout the state counts the app as ready anyway: stop asking then.
        let until = tokio::time::Instant::now() + self.settings.run.ready_timeout;
        tokio::spawn(readiness::until_ready(
            app,
            probe,
            self.finder(gen),
            until,
            self.tx.clone(),
        ));
    }

    /// An app hotrun gave no address (no proxy, no `run.listen`, no `run.ready`): find
    /// where it listens once it starts, to show the URL (once per address).
    fn find_direct(&self, gen: u64) {
        let direct = self.proxy.is_none()
            && self.listen_addrs.is_empty()
            && self.settings.run.ready.is_none();
        let Some(app) = self.watched(gen).filter(|_| direct) else {
            return;
        };
        tokio::spawn(readiness::find_direct(
            app,
            self.tx.clone(),
            self.direct_url.clone(),
        ));
    }

    /// App generation `gen`, as readiness follows it, while its helper runs.
    fn watched(&self, gen: u64) -> Option<readiness::Watched> {
        self.apps.get(&gen).map(|handle| readiness::Watched {
            gen,
            helper: handle.pid(),
            reaped: handle.reaped.clone(),
        })
    }

    /// How the probe finds an app that listens elsewhere, when hotrun chose where it
    /// should (`PORT` behind the proxy, or the `run.listen` sockets).
    fn finder(&self, gen: u64) -> Option<Finder> {
        if self.settings.run.ready.is_some() {
            return None;
        }
        match (&self.proxy, self.app_env.iter().find(|(k, _)| k == "PORT")) {
            // A generation on a port of its own is found for itself; the proxy is
            // pointed at it when it takes over (`Effect::Route`).
            (Some(proxy), Some(_)) => Some(Finder {
                given: match self.gen_addrs.get(&gen) {
                    Some(addr) => *addr.lock().unwrap_or_else(|e| e.into_inner()),
                    None => self.proxy_app?,
                },
                target: Some(
                    self.gen_addrs
                        .get(&gen)
                        .cloned()
                        .unwrap_or_else(|| proxy.app()),
                ),
                listen: Vec::new(),
                said: self.found_said.clone(),
            }),
            (None, _) if !self.listen_addrs.is_empty() => Some(Finder {
                given: self.listen_addrs[0],
                target: None,
                listen: self.listen_addrs.clone(),
                said: self.found_said.clone(),
            }),
            _ => None,
        }
    }

    /// What the loop sees of an event before the state does: helpers that ended are
    /// let go, the proxy's cache epoch moves on a change.
    pub(super) fn observe(&mut self, event: &Event) {
        match event {
            Event::Watching { .. } => {
                if let Some(old) = self.retiring.take() {
                    old.stop();
                }
            }
            Event::BuildFinished { id, .. } => {
                self.builds.remove(id);
            }
            Event::AppExited { gen, .. } => {
                self.apps.remove(gen);
                self.gen_addrs.remove(gen);
            }
            Event::TaskFinished { id, .. } => {
                self.tasks.remove(id);
            }
            Event::SidecarExited { id, .. } => {
                self.sidecars.remove(id);
            }
            Event::AppOutput { line, .. }
            | Event::BuildOutput { line, .. }
            | Event::ToolOutput { line, .. } => {
                crate::process::lines::taken(line);
            }
            Event::AppStarted { gen, .. } => self.find_direct(*gen),
            _ => {}
        }
        // A file or the app changed: what browsers hold is asked for anew, before any
        // browser is told (a reload then never meets a stale copy).
        if matches!(
            event,
            Event::Changed { .. }
                | Event::Rescan
                | Event::AppStarted { .. }
                | Event::BuildFinished { .. }
        ) {
            if let Some(proxy) = &self.proxy {
                proxy.changed();
            }
        }
    }

    /// Start build `id`; one that cannot start finishes at once, failed, saying why.
    fn start_build(&mut self, id: u64) {
        match build::start(id, &self.settings, &self.project, self.tx.clone()) {
            Ok(Some(handle)) => {
                self.builds.insert(id, handle);
            }
            Ok(None) => {}
            Err(e) => {
                let message = format!("cannot start the build: {e:#}");
                let _ = self.tx.send(Event::BuildFinished {
                    id,
                    outcome: build::not_run(&message),
                });
            }
        }
    }

    /// Start run `id` of `[[on_change]]` command `task`; one that cannot start fails at
    /// once, saying why.
    fn start_task(&mut self, id: u64, task: usize) {
        let started = match self.settings.pipeline.tasks.get(task) {
            Some(settings) => {
                pipeline::start_task(id, settings, &self.settings.root, self.tx.clone())
            }
            None => Err(anyhow::anyhow!(
                "no [[on_change]] number {task} in the config"
            )),
        };
        match started {
            Ok(handle) => {
                self.tasks.insert(id, handle);
            }
            Err(e) => {
                let message = format!("{e:#}");
                let _ = self.tx.send(Event::TaskFinished {
                    id,
                    outcome: build::not_run(&message),
                });
            }
        }
    }

    /// Start run `id` of sidecar `sidecar`; one that cannot start exits at once (code
    /// 127), saying why.
    fn start_sidecar(&mut self, id: u64, sidecar: usize) {
        let started = match self.settings.pipeline.sidecars.get(sidecar) {
            Some(settings) => pipeline::start_sidecar(id, settings, self.tx.clone()),
            None => Err(anyhow::anyhow!(
                "no [[sidecar]] number {sidecar} in the config"
            )),
        };
        match started {
            Ok(handle) => {
                self.sidecars.insert(id, handle);
            }
            Err(e) => {
                let _ = self.tx.send(Event::SidecarExited {
                    id,
                    status: ExitStatus {
                        code: Some(127),
                        signal: None,
                    },
                    output: vec![format!("hotrun: {e:#}")],
                });
            }
        }
    }

    /// Start app generation `gen`; one that cannot start exits at once (code 127),
    /// saying why.
    fn spawn_app(&mut self, gen: u64, executable: Option<&std::path::Path>) {
        let mut env = self.app_env.clone();
        if self.own_ports {
            // A free loopback port, as `proxy.app` is chosen (see `web::sockets`).
            match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
                Ok(addr) => {
                    env.retain(|(k, _)| k != "PORT");
                    env.push(("PORT".into(), addr.port().to_string()));
                    self.gen_addrs
                        .insert(gen, Arc::new(std::sync::Mutex::new(addr)));
                }
                Err(e) => {
                    // On the shared address it would answer where the old one does: it
                    // does not start.
                    self.not_started(gen, format!("no free port for the new app: {e}"));
                    return;
                }
            }
        }
        let context = app::AppContext {
            listen_fds: &self.listen_fds,
            env: &env,
            stdin_slot: self.stdin_slot.clone(),
            notify: self.swap == crate::core::options::Swap::OverlapWhenNotified
                && self.settings.run.overlap,
        };
        match app::start(
            gen,
            executable,
            &self.settings,
            &self.project,
            self.tx.clone(),
            context,
        ) {
            Ok(handle) => {
                self.apps.insert(gen, handle);
            }
            Err(e) => self.not_started(gen, format!("{e:#}")),
        }
    }

    /// Generation `gen` could not start: it exits at once (code 127), saying why.
    fn not_started(&self, gen: u64, message: String) {
        let _ = self.tx.send(Event::Notice(message.clone()));
        let _ = self.tx.send(Event::AppExited {
            gen,
            status: ExitStatus {
                code: Some(127),
                signal: None,
            },
            output: vec![format!("hotrun: {message}")],
        });
    }

    /// Ask app generation `gen` to stop; behind the proxy, once what it is still
    /// answering is answered.
    fn stop_app(&self, gen: u64) {
        if let Some(handle) = self.apps.get(&gen) {
            match &self.proxy {
                // The gate is closed already; requests the app has still to
                // answer are let through first.
                Some(proxy) => {
                    let drained = proxy.drained(self.settings.run.stop_timeout);
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        drained.await;
                        handle.request_stop();
                    });
                }
                None => handle.request_stop(),
            }
        }
    }

    /// `o`: open the most public URL in the desktop's browser.
    fn open_url(&mut self) -> Performed {
        let message = match self.printer.public_url() {
            Some(url) => match open_in_browser(url) {
                Ok(()) => format!("opening {url}"),
                Err(e) => format!("cannot open {url}: {e}"),
            },
            None => "no URL to open: set proxy.listen, run.listen or run.ready".into(),
        };
        self.perform(Effect::Report(Report::Info { message }))
    }

    /// Perform one effect.
    pub(super) fn perform(&mut self, effect: Effect) -> Performed {
        match effect {
            Effect::StartBuild { id, .. } => self.start_build(id),
            Effect::CancelBuild { id } => {
                if let Some(handle) = self.builds.remove(&id) {
                    handle.request_stop();
                }
            }
            Effect::SpawnApp { gen, executable } => self.spawn_app(gen, executable.as_deref()),
            Effect::StartTask { id, task } => self.start_task(id, task),
            Effect::CancelTask { id } => {
                if let Some(handle) = self.tasks.remove(&id) {
                    handle.request_stop();
                }
            }
            Effect::StartSidecar { id, sidecar } => self.start_sidecar(id, sidecar),
            Effect::StopSidecar { id } => {
                if let Some(handle) = self.sidecars.get(&id) {
                    handle.request_stop();
                }
            }
            Effect::StopApp { gen } => self.stop_app(gen),
            Effect::Report(report) => {
                if let Err(e) = self.printer.report(&report) {
                    // Nobody sees what hotrun says any more: stop, and say so in the
                    // exit code.
                    let _ = self.tx.send(Event::Fatal(format!("lost its output: {e}")));
                }
            }
            Effect::ReloadConfig => return self.reload_config(),
            Effect::Probe { gen } => self.probe(gen),
            Effect::Route { gen } => {
                if let (Some(proxy), Some(addr)) = (&self.proxy, self.gen_addrs.get(&gen)) {
                    let addr = *addr.lock().unwrap_or_else(|e| e.into_inner());
                    *proxy.app().lock().unwrap_or_else(|e| e.into_inner()) = addr;
                    // Another app answers from now on: what browsers hold is asked for
                    // anew.
                    proxy.changed();
                }
            }
            Effect::Browser(message) => {
                if let Some(hub) = &self.hub {
                    let clients = hub.send(&message);
                    let kind = message.kind();
                    return self.perform(Effect::Report(Report::ReloadSent { kind, clients }));
                }
            }
            Effect::Ui(UiAction::Clear) => self.printer.clear(),
            Effect::Ui(UiAction::Redraw) => {}
            Effect::Ui(UiAction::Open) => return self.open_url(),
            Effect::Exit(code) => {
                // Whatever still runs (a cancelled build) is stopped by its helper
                // when hotrun exits; ask now so it starts at once.
                let helpers = [&self.builds, &self.apps, &self.tasks, &self.sidecars];
                for handle in helpers.into_iter().flat_map(|h| h.values()) {
                    handle.request_stop();
                }
                return Performed::Exit(code);
            }
        }
        Performed::Done
    }

    /// Read `.hotrun.toml` again and carry out what its change means (see
    /// [`config::plan`]). An invalid file is reported and the old settings kept.
    fn reload_config(&mut self) -> Performed {
        let new = match Settings::load(&self.cli).and_then(|s| prepare(s, self.cli.clone())) {
            Ok(new) => new,
            Err(e) => {
                let message = format!("config not applied, the previous one stays in force: {e:#}");
                return self.perform(Effect::Report(Report::Error { message }));
            }
        };
        let plan = config::plan::plan(
            &self.settings,
            &new.settings,
            new.watch.roots != self.watched.roots,
        );
        if plan.is_empty() {
            let message = "config saved: nothing changed".into();
            return self.perform(Effect::Report(Report::Info { message }));
        }
        for message in plan.not_applied {
            self.perform(Effect::Report(Report::Error { message }));
        }
        if plan.rewatch {
            match watch::start(new.watch.clone(), self.tx.clone()) {
                Ok(handle) => {
                    // The old watcher goes on until the new one watches everything (its
                    // `Watching` event), so no save falls between the two.
                    let old = std::mem::replace(&mut self.watcher, handle);
                    if let Some(previous) = self.retiring.replace(old) {
                        previous.stop();
                    }
                    self.watched = new.watch.clone();
                }
                Err(e) => {
                    let _ = self
                        .tx
                        .send(Event::Fatal(format!("cannot watch files: {e:#}")));
                }
            }
        }
        self.probe = readiness::probe(&plan.settings, &self.listen_addrs, self.proxy_app);
        let options = Options {
            probe: self.probe.is_some(),
            swap: if plan.settings.run.overlap {
                self.swap
            } else {
                crate::core::options::Swap::Restart
            },
            routes: self.own_ports,
            ..new.options
        };
        let before = panel_info(&self.settings, self.reload_url.as_deref()).urls;
        let info = panel_info(&plan.settings, self.reload_url.as_deref());
        if info.urls != before {
            let urls = info.urls.clone();
            self.perform(Effect::Report(Report::Urls { urls }));
        }
        self.printer.reconfigure(plan.settings.ui.clone(), info);
        self.settings = Arc::new(plan.settings);
        self.project = new.project;
        let message = format!("config reloaded: [{}] changed", plan.changed.join("], ["));
        self.perform(Effect::Report(Report::Info { message }));
        Performed::Reconfigured(Box::new(Reconfigured {
            options,
            classifier: new.classifier,
            applied: Event::ConfigApplied {
                rebuild: plan.rebuild,
                restart: plan.restart,
                sidecars: plan.restart_sidecars,
            },
        }))
    }
}

/// Open `url` with the desktop's opener, detached from hotrun's output.
fn open_in_browser(url: &str) -> std::io::Result<()> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|mut child| {
            // Reaped when it ends: no zombie, even from an opener.
            std::thread::spawn(move || child.wait());
        })
}
