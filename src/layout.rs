//! The dependency rule of `src/README.md`, checked on the source itself: which folder may
//! use which, and no two files of one folder using each other, even through others. A
//! `use`, a path in code and a doc link all count; test code counts too, except that a
//! file's tests may use the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every folder (top-level module) and the ones it may use. `runtime` wires everything
/// together and nothing uses it but `main.rs`.
const ALLOWED: &[(&str, &[&str])] = &[
    ("text", &[]),
    ("core", &["text"]),
    ("config", &["core", "text"]),
    ("process", &["core", "text"]),
    ("build", &["process", "config", "core", "text"]),
    ("app", &["build", "process", "config", "core", "text"]),
    ("pipeline", &["build", "process", "config", "core", "text"]),
    ("watch", &["config", "core", "text"]),
    ("web", &["config", "core", "text"]),
    ("ui", &["config", "core", "text"]),
    ("commands", &["config", "core", "text"]),
    (
        "runtime",
        &[
            "app", "build", "commands", "config", "core", "pipeline", "process", "text", "ui",
            "watch", "web",
        ],
    ),
];

/// Files that only test others: they may use what they test.
const TEST_FILES: &[&str] = &["tests", "proptests", "layout"];

/// A source file and the module path it defines (`src/core/state/mod.rs` →
/// `["core", "state"]`).
struct Source {
    path: PathBuf,
    module: Vec<String>,
    /// The modules it declares in files of their own.
    children: Vec<String>,
    text: String,
}

fn sources(dir: &Path, module: &[String], out: &mut Vec<Source>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let mut inner = module.to_vec();
            inner.push(name);
            sources(&path, &inner, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let is_mod = matches!(name.as_str(), "mod" | "lib" | "main");
            let mut m = module.to_vec();
            if !is_mod {
                m.push(name);
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let children = if is_mod { declared(&text) } else { Vec::new() };
            out.push(Source {
                path,
                module: m,
                children,
                text,
            });
        }
    }
}

/// The names of `mod NAME;` lines: modules in files of their own.
fn declared(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l
                .trim_start()
                .strip_prefix("pub ")
                .unwrap_or(l.trim_start());
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

/// Code without comments and string literals, so a path in prose or in a message is not
/// an import. Doc comments stay: an intra-doc link is a real reference.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("///") || trimmed.starts_with("//!") {
            out.push_str(line);
        } else {
            let mut in_string = false;
            let mut escaped = false;
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        in_string = false;
                    }
                    continue;
                }
                if c == '"' {
                    in_string = true;
                    out.push_str("\"\"");
                    continue;
                }
                if c == '/' && chars.peek() == Some(&'/') {
                    break;
                }
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// The paths a use tree starting at `rest` names, each cut to its first [`DEPTH`]
/// segments: `{a::b::C, d}` → `[a, b, C]`, `[d]`.
fn use_tree(rest: &str) -> Vec<Vec<String>> {
    fn ident(s: &str) -> (&str, &str) {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        (&s[..end], &s[end..])
    }
    fn tree<'a>(s: &'a str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> &'a str {
        let s = s.trim_start();
        if let Some(inner) = s.strip_prefix('{') {
            let mut s = inner;
            loop {
                s = tree(s, prefix.clone(), out).trim_start();
                if let Some(r) = s.strip_prefix(',') {
                    s = r.trim_start();
                    if let Some(r) = s.strip_prefix('}') {
                        return r;
                    }
                } else {
                    return s.strip_prefix('}').unwrap_or(s);
                }
            }
        }
        let (name, rest) = ident(s);
        let mut path = prefix;
        if !name.is_empty() && name != "self" {
            path.push(name.to_string());
        }
        match rest.strip_prefix("::") {
            Some(r) if path.len() < DEPTH => tree(r, path, out),
            Some(r) => {
                out.push(path);
                skip_tree(r)
            }
            None => {
                out.push(path);
                rest
            }
        }
    }
    fn skip_tree(s: &str) -> &str {
        let mut depth = 0;
        for (i, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => return &s[i..],
                '}' => depth -= 1,
                ',' if depth == 0 => return &s[i..],
                c if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':' || c == '*') => {
                    return &s[i..]
                }
                _ => {}
            }
        }
        ""
    }
    let mut out = Vec::new();
    tree(rest, Vec::new(), &mut out);
    out
}

