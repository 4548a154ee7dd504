//! Unit tests for hotrun's state machine: every scenario is a sequence of events at
//! made-up instants, checked against the effects `State::update` asks for. No
//! processes, no files, no sleeping.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;
use crate::core::classify::{Classifier, Inputs};
use crate::core::event::{
    BuildOutcome, ChangeKind, Command, Diagnostic, Effect, Event, Executable, ExitStatus, Report,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const APP: &str = "/p/target/debug/app";
const MAIN_RS: &str = "/p/src/main.rs";
const LIB_RS: &str = "/p/src/lib.rs";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn options() -> Options {
    Options {
        debounce: ms(30),
        debounce_cap: Duration::from_secs(1),
        on_busy: OnBusy::Restart,
        restart: RestartPolicy::Never,
        ready_grace: ms(200),
        probe: false,
        ready_timeout: ms(30_000),
        exit_after_builds: None,
        swap: Swap::Restart,
        routes: false,
        tasks: Vec::new(),
        sidecars: Vec::new(),
        output_latency: ms(300),
    }
}

/// A Cargo project with one package at `/p`: `/p/src/*.rs` are build inputs,
/// `/p/README.md` is not.
fn classifier() -> Classifier {
    Classifier::new(
        PathBuf::from("/p"),
        Inputs::Cargo {
            packages: vec![PathBuf::from("/p")],
            example: false,
        },
        globset::GlobSet::empty(),
    )
}

fn state(options: Options) -> State {
    State::new(options, classifier())
}

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

/// An executable whose identity is derived from `size`: the same size is the same
/// binary, a different size a new one.
fn exe(path: &str, size: u64) -> Executable {
    Executable {
        path: PathBuf::from(path),
        size,
        mtime_ns: 1_700_000_000_000_000_000 + i128::from(size),
        inode: 4242 + size,
    }
}

fn ok_build(exe_path: &str, size: u64) -> BuildOutcome {
    BuildOutcome {
        ok: true,
        cancelled: false,
        duration: ms(800),
        diagnostics: Vec::new(),
        executable: Some(exe(exe_path, size)),
        input_files: paths(&[MAIN_RS, LIB_RS]),
        input_dirs: Vec::new(),
    }
}

fn error_diagnostic() -> Diagnostic {
    Diagnostic {
        level: "error".to_string(),
        message: "mismatched types".to_string(),
        rendered: "error[E0308]: mismatched types\n --> src/main.rs:3:5".to_string(),
        file: Some("src/main.rs".to_string()),
        line: Some(3),
        column: Some(5),
    }
}

fn failed_build() -> BuildOutcome {
    BuildOutcome {
        ok: false,
        cancelled: false,
        duration: ms(400),
        diagnostics: vec![error_diagnostic()],
        executable: None,
        input_files: Vec::new(),
        input_dirs: Vec::new(),
    }
}

fn changed(list: &[&str]) -> Event {
    Event::Changed {
        files: paths(list),
        removed_dirs: Vec::new(),
    }
}

fn finished(id: u64, outcome: BuildOutcome) -> Event {
    Event::BuildFinished { id, outcome }
}

fn code(code: i32) -> ExitStatus {
    ExitStatus {
        code: Some(code),
        signal: None,
    }
}

/// How an app stopped by hotrun usually ends: SIGTERM.
fn terminated() -> ExitStatus {
    ExitStatus {
        code: None,
        signal: Some(15),
    }
}

fn exited(gen: u64, status: ExitStatus) -> Event {
    Event::AppExited {
        gen,
        status,
        output: Vec::new(),
    }
}

fn started(gen: u64, pid: u32) -> Event {
    Event::AppStarted { gen, pid }
}

fn command(command: Command) -> Event {
    Event::Command(command)
}

/// Every `StartBuild` as (id, files).
fn builds_started(fx: &[Effect]) -> Vec<(u64, Vec<PathBuf>)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::StartBuild { id, files } => Some((*id, files.clone())),
            _ => None,
        })
        .collect()
}

/// The id of the one build these effects start.
fn build_id(fx: &[Effect]) -> u64 {
    match builds_started(fx).as_slice() {
        [(id, _)] => *id,
        other => panic!("expected exactly one StartBuild, got {other:?} in {fx:#?}"),
    }
}

fn spawned(fx: &[Effect]) -> Vec<u64> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::SpawnApp { gen, .. } => Some(*gen),
            _ => None,
        })
        .collect()
}

fn spawned_executables(fx: &[Effect]) -> Vec<Option<PathBuf>> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::SpawnApp { executable, .. } => Some(executable.clone()),
            _ => None,
        })
        .collect()
}

fn stopped(fx: &[Effect]) -> Vec<u64> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::StopApp { gen } => Some(*gen),
            _ => None,
        })
        .collect()
}

fn cancelled(fx: &[Effect]) -> Vec<u64> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::CancelBuild { id } => Some(*id),
            _ => None,
        })
        .collect()
}

fn exits(fx: &[Effect]) -> Vec<i32> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Exit(code) => Some(*code),
            _ => None,
        })
        .collect()
}

fn reports(fx: &[Effect]) -> Vec<&Report> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Report(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// The app exits reported: (requested, rolled back) each.
fn app_exits(fx: &[Effect]) -> Vec<(bool, bool)> {
    reports(fx)
        .into_iter()
        .filter_map(|r| match r {
            Report::AppExited {
                requested,
                rolled_back,
                ..
            } => Some((*requested, *rolled_back)),
            _ => None,
        })
        .collect()
}

fn has_report(fx: &[Effect], wanted: impl Fn(&Report) -> bool) -> bool {
    reports(fx).into_iter().any(wanted)
}

/// The effects that make something happen (everything but reports).
/// What the loop must do to processes and files (reports and browser messages aside).
fn actions(fx: &[Effect]) -> Vec<&Effect> {
    fx.iter()
        .filter(|e| !matches!(e, Effect::Report(_) | Effect::Browser(_)))
        .collect()
}

/// The `type`s of the browser messages, in order.
fn browser(fx: &[Effect]) -> Vec<&'static str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Browser(b) => Some(b.kind()),
            _ => None,
        })
        .collect()
}

/// Lets time pass up to `now` the way the loop does: a Tick at every deadline the state
/// asks for on the way.
fn advance(st: &mut State, now: Instant) -> Vec<Effect> {
    let mut fx = Vec::new();
    for _ in 0..10_000 {
        match st.next_deadline() {
            Some(at) if at <= now => fx.extend(st.update(Event::Tick, at)),
            _ => return fx,
        }
    }
    panic!("the deadline never moves past {:?}", st.next_deadline());
}

/// Delivers `event` at `now`, after the Ticks for every deadline that passed before it.
fn deliver(st: &mut State, event: Event, now: Instant) -> Vec<Effect> {
    let mut fx = advance(st, now);
    fx.extend(st.update(event, now));
    fx
}

/// Runs hotrun from the start until generation 1 of the app (pid 100, built from
/// `ok_build(APP, 1)` as build 1) is ready; returns the instant it became ready.
fn boot(st: &mut State, t0: Instant) -> Instant {
    let id = build_id(&st.start(t0));
    assert_eq!(id, 1);
    let fx = st.update(finished(id, ok_build(APP, 1)), t0 + ms(1000));
    assert_eq!(spawned(&fx), vec![1]);
    st.update(started(1, 100), t0 + ms(1010));
    let ready_at = st.next_deadline().expect("the ready grace is a deadline");
    st.update(Event::Tick, ready_at);
    assert!(matches!(
        st.app,
        App::Ready {
            gen: 1,
            pid: 100,
            ..
        }
    ));
    assert_eq!(st.build, Build::Idle);
    ready_at
}

/// A save of `files` at `now` on an idle hotrun: settles and starts a build; returns
/// its id and the instant it started.
fn save_and_build(st: &mut State, files: &[&str], now: Instant) -> (u64, Instant) {
    let fx = deliver(st, changed(files), now);
    assert!(builds_started(&fx).is_empty(), "built before settling");
    let at = st.next_deadline().expect("a settle deadline");
    let fx = st.update(Event::Tick, at);
    let started = builds_started(&fx);
    assert_eq!(started.len(), 1, "{fx:#?}");
    (started[0].0, at)
}

// ---------------------------------------------------------------------------------------
// 1. The first build and the first app
// ---------------------------------------------------------------------------------------

