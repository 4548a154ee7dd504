//! Decides what a changed path means: a build input, or something
//! hotrun notes and leaves alone. A pure function of the path and what hotrun knows —
//! the package roots, the last build's dep-info and the configured globs. No I/O.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet};

use crate::core::event::ChangeKind;

/// `watch.assets` by default: the folders web apps serve files from, and common web
/// files anywhere. Served as they are on disk, so the browser only reloads (or swaps a
/// stylesheet).
pub const DEFAULT_ASSETS: &[&str] = &[
    "static/", "public/", "assets/", "*.css", "*.js", "*.mjs", "*.json", "*.png", "*.jpg",
    "*.jpeg", "*.gif", "*.svg", "*.webp", "*.ico", "*.woff", "*.woff2", "*.ttf",
];

/// `watch.restart` by default (plus the `run.env_file`s): the environment, and
/// templates — most engines (Go's `ParseGlob`, Gin's `LoadHTMLGlob`, Tera, minijinja
/// without autoreload) parse them once at start, so only a restart shows an edit.
/// Where a path is in both lists, `watch.assets` wins: `static/page.html` is served as
/// it is.
pub const DEFAULT_RESTART: &[&str] = &[
    ".env*",
    "templates/",
    "*.tmpl",
    "*.gohtml",
    "*.tera",
    "*.j2",
    "*.jinja",
    "*.hbs",
    "*.liquid",
    "*.html",
];

/// A `watch.*` pattern as gitignore reads it, in globset's terms: no `/` means at any
/// depth, a leading `/` means at the root, a trailing `/` means the folder and all in it.
pub fn expand_glob(pattern: &str) -> Vec<String> {
    let mut p = pattern.trim().trim_start_matches("./").to_string();
    if let Some(stripped) = p.strip_prefix('/') {
        p = stripped.to_string();
    } else if !p.trim_end_matches('/').contains('/') && !p.starts_with("**") {
        p = format!("**/{p}");
    }
    let mut out = Vec::new();
    if let Some(dir) = p.strip_suffix('/') {
        out.push(dir.to_string());
        out.push(format!("{dir}/**"));
    } else {
        if let Some(dir) = p.strip_suffix("/**") {
            out.push(dir.to_string());
        }
        out.push(p);
    }
    out
}

/// One glob where `*` stays within a path segment.
pub fn build_glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

/// How build inputs are recognised.
#[derive(Debug, Clone)]
pub enum Inputs {
    /// A Cargo project: source files of these packages, dep-info, manifests.
    Cargo {
        /// Manifest directories of the workspace members and local path dependencies.
        packages: Vec<PathBuf>,
        /// Running an example: `examples/` files of its package are inputs too.
        example: bool,
    },
    /// A command-built project: `watch.include` globs, or every non-ignored file.
    Command { include: Option<GlobSet> },
}

/// Everything classification needs; owned by the state, updated after each build.
#[derive(Debug, Clone)]
pub struct Classifier {
    root: PathBuf,
    inputs: Inputs,
    rebuild: GlobSet,
    /// `.hotrun.toml`, which is read again rather than built.
    config_file: Option<PathBuf>,
    /// `watch.restart` globs and the `run.env_file`s: restart the app, no build.
    restart: GlobSet,
    restart_files: Vec<PathBuf>,
    /// `watch.assets` globs: the browser reloads (or swaps a stylesheet), no build.
    assets: GlobSet,
    /// Files (and directories) the last successful build read.
    dep_files: HashSet<PathBuf>,
    dep_dirs: Vec<PathBuf>,
    /// What starts each `[[on_change]]` command, and what it says it writes.
    tasks: Vec<TaskGlobs>,
}

/// An `[[on_change]]` command's globs, relative to the project root.
#[derive(Debug, Clone)]
pub struct TaskGlobs {
    /// Its `paths`: a change here runs it.
    pub paths: GlobSet,
    /// What its command line names as written (`-o static/app.css`): never a trigger.
    pub outputs: GlobSet,
    /// The folders of those outputs: what changes there while it runs is its own
    /// writing too (a source map, chunks beside a bundle).
    pub output_dirs: Vec<PathBuf>,
}

