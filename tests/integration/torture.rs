//! A torture run: 200 random operations from a fixed seed on the site fixture, run by
//! hotrun behind its proxy — good edits, broken edits, edits while a build runs, bursts
//! over several files, a source file renamed away and back, a module deleted and
//! re-created, template and stylesheet edits, and the `rebuild` command — with only
//! small random pauses or cheap facts between them, so hotrun is hit while it is busy.
//!
//! The test keeps a model of the tree: where each source file is, whether it is broken,
//! and so whether the tree builds and what the app built from it serves (the version
//! from `src/main.rs` and the number from `src/extra.rs`, both on the page). Along the
//! way every probe through the proxy must get an answer (a failed build never takes the
//! app down, a swap never fails a request), the served version never goes back and is
//! one that was saved, and the template and stylesheets read at run time are always the
//! current ones; at checkpoints where the tree builds, the app must come to serve it
//! (the last save wins). At the end: the app serves the last good save, the only
//! processes under hotrun are the app and its supervisor helper, no zombie, `quit`
//! exits 0, and no process started for the project is left.
//!
//! The seed and every operation are printed; `HOTRUN_TORTURE_SEED=N` replays a run.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use hotrun_support::*;

const OPS: usize = 200;
const DEFAULT_SEED: u64 = 20_240_611;

/// splitmix64: tiny, and good enough to mix operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// Where a source file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Home,
    /// Renamed to a name in `src/` that is not a module (`main.rs.away`).
    Aside,
    /// Renamed out of the project.
    Outside,
    Deleted,
}

/// Ways to break a Rust file, appended to it.
const BREAKS: [(&str, &str); 3] = [
    ("syntax", "fn broken( {}\n"),
    ("type", "const BROKEN: u32 = \"not a number\";\n"),
    ("name", "fn broken() -> u32 { no_such_name }\n"),
];

/// The project as the test wrote it.
struct Tree {
    root: PathBuf,
    /// Where files renamed out of the project go.
    outside: PathBuf,
    main_src: String,
    template_src: String,
    css_src: String,
    theme_src: String,
    /// The version in `src/main.rs` (`v{version}`); bumped by every good edit, so
    /// every number up to it was saved once.
    version: u32,
    /// The number in `src/extra.rs`; bumped the same way.
    extra: u32,
    main_break: Option<usize>,
    extra_break: Option<usize>,
    main_at: Place,
    extra_at: Place,
    note: u32,
    css: u32,
    theme: u32,
    /// Some writes go through a temp file and a rename (as editors save).
    rng_atomic: Rng,
}

impl Tree {
    fn new(root: &Path, outside: &Path, seed: u64) -> Tree {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        let tree = Tree {
            root: root.to_path_buf(),
            outside: outside.to_path_buf(),
            main_src: read("src/main.rs"),
            template_src: read("templates/index.html"),
            css_src: read("static/site.css"),
            theme_src: read("static/theme.css"),
            version: 1,
            extra: 1,
            main_break: None,
            extra_break: None,
            main_at: Place::Home,
            extra_at: Place::Home,
            note: 1,
            css: 0,
            theme: 0,
            rng_atomic: Rng(seed ^ 0xA70_41C),
        };
        assert!(
            tree.main_text().contains("mod extra;")
                && tree.main_text().contains("extra::EXTRA")
                && tree.template_text().contains("{{extra}}"),
            "the site fixture changed: update the torture test's rewrites"
        );
        tree.write_main();
        tree.write_extra();
        tree.write_template();
        tree
    }

    fn builds(&self) -> bool {
        self.main_at == Place::Home
            && self.extra_at == Place::Home
            && self.main_break.is_none()
            && self.extra_break.is_none()
    }

    fn broken_content(&self) -> bool {
        self.main_break.is_some() || self.extra_break.is_some()
    }

    fn path(&self, name: &str, place: Place) -> Option<PathBuf> {
        match place {
            Place::Home => Some(self.root.join("src").join(name)),
            Place::Aside => Some(self.root.join("src").join(format!("{name}.away"))),
            Place::Outside => Some(self.outside.join(name)),
            Place::Deleted => None,
        }
    }

