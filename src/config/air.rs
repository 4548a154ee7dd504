//! `hotrun init --from-air [FILE]`: read a Go `air` configuration and write the
//! equivalent `.hotrun.toml`, with a comment on every key that has no counterpart and
//! why. The result is checked by hotrun's own loader before it is written.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use toml::{Table, Value};

/// The converted file and the air keys it could not carry over (with the reason).
pub struct Converted {
    pub text: String,
    pub unmapped: Vec<(String, String)>,
}

pub fn convert(air_path: &Path) -> Result<Converted> {
    let text = std::fs::read_to_string(air_path)
        .with_context(|| format!("cannot read {}", air_path.display()))?;
    let air: Table = toml::from_str(&text).map_err(|e| {
        let position = e
            .span()
            .map(|s| {
                let (l, c) = crate::config::file::line_column(&text, s.start);
                format!(":{l}:{c}")
            })
            .unwrap_or_default();
        anyhow::anyhow!("{}{position}: {}", air_path.display(), e.message())
    })?;
    Ok(Converter::default().run(&air))
}

#[derive(Default)]
struct Converter {
    build: Vec<String>,
    run: Vec<String>,
    watch: Vec<String>,
    proxy: Vec<String>,
    ui: Vec<String>,
    unmapped: Vec<(String, String)>,
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str())
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// air's durations: a Go duration string, or an integer (milliseconds for its delays).
fn duration(v: &Value) -> Option<String> {
    match v {
        Value::Integer(ms) => Some(format!("{ms}ms")),
        Value::String(s) => {
            let s = s.trim();
            crate::config::values::parse_duration(s)
                .ok()
                .map(|_| s.to_string())
        }
        _ => None,
    }
}

impl Converter {
    fn skip(&mut self, key: &str, why: &str) {
        self.unmapped.push((key.to_string(), why.to_string()));
    }

