//! The loop: gather events from every source, hand each to `State::update`, perform
//! the effects it returns. Before it, [`wire`] starts the servers and the watcher and
//! says where everything is.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tokio::sync::mpsc::{self, UnboundedSender};

use super::effects::{Effects, Performed};
use super::readiness;
use super::setup::{panel_info, Prepared};
use super::sources::{forward_stdin, listen_for_signals, read_commands, sleep_until, tick};
use crate::app::StdinSlot;
use crate::config::settings::{Settings, Ui};
use crate::core::event::{Effect, Event, Report};
use crate::core::options::{Options, Swap};
use crate::core::state::State;
use crate::ui::Printer;
use crate::watch;
use crate::web::guard::Guard;
use crate::web::hub::{self, Hub};
use crate::web::proxy;
use crate::web::proxy::ProxyHandle;
use crate::web::sockets::{ProxySockets, ReloadSocket, Sockets};

/// Run until an effect says exit; returns the exit code.
pub(super) async fn run(prepared: Prepared, sockets: Sockets) -> Result<i32> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    // What the user asks for (signals, commands, keys) comes on a channel of its own,
    // read first: a quit never waits behind a flood of output lines.
    let (user_tx, mut user_rx) = mpsc::unbounded_channel::<Event>();
    let (mut state, mut effects) = wire(prepared, sockets, tx, user_tx)?;
    // The panel's clock (uptime, build timer): once a second, only while it shows.
    let mut panel_clock = (effects.settings.ui.mode == Ui::Panel)
        .then(|| tokio::time::interval(std::time::Duration::from_secs(1)));
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
            _ = tick(&mut panel_clock), if panel_clock.is_some() => Event::Clock,
        };
        effects.observe(&event);
        let mut queue: VecDeque<Effect> = state.update(event, Instant::now()).into();
        // Before anything is stopped: no request goes to an app on its way out.
        effects.set_gate(&state);
        while let Some(effect) = queue.pop_front() {
            match effects.perform(effect) {
                Performed::Done => {}
                Performed::Exit(code) => return Ok(code),
                Performed::Reconfigured(new) => {
                    state.reconfigure(new.options, new.classifier);
                    queue.extend(state.update(new.applied, Instant::now()));
                    effects.set_gate(&state);
                }
            }
        }
        effects.printer.draw_panel(&state, Instant::now());
        if effects.printer.lost() && !effects.lost_reported {
            effects.lost_reported = true;
            let _ = effects.tx.send(Event::Fatal("lost its terminal".into()));
        }
    }
}

/// Start what feeds the loop (signals, stdin, the servers, the watcher) and what the
/// effects need; say where everything is.
fn wire(
    prepared: Prepared,
    sockets: Sockets,
    tx: UnboundedSender<Event>,
    user_tx: UnboundedSender<Event>,
) -> Result<(State, Effects)> {
    let Prepared {
        settings,
        project,
        watch,
        classifier,
        options,
        cli,
    } = prepared;
    listen_for_signals(user_tx.clone())?;
    let stdin_slot = match settings.ui.mode {
        Ui::Plain => {
            let slot: StdinSlot = Default::default();
            forward_stdin(slot.clone());
            Some(slot)
        }
        Ui::Json => {
            read_commands(user_tx);
            None
        }
        // The terminal's keys are hotrun's; the app gets no stdin.
        Ui::Panel => {
            crate::ui::terminal::read_keys(user_tx);
            None
        }
    };
    let listen_addrs: Vec<std::net::SocketAddr> = sockets
        .listen
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let proxy_app = sockets.proxy.as_ref().map(|p| p.app);
    let probe = readiness::probe(&settings, &listen_addrs, proxy_app);
    // Behind the proxy with a `PORT` of hotrun's choosing, each generation gets a port
    // of its own and a new one starts beside the old one; on the `run.listen` sockets
    // that waits for the app's `READY=1`.
    // A `run.ready` check of the user's own names one address, which cannot tell two
    // generations apart: then swaps stop the old app first.
    let own_ports =
        sockets.app_env().iter().any(|(k, _)| k == "PORT") && settings.run.ready.is_none();
    // Said once: why swaps behind the proxy do not overlap here.
    let swap_note = match &settings.proxy {
        Some(p) if settings.run.overlap && !own_ports => Some(if p.app.is_some() {
            "proxy.app names the app's one address, so two generations cannot run side by side: swaps stop the old app, then start the new one (leave proxy.app out for blue-green swaps)"
        } else {
            "run.ready names one address, which cannot tell two generations apart: swaps stop the old app, then start the new one (leave run.ready out for blue-green swaps)"
        }),
        _ => None,
    };
    let possible = if own_ports {
        Swap::Overlap
    } else if !listen_addrs.is_empty() {
        Swap::OverlapWhenNotified
    } else {
        Swap::Restart
    };
    let options = Options {
        probe: probe.is_some(),
        swap: if settings.run.overlap {
            possible
        } else {
            Swap::Restart
        },
        routes: own_ports,
        ..options
    };
    let app_env = sockets.app_env();
    let listen_fds = sockets.listen_fds();
    let Sockets {
        listen: listeners,
        proxy: proxy_sockets,
        reload: reload_socket,
    } = sockets;
    let Servers {
        hub,
        proxy,
        reload_url,
        reload_moved,
    } = servers(&settings, proxy_sockets, reload_socket, &tx)?;
    // Watching starts once the servers answer (another hotrun may be asking).
    let watcher = watch::start(watch.clone(), tx.clone())?;
    let state = State::new(options, classifier);
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
        builds: Default::default(),
        apps: Default::default(),
        tasks: Default::default(),
        sidecars: Default::default(),
        stdin_slot,
        hub,
        reload_url,
        watcher,
        watched: watch,
        retiring: None,
        cli,
        own_ports,
        gen_addrs: Default::default(),
        swap: possible,
    };
    announce(&mut effects, reload_moved, swap_note);
    Ok((state, effects))
}

/// hotrun's servers, started.
struct Servers {
    /// The open browser tabs (`reload.enabled`).
    hub: Option<Arc<Hub>>,
    proxy: Option<ProxyHandle>,
    /// Where the reload script is served without the proxy…
    reload_url: Option<String>,
    /// …and why not on `reload.listen`, when another hotrun has it.
    reload_moved: Option<String>,
}

/// Start the proxy and the reload server on the sockets bound at setup.
fn servers(
    settings: &Settings,
    proxy_sockets: Option<ProxySockets>,
    reload_socket: Option<ReloadSocket>,
    tx: &UnboundedSender<Event>,
) -> Result<Servers> {
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
    Ok(Servers {
        hub,
        proxy,
        reload_url,
        reload_moved,
    })
}

/// Say once at start where everything is, and what hotrun chose by itself.
fn announce(effects: &mut Effects, reload_moved: Option<String>, swap_note: Option<&str>) {
    for message in reload_moved
        .into_iter()
        .chain(swap_note.map(str::to_string))
    {
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
}
