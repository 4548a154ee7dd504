//! The loop: gather events from every source, hand each to `State::update`, perform
//! the effects it returns. Setup (config already resolved, `cargo metadata`, watch
//! roots) happens before the loop; a setup error means nothing was started (exit 2).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::{self, UnboundedSender};

use crate::app::{self, StdinSlot};
use crate::build::cargo::{CargoProject, RunTarget};
use crate::build::{self, Project};
use crate::config::cli::Cli;
use crate::config::reference;
use crate::config::settings::{Settings, Ui};
use crate::core::classify::{Classifier, Inputs};
use crate::core::event::{
    BuildOutcome, Command, Diagnostic, Effect, Event, ExitStatus, Report, UiAction,
};
use crate::core::options::Options;
use crate::core::state::State;
use crate::process::client::Handle;
use crate::process::lines::LineReader;
use crate::ui::Printer;

mod readiness;
use crate::watch::{self, WatchHandle, WatchSpec};
use crate::web::hub::{self, Guard, Hub};
use crate::web::proxy::{self, Gate, ProxyHandle};
use crate::web::sockets::Sockets;
use readiness::Probe;

/// The whole program: the helper mode, a subcommand, or a run. Returns the exit code:
/// 0, 1 when a run failed, 2 for bad input (nothing was started).
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    use clap::Parser;
    if args
        .get(1)
        .is_some_and(|a| a == crate::process::status::MODE)
    {
        crate::process::helper::main(&args[2..]);
    }
    crate::ui::terminal::install_panic_hook();
    let cli = Cli::parse_from(args);
    if let Some(command) = &cli.command {
        return match crate::commands::run(command, &cli) {
            Ok(()) => 0,
            Err(e) => failed(2, e),
        };
    }
    let setup = Settings::load(&cli)
        .and_then(|s| prepare(s, cli))
        .and_then(|p| bind(&p).map(|sockets| (p, sockets)));
    let (prepared, sockets) = match setup {
        Ok(setup) => setup,
        Err(e) => return failed(2, e),
    };
    match run(prepared, sockets) {
        Ok(code) => code,
        Err(e) => failed(1, e),
    }
}

fn failed(code: i32, error: anyhow::Error) -> i32 {
    eprintln!("hotrun: error: {error:#}");
    code
}

/// How long queued output may hold up hotrun's exit.
const OUTPUT_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// Everything resolved before anything starts.
pub struct Prepared {
    settings: Arc<Settings>,
    project: Project,
    watch: WatchSpec,
    classifier: Classifier,
    options: Options,
    /// The command line, to read the config file again with the same flags.
    cli: Cli,
}