#[test]
fn start_builds_then_spawns_then_app_becomes_ready_after_grace() {
    let t0 = Instant::now();
    let mut st = state(options());

    let fx = st.start(t0);
    assert_eq!(
        actions(&fx),
        vec![&Effect::StartBuild {
            id: 1,
            files: Vec::new()
        }]
    );
    assert!(has_report(&fx, |r| matches!(
        r,
        Report::BuildStarted { .. }
    )));
    assert!(matches!(st.build, Build::Running { id: 1, .. }));
    assert_eq!(st.app, App::None);

    let fx = st.update(finished(1, ok_build(APP, 1)), t0 + ms(1000));
    assert_eq!(
        actions(&fx),
        vec![&Effect::SpawnApp {
            gen: 1,
            executable: Some(PathBuf::from(APP))
        }]
    );
    assert!(has_report(&fx, |r| matches!(
        r,
        Report::BuildFinished { outcome } if outcome.ok
    )));
    assert_eq!(st.last, LastBuild::Ok);
    assert_eq!(st.build, Build::Idle);

    let fx = st.update(started(1, 100), t0 + ms(1010));
    assert_eq!(fx, vec![Effect::Report(Report::AppStarted { pid: 100 })]);
    assert!(matches!(
        st.app,
        App::Starting {
            gen: 1,
            pid: 100,
            ..
        }
    ));

    // The grace counts from the spawn: not ready just before it ends.
    assert_eq!(st.next_deadline(), Some(t0 + ms(1200)));
    let fx = st.update(Event::Tick, t0 + ms(1199));
    assert!(fx.is_empty(), "{fx:#?}");
    assert!(matches!(st.app, App::Starting { .. }));

    let fx = st.update(Event::Tick, t0 + ms(1200));
    assert_eq!(
        fx,
        vec![
            Effect::Report(Report::AppReady { after: ms(200) }),
            Effect::Browser(Browser::Compiled)
        ]
    );
    assert!(matches!(
        st.app,
        App::Ready {
            gen: 1,
            pid: 100,
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------
// 2–4. Saves during a build
// ---------------------------------------------------------------------------------------

#[test]
fn save_during_build_cancels_settles_and_rebuilds_with_a_new_id() {
    let t0 = Instant::now();
    let mut st = state(options());
    let first = build_id(&st.start(t0));

    let fx = st.update(changed(&[MAIN_RS]), t0 + ms(100));
    assert_eq!(
        actions(&fx),
        vec![&Effect::CancelBuild { id: first }],
        "{fx:#?}"
    );
    assert!(has_report(&fx, |r| *r == Report::BuildCancelled));
    assert!(matches!(st.build, Build::Settling { .. }));

    // Nothing builds (or is said) before the settle deadline.
    assert_eq!(st.next_deadline(), Some(t0 + ms(130)));
    let fx = st.update(Event::Tick, t0 + ms(129));
    assert!(builds_started(&fx).is_empty(), "{fx:#?}");

    let fx = st.update(Event::Tick, t0 + ms(130));
    // The change is said once its burst is over, right before the build it starts.
    assert_eq!(
        reports(&fx)[..2],
        [
            &Report::Change {
                paths: paths(&[MAIN_RS]),
                count: 1,
                kind: ChangeKind::Build
            },
            &Report::BuildStarted {
                files: paths(&[MAIN_RS])
            }
        ]
    );
    let started = builds_started(&fx);
    assert_eq!(started.len(), 1);
    let (second, files) = &started[0];
    assert_ne!(*second, first);
    assert_eq!(files, &paths(&[MAIN_RS]));

    // The cancelled build's end arrives late: it changes nothing and reports nothing.
    let fx = st.update(finished(first, ok_build(APP, 1)), t0 + ms(200));
    assert!(fx.is_empty(), "{fx:#?}");
    assert!(matches!(st.build, Build::Running { id, .. } if id == *second));
    assert_eq!(st.app, App::None);
    assert_eq!(st.builds_finished, 0);

    // The new build's end is the one that counts.
    let fx = st.update(finished(*second, ok_build(APP, 2)), t0 + ms(900));
    assert_eq!(spawned(&fx), vec![1]);
}

#[test]
fn two_saves_during_one_build_cancel_once_and_rebuild_with_both_files() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);

    // A manual rebuild is running when the saves come in.
    let fx = st.update(command(Command::Rebuild), ready + ms(1000));
    let running = build_id(&fx);

    let mut fx = st.update(changed(&[MAIN_RS]), ready + ms(1100));
    fx.extend(st.update(changed(&[LIB_RS]), ready + ms(1115)));
    assert_eq!(cancelled(&fx), vec![running]);
    assert!(builds_started(&fx).is_empty());

    // The superseded build ends while hotrun settles: ignored.
    let fx = st.update(finished(running, ok_build(APP, 2)), ready + ms(1120));
    assert!(fx.is_empty(), "{fx:#?}");

    // The settle window runs from the last save.
    let fx = advance(&mut st, ready + ms(1144));
    assert!(builds_started(&fx).is_empty());
    let fx = advance(&mut st, ready + ms(1145));
    let started = builds_started(&fx);
    assert_eq!(started.len(), 1);
    let (newest, files) = started[0].clone();
    assert_eq!(files, paths(&[LIB_RS, MAIN_RS]));
    assert!(cancelled(&fx).is_empty());

    // Even after the newest build started, the superseded outcome is ignored.
    let fx = st.update(finished(running, ok_build(APP, 3)), ready + ms(1200));
    assert!(
        spawned(&fx).is_empty() && stopped(&fx).is_empty(),
        "{fx:#?}"
    );
    assert!(matches!(st.app, App::Ready { gen: 1, .. }));

    let fx = st.update(finished(newest, ok_build(APP, 4)), ready + ms(2000));
    assert_eq!(stopped(&fx), vec![1]);
    assert!(spawned(&fx).is_empty());
}

#[test]
fn on_busy_queue_lets_the_build_finish_then_builds_again() {
    let t0 = Instant::now();
    let mut st = state(Options {
        on_busy: OnBusy::Queue,
        ..options()
    });
    let ready = boot(&mut st, t0);
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));

    let fx = st.update(changed(&[LIB_RS]), at + ms(100));
    assert!(cancelled(&fx).is_empty(), "{fx:#?}");
    assert!(!has_report(&fx, |r| *r == Report::BuildCancelled));
    assert!(matches!(st.build, Build::Running { id: i, .. } if i == id));
    // A running build has no deadline of its own; the change is said when its burst
    // is over.
    assert_eq!(st.next_deadline(), Some(at + ms(130)));
    let fx = advance(&mut st, at + ms(130));
    assert!(has_report(&fx, |r| matches!(
        r,
        Report::Change { count: 1, .. }
    )));
    assert_eq!(st.next_deadline(), None);

    // The build finishes: the app swaps, and the queued change settles.
    let done = at + ms(800);
    let fx = st.update(finished(id, ok_build(APP, 2)), done);
    assert_eq!(stopped(&fx), vec![1]);
    assert!(builds_started(&fx).is_empty());
    assert!(matches!(
        &st.build,
        Build::Settling { files, .. } if files.iter().eq(paths(&[LIB_RS]).iter())
    ));

    let fx = advance(&mut st, done + ms(30));
    let started = builds_started(&fx);
    assert_eq!(started.len(), 1, "{fx:#?}");
    assert!(started[0].0 > id);
    assert_eq!(started[0].1, paths(&[LIB_RS]));
}

// ---------------------------------------------------------------------------------------
// 5. A save during a swap
// ---------------------------------------------------------------------------------------

#[test]
fn save_during_swap_builds_while_the_old_app_stops_then_swaps_again() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);

    // Build 2 succeeds: gen 1 is asked to stop.
    let (b2, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));
    let fx = st.update(finished(b2, ok_build(APP, 2)), at + ms(500));
    assert_eq!(stopped(&fx), vec![1]);
    assert!(spawned(&fx).is_empty());
    assert!(matches!(
        st.app,
        App::Stopping {
            gen: 1,
            then_start: true,
            ..
        }
    ));

    // A save while gen 1 is stopping: settles and builds, the swap goes on.
    let swap = at + ms(500);
    let fx = st.update(changed(&[LIB_RS]), swap + ms(10));
    assert!(actions(&fx).is_empty(), "{fx:#?}");
    assert!(matches!(st.build, Build::Settling { .. }));
    let fx = advance(&mut st, swap + ms(40));
    let b3 = build_id(&fx);
    assert!(stopped(&fx).is_empty() && spawned(&fx).is_empty());

    // Gen 1 is gone: gen 2 starts from build 2 while build 3 runs.
    let fx = st.update(exited(1, terminated()), swap + ms(100));
    assert_eq!(spawned(&fx), vec![2]);
    assert!(has_report(&fx, |r| *r
        == Report::AppExited {
            status: terminated(),
            requested: true,
            output: Vec::new(),
            rolled_back: false,
        }));
    assert!(matches!(st.build, Build::Running { id, .. } if id == b3));
    st.update(started(2, 200), swap + ms(110));
    assert!(matches!(st.app, App::Starting { gen: 2, .. }));

    // Build 3 succeeds while gen 2 runs: gen 2 stops, and gen 3 follows its exit.
    let fx = st.update(finished(b3, ok_build(APP, 3)), swap + ms(900));
    assert_eq!(stopped(&fx), vec![2]);
    assert!(spawned(&fx).is_empty());
    let fx = st.update(exited(2, terminated()), swap + ms(950));
    assert_eq!(spawned(&fx), vec![3]);
    assert!(matches!(st.app, App::Spawning { gen: 3, .. }));
}

// ---------------------------------------------------------------------------------------
// 6–8. Failed builds
// ---------------------------------------------------------------------------------------