    fn main_text(&self) -> String {
        let mut text = self
            .main_src
            .replacen(
                "const VERSION: &str = \"v1\";",
                &format!("mod extra;\n\nconst VERSION: &str = \"v{}\";", self.version),
                1,
            )
            .replacen(
                ".replace(\"{{version}}\", VERSION))",
                ".replace(\"{{version}}\", VERSION)\n        .replace(\"{{extra}}\", &extra::EXTRA.to_string()))",
                1,
            );
        if let Some(b) = self.main_break {
            text.push_str(BREAKS[b].1);
        }
        text
    }

    fn extra_text(&self) -> String {
        let mut text = format!(
            "//! A module `src/main.rs` uses: deleting it breaks the build.\n\npub const EXTRA: u32 = {};\n",
            self.extra
        );
        if let Some(b) = self.extra_break {
            text.push_str(BREAKS[b].1);
        }
        text
    }

    fn template_text(&self) -> String {
        self.template_src.replacen(
            "<p id=\"note\">template one</p>",
            &format!(
                "<p id=\"note\">note {}</p>\n<p id=\"extra\">{{{{extra}}}}</p>",
                self.note
            ),
            1,
        )
    }

    fn css_text(&self) -> String {
        if self.css == 0 {
            return self.css_src.clone();
        }
        format!("{}#note {{ margin-left: {}px; }}\n", self.css_src, self.css)
    }

    fn theme_text(&self) -> String {
        if self.theme == 0 {
            return self.theme_src.clone();
        }
        format!(
            "{}#extra {{ margin-left: {}px; }}\n",
            self.theme_src, self.theme
        )
    }

    /// Write a file in place, or (sometimes) as editors do: a temp file, then a rename.
    fn save(&mut self, path: &Path, text: &str) {
        if self.rng_atomic.chance(30) {
            let temp = PathBuf::from(format!("{}~", path.display()));
            std::fs::write(&temp, text).unwrap();
            std::fs::rename(&temp, path).unwrap();
        } else {
            std::fs::write(path, text).unwrap();
        }
    }

    fn write_main(&self) {
        std::fs::write(
            self.path("main.rs", self.main_at).unwrap(),
            self.main_text(),
        )
        .unwrap();
    }

    fn write_extra(&self) {
        if let Some(path) = self.path("extra.rs", self.extra_at) {
            std::fs::write(path, self.extra_text()).unwrap();
        }
    }

    fn write_template(&self) {
        std::fs::write(self.root.join("templates/index.html"), self.template_text()).unwrap();
    }

    fn save_main(&mut self) {
        let (path, text) = (
            self.path("main.rs", self.main_at).unwrap(),
            self.main_text(),
        );
        self.save(&path, &text);
    }

    fn save_extra(&mut self) {
        if let Some(path) = self.path("extra.rs", self.extra_at) {
            let text = self.extra_text();
            self.save(&path, &text);
        }
    }

    fn good_edit(&mut self) -> String {
        self.version += 1;
        self.save_main();
        format!("main.rs ({:?}) → v{}", self.main_at, self.version)
    }

    fn bump_extra(&mut self) -> String {
        if self.extra_at == Place::Deleted {
            return "extra.rs is deleted: not bumped".into();
        }
        self.extra += 1;
        self.save_extra();
        format!("extra.rs ({:?}) → {}", self.extra_at, self.extra)
    }

    fn break_one(&mut self, rng: &mut Rng) -> String {
        let kind = rng.below(BREAKS.len() as u64) as usize;
        if self.extra_at != Place::Deleted && rng.chance(40) {
            self.extra_break = Some(kind);
            self.save_extra();
            format!("extra.rs ({:?}): {} error", self.extra_at, BREAKS[kind].0)
        } else {
            self.main_break = Some(kind);
            self.save_main();
            format!("main.rs ({:?}): {} error", self.main_at, BREAKS[kind].0)
        }
    }