/// Resolve the project: `cargo metadata`, watch roots, classification rules. Errors
/// here are setup errors: nothing has been started.
pub fn prepare(settings: Settings, cli: Cli) -> Result<Prepared> {
    if settings.ui.mode == Ui::Panel && !crate::config::settings::is_terminal() {
        bail!("the panel (`--ui panel` or `ui.mode = \"panel\"`) needs a terminal on stdin and stdout; use --ui plain or json");
    }
    let project = match &settings.cargo_root {
        Some(_) => match CargoProject::load(&settings.cwd, &settings.build.cargo) {
            Ok(project) => Project::Cargo(Arc::new(project)),
            Err(e) => return Err(locate_selection_error(e, &settings)),
        },
        None => Project::Command,
    };
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut ignore_dirs = Vec::new();
    let inputs = match &project {
        Project::Cargo(cargo) => {
            roots.push(cargo.workspace_root.clone());
            roots.extend(cargo.package_roots.iter().cloned());
            ignore_dirs.push(cargo.target_dir.clone());
            Inputs::Cargo {
                // Event paths are under canonical roots; so must the packages be.
                packages: cargo
                    .package_roots
                    .iter()
                    .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
                    .collect(),
                example: matches!(cargo.target, RunTarget::Example(_)),
            }
        }
        Project::Command => {
            roots.push(settings.root.clone());
            Inputs::Command {
                include: settings.watch.include.as_ref().map(|g| g.set.clone()),
            }
        }
    };
    for path in &settings.watch.paths {
        if !path.exists() {
            bail!("watch path {} does not exist", path.display());
        }
        roots.push(path.clone());
    }
    let mut roots: Vec<PathBuf> = roots
        .into_iter()
        .map(|r| r.canonicalize().unwrap_or(r))
        .collect();
    roots.sort();
    roots.dedup();
    // A root inside another root is already covered, unless it was asked for by name
    // (`watch.paths`, `-w`): then it is watched even where ignore rules would skip it.
    let explicit: Vec<PathBuf> = settings
        .watch
        .paths
        .iter()
        .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
        .collect();
    let all = roots.clone();
    roots.retain(|r| explicit.contains(r) || !all.iter().any(|o| o != r && r.starts_with(o)));
    let ignore_dirs = ignore_dirs
        .into_iter()
        .map(|d: PathBuf| d.canonicalize().unwrap_or(d))
        .collect();
    let root = settings
        .root
        .canonicalize()
        .unwrap_or(settings.root.clone());
    let watch = WatchSpec {
        roots,
        root: root.clone(),
        ignore_dirs,
        ignore_globs: vec![
            settings.watch.ignore.set.clone(),
            settings.build.outputs.set.clone(),
        ],
        keep: settings
            .watch
            .assets_named
            .then(|| settings.watch.assets.set.clone()),
        keep_dirs: if settings.watch.assets_named {
            settings
                .watch
                .assets
                .patterns
                .iter()
                .map(|p| literal_dir(&root, p))
                .filter(|d| *d != root)
                .collect()
        } else {
            Vec::new()
        },
        poll: settings.watch.poll,
    };
    // Without a config file, one created where discovery looks first is picked up too.
    let config_file = match &settings.config_file {
        Some(f) => Some(f.canonicalize().unwrap_or_else(|_| f.clone())),
        None if cli.project.config.is_none() => {
            let cwd = settings.cwd.canonicalize().unwrap_or(settings.cwd.clone());
            Some(cwd.join(crate::config::file::FILE_NAME))
        }
        None => None,
    };
    let restart_files = settings
        .run
        .env_files
        .iter()
        .map(|f| f.canonicalize().unwrap_or_else(|_| f.clone()))
        .collect();
    let classifier = Classifier::new(root, inputs, settings.watch.rebuild.set.clone())
        .with_config_file(config_file)
        .with_kinds(
            settings.watch.restart.set.clone(),
            restart_files,
            settings.watch.assets.set.clone(),
        );
    Ok(Prepared {
        options: settings.options(),
        settings: Arc::new(settings),
        project,
        watch,
        classifier,
        cli,
    })
}

/// The directory a glob's literal start names (`static/gen/*.css` → `root/static/gen`;
/// `*.css` → `root`).
fn literal_dir(root: &std::path::Path, pattern: &str) -> PathBuf {
    let mut dir = root.to_path_buf();
    let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if part.is_empty()
            || part.contains(['*', '?', '[', '{'])
            || (last && !pattern.ends_with('/'))
        {
            break;
        }
        dir.push(part);
    }
    dir
}

/// A package, bin or example named in the config file that Cargo does not know: point
/// at the line that names it.
fn locate_selection_error(error: anyhow::Error, settings: &Settings) -> anyhow::Error {
    let message = format!("{error:#}");
    for (key, value, position) in &settings.build.cargo_positions {
        if message.contains(&format!("`{value}`")) {
            return anyhow::anyhow!("{position}: `{key}`: {message}");
        }
    }
    error
}

/// Bind the sockets hotrun serves (`run.listen`, `proxy.listen`): a busy port is a
/// setup error, before anything runs.
pub fn bind(prepared: &Prepared) -> Result<Sockets> {
    Sockets::bind(&prepared.settings)
}

/// Run until quit. Returns the exit code.
pub fn run(prepared: Prepared, sockets: Sockets) -> Result<i32> {
    // One thread: every process is spawned from the main thread, which lives as long
    // as hotrun does, so the helpers' parent-death signal fires only when hotrun dies.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(run_loop(prepared, sockets));
    // The stdin reader sits in a blocking read that never returns: don't wait for it.
    runtime.shutdown_background();
    // What is still queued goes out, unless nobody reads it: then the exit goes on.
    crate::ui::out::flush(OUTPUT_FLUSH);
    result
}