#[test]
fn failed_build_leaves_the_running_app_alone() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));

    let fx = st.update(finished(id, failed_build()), at + ms(400));
    assert!(actions(&fx).is_empty(), "{fx:#?}");
    assert!(stopped(&fx).is_empty() && spawned(&fx).is_empty());
    assert_eq!(
        reports(&fx),
        vec![&Report::BuildFinished {
            outcome: failed_build()
        }]
    );
    assert!(matches!(
        st.app,
        App::Ready {
            gen: 1,
            pid: 100,
            ..
        }
    ));
    assert_eq!(
        st.last,
        LastBuild::Failed {
            diagnostics: vec![error_diagnostic()]
        }
    );
    assert_eq!(st.build, Build::Idle);
    assert_eq!(st.next_deadline(), None);
}

#[test]
fn good_build_after_a_failed_one_swaps_the_app() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    let (bad, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));
    st.update(finished(bad, failed_build()), at + ms(400));

    let (good, at) = save_and_build(&mut st, &[MAIN_RS], at + ms(5000));
    let fx = st.update(finished(good, ok_build(APP, 2)), at + ms(700));
    assert_eq!(actions(&fx), vec![&Effect::StopApp { gen: 1 }]);
    assert_eq!(st.last, LastBuild::Ok);

    let fx = st.update(exited(1, terminated()), at + ms(750));
    assert_eq!(
        actions(&fx),
        vec![&Effect::SpawnApp {
            gen: 2,
            executable: Some(PathBuf::from(APP))
        }]
    );
    assert!(app_exits(&fx).iter().any(|(requested, _)| *requested));
}

#[test]
fn non_rust_file_in_a_package_rebuilds_only_while_the_last_build_failed() {
    let template = "/p/templates/x.html";
    let t0 = Instant::now();

    // After a failed build the dep-info is stale: anything in the package is an input.
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    let (bad, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));
    st.update(finished(bad, failed_build()), at + ms(400));
    let now = at + ms(2000);
    let fx = st.update(changed(&[template]), now);
    assert!(
        reports(&fx).is_empty(),
        "said when the burst is over: {fx:#?}"
    );
    assert!(matches!(st.build, Build::Settling { .. }));
    let fx = advance(&mut st, now + ms(30));
    assert_eq!(
        reports(&fx)[0],
        &Report::Change {
            paths: paths(&[template]),
            count: 1,
            kind: ChangeKind::Build
        }
    );
    assert_eq!(builds_started(&fx), vec![(bad + 1, paths(&[template]))]);

    // After a good build it is just noted.
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    let now = ready + ms(1000);
    let fx = st.update(changed(&[template, "/p/README.md"]), now);
    assert!(fx.is_empty(), "said when the burst is over: {fx:#?}");
    assert_eq!(st.build, Build::Idle);
    assert_eq!(st.next_deadline(), Some(now + ms(30)));
    let fx = advance(&mut st, now + ms(5000));
    assert_eq!(
        fx,
        vec![Effect::Report(Report::Change {
            paths: paths(&[template, "/p/README.md"]),
            count: 2,
            kind: ChangeKind::Other
        })]
    );
    assert_eq!(st.next_deadline(), None);
}

// ---------------------------------------------------------------------------------------
// 9. The app dying during a build
// ---------------------------------------------------------------------------------------

#[test]
fn app_dying_during_a_build_is_reported_and_the_build_spawns_it_again() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));

    let died = at + ms(200);
    let fx = st.update(exited(1, code(3)), died);
    assert!(actions(&fx).is_empty(), "{fx:#?}");
    assert!(has_report(&fx, |r| *r
        == Report::AppExited {
            status: code(3),
            requested: false,
            output: Vec::new(),
            rolled_back: false,
        }));
    assert_eq!(
        st.app,
        App::Exited {
            status: code(3),
            at: died,
            why: None
        }
    );
    assert!(matches!(st.build, Build::Running { id: i, .. } if i == id));

    let fx = st.update(finished(id, ok_build(APP, 2)), at + ms(800));
    assert_eq!(
        actions(&fx),
        vec![&Effect::SpawnApp {
            gen: 2,
            executable: Some(PathBuf::from(APP))
        }]
    );
}

// ---------------------------------------------------------------------------------------
// 10. Unchanged binary
// ---------------------------------------------------------------------------------------

#[test]
fn unchanged_executable_keeps_the_app_running() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));

    // Same path, size, mtime and inode as the binary gen 1 runs.
    let fx = st.update(finished(id, ok_build(APP, 1)), at + ms(300));
    assert!(actions(&fx).is_empty(), "{fx:#?}");
    assert!(matches!(
        st.app,
        App::Ready {
            gen: 1,
            pid: 100,
            ..
        }
    ));
    assert_eq!(st.last, LastBuild::Ok);

    // Any difference (here only the inode) is a new binary.
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], at + ms(1000));
    let mut outcome = ok_build(APP, 1);
    outcome.executable.as_mut().unwrap().inode += 1;
    let fx = st.update(finished(id, outcome), at + ms(300));
    assert_eq!(stopped(&fx), vec![1]);
}

// ---------------------------------------------------------------------------------------
// 11. Restart policy
// ---------------------------------------------------------------------------------------

#[test]
fn restart_never_leaves_an_exited_app_down() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);

    let fx = st.update(exited(1, code(1)), ready + ms(500));
    assert!(actions(&fx).is_empty(), "{fx:#?}");
    assert!(matches!(st.app, App::Exited { .. }));
    assert_eq!(st.next_deadline(), None);
    assert!(spawned(&advance(&mut st, ready + ms(60_000))).is_empty());
}

#[test]
fn restart_on_failure_backs_off_and_doubles() {
    let t0 = Instant::now();
    let mut st = state(Options {
        restart: RestartPolicy::OnFailure,
        ..options()
    });
    let ready = boot(&mut st, t0);

    let crash = ready + ms(500);
    let fx = st.update(exited(1, code(1)), crash);
    assert!(actions(&fx).is_empty(), "{fx:#?}");
    assert_eq!(st.next_deadline(), Some(crash + Duration::from_secs(1)));
    assert!(spawned(&st.update(Event::Tick, crash + ms(999))).is_empty());
    let fx = st.update(Event::Tick, crash + Duration::from_secs(1));
    assert_eq!(spawned(&fx), vec![2]);
    assert_eq!(st.restarts, 1);

    // The second crash waits twice as long.
    let respawn = crash + Duration::from_secs(1);
    st.update(started(2, 200), respawn + ms(10));
    let crash = respawn + ms(300);
    st.update(exited(2, code(1)), crash);
    assert_eq!(st.next_deadline(), Some(crash + Duration::from_secs(2)));
    let fx = advance(&mut st, crash + Duration::from_secs(2));
    assert_eq!(spawned(&fx), vec![3]);
    assert_eq!(st.restarts, 2);

    // A clean exit is not a failure.
    st.update(started(3, 300), crash + ms(2010));
    let fx = st.update(exited(3, code(0)), crash + ms(2500));
    assert!(actions(&fx).is_empty(), "{fx:#?}");
    assert_eq!(st.next_deadline(), None);
}

#[test]
fn restart_always_restarts_even_a_clean_exit() {
    let t0 = Instant::now();
    let mut st = state(Options {
        restart: RestartPolicy::Always,
        ..options()
    });
    let ready = boot(&mut st, t0);

    let exit = ready + ms(500);
    st.update(exited(1, code(0)), exit);
    assert_eq!(st.next_deadline(), Some(exit + Duration::from_secs(1)));
    let fx = advance(&mut st, exit + Duration::from_secs(1));
    assert_eq!(
        actions(&fx),
        vec![&Effect::SpawnApp {
            gen: 2,
            executable: Some(PathBuf::from(APP))
        }]
    );
}

// ---------------------------------------------------------------------------------------
// 12. Bursts of events
// ---------------------------------------------------------------------------------------

#[test]
fn burst_of_changes_builds_once_after_the_last_one_settles() {
    let t0 = Instant::now();
    let mut st = state(options());
    let base = boot(&mut st, t0) + ms(1000);

    let mut fx = Vec::new();
    for i in 0..100 {
        fx.extend(deliver(&mut st, changed(&[MAIN_RS]), base + ms(5 * i)));
    }
    let last = base + ms(5 * 99);
    fx.extend(advance(&mut st, last + ms(29)));
    assert!(builds_started(&fx).is_empty(), "built during the burst");

    let fx = advance(&mut st, last + ms(30));
    assert_eq!(builds_started(&fx), vec![(2, paths(&[MAIN_RS]))]);
    assert!(matches!(st.build, Build::Running { started, .. } if started == last + ms(30)));
}