impl Classifier {
    pub fn new(root: PathBuf, inputs: Inputs, rebuild: GlobSet) -> Classifier {
        Classifier {
            root,
            inputs,
            rebuild,
            config_file: None,
            restart: GlobSet::empty(),
            restart_files: Vec::new(),
            assets: GlobSet::empty(),
            dep_files: HashSet::new(),
            dep_dirs: Vec::new(),
            tasks: Vec::new(),
        }
    }

    pub fn with_tasks(mut self, tasks: Vec<TaskGlobs>) -> Classifier {
        self.tasks = tasks;
        self
    }

    /// The `[[on_change]]` commands (by index) a change of `path` runs: those whose
    /// `paths` match it, unless their command names it as what it writes.
    pub fn tasks_for(&self, path: &Path) -> Vec<usize> {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        self.tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.paths.is_match(rel) && !t.outputs.is_match(rel))
            .map(|(i, _)| i)
            .collect()
    }

    /// `path` is beside what `[[on_change]]` command `task` says it writes.
    pub fn beside_output(&self, task: usize, path: &Path) -> bool {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        self.tasks
            .get(task)
            .is_some_and(|t| t.output_dirs.iter().any(|d| rel.starts_with(d)))
    }

    /// Restart-only files (globs, and exact paths such as the env files) and assets.
    pub fn with_kinds(
        mut self,
        restart: GlobSet,
        restart_files: Vec<PathBuf>,
        assets: GlobSet,
    ) -> Classifier {
        self.restart = restart;
        self.restart_files = restart_files;
        self.assets = assets;
        self
    }

    pub fn with_config_file(mut self, file: Option<PathBuf>) -> Classifier {
        self.config_file = file;
        self
    }

    /// A classifier for new settings that keeps what the last build taught this one.
    pub fn keep_dep_info_from(mut self, old: &Classifier) -> Classifier {
        self.dep_files = old.dep_files.clone();
        self.dep_dirs = old.dep_dirs.clone();
        self
    }

    /// Record what the last successful build read. Directories (a `rerun-if-changed`
    /// may name one) cover every file below them.
    pub fn set_dep_info(&mut self, files: &[PathBuf], dirs: &[PathBuf]) {
        self.dep_files = files.iter().cloned().collect();
        self.dep_dirs = dirs.to_vec();
    }

    /// `last_failed`: while the last build failed its dep-info is stale, so every change
    /// under a package counts as a build input.
    ///
    /// In order: the config file; `watch.rebuild`; the env files; what the last build
    /// read (Cargo's dep-info: an `include_str!` or askama template builds) and
    /// `watch.include` (the user's own list); `watch.restart` unless `watch.assets`
    /// also names the path (`static/page.html` is served as it is); then Cargo's own
    /// inputs, assets, and the rest.
    pub fn classify(&self, path: &Path, last_failed: bool) -> ChangeKind {
        if self.config_file.as_deref() == Some(path) {
            return ChangeKind::Config;
        }
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        if self.rebuild.is_match(rel) {
            return ChangeKind::Build;
        }
        if self.restart_files.iter().any(|f| f == path) {
            return ChangeKind::Restart;
        }
        let built = match &self.inputs {
            Inputs::Command { include } => include.as_ref().is_some_and(|g| g.is_match(rel)),
            Inputs::Cargo { .. } => {
                self.dep_files.contains(path) || self.dep_dirs.iter().any(|d| path.starts_with(d))
            }
        };
        if built {
            return ChangeKind::Build;
        }
        let is_asset = self.assets.is_match(rel);
        if !is_asset && self.restart.is_match(rel) {
            let env_file = rel
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".env"));
            return match &self.inputs {
                // Stale dep-info: a template may be compiled in (and be what failed);
                // an env file is read at start.
                Inputs::Cargo { packages, .. } if last_failed && !env_file => {
                    match in_package(packages, path, true, |_| true) {
                        ChangeKind::Build => ChangeKind::Build,
                        _ => ChangeKind::Restart,
                    }
                }
                _ => ChangeKind::Restart,
            };
        }
        let asset = || {
            if !is_asset {
                ChangeKind::Other
            } else if rel.extension().is_some_and(|e| e == "css") {
                ChangeKind::Css
            } else {
                ChangeKind::Asset
            }
        };
        match &self.inputs {
            Inputs::Command { include } => match include {
                Some(_) => asset(),
                // Every file not an asset is a build input, except what an
                // `[[on_change]]` command reads: what it writes is (`.templ` →
                // `_templ.go`).
                None => match asset() {
                    ChangeKind::Other if !self.tasks.iter().any(|t| t.paths.is_match(rel)) => {
                        ChangeKind::Build
                    }
                    kind => kind,
                },
            },
            Inputs::Cargo { packages, example } => {
                match in_package(packages, path, last_failed, |rel| {
                    cargo_input(rel, *example)
                }) {
                    ChangeKind::Other => asset(),
                    kind => kind,
                }
            }
        }
    }

    /// A watched directory was removed or renamed away: a build input when it held
    /// (or may have held) one.
    pub fn classify_removed_dir(&self, dir: &Path, last_failed: bool) -> ChangeKind {
        if self.dep_files.iter().any(|f| f.starts_with(dir))
            || self
                .dep_dirs
                .iter()
                .any(|d| d.starts_with(dir) || dir.starts_with(d))
        {
            return ChangeKind::Build;
        }
        match &self.inputs {
            // With `watch.include`, a directory is no file that matches: its files were
            // (or were not) build inputs on their own. Without, every file counts.
            Inputs::Command { include } => {
                if include.is_some() {
                    ChangeKind::Other
                } else {
                    ChangeKind::Build
                }
            }
            Inputs::Cargo { packages, example } => {
                // As a .rs file in that directory would be.
                in_package(packages, dir, last_failed, |rel| {
                    cargo_input(&rel.join("x.rs"), *example)
                })
            }
        }
    }
}