async fn run_loop(prepared: Prepared, sockets: Sockets) -> Result<i32> {
    let Prepared {
        settings,
        project,
        watch,
        classifier,
        options,
        cli,
    } = prepared;
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    // What the user asks for (signals, commands, keys) comes on a channel of its own,
    // read first: a quit never waits behind a flood of output lines.
    let (user_tx, mut user_rx) = mpsc::unbounded_channel::<Event>();
    listen_for_signals(user_tx.clone())?;
    let stdin_slot = match settings.ui.mode {
        Ui::Plain => {
            let slot: StdinSlot = Default::default();
            forward_stdin(slot.clone());
            Some(slot)
        }
        Ui::Json => {
            read_commands(user_tx.clone());
            None
        }
        // The terminal's keys are hotrun's; the app gets no stdin.
        Ui::Panel => {
            crate::ui::terminal::read_keys(user_tx.clone());
            None
        }
    };
    // The panel's clock (uptime, build timer): once a second, only while it shows.
    let mut panel_clock = (settings.ui.mode == Ui::Panel)
        .then(|| tokio::time::interval(std::time::Duration::from_secs(1)));

    let listen_addrs: Vec<std::net::SocketAddr> = sockets
        .listen
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let proxy_app = sockets.proxy.as_ref().map(|p| p.app);
    let probe = readiness::probe(&settings, &listen_addrs, proxy_app);
    let options = Options {
        probe: probe.is_some(),
        ..options
    };
    let app_env = sockets.app_env();
    let listen_fds = sockets.listen_fds();
    let Sockets {
        listen: listeners,
        proxy: proxy_sockets,
        reload: reload_socket,
    } = sockets;
    let hub = settings
        .reload
        .enabled
        .then(|| Arc::new(Hub::new(&settings.root)));
    let guard = |proxy| Guard {
        hosts: settings.reload.hosts.clone(),
        origins: settings.reload.origins.clone(),
        proxy,
    };
    let proxy = match (&settings.proxy, proxy_sockets) {
        (Some(p), Some(bound)) => {
            let reload = hub.clone().map(|hub| (hub, guard(true)));
            Some(proxy::start(
                bound.listener,
                bound.app,
                p.timeout,
                reload,
                tx.clone(),
            )?)
        }
        _ => None,
    };
    let mut reload_url = None;
    let mut reload_moved = None;
    if let (Some(hub), Some(socket)) = (&hub, reload_socket) {
        let addr = socket.listener.local_addr()?;
        if socket.moved {
            reload_moved = Some(format!(
                "reload.listen {} is taken by another hotrun: serving browser reload on {addr}",
                settings.reload.listen
            ));
        }
        reload_url = Some(format!("http://{addr}{}", hub::SCRIPT_PATH));
        hub::serve(socket.listener, hub.clone(), guard(false), tx.clone())?;
    }
    // Watching starts once the servers answer (another hotrun may be asking).
    let mut watcher = watch::start(watch.clone(), tx.clone())?;
    let mut watched = watch;
    let mut retiring: Option<WatchHandle> = None;
    let mut state = State::new(options, classifier);
    let mut effects = Effects {
        listen_fds,
        listen_addrs,
        proxy_app,
        found_said: Default::default(),
        direct_url: Default::default(),
        _listeners: listeners,
        app_env,
        probe,
        proxy,
        lost_reported: false,
        printer: Printer::new(
            settings.ui.clone(),
            settings.root.clone(),
            panel_info(&settings, reload_url.as_deref()),
        )
        .context("cannot set up the terminal")?,
        settings,
        project,
        tx,
        builds: HashMap::new(),
        apps: HashMap::new(),
        stdin_slot,
        hub,
        reload_url,
    };
    if let Some(message) = reload_moved {
        effects.perform(Effect::Report(Report::Info { message }));
    }
    if let Some(message) = effects.settings.detected.clone() {
        effects.perform(Effect::Report(Report::Info { message }));
    }
    let urls = panel_info(&effects.settings, effects.reload_url.as_deref()).urls;
    if !urls.is_empty() {
        effects.perform(Effect::Report(Report::Urls { urls }));
    }
    for message in crate::config::settings::exposed(&effects.settings) {
        effects.perform(Effect::Report(Report::Error { message }));
    }
    if let Some(file) = &effects.settings.config_file {
        let message = format!("config: {}", file.display());
        effects.perform(Effect::Report(Report::Info { message }));
    }
    loop {
        let deadline = state.next_deadline();
        let event = tokio::select! {
            biased;
            Some(event) = user_rx.recv() => event,
            event = rx.recv() => match event {
                Some(event) => event,
                None => bail!("every event source is gone"),
            },
            _ = sleep_until(deadline), if deadline.is_some() => Event::Tick,
            _ = tick(&mut panel_clock), if panel_clock.is_some() => {
                effects.printer.draw_panel(&state, Instant::now());
                continue;
            }
        };
        match &event {
            Event::Watching { .. } => {
                if let Some(old) = retiring.take() {
                    old.stop();
                }
            }
            Event::BuildFinished { id, .. } => {
                effects.builds.remove(id);
            }
            Event::AppExited { gen, .. } => {
                effects.apps.remove(gen);
            }
            Event::AppOutput { line, .. } | Event::BuildOutput { line, .. } => {
                crate::process::lines::taken(line);
            }
            Event::AppStarted { gen, .. } => effects.find_direct(*gen),
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
            if let Some(proxy) = &effects.proxy {
                proxy.changed();
            }
        }
        let mut queue: VecDeque<Effect> = state.update(event, Instant::now()).into();
        // Before anything is stopped: no request goes to an app on its way out.
        effects.set_gate(&state);
        while let Some(effect) = queue.pop_front() {
            if effect == Effect::ReloadConfig {
                let live = Live {
                    state: &mut state,
                    watcher: &mut watcher,
                    retiring: &mut retiring,
                    watched: &mut watched,
                };
                if let Some(applied) = reload_config(&cli, &mut effects, live) {
                    queue.extend(state.update(applied, Instant::now()));
                    effects.set_gate(&state);
                }
                continue;
            }
            if let Some(code) = effects.perform(effect) {
                return Ok(code);
            }
        }
        effects.printer.draw_panel(&state, Instant::now());
        if effects.printer.lost() && !effects.lost_reported {
            effects.lost_reported = true;
            let _ = effects.tx.send(Event::Fatal("lost its terminal".into()));
        }
    }
}