#[test]
fn a_branch_switch_is_one_change_per_kind() {
    let t0 = Instant::now();
    let mut st = state(options());
    let base = boot(&mut st, t0) + ms(1000);
    // 300 batches of 5 files each, as the watcher sees a `git checkout`.
    let mut fx = Vec::new();
    for i in 0..300 {
        let files: Vec<String> = (0..5).map(|n| format!("/p/src/m{i}_{n}.rs")).collect();
        let docs = format!("/p/docs/d{i}.md");
        let mut list: Vec<&str> = files.iter().map(String::as_str).collect();
        list.push(&docs);
        fx.extend(deliver(&mut st, changed(&list), base + ms(i)));
    }
    fx.extend(advance(&mut st, base + ms(2000)));
    let changes: Vec<(ChangeKind, usize, usize)> = reports(&fx)
        .into_iter()
        .filter_map(|r| match r {
            Report::Change { paths, count, kind } => Some((*kind, paths.len(), *count)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (ChangeKind::Build, 1000, 1500),
            (ChangeKind::Other, 300, 300)
        ]
    );
    assert_eq!(builds_started(&fx).len(), 1);
}

#[test]
fn endless_stream_of_changes_still_builds_at_the_cap() {
    let t0 = Instant::now();
    let mut st = state(options());
    let base = boot(&mut st, t0) + ms(1000);

    let mut first_build = None;
    for i in 0..=150 {
        let now = base + ms(10 * i);
        let ticked = advance(&mut st, now);
        if first_build.is_none() && !builds_started(&ticked).is_empty() {
            first_build = Some(now);
        }
        st.update(changed(&[MAIN_RS]), now);
        if let Build::Running { started, .. } = st.build {
            first_build.get_or_insert(started);
        }
    }
    let first_build = first_build.expect("a build started during the stream");
    assert!(first_build <= base + Duration::from_secs(1));
    assert!(first_build >= base + ms(990));
}

// ---------------------------------------------------------------------------------------
// 13. Quit
// ---------------------------------------------------------------------------------------

#[test]
fn quit_cancels_the_build_stops_the_app_and_exits_when_it_is_gone() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));

    let fx = st.update(command(Command::Quit), at + ms(100));
    assert_eq!(
        actions(&fx),
        vec![&Effect::CancelBuild { id }, &Effect::StopApp { gen: 1 }]
    );

    // The cancelled build's end and further saves do nothing now.
    assert!(actions(&st.update(finished(id, ok_build(APP, 2)), at + ms(150))).is_empty());
    assert!(actions(&st.update(changed(&[MAIN_RS]), at + ms(160))).is_empty());

    let fx = st.update(exited(1, terminated()), at + ms(200));
    assert_eq!(exits(&fx), vec![0]);
    assert!(spawned(&fx).is_empty());
}

#[test]
fn second_quit_exits_without_waiting_for_the_app() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);

    let fx = st.update(command(Command::Quit), ready + ms(100));
    assert_eq!(stopped(&fx), vec![1]);
    assert!(exits(&fx).is_empty());

    let fx = st.update(command(Command::Quit), ready + ms(200));
    assert_eq!(exits(&fx), vec![0]);
}

// ---------------------------------------------------------------------------------------
// 14. Commands
// ---------------------------------------------------------------------------------------

#[test]
fn rebuild_command_while_idle_builds_immediately() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);

    let now = ready + ms(1000);
    let fx = st.update(command(Command::Rebuild), now);
    assert_eq!(
        actions(&fx),
        vec![&Effect::StartBuild {
            id: 2,
            files: Vec::new()
        }]
    );
    assert!(matches!(st.build, Build::Running { id: 2, started, .. } if started == now));
}

#[test]
fn restart_command_respawns_the_app_without_building() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);

    let fx = st.update(command(Command::Restart), ready + ms(1000));
    assert_eq!(actions(&fx), vec![&Effect::StopApp { gen: 1 }]);
    let fx = st.update(exited(1, terminated()), ready + ms(1050));
    assert_eq!(
        actions(&fx),
        vec![&Effect::SpawnApp {
            gen: 2,
            executable: Some(PathBuf::from(APP))
        }]
    );
    assert_eq!(st.build, Build::Idle);
}

#[test]
fn pause_holds_changes_until_resume() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);

    st.update(command(Command::Pause), ready + ms(100));
    assert!(st.paused);
    st.update(changed(&[MAIN_RS]), ready + ms(200));
    assert_eq!(st.build, Build::Idle);
    // The change is still shown, once its burst is over.
    let fx = advance(&mut st, ready + ms(10_000));
    assert!(has_report(&fx, |r| matches!(
        r,
        Report::Change {
            kind: ChangeKind::Build,
            ..
        }
    )));
    assert!(builds_started(&fx).is_empty());
    assert_eq!(st.next_deadline(), None);

    let resume = ready + ms(10_000);
    let fx = st.update(command(Command::Resume), resume);
    assert!(actions(&fx).is_empty(), "{fx:#?}");
    assert!(!st.paused);
    assert!(matches!(st.build, Build::Settling { .. }));
    let fx = advance(&mut st, resume + ms(30));
    assert_eq!(builds_started(&fx), vec![(2, paths(&[MAIN_RS]))]);
}

// ---------------------------------------------------------------------------------------
// 15. exit_after_builds
// ---------------------------------------------------------------------------------------

#[test]
fn exit_after_one_build_quits_once_the_app_is_ready() {
    let t0 = Instant::now();
    let mut st = state(Options {
        exit_after_builds: Some(1),
        ..options()
    });

    let id = build_id(&st.start(t0));
    let fx = st.update(finished(id, ok_build(APP, 1)), t0 + ms(1000));
    assert_eq!(
        actions(&fx),
        vec![&Effect::SpawnApp {
            gen: 1,
            executable: Some(PathBuf::from(APP))
        }]
    );
    let fx = st.update(started(1, 100), t0 + ms(1010));
    assert!(actions(&fx).is_empty(), "{fx:#?}");

    let fx = advance(&mut st, t0 + ms(1200));
    assert!(has_report(&fx, |r| matches!(r, Report::AppReady { .. })));
    assert_eq!(actions(&fx), vec![&Effect::StopApp { gen: 1 }]);

    let fx = st.update(exited(1, terminated()), t0 + ms(1300));
    assert_eq!(actions(&fx), vec![&Effect::Exit(0)]);
}

// ---------------------------------------------------------------------------------------
// 16. Idle
// ---------------------------------------------------------------------------------------

#[test]
fn idle_hotrun_with_a_ready_app_has_no_deadline() {
    let t0 = Instant::now();
    let mut st = state(options());
    boot(&mut st, t0);
    assert_eq!(st.next_deadline(), None);
}

// ---------------------------------------------------------------------------------------
// More corners
// ---------------------------------------------------------------------------------------

#[test]
fn lost_events_rebuild_when_idle() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);

    let now = ready + ms(1000);
    st.update(Event::Rescan, now);
    assert!(matches!(st.build, Build::Settling { .. }));
    let fx = advance(&mut st, now + ms(30));
    assert_eq!(builds_started(&fx).len(), 1);
}

#[test]
fn lost_events_during_a_queued_build_still_rebuild() {
    let t0 = Instant::now();
    let mut st = state(Options {
        on_busy: OnBusy::Queue,
        ..options()
    });
    let ready = boot(&mut st, t0);
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));

    // The watcher overflowed while the build ran: anything may have changed since.
    st.update(Event::Rescan, at + ms(100));
    let done = at + ms(800);
    st.update(finished(id, ok_build(APP, 2)), done);
    let fx = advance(&mut st, done + Duration::from_secs(2));
    assert_eq!(builds_started(&fx).len(), 1, "{fx:#?}");
}

#[test]
fn fatal_error_stops_the_app_and_exits_with_code_one() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);

    let fx = st.update(Event::Fatal("watcher died".to_string()), ready + ms(100));
    assert_eq!(actions(&fx), vec![&Effect::StopApp { gen: 1 }]);
    assert!(has_report(&fx, |r| matches!(r, Report::Error { .. })));
    let fx = st.update(exited(1, terminated()), ready + ms(200));
    assert_eq!(exits(&fx), vec![1]);
}

#[test]
fn good_build_while_the_app_is_still_spawning_waits_for_its_pid_then_swaps() {
    let t0 = Instant::now();
    let mut st = state(options());
    let id = build_id(&st.start(t0));
    st.update(finished(id, ok_build(APP, 1)), t0 + ms(1000));

    // Build 2 finishes before gen 1 reported its pid.
    let (b2, at) = save_and_build(&mut st, &[MAIN_RS], t0 + ms(1001));
    let fx = st.update(finished(b2, ok_build(APP, 2)), at + ms(500));
    assert_eq!(actions(&fx), vec![&Effect::StopApp { gen: 1 }]);

    let fx = st.update(started(1, 100), at + ms(510));
    assert_eq!(fx, vec![Effect::Report(Report::AppStarted { pid: 100 })]);
    assert!(matches!(
        st.app,
        App::Stopping {
            gen: 1,
            pid: Some(100),
            ..
        }
    ));
    let fx = st.update(exited(1, terminated()), at + ms(600));
    assert_eq!(spawned(&fx), vec![2]);
    assert_eq!(spawned_executables(&fx), vec![Some(PathBuf::from(APP))]);
}

// ---------------------------------------------------------------------------------------
// Browser messages
// ---------------------------------------------------------------------------------------

#[test]
fn browsers_hear_building_then_compiled_only_once_the_new_app_is_ready() {
    let t0 = Instant::now();
    let mut st = state(options());
    assert_eq!(browser(&st.start(t0)), vec!["building"]);
    let fx = st.update(finished(1, ok_build(APP, 1)), t0 + ms(1000));
    assert!(browser(&fx).is_empty(), "{fx:#?}");
    let fx = st.update(started(1, 100), t0 + ms(1010));
    assert!(browser(&fx).is_empty(), "{fx:#?}");
    // Ready after the grace period: now the tabs reload.
    assert_eq!(browser(&advance(&mut st, t0 + ms(1300))), vec!["compiled"]);

    // With a probe, `compiled` waits for the probe's answer.
    let mut st = state(Options {
        probe: true,
        ..options()
    });
    st.start(t0);
    st.update(finished(1, ok_build(APP, 1)), t0 + ms(1000));
    st.update(started(1, 100), t0 + ms(1010));
    assert!(browser(&advance(&mut st, t0 + ms(5000))).is_empty());
    let fx = st.update(Event::AppReady { gen: 1 }, t0 + ms(5001));
    assert_eq!(browser(&fx), vec!["compiled"]);
}

