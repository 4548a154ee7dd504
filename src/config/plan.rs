//! What a saved `.hotrun.toml` means for a hotrun that is running: which sections
//! changed, what to watch, build and start again, and what only a restart of hotrun
//! can apply (sockets are bound once; the browser guard is set at start). A pure
//! function of the old and the new settings; the loop carries the plan out.

use crate::config::reference;
use crate::config::settings::Settings;

/// What to do about a config change.
#[derive(Debug, Clone)]
pub struct ReloadPlan {
    /// The sections (`build`, `run`, `watch`, …) whose effective values changed, in the
    /// reference's order.
    pub changed: Vec<&'static str>,
    /// Watch again: what is watched, or how, changed.
    pub rewatch: bool,
    /// Build again (`[build]` changed).
    pub rebuild: bool,
    /// Start the app again (`[run]` changed).
    pub restart: bool,
    /// Stop the sidecars and start the new ones (`[[sidecar]]` changed).
    pub restart_sidecars: bool,
    /// What was not applied and why: each a message for the user.
    pub not_applied: Vec<String>,
    /// The settings to go on with: the new ones, but what is fixed at start (the bound
    /// addresses, the output mode) as it was.
    pub settings: Settings,
}

impl ReloadPlan {
    /// Nothing to do: the file was saved with the same meaning.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && !self.rewatch
    }
}

/// The plan for going from `old` to `new`. `roots_changed`: the folders to watch differ
/// (they follow from the settings and the project, which only setup reads).
pub fn plan(old: &Settings, new: &Settings, roots_changed: bool) -> ReloadPlan {
    let before = reference::effective_sections(old);
    let after = reference::effective_sections(new);
    let changed: Vec<&'static str> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.1 != a.1)
        .map(|(b, _)| b.0)
        .collect();
    let mut not_applied = Vec::new();
    let guard = |s: &Settings| {
        (
            s.reload.enabled,
            s.reload.hosts.clone(),
            s.reload.origins.clone(),
        )
    };
    if guard(old) != guard(new) {
        not_applied.push(
            "reload.enabled, reload.hosts or reload.origins changed: restart hotrun to apply"
                .to_string(),
        );
    }
    let mut rebind = Vec::new();
    if old.run.listen != new.run.listen {
        rebind.push("run.listen");
    }
    if old.proxy.as_ref().map(|p| p.listen) != new.proxy.as_ref().map(|p| p.listen) {
        rebind.push("proxy.listen");
    }
    if old.reload.listen != new.reload.listen {
        rebind.push("reload.listen");
    }
    let proxy_app = |s: &Settings| s.proxy.as_ref().map(|p| (p.app, p.timeout));
    if proxy_app(old) != proxy_app(new) {
        rebind.push("proxy.app, proxy.timeout");
    }
    if !rebind.is_empty() {
        not_applied.push(format!(
            "{} changed: restart hotrun to bind the new address",
            rebind.join(", ")
        ));
    }
    let mut settings = new.clone();
    // Bound once at start: what is bound stays in force (and in the panel) until restart.
    settings.run.listen = old.run.listen.clone();
    if let (Some(new_proxy), Some(old_proxy)) = (&mut settings.proxy, &old.proxy) {
        new_proxy.listen = old_proxy.listen;
    }
    settings.reload.listen = old.reload.listen;
    // The output mode was chosen at start (stdin is wired to it).
    settings.ui.mode = old.ui.mode;
    ReloadPlan {
        // What the commands write is watched even when gitignored.
        rewatch: roots_changed
            || ["watch", "build", "on_change", "sidecar"]
                .iter()
                .any(|s| changed.contains(s)),
        restart_sidecars: changed.contains(&"sidecar"),
        rebuild: changed.contains(&"build"),
        restart: changed.contains(&"run"),
        changed,
        not_applied,
        settings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cli::Cli;
    use clap::Parser;

    fn settings(toml: &str) -> Settings {
        let loaded =
            crate::config::file::parse(std::path::Path::new("c.toml"), toml.into()).unwrap();
        let cli = Cli::try_parse_from(["hotrun"]).unwrap();
        let site = std::path::PathBuf::from("/site");
        crate::config::settings::resolve(&cli, site.clone(), Some(site), Some(loaded)).unwrap()
    }

    const BASE: &str = "[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 100\"\n";

    #[test]
    fn the_same_meaning_is_nothing_to_do() {
        let old = settings(BASE);
        let new = settings(&format!("# a comment\n{BASE}"));
        let plan = plan(&old, &new, false);
        assert!(plan.is_empty(), "{plan:?}");
        assert!(plan.not_applied.is_empty());
        assert!(!plan.rebuild && !plan.restart && !plan.rewatch);
        assert!(
            !super::plan(&old, &old, true).is_empty(),
            "new roots are watched"
        );
    }

    #[test]
    fn build_rebuilds_and_rewatches_run_restarts_watch_rewatches() {
        let old = settings(BASE);
        let build = plan(
            &old,
            &settings(&BASE.replace("\"true\"", "\"echo\"")),
            false,
        );
        assert_eq!(build.changed, ["build"]);
        assert!(build.rebuild && build.rewatch && !build.restart);
        let run = plan(&old, &settings(&BASE.replace("100", "200")), false);
        assert_eq!(run.changed, ["run"]);
        assert!(run.restart && !run.rebuild && !run.rewatch);
        let watch = plan(
            &old,
            &settings(&format!("{BASE}[watch]\nignore = [\"*.log\"]\n")),
            false,
        );
        assert_eq!(watch.changed, ["watch"]);
        assert!(watch.rewatch && !watch.rebuild && !watch.restart);
    }

    #[test]
    fn commands_apply_at_once_and_sidecars_start_again() {
        let old = settings(BASE);
        let task = "[[on_change]]\npaths = [\"styles/**\"]\nrun = \"gen -o static/a.css\"\n";
        let on_change = plan(&old, &settings(&format!("{BASE}{task}")), false);
        assert_eq!(on_change.changed, ["on_change"]);
        // Its output is watched even when gitignored: the watcher is told.
        assert!(on_change.rewatch && !on_change.restart_sidecars);
        assert!(!on_change.rebuild && !on_change.restart);
        let sidecar = plan(
            &old,
            &settings(&format!("{BASE}[[sidecar]]\nrun = \"watch\"\n")),
            false,
        );
        assert_eq!(sidecar.changed, ["sidecar"]);
        assert!(sidecar.restart_sidecars && !sidecar.rebuild && !sidecar.restart);
    }

    #[test]
    fn what_is_bound_at_start_stays_and_is_said() {
        let old = settings(&format!("{BASE}listen = [\"127.0.0.1:40001\"]\n"));
        let new = settings(&format!(
            "{BASE}listen = [\"127.0.0.1:40002\"]\n[reload]\nlisten = \"127.0.0.1:40003\"\nhosts = [\"dev.test\"]\n"
        ));
        let plan = plan(&old, &new, false);
        assert_eq!(plan.settings.run.listen, old.run.listen);
        assert_eq!(plan.settings.reload.listen, old.reload.listen);
        assert_eq!(plan.not_applied.len(), 2, "{:?}", plan.not_applied);
        assert!(plan.not_applied[0].starts_with("reload.enabled, reload.hosts"));
        assert_eq!(
            plan.not_applied[1],
            "run.listen, reload.listen changed: restart hotrun to bind the new address"
        );
        // The rest of what changed still applies.
        assert_eq!(plan.settings.reload.hosts, new.reload.hosts);
    }
}
