//! `[[on_change]]` and `[[sidecar]]`: the commands of an asset pipeline (Tailwind, Sass,
//! esbuild, templ), their names, the globs that start them, and the files they say they
//! write.

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use super::read::{compile_globs, env_table, Globs, Input};
use crate::config::file::RestartValue;
use crate::core::options::RestartPolicy;

/// One `[[on_change]]` (or `--on-change GLOB=CMD`): a generator run when its inputs
/// change.
#[derive(Debug, Clone)]
pub struct TaskSettings {
    /// Unique among tasks and sidecars: what its output lines and events are tagged with.
    pub name: String,
    /// Run through `sh -c` in the project root.
    pub run: String,
    /// Relative to the project root.
    pub paths: Globs,
    /// What the command says it writes (`-o FILE`, `--outdir DIR`, `> FILE`), relative
    /// to the project root: never a trigger of it, and watched even when gitignored.
    pub outputs: Vec<String>,
}

/// One `[[sidecar]]`: a long-running helper (a watcher of its own).
#[derive(Debug, Clone)]
pub struct SidecarSettings {
    pub name: String,
    pub run: String,
    pub restart: RestartPolicy,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// As for tasks: what it says it writes, watched even when gitignored.
    pub outputs: Vec<String>,
}

/// Both lists, resolved.
#[derive(Debug, Clone, Default)]
pub struct PipelineSettings {
    pub tasks: Vec<TaskSettings>,
    pub sidecars: Vec<SidecarSettings>,
}

impl PipelineSettings {
    /// Every output the commands name, relative to the project root.
    pub fn outputs(&self) -> impl Iterator<Item = &String> {
        let tasks = self.tasks.iter().flat_map(|t| &t.outputs);
        tasks.chain(self.sidecars.iter().flat_map(|s| &s.outputs))
    }
}