#[test]
fn browsers_hear_errors_ok_and_exits() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));
    let fx = st.update(finished(id, failed_build()), at + ms(400));
    assert_eq!(
        fx.iter()
            .find_map(|e| match e {
                Effect::Browser(Browser::Error { diagnostics, .. }) => Some(diagnostics.clone()),
                _ => None,
            })
            .expect("an error message"),
        vec![error_diagnostic()]
    );
    // Same binary as the running one: the overlay clears, nothing reloads.
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], at + ms(1000));
    let fx = st.update(finished(id, ok_build(APP, 1)), at + ms(300));
    assert_eq!(browser(&fx), vec!["ok"]);

    let fx = st.update(exited(1, code(3)), at + ms(500));
    assert!(fx.contains(&Effect::Browser(Browser::Exited {
        status: code(3),
        output: Vec::new(),
        rolled_back: false,
    })));
    // A requested stop (a swap) is no news for the browser.
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));
    st.update(finished(id, ok_build(APP, 2)), at + ms(300));
    let fx = st.update(exited(1, terminated()), at + ms(400));
    assert!(browser(&fx).is_empty(), "{fx:#?}");
}

#[test]
fn a_watcher_still_sorting_a_burst_keeps_the_settle_window_open() {
    let t0 = Instant::now();
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    let at = ready + ms(1000);
    st.update(changed(&[MAIN_RS]), at);
    // The watcher got more events and is sorting them (hashing thousands of files,
    // say): no build, however long that takes…
    st.update(Event::Changing, at + ms(10));
    assert!(builds_started(&advance(&mut st, at + ms(400))).is_empty());
    // …until it says what changed; the window counts from then.
    st.update(changed(&[]), at + ms(400));
    assert!(builds_started(&advance(&mut st, at + ms(429))).is_empty());
    assert_eq!(builds_started(&advance(&mut st, at + ms(430))).len(), 1);

    // The cap still holds: a watcher that never finishes cannot hold a build back.
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    let at = ready + ms(1000);
    st.update(changed(&[MAIN_RS]), at);
    st.update(Event::Changing, at + ms(10));
    assert_eq!(
        builds_started(&advance(&mut st, at + options().debounce_cap)).len(),
        1
    );

    // While idle, it starts nothing.
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    assert!(st.update(Event::Changing, ready + ms(10)).is_empty());
    assert_eq!(st.next_deadline(), None);
}

// ---------------------------------------------------------------------------------------
// Whether an app is on its way (the proxy holds requests only then)
// ---------------------------------------------------------------------------------------

#[test]
fn requests_wait_only_while_an_app_is_coming() {
    let t0 = Instant::now();
    // A first build that fails: nothing is coming until the next save.
    let mut st = state(options());
    assert!(st.coming(), "before the first build");
    let id = build_id(&st.start(t0));
    assert!(st.coming(), "during the first build");
    st.update(finished(id, failed_build()), t0 + ms(500));
    assert!(!st.serving() && !st.coming());
    assert!(st.waiting_for().starts_with("the build failed"));
    deliver(&mut st, changed(&[MAIN_RS]), t0 + ms(1000));
    assert!(st.coming(), "a save settles into a build");

    // An app that exits by itself, with no restart policy: nothing is coming.
    let mut st = state(options());
    let ready = boot(&mut st, t0);
    assert!(st.serving());
    st.update(exited(1, code(101)), ready + ms(100));
    assert!(!st.serving() && !st.coming());
    // A swap (stop, then start) is on its way.
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], ready + ms(1000));
    assert!(st.coming());
    st.update(finished(id, ok_build(APP, 2)), at + ms(300));
    assert!(st.coming(), "the new app is starting");

    // With `run.restart = "on-failure"`, a crash is followed by a restart.
    let mut st = state(Options {
        restart: RestartPolicy::OnFailure,
        ..options()
    });
    let ready = boot(&mut st, t0);
    st.update(exited(1, code(1)), ready + ms(100));
    assert!(st.coming(), "a restart is scheduled");

    // Quitting: nothing is coming.
    let mut st = state(options());
    boot(&mut st, t0);
    st.update(command(Command::Quit), t0 + ms(5000));
    assert!(!st.coming());
}

#[test]
fn the_panel_clock_changes_nothing_but_the_time_shown() {
    let t0 = Instant::now();
    let mut st = state(options());
    st.start(t0);
    // A save is settling and a build runs: the clock neither ends the burst nor
    // touches the build.
    st.update(changed(&["src/main.rs"]), t0 + ms(10));
    let deadline = st.next_deadline();
    assert!(st.update(Event::Clock, t0 + ms(20)).is_empty());
    assert_eq!(st.next_deadline(), deadline);
    assert!(matches!(st.build, Build::Running { id: 1, .. }));
}

// ---------------------------------------------------------------------------------------
// Blue-green swaps: the new generation starts beside the old one
// ---------------------------------------------------------------------------------------

fn overlap() -> Options {
    Options {
        swap: Swap::Overlap,
        probe: true,
        routes: true,
        ..options()
    }
}

fn exited_with(gen: u64, status: ExitStatus, output: &[&str]) -> Event {
    Event::AppExited {
        gen,
        status,
        output: output.iter().map(|l| l.to_string()).collect(),
    }
}

fn routed(fx: &[Effect]) -> Vec<u64> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Route { gen } => Some(*gen),
            _ => None,
        })
        .collect()
}

/// Generation 1 serves (on a port of its own), and build 2 has just finished with a new
/// binary: returns the effects of that and the instant.
fn overlap_swap(st: &mut State, t0: Instant) -> (Vec<Effect>, Instant) {
    st.start(t0);
    let fx = st.update(finished(1, ok_build(APP, 1)), t0 + ms(1000));
    assert_eq!(spawned(&fx), vec![1]);
    let fx = st.update(started(1, 100), t0 + ms(1010));
    assert!(fx.contains(&Effect::Probe { gen: 1 }));
    let fx = st.update(Event::AppReady { gen: 1 }, t0 + ms(1100));
    assert_eq!(
        routed(&fx),
        vec![1],
        "the first generation gets the requests"
    );
    assert!(st.serving());
    let (id, at) = save_and_build(st, &[MAIN_RS], t0 + ms(2000));
    let at = at + ms(500);
    let fx = st.update(finished(id, ok_build(APP, 2)), at);
    (fx, at)
}

#[test]
fn overlap_the_new_app_starts_beside_the_old_and_takes_over_once_ready() {
    let t0 = Instant::now();
    let mut st = state(overlap());
    let (fx, at) = overlap_swap(&mut st, t0);
    assert_eq!(spawned(&fx), vec![2]);
    assert!(
        stopped(&fx).is_empty(),
        "the old app serves meanwhile: {fx:#?}"
    );
    assert!(st.serving());
    assert!(matches!(st.app, App::Ready { gen: 1, .. }));
    assert!(
        !browser(&fx).contains(&"compiled"),
        "no reload before it answers"
    );

    let fx = st.update(started(2, 200), at + ms(10));
    assert_eq!(actions(&fx), vec![&Effect::Probe { gen: 2 }]);
    assert!(st.serving());

    let fx = st.update(Event::AppReady { gen: 2 }, at + ms(1500));
    assert_eq!(routed(&fx), vec![2]);
    assert_eq!(
        stopped(&fx),
        vec![1],
        "the old one goes once the new one answers"
    );
    assert_eq!(browser(&fx), vec!["compiled"]);
    assert!(matches!(
        st.app,
        App::Ready {
            gen: 2,
            pid: 200,
            ..
        }
    ));
    assert!(st.incoming.is_none());

    // The old one's exit was asked for: no news, no restart, no overlay.
    let fx = st.update(exited(1, terminated()), at + ms(1600));
    assert!(actions(&fx).is_empty(), "{fx:#?}");
    assert!(browser(&fx).is_empty());
    assert_eq!(
        app_exits(&fx),
        vec![(true, false)],
        "requested, rolled back"
    );
    assert!(matches!(st.app, App::Ready { gen: 2, .. }));
}