/// Every module path a file refers to, `super::` resolved.
fn references(source: &Source) -> BTreeSet<Vec<String>> {
    let code = code_of(&source.text);
    let mut found = BTreeSet::new();
    // An inline `mod tests` starts the file's own tests: `super` there is the file.
    let tests_at = code.find("\nmod tests {").unwrap_or(code.len());
    for (at, _) in code.match_indices("crate::") {
        if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        found.extend(use_tree(&code[at + "crate::".len()..]));
    }
    for (at, _) in code.match_indices("super::") {
        if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let base = if at > tests_at {
            source.module.clone()
        } else {
            source.module[..source.module.len().saturating_sub(1)].to_vec()
        };
        for tail in use_tree(&code[at + "super::".len()..]) {
            let mut path = base.clone();
            path.extend(tail);
            path.truncate(DEPTH);
            found.insert(path);
        }
    }
    for (at, _) in code.match_indices("self::") {
        if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        for tail in use_tree(&code[at + "self::".len()..]) {
            let mut path = source.module.clone();
            path.extend(tail);
            path.truncate(DEPTH);
            found.insert(path);
        }
    }
    // A child module named by its own name (`cargo::x` in `build/mod.rs`).
    for child in &source.children {
        let needle = format!("{child}::");
        for (at, _) in code.match_indices(&needle) {
            let before = &code[..at];
            if before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut path = source.module.clone();
            path.push(child.clone());
            path.truncate(DEPTH);
            found.insert(path);
        }
    }
    found
}

/// How deep a path is followed: deeper than any file of the tree.
const DEPTH: usize = 4;

/// The file a reference lands in: the longest start of `path` that is a module of its
/// own (`config::settings::watch::DEFAULT_POLL` → `config::settings::watch`).
fn unit(path: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_else(|| path[..path.len().min(1)].to_vec())
}

fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

