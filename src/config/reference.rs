//! The configuration reference in one place: every key of `.hotrun.toml` with its type,
//! default and meaning. `hotrun init` writes it out, the README's table is checked
//! against it by a test, and `hotrun config` prints the effective values in its shape.

use std::fmt::Write;

use crate::config::settings::{self, Settings};
use crate::config::values::{exact_duration, Ready};

/// One key of `.hotrun.toml`.
pub struct Key {
    pub section: &'static str,
    pub name: &'static str,
    pub kind: &'static str,
    /// The default as a TOML value, when it can be written as one.
    pub default: Option<&'static str>,
    /// What the default is in words (when there is no value to write), or an example.
    pub example: Option<&'static str>,
    pub doc: &'static str,
}

const fn key(
    section: &'static str,
    name: &'static str,
    kind: &'static str,
    default: Option<&'static str>,
    example: Option<&'static str>,
    doc: &'static str,
) -> Key {
    Key {
        section,
        name,
        kind,
        default,
        example,
        doc,
    }
}

pub const SECTIONS: &[(&str, &str)] = &[
    (
        "build",
        "How the app is built. Without `cmd`, a Cargo project is built with cargo build.",
    ),
    ("run", "How the app is run, stopped and restarted."),
    ("watch", "What is watched and what a change means."),
    (
        "proxy",
        "hotrun's own HTTP front for the app (zero-downtime swaps, browser reload).",
    ),
    ("reload", "Telling open browser tabs to reload."),
    ("ui", "What hotrun shows."),
    (
        "on_change",
        "A command run when files matching `paths` change, without touching the app (Tailwind, Sass, templ, esbuild); what it writes is then handled like any change. Repeat the section for more.",
    ),
    (
        "sidecar",
        "A long-running helper started with hotrun and stopped with it (a watcher of its own). Repeat the section for more.",
    ),
];

/// Sections written `[[name]]`: a list of tables.
pub const LIST_SECTIONS: &[&str] = &["on_change", "sidecar"];