#[test]
fn overlap_a_new_app_that_dies_on_start_is_rolled_back_and_the_old_one_serves_on() {
    let t0 = Instant::now();
    let mut st = state(overlap());
    let (_, at) = overlap_swap(&mut st, t0);
    st.update(started(2, 200), at + ms(10));
    let fx = st.update(
        exited_with(2, code(101), &["thread 'main' panicked: no DATABASE_URL"]),
        at + ms(300),
    );
    assert!(stopped(&fx).is_empty(), "the old app is untouched: {fx:#?}");
    assert!(routed(&fx).is_empty());
    assert!(spawned(&fx).is_empty());
    assert_eq!(
        app_exits(&fx),
        vec![(false, true)],
        "requested, rolled back"
    );
    assert!(fx.contains(&Effect::Browser(Browser::Exited {
        status: code(101),
        output: vec!["thread 'main' panicked: no DATABASE_URL".into()],
        rolled_back: true,
    })));
    assert!(matches!(st.app, App::Ready { gen: 1, .. }));
    assert!(st.serving() && st.incoming.is_none());
    assert_eq!(st.restart_at, None, "a rollback is not a crash to restart");

    // The next good save tries again, beside the same old app.
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], at + ms(1000));
    let fx = st.update(finished(id, ok_build(APP, 3)), at + ms(500));
    assert_eq!(spawned(&fx), vec![3]);
    assert!(stopped(&fx).is_empty());
}

#[test]
fn overlap_a_new_app_that_never_gets_ready_is_stopped_and_rolled_back() {
    let t0 = Instant::now();
    let mut st = state(overlap());
    let (_, at) = overlap_swap(&mut st, t0);
    st.update(started(2, 200), at + ms(10));
    let deadline = st.next_deadline().expect("the new app's ready timeout");
    assert_eq!(deadline, at + ms(30_000));
    let fx = st.update(Event::Tick, deadline);
    assert_eq!(stopped(&fx), vec![2]);
    assert!(has_report(&fx, |r| matches!(r, Report::Error { .. })));
    assert!(matches!(st.app, App::Ready { gen: 1, .. }));
    // Late: it answers after all. Too late to take over.
    let fx = st.update(Event::AppReady { gen: 2 }, deadline + ms(5));
    assert!(routed(&fx).is_empty());
    let fx = st.update(
        exited_with(2, terminated(), &["still loading"]),
        deadline + ms(50),
    );
    assert!(app_exits(&fx).iter().any(|(_, rolled_back)| *rolled_back));
    assert!(matches!(st.app, App::Ready { gen: 1, .. }));
    assert!(st.incoming.is_none());
}

#[test]
fn overlap_a_clash_with_the_old_app_falls_back_to_stop_then_start_from_then_on() {
    let t0 = Instant::now();
    let mut st = state(overlap());
    let (_, at) = overlap_swap(&mut st, t0);
    st.update(started(2, 200), at + ms(10));
    let fx = st.update(
        exited_with(2, code(1), &["Error: Address already in use (os error 98)"]),
        at + ms(100),
    );
    // Said once, then retried the old way: the old app stops, then the new one starts.
    assert!(has_report(&fx, |r| matches!(
        r,
        Report::Error { message } if message.contains("stop-then-start")
    )));
    assert_eq!(stopped(&fx), vec![1]);
    assert!(spawned(&fx).is_empty());
    let fx = st.update(exited(1, terminated()), at + ms(200));
    assert_eq!(spawned(&fx), vec![3]);
    st.update(started(3, 300), at + ms(210));
    st.update(Event::AppReady { gen: 3 }, at + ms(300));
    assert!(matches!(st.app, App::Ready { gen: 3, .. }));
    // And the next swap does not overlap any more.
    let (id, b) = save_and_build(&mut st, &[MAIN_RS], at + ms(1000));
    let fx = st.update(finished(id, ok_build(APP, 4)), b + ms(500));
    assert_eq!(stopped(&fx), vec![3]);
    assert!(spawned(&fx).is_empty());
}

#[test]
fn overlap_a_save_during_the_overlap_replaces_the_incoming_app() {
    let t0 = Instant::now();
    let mut st = state(overlap());
    let (_, at) = overlap_swap(&mut st, t0);
    st.update(started(2, 200), at + ms(10));
    let (id, b) = save_and_build(&mut st, &[MAIN_RS], at + ms(100));
    assert!(st.serving(), "the old app serves through the build");
    let fx = st.update(finished(id, ok_build(APP, 3)), b + ms(500));
    assert_eq!(stopped(&fx), vec![2], "the starting one is dropped");
    assert_eq!(spawned(&fx), vec![3]);
    assert!(matches!(st.app, App::Ready { gen: 1, .. }));
    // The dropped one's exit is expected; the newest takes over.
    let fx = st.update(exited(2, terminated()), b + ms(600));
    assert!(app_exits(&fx).iter().any(|(requested, _)| *requested));
    assert!(st.incoming.as_ref().is_some_and(|i| i.gen == 3));
    st.update(started(3, 300), b + ms(610));
    let fx = st.update(Event::AppReady { gen: 3 }, b + ms(900));
    assert_eq!(routed(&fx), vec![3]);
    assert_eq!(stopped(&fx), vec![1]);
}

#[test]
fn overlap_quit_during_the_overlap_stops_both_and_exits_once_both_are_gone() {
    let t0 = Instant::now();
    let mut st = state(overlap());
    let (_, at) = overlap_swap(&mut st, t0);
    st.update(started(2, 200), at + ms(10));
    let fx = st.update(command(Command::Quit), at + ms(20));
    let mut stops = stopped(&fx);
    stops.sort();
    assert_eq!(stops, vec![1, 2]);
    assert!(exits(&fx).is_empty());
    let fx = st.update(exited(1, terminated()), at + ms(30));
    assert!(exits(&fx).is_empty(), "the new one is still there");
    let fx = st.update(exited(2, terminated()), at + ms(40));
    assert_eq!(exits(&fx), vec![0]);
}

#[test]
fn overlap_the_old_app_exiting_by_itself_during_the_overlap_hands_over_to_the_new() {
    let t0 = Instant::now();
    let mut st = state(Options {
        restart: RestartPolicy::Always,
        ..overlap()
    });
    let (_, at) = overlap_swap(&mut st, t0);
    st.update(started(2, 200), at + ms(10));
    let fx = st.update(exited(1, code(1)), at + ms(20));
    assert_eq!(
        app_exits(&fx),
        vec![(false, false)],
        "requested, rolled back"
    );
    assert_eq!(st.restart_at, None, "the new app is on its way: no restart");
    assert!(!st.serving() && st.coming());
    let fx = st.update(Event::AppReady { gen: 2 }, at + ms(500));
    assert_eq!(routed(&fx), vec![2]);
    assert!(stopped(&fx).is_empty(), "nothing old is left to stop");
    assert!(matches!(st.app, App::Ready { gen: 2, .. }));
}

#[test]
fn listen_mode_overlaps_only_once_the_app_says_it_is_ready() {
    let t0 = Instant::now();
    let notify = Options {
        swap: Swap::OverlapWhenNotified,
        ..options()
    };
    // An app that never says READY=1: stop-then-start, as always.
    let mut st = state(notify.clone());
    boot(&mut st, t0);
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], t0 + ms(2000));
    let fx = st.update(finished(id, ok_build(APP, 2)), at + ms(500));
    assert_eq!(stopped(&fx), vec![1]);

    // One that does: from its first word on, swaps overlap and wait for the new word.
    let mut st = state(notify);
    boot(&mut st, t0);
    let fx = st.update(Event::AppNotified { gen: 1 }, t0 + ms(1500));
    assert!(has_report(&fx, |r| matches!(r, Report::Info { .. })));
    let (id, at) = save_and_build(&mut st, &[MAIN_RS], t0 + ms(2000));
    let fx = st.update(finished(id, ok_build(APP, 2)), at + ms(500));
    assert_eq!(spawned(&fx), vec![2]);
    assert!(stopped(&fx).is_empty());
    // READY=1 may come before the helper says the app started.
    let fx = st.update(Event::AppNotified { gen: 2 }, at + ms(600));
    assert!(stopped(&fx).is_empty());
    let fx = st.update(started(2, 200), at + ms(610));
    assert_eq!(stopped(&fx), vec![1]);
    assert_eq!(browser(&fx), vec!["compiled"]);
    assert!(matches!(
        st.app,
        App::Ready {
            gen: 2,
            pid: 200,
            ..
        }
    ));
}

#[test]
fn overlap_a_restart_during_the_overlap_starts_a_fresh_app_with_what_changed() {
    let t0 = Instant::now();
    let mut st = state(overlap());
    let (_, at) = overlap_swap(&mut st, t0);
    st.update(started(2, 200), at + ms(10));
    // `R`, an `.env` change, a `[run]` change: the one starting has the old env.
    let fx = st.update(command(Command::Restart), at + ms(20));
    assert_eq!(stopped(&fx), vec![2]);
    assert_eq!(spawned(&fx), vec![3], "same binary, started again: {fx:#?}");
    assert!(matches!(st.app, App::Ready { gen: 1, .. }));
    assert!(st.incoming.as_ref().is_some_and(|i| i.gen == 3));
}

#[test]
fn overlap_when_the_old_app_is_gone_a_new_one_that_dies_is_a_crash_not_a_rollback() {
    let t0 = Instant::now();
    let mut st = state(Options {
        restart: RestartPolicy::Always,
        ..overlap()
    });
    let (_, at) = overlap_swap(&mut st, t0);
    st.update(started(2, 200), at + ms(10));
    st.update(exited(1, code(1)), at + ms(20));
    let fx = st.update(exited_with(2, code(2), &["panic"]), at + ms(30));
    assert_eq!(
        app_exits(&fx),
        vec![(false, false)],
        "requested, rolled back"
    );
    assert!(fx.contains(&Effect::Browser(Browser::Exited {
        status: code(2),
        output: vec!["panic".into()],
        rolled_back: false,
    })));
    assert!(matches!(st.app, App::Exited { .. }));
    assert!(
        st.restart_at.is_some(),
        "run.restart applies: nothing else runs"
    );
}

