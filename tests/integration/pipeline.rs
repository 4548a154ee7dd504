//! The asset pipeline: `[[on_change]]` commands (a stand-in for Tailwind that writes a
//! gitignored `static/out.css`) and `[[sidecar]]` helpers, on real processes. A
//! generator's output restyles the page in headless Chromium without a reload, build
//! or restart; a failing one is shown over the page and cleared by the next success
//! while the app keeps serving; a change during a run cancels it (its whole process
//! tree) and runs it again, the last edit winning; what it writes never starts it
//! again. Sidecars die with hotrun (SIGTERM and `kill -9`), are restarted with
//! backoff, and outlive app swaps. `--on-change GLOB=CMD` does what `[[on_change]]`
//! does.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use hotrun_support::browser::{Chrome, Page};
use hotrun_support::http::request;
use hotrun_support::*;

const T: Duration = DEADLINE;

/// Long enough for a command started again by its own output to show: hotrun settles
/// a change ~30 ms and learns outputs for 300 ms after a run.
const RETRIGGER_WINDOW: Duration = Duration::from_millis(1500);

/// A stand-in for Tailwind: `-i IN -o OUT`. It fails on "error" in the input (the
/// message first, as Tailwind prints it), says its pid, sleeps (in a child whose pid it
/// says too) for `sleep N` in the input, writes its output in place as Tailwind does
/// (or through a temp file renamed over it with `GEN_ATOMIC=1`), with `GEN_MAP=1`
/// writes a source map beside it that its command line does not name (new each run),
/// and with `GEN_LINGER=1` takes 300 ms more after writing (as a tool that exits
/// slowly does).
const GENERATOR: &str = r#"#!/bin/sh
set -e
while [ $# -gt 0 ]; do case "$1" in -i) in=$2; shift;; -o) out=$2; shift;; esac; shift; done
if grep -q error "$in"; then echo "$in:1:1: CssSyntaxError: unknown word" >&2; exit 1; fi
echo "gen $$"
pause=$(sed -n 's/.*sleep \([0-9.]*\).*/\1/p' "$in" | head -n 1)
if [ -n "$pause" ]; then sleep "$pause" & echo "sleep $!"; wait $!; fi
if [ -n "$GEN_ATOMIC" ]; then
  { echo "/* generated */"; cat "$in"; } > "$out.tmp" && mv "$out.tmp" "$out"
else
  { echo "/* generated */"; cat "$in"; } > "$out"
fi
if [ -n "$GEN_MAP" ]; then echo "{\"version\":3,\"at\":\"$(date +%s%N)\"}" > "$out.map"; fi
if [ -n "$GEN_LINGER" ]; then sleep 0.3; fi
echo "Done in 5ms"
"#;

/// The generator's command line, as the config names it.
pub const GEN_RUN: &str = "./gen.sh -i styles/in.css -o static/out.css";

/// Add the generator to the project at `root`: `gen.sh`, its input `styles/in.css`,
/// a `.gitignore` listing its output, and an `[[on_change]]` named `name` for `paths`
/// (a TOML array) appended to `.hotrun.toml`.
pub fn add_generator(root: &Path, name: &str, paths: &str) {
    let script = root.join("gen.sh");
    write(&script, GENERATOR);
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    write(
        &root.join("styles/in.css"),
        "h1 { color: rgb(10, 20, 30); }\n",
    );
    write(&root.join(".gitignore"), "static/out.css\n");
    std::fs::create_dir_all(root.join("static")).unwrap();
    let config = root.join(".hotrun.toml");
    let mut text = std::fs::read_to_string(&config).unwrap_or_default();
    text.push_str(&format!(
        "\n[[on_change]]\nname = \"{name}\"\npaths = {paths}\nrun = \"{GEN_RUN}\"\n"
    ));
    write(&config, &text);
}

/// A command project whose app is a sleep, with the generator.
fn generator_project(paths: &str) -> TempDir {
    let dir = command_project("[run]\ncmd = 'exec sleep 1000'\n");
    add_generator(dir.path(), "tailwind", paths);
    dir
}

/// pysite with the generator; its page (`/`) links the generated stylesheet.
fn tailwind_site() -> TempDir {
    let dir = fixture("pysite");
    add_generator(dir.path(), "tailwind", r#"["styles/**"]"#);
    edit(
        &dir.path().join("templates/page.html"),
        "/static/site.css",
        "/static/out.css",
    );
    dir
}

fn connected(page: &mut Page) {
    page.wait_for(
        "the reload client to connect",
        "window.__hotrun && window.__hotrun.connected",
        T,
    );
}

fn heading_colour(page: &mut Page, colour: &str) {
    page.wait_for(
        &format!("the heading in {colour}"),
        &format!("getComputedStyle(document.getElementById('version')).color === '{colour}'"),
        T,
    );
}

fn overlay_shows(page: &mut Page, text: &str) {
    page.wait_for(
        &format!("{text:?} in the overlay"),
        &format!(
            "(() => {{ const o = document.querySelector('hotrun-overlay'); \
             return !!o && !!o.shadowRoot && o.shadowRoot.textContent.includes({text:?}) }})()"
        ),
        T,
    );
}

fn count(h: &Hotrun, from: usize, pred: impl Fn(&Value) -> bool) -> usize {
    h.events_since(from).iter().filter(|e| pred(e)).count()
}

fn named<'a>(event: &'a str, name: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e: &Value| e["event"] == event && e["name"] == name
}

fn has_path(e: &Value, end: &str) -> bool {
    e["paths"]
        .as_array()
        .or(e["files"].as_array())
        .is_some_and(|p| {
            p.iter()
                .any(|p| p.as_str().is_some_and(|p| p.ends_with(end)))
        })
}

/// The pid in a command's or a sidecar's output line `PREFIX PID`.
fn tool_pid(h: &mut Hotrun, name: &str, prefix: &str) -> u32 {
    let line = h.wait_for("output", |e| {
        e["name"] == name && e["line"].as_str().is_some_and(|l| l.starts_with(prefix))
    });
    line["line"].as_str().unwrap()[prefix.len()..]
        .trim()
        .parse()
        .unwrap()
}

fn gone_within(pid: u32, limit: Duration, what: &str, h: &Hotrun) {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > limit {
            h.fail(&format!(
                "{what} (pid {pid}) is still alive after {limit:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pid of the first app (its `app_started`, wherever the cursor is).
fn app_pid(h: &Hotrun) -> u32 {
    let started = seen(h, 0, "the first app", |e| e["event"] == "app_started");
    started["pid"].as_u64().expect("a pid") as u32
}

/// Wait until an event since index `from` satisfies `pred` (whatever the cursor
/// passed on the way): events of one moment may come in either order.
fn seen(h: &Hotrun, from: usize, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if let Some(e) = h.events_since(from).into_iter().find(|e| pred(e)) {
            return e;
        }
        if start.elapsed() > DEADLINE {
            h.fail(&format!("no event came for {what}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_generated_stylesheet_restyles_the_page_without_a_reload_build_or_restart() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let dir = tailwind_site();
    let (mut h, port) = behind_proxy(dir.path());
    // The first build waited for the generator's first run.
    let events = h.events_since(0);
    let index = |pred: &dyn Fn(&Value) -> bool| events.iter().position(pred);
    let started = index(&named("task_started", "tailwind")).expect("a first run");
    assert_eq!(events[started]["files"], json!([]), "{}", events[started]);
    let finished = index(&|e| named("task_finished", "tailwind")(e) && e["ok"] == true)
        .unwrap_or_else(|| h.fail("the first run did not end ok"));
    let build = index(&|e| e["event"] == "build_started").expect("a first build");
    assert!(
        finished < build,
        "the first build came before the first run ended"
    );
    let app = app_pid(&h);
    let out = dir.path().join("static/out.css");
    assert!(read(&out).contains("rgb(10, 20, 30)"));

    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    connected(&mut page);
    heading_colour(&mut page, "rgb(10, 20, 30)");
    page.eval("window.marker = 1");
    let from = h.cursor();
    edit(
        &dir.path().join("styles/in.css"),
        "rgb(10, 20, 30)",
        "rgb(40, 50, 60)",
    );
    let started = h.wait_for("task_started", |e| e["name"] == "tailwind");
    assert!(has_path(&started, "styles/in.css"), "{started}");
    let finished = h.wait_for("task_finished", |e| e["name"] == "tailwind");
    assert_eq!(finished["ok"], true, "{finished}");
    // Its output, gitignored, was seen and swapped in as a stylesheet.
    seen(&h, from, "the generated stylesheet's change", |e| {
        e["event"] == "change" && e["kind"] == "css" && has_path(e, "static/out.css")
    });
    heading_colour(&mut page, "rgb(40, 50, 60)");
    assert_eq!(
        page.eval("window.marker"),
        json!(1),
        "the page never reloaded"
    );
    assert_eq!(page.loads(), 1);
    assert_eq!(count(&h, from, |e| e["event"] == "build_started"), 0);
    assert_eq!(count(&h, from, |e| e["event"] == "app_started"), 0);
    assert_eq!(
        count(&h, from, |e| e["event"] == "reload_sent"
            && e["kind"] == "reload"),
        0,
        "{:#?}",
        h.events_since(from)
    );
    assert!(alive(app), "the app (pid {app}) still runs");
}

#[test]
fn a_failing_generator_is_shown_over_the_page_until_it_succeeds() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let dir = tailwind_site();
    let (mut h, port) = behind_proxy(dir.path());
    let app = app_pid(&h);
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    connected(&mut page);
    let from = h.cursor();
    let input = dir.path().join("styles/in.css");
    write(&input, "h1 { color: error; }\n");
    let failed = h.wait_for("task_finished", |e| e["name"] == "tailwind");
    assert_eq!(failed["ok"], false, "{failed}");
    let first = &failed["diagnostics"][0];
    assert_eq!(
        first["message"], "tailwind failed: styles/in.css:1:1: CssSyntaxError: unknown word",
        "{failed}"
    );
    assert_eq!(
        first["rendered"].as_str().map(str::trim_end),
        Some(
            format!("tailwind: $ {GEN_RUN}\nstyles/in.css:1:1: CssSyntaxError: unknown word")
                .as_str()
        ),
        "{failed}"
    );
    h.wait_for("reload_sent", |e| e["kind"] == "error");
    overlay_shows(&mut page, "CssSyntaxError: unknown word");
    overlay_shows(&mut page, &format!("tailwind: $ {GEN_RUN}"));

    // The app is untouched and serves meanwhile.
    let (status, _, body) = request(port, "/", &[("Sec-Fetch-Dest", "document")]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("template one"));
    assert!(alive(app));

    write(&input, "h1 { color: rgb(70, 80, 90); }\n");
    let fixed = h.wait_for("task_finished", |e| e["name"] == "tailwind");
    assert_eq!(fixed["ok"], true, "{fixed}");
    h.wait_for("reload_sent", |e| e["kind"] == "ok");
    page.wait_for(
        "the overlay to go",
        "!document.querySelector('hotrun-overlay')",
        T,
    );
    heading_colour(&mut page, "rgb(70, 80, 90)");
    assert_eq!(page.loads(), 1, "neither the failure nor its fix reloaded");
    for event in ["build_started", "app_started", "app_exited"] {
        assert_eq!(count(&h, from, |e| e["event"] == event), 0, "{event}");
    }
    assert!(alive(app));
}

#[test]
fn a_change_during_a_run_cancels_it_and_the_last_edit_wins() {
    let dir = generator_project(r#"["styles/**"]"#);
    let mut h = hotrun(dir.path()).start();
    let first = h.wait_for("task_finished", |e| e["name"] == "tailwind");
    assert_eq!(first["ok"], true, "{first}");
    h.wait("app_started");
    let input = dir.path().join("styles/in.css");
    let from = h.cursor();
    write(
        &input,
        "h1 { color: rgb(1, 1, 1); } /* first edit, sleep 60 */\n",
    );
    let gen = tool_pid(&mut h, "tailwind", "gen ");
    let sleep = tool_pid(&mut h, "tailwind", "sleep ");
    assert!(alive(gen) && alive(sleep));
    write(&input, "h1 { color: rgb(2, 2, 2); } /* last edit */\n");
    h.wait_for("task_cancelled", |e| e["name"] == "tailwind");
    let again = h.wait_for("task_started", |e| e["name"] == "tailwind");
    assert!(has_path(&again, "styles/in.css"), "{again}");
    let done = h.wait_for("task_finished", |e| e["name"] == "tailwind");
    assert_eq!(done["ok"], true, "{done}");
    // The killed run is gone, with what it started (SIGTERM, SIGKILL 500 ms later).
    gone_within(gen, Duration::from_secs(5), "the cancelled run", &h);
    gone_within(
        sleep,
        Duration::from_secs(5),
        "the cancelled run's child",
        &h,
    );
    let out = read(&dir.path().join("static/out.css"));
    assert!(
        out.contains("last edit") && !out.contains("first edit"),
        "{out}"
    );
    assert_eq!(count(&h, from, named("task_started", "tailwind")), 2);
    assert_eq!(count(&h, from, named("task_cancelled", "tailwind")), 1);
    assert_eq!(
        count(&h, from, named("task_finished", "tailwind")),
        1,
        "the cancelled run is not reported as finished: {:#?}",
        h.events_since(from)
    );
    assert_no_zombies(&h);
}

#[test]
fn what_a_generator_writes_never_runs_it_again() {
    // In place (as Tailwind writes), through a temp file renamed over it, and with a
    // source map beside it that the command line does not name.
    for (how, env) in [
        ("in place", None),
        ("renamed", Some("GEN_ATOMIC")),
        ("with a map", Some("GEN_MAP")),
    ] {
        let dir = generator_project(r#"["styles/**", "static/**"]"#);
        let mut h = hotrun(dir.path());
        if let Some(key) = env {
            h = h.env(key, "1");
        }
        let mut h = h.start();
        let first = h.wait_for("task_finished", |e| e["name"] == "tailwind");
        assert_eq!(first["ok"], true, "{how}: {first}");
        h.wait("app_started");
        let from = h.cursor();
        edit(
            &dir.path().join("styles/in.css"),
            "rgb(10, 20, 30)",
            "rgb(11, 21, 31)",
        );
        let done = h.wait_for("task_finished", |e| e["name"] == "tailwind");
        assert_eq!(done["ok"], true, "{how}: {done}");
        seen(&h, from, "the output's change", |e| {
            e["event"] == "change" && has_path(e, "static/out.css")
        });
        std::thread::sleep(RETRIGGER_WINDOW);
        let runs = count(&h, from, named("task_started", "tailwind"));
        let cancels = count(&h, from, named("task_cancelled", "tailwind"));
        if runs != 1 || cancels != 0 {
            h.fail(&format!(
                "{how}: one edit made {runs} runs and {cancels} cancels: {:#?}",
                h.events_since(from)
            ));
        }
        assert!(read(&dir.path().join("static/out.css")).contains("rgb(11, 21, 31)"));
    }
}

#[test]
fn every_editor_s_save_of_an_input_runs_the_command_once_with_what_was_saved() {
    use hotrun_support::saves::{all_saves, save};
    let dir = generator_project(r#"["styles/**"]"#);
    let mut h = hotrun(dir.path()).start();
    h.wait_for("task_finished", |e| e["name"] == "tailwind");
    h.wait("app_started");
    let (input, out) = (
        dir.path().join("styles/in.css"),
        dir.path().join("static/out.css"),
    );
    // The first save comes when nothing has run for a while, as a user's does: from
    // then on the file is known as an input, and saves right after each run (these
    // come the moment a run ends) always run it again.
    std::thread::sleep(Duration::from_millis(600));
    let from = h.cursor();
    let saves = all_saves();
    for (n, how) in saves.iter().enumerate() {
        let text = format!("h1 {{ color: rgb({n}, 0, 0); }} /* save {n}: {how:?} */\n");
        save(*how, &input, &text);
        if let Err(last) = file_soon(&out, T, |t| t.contains(&text)) {
            h.fail(&format!(
                "{how:?}: the output never had the save; it has {last:?}"
            ));
        }
        h.wait_for("task_finished", |e| e["name"] == "tailwind");
    }
    std::thread::sleep(RETRIGGER_WINDOW);
    let runs = count(&h, from, named("task_started", "tailwind"));
    if runs != saves.len() {
        h.fail(&format!(
            "{} saves made {runs} runs: {:#?}",
            saves.len(),
            h.events_since(from)
        ));
    }
}

/// A sidecar that says its child's pid, notes a graceful stop in `stopped.txt` and
/// runs until stopped.
const WATCHER: &str = r#"trap 'echo bye > stopped.txt; exit 0' TERM; sleep 1000 & echo "child $!"; while :; do sleep 0.1 & wait $!; done"#;

fn sidecar_project() -> TempDir {
    command_project(&format!(
        "[run]\ncmd = 'exec sleep 1000'\n[[sidecar]]\nname = \"watcher\"\nrun = '''{WATCHER}'''\n"
    ))
}

/// The running watcher: its pid (from `sidecar_started`) and its child's.
fn watcher(h: &mut Hotrun) -> (u32, u32) {
    let from = h.cursor();
    let started = h.wait_for("sidecar_started", |e| e["name"] == "watcher");
    let pid = started["pid"].as_u64().unwrap() as u32;
    // Its first lines may come before the event of its start.
    let line = seen(h, from, "the sidecar's child", |e| {
        e["event"] == "output"
            && e["name"] == "watcher"
            && e["line"].as_str().is_some_and(|l| l.starts_with("child "))
    });
    let child = line["line"].as_str().unwrap()["child ".len()..]
        .parse()
        .unwrap();
    assert!(alive(pid) && alive(child));
    (pid, child)
}

#[test]
fn a_sidecar_outlives_app_swaps_and_dies_with_hotrun() {
    let dir = sidecar_project();
    let mut h = hotrun(dir.path()).start();
    let (pid, child) = watcher(&mut h);
    let parent = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid = parent.rsplit(')').next().unwrap().split_whitespace().nth(1);
    let helper = std::fs::read(format!("/proc/{}/cmdline", ppid.unwrap())).unwrap();
    assert!(
        String::from_utf8_lossy(&helper).contains("__supervise"),
        "the sidecar runs under hotrun's helper: {:?}",
        String::from_utf8_lossy(&helper)
    );
    let stdin = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
    assert!(
        stdin.to_string_lossy().starts_with("pipe:"),
        "the sidecar's stdin is a pipe: {}",
        stdin.display()
    );

    // An app swap leaves it alone.
    let app = app_pid(&h);
    let from = h.events_since(0).len();
    h.send("restart");
    h.wait_for("app_started", |e| e["pid"] != app);
    wait_gone(app, "the old app", &h);
    assert_eq!(count(&h, from, |e| e["event"] == "sidecar_exited"), 0);
    assert_eq!(count(&h, from, |e| e["event"] == "sidecar_started"), 0);
    assert!(alive(pid) && alive(child));

    // SIGTERM: it is stopped gracefully, and hotrun waits for it.
    h.signal(libc::SIGTERM);
    let exited = h.wait_for("sidecar_exited", |e| e["name"] == "watcher");
    assert_eq!(exited["requested"], true, "{exited}");
    assert_eq!(exited["restart_in_ms"], Value::Null, "{exited}");
    assert_eq!(h.wait_exit(), 0);
    assert!(!alive(pid), "the sidecar outlived hotrun");
    assert!(!alive(child), "the sidecar's child outlived hotrun");
    assert_eq!(read(&dir.path().join("stopped.txt")).trim(), "bye");
    drop(h);

    // kill -9: the sidecar and its child go all the same.
    let mut h = hotrun(dir.path()).start();
    let (pid, child) = watcher(&mut h);
    h.signal(libc::SIGKILL);
    h.wait_exit();
    gone_within(pid, Duration::from_secs(10), "the sidecar", &h);
    gone_within(child, Duration::from_secs(10), "the sidecar's child", &h);
}

#[test]
fn a_failing_sidecar_is_restarted_with_backoff_per_its_policy() {
    let dir = command_project(
        "[run]\ncmd = 'exec sleep 1000'\n\
         [[sidecar]]\nname = \"crashy\"\nrun = 'echo crashing; exit 1'\n\
         [[sidecar]]\nname = \"never\"\nrun = 'exit 1'\nrestart = \"never\"\n\
         [[sidecar]]\nname = \"clean\"\nrun = 'exit 0'\n",
    );
    let mut h = hotrun(dir.path()).start();
    let first = h.wait_for("sidecar_started", |e| e["name"] == "crashy");
    let exited = h.wait_for("sidecar_exited", |e| e["name"] == "crashy");
    assert_eq!(exited["code"], 1, "{exited}");
    assert_eq!(exited["requested"], false, "{exited}");
    assert_eq!(exited["restart_in_ms"], 1000, "{exited}");
    assert!(
        exited["output"].to_string().contains("crashing"),
        "its last words: {exited}"
    );
    let second = h.wait_for("sidecar_started", |e| e["name"] == "crashy");
    assert_ne!(first["pid"], second["pid"]);
    let waited = second["ts_ms"].as_u64().unwrap() - exited["ts_ms"].as_u64().unwrap();
    assert!(waited >= 900, "started again {waited} ms after exiting");
    let again = h.wait_for("sidecar_exited", |e| e["name"] == "crashy");
    assert_eq!(again["restart_in_ms"], 2000, "{again}");

    // Over a second later: `never` and a clean exit under `on-failure` stay down.
    let events = h.events_since(0);
    for name in ["never", "clean"] {
        let of = |event: &str| {
            events
                .iter()
                .filter(|e| e["event"] == event && e["name"] == name)
                .collect::<Vec<_>>()
        };
        let exits = of("sidecar_exited");
        assert_eq!(exits.len(), 1, "{name}: {exits:?}");
        assert_eq!(exits[0]["restart_in_ms"], Value::Null, "{name}: {exits:?}");
        assert_eq!(exits[0]["requested"], false, "{name}: {exits:?}");
        assert_eq!(of("sidecar_started").len(), 1, "{name} started again");
    }
}

#[test]
fn on_change_on_the_command_line_runs_its_command() {
    let dir = command_project("[run]\ncmd = 'exec sleep 1000'\n");
    write(&dir.path().join("notes/a.txt"), "one\n");
    std::fs::create_dir(dir.path().join("static")).unwrap();
    let mut h = hotrun(dir.path())
        .args(&[
            "--on-change",
            "notes/*.txt=cat notes/a.txt > static/copy.txt",
        ])
        .start();
    let first = h.wait_for("task_finished", |e| e["name"] == "cat");
    assert_eq!(first["ok"], true, "{first}");
    let copy = dir.path().join("static/copy.txt");
    assert_eq!(read(&copy), "one\n");
    h.wait("app_started");
    let from = h.cursor();
    write(&dir.path().join("notes/a.txt"), "two\n");
    let started = h.wait_for("task_started", |e| e["name"] == "cat");
    assert!(has_path(&started, "notes/a.txt"), "{started}");
    let done = h.wait_for("task_finished", |e| e["name"] == "cat");
    assert_eq!(done["ok"], true, "{done}");
    seen(&h, from, "the output's change", |e| {
        e["event"] == "change" && has_path(e, "static/copy.txt")
    });
    assert_eq!(read(&copy), "two\n");
    assert_eq!(count(&h, from, |e| e["event"] == "build_started"), 0);

    let (code, _, stderr) = hotrun(dir.path())
        .args(&["--on-change", "notes/*.txt"])
        .run();
    assert_ne!(code, 0);
    assert!(stderr.contains("expected GLOB=CMD"), "{stderr}");
}

/// The file's text once `pred` holds of it, or its last text after `within`.
fn file_soon(path: &Path, within: Duration, pred: impl Fn(&str) -> bool) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if pred(&text) {
            return Ok(());
        }
        if start.elapsed() > within {
            return Err(text);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_input_saved_again_just_after_a_run_still_runs_it() {
    // A second save soon after the first (a formatter on save, a quick fix): the run
    // for the first takes milliseconds, so the second lands just after it ended.
    let dir = generator_project(r#"["styles/**"]"#);
    let mut h = hotrun(dir.path()).start();
    h.wait_for("task_finished", |e| e["name"] == "tailwind");
    h.wait("app_started");
    let input = dir.path().join("styles/in.css");
    let out = dir.path().join("static/out.css");
    let from = h.cursor();
    write(&input, "h1 { color: rgb(3, 3, 3); } /* save one */\n");
    let done = h.wait_for("task_finished", |e| e["name"] == "tailwind");
    assert_eq!(done["ok"], true, "{done}");
    write(&input, "h1 { color: rgb(4, 4, 4); } /* save two */\n");
    // Seconds are far more than the settle window a run waits for.
    let within = Duration::from_secs(5);
    let second = file_soon(&out, within, |t| t.contains("save two"));
    // And a save a while later, when nothing of the command runs or just ran (hotrun
    // takes changes up to 300 ms after a run for possibly its own): the command still
    // runs for its input.
    std::thread::sleep(Duration::from_millis(600));
    write(&input, "h1 { color: rgb(5, 5, 5); } /* save three */\n");
    let third = file_soon(&out, within, |t| t.contains("save three"));
    if second.is_err() || third.is_err() {
        h.fail(&format!(
            "a save just after a run: {second:?}; a save seconds later: {third:?} \
             (Err: static/out.css after {within:?}); events since the first save: {:#?}",
            h.events_since(from)
        ));
    }
}

#[test]
fn a_file_a_generator_writes_before_it_exits_does_not_cancel_it() {
    // A source map its command line does not name, in its `paths`, written 300 ms
    // before it exits: its own write must not stop it (each run writes a new one).
    let dir = generator_project(r#"["styles/**", "static/**"]"#);
    let h = hotrun(dir.path())
        .env("GEN_MAP", "1")
        .env("GEN_LINGER", "1")
        .start();
    let within = Duration::from_secs(10);
    let start = Instant::now();
    let finished = loop {
        let events = h.events_since(0);
        if let Some(e) = events
            .iter()
            .find(|e| named("task_finished", "tailwind")(e))
        {
            break e.clone();
        }
        if start.elapsed() > within {
            h.fail(&format!(
                "no run ended within {within:?}: {} started, {} cancelled",
                count(&h, 0, named("task_started", "tailwind")),
                count(&h, 0, named("task_cancelled", "tailwind")),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(finished["ok"], true, "{finished}");
    assert_eq!(count(&h, 0, named("task_cancelled", "tailwind")), 0);
}

#[test]
fn a_change_during_the_first_run_still_holds_the_first_build_for_its_rerun() {
    let dir = generator_project(r#"["styles/**"]"#);
    let input = dir.path().join("styles/in.css");
    write(
        &input,
        "h1 { color: rgb(6, 6, 6); } /* at start, sleep 60 */\n",
    );
    let mut h = hotrun(dir.path()).start();
    tool_pid(&mut h, "tailwind", "sleep ");
    write(
        &input,
        "h1 { color: rgb(7, 7, 7); } /* saved during the first run */\n",
    );
    h.wait_for("task_cancelled", |e| e["name"] == "tailwind");
    let done = h.wait_for("task_finished", |e| e["name"] == "tailwind");
    assert_eq!(done["ok"], true, "{done}");
    seen(&h, 0, "the first build", |e| e["event"] == "build_started");
    let events = h.events_since(0);
    let at = |pred: &dyn Fn(&Value) -> bool| events.iter().position(pred).unwrap();
    let build = at(&|e| e["event"] == "build_started");
    let finished = at(&named("task_finished", "tailwind"));
    if build < finished {
        h.fail("the first build started before the generator's first (rerun) run ended");
    }
}