async fn tick(clock: &mut Option<tokio::time::Interval>) {
    if let Some(clock) = clock {
        clock.tick().await;
    }
}

/// The addresses the panel shows, most public first (`o` opens the first).
fn panel_info(settings: &Settings, reload_url: Option<&str>) -> crate::ui::panel::PanelInfo {
    let mut urls = Vec::new();
    if let Some(proxy) = &settings.proxy {
        urls.push(("proxy", format!("http://{}", proxy.listen)));
    }
    for addr in &settings.run.listen {
        urls.push(("listen", format!("http://{addr}")));
    }
    if let Some(crate::config::values::Ready::Http(url)) = &settings.run.ready {
        urls.push(("app", url.clone()));
    }
    match (reload_url, &settings.proxy) {
        (Some(url), _) => urls.push(("reload", url.to_string())),
        // On the proxy's own origin.
        (None, Some(proxy)) if settings.reload.enabled => urls.push((
            "reload",
            format!("http://{}{}", proxy.listen, hub::SCRIPT_PATH),
        )),
        _ => {}
    }
    crate::ui::panel::PanelInfo {
        urls,
        root: settings.root.clone(),
    }
}

/// What a config reload may replace.
struct Live<'a> {
    state: &'a mut State,
    watcher: &'a mut WatchHandle,
    /// A replaced watcher still running until its successor watches.
    retiring: &'a mut Option<WatchHandle>,
    watched: &'a mut WatchSpec,
}