#[test]
fn overlap_a_clash_is_retried_at_once_without_an_overlay() {
    let t0 = Instant::now();
    let mut st = state(overlap());
    let (_, at) = overlap_swap(&mut st, t0);
    st.update(started(2, 200), at + ms(10));
    let fx = st.update(
        exited_with(2, code(1), &["bind: address already in use"]),
        at + ms(100),
    );
    assert!(browser(&fx).is_empty(), "the retry is under way: {fx:#?}");
    // The old way: the old app stops, the new one comes after it; requests wait.
    assert!(matches!(
        st.app,
        App::Stopping {
            gen: 1,
            then_start: true,
            ..
        }
    ));
    assert!(st.coming());
}

// ---------------------------------------------------------------------------------------
// The asset pipeline: `[[on_change]]` commands and sidecars
// ---------------------------------------------------------------------------------------

/// `styles/**` runs `tailwind`, which says it writes `static/out.css` (also matched by
/// its `paths`); one sidecar `watcher`, restarted on failure.
fn pipeline_state() -> State {
    let options = Options {
        tasks: vec![("tailwind".into(), "gen".into())],
        sidecars: vec![("watcher".into(), RestartPolicy::OnFailure)],
        ..options()
    };
    State::new(options, pipeline_state_classifier())
}

/// `styles/**` and `static/**` run `tailwind`, which says it writes `static/out.css`.
fn pipeline_state_classifier() -> Classifier {
    let glob = |globs: &[&str]| {
        let mut set = globset::GlobSetBuilder::new();
        for g in globs {
            for p in crate::core::classify::expand_glob(g) {
                set.add(crate::core::classify::build_glob(&p).unwrap());
            }
        }
        set.build().unwrap()
    };
    classifier().with_tasks(vec![crate::core::classify::TaskGlobs {
        paths: glob(&["styles/**", "static/**"]),
        outputs: glob(&["/static/out.css"]),
        output_dirs: vec![PathBuf::from("static")],
    }])
}

fn watching() -> Event {
    Event::Watching {
        roots: paths(&["/p"]),
        directories: 1,
        polling: None,
    }
}

fn tasks_started(fx: &[Effect]) -> Vec<u64> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::StartTask { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

fn sidecar_started(fx: &[Effect]) -> Option<u64> {
    fx.iter().find_map(|e| match e {
        Effect::StartSidecar { id, .. } => Some(*id),
        _ => None,
    })
}

fn task_done(id: u64, ok: bool) -> Event {
    Event::TaskFinished {
        id,
        outcome: BuildOutcome {
            ok,
            diagnostics: if ok {
                Vec::new()
            } else {
                vec![error_diagnostic()]
            },
            executable: None,
            input_files: Vec::new(),
            ..ok_build(APP, 1)
        },
    }
}

/// Starts hotrun with the pipeline, lets the commands' first run succeed, the first
/// build and app come up; returns the instant the app is ready.
fn boot_pipeline(st: &mut State, t0: Instant) -> Instant {
    let fx = st.update(watching(), t0);
    assert_eq!(tasks_started(&fx), vec![2], "{fx:#?}");
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::StartSidecar { id: 1, sidecar: 0 })),
        "{fx:#?}"
    );
    let fx = st.update(task_done(2, true), t0 + ms(100));
    let id = build_id(&fx);
    let fx = st.update(finished(id, ok_build(APP, 1)), t0 + ms(1000));
    assert_eq!(spawned(&fx), vec![1]);
    st.update(started(1, 100), t0 + ms(1010));
    let ready_at = st.next_deadline().unwrap();
    st.update(Event::Tick, ready_at);
    assert!(matches!(st.app, App::Ready { .. }));
    ready_at
}

#[test]
fn commands_run_once_before_the_first_build_and_sidecars_start_at_once() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    let fx = st.update(watching(), t0);
    assert!(builds_started(&fx).is_empty(), "the build waits: {fx:#?}");
    // A source saved meanwhile waits for the command too, then builds with it.
    let fx = deliver(&mut st, changed(&[MAIN_RS]), t0 + ms(10));
    let fx2 = advance(&mut st, t0 + ms(500));
    assert!(builds_started(&fx).is_empty() && builds_started(&fx2).is_empty());
    let fx = st.update(task_done(2, true), t0 + ms(600));
    assert_eq!(builds_started(&fx), vec![(1, paths(&[MAIN_RS]))]);
}

#[test]
fn a_change_of_its_inputs_runs_the_command_without_building_or_touching_the_app() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    let ready = boot_pipeline(&mut st, t0);
    let fx = deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(1000));
    assert!(tasks_started(&fx).is_empty(), "runs once the burst is over");
    let fx = advance(&mut st, ready + ms(2000));
    assert_eq!(tasks_started(&fx), vec![3]);
    assert!(builds_started(&fx).is_empty() && stopped(&fx).is_empty());
    assert!(has_report(
        &fx,
        |r| matches!(r, Report::TaskStarted { name, files } if name == "tailwind" && files == &paths(&["/p/styles/app.css"]))
    ));
}

#[test]
fn a_change_during_a_run_cancels_it_and_runs_it_again_with_the_last_edit() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    let ready = boot_pipeline(&mut st, t0);
    deliver(&mut st, changed(&["/p/styles/a.css"]), ready + ms(1000));
    let id = tasks_started(&advance(&mut st, ready + ms(1100)))[0];
    let fx = deliver(&mut st, changed(&["/p/styles/b.css"]), ready + ms(1200));
    assert!(fx.contains(&Effect::CancelTask { id }), "{fx:#?}");
    // The cancelled run's end changes nothing.
    let fx = st.update(task_done(id, false), ready + ms(1210));
    assert!(browser(&fx).is_empty(), "{fx:#?}");
    let fx = advance(&mut st, ready + ms(1300));
    let again = tasks_started(&fx);
    assert_eq!(again.len(), 1);
    assert!(has_report(
        &fx,
        |r| matches!(r, Report::TaskStarted { files, .. } if files == &paths(&["/p/styles/a.css", "/p/styles/b.css"]))
    ));
}

#[test]
fn what_a_command_writes_never_runs_it_again() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    let ready = boot_pipeline(&mut st, t0);
    // Named by its command line (`-o static/out.css`): never a trigger, even while it runs.
    let fx = deliver(&mut st, changed(&["/p/static/out.css"]), ready + ms(1000));
    assert!(
        tasks_started(&advance(&mut st, ready + ms(2000))).is_empty(),
        "{fx:#?}"
    );
    // Not named, but written by the run that just ended: learned as its output.
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(3000));
    let id = tasks_started(&advance(&mut st, ready + ms(3100)))[0];
    st.update(task_done(id, true), ready + ms(3200));
    let fx = deliver(&mut st, changed(&["/p/static/other.css"]), ready + ms(3250));
    assert!(!fx.iter().any(|e| matches!(e, Effect::CancelTask { .. })));
    assert!(tasks_started(&advance(&mut st, ready + ms(5000))).is_empty());
    // The same file changed while nothing of the command runs: someone else wrote it,
    // and it is an input after all.
    deliver(&mut st, changed(&["/p/static/other.css"]), ready + ms(6000));
    assert_eq!(tasks_started(&advance(&mut st, ready + ms(7000))).len(), 1);
    // An input edited later runs it as ever.
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(8000));
    assert_eq!(tasks_started(&advance(&mut st, ready + ms(9000))).len(), 1);
}

#[test]
fn an_input_saved_again_just_after_a_run_runs_it_again() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    let ready = boot_pipeline(&mut st, t0);
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(1000));
    let id = tasks_started(&advance(&mut st, ready + ms(1100)))[0];
    st.update(task_done(id, true), ready + ms(1200));
    // Format-on-save writes it again 50 ms later: a known input, never an output.
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(1250));
    assert_eq!(tasks_started(&advance(&mut st, ready + ms(1400))).len(), 1);
}

#[test]
fn a_file_written_during_three_runs_in_a_row_is_the_command_s_and_stops_no_more_runs() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    let ready = boot_pipeline(&mut st, t0);
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(1000));
    let mut id = tasks_started(&advance(&mut st, ready + ms(1100)))[0];
    // Beside its named output (a source map): its own, even the first time.
    let fx = deliver(
        &mut st,
        changed(&["/p/static/out.css.map"]),
        ready + ms(1120),
    );
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::CancelTask { .. })),
        "{fx:#?}"
    );
    // A cache among its inputs: taken for an edit twice (a save, then a formatter's,
    // each landing during a run)…
    let mut at = ready + ms(1150);
    for _ in 0..2 {
        let fx = deliver(&mut st, changed(&["/p/styles/.cache"]), at);
        assert!(fx.contains(&Effect::CancelTask { id }), "{fx:#?}");
        id = tasks_started(&advance(&mut st, at + ms(100)))[0];
        at += ms(150);
    }
    // …and for the command's own when it changes during a third run in a row.
    let fx = deliver(&mut st, changed(&["/p/styles/.cache"]), at);
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::CancelTask { .. })),
        "{fx:#?}"
    );
    st.update(task_done(id, true), at + ms(50));
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(3000));
    let id = tasks_started(&advance(&mut st, ready + ms(3100)))[0];
    let fx = deliver(&mut st, changed(&["/p/styles/.cache"]), ready + ms(3150));
    assert!(!fx.iter().any(|e| matches!(e, Effect::CancelTask { .. })));
    let fx = st.update(task_done(id, true), ready + ms(3200));
    assert!(tasks_started(&fx).is_empty());
    assert!(tasks_started(&advance(&mut st, ready + ms(4000))).is_empty());
}