pub fn resolve(input: &Input) -> Result<PipelineSettings> {
    let file = input.file;
    // Names given win: a derived name steers clear of every one, wherever it is.
    let given = file.config.on_change.iter().filter_map(|t| t.name.as_ref());
    let given = given.chain(file.config.sidecar.iter().filter_map(|s| s.name.as_ref()));
    let mut names = Names {
        reserved: given.map(|n| n.get_ref().trim().to_string()).collect(),
        ..Names::default()
    };
    let mut tasks = Vec::new();
    for (i, task) in file.config.on_change.iter().enumerate() {
        let key = format!("on_change[{i}]");
        let run = task.run.get_ref().trim();
        if run.is_empty() {
            return Err(file.error_at(
                task.run.span(),
                &format!("{key}.run"),
                "is empty: name the command to run",
            ));
        }
        if task.paths.get_ref().is_empty() {
            return Err(file.error_at(
                task.paths.span(),
                &format!("{key}.paths"),
                "is empty: name the files whose changes run the command (globs)",
            ));
        }
        let name = names.take(file, &key, task.name.as_ref(), run)?;
        let paths = compile_globs(
            file,
            &format!("{key}.paths"),
            Some(task.paths.get_ref()),
            &[],
            &[],
        )?;
        tasks.push(TaskSettings {
            name,
            outputs: named_outputs(run),
            run: run.to_string(),
            paths,
        });
    }
    for flag in &input.cli.project.on_change {
        let Some((glob, run)) = flag.split_once('=') else {
            return Err(anyhow!(
                "--on-change {flag}: expected GLOB=CMD (for example 'styles/**=npx tailwindcss -i styles/app.css -o static/app.css')"
            ));
        };
        let (glob, run) = (glob.trim(), run.trim());
        if glob.is_empty() || run.is_empty() {
            return Err(anyhow!(
                "--on-change {flag}: expected GLOB=CMD, with neither side empty"
            ));
        }
        let paths = flag_glob(glob).map_err(|e| anyhow!("--on-change {flag}: {e}"))?;
        tasks.push(TaskSettings {
            name: names.derive(run),
            outputs: named_outputs(run),
            run: run.to_string(),
            paths,
        });
    }
    let mut sidecars = Vec::new();
    for (i, sidecar) in file.config.sidecar.iter().enumerate() {
        let key = format!("sidecar[{i}]");
        let run = sidecar.run.get_ref().trim();
        if run.is_empty() {
            return Err(file.error_at(
                sidecar.run.span(),
                &format!("{key}.run"),
                "is empty: name the command to run",
            ));
        }
        let name = names.take(file, &key, sidecar.name.as_ref(), run)?;
        let cwd = match &sidecar.cwd {
            Some(dir) => {
                let path = input.root.join(dir.get_ref());
                if !path.is_dir() {
                    return Err(file.error_at(
                        dir.span(),
                        &format!("{key}.cwd"),
                        &format!("{} is not a directory", path.display()),
                    ));
                }
                path
            }
            None => input.root.to_path_buf(),
        };
        // What it names is relative to where it runs.
        let outputs = match cwd.strip_prefix(input.root) {
            Ok(dir) if dir.as_os_str().is_empty() => named_outputs(run),
            Ok(dir) => {
                let dir = globset::escape(&dir.to_string_lossy());
                named_outputs(run)
                    .iter()
                    .map(|o| format!("/{dir}{o}"))
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        sidecars.push(SidecarSettings {
            name,
            outputs,
            run: run.to_string(),
            restart: match sidecar.restart {
                Some(RestartValue::Never) => RestartPolicy::Never,
                Some(RestartValue::Always) => RestartPolicy::Always,
                Some(RestartValue::OnFailure) | None => RestartPolicy::OnFailure,
            },
            cwd,
            env: env_table(file, &format!("{key}.env"), &sidecar.env)?,
        });
    }
    Ok(PipelineSettings { tasks, sidecars })
}

/// The glob of `--on-change GLOB=CMD`, read as `watch.*` globs are.
fn flag_glob(pattern: &str) -> Result<Globs, String> {
    let mut set = globset::GlobSetBuilder::new();
    for glob in crate::core::classify::expand_glob(pattern) {
        let glob = crate::core::classify::build_glob(&glob)
            .map_err(|e| format!("invalid glob `{pattern}`: {}", e.kind()))?;
        set.add(glob);
    }
    Ok(Globs {
        patterns: vec![pattern.to_string()],
        set: set.build().map_err(|e| e.to_string())?,
    })
}

/// Names given and derived, unique among tasks and sidecars.
#[derive(Default)]
struct Names {
    taken: Vec<String>,
    /// Every name the file gives.
    reserved: Vec<String>,
}

impl Names {
    /// The `name` key, checked, or one derived from the command.
    fn take(
        &mut self,
        file: &crate::config::file::Loaded,
        key: &str,
        given: Option<&toml::Spanned<String>>,
        run: &str,
    ) -> Result<String> {
        let Some(given) = given else {
            return Ok(self.derive(run));
        };
        let name = given.get_ref().trim();
        let problem = if name.is_empty() {
            Some("is empty: leave it out to name it after its command".to_string())
        } else if name.chars().any(|c| c.is_control()) {
            Some("cannot hold control characters".to_string())
        } else if name.chars().count() > NAME_MAX {
            Some(format!("is longer than {NAME_MAX} characters"))
        } else if self.taken.iter().any(|n| n == name) {
            Some(format!(
                "`{name}` names another [[on_change]] or [[sidecar]] already"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(file.error_at(given.span(), &format!("{key}.name"), &problem));
        }
        self.taken.push(name.to_string());
        Ok(name.to_string())
    }

    /// The program a command runs, past launchers (`npx tailwindcss …` → `tailwindcss`,
    /// `go run github.com/a-h/templ/cmd/templ@latest generate` → `templ`), made unique
    /// with `-2`, `-3`….
    fn derive(&mut self, run: &str) -> String {
        let words =
            shlex::split(run).unwrap_or_else(|| run.split_whitespace().map(String::from).collect());
        let program = words
            .iter()
            .find(|w| !w.contains('=') && !w.starts_with('-') && !LAUNCHERS.contains(&w.as_str()))
            .or(words.first())
            .map(|w| {
                let base = w.rsplit('/').next().unwrap_or(w);
                let base = base.split('@').next().unwrap_or(base);
                base.chars()
                    .filter(|c| !c.is_control())
                    .take(NAME_MAX)
                    .collect::<String>()
            })
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "task".to_string());
        let mut name = program.clone();
        let mut n = 1;
        while self.taken.contains(&name) || self.reserved.contains(&name) {
            n += 1;
            name = format!("{program}-{n}");
        }
        self.taken.push(name.clone());
        name
    }
}

/// The longest name (it is shown in a column of the panel).
const NAME_MAX: usize = 24;

/// Words that start another program rather than being the tool.
const LAUNCHERS: &[&str] = &[
    "npx", "bunx", "pnpx", "pnpm", "yarn", "npm", "bun", "exec", "run", "env", "go", "tool", "uv",
    "uvx", "poetry", "python", "python3", "node", "deno", "sh", "bash", "cargo", "time", "nice",
];

/// The files a command line says it writes: the value of `-o`, `--output`, `--out`,
/// `--outfile`, `--outdir` and `--out-dir` (either `--flag value` or `--flag=value`),
/// and the target of a `>` or `>>` redirection. Relative to the project root, anchored
/// (`/static/app.css`), so they are globs for exactly that path; a directory is the
/// directory and all in it.
pub fn named_outputs(run: &str) -> Vec<String> {
    let words = match shlex::split(run) {
        Some(words) => words,
        None => run.split_whitespace().map(String::from).collect(),
    };
    let mut outputs = Vec::new();
    let mut take = |value: &str, dir: bool| {
        let value = value.trim().trim_start_matches("./");
        // Absolute, above the root or empty: not a path hotrun can name relative to it.
        if value.is_empty() || value.starts_with('/') || value.split('/').any(|p| p == "..") {
            return;
        }
        // A glob for exactly that path.
        let value = globset::escape(value.trim_end_matches('/'));
        outputs.push(if dir {
            format!("/{value}/")
        } else {
            format!("/{value}")
        });
    };
    // Sass names its output by position: `sass in.scss out.css`, `sass in.scss:out.css`.
    let sass = words.iter().position(|w| {
        matches!(
            w.rsplit('/').next(),
            Some("sass" | "node-sass" | "dart-sass")
        )
    });
    if let Some(at) = sass {
        let positional: Vec<&String> = words[at + 1..]
            .iter()
            .take_while(|w| !matches!(w.as_str(), "&&" | "||" | ";" | "|"))
            .filter(|w| !w.starts_with('-'))
            .collect();
        for word in &positional {
            if let Some((_, out)) = word.split_once(':') {
                take(out, !out.ends_with(".css"));
            }
        }
        if let [_, out] = positional.as_slice() {
            if !out.contains(':') {
                take(out, false);
            }
        }
    }
    let mut words = words.iter().peekable();
    let mut previous = "";
    while let Some(word) = words.next() {
        let word = word.as_str();
        // `set -o pipefail` is no output.
        let after_set = std::mem::replace(&mut previous, word) == "set";
        if let Some(target) = word.strip_prefix(">>").or_else(|| word.strip_prefix('>')) {
            match target {
                "" => {
                    if let Some(next) = words.next() {
                        take(next, false)
                    }
                }
                t if !t.starts_with('&') => take(t, false),
                _ => {}
            }
            continue;
        }
        for (flag, dir) in OUTPUT_FLAGS {
            if word == *flag && !after_set {
                if let Some(next) = words.peek() {
                    if !next.starts_with('-') {
                        take(next, *dir);
                        words.next();
                    }
                }
                break;
            }
            if let Some(value) = word.strip_prefix(flag).and_then(|v| v.strip_prefix('=')) {
                take(value, *dir);
                break;
            }
        }
    }
    outputs
}

/// Flags that name what a tool writes, and whether they name a directory.
const OUTPUT_FLAGS: &[(&str, bool)] = &[
    ("-o", false),
    ("--output", false),
    ("--out", false),
    ("--outfile", false),
    ("--out-file", false),
    ("--outdir", true),
    ("--out-dir", true),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_read_from_the_flags_and_redirections_tools_use() {
        assert_eq!(
            named_outputs("npx tailwindcss -i styles/app.css -o static/app.css --minify"),
            ["/static/app.css"]
        );
        assert_eq!(
            named_outputs("esbuild src/app.ts --bundle --outfile=./static/app.js"),
            ["/static/app.js"]
        );
        assert_eq!(
            named_outputs("esbuild src/*.ts --outdir=static/js/"),
            ["/static/js/"]
        );
        assert_eq!(
            named_outputs("sed 's/a/b/' styles/in.css > 'static/out put.css'"),
            ["/static/out put.css"]
        );
        assert_eq!(
            named_outputs("cat a >>static/log.txt 2>&1"),
            ["/static/log.txt"]
        );
        // Nothing hotrun could name: absolute, outside the root, a flag with no value.
        assert!(named_outputs("tool -o /tmp/x --output ../y --out -v").is_empty());
        assert!(named_outputs("templ generate").is_empty());
        assert_eq!(
            named_outputs("set -o pipefail; gen -o static/a.css"),
            ["/static/a.css"]
        );
        assert_eq!(
            named_outputs("npx sass styles/app.scss static/app.css --no-source-map"),
            ["/static/app.css"]
        );
        assert_eq!(
            named_outputs("sass --watch styles:static/css"),
            ["/static/css/"]
        );
    }

    #[test]
    fn names_come_from_the_program_past_its_launchers_and_are_unique() {
        let mut names = Names::default();
        assert_eq!(names.derive("npx tailwindcss -i a -o b"), "tailwindcss");
        assert_eq!(names.derive("npx tailwindcss -i c -o d"), "tailwindcss-2");
        assert_eq!(
            names.derive("go run github.com/a-h/templ/cmd/templ@latest generate"),
            "templ"
        );
        assert_eq!(
            names.derive("NODE_ENV=production ./node_modules/.bin/esbuild x"),
            "esbuild"
        );
        assert_eq!(names.derive("sass --watch styles:static"), "sass");
        assert_eq!(names.derive("sh"), "sh");
        // A name given anywhere in the file is steered clear of.
        let mut names = Names {
            reserved: vec!["templ".into()],
            ..Names::default()
        };
        assert_eq!(names.derive("templ generate"), "templ-2");
    }
}