    fn run(mut self, air: &Table) -> Converted {
        let build = air
            .get("build")
            .and_then(Value::as_table)
            .cloned()
            .unwrap_or_default();
        let b = |k: &str| build.get(k);

        // root, tmp_dir
        let root = string(air.get("root")).unwrap_or_else(|| ".".into());
        if root != "." {
            self.watch
                .push(format!("paths = {}", list(std::slice::from_ref(&root))));
            self.run.push(format!("cwd = {}", quote(&root)));
        }
        let tmp = string(air.get("tmp_dir")).unwrap_or_else(|| "tmp".into());
        self.build
            .push(format!("outputs = {}", list(&[format!("{tmp}/**")])));

        // build.cmd, pre_cmd, post_cmd
        if let Some(cmd) = string(b("cmd")) {
            self.build.push(format!("cmd = {}", quote(&cmd)));
        }
        let pre = strings(b("pre_cmd"));
        if !pre.is_empty() {
            self.build.push(format!("before = {}", list(&pre)));
        }
        if !strings(b("post_cmd")).is_empty() {
            self.skip(
                "build.post_cmd",
                "hotrun has no commands after the app stops",
            );
        }

        // bin / full_bin / entrypoint + args_bin
        let entry = strings(b("entrypoint"));
        let run_cmd = string(b("full_bin"))
            .or_else(|| (!entry.is_empty()).then(|| entry.join(" ")))
            .or_else(|| string(b("bin")));
        if let Some(cmd) = run_cmd {
            self.run.push(format!("cmd = {}", quote(&cmd)));
        }
        let args = strings(b("args_bin"));
        if !args.is_empty() {
            self.run.push(format!("args = {}", list(&args)));
        }

        // include_ext / include_dir / include_file → watch.include
        let exts = strings(b("include_ext"));
        let dirs = strings(b("include_dir"));
        let mut include = Vec::new();
        match (dirs.is_empty(), exts.is_empty()) {
            (true, false) => include.extend(exts.iter().map(|e| format!("**/*.{e}"))),
            (false, false) => {
                for d in &dirs {
                    include.extend(exts.iter().map(|e| format!("{d}/**/*.{e}")));
                }
            }
            (false, true) => include.extend(dirs.iter().map(|d| format!("{d}/**"))),
            (true, true) => {}
        }
        include.extend(strings(b("include_file")));
        if !include.is_empty() {
            self.watch.push(format!("include = {}", list(&include)));
        }

        // exclude_dir / exclude_file / exclude_regex → watch.ignore
        let mut ignore: Vec<String> = strings(b("exclude_dir"))
            .iter()
            .map(|d| format!("{d}/"))
            .collect();
        ignore.extend(strings(b("exclude_file")));
        for regex in strings(b("exclude_regex")) {
            match regex_to_glob(&regex) {
                Some(glob) => ignore.push(glob),
                None => self.skip(
                    &format!("build.exclude_regex {}", quote(&regex)),
                    "a regular expression a glob cannot express; add a `watch.ignore` glob by hand",
                ),
            }
        }
        if !ignore.is_empty() {
            self.watch.push(format!("ignore = {}", list(&ignore)));
        }

        // delay → debounce, kill_delay → stop_timeout, send_interrupt → stop_signal
        if let Some(d) = b("delay").and_then(duration) {
            self.watch.push(format!("debounce = {}", quote(&d)));
        }
        // A Go `time.Duration`: a string, or an integer of nanoseconds.
        let kill_delay = match b("kill_delay") {
            Some(Value::Integer(ns)) => Some(format!("{}ms", ns / 1_000_000)),
            other => other.and_then(duration),
        };
        match kill_delay {
            Some(d) if crate::config::values::parse_duration(&d).is_ok_and(|v| !v.is_zero()) => {
                self.run.push(format!("stop_timeout = {}", quote(&d)));
            }
            _ => self.run.push(
                "# air kills at once by default; hotrun stops the app gracefully (SIGTERM, then SIGKILL after stop_timeout)".into(),
            ),
        }
        if b("send_interrupt").and_then(Value::as_bool) == Some(true) {
            self.run.push("stop_signal = \"SIGINT\"".into());
        }

        // rerun → restart
        if b("rerun").and_then(Value::as_bool) == Some(true) {
            self.run.push("restart = \"always\"".into());
        }
        if b("rerun_delay").is_some() {
            self.skip(
                "build.rerun_delay",
                "hotrun restarts with its own backoff (1 s doubling to 30 s)",
            );
        }

        // poll / poll_interval
        if b("poll").and_then(Value::as_bool) == Some(true) {
            match b("poll_interval")
                .and_then(Value::as_integer)
                .filter(|ms| *ms > 0)
            {
                Some(ms) => self.watch.push(format!("poll = \"{ms}ms\"")),
                None => self.watch.push("poll = true".into()),
            }
        }

        // proxy
        let proxy = air.get("proxy").and_then(Value::as_table);
        if let Some(p) = proxy.filter(|p| p.get("enabled").and_then(Value::as_bool) == Some(true)) {
            if let Some(port) = p
                .get("proxy_port")
                .and_then(Value::as_integer)
                .filter(|p| *p > 0)
            {
                self.proxy.push(format!("listen = \"127.0.0.1:{port}\""));
                if let Some(app) = p
                    .get("app_port")
                    .and_then(Value::as_integer)
                    .filter(|p| *p > 0)
                {
                    self.proxy.push(format!("app = \"127.0.0.1:{app}\""));
                }
                if let Some(ms) = p.get("app_start_timeout").and_then(Value::as_integer) {
                    self.proxy.push(format!("timeout = \"{ms}ms\""));
                }
            }
        }
        if proxy.is_some_and(|p| {
            p.contains_key("app_start_timeout")
                && p.get("enabled").and_then(Value::as_bool) != Some(true)
        }) {
            self.skip(
                "proxy.app_start_timeout",
                "air's proxy is off here; with hotrun's proxy it is `proxy.timeout`",
            );
        }

        // screen, env files
        let screen = air.get("screen").and_then(Value::as_table);
        let flag = |k: &str| screen.and_then(|s| s.get(k)).and_then(Value::as_bool);
        match (flag("clear_on_rebuild"), flag("keep_scroll")) {
            (Some(true), Some(true)) => self.skip(
                "screen.clear_on_rebuild",
                "with keep_scroll air keeps the scrollback; hotrun's clear_on_rebuild would wipe it",
            ),
            (Some(true), _) => self.ui.push("clear_on_rebuild = true".into()),
            _ => {}
        }
        let env_files = [air.get("env_files"), b("env_files")]
            .into_iter()
            .flat_map(strings)
            .collect::<Vec<_>>();
        if !env_files.is_empty() {
            self.run.push(format!("env_file = {}", list(&env_files)));
        }

        if b("stop_on_error").is_some() {
            self.skip(
                "build.stop_on_error",
                "hotrun never stops a running app over a failed build: the old app keeps serving",
            );
        }
        for (key, why) in [
            (
                "build.log",
                "build output shows in hotrun's output, the panel and the JSON events",
            ),
            (
                "build.exclude_unchanged",
                "hotrun always ignores saves that leave a file's content unchanged",
            ),
            ("build.follow_symlink", "not supported yet"),
            (
                "testdata_dir",
                "no counterpart; ignore it with `watch.ignore` if it is in the tree",
            ),
            (
                "color",
                "hotrun picks its own colours (NO_COLOR and --color are honoured)",
            ),
            ("log", "no counterpart"),
            (
                "misc.clean_on_exit",
                "hotrun keeps its build output (it is in `build.outputs`, never watched)",
            ),
            (
                "build.ignore_dangerous_root_dir",
                "hotrun has no such check: it watches what the project root holds",
            ),
            (
                "build.windows",
                "Windows settings: hotrun runs on Linux and macOS",
            ),
            (
                "screen.keep_scroll",
                "hotrun never clears the scrollback unless `ui.clear_on_rebuild`",
            ),
        ] {
            let present = match key.split_once('.') {
                Some((section, k)) => air
                    .get(section)
                    .and_then(Value::as_table)
                    .is_some_and(|t| t.contains_key(k)),
                None => air.contains_key(key),
            };
            if present && !self.unmapped.iter().any(|(k, _)| k == key) {
                self.skip(key, why);
            }
        }

        let mut text =
            String::from("# Converted from an air configuration by `hotrun init --from-air`.\n");
        if !self.unmapped.is_empty() {
            text.push_str("#\n# Not carried over:\n");
            for (key, why) in &self.unmapped {
                let _ = writeln!(text, "#   {key}: {why}");
            }
        }
        for (name, lines) in [
            ("build", &self.build),
            ("run", &self.run),
            ("watch", &self.watch),
            ("proxy", &self.proxy),
            ("ui", &self.ui),
        ] {
            if lines.is_empty() {
                continue;
            }
            let _ = write!(text, "\n[{name}]\n");
            for line in lines {
                let _ = writeln!(text, "{line}");
            }
        }
        Converted {
            text,
            unmapped: self.unmapped,
        }
    }
}