    fn fix(&mut self) -> String {
        let mut fixed = Vec::new();
        if self.main_break.take().is_some() {
            self.save_main();
            fixed.push("main.rs");
        }
        if self.extra_break.take().is_some() {
            self.save_extra();
            fixed.push("extra.rs");
        }
        fixed.join(" + ")
    }

    fn rename(&mut self, name: &str, to: Place) -> String {
        let from = if name == "main.rs" {
            std::mem::replace(&mut self.main_at, to)
        } else {
            std::mem::replace(&mut self.extra_at, to)
        };
        let (a, b) = (self.path(name, from).unwrap(), self.path(name, to).unwrap());
        std::fs::rename(&a, &b).unwrap();
        format!("{name}: {from:?} → {to:?}")
    }

    fn delete_extra(&mut self) -> String {
        std::fs::remove_file(self.path("extra.rs", self.extra_at).unwrap()).unwrap();
        self.extra_at = Place::Deleted;
        // Re-created clean.
        self.extra_break = None;
        "extra.rs deleted".into()
    }

    fn recreate_extra(&mut self) -> String {
        self.extra_at = Place::Home;
        self.extra += 1;
        self.save_extra();
        format!("extra.rs re-created → {}", self.extra)
    }

    fn edit_template(&mut self) -> String {
        self.note += 1;
        let (path, text) = (self.root.join("templates/index.html"), self.template_text());
        self.save(&path, &text);
        format!("templates/index.html → note {}", self.note)
    }

    fn edit_css(&mut self, rng: &mut Rng) -> String {
        if rng.chance(50) {
            self.css += 1;
            let (path, text) = (self.root.join("static/site.css"), self.css_text());
            self.save(&path, &text);
            format!("static/site.css → {}", self.css)
        } else {
            self.theme += 1;
            let (path, text) = (self.root.join("static/theme.css"), self.theme_text());
            self.save(&path, &text);
            format!("static/theme.css → {}", self.theme)
        }
    }

    /// Make the tree build again: every file home, re-created, without errors.
    fn repair(&mut self) -> String {
        let mut done = Vec::new();
        if self.main_at != Place::Home {
            done.push(self.rename("main.rs", Place::Home));
        }
        match self.extra_at {
            Place::Home => {}
            Place::Deleted => done.push(self.recreate_extra()),
            _ => done.push(self.rename("extra.rs", Place::Home)),
        }
        if self.broken_content() {
            done.push(format!("fixed {}", self.fix()));
        }
        done.join(", ")
    }

    fn describe(&self) -> String {
        if self.builds() {
            return format!("builds v{}/{}", self.version, self.extra);
        }
        let mut why = Vec::new();
        if self.main_at != Place::Home {
            why.push(format!("main.rs {:?}", self.main_at));
        }
        if self.extra_at != Place::Home {
            why.push(format!("extra.rs {:?}", self.extra_at));
        }
        if let Some(b) = self.main_break {
            why.push(format!("main.rs {} error", BREAKS[b].0));
        }
        if let Some(b) = self.extra_break {
            why.push(format!("extra.rs {} error", BREAKS[b].0));
        }
        format!(
            "broken ({}) at v{}/{}",
            why.join(", "),
            self.version,
            self.extra
        )
    }
}

/// What hotrun has said so far, read from its events without moving the harness's
/// cursor.
#[derive(Default)]
struct Tracker {
    seen: usize,
    building: bool,
    started: u32,
    ok: u32,
    failed: u32,
    cancelled: u32,
    app_starts: u32,
    app_pid: Option<u32>,
    app_exits_unrequested: Vec<Value>,
    reloads: BTreeMap<String, u32>,
}