#[test]
fn folders_use_only_the_folders_below_them_and_no_files_use_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    sources(&src, &[], &mut all);
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let modules: BTreeSet<Vec<String>> = all.iter().map(|s| s.module.clone()).collect();
    for source in &all {
        let Some(top) = source.module.first() else {
            continue; // lib.rs and main.rs declare and call; they may use anything
        };
        let is_test = source
            .module
            .last()
            .is_some_and(|m| TEST_FILES.contains(&m.as_str()));
        if is_test && source.module.len() == 1 {
            continue; // crate-wide tests
        }
        let Some(may) = allowed.get(top.as_str()) else {
            wrong.push(format!(
                "{} is in no folder of the rule",
                source.path.display()
            ));
            continue;
        };
        let from = source.module.join("::");
        for path in references(source) {
            let to = unit(&path, &modules);
            let Some(other) = to.first() else { continue };
            if to.len() == 1 && TEST_FILES.contains(&other.as_str()) {
                continue; // what every folder's tests share
            }
            if other != top {
                if !may.contains(&other.as_str()) {
                    wrong.push(format!(
                        "{} uses {}",
                        source.path.display(),
                        path.join("::")
                    ));
                }
            } else if !is_test && to.join("::") != from {
                edges.entry(from.clone()).or_default().insert(to.join("::"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "uses the rule forbids:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        cycle(&edges),
        None,
        "files of one folder that use each other; all uses: {edges:#?}"
    );
    // The rule itself has no cycle and names every folder there is.
    let folders: BTreeMap<String, BTreeSet<String>> = ALLOWED
        .iter()
        .map(|(f, may)| (f.to_string(), may.iter().map(|m| m.to_string()).collect()))
        .collect();
    assert_eq!(cycle(&folders), None);
}

#[test]
fn the_checker_sees_imports_in_every_shape() {
    let source = |module: &[&str], text: &str| Source {
        path: PathBuf::from("x.rs"),
        module: module.iter().map(|s| s.to_string()).collect(),
        children: declared(text),
        text: text.to_string(),
    };
    let refs = |s: &Source| -> Vec<String> { references(s).iter().map(|p| p.join("::")).collect() };
    let s = source(
        &["web", "proxy"],
        "use crate::{core::event::{Event, Effect}, text};\nuse super::hub::Hub;\n\
         /// See [`crate::ui::Printer`].\nfn f() { crate::config::settings::x(); }\n\
         // crate::runtime in a comment\nconst S: &str = \"crate::app\";\n",
    );
    assert_eq!(
        refs(&s),
        [
            "config::settings::x",
            "core::event::Effect",
            "core::event::Event",
            "text",
            "ui::Printer",
            "web::hub::Hub"
        ]
    );
    let parent = source(&["build"], "pub mod cargo;\nfn f() { cargo::x(); }\n");
    assert_eq!(refs(&parent), ["build::cargo"]);
    let own = source(&["watch"], "mod thread;\nuse self::thread::WatchThread;\n");
    assert_eq!(refs(&own), ["watch::thread::WatchThread"]);
    // A reference lands in the deepest module that is a file.
    let modules = BTreeSet::from([
        vec!["config".to_string()],
        vec!["config".to_string(), "settings".to_string()],
    ]);
    let path = |p: &str| p.split("::").map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        unit(&path("config::settings::Ui"), &modules),
        path("config::settings")
    );
    assert_eq!(unit(&path("config::Thing"), &modules), path("config"));
    let tests = source(
        &["core", "classify"],
        "fn a() {}\nmod tests {\n    use super::*;\n}\n",
    );
    assert_eq!(refs(&tests), ["core::classify"]);
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(cycle(&edges).is_some());
}

/// The files `src/README.md`'s table names, as paths under `src/`: each row's folder
/// (`` `core/` ``, or `` `src/` `` for the crate's own files) and the files in its last
/// cell.
fn mapped(readme: &str) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for row in readme.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // `| concern | folder | files |` rows: the folder cell is one `name/`.
        let [_, _, folder, names, _] = cells.as_slice() else {
            continue;
        };
        let Some(folder) = folder.strip_prefix('`').and_then(|f| f.strip_suffix("/`")) else {
            continue;
        };
        for name in names.split(',') {
            let Some(name) = name
                .trim()
                .strip_prefix('`')
                .and_then(|n| n.strip_suffix('`'))
            else {
                continue;
            };
            files.insert(match folder {
                "src" => name.to_string(),
                folder => format!("{folder}/{name}"),
            });
        }
    }
    files
}

#[test]
fn the_map_names_every_file() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    sources(&src, &[], &mut all);
    let tree: BTreeSet<String> = all
        .iter()
        .map(|s| {
            s.path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .to_string()
        })
        .collect();
    let readme = std::fs::read_to_string(src.join("README.md")).unwrap();
    let map = mapped(&readme);
    let missing: Vec<_> = tree.difference(&map).collect();
    let gone: Vec<_> = map.difference(&tree).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "src/README.md does not match the tree: not in the map {missing:?}; in the map but not there {gone:?}"
    );
    // Its rule is the rule the layout test checks.
    for (folder, may) in ALLOWED {
        let row = readme
            .lines()
            .find(|l| {
                // `| folder | may use |` rows.
                l.starts_with('|')
                    && l.split('|').count() == 4
                    && l.split('|')
                        .nth(1)
                        .is_some_and(|c| c.split(',').any(|f| f.trim() == format!("`{folder}`")))
            })
            .unwrap_or_else(|| panic!("src/README.md's rule has no row for `{folder}`"));
        let listed = row.split('|').nth(2).unwrap_or_default();
        let listed: BTreeSet<&str> = listed
            .split(',')
            .map(|f| f.trim().trim_matches('`'))
            .filter(|f| !f.is_empty() && *f != "—")
            .collect();
        let expected: BTreeSet<&str> = may.iter().copied().collect();
        if listed.contains("everything") {
            assert_eq!(*folder, "runtime", "only the runtime may use everything");
            continue;
        }
        assert_eq!(listed, expected, "src/README.md's rule for `{folder}`");
    }
}