#[test]
fn the_first_build_waits_for_a_rerun_of_a_cancelled_first_run() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    st.update(watching(), t0);
    let fx = deliver(&mut st, changed(&["/p/styles/app.css"]), t0 + ms(10));
    assert!(fx.contains(&Effect::CancelTask { id: 2 }));
    // The cancelled run ends: the rerun is still to come, so the build waits.
    let fx = st.update(task_done(2, false), t0 + ms(20));
    assert!(builds_started(&fx).is_empty(), "{fx:#?}");
    let fx = advance(&mut st, t0 + ms(100));
    let id = tasks_started(&fx)[0];
    assert!(builds_started(&fx).is_empty());
    let fx = st.update(task_done(id, true), t0 + ms(200));
    assert_eq!(builds_started(&fx).len(), 1);
}

#[test]
fn a_failing_command_shows_over_the_page_until_it_succeeds_and_the_app_is_untouched() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    let ready = boot_pipeline(&mut st, t0);
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(1000));
    let id = tasks_started(&advance(&mut st, ready + ms(1100)))[0];
    let fx = st.update(task_done(id, false), ready + ms(1200));
    assert_eq!(browser(&fx), vec!["error"]);
    assert!(fx.iter().any(|e| matches!(e,
        Effect::Browser(Browser::Error { title: Some(t), .. }) if t == "tailwind failed")));
    assert!(stopped(&fx).is_empty() && spawned(&fx).is_empty());
    assert!(has_report(
        &fx,
        |r| matches!(r, Report::TaskFinished { outcome, .. } if !outcome.ok)
    ));
    // A new app while it fails: the tabs reload, and see the failure again.
    let (build, _) = save_and_build(&mut st, &[MAIN_RS], ready + ms(2000));
    st.update(finished(build, ok_build(APP, 2)), ready + ms(3000));
    st.update(exited(1, terminated()), ready + ms(3100));
    st.update(started(2, 200), ready + ms(3110));
    let fx = advance(&mut st, ready + ms(4000));
    assert_eq!(browser(&fx), vec!["compiled", "error"]);
    // Fixed: cleared.
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(5000));
    let id = tasks_started(&advance(&mut st, ready + ms(5100)))[0];
    let fx = st.update(task_done(id, true), ready + ms(5200));
    assert_eq!(browser(&fx), vec!["ok"]);
}

#[test]
fn a_sidecar_that_fails_starts_again_with_backoff_and_quit_waits_for_it() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    let ready = boot_pipeline(&mut st, t0);
    st.update(Event::SidecarStarted { id: 1, pid: 300 }, t0 + ms(5));
    let exit = |id| Event::SidecarExited {
        id,
        status: code(1),
        output: vec!["boom".into()],
    };
    let fx = st.update(exit(1), ready + ms(100));
    assert!(has_report(
        &fx,
        |r| matches!(r, Report::SidecarExited { restart_in: Some(d), requested: false, .. } if *d == Duration::from_secs(1))
    ));
    // Starts again when the backoff is over, not before.
    let fx = advance(&mut st, ready + ms(1000));
    assert!(sidecar_started(&fx).is_none());
    let fx = advance(&mut st, ready + ms(1200));
    let id = sidecar_started(&fx).expect("started again");
    let fx = st.update(exit(id), ready + ms(1300));
    assert!(has_report(
        &fx,
        |r| matches!(r, Report::SidecarExited { restart_in: Some(d), .. } if *d == Duration::from_secs(2))
    ));
    let fx = advance(&mut st, ready + ms(3400));
    let id = sidecar_started(&fx).expect("started again");
    st.update(Event::SidecarStarted { id, pid: 301 }, ready + ms(3410));
    assert_eq!(st.pipeline.sidecars[0].restarts, 2);
    // Swaps never touch it.
    let (build, _) = save_and_build(&mut st, &[MAIN_RS], ready + ms(4000));
    let fx = st.update(finished(build, ok_build(APP, 2)), ready + ms(5000));
    assert!(!fx.iter().any(|e| matches!(e, Effect::StopSidecar { .. })));
    st.update(exited(1, terminated()), ready + ms(5100));
    // Quit: it is asked to stop, and hotrun exits once it and the app are gone.
    let fx = st.update(command(Command::Quit), ready + ms(6000));
    assert!(fx.contains(&Effect::StopSidecar { id }), "{fx:#?}");
    st.update(exited(2, terminated()), ready + ms(6100));
    assert!(exits(&st.update(Event::Clock, ready + ms(6150))).is_empty());
    let fx = st.update(
        Event::SidecarExited {
            id,
            status: terminated(),
            output: Vec::new(),
        },
        ready + ms(6200),
    );
    assert_eq!(exits(&fx), vec![0], "{fx:#?}");
}

#[test]
fn a_command_fixed_while_the_app_is_down_leaves_the_page_saying_so() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    let ready = boot_pipeline(&mut st, t0);
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(1000));
    let id = tasks_started(&advance(&mut st, ready + ms(1100)))[0];
    st.update(task_done(id, false), ready + ms(1200));
    st.update(exited(1, code(3)), ready + ms(1300));
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(2000));
    let id = tasks_started(&advance(&mut st, ready + ms(2100)))[0];
    let fx = st.update(task_done(id, true), ready + ms(2200));
    assert_eq!(browser(&fx), vec!["ok", "exited"], "{fx:#?}");
    assert!(fx.contains(&Effect::Browser(Browser::Fixed)));
}

#[test]
fn a_rebuild_asked_for_while_the_first_build_waits_is_the_first_build() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    st.update(watching(), t0);
    let fx = st.update(command(Command::Rebuild), t0 + ms(10));
    assert_eq!(builds_started(&fx).len(), 1);
    let fx = st.update(task_done(2, true), t0 + ms(100));
    assert!(builds_started(&fx).is_empty(), "{fx:#?}");
    assert!(cancelled(&fx).is_empty());
}

#[test]
fn a_config_edit_runs_a_changed_command_anew_and_starts_the_sidecars_again() {
    let t0 = Instant::now();
    let mut st = pipeline_state();
    let ready = boot_pipeline(&mut st, t0);
    st.update(Event::SidecarStarted { id: 1, pid: 300 }, t0 + ms(5));
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(1000));
    let id = tasks_started(&advance(&mut st, ready + ms(1100)))[0];
    st.update(task_done(id, false), ready + ms(1200));
    // Its command changed, and the sidecars: the failing one is gone, the new one runs
    // once, as at start; the sidecar is stopped (its exit expected) and started anew.
    let options = Options {
        tasks: vec![("tailwind".into(), "gen --minify".into())],
        sidecars: vec![("watcher".into(), RestartPolicy::OnFailure)],
        ..options()
    };
    st.reconfigure(options, pipeline_state_classifier());
    let applied = Event::ConfigApplied {
        rebuild: false,
        restart: false,
        sidecars: true,
    };
    let fx = st.update(applied, ready + ms(2000));
    assert_eq!(tasks_started(&fx).len(), 1, "{fx:#?}");
    assert!(fx.contains(&Effect::StopSidecar { id: 1 }));
    assert!(sidecar_started(&fx).is_some());
    assert_eq!(
        browser(&fx),
        vec!["ok"],
        "the failure went with the old command"
    );
    let fx = st.update(
        Event::SidecarExited {
            id: 1,
            status: terminated(),
            output: Vec::new(),
        },
        ready + ms(2100),
    );
    assert!(has_report(&fx, |r| matches!(
        r,
        Report::SidecarExited {
            requested: true,
            ..
        }
    )));
    assert!(!fx.iter().any(|e| matches!(e, Effect::StartSidecar { .. })));
}

#[test]
fn a_known_input_saved_during_every_run_is_never_taken_for_output() {
    // An editor saving every second while a slow generator runs: each save lands in a
    // run, and each one still runs it again.
    let t0 = Instant::now();
    let mut st = pipeline_state();
    let ready = boot_pipeline(&mut st, t0);
    deliver(&mut st, changed(&["/p/styles/app.css"]), ready + ms(1000));
    let mut id = tasks_started(&advance(&mut st, ready + ms(1100)))[0];
    let mut at = ready + ms(1200);
    for _ in 0..5 {
        let fx = deliver(&mut st, changed(&["/p/styles/app.css"]), at);
        assert!(fx.contains(&Effect::CancelTask { id }), "{fx:#?}");
        id = tasks_started(&advance(&mut st, at + ms(100)))[0];
        at += ms(200);
    }
}