impl Tracker {
    fn update(&mut self, h: &Hotrun) {
        let events = h.events_since(self.seen);
        self.seen += events.len();
        for e in events {
            match e["event"].as_str().unwrap_or("") {
                "build_started" => {
                    self.building = true;
                    self.started += 1;
                }
                "build_finished" => {
                    self.building = false;
                    if e["ok"] == true {
                        self.ok += 1;
                    } else {
                        self.failed += 1;
                    }
                }
                "build_cancelled" => {
                    self.building = false;
                    self.cancelled += 1;
                }
                "app_started" => {
                    self.app_starts += 1;
                    self.app_pid = e["pid"].as_u64().map(|p| p as u32);
                }
                "app_exited" if e["requested"] != true => self.app_exits_unrequested.push(e),
                "reload_sent" => {
                    *self
                        .reloads
                        .entry(e["kind"].as_str().unwrap_or("?").to_string())
                        .or_default() += 1;
                }
                _ => {}
            }
        }
    }

    /// Index of the first event at or after `from` that is `name` and satisfies
    /// `pred`, waiting for it (a fact hotrun owes us) up to the harness's deadline.
    fn wait(
        &mut self,
        h: &Hotrun,
        from: usize,
        name: &str,
        pred: impl Fn(&Value) -> bool,
        ctx: &str,
    ) -> usize {
        let start = Instant::now();
        loop {
            self.update(h);
            let events = h.events_since(from);
            if let Some(i) = events.iter().position(|e| e["event"] == name && pred(e)) {
                return from + i;
            }
            if start.elapsed() > DEADLINE {
                h.fail(&format!(
                    "{ctx}: no `{name}` event came after event #{from}"
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait until the running build (if any) has finished or been cancelled.
    fn wait_build_end(&mut self, h: &Hotrun, ctx: &str) {
        let start = Instant::now();
        self.update(h);
        while self.building {
            if start.elapsed() > DEADLINE {
                h.fail(&format!("{ctx}: a build never ended"));
            }
            std::thread::sleep(Duration::from_millis(5));
            self.update(h);
        }
    }
}

/// GET `path` from 127.0.0.1:`port`: the status and the body (de-chunked).
fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    // The proxy may hold a request for a while (no app up during a swap).
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no response head in {text:?}"))?;
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(body) } else { body.into() }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    out
}

/// The text of the element with this id (`<h1 id="version">v3</h1>` → `v3`).
fn element<'a>(page: &'a str, id: &str) -> Option<&'a str> {
    let open = format!("id=\"{id}\">");
    let start = page.find(&open)? + open.len();
    let end = start + page[start..].find('<')?;
    Some(&page[start..end])
}

/// What the app served: (version, extra).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Served(u32, u32);

struct Torture {
    h: Hotrun,
    port: u16,
    tree: Tree,
    events: Tracker,
    seed: u64,
    start: Instant,
    /// The last probe's answer: what is served never goes back.
    last: Served,
    log: Vec<String>,
}

impl Torture {
    fn fail(&self, message: &str) -> ! {
        self.h.fail(&format!(
            "torture seed {} (HOTRUN_TORTURE_SEED={} replays it): {message}\nlast operations:\n{}",
            self.seed,
            self.seed,
            self.log[self.log.len().saturating_sub(25)..].join("\n")
        ))
    }

    fn note(&mut self, line: String) {
        let line = format!("{:7.2}s {line}", self.start.elapsed().as_secs_f64());
        eprintln!("{line}");
        self.log.push(line);
    }