/// Read `.hotrun.toml` again and apply what changed. An invalid file is reported and
/// the old settings kept. Returns the event that tells the state what to redo.
fn reload_config(cli: &Cli, effects: &mut Effects, live: Live<'_>) -> Option<Event> {
    let old = effects.settings.clone();
    let new = match Settings::load(cli).and_then(|s| prepare(s, cli.clone())) {
        Ok(new) => new,
        Err(e) => {
            effects.perform(Effect::Report(Report::Error {
                message: format!("config not applied, the previous one stays in force: {e:#}"),
            }));
            return None;
        }
    };
    let before = reference::effective_sections(&old);
    let after = reference::effective_sections(&new.settings);
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.1 != a.1)
        .map(|(b, _)| b.0)
        .collect();
    if changed.is_empty() && new.watch.roots == live.watched.roots {
        effects.perform(Effect::Report(Report::Info {
            message: "config saved: nothing changed".into(),
        }));
        return None;
    }
    // Sockets are bound once, at start.
    let mut rebind = Vec::new();
    if old.run.listen != new.settings.run.listen {
        rebind.push("run.listen");
    }
    if old.proxy.as_ref().map(|p| p.listen) != new.settings.proxy.as_ref().map(|p| p.listen) {
        rebind.push("proxy.listen");
    }
    if old.reload.listen != new.settings.reload.listen {
        rebind.push("reload.listen");
    }
    let proxy_app = |s: &Settings| s.proxy.as_ref().map(|p| (p.app, p.timeout));
    if proxy_app(&old) != proxy_app(&new.settings) {
        rebind.push("proxy.app, proxy.timeout");
    }
    let reload = |s: &Settings| {
        (
            s.reload.enabled,
            s.reload.hosts.clone(),
            s.reload.origins.clone(),
        )
    };
    if reload(&old) != reload(&new.settings) {
        effects.perform(Effect::Report(Report::Error {
            message:
                "reload.enabled, reload.hosts or reload.origins changed: restart hotrun to apply"
                    .into(),
        }));
    }
    if !rebind.is_empty() {
        effects.perform(Effect::Report(Report::Error {
            message: format!(
                "{} changed: restart hotrun to bind the new address",
                rebind.join(", ")
            ),
        }));
    }
    if changed.contains(&"watch")
        || changed.contains(&"build")
        || new.watch.roots != live.watched.roots
    {
        match watch::start(new.watch.clone(), effects.tx.clone()) {
            Ok(handle) => {
                // The old watcher goes on until the new one watches everything (its
                // `Watching` event), so no save falls between the two.
                let old_watcher = std::mem::replace(live.watcher, handle);
                if let Some(previous) = live.retiring.replace(old_watcher) {
                    previous.stop();
                }
                *live.watched = new.watch.clone();
            }
            Err(e) => {
                let _ = effects
                    .tx
                    .send(Event::Fatal(format!("cannot watch files: {e:#}")));
            }
        }
    }
    let probe = readiness::probe(&new.settings, &effects.listen_addrs, effects.proxy_app);
    let options = Options {
        probe: probe.is_some(),
        ..new.options
    };
    live.state.reconfigure(options, new.classifier);
    let mut settings = (*new.settings).clone();
    // Bound once at start: what is bound stays in force (and in the panel) until restart.
    settings.run.listen = old.run.listen.clone();
    if let (Some(new_proxy), Some(old_proxy)) = (&mut settings.proxy, &old.proxy) {
        new_proxy.listen = old_proxy.listen;
    }
    settings.reload.listen = old.reload.listen;
    // The output mode was chosen at start (stdin is wired to it).
    settings.ui.mode = old.ui.mode;
    let before = panel_info(&effects.settings, effects.reload_url.as_deref()).urls;
    let info = panel_info(&settings, effects.reload_url.as_deref());
    if info.urls != before {
        effects.perform(Effect::Report(Report::Urls {
            urls: info.urls.clone(),
        }));
    }
    effects.printer.reconfigure(settings.ui.clone(), info);
    effects.probe = probe;
    effects.settings = Arc::new(settings);
    effects.project = new.project;
    effects.perform(Effect::Report(Report::Info {
        message: format!("config reloaded: [{}] changed", changed.join("], [")),
    }));
    Some(Event::ConfigApplied {
        rebuild: changed.contains(&"build"),
        restart: changed.contains(&"run"),
    })
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(at) = deadline {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// A starting app that does not answer where it was told to is looked for in `/proc`
/// after this long (one that binds another port first, a metrics port, has had time to
/// bind its own)…
const FIND_AFTER: std::time::Duration = std::time::Duration::from_millis(500);
/// …and then this often.
const FIND_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// An app hotrun gave no address is looked for this long after it starts.
const DIRECT_FIND_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Finds where a starting app listens when it does not answer where hotrun told it
/// to: its process tree's listening sockets, from `/proc` (see `serve::listening_under`).
struct Finder {
    /// Where the app was told to listen (`PORT`), or the first `run.listen` address.
    given: std::net::SocketAddr,
    /// Behind the proxy: where requests go, moved to what the app listens on.
    target: Option<Arc<std::sync::Mutex<std::net::SocketAddr>>>,
    /// The `run.listen` addresses (listen mode): the app should take these.
    listen: Vec<std::net::SocketAddr>,
    /// Said once per run.
    said: Arc<std::sync::atomic::AtomicBool>,
}

impl Finder {
    /// The probe for where requests go now.
    fn probe(&self, probe: Probe) -> Probe {
        match (&self.target, probe) {
            (Some(target), Probe::Tcp(_)) => {
                Probe::Tcp(*target.lock().unwrap_or_else(|e| e.into_inner()))
            }
            (_, probe) => probe,
        }
    }

    fn say(&self, tx: &UnboundedSender<Event>, message: String) {
        if !self.said.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let _ = tx.send(Event::Notice(message));
        }
    }

    /// The app listens on `found`; behind the proxy, send requests there.
    fn look(&mut self, found: &[std::net::SocketAddr], tx: &UnboundedSender<Event>) {
        // On $PORT, be it on loopback or on every address.
        let on_given = found.iter().any(|a| {
            a.port() == self.given.port() && crate::web::sockets::reachable(*a).ip().is_loopback()
        });
        if let (Some(target), true) = (&self.target, on_given) {
            // It listens on $PORT (and maybe elsewhere too: a metrics port). In listen
            // mode the passed socket is in its tree anyway, taken or not.
            *target.lock().unwrap_or_else(|e| e.into_inner()) = self.given;
            return;
        }
        let own: Vec<_> = found
            .iter()
            .filter(|a| !self.listen.contains(a) && **a != self.given)
            .filter(|a| a.ip().is_loopback() || a.ip().is_unspecified())
            .copied()
            .collect();
        let Some(first) = own.first().copied() else {
            return;
        };
        let others = if own.len() > 1 {
            let rest: Vec<String> = own[1..].iter().map(|a| a.to_string()).collect();
            format!(
                " (it also listens on {}; hotrun took the first)",
                rest.join(", ")
            )
        } else {
            String::new()
        };
        match &self.target {
            Some(target) => {
                let reach = crate::web::sockets::reachable(first);
                *target.lock().unwrap_or_else(|e| e.into_inner()) = reach;
                self.say(
                    tx,
                    format!(
                        "the app listens on {first}, not on the PORT={} it was given{others}: the proxy forwards to {reach}. To say so, have the app listen on $PORT, or set proxy.app = \"{reach}\"",
                        self.given.port()
                    ),
                );
            }
            None => self.say(
                tx,
                format!(
                    "the app listens on {first} itself{others}, not on the socket hotrun passes for run.listen {} (fd 3, LISTEN_FDS): requests there reach nothing. Have the app take the socket (listenfd, sd_listen_fds), or use --proxy instead of --listen",
                    self.given
                ),
            ),
        }
    }

    /// The readiness timeout passed and the app listens nowhere hotrun looked.
    fn nowhere(&self, tx: &UnboundedSender<Event>) {
        let expected = match &self.target {
            Some(_) => format!("on $PORT ({})", self.given.port()),
            None => format!("on the socket passed as fd 3 ({})", self.given),
        };
        self.say(
            tx,
            format!("the app listens nowhere hotrun can see: it should listen {expected}, or set run.ready to where it does"),
        );
    }
}

