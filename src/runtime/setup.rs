//! Before the loop: the project resolved (`cargo metadata`, watch roots,
//! classification rules) and the sockets bound. An error here means nothing was
//! started (exit 2).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::build::cargo::{CargoProject, RunTarget};
use crate::build::Project;
use crate::config::cli::Cli;
use crate::config::settings::{Settings, Ui};
use crate::core::classify::{Classifier, Inputs, TaskGlobs};
use crate::core::options::Options;
use crate::watch::WatchSpec;
use crate::web::sockets::Sockets;

/// Everything resolved before anything starts.
pub struct Prepared {
    pub(super) settings: Arc<Settings>,
    pub(super) project: Project,
    pub(super) watch: WatchSpec,
    pub(super) classifier: Classifier,
    pub(super) options: Options,
    /// The command line, to read the config file again with the same flags.
    pub(super) cli: Cli,
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
    let (watch, inputs) = watch_spec(&settings, &project)?;
    let classifier = classifier(&settings, &cli, inputs, watch.root.clone());
    Ok(Prepared {
        options: settings.options(),
        settings: Arc::new(settings),
        project,
        watch,
        classifier,
        cli,
    })
}

/// What to watch (the workspace and its packages, or the project root, and
/// `watch.paths`), and how build inputs are told apart.
fn watch_spec(settings: &Settings, project: &Project) -> Result<(WatchSpec, Inputs)> {
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut ignore_dirs = Vec::new();
    let inputs = match project {
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
        keep: kept(settings)?,
        keep_dirs: kept_patterns(settings)
            .map(|p| literal_dir(&root, p))
            .filter(|d| *d != root)
            .collect(),
        poll: settings.watch.poll,
    };
    Ok((watch, inputs))
}

/// What is watched even where `.gitignore` ignores it: the user's own `watch.assets`,
/// and what the `[[on_change]]` commands and sidecars say they write (generated
/// stylesheets are usually gitignored).
fn kept_patterns(settings: &Settings) -> impl Iterator<Item = &String> {
    let assets = settings
        .watch
        .assets
        .patterns
        .iter()
        .filter(|_| settings.watch.assets_named);
    assets.chain(settings.pipeline.outputs())
}

fn kept(settings: &Settings) -> Result<Option<globset::GlobSet>> {
    let patterns: Vec<&String> = kept_patterns(settings).collect();
    if patterns.is_empty() {
        return Ok(None);
    }
    Ok(Some(globs(patterns.into_iter())?))
}

/// Compile `watch.*`-style patterns (already checked when the settings were read).
fn globs<'a>(patterns: impl Iterator<Item = &'a String>) -> Result<globset::GlobSet> {
    let mut set = globset::GlobSetBuilder::new();
    for pattern in patterns {
        for glob in crate::core::classify::expand_glob(pattern) {
            set.add(crate::core::classify::build_glob(&glob)?);
        }
    }
    Ok(set.build()?)
}

/// How a changed path is classified: build inputs, the config file, restart files
/// (`watch.restart`, the env files), assets.
fn classifier(settings: &Settings, cli: &Cli, inputs: Inputs, root: PathBuf) -> Classifier {
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
    let tasks = settings
        .pipeline
        .tasks
        .iter()
        .map(|t| TaskGlobs {
            paths: t.paths.set.clone(),
            outputs: globs(t.outputs.iter()).unwrap_or_else(|_| globset::GlobSet::empty()),
            output_dirs: t
                .outputs
                .iter()
                .map(|o| {
                    let o = o.trim_start_matches('/');
                    match o.strip_suffix('/') {
                        Some(dir) => PathBuf::from(dir),
                        None => PathBuf::from(o)
                            .parent()
                            .map(PathBuf::from)
                            .unwrap_or_default(),
                    }
                })
                // An output in the root says nothing of its neighbours.
                .filter(|d| !d.as_os_str().is_empty())
                .collect(),
        })
        .collect();
    Classifier::new(root, inputs, settings.watch.rebuild.set.clone())
        .with_config_file(config_file)
        .with_tasks(tasks)
        .with_kinds(
            settings.watch.restart.set.clone(),
            restart_files,
            settings.watch.assets.set.clone(),
        )
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

/// The addresses the panel shows, most public first (`o` opens the first).
pub(super) fn panel_info(
    settings: &Settings,
    reload_url: Option<&str>,
) -> crate::ui::panel::PanelInfo {
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
            format!("http://{}{}", proxy.listen, crate::web::hub::SCRIPT_PATH),
        )),
        _ => {}
    }
    crate::ui::panel::PanelInfo {
        urls,
        root: settings.root.clone(),
    }
}