    /// One request through the proxy, checked against the model: an answer (a failed
    /// build leaves the old app up; a swap holds requests), a version that was saved
    /// and not older than the last one seen, and the template and stylesheets as they
    /// are on disk now (the app reads them at every request).
    fn probe(&mut self) -> Served {
        let (status, page) =
            get(self.port, "/").unwrap_or_else(|e| self.fail(&format!("GET /: {e}")));
        if status != 200 {
            self.fail(&format!("GET / answered {status}: {page}"));
        }
        let version = element(&page, "version")
            .and_then(|v| v.strip_prefix('v'))
            .and_then(|v| v.parse().ok());
        let extra = element(&page, "extra").and_then(|v| v.parse().ok());
        let (Some(version), Some(extra)) = (version, extra) else {
            self.fail(&format!("no version or extra in the page: {page}"));
        };
        let served = Served(version, extra);
        if version > self.tree.version || extra > self.tree.extra {
            self.fail(&format!(
                "served {served:?}, never saved (saved up to v{}/{})",
                self.tree.version, self.tree.extra
            ));
        }
        if version < self.last.0 || extra < self.last.1 {
            self.fail(&format!(
                "served {served:?} after {:?}: an older build came back",
                self.last
            ));
        }
        self.last = served;
        let note = format!("note {}", self.tree.note);
        if element(&page, "note") != Some(note.as_str()) {
            self.fail(&format!(
                "the page does not show the current template ({note}): {page}"
            ));
        }
        for (path, want) in [
            ("/static/site.css", self.tree.css_text()),
            ("/static/theme.css", self.tree.theme_text()),
        ] {
            match get(self.port, path) {
                Ok((200, body)) if body == want => {}
                other => self.fail(&format!("GET {path}: {other:?}, wanted {want:?}")),
            }
        }
        served
    }