/// The side of the loop that touches the world.
struct Effects {
    /// The `run.listen` sockets, open for as long as hotrun runs…
    _listeners: Vec<std::net::TcpListener>,
    /// …and their fds, handed to every app generation.
    listen_fds: Vec<std::os::fd::RawFd>,
    listen_addrs: Vec<std::net::SocketAddr>,
    /// The app's address behind the proxy.
    proxy_app: Option<std::net::SocketAddr>,
    /// Where the app really listens was said (once per run).
    found_said: Arc<std::sync::atomic::AtomicBool>,
    /// The URL last shown for an app given no address.
    direct_url: Arc<std::sync::Mutex<Option<String>>>,
    /// Environment the app needs to find its address (`PORT` behind the proxy).
    app_env: Vec<(String, String)>,
    probe: Option<Probe>,
    proxy: Option<ProxyHandle>,
    /// hotrun's output went away and that was said (as a fatal event) once.
    lost_reported: bool,
    settings: Arc<Settings>,
    project: Project,
    tx: UnboundedSender<Event>,
    printer: Printer,
    /// Build id → its helper.
    builds: HashMap<u64, Handle>,
    /// App generation → its helper.
    apps: HashMap<u64, Handle>,
    stdin_slot: Option<StdinSlot>,
    /// The open browser tabs (`reload.enabled`).
    hub: Option<Arc<Hub>>,
    /// Where the reload script is served without the proxy.
    reload_url: Option<String>,
}