/// The simple regular expressions air users write, as globs: literal text with an
/// optional `^`/`$` and escaped dots (`_test.go`, `\.tmp$`). Anything else: `None`.
pub fn regex_to_glob(regex: &str) -> Option<String> {
    let mut r = regex;
    let start = r.starts_with('^');
    if start {
        r = &r[1..];
    }
    let end = r.ends_with('$') && !r.ends_with("\\$");
    if end {
        r = &r[..r.len() - 1];
    }
    let mut literal = String::new();
    let mut chars = r.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('.' | '-' | '_' | '/')) => literal.push(e),
                _ => return None,
            },
            // air matches the regex against the file name; an unescaped `.` in names
            // like `_test.go` is meant literally.
            c if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') => literal.push(c),
            _ => return None,
        }
    }
    if literal.is_empty() {
        return None;
    }
    // `_test\.go` is written for names ending so: a glob that also takes
    // `x_test.gox` would ignore more than meant.
    let extension = literal
        .rsplit_once('.')
        .is_some_and(|(_, ext)| !ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric()));
    Some(format!(
        "{}{literal}{}",
        if start { "" } else { "*" },
        if end || extension { "" } else { "*" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn converted(air: &str) -> Converted {
        Converter::default().run(&toml::from_str(air).unwrap())
    }

    fn dropped(c: &Converted, key: &str) -> bool {
        c.unmapped.iter().any(|(k, _)| k == key)
    }

    #[test]
    fn every_air_key_is_carried_or_said() {
        let c = converted(
            "[build]\ncmd = \"go build -o ./tmp/main .\"\nbin = \"./tmp/main\"\n\
             exclude_regex = [\"_test\\\\.go\"]\nkill_delay = 500000000\nrerun_delay = 500\n\
             ignore_dangerous_root_dir = false\n[build.windows]\nbin = \"tmp\\\\main.exe\"\n\
             [proxy]\nenabled = true\nproxy_port = 8090\napp_port = 8080\napp_start_timeout = 1000\n\
             [screen]\nclear_on_rebuild = true\nkeep_scroll = true\n[misc]\nclean_on_exit = true\n",
        );
        let text = &c.text;
        // Timeouts carried, with their units.
        assert!(text.contains("stop_timeout = \"500ms\""), "{text}");
        assert!(text.contains("timeout = \"1000ms\""), "{text}");
        // A clean glob for air's usual regex.
        assert!(text.contains("\"*_test.go\""), "{text}");
        // keep_scroll wins: the scrollback is not wiped.
        assert!(!text.contains("clear_on_rebuild = true"), "{text}");
        for key in [
            "screen.clear_on_rebuild",
            "build.rerun_delay",
            "build.windows",
            "build.ignore_dangerous_root_dir",
            "misc.clean_on_exit",
        ] {
            assert!(dropped(&c, key), "{key} is not listed: {:?}", c.unmapped);
            assert!(text.contains(&format!("#   {key}: ")), "{key}: {text}");
        }
        assert!(text.ends_with('\n'));
        crate::config::file::parse(Path::new(".hotrun.toml"), c.text.clone()).unwrap();
        // Without keep_scroll, clearing is carried; a Go duration string stays one.
        let c = converted("[build]\nkill_delay = \"2s\"\n[screen]\nclear_on_rebuild = true\n");
        assert!(c.text.contains("clear_on_rebuild = true"), "{}", c.text);
        assert!(c.text.contains("stop_timeout = \"2s\""), "{}", c.text);
    }

    #[test]
    fn simple_regexes_become_globs() {
        assert_eq!(regex_to_glob("_test.go").as_deref(), Some("*_test.go"));
        assert_eq!(regex_to_glob("_test\\.go").as_deref(), Some("*_test.go"));
        assert_eq!(regex_to_glob("_gen").as_deref(), Some("*_gen*"));
        assert_eq!(regex_to_glob("_test\\.go$").as_deref(), Some("*_test.go"));
        assert_eq!(regex_to_glob("^gen_").as_deref(), Some("gen_*"));
        assert_eq!(regex_to_glob("(foo|bar)\\.go"), None);
        assert_eq!(regex_to_glob(".*"), None);
    }
}