pub const KEYS: &[Key] = &[
    key("build", "cmd", "string", None, Some("cmd = \"go build -o build/app .\""), "build command, run through `sh -c`; setting it turns Cargo mode off"),
    key("build", "before", "list of strings", Some("[]"), None, "commands run before each build; a failure fails the build"),
    key("build", "outputs", "list of globs", Some("[]"), None, "files the build writes: never watched"),
    key("build", "package", "string", None, Some("package = \"api\""), "package to run (as cargo run -p)"),
    key("build", "bin", "string", None, Some("bin = \"server\""), "binary to run (as cargo run --bin)"),
    key("build", "example", "string", None, Some("example = \"demo\""), "example to run (as cargo run --example)"),
    key("build", "release", "bool", Some("false"), None, "build in release mode"),
    key("build", "profile", "string", None, Some("profile = \"dev-fast\""), "build with this Cargo profile"),
    key("build", "features", "list or comma string", Some("[]"), None, "features to activate"),
    key("build", "all_features", "bool", Some("false"), None, "activate all features"),
    key("build", "no_default_features", "bool", Some("false"), None, "do not activate the default feature"),
    key("build", "target_dir", "path", None, Some("target_dir = \"target/hotrun\""), "Cargo target directory (a separate one avoids waiting for rust-analyzer)"),
    key("build", "cargo_args", "list of strings", Some("[]"), None, "extra arguments for cargo build"),
    key("build", "on_busy", "\"restart\" or \"queue\"", Some("\"restart\""), None, "a change during a build: cancel and restart it, or queue another build"),
    key("build", "env", "table", Some("{}"), None, "extra environment for build commands"),
    key("run", "cmd", "string", None, Some("cmd = \"./build/app\""), "run command, through `sh -c` with `exec` (default: the Cargo binary)"),
    key("run", "args", "list of strings", Some("[]"), None, "arguments for the app (`hotrun -- ARGS` replaces them)"),
    key("run", "env", "table", Some("{}"), None, "extra environment for the app"),
    key("run", "env_file", "path or list of paths", None, Some("env_file = [\".env\"]"), "`.env` files, re-read at every start"),
    key("run", "cwd", "path", None, Some("cwd = \"web\""), "the app's working directory (default: where hotrun was started)"),
    key("run", "listen", "list of addresses", Some("[]"), None, "sockets bound once and passed to every app generation (socket activation)"),
    key("run", "ready", "\"tcp:ADDR\" or \"http:URL\"", None, Some("ready = \"http:http://127.0.0.1:3000/health\""), "how to tell the app is ready"),
    key("run", "ready_timeout", "duration", Some("\"30s\""), None, "give up waiting for readiness after this long"),
    key("run", "stop_signal", "signal", Some("\"SIGTERM\""), None, "sent to the app's process group to stop it (TERM, SIGINT, 15…)"),
    key("run", "stop_timeout", "duration", Some("\"5s\""), None, "then SIGKILL"),
    key("run", "restart", "\"never\", \"on-failure\" or \"always\"", Some("\"never\""), None, "restart an app that exits by itself (backoff 1 s doubling to 30 s)"),
    key("run", "swap", "\"overlap\" or \"restart\"", Some("\"overlap\""), None, "start a new app beside the old one, which serves until the new one is ready (where possible), or stop the old one first"),
    key("watch", "paths", "list of paths", Some("[]"), None, "extra paths to watch"),
    key("watch", "ignore", "list of globs", Some("[]"), None, "paths never watched"),
    key("watch", "include", "list of globs", None, Some("include = [\"**/*.go\", \"templates/**\"]"), "build inputs of a command project (default: every file not ignored)"),
    key("watch", "assets", "list of globs", Some("[\"static/\", \"public/\", \"assets/\", \"*.css\", \"*.js\", \"*.mjs\", \"*.json\", \"*.png\", \"*.jpg\", \"*.jpeg\", \"*.gif\", \"*.svg\", \"*.webp\", \"*.ico\", \"*.woff\", \"*.woff2\", \"*.ttf\"]"), None, "files the browser reloads (or restyles) without a build; wins over `watch.restart`"),
    key("watch", "restart", "list of globs", Some("[\".env*\", \"templates/\", \"*.tmpl\", \"*.gohtml\", \"*.tera\", \"*.j2\", \"*.jinja\", \"*.hbs\", \"*.liquid\", \"*.html\"]"), None, "files that restart the app without a build (templates: most engines read them at start)"),
    key("watch", "rebuild", "list of globs", Some("[]"), None, "paths that always count as build inputs"),
    key("watch", "debounce", "duration", Some("\"30ms\""), None, "settle window after the last change of a burst"),
    key("watch", "poll", "bool or duration", Some("false"), None, "poll instead of OS notifications (true means every 500ms)"),
    key("proxy", "listen", "address", None, Some("listen = \"127.0.0.1:3000\""), "public address hotrun serves and forwards to the app"),
    key("proxy", "app", "address", None, Some("app = \"127.0.0.1:3001\""), "the app's own address (default: a free port, passed as PORT)"),
    key("proxy", "timeout", "duration", Some("\"30s\""), None, "how long a request waits for an app to come up"),
    key("reload", "enabled", "bool", Some("true"), None, "tell browsers to reload"),
    key("reload", "listen", "address", Some("\"127.0.0.1:35729\""), None, "where the reload script and websocket are served without the proxy"),
    key("reload", "hosts", "list of strings", Some("[]"), None, "extra Host names accepted by the websocket"),
    key("reload", "origins", "list of strings", Some("[]"), None, "extra Origins accepted by the websocket"),
    key("ui", "mode", "\"auto\", \"panel\", \"plain\" or \"json\"", Some("\"auto\""), None, "how to show progress"),
    key("ui", "color", "\"auto\", \"always\" or \"never\"", Some("\"auto\""), None, "colours (NO_COLOR always wins)"),
    key("ui", "clear_on_rebuild", "bool", Some("false"), None, "clear the screen before each build"),
    key("on_change", "paths", "list of globs", None, Some("paths = [\"styles/**\", \"templates/**\"]"), "files whose changes run the command (required); the files it writes never start it again"),
    key("on_change", "run", "string", None, Some("run = \"npx tailwindcss -i styles/app.css -o static/app.css\""), "the command, through `sh -c` in the project root (required); also run once before the first build"),
    key("on_change", "name", "string", None, Some("name = \"tailwind\""), "what its output and events are tagged with (default: its program's name)"),
    key("sidecar", "run", "string", None, Some("run = \"npx tailwindcss -i styles/app.css -o static/app.css --watch=always\""), "the command, through `sh -c` (required)"),
    key("sidecar", "name", "string", None, Some("name = \"tailwind\""), "what its output and panel line are tagged with (default: its program's name)"),
    key("sidecar", "restart", "\"never\", \"on-failure\" or \"always\"", Some("\"on-failure\""), None, "start it again when it exits by itself (backoff 1 s doubling to 30 s)"),
    key("sidecar", "cwd", "path", None, Some("cwd = \"frontend\""), "its working directory (default: the project root)"),
    key("sidecar", "env", "table", Some("{}"), None, "extra environment for it"),
];