impl Effects {
    /// Tell the proxy whether an app answers now.
    fn set_gate(&self, state: &State) {
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
        let (Some(mut probe), Some(handle)) = (self.probe.clone(), self.apps.get(&gen)) else {
            return;
        };
        let reaped = handle.reaped.clone();
        let helper = handle.pid();
        let tx = self.tx.clone();
        let mut finder = self.finder();
        // Past the timeout the state counts the app as ready anyway: stop asking then.
        let until = tokio::time::Instant::now() + self.settings.run.ready_timeout;
        tokio::spawn(async move {
            // Most apps answer within a few milliseconds: ask often at first, so the
            // swap waits for the app, not for the probe; then back off.
            let start = tokio::time::Instant::now();
            let mut pause = std::time::Duration::from_millis(2);
            let mut looked = start;
            while !reaped.load(std::sync::atomic::Ordering::SeqCst)
                && tokio::time::Instant::now() < until
            {
                if let Some(finder) = &finder {
                    probe = finder.probe(probe);
                }
                if probe.check().await {
                    let _ = tx.send(Event::AppReady { gen });
                    return;
                }
                if start.elapsed() >= FIND_AFTER && looked.elapsed() >= FIND_EVERY {
                    looked = tokio::time::Instant::now();
                    if let Some(f) = &mut finder {
                        f.look(&crate::process::procfs::listening(helper).await, &tx);
                    }
                }
                tokio::time::sleep(pause).await;
                if start.elapsed() > std::time::Duration::from_millis(500) {
                    pause = (pause * 2).min(std::time::Duration::from_millis(250));
                }
            }
            if let Some(f) = &finder {
                if !reaped.load(std::sync::atomic::Ordering::SeqCst) {
                    f.nowhere(&tx);
                }
            }
        });
    }