/// Classify `path` by the innermost package holding it: outside every package it is
/// `other`; inside one it is a build input when the last build failed (dep-info is
/// stale then) or when `input` says so of the path relative to the package.
fn in_package(
    packages: &[PathBuf],
    path: &Path,
    last_failed: bool,
    input: impl Fn(&Path) -> bool,
) -> ChangeKind {
    let Some(package) = packages
        .iter()
        .filter(|p| path.starts_with(p))
        .max_by_key(|p| p.components().count())
    else {
        return ChangeKind::Other;
    };
    if last_failed || input(path.strip_prefix(package).unwrap_or(path)) {
        ChangeKind::Build
    } else {
        ChangeKind::Other
    }
}

/// A path relative to its package root that Cargo would rebuild for.
fn cargo_input(rel: &Path, example: bool) -> bool {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if matches!(name, "Cargo.toml" | "Cargo.lock" | "build.rs") {
        return true;
    }
    if rel.starts_with(".cargo") && (name == "config.toml" || name == "config") {
        return true;
    }
    if rel.extension().and_then(|e| e.to_str()) != Some("rs") {
        return false;
    }
    let first = rel
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or("");
    match first {
        "tests" | "benches" => false,
        "examples" => example,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use globset::GlobSetBuilder;

    fn cargo(example: bool) -> Classifier {
        Classifier::new(
            PathBuf::from("/ws"),
            Inputs::Cargo {
                packages: vec![
                    PathBuf::from("/ws"),
                    PathBuf::from("/ws/crates/lib"),
                    PathBuf::from("/dep"),
                ],
                example,
            },
            GlobSetBuilder::new().build().unwrap(),
        )
    }

    #[test]
    fn rust_sources_and_manifests_are_build_inputs() {
        let c = cargo(false);
        for p in [
            "/ws/src/main.rs",
            "/ws/crates/lib/src/a/b.rs",
            "/dep/src/lib.rs",
            "/ws/Cargo.toml",
            "/ws/Cargo.lock",
            "/dep/build.rs",
        ] {
            assert_eq!(c.classify(Path::new(p), false), ChangeKind::Build, "{p}");
        }
    }

    #[test]
    fn tests_benches_examples_and_docs_are_other() {
        let c = cargo(false);
        for p in [
            "/ws/tests/it.rs",
            "/ws/benches/b.rs",
            "/ws/examples/e.rs",
            "/ws/README.md",
            "/ws/crates/lib/tests/x.rs",
            "/elsewhere/src/main.rs",
        ] {
            assert_eq!(c.classify(Path::new(p), false), ChangeKind::Other, "{p}");
        }
        assert_eq!(
            cargo(true).classify(Path::new("/ws/examples/e.rs"), false),
            ChangeKind::Build
        );
    }

    #[test]
    fn dep_info_files_and_dirs_are_build_inputs() {
        let mut c = cargo(false);
        c.set_dep_info(
            &[PathBuf::from("/ws/src/page.html")],
            &[PathBuf::from("/ws/data")],
        );
        assert_eq!(
            c.classify(Path::new("/ws/data/x/y.txt"), false),
            ChangeKind::Build
        );
        assert_eq!(
            c.classify(Path::new("/ws/src/page.html"), false),
            ChangeKind::Build
        );
        assert_eq!(
            c.classify(Path::new("/ws/src/other.html"), false),
            ChangeKind::Other
        );
    }

    #[test]
    fn after_a_failed_build_everything_in_a_package_rebuilds() {
        let c = cargo(false);
        assert_eq!(
            c.classify(Path::new("/ws/src/page.html"), true),
            ChangeKind::Build
        );
        assert_eq!(
            c.classify(Path::new("/elsewhere/x"), true),
            ChangeKind::Other
        );
    }

    #[test]
    fn removed_source_directories_rebuild() {
        let c = cargo(false);
        assert_eq!(
            c.classify_removed_dir(Path::new("/ws/src/handlers"), false),
            ChangeKind::Build
        );
        assert_eq!(
            c.classify_removed_dir(Path::new("/ws/tests/fixtures"), false),
            ChangeKind::Other
        );
        assert_eq!(
            c.classify_removed_dir(Path::new("/elsewhere"), false),
            ChangeKind::Other
        );
    }

    fn globs(patterns: &[&str]) -> GlobSet {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            for g in expand_glob(p) {
                b.add(build_glob(&g).unwrap());
            }
        }
        b.build().unwrap()
    }

    #[test]
    fn restart_only_files_assets_and_stylesheets() {
        let c = cargo(false).with_kinds(
            globs(DEFAULT_RESTART),
            vec![PathBuf::from("/ws/config/app.env")],
            globs(DEFAULT_ASSETS),
        );
        let kind = |p: &str| c.classify(Path::new(p), false);
        assert_eq!(kind("/ws/.env"), ChangeKind::Restart);
        assert_eq!(kind("/ws/.env.local"), ChangeKind::Restart);
        assert_eq!(kind("/ws/config/app.env"), ChangeKind::Restart);
        assert_eq!(kind("/ws/static/app.js"), ChangeKind::Asset);
        assert_eq!(kind("/ws/static/site.css"), ChangeKind::Css);
        assert_eq!(kind("/ws/src/main.rs"), ChangeKind::Build);
        assert_eq!(kind("/ws/README.md"), ChangeKind::Other);
        // Templates restart the app: most engines parse them once, at start.
        for p in [
            "/ws/templates/index.html",
            "/ws/templates/partials/nav.txt",
            "/ws/views/page.tmpl",
            "/ws/web/layout.gohtml",
            "/ws/src/pages/home.tera",
            "/ws/t/a.j2",
            "/ws/t/a.jinja",
            "/ws/t/a.hbs",
            "/ws/t/a.liquid",
            "/ws/docs/about.html",
        ] {
            assert_eq!(kind(p), ChangeKind::Restart, "{p}");
        }
        // Inside the folders that are served as they are, an HTML file is an asset.
        assert_eq!(kind("/ws/static/page.html"), ChangeKind::Asset);
        assert_eq!(kind("/ws/public/index.html"), ChangeKind::Asset);
        assert_eq!(kind("/ws/assets/x.hbs"), ChangeKind::Asset);
        // While the last build failed, a template in a package may be compiled in;
        // an env file still only restarts.
        assert_eq!(
            c.classify(Path::new("/ws/templates/index.html"), true),
            ChangeKind::Build
        );
        assert_eq!(c.classify(Path::new("/ws/.env"), true), ChangeKind::Restart);
        // A template the build reads (include_str!, askama) is a build input.
        let mut c = c;
        c.set_dep_info(&[PathBuf::from("/ws/templates/index.html")], &[]);
        assert_eq!(
            c.classify(Path::new("/ws/templates/index.html"), false),
            ChangeKind::Build
        );
    }

    #[test]
    fn command_projects_use_include_globs() {
        let all = Classifier::new(
            PathBuf::from("/p"),
            Inputs::Command { include: None },
            GlobSet::empty(),
        );
        assert_eq!(
            all.classify(Path::new("/p/main.go"), false),
            ChangeKind::Build
        );
        let mut b = GlobSetBuilder::new();
        b.add(globset::Glob::new("**/*.go").unwrap());
        let go = Classifier::new(
            PathBuf::from("/p"),
            Inputs::Command {
                include: Some(b.build().unwrap()),
            },
            GlobSet::empty(),
        );
        assert_eq!(
            go.classify(Path::new("/p/cmd/main.go"), false),
            ChangeKind::Build
        );
        assert_eq!(
            go.classify(Path::new("/p/README.md"), false),
            ChangeKind::Other
        );
    }

    #[test]
    fn command_project_templates_restart_unless_included_or_rebuilt() {
        let kinds =
            |c: Classifier| c.with_kinds(globs(DEFAULT_RESTART), Vec::new(), globs(DEFAULT_ASSETS));
        let all = kinds(Classifier::new(
            PathBuf::from("/p"),
            Inputs::Command { include: None },
            GlobSet::empty(),
        ));
        assert_eq!(
            all.classify(Path::new("/p/templates/index.tmpl"), false),
            ChangeKind::Restart
        );
        assert_eq!(
            all.classify(Path::new("/p/public/index.html"), false),
            ChangeKind::Asset
        );
        assert_eq!(
            all.classify(Path::new("/p/main.go"), false),
            ChangeKind::Build
        );
        // Listed in `watch.include` (air's `include_ext = ["html"]`): built, as air does.
        let included = kinds(Classifier::new(
            PathBuf::from("/p"),
            Inputs::Command {
                include: Some(globs(&["*.go", "*.html"])),
            },
            GlobSet::empty(),
        ));
        assert_eq!(
            included.classify(Path::new("/p/templates/index.html"), false),
            ChangeKind::Build
        );
        // `watch.rebuild` (a `//go:embed` folder) builds.
        let embedded = kinds(Classifier::new(
            PathBuf::from("/p"),
            Inputs::Command { include: None },
            globs(&["templates/"]),
        ));
        assert_eq!(
            embedded.classify(Path::new("/p/templates/index.tmpl"), false),
            ChangeKind::Build
        );
    }

    #[test]
    fn globs_without_slash_match_at_any_depth() {
        let set = |p: &str| {
            let mut b = globset::GlobSetBuilder::new();
            for g in expand_glob(p) {
                b.add(build_glob(&g).unwrap());
            }
            b.build().unwrap()
        };
        assert!(set("*.log").is_match("a/b/c.log"));
        assert!(set("*.log").is_match("c.log"));
        assert!(!set("/*.log").is_match("a/c.log"));
        assert!(!set("src/*.rs").is_match("src/a/b.rs"));
        assert!(set("src/**/*.rs").is_match("src/a/b.rs"));
        assert!(set("data/**").is_match("data"));
        assert!(set("data/").is_match("data/x/y"));
    }
}