/// What `hotrun init` shows for asset pipelines: ready-made sections, commented out.
pub const PIPELINE_EXAMPLES: &str = "\
# Asset pipelines: uncomment the one your app uses.
#
# Tailwind CSS: rebuilt when styles or the templates it scans change; the page
# restyles without a reload.
# [[on_change]]
#   name = \"tailwind\"
#   paths = [\"styles/**\", \"templates/**\", \"src/**/*.rs\"]
#   run = \"npx @tailwindcss/cli -i styles/app.css -o static/app.css\"
#
# Sass:
# [[on_change]]
#   name = \"sass\"
#   paths = [\"styles/**/*.scss\"]
#   run = \"npx sass styles/app.scss static/app.css\"
#
# esbuild: a bundle the browser reloads.
# [[on_change]]
#   name = \"esbuild\"
#   paths = [\"frontend/**/*.ts\"]
#   run = \"npx esbuild frontend/main.ts --bundle --outfile=static/app.js\"
#
# templ (Go): the generated *_templ.go files rebuild the app.
# [[on_change]]
#   name = \"templ\"
#   paths = [\"**/*.templ\"]
#   run = \"templ generate\"
#
# Or a tool's own watch mode, kept running beside the app:
# [[sidecar]]
#   name = \"tailwind\"
#   run = \"npx @tailwindcss/cli -i styles/app.css -o static/app.css --watch=always\"
";

/// How `hotrun init` marks a line that shows an example rather than the default.
pub const EXAMPLE: &str = "unset by default; an example";