    /// An app hotrun gave no address (no proxy, no `run.listen`, no `run.ready`): find
    /// where it listens once it starts, to show the URL (once per address).
    fn find_direct(&self, gen: u64) {
        let direct = self.proxy.is_none()
            && self.listen_addrs.is_empty()
            && self.settings.run.ready.is_none();
        let Some(handle) = self.apps.get(&gen).filter(|_| direct) else {
            return;
        };
        let (helper, reaped) = (handle.pid(), handle.reaped.clone());
        let (tx, shown) = (self.tx.clone(), self.direct_url.clone());
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + DIRECT_FIND_FOR;
            // An app that never listens (a worker) is looked for less and less often.
            let mut pause = FIND_EVERY;
            while !reaped.load(std::sync::atomic::Ordering::SeqCst)
                && tokio::time::Instant::now() < until
            {
                let found = crate::process::procfs::listening(helper).await;
                if let Some(addr) = found
                    .iter()
                    .find(|a| a.ip().is_loopback() || a.ip().is_unspecified())
                {
                    let url = format!("http://{}", crate::web::sockets::reachable(*addr));
                    let mut shown = shown.lock().unwrap_or_else(|e| e.into_inner());
                    if shown.as_deref() != Some(url.as_str()) {
                        *shown = Some(url.clone());
                        let _ = tx.send(Event::AppFound { url });
                    }
                    return;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(2));
            }
        });
    }

    /// How the probe finds an app that listens elsewhere, when hotrun chose where it
    /// should (`PORT` behind the proxy, or the `run.listen` sockets).
    fn finder(&self) -> Option<Finder> {
        if self.settings.run.ready.is_some() {
            return None;
        }
        match (&self.proxy, self.app_env.iter().find(|(k, _)| k == "PORT")) {
            (Some(proxy), Some(_)) => Some(Finder {
                given: self.proxy_app?,
                target: Some(proxy.app()),
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

    /// Perform one effect; `Some(code)` means exit now.
    fn perform(&mut self, effect: Effect) -> Option<i32> {
        match effect {
            Effect::StartBuild { id, .. } => {
                match build::start(id, &self.settings, &self.project, self.tx.clone()) {
                    Ok(Some(handle)) => {
                        self.builds.insert(id, handle);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let message = format!("cannot start the build: {e:#}");
                        let _ = self.tx.send(Event::BuildFinished {
                            id,
                            outcome: BuildOutcome {
                                ok: false,
                                cancelled: false,
                                duration: Default::default(),
                                diagnostics: vec![Diagnostic {
                                    level: "error".into(),
                                    message: message.clone(),
                                    rendered: message,
                                    file: None,
                                    line: None,
                                    column: None,
                                }],
                                executable: None,
                                input_files: Vec::new(),
                                input_dirs: Vec::new(),
                            },
                        });
                    }
                }
            }
            Effect::CancelBuild { id } => {
                if let Some(handle) = self.builds.remove(&id) {
                    handle.request_stop();
                }
            }
            Effect::SpawnApp { gen, executable } => {
                let context = app::AppContext {
                    listen_fds: &self.listen_fds,
                    env: &self.app_env,
                    stdin_slot: self.stdin_slot.clone(),
                };
                match app::start(
                    gen,
                    executable.as_deref(),
                    &self.settings,
                    &self.project,
                    self.tx.clone(),
                    context,
                ) {
                    Ok(handle) => {
                        self.apps.insert(gen, handle);
                    }
                    Err(e) => {
                        let message = format!("{e:#}");
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
                }
            }
            Effect::StopApp { gen } => {
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
            Effect::Report(report) => {
                if let Err(e) = self.printer.report(&report) {
                    // Nobody sees what hotrun says any more: stop, and say so in the
                    // exit code.
                    let _ = self.tx.send(Event::Fatal(format!("lost its output: {e}")));
                }
            }
            // Handled by the loop, which owns what a reload replaces.
            Effect::ReloadConfig => {}
            Effect::Probe { gen } => self.probe(gen),
            Effect::Browser(message) => {
                if let Some(hub) = &self.hub {
                    let clients = hub.send(&message);
                    let kind = message.kind();
                    return self.perform(Effect::Report(Report::ReloadSent { kind, clients }));
                }
            }
            Effect::Ui(UiAction::Clear) => self.printer.clear(),
            Effect::Ui(UiAction::Redraw) => {}
            Effect::Ui(UiAction::Open) => {
                let message = match self.printer.public_url() {
                    Some(url) => match open_in_browser(url) {
                        Ok(()) => format!("opening {url}"),
                        Err(e) => format!("cannot open {url}: {e}"),
                    },
                    None => "no URL to open: set proxy.listen, run.listen or run.ready".into(),
                };
                return self.perform(Effect::Report(Report::Info { message }));
            }
            Effect::Exit(code) => {
                // Whatever still runs (a cancelled build) is stopped by its helper
                // when hotrun exits; ask now so it starts at once.
                for handle in self.builds.values().chain(self.apps.values()) {
                    handle.request_stop();
                }
                return Some(code);
            }
        }
        None
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

/// SIGINT and SIGTERM quit (exit 0); SIGHUP means the terminal is gone (exit 1).
/// Either way the app gets its stop signal first.
fn listen_for_signals(tx: UnboundedSender<Event>) -> Result<()> {
    for kind in [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ] {
        let mut stream = signal(kind).context("cannot listen for signals")?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                let event = if kind == SignalKind::hangup() {
                    Event::Fatal("the terminal hung up (SIGHUP)".into())
                } else {
                    Event::Command(Command::Quit)
                };
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

/// `--ui json`: one-word commands on stdin.
fn read_commands(tx: UnboundedSender<Event>) {
    tokio::spawn(async move {
        let mut lines = LineReader::new(Some(tokio::io::stdin()));
        while let Some(line) = lines.next().await {
            if line.trim().is_empty() {
                continue;
            }
            let event = match Command::parse(&line) {
                Some(command) => Event::Command(command),
                None => Event::Notice(format!(
                    "unknown command `{}` on stdin (rebuild, restart, pause, resume, quit)",
                    line.trim()
                )),
            };
            if tx.send(event).is_err() {
                break;
            }
        }
    });
}

/// `--ui plain`: stdin goes to the app (through a pipe, so an app in its own process
/// group is never stopped by SIGTTIN).
fn forward_stdin(slot: StdinSlot) {
    tokio::spawn(async move {
        let mut lines = LineReader::new(Some(tokio::io::stdin()));
        while let Some(mut line) = lines.next().await {
            line.push('\n');
            let mut slot = slot.lock().await;
            let slot = &mut *slot;
            if let Some(pipe) = slot.pipe.as_mut() {
                if pipe.write_all(line.as_bytes()).await.is_err() {
                    slot.pipe = None;
                }
            } else if slot.pending.len() + line.len() <= app::STDIN_PENDING_MAX {
                // No app right now (building, swapping): the next one gets it.
                slot.pending.extend_from_slice(line.as_bytes());
            }
        }
    });
}