    /// Wait (on HTTP answers, with the harness's deadline) until the app serves what
    /// the tree builds. Only called when the tree builds.
    fn wait_served(&mut self, ctx: &str) {
        let want = Served(self.tree.version, self.tree.extra);
        let start = Instant::now();
        loop {
            if self.probe() == want {
                return;
            }
            if start.elapsed() > DEADLINE {
                let last = self.last;
                self.fail(&format!(
                    "{ctx}: the tree builds {want:?} but the app still serves {last:?} (a lost save)"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn seed() -> u64 {
    match std::env::var("HOTRUN_TORTURE_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("HOTRUN_TORTURE_SEED={s:?} is not a number"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

/// The operations, with their weights when they apply.
const KINDS: [(&str, u64); 15] = [
    ("good", 20),
    ("broken", 7),
    ("fix", 18),
    ("during-build", 8),
    ("during-swap", 6),
    ("burst", 7),
    ("rename-away", 4),
    ("rename-back", 14),
    ("delete", 3),
    ("recreate", 14),
    ("template", 6),
    ("css", 6),
    ("rebuild", 5),
    ("probe", 5),
    ("checkpoint", 8),
];

fn applies(kind: &str, tree: &Tree) -> bool {
    match kind {
        "fix" => tree.broken_content(),
        "during-build" => tree.main_at == Place::Home,
        "during-swap" => tree.builds(),
        "rename-away" => tree.main_at == Place::Home || tree.extra_at == Place::Home,
        "rename-back" => {
            matches!(tree.main_at, Place::Aside | Place::Outside)
                || matches!(tree.extra_at, Place::Aside | Place::Outside)
        }
        "delete" => tree.extra_at == Place::Home,
        "recreate" => tree.extra_at == Place::Deleted,
        _ => true,
    }
}

#[test]
fn torture_two_hundred_random_operations() {
    let seed = seed();
    eprintln!("torture seed {seed} (set HOTRUN_TORTURE_SEED={seed} to replay this run)");
    let mut rng = Rng(seed);
    let app = fixture("site");
    let outside = TempDir::new();
    let tree = Tree::new(app.path(), outside.path(), seed);
    let port = free_port();
    let mut h = hotrun(app.path())
        .args(&["--proxy", &port.to_string()])
        .reload()
        .start();
    h.wait("app_ready");
    let mut t = Torture {
        h,
        port,
        tree,
        events: Tracker::default(),
        seed,
        start: Instant::now(),
        last: Served(0, 0),
        log: Vec::new(),
    };
    t.wait_served("first build");

    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    let mut buildable = 0;
    for i in 0..OPS {
        let candidates: Vec<(&str, u64)> = KINDS
            .iter()
            .copied()
            .filter(|(k, _)| applies(k, &t.tree))
            .collect();
        let total: u64 = candidates.iter().map(|(_, w)| w).sum();
        let mut roll = rng.below(total);
        let kind = candidates
            .iter()
            .find(|(_, w)| {
                if roll < *w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
            .unwrap()
            .0;
        *counts.entry(kind).or_default() += 1;
        let detail = match kind {
            "good" => t.tree.good_edit(),
            "broken" => t.tree.break_one(&mut rng),
            "fix" => t.tree.fix(),
            "during-build" => {
                // Save, wait for the build it starts, and save again at once: the
                // second save lands while that build runs.
                t.events.update(&t.h);
                let mark = t.events.seen;
                let first = t.tree.good_edit();
                t.events.wait(&t.h, mark, "build_started", |_| true, &first);
                let second = if rng.chance(65) {
                    t.tree.good_edit()
                } else {
                    t.tree.break_one(&mut rng)
                };
                format!("{first}, then during its build {second}")
            }
            "during-swap" => {
                // Save, wait for its build to succeed, and save again at once: the
                // second save lands while hotrun swaps the app.
                t.events.update(&t.h);
                let mark = t.events.seen;
                let first = t.tree.good_edit();
                t.events
                    .wait(&t.h, mark, "build_finished", |e| e["ok"] == true, &first);
                let second = t.tree.good_edit();
                format!("{first}, then during its swap {second}")
            }
            "burst" => {
                let mut parts = vec![t.tree.good_edit(), t.tree.bump_extra()];
                if rng.chance(50) {
                    parts.push(t.tree.edit_template());
                }
                if rng.chance(50) {
                    parts.push(t.tree.edit_css(&mut rng));
                }
                parts.join(", ")
            }
            "rename-away" => {
                let name = match (t.tree.main_at, t.tree.extra_at) {
                    (Place::Home, Place::Home) if rng.chance(50) => "extra.rs",
                    (Place::Home, _) => "main.rs",
                    _ => "extra.rs",
                };
                let to = if rng.chance(50) {
                    Place::Aside
                } else {
                    Place::Outside
                };
                t.tree.rename(name, to)
            }
            "rename-back" => {
                let main_away = matches!(t.tree.main_at, Place::Aside | Place::Outside);
                let extra_away = matches!(t.tree.extra_at, Place::Aside | Place::Outside);
                let name = if main_away && (!extra_away || rng.chance(50)) {
                    "main.rs"
                } else {
                    "extra.rs"
                };
                t.tree.rename(name, Place::Home)
            }
            "delete" => t.tree.delete_extra(),
            "recreate" => t.tree.recreate_extra(),
            "template" => t.tree.edit_template(),
            "css" => t.tree.edit_css(&mut rng),
            "rebuild" => {
                t.h.send("rebuild");
                "sent `rebuild`".into()
            }
            "probe" => {
                let served = t.probe();
                format!("serves {served:?}")
            }
            "checkpoint" => {
                if t.tree.builds() {
                    t.wait_served(&format!("checkpoint at operation {i}"));
                    format!("serves {:?} as the tree builds", t.last)
                } else {
                    let served = t.probe();
                    format!("tree broken; still serves {served:?}")
                }
            }
            _ => unreachable!(),
        };
        let line = format!("op {i:3} {kind}: {detail} — tree {}", t.tree.describe());
        if t.tree.builds() {
            buildable += 1;
        }
        t.note(line);

        // Between operations: nothing, a little, or until the running build ends.
        match rng.below(100) {
            0..=9 => {}
            10..=39 => std::thread::sleep(rng.millis(0, 25)),
            40..=64 => std::thread::sleep(rng.millis(25, 400)),
            65..=74 => std::thread::sleep(rng.millis(400, 1200)),
            _ => t
                .events
                .wait_build_end(&t.h, &format!("after operation {i}")),
        }
    }

    // The end condition. When the tree builds, the app must come to serve it: the last
    // good save is the last save. When it is broken, "the app still serves the last
    // good save" would be wrong: a good save followed at once by a broken one is
    // rightly never built (its build is cancelled: the last save wins), so the app
    // may serve an older version — the probe checks it serves a saved one, not older
    // than before. Then one final good save (the tree repaired and the version bumped)
    // must be built and served.
    if t.tree.builds() {
        t.note(format!(
            "end: the tree builds v{}/{}",
            t.tree.version, t.tree.extra
        ));
    } else {
        let served = t.probe();
        let broken = t.tree.describe();
        t.events.update(&t.h);
        let mark = t.events.seen;
        let repair = t.tree.repair();
        let bump = t.tree.good_edit();
        t.note(format!(
            "end: tree {broken} serving {served:?}; final good save: {repair}, {bump}"
        ));
        let finished = t.events.wait(
            &t.h,
            mark,
            "build_finished",
            |e| e["ok"] == true,
            "the final good save",
        );
        t.events
            .wait(&t.h, finished, "app_ready", |_| true, "the final good save");
    }
    t.wait_served("the end");
    t.events.wait_build_end(&t.h, "the end");
    let elapsed = t.start.elapsed();

    // Only the app and its supervisor helper are left under hotrun, and no zombie.
    let hotrun_pid = t.h.pid();
    let start = Instant::now();
    loop {
        t.events.update(&t.h);
        let procs = descendants(hotrun_pid);
        let shown: Vec<String> = procs.iter().map(|(p, s)| describe_process(*p, s)).collect();
        let supervisors: Vec<u32> = procs
            .iter()
            .filter(|(p, _)| cmdline(*p).contains("__supervise"))
            .map(|(p, _)| *p)
            .collect();
        let ok = procs.len() == 2
            && procs.iter().all(|(_, s)| s != "Z")
            && supervisors.len() == 1
            && parent(supervisors[0]) == Some(hotrun_pid)
            && t.events.app_pid.is_some_and(|app| {
                procs.iter().any(|(p, _)| *p == app) && parent(app) == Some(supervisors[0])
            });
        if ok {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            t.fail(&format!(
                "processes under hotrun are not just the app (pid {:?}) and its supervisor: {shown:?}",
                t.events.app_pid
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_no_zombies(&t.h);
    if !t.events.app_exits_unrequested.is_empty() {
        t.fail(&format!(
            "the app exited by itself: {:?}",
            t.events.app_exits_unrequested
        ));
    }

    t.h.send("quit");
    let code = t.h.wait_exit();
    if code != 0 {
        t.fail(&format!("hotrun exited {code} after `quit`"));
    }
    // Nothing started for the project is left: no process runs in it, from it, or
    // with it on its command line (a build, the app, a helper).
    let dirs = [app.path().to_path_buf(), outside.path().to_path_buf()];
    let start = Instant::now();
    loop {
        let left = processes_in(&dirs);
        if left.is_empty() {
            break;
        }
        if start.elapsed() > Duration::from_secs(10) {
            t.fail(&format!("processes left after hotrun quit: {left:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let e = &t.events;
    eprintln!(
        "torture seed {seed}: {OPS} operations in {:.1}s ({}; the tree built after {buildable}); hotrun: {} builds started, {} ok, {} failed, {} cancelled, {} app starts, reloads sent {:?}",
        elapsed.as_secs_f64(),
        counts.join(", "),
        e.started,
        e.ok,
        e.failed,
        e.cancelled,
        e.app_starts,
        e.reloads
    );
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn describe_process(pid: u32, state: &str) -> String {
    format!(
        "{pid} ({state}, parent {:?}): {}",
        parent(pid),
        cmdline(pid).trim()
    )
}

/// Processes whose working directory, executable or command line is in one of `dirs`.
fn processes_in(dirs: &[PathBuf]) -> Vec<String> {
    let me = std::process::id();
    let inside = |p: &Path| dirs.iter().any(|d| p.starts_with(d));
    let mut found = Vec::new();
    for pid in pids() {
        if pid == me {
            continue;
        }
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        let args = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let in_args = args
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .any(|a| inside(Path::new(&*String::from_utf8_lossy(a))));
        if cwd.as_deref().is_some_and(inside) || exe.as_deref().is_some_and(inside) || in_args {
            found.push(format!("{pid} (cwd {cwd:?}): {}", cmdline(pid).trim()));
        }
    }
    found
}