/// The file `hotrun init` writes: every key with its default, commented out, so the
/// file changes nothing until a line is uncommented.
pub fn init_template() -> String {
    let mut out = String::from(
        "# hotrun configuration. Every key is shown with its default, commented out.\n\
         # Uncomment and change what you need; `hotrun config` prints the effective values.\n\
         # Durations take units (30ms, 5s); paths and globs are relative to this file.\n",
    );
    for (section, about) in SECTIONS {
        if LIST_SECTIONS.contains(section) {
            // A list of tables: an empty one would be an error, so it is one commented
            // block — its keys, then an example to uncomment as a whole.
            let _ = write!(out, "\n# {about}\n");
            let keys = KEYS.iter().filter(|k| k.section == *section);
            for k in keys.clone() {
                let default = k
                    .default
                    .map(|d| format!("; default {d}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "#   {} ({}{default}): {}", k.name, k.kind, k.doc);
            }
            let _ = writeln!(out, "# [[{section}]]");
            for k in keys {
                if let Some(example) = k.example {
                    let _ = writeln!(out, "#   {example}");
                }
            }
            continue;
        }
        let _ = write!(out, "\n# {about}\n[{section}]\n");
        for k in KEYS.iter().filter(|k| k.section == *section) {
            match (k.default, k.example) {
                (Some(default), _) => {
                    let _ = writeln!(out, "# {} ({})", capitalise(k.doc), k.kind);
                    let _ = writeln!(out, "# {} = {default}", k.name);
                }
                (None, Some(example)) => {
                    let _ = writeln!(out, "# {} ({}; {EXAMPLE})", capitalise(k.doc), k.kind);
                    let _ = writeln!(out, "# {example}");
                }
                (None, None) => {
                    let _ = writeln!(out, "# {} ({})", capitalise(k.doc), k.kind);
                }
            }
        }
    }
    let _ = write!(out, "\n{PIPELINE_EXAMPLES}");
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The effective configuration, section by section, as TOML.
pub fn effective_sections(settings: &Settings) -> Vec<(&'static str, String)> {
    use toml::{Table, Value};
    let strings = |v: &[String]| Value::Array(v.iter().map(|s| Value::String(s.clone())).collect());
    let path = |p: &std::path::Path| Value::String(p.display().to_string());
    let duration = |d: std::time::Duration| Value::String(exact_duration(d));
    let env = |v: &[(String, String)]| {
        Value::Table(
            v.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    };
    let addr = |a: &std::net::SocketAddr| Value::String(a.to_string());

    let mut build = Table::new();
    let b = &settings.build;
    if let Some(cmd) = &b.cmd {
        build.insert("cmd".into(), Value::String(cmd.clone()));
    }
    build.insert("before".into(), strings(&b.before));
    build.insert("outputs".into(), strings(&b.outputs.patterns));
    let c = &b.cargo;
    for (name, value) in [
        ("package", &c.package),
        ("bin", &c.bin),
        ("example", &c.example),
        ("profile", &c.profile),
    ] {
        if let Some(v) = value {
            build.insert(name.into(), Value::String(v.clone()));
        }
    }
    build.insert("release".into(), Value::Boolean(c.release));
    build.insert("features".into(), strings(&c.features));
    build.insert("all_features".into(), Value::Boolean(c.all_features));
    build.insert(
        "no_default_features".into(),
        Value::Boolean(c.no_default_features),
    );
    if let Some(dir) = &c.target_dir {
        build.insert("target_dir".into(), path(dir));
    }
    build.insert("cargo_args".into(), strings(&c.cargo_args));
    let on_busy = match b.on_busy {
        crate::core::options::OnBusy::Restart => "restart",
        crate::core::options::OnBusy::Queue => "queue",
    };
    build.insert("on_busy".into(), Value::String(on_busy.into()));
    build.insert("env".into(), env(&b.env));

    let mut run = Table::new();
    let r = &settings.run;
    if let Some(cmd) = &r.cmd {
        run.insert("cmd".into(), Value::String(cmd.clone()));
    }
    run.insert("args".into(), strings(&r.args));
    run.insert("env".into(), env(&r.env));
    if !r.env_files.is_empty() {
        run.insert(
            "env_file".into(),
            Value::Array(r.env_files.iter().map(|p| path(p)).collect()),
        );
    }
    run.insert("cwd".into(), path(&r.cwd));
    run.insert(
        "listen".into(),
        Value::Array(r.listen.iter().map(addr).collect()),
    );
    match &r.ready {
        Some(Ready::Tcp(a)) => {
            run.insert("ready".into(), Value::String(format!("tcp:{a}")));
        }
        Some(Ready::Http(url)) => {
            run.insert("ready".into(), Value::String(format!("http:{url}")));
        }
        None => {}
    }
    run.insert("ready_timeout".into(), duration(r.ready_timeout));
    run.insert(
        "stop_signal".into(),
        Value::String(crate::text::signal_name(r.stop_signal)),
    );
    run.insert("stop_timeout".into(), duration(r.stop_timeout));
    let restart = match r.restart {
        crate::core::options::RestartPolicy::Never => "never",
        crate::core::options::RestartPolicy::OnFailure => "on-failure",
        crate::core::options::RestartPolicy::Always => "always",
    };
    run.insert("restart".into(), Value::String(restart.into()));
    let swap = if r.overlap { "overlap" } else { "restart" };
    run.insert("swap".into(), Value::String(swap.into()));

    let mut watch = Table::new();
    let w = &settings.watch;
    watch.insert(
        "paths".into(),
        Value::Array(w.paths.iter().map(|p| path(p)).collect()),
    );
    watch.insert("ignore".into(), strings(&w.ignore.patterns));
    if let Some(include) = &w.include {
        watch.insert("include".into(), strings(&include.patterns));
    }
    watch.insert("assets".into(), strings(&w.assets.patterns));
    watch.insert("restart".into(), strings(&w.restart.patterns));
    watch.insert("rebuild".into(), strings(&w.rebuild.patterns));
    watch.insert("debounce".into(), duration(w.debounce));
    watch.insert(
        "poll".into(),
        match w.poll {
            Some(interval) => duration(interval),
            None => Value::Boolean(false),
        },
    );

    let mut proxy = Table::new();
    if let Some(p) = &settings.proxy {
        proxy.insert("listen".into(), addr(&p.listen));
        if let Some(app) = &p.app {
            proxy.insert("app".into(), addr(app));
        }
        proxy.insert("timeout".into(), duration(p.timeout));
    }

    let mut reload = Table::new();
    let rl = &settings.reload;
    reload.insert("enabled".into(), Value::Boolean(rl.enabled));
    reload.insert("listen".into(), addr(&rl.listen));
    reload.insert("hosts".into(), strings(&rl.hosts));
    reload.insert("origins".into(), strings(&rl.origins));

    let mut ui = Table::new();
    ui.insert(
        "mode".into(),
        Value::String(settings::ui_mode_name(settings.ui.requested_mode).into()),
    );
    let color = match settings.ui.requested_color {
        crate::config::cli::ColorChoice::Auto => "auto",
        crate::config::cli::ColorChoice::Always => "always",
        crate::config::cli::ColorChoice::Never => "never",
    };
    ui.insert("color".into(), Value::String(color.into()));
    ui.insert(
        "clear_on_rebuild".into(),
        Value::Boolean(settings.ui.clear_on_rebuild),
    );

    let policy = |p: crate::core::options::RestartPolicy| {
        Value::String(
            match p {
                crate::core::options::RestartPolicy::Never => "never",
                crate::core::options::RestartPolicy::OnFailure => "on-failure",
                crate::core::options::RestartPolicy::Always => "always",
            }
            .into(),
        )
    };
    let pipeline = &settings.pipeline;
    let on_change: Vec<Value> = pipeline
        .tasks
        .iter()
        .map(|t| {
            let mut table = Table::new();
            table.insert("name".into(), Value::String(t.name.clone()));
            table.insert("paths".into(), strings(&t.paths.patterns));
            table.insert("run".into(), Value::String(t.run.clone()));
            Value::Table(table)
        })
        .collect();
    let sidecar: Vec<Value> = pipeline
        .sidecars
        .iter()
        .map(|s| {
            let mut table = Table::new();
            table.insert("name".into(), Value::String(s.name.clone()));
            table.insert("run".into(), Value::String(s.run.clone()));
            table.insert("restart".into(), policy(s.restart));
            table.insert("cwd".into(), path(&s.cwd));
            table.insert("env".into(), env(&s.env));
            Value::Table(table)
        })
        .collect();

    let mut sections: Vec<(&'static str, String)> = [
        ("build", build),
        ("run", run),
        ("watch", watch),
        ("proxy", proxy),
        ("reload", reload),
        ("ui", ui),
    ]
    .into_iter()
    .map(|(name, table)| {
        let mut doc = Table::new();
        doc.insert(name.into(), Value::Table(table));
        (name, toml::to_string(&doc).unwrap_or_default())
    })
    .collect();
    // Always there, so two configs' sections pair up (`config::plan`); empty when
    // there are none (`on_change = []` after `[ui]` would be a key of `[ui]`).
    for (name, list) in [("on_change", on_change), ("sidecar", sidecar)] {
        let text = if list.is_empty() {
            String::new()
        } else {
            let mut doc = Table::new();
            doc.insert(name.into(), Value::Array(list));
            toml::to_string(&doc).unwrap_or_default()
        };
        sections.push((name, text));
    }
    sections
}

/// The effective configuration as TOML: what `hotrun config` prints. Fed back with
/// `-c`, it gives the same settings. Keys without a value (no default, not set) are
/// left out.
pub fn effective(settings: &Settings) -> String {
    let mut out = format!(
        "# The effective hotrun configuration (defaults, config file and flags).\n\
         # Paths are absolute; globs are relative to the project root ({}), so use this\n\
         # file from there (`hotrun -c FILE` takes the file's directory as the root).\n",
        settings.root.display()
    );
    for (_, text) in effective_sections(settings) {
        if !text.is_empty() {
            let _ = write!(out, "\n{text}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_key_is_documented_once() {
        // The file shape rejects unknown keys: a documented key that the loader does not
        // know would fail to parse here.
        let mut all = String::new();
        for (section, _) in SECTIONS {
            let list = LIST_SECTIONS.contains(section);
            let _ = if list {
                writeln!(all, "[[{section}]]")
            } else {
                writeln!(all, "[{section}]")
            };
            for k in KEYS.iter().filter(|k| k.section == *section) {
                match (k.default, k.example) {
                    (Some(d), _) => {
                        let _ = writeln!(all, "{} = {d}", k.name);
                    }
                    // A list section's required keys have examples only.
                    (None, Some(example)) if list => {
                        let _ = writeln!(all, "{example}");
                    }
                    _ => {}
                }
            }
        }
        crate::config::file::parse(std::path::Path::new("all.toml"), all).unwrap();
        let mut names: Vec<String> = KEYS
            .iter()
            .map(|k| format!("{}.{}", k.section, k.name))
            .collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn every_key_the_loader_knows_is_documented() {
        // serde lists the fields it expects when it meets an unknown one.
        for (section, _) in SECTIONS {
            let text = if LIST_SECTIONS.contains(section) {
                format!("[[{section}]]\nno_such_key = 1\n")
            } else {
                format!("[{section}]\nno_such_key = 1\n")
            };
            let err = crate::config::file::parse(std::path::Path::new("x.toml"), text).unwrap_err();
            let message = format!("{err:#}");
            let expected = message.split("expected").nth(1).unwrap_or("");
            for name in expected.split('`').skip(1).step_by(2) {
                assert!(
                    KEYS.iter().any(|k| k.section == *section && k.name == name),
                    "`{section}.{name}` is not in the reference"
                );
            }
        }
    }

    /// The README's table, regenerated: `cargo test print_readme_table -- --ignored --nocapture`.
    #[test]
    #[ignore = "prints the README table; run by hand"]
    fn print_readme_table() {
        println!("| key | type | default | meaning |\n|---|---|---|---|");
        for k in KEYS {
            let default = match (k.default, k.example) {
                (Some(d), _) => format!("`{}`", d.replace('|', "\\|")),
                (None, _) => "—".to_string(),
            };
            println!(
                "| `{}.{}` | {} | {} | {} |",
                k.section,
                k.name,
                k.kind.replace('|', "\\|"),
                default,
                k.doc
            );
        }
    }

    #[test]
    fn the_pipeline_examples_load_once_uncommented() {
        let text: String = PIPELINE_EXAMPLES
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.starts_with('[') || l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let loaded = crate::config::file::parse(std::path::Path::new("x.toml"), text).unwrap();
        assert_eq!(loaded.config.on_change.len(), 4);
        assert_eq!(loaded.config.sidecar.len(), 1);
    }

    #[test]
    fn glob_defaults_are_the_ones_in_force() {
        let listed = |name: &str| {
            KEYS.iter()
                .find(|k| k.section == "watch" && k.name == name)
                .and_then(|k| k.default)
                .unwrap()
        };
        let as_toml = |globs: &[&str]| {
            let quoted: Vec<String> = globs.iter().map(|g| format!("\"{g}\"")).collect();
            format!("[{}]", quoted.join(", "))
        };
        assert_eq!(
            listed("assets"),
            as_toml(crate::core::classify::DEFAULT_ASSETS)
        );
        assert_eq!(
            listed("restart"),
            as_toml(crate::core::classify::DEFAULT_RESTART)
        );
    }

    #[test]
    fn the_readme_lists_every_key() {
        let readme = include_str!("../../README.md");
        for k in KEYS {
            let row = format!("| `{}.{}` |", k.section, k.name);
            assert!(
                readme.contains(&row),
                "README's configuration table has no row for `{}.{}`",
                k.section,
                k.name
            );
        }
    }
}
