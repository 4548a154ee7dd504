//! Property tests of the parsers that take outside input: `.hotrun.toml` and the
//! settings made from it, the lines `cargo build` prints, the `path:line:col:`
//! locations in a build command's output, and the pages the reload tag goes into.
//!
//! `cargo test` runs a few hundred to a thousand cases of each; `PROPTEST_CASES=100000
//! cargo test proptests` runs longer. Each failure found is kept as a plain regression
//! test beside the code it was in.

use std::path::Path;

use clap::Parser;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;

use crate::build::cargo::{is_cargo_status, parse_dep_info, MessageCollector, RunTarget};
use crate::build::locations::locations;
use crate::config::cli::Cli;
use crate::config::file as config;
use crate::config::reference::{KEYS, SECTIONS};
use crate::config::settings;
use crate::text::strip_ansi;
use crate::web::inject::{inject_all, script_tag, Injector};

/// `cases` cases, unless `PROPTEST_CASES` asks for more (or fewer). Failures are not
/// saved to files: each one becomes a plain regression test.
fn cases(cases: u32) -> ProptestConfig {
    let config = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            config.cases
        } else {
            cases
        },
        failure_persistence: None,
        ..config
    }
}

/// A byte offset in `text` on a character boundary, picked by `index`.
fn boundary(text: &str, index: Index) -> usize {
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    offsets[index.index(offsets.len())]
}

// ---------------------------------------------------------------------------------
// `.hotrun.toml`: `config::parse`, then `settings::resolve`.

const CONFIG_PATH: &str = "site/.hotrun.toml";

// Values worth trying, good and bad, by what they are meant for. Every one with a `:`
// is an address (or probe) hotrun reads without looking a host name up, so no case
// waits on the network.
const DURATIONS: &[&str] = &[
    "30ms",
    "5s",
    "1.5s",
    "2m",
    "1h",
    "0",
    "9ms",
    "10ms",
    "1500us",
    "1µs",
    "",
    " ",
    ".",
    "1.2.3",
    "5 parsecs",
    "1e3s",
    "99999999999999999999h",
    "18446744073709551616ms",
    "9999999999999999999999999999s",
];
const ADDRESSES: &[&str] = &[
    "3000",
    ":3000",
    "127.0.0.1:3000",
    "localhost:3000",
    "localhost:99999",
    "0.0.0.0:80",
    "[::1]:8080",
    "::1",
    ":",
    "65536",
    "-1",
    "nope",
];
const PROBES: &[&str] = &[
    "tcp:3000",
    "tcp:127.0.0.1:1",
    "tcp:localhost:80",
    "tcp:",
    "http:http://127.0.0.1:3000/health",
    "http://127.0.0.1:3000/",
    "http:",
    "ftp:x",
];
const SIGNALS: &[&str] = &["TERM", "SIGTERM", "sigint", "15", "SIGSTOP", "SIGNOPE", "0"];
const GLOBS: &[&str] = &[
    "*.rs", "src/**", "static/", "/abs", "./x", "**", "[", "{a,b", "a{b", "[!]", "\\", "a/**/b",
];
const OTHER_WORDS: &[&str] = &[
    "restart",
    "queue",
    "never",
    "on-failure",
    "always",
    "auto",
    "panel",
    "plain",
    "json",
    "a,b",
    "a b",
    "é",
    "日本",
    "🦀",
    "x\ny",
    "tab\there",
];

/// A TOML string holding `s`, escaped as needed.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn words(list: &'static [&'static str]) -> BoxedStrategy<String> {
    select(list).prop_map(toml_str).boxed()
}

/// Any one TOML value but an array or a table.
fn scalar() -> BoxedStrategy<String> {
    prop_oneof![
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        select(&[0i64, 1, 9, 10, 15, 19, 3000, 65535, 65536, -1, -15][..])
            .prop_map(|n| n.to_string()),
        select(
            &[
                "1.5",
                "-0.0",
                "inf",
                "nan",
                "1e3",
                "1979-05-27T07:32:00Z",
                "'lit'"
            ][..]
        )
        .prop_map(String::from),
        words(DURATIONS),
        words(ADDRESSES),
        words(PROBES),
        words(SIGNALS),
        words(GLOBS),
        words(OTHER_WORDS),
        // No `:` here: see above.
        "[a-zA-Z0-9 ._/*{}!?,-]{0,12}".prop_map(|s| toml_str(&s)),
    ]
    .boxed()
}

fn array(item: BoxedStrategy<String>) -> BoxedStrategy<String> {
    vec(item, 0..4)
        .prop_map(|items| format!("[{}]", items.join(", ")))
        .boxed()
}

fn inline_table() -> BoxedStrategy<String> {
    let key = prop_oneof![
        "[A-Za-z_][A-Za-z0-9_]{0,5}",
        "\\PC{0,4}".prop_map(|k| toml_str(&k))
    ];
    vec((key, scalar()), 0..4)
        .prop_map(|pairs| {
            let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!("{{ {} }}", pairs.join(", "))
        })
        .boxed()
}

/// Any TOML value.
fn any_value() -> BoxedStrategy<String> {
    prop_oneof![4 => scalar(), 1 => array(scalar()), 1 => inline_table()].boxed()
}

/// A value of the kind `reference::KEYS` gives for a key, good or bad; now and then one
/// of any other kind.
fn value_for(kind: &'static str) -> BoxedStrategy<String> {
    let typed = if kind == "table" {
        inline_table()
    } else if kind == "bool" {
        any::<bool>().prop_map(|b| b.to_string()).boxed()
    } else if kind.contains("duration") {
        prop_oneof![
            words(DURATIONS),
            (0..=i64::MAX).prop_map(|n| n.to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
        ]
        .boxed()
    } else if kind.contains("address") {
        let one = prop_oneof![words(ADDRESSES), any::<i64>().prop_map(|n| n.to_string())].boxed();
        if kind.starts_with("list") {
            array(one)
        } else {
            one
        }
    } else if kind.contains("tcp:") {
        words(PROBES)
    } else if kind == "signal" {
        prop_oneof![words(SIGNALS), any::<i64>().prop_map(|n| n.to_string())].boxed()
    } else if kind.contains("glob") {
        array(words(GLOBS))
    } else if kind.contains('"') {
        // The choices, as written in the kind: `"restart" or "queue"`.
        let choices: Vec<&'static str> = kind.split('"').skip(1).step_by(2).collect();
        prop_oneof![select(choices).prop_map(toml_str), words(OTHER_WORDS)].boxed()
    } else if kind.starts_with("list") || kind.contains("or list") {
        let one = prop_oneof![
            words(OTHER_WORDS),
            "[a-z./ ,]{0,8}".prop_map(|s| toml_str(&s))
        ];
        prop_oneof![array(one.clone().boxed()), one].boxed()
    } else {
        prop_oneof![
            words(OTHER_WORDS),
            "[a-z./ ,]{0,8}".prop_map(|s| toml_str(&s))
        ]
        .boxed()
    };
    prop_oneof![8 => typed, 1 => any_value()].boxed()
}

/// A config file as a user writes one: sections in order, some of their keys, values of
/// the right kind or not.
fn config_file() -> BoxedStrategy<String> {
    let sections: Vec<BoxedStrategy<String>> = SECTIONS
        .iter()
        .map(|(section, _)| {
            let keys: Vec<BoxedStrategy<Option<String>>> = KEYS
                .iter()
                .filter(|k| k.section == *section)
                .map(|k| {
                    prop::option::weighted(0.2, value_for(k.kind))
                        .prop_map(move |v| v.map(|v| format!("{} = {v}", k.name)))
                        .boxed()
                })
                .collect();
            (any::<bool>(), keys)
                .prop_map(move |(present, lines)| {
                    if !present {
                        return String::new();
                    }
                    let mut out = format!("[{section}]\n");
                    for line in lines.into_iter().flatten() {
                        out.push_str(&line);
                        out.push('\n');
                    }
                    out
                })
                .boxed()
        })
        .collect();
    sections.prop_map(|s| s.concat()).boxed()
}

/// Lines in any order: headers (some misspelt or doubled), keys of any section
/// (dotted or not, some misspelt), comments.
fn config_lines() -> BoxedStrategy<String> {
    let section = select(SECTIONS.iter().map(|(s, _)| *s).collect::<Vec<_>>());
    let key = select(KEYS.iter().map(|k| (k.section, k.name)).collect::<Vec<_>>());
    let line = prop_oneof![
        2 => section.clone().prop_map(|s| format!("[{s}]")),
        1 => section.clone().prop_map(|s| format!("[[{s}]]")),
        1 => (section, any::<Index>()).prop_map(|(s, i)| {
            let mut s = s.to_string();
            s.remove(i.index(s.len()));
            format!("[{s}]")
        }),
        6 => (key.clone(), any_value()).prop_map(|((_, k), v)| format!("{k} = {v}")),
        2 => (key.clone(), any_value()).prop_map(|((s, k), v)| format!("{s}.{k} = {v}")),
        1 => (key, any::<Index>(), any_value()).prop_map(|((_, k), i, v)| {
            let mut k = k.to_string();
            let c = k.remove(i.index(k.len()));
            k.push(c);
            format!("{k} = {v}")
        }),
        1 => select(&["", "# a comment", "   ", "# é ☕", "\t"][..]).prop_map(String::from),
    ];
    vec(line, 0..12)
        .prop_map(|lines| lines.join("\n") + "\n")
        .boxed()
}

/// Bits of TOML syntax, key names and values, in any order.
fn toml_soup() -> BoxedStrategy<String> {
    let mut tokens: Vec<String> = [
        "[",
        "]",
        "[[",
        "]]",
        "=",
        " = ",
        "\"",
        "'",
        "\"\"\"",
        "'''",
        "\n",
        "\r\n",
        "#",
        ",",
        "{",
        "}",
        ".",
        " ",
        "\t",
        "\\",
        "\\u",
        "\\U0010FFFF",
        "1",
        "-",
        "+",
        "_",
        "0x1F",
        "true",
        "false",
        "inf",
        "1979-05-27",
        "T07:32:00",
        "é",
        "\u{0}",
        "\u{7f}",
        "\r",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    tokens.extend(SECTIONS.iter().map(|(s, _)| s.to_string()));
    tokens.extend(KEYS.iter().map(|k| k.name.to_string()));
    for list in [DURATIONS, ADDRESSES, PROBES, SIGNALS, GLOBS, OTHER_WORDS] {
        tokens.extend(list.iter().map(|w| toml_str(w)));
    }
    vec(select(tokens), 0..40).prop_map(|t| t.concat()).boxed()
}

/// `doc`, sometimes with CRLF line ends, a stray character put in, or cut short (now
/// and then right after an `=`, as in a file being typed).
fn damaged(doc: BoxedStrategy<String>) -> BoxedStrategy<String> {
    let noise = select(
        &[
            "\"", "'", "=", "[", "]", "{", "}", "#", "\n", "\\", ",", ".", "é", "\u{0}", "\r",
            "\"\"\"", "x", " ",
        ][..],
    );
    (doc, any::<bool>(), 0..8u8, any::<Index>(), noise)
        .prop_map(|(doc, crlf, damage, at, noise)| {
            let mut doc = if crlf { doc.replace('\n', "\r\n") } else { doc };
            let cut = boundary(&doc, at);
            match damage {
                0 => doc.insert_str(cut, noise),
                1 => doc.truncate(cut),
                2 => {
                    let equals: Vec<usize> = doc.match_indices('=').map(|(i, _)| i).collect();
                    if !equals.is_empty() {
                        doc.truncate(equals[at.index(equals.len())] + 1);
                    }
                }
                _ => {}
            }
            doc
        })
        .boxed()
}

/// `message` is `site/.hotrun.toml:LINE:COLUMN: ` (a place inside `text`) and then says
/// something.
fn assert_located(message: &str, text: &str) -> Result<(), TestCaseError> {
    let place = message
        .strip_prefix(CONFIG_PATH)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|rest| {
            let (line, rest) = rest.split_once(':')?;
            let (column, rest) = rest.split_once(':')?;
            let said = rest.starts_with(' ') && !rest.trim().is_empty();
            said.then(|| Some((line.parse::<usize>().ok()?, column.parse::<usize>().ok()?)))?
        });
    let Some((line, column)) = place else {
        let problem = format!("no FILE:LINE:COLUMN: and a message in {message:?}");
        return Err(TestCaseError::fail(problem));
    };
    let lines: Vec<&str> = text.split('\n').collect();
    prop_assert!(
        (1..=lines.len()).contains(&line),
        "line {line} of {message:?}"
    );
    let width = lines[line - 1].chars().count();
    prop_assert!(
        (1..=width + 1).contains(&column),
        "column {column} of {message:?}"
    );
    Ok(())
}

/// `config::parse`, then `settings::resolve` on what parsed: both never panic, and
/// every error points at a line and column of the file.
fn check_config(text: &str) -> Result<(), TestCaseError> {
    let loaded = match config::parse(Path::new(CONFIG_PATH), text.to_string()) {
        Ok(loaded) => loaded,
        Err(e) => return assert_located(&format!("{e:#}"), text),
    };
    // The one error about a key left out rather than a value written: a build
    // command replaces Cargo, so the app needs a run command.
    let needs_run_cmd = loaded.config.build.cmd.is_some() && loaded.config.run.cmd.is_none();
    let cli = Cli::try_parse_from(["hotrun"]).expect("no arguments parse");
    let site = Path::new("/site").to_path_buf();
    match settings::resolve(&cli, site.clone(), Some(site), Some(loaded)) {
        Ok(_) => {}
        Err(e) if needs_run_cmd && format!("{e:#}").contains("no run command") => {}
        Err(e) => assert_located(&format!("{e:#}"), text)?,
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn config_from_any_text(text in prop_oneof![any::<String>(), "(?s).{0,100}"]) {
        // Any text at all: parsed only (settings are for files in TOML's shape).
        if let Err(e) = config::parse(Path::new(CONFIG_PATH), text.clone()) {
            assert_located(&format!("{e:#}"), &text)?;
        }
    }

    #[test]
    fn config_from_toml_soup(text in damaged(toml_soup())) {
        check_config(&text)?;
    }

    #[test]
    fn config_from_lines_of_known_keys(text in damaged(config_lines())) {
        check_config(&text)?;
    }

    #[test]
    fn config_files_as_written(text in damaged(config_file())) {
        check_config(&text)?;
    }
}

// ---------------------------------------------------------------------------------
// `cargo build --message-format=json-diagnostic-rendered-ansi`: one stdout line at a
// time through `MessageCollector::line`; stderr lines through `is_cargo_status`;
// dep-info files through `parse_dep_info`.

/// Real lines cargo printed for the app `webapp` in `/w/webapp`.
const CARGO_MESSAGES: &[&str] = &[
    // warning, with a child note and a suggestion
    r##"{"reason":"compiler-message","package_id":"path+file:///w/webapp#webapp@0.1.0","manifest_path":"/w/webapp/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"webapp","src_path":"/w/webapp/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true},"message":{"$message_type":"diagnostic","message":"unused variable: `unused`","code":{"code":"unused_variables","explanation":null},"level":"warning","spans":[{"file_name":"src/main.rs","byte_start":20,"byte_end":26,"line_start":2,"line_end":2,"column_start":9,"column_end":15,"is_primary":true,"text":[{"text":"    let unused = 5;","highlight_start":9,"highlight_end":15}],"label":null,"suggested_replacement":null,"suggestion_applicability":null,"expansion":null}],"children":[{"message":"`#[warn(unused_variables)]` (part of `#[warn(unused)]`) on by default","code":null,"level":"note","spans":[],"children":[],"rendered":null},{"message":"if this is intentional, prefix it with an underscore","code":null,"level":"help","spans":[{"file_name":"src/main.rs","byte_start":20,"byte_end":26,"line_start":2,"line_end":2,"column_start":9,"column_end":15,"is_primary":true,"text":[{"text":"    let unused = 5;","highlight_start":9,"highlight_end":15}],"label":null,"suggested_replacement":"_unused","suggestion_applicability":"MachineApplicable","expansion":null}],"children":[],"rendered":null}],"rendered":"\u001b[1m\u001b[33mwarning\u001b[0m\u001b[1m: unused variable: `unused`\u001b[0m\n \u001b[1m\u001b[94m--> \u001b[0msrc/main.rs:2:9\n  \u001b[1m\u001b[94m|\u001b[0m\n\u001b[1m\u001b[94m2\u001b[0m \u001b[1m\u001b[94m|\u001b[0m     let unused = 5;\n  \u001b[1m\u001b[94m|\u001b[0m         \u001b[1m\u001b[33m^^^^^^\u001b[0m \u001b[1m\u001b[33mhelp: if this is intentional, prefix it with an underscore: `_unused`\u001b[0m\n  \u001b[1m\u001b[94m|\u001b[0m\n  \u001b[1m\u001b[94m= \u001b[0m\u001b[1mnote\u001b[0m: `#[warn(unused_variables)]` (part of `#[warn(unused)]`) on by default\n\n"}}"##,
    // error with an explanation
    r##"{"reason":"compiler-message","package_id":"path+file:///w/webapp#webapp@0.1.0","manifest_path":"/w/webapp/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"webapp","src_path":"/w/webapp/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true},"message":{"$message_type":"diagnostic","message":"mismatched types","code":{"code":"E0308","explanation":"Expected type did not match the received type.\n\nErroneous code examples:\n\n```compile_fail,E0308\nfn plus_one(x: i32) -> i32 {\n    x + 1\n}\n\nplus_one(\"Not a number\");\n//       ^^^^^^^^^^^^^^ expected `i32`, found `&str`\n\nif \"Not a bool\" {\n// ^^^^^^^^^^^^ expected `bool`, found `&str`\n}\n\nlet x: f32 = \"Not a float\";\n//     ---   ^^^^^^^^^^^^^ expected `f32`, found `&str`\n//     |\n//     expected due to this\n```\n\nThis error occurs when an expression was used in a place where the compiler\nexpected an expression of a different type. It can occur in several cases, the\nmost common being when calling a function and passing an argument which has a\ndifferent type than the matching type in the function declaration.\n"},"level":"error","spans":[{"file_name":"src/main.rs","byte_start":29,"byte_end":32,"line_start":2,"line_end":2,"column_start":18,"column_end":21,"is_primary":true,"text":[{"text":"    let n: u32 = \"x\";","highlight_start":18,"highlight_end":21}],"label":"expected `u32`, found `&str`","suggested_replacement":null,"suggestion_applicability":null,"expansion":null},{"file_name":"src/main.rs","byte_start":23,"byte_end":26,"line_start":2,"line_end":2,"column_start":12,"column_end":15,"is_primary":false,"text":[{"text":"    let n: u32 = \"x\";","highlight_start":12,"highlight_end":15}],"label":"expected due to this","suggested_replacement":null,"suggestion_applicability":null,"expansion":null}],"children":[],"rendered":"\u001b[1m\u001b[91merror[E0308]\u001b[0m\u001b[1m: mismatched types\u001b[0m\n \u001b[1m\u001b[94m--> \u001b[0msrc/main.rs:2:18\n  \u001b[1m\u001b[94m|\u001b[0m\n\u001b[1m\u001b[94m2\u001b[0m \u001b[1m\u001b[94m|\u001b[0m     let n: u32 = \"x\";\n  \u001b[1m\u001b[94m|\u001b[0m            \u001b[1m\u001b[94m---\u001b[0m   \u001b[1m\u001b[91m^^^\u001b[0m \u001b[1m\u001b[91mexpected `u32`, found `&str`\u001b[0m\n  \u001b[1m\u001b[94m|\u001b[0m            \u001b[1m\u001b[94m|\u001b[0m\n  \u001b[1m\u001b[94m|\u001b[0m            \u001b[1m\u001b[94mexpected due to this\u001b[0m\n\n"}}"##,
    // the closing summary
    r##"{"reason":"compiler-message","package_id":"path+file:///w/webapp#webapp@0.1.0","manifest_path":"/w/webapp/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"webapp","src_path":"/w/webapp/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true},"message":{"$message_type":"diagnostic","message":"Some errors have detailed explanations: E0308, E0425.","code":null,"level":"failure-note","spans":[],"children":[],"rendered":"\u001b[1mSome errors have detailed explanations: E0308, E0425.\u001b[0m\n"}}"##,
    // the binary's artifact
    r##"{"reason":"compiler-artifact","package_id":"path+file:///w/webapp#webapp@0.1.0","manifest_path":"/w/webapp/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"webapp","src_path":"/w/webapp/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":false},"features":[],"filenames":["/w/webapp/target/debug/webapp"],"executable":"/w/webapp/target/debug/webapp","fresh":false}"##,
    // a build script's output (non-ASCII)
    r##"{"reason":"build-script-executed","package_id":"path+file:///w/webapp#webapp@0.1.0","linked_libs":[],"linked_paths":[],"cfgs":[],"env":[["GREETING","héllo"]],"out_dir":"/w/webapp/target/debug/build/webapp-a8558ddaceae02c0/out"}"##,
    // the end
    r##"{"reason":"compiler-message","package_id":"path+file:///w/webapp#webapp@0.1.0","manifest_path":"/w/webapp/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"webapp","src_path":"/w/webapp/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true},"message":{"$message_type":"diagnostic","message":"For more information about an error, try `rustc --explain E0308`.","code":null,"level":"failure-note","spans":[],"children":[],"rendered":"\u001b[1mFor more information about an error, try `rustc --explain E0308`.\u001b[0m\n"}}"##,
];

const WORKSPACE: &str = "/w/webapp";

/// One stdout line fed to a fresh collector: what hotrun shows, and what it learnt.
fn feed(line: &str) -> (Option<String>, MessageCollector) {
    let mut collector = MessageCollector::default();
    let target = RunTarget::Bin("webapp".into());
    let shown = collector.line(line, Path::new(WORKSPACE), &target);
    (shown, collector)
}

/// How a line that is not one of cargo's messages is shown: as it is, unless blank.
fn as_text(line: &str) -> Option<String> {
    (!line.trim().is_empty()).then(|| line.to_string())
}

/// A line that is no cargo message is shown unchanged and teaches nothing; one that is
/// gives at most one diagnostic, shown as cargo rendered it.
fn check_cargo_line(line: &str) -> Result<(), TestCaseError> {
    let (shown, collector) = feed(line);
    if serde_json::from_str::<cargo_metadata::Message>(line).is_err() {
        prop_assert_eq!(shown, as_text(line));
        prop_assert!(collector.diagnostics.is_empty());
        prop_assert!(collector.executable.is_none());
        return Ok(());
    }
    prop_assert!(collector.diagnostics.len() <= 1);
    match collector.diagnostics.first() {
        Some(d) => prop_assert_eq!(shown.as_deref(), Some(d.rendered.trim_end())),
        None => prop_assert_eq!(shown, None),
    }
    Ok(())
}

#[test]
fn whole_cargo_messages() {
    let shown: Vec<_> = CARGO_MESSAGES.iter().map(|m| feed(m)).collect();
    let diagnostic = |i: usize| {
        let d = &shown[i].1.diagnostics[0];
        (d.level.as_str(), d.file.as_deref(), d.line, d.column)
    };
    assert_eq!(
        diagnostic(0),
        ("warning", Some("src/main.rs"), Some(2), Some(9))
    );
    assert_eq!(
        diagnostic(1),
        ("error", Some("src/main.rs"), Some(2), Some(18))
    );
    assert!(shown[0].0.as_deref().unwrap().contains("unused variable"));
    assert!(shown[1].0.as_deref().unwrap().contains("E0308"));
    // The closing summary, the artifact, the build script and the end show nothing.
    for (text, collector) in &shown[2..] {
        assert_eq!(text, &None);
        assert!(collector.diagnostics.is_empty());
    }
    assert_eq!(
        shown[3].1.executable.as_deref(),
        Some(Path::new("/w/webapp/target/debug/webapp"))
    );
}

#[test]
fn every_cut_of_a_cargo_message_is_kept_as_text() {
    // A line cut short (a cargo killed mid-write) is no message: it is shown as it is,
    // never lost, and counts as no diagnostic.
    for message in CARGO_MESSAGES {
        for (at, _) in message.char_indices() {
            let cut = &message[..at];
            let (shown, collector) = feed(cut);
            assert_eq!(shown, as_text(cut), "cut at {at}");
            assert!(collector.diagnostics.is_empty() && collector.executable.is_none());
        }
    }
}

/// A compiler message like `CARGO_MESSAGES[1]` with the given fields.
fn compiler_message(
    message: &str,
    level: &str,
    file: &str,
    (line, column): (u64, u64),
    rendered: Option<&str>,
) -> String {
    let mut json: serde_json::Value = serde_json::from_str(CARGO_MESSAGES[1]).unwrap();
    let m = &mut json["message"];
    m["message"] = message.into();
    m["level"] = level.into();
    m["rendered"] = rendered.into();
    let span = &mut m["spans"][0];
    span["file_name"] = file.into();
    span["line_start"] = line.into();
    span["column_start"] = column.into();
    json.to_string()
}

/// A line of cargo's JSON with part of it replaced: still JSON-ish, rarely a message.
fn mangled_cargo_message() -> impl Strategy<Value = String> {
    let insert = prop_oneof![
        select(&["\"", "{", "}", "[", "]", ",", ":", "null", "\\", "\\u", "1e999", "-", "é"][..])
            .prop_map(String::from),
        "\\PC{0,4}",
    ];
    (select(CARGO_MESSAGES), any::<Index>(), 0..8usize, insert).prop_map(
        |(message, at, removed, insert)| {
            let from = boundary(message, at);
            let rest = &message[from..];
            let to = from
                + rest
                    .char_indices()
                    .nth(removed)
                    .map_or(rest.len(), |(i, _)| i);
            format!("{}{insert}{}", &message[..from], &message[to..])
        },
    )
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn cargo_lines_of_any_text(line in prop_oneof![any::<String>(), "(?s).{0,80}"]) {
        check_cargo_line(&line)?;
    }

    #[test]
    fn cargo_lines_of_any_bytes(bytes in vec(any::<u8>(), 0..200)) {
        // As the line reader makes them: invalid UTF-8 replaced.
        check_cargo_line(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn cargo_messages_cut_short(message in select(CARGO_MESSAGES), at in any::<Index>()) {
        let cut = &message[..boundary(message, at)];
        check_cargo_line(cut)?;
        if cut.len() < message.len() {
            prop_assert_eq!(feed(cut).0, as_text(cut));
        }
    }

    #[test]
    fn cargo_messages_mangled(line in mangled_cargo_message()) {
        check_cargo_line(&line)?;
    }

    #[test]
    fn compiler_messages_of_any_content(
        message in "x\\PC{0,20}\\.",
        level in select(&["error", "warning", "note", "help", "failure-note", "error: internal compiler error"][..]),
        file in prop_oneof![
            "src/[a-z]{1,8}\\.rs",
            "/w/webapp/[a-z/]{1,12}\\.rs",
            "/elsewhere/[a-z]{1,5}\\.rs",
            "\\PC{0,12}",
        ],
        position in (any::<u64>(), any::<u64>()),
        rendered in prop::option::of("(?s).{0,40}"),
    ) {
        let line = compiler_message(&message, level, &file, position, rendered.as_deref());
        let (shown, collector) = feed(&line);
        let (shown, d) = (shown.unwrap(), &collector.diagnostics[0]);
        prop_assert_eq!(&shown, rendered.as_deref().unwrap_or(&message).trim_end());
        prop_assert!(["error", "warning", "note", "help"].contains(&d.level.as_str()));
        prop_assert_eq!(&d.message, &message);
        // The file, relative to the workspace when it is inside it.
        let named = d.file.as_deref().unwrap();
        prop_assert_eq!(Path::new(WORKSPACE).join(named), Path::new(WORKSPACE).join(&file));
        prop_assert_eq!(Path::new(named).is_absolute(), file.starts_with('/') && !file.starts_with("/w/webapp/"));
        prop_assert_eq!((d.line, d.column), (Some(position.0 as u32), Some(position.1 as u32)));
    }

    #[test]
    fn cargo_status_lines_in_colour_or_not(
        indent in "[ ]{0,12}",
        word in select(&["Compiling", "Finished", "Checking", "Running", "Blocking", "Downloaded", "error:", "warning:", "Compile", "thread"][..]),
        rest in "\\PC{0,30}",
        colour in select(&["\x1b[1m\x1b[32m", "\x1b[0;32m", "\x1b]8;;x\x07", "\x1b[K"][..]),
    ) {
        let plain = format!("{indent}{word} {rest}");
        let coloured = format!("{indent}{colour}{word}\x1b[0m {rest}");
        prop_assert_eq!(strip_ansi(&coloured), plain.clone());
        prop_assert_eq!(is_cargo_status(&plain), is_cargo_status(&coloured));
        if matches!(word, "Compiling" | "Finished" | "Checking" | "Running" | "Blocking" | "Downloaded") {
            prop_assert!(is_cargo_status(&plain));
        }
    }

    #[test]
    fn cargo_status_of_any_text(line in prop_oneof![any::<String>(), "(?s).{0,80}"]) {
        is_cargo_status(&line);
    }

    #[test]
    fn dep_info_of_any_text(text in prop_oneof![any::<String>(), "(?s)[a-z/.: \\\\\n]{0,120}"]) {
        let deps = parse_dep_info(&text);
        prop_assert!(deps.windows(2).all(|w| w[0] < w[1]), "sorted, without repeats");
        prop_assert!(deps.iter().all(|d| !d.as_os_str().is_empty()));
    }

    #[test]
    fn dep_info_as_cargo_writes_it(
        target in "/w/target/debug/[a-z]{1,8}",
        deps in vec("/?[a-zA-Z0-9._é日 -]{1,8}(/[a-zA-Z0-9._é日 -]{1,8}){0,3}", 0..8),
    ) {
        // `target: dep dep…`, spaces escaped, then an empty rule for every dep.
        let escaped: Vec<String> = deps.iter().map(|d| d.replace(' ', "\\ ")).collect();
        let mut text = format!("{target}: {}\n\n", escaped.join(" "));
        for d in &escaped {
            text.push_str(&format!("{d}:\n"));
        }
        let mut want: Vec<std::path::PathBuf> = deps.iter().map(Into::into).collect();
        want.sort();
        want.dedup();
        prop_assert_eq!(parse_dep_info(&text), want);
    }
}

// ---------------------------------------------------------------------------------
// A build command's output: `builder::locations`.

/// What `locations` should find in one line, said plainly: the line's first word (ANSI
/// colours aside) is `FILE:LINE:` or `FILE:LINE:COLUMN:`, with numbers in digits and a
/// file that looks like one (a `.` or a `/` in it, and a name left after `./`).
fn expected_location(raw: &str) -> Option<(String, u32, Option<u32>, String, String)> {
    let plain = strip_ansi(raw);
    let trimmed = plain.trim_start();
    let word = trimmed.split(char::is_whitespace).next()?;
    let number = |s: &str| {
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| s.parse::<u32>().ok()).flatten()
    };
    let parts: Vec<&str> = word.split(':').collect();
    let (file, line, column) = match parts[..] {
        [file, line, ""] => (file, number(line)?, None),
        [file, line, column, ""] => (file, number(line)?, Some(number(column)?)),
        _ => return None,
    };
    let name = file.trim_start_matches("./");
    if !(file.contains('.') || file.contains('/')) || name.is_empty() {
        return None;
    }
    let message = trimmed[word.len()..].trim().to_string();
    let lower = message.to_ascii_lowercase();
    let level = ["warning", "note"]
        .into_iter()
        .find(|l| lower.starts_with(l))
        .unwrap_or("error");
    Some((name.to_string(), line, column, level.to_string(), message))
}

/// A line a compiler might print, or nearly: `FILE:LINE:COL: message`, with colours,
/// odd numbers, odd files, a colon too many or too few.
fn build_output_line() -> impl Strategy<Value = String> {
    let file = prop_oneof![
        "[a-z]{1,6}\\.(c|go|zig|ts)",
        "(\\./){0,2}[a-z/.]{0,8}",
        "[a-zA-Z0-9./_é -]{0,10}",
        select(&["http", "", ".", "./", "C", "a.c:1"][..]).prop_map(String::from),
    ];
    let number = prop_oneof![
        "[0-9]{1,4}",
        "0[0-9]{1,3}",
        "\\+[0-9]{1,3}",
        "-[0-9]",
        "[0-9]{10,12}",
        select(&["", "x", "4294967295", "4294967296"][..]).prop_map(String::from),
    ];
    let colour = select(&["", "\x1b[1m", "\x1b[31m", "\x1b]8;;file:///x\x07", "\x1b"][..]);
    let end = select(&[":", "", "::", ": ", ":x", ":\x1b[0m"][..]);
    let message = select(
        &[
            "",
            " error: expected ';'",
            " Warning: unused",
            "note: see",
            " \x1b[31merror\x1b[0m: x",
            "\tundefined: x",
            " a:1: b",
        ][..],
    );
    (
        select(&["", " ", "  ", "\t"][..]),
        colour,
        file,
        number.clone(),
        prop::option::of(number),
        end,
        message,
    )
        .prop_map(|(indent, colour, file, line, column, end, message)| {
            let column = column.map(|c| format!(":{c}")).unwrap_or_default();
            format!("{indent}{colour}{file}:{line}{column}{end}{message}")
        })
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn build_output_locations(
        lines in vec(prop_oneof![
            3 => build_output_line(),
            1 => "\\PC{0,30}",
            1 => "(?s).{0,30}",
        ], 0..8),
        newline in select(&["\n", "\r\n"][..]),
    ) {
        let text = lines.join(newline);
        let found = locations(&text);
        let want: Vec<_> = text.lines().filter_map(|l| expected_location(l).map(|e| (l, e))).collect();
        prop_assert_eq!(found.len(), want.len(), "{:?}", found);
        for (d, (raw, (file, line, column, level, message))) in found.iter().zip(want) {
            prop_assert_eq!(&d.rendered, raw);
            prop_assert_eq!(d.file.as_deref(), Some(file.as_str()));
            prop_assert_eq!((d.line, d.column), (Some(line), column));
            prop_assert_eq!((&d.level, &d.message), (&level, &message));
            // The file and numbers are there in the line, as written.
            let plain = strip_ansi(raw);
            let named = format!("{file}:");
            prop_assert!(!file.is_empty() && plain.contains(&named));
            let after = &plain[plain.find(&named).unwrap() + named.len()..];
            let numbers: Vec<u32> = after.split(':').take(if column.is_some() { 2 } else { 1 })
                .map(|n| n.parse().unwrap()).collect();
            prop_assert_eq!(numbers, [Some(line), column].into_iter().flatten().collect::<Vec<_>>());
        }
    }

    #[test]
    fn lines_without_a_location_give_nothing(text in "(?s)[^:]{0,80}|[a-z./ ]{0,10}:[a-z ]{0,10}(:[a-z ]*)?") {
        // No colon, or none followed by a number: no `path:line:` shape.
        prop_assert!(locations(&text).is_empty());
    }
}

// ---------------------------------------------------------------------------------
// Pages the reload tag goes into: `Injector`, `inject_all`, `script_tag`.

/// Pieces of pages: markers, places for the tag, raw text and comments that hide them,
/// near misses, pieces cut short, the tag itself, and text.
const HTML_PIECES: &[&str] = &[
    "<!doctype html>",
    "<!DOCTYPE html>",
    "<html>",
    "<html lang=\"en\">",
    "<HTML>",
    "</html>",
    "<head>",
    "<head >",
    "</head>",
    "</HEAD>",
    "</head\n>",
    "</head >",
    "<body>",
    "<body class=x>",
    "</body>",
    "</BODY >",
    "<header>",
    "</header>",
    "<headx>",
    "</headx>",
    "<bodyguard>",
    "<script>",
    "</script>",
    "<script type=module>",
    "<scripts>",
    "</script >",
    "<style>",
    "</style>",
    "<textarea>",
    "</textarea>",
    "<title>",
    "</TITLE>",
    "<!--",
    "-->",
    "<!-->",
    "<!--->",
    "--",
    "<!",
    "<",
    ">",
    "/",
    "</",
    "</he",
    "</bo",
    "<!doc",
    "<scr",
    "<script src=\"/__hotrun/client.js\"></script>",
    "<script src=\"/__hotrun/client.js\"",
    "<SCRIPT SRC=\"/__hotrun/client.js\" data-hotrun=\"old\">",
    "<p>",
    "</p>",
    "a < b",
    "&lt;",
    "x",
    " ",
    "\n",
    "é",
    "日本",
    "☕",
    "🦀",
];

fn html_page() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        8 => select(HTML_PIECES).prop_map(|p| p.as_bytes().to_vec()),
        1 => "[ -~]{0,6}".prop_map(String::into_bytes),
        1 => "\\PC{0,3}".prop_map(String::into_bytes),
        // Not always UTF-8.
        1 => vec(any::<u8>(), 0..4),
    ];
    vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// The tag for any nonce and app id, as the proxy makes it.
fn reload_tag() -> impl Strategy<Value = Vec<u8>> {
    (prop::option::of("[A-Za-z0-9+/=_\"<> -]{0,8}"), "\\PC{0,8}")
        .prop_map(|(nonce, id)| script_tag(nonce.as_deref(), &id))
}

/// `body` cut at `cuts` (empty chunks included).
fn chunks<'a>(body: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for end in at.into_iter().chain([body.len()]) {
        out.push(&body[start..end]);
        start = end;
    }
    out
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// The longest the injector holds back: a marker or the tag's start, cut by a chunk.
const MAX_HELD: usize = "<script src=\"/__hotrun/client.js\"".len();

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn streamed_pages_get_the_tag_once(
        body in html_page(),
        cuts in vec(any::<Index>(), 0..6),
        tag in reload_tag(),
    ) {
        let whole = inject_all(&tag, &body, false);
        let mut injector = Injector::new(tag.clone());
        let (mut out, mut fed) = (Vec::new(), 0);
        for chunk in chunks(&body, &cuts) {
            out.extend(injector.push(chunk));
            fed += chunk.len();
            // Only a few bytes are ever held back.
            let tag_len = if injector.injected() { tag.len() } else { 0 };
            prop_assert!(out.len() - tag_len + MAX_HELD >= fed);
        }
        out.extend(injector.finish());
        // Streamed in any chunks, the page is what it is whole.
        prop_assert_eq!(&out, whole.as_ref().unwrap_or(&body));
        prop_assert_eq!(injector.injected(), whole.is_some());
        if let Some(out) = whole {
            // One tag more, and taking it out gives the page back byte for byte.
            prop_assert_eq!(count(&out, &tag), count(&body, &tag) + 1);
            let back = (0..=out.len() - tag.len()).any(|at| {
                out[at..].starts_with(&tag)
                    && out[..at].iter().chain(&out[at + tag.len()..]).eq(body.iter())
            });
            prop_assert!(back, "the tag is not one insertion");
        }
        // Without a document marker anywhere, a body is a fragment.
        let lower = body.to_ascii_lowercase();
        let marker = [&b"<!doctype"[..], b"<html", b"<head", b"<body"]
            .iter()
            .any(|m| count(&lower, m) > 0);
        if !marker {
            prop_assert_eq!(out, body);
        }
    }

    #[test]
    fn pages_with_the_tag_get_no_other(body in html_page(), tag in reload_tag()) {
        // Once is enough: a page that went through once passes unchanged.
        if let Some(once) = inject_all(&tag, &body, false) {
            prop_assert_eq!(inject_all(&tag, &once, false), None);
        }
    }

    #[test]
    fn reload_tags_stay_one_tag(
        nonce in prop::option::of("\\PC{0,12}"),
        id in "\\PC{0,12}",
    ) {
        // Nothing in a nonce or an id gets out of its attribute.
        let tag = String::from_utf8(script_tag(nonce.as_deref(), &id)).unwrap();
        prop_assert!(tag.starts_with("<script src=\"/__hotrun/client.js\""));
        prop_assert!(tag.ends_with("\"></script>"));
        prop_assert_eq!(tag.matches('<').count(), 2);
        prop_assert_eq!(tag.matches('>').count(), 2);
        prop_assert!([4, 6].contains(&tag.matches('"').count()));
    }
}

// File names are bytes: any but NUL and `/`, UTF-8 or not.
fn file_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(
            any::<u8>().prop_filter("no NUL or /", |b| *b != 0 && *b != b'/'),
            1..40
        )
        .prop_filter("a name, not . or ..", |n| n != b"." && n != b".."),
        // Latin-1 names, as old archives and Windows shares hand them over.
        "[a-z]{1,8}".prop_map(|s| {
            let mut b = s.into_bytes();
            b.extend([0xe9, b'.', b'c', b's', b's']);
            b
        }),
    ]
}

fn printers() -> Vec<crate::ui::Printer> {
    use crate::config::cli::{ColorChoice, UiMode};
    use crate::config::settings::{Ui, UiSettings};
    let mut printers = Vec::new();
    for mode in [Ui::Json, Ui::Plain] {
        for color in [false, true] {
            let settings = UiSettings {
                mode,
                requested_mode: UiMode::Auto,
                color,
                requested_color: ColorChoice::Auto,
                clear_on_rebuild: false,
                verbose: true,
            };
            let info = crate::ui::panel::PanelInfo {
                urls: Vec::new(),
                root: "/w/site".into(),
            };
            printers.push(crate::ui::Printer::new(settings, "/w/site".into(), info).unwrap());
        }
    }
    printers
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn any_file_name_goes_through_every_printer_and_the_browser(
        names in vec(file_name(), 1..5),
        inside in any::<bool>(),
    ) {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        use crate::core::event::{Browser, ChangeKind, Report};
        let base = if inside { "/w/site/static" } else { "/elsewhere" };
        let paths: Vec<std::path::PathBuf> = names
            .iter()
            .map(|n| Path::new(base).join(std::ffi::OsString::from_vec(n.clone())))
            .collect();
        let reports = [
            Report::Watching { roots: paths.clone(), directories: 3, polling: None },
            Report::Change { paths: paths.clone(), count: paths.len(), kind: ChangeKind::Css },
            Report::BuildStarted { files: paths.clone() },
            Report::Error { message: format!("cannot read {}", paths[0].display()) },
        ];
        for printer in printers() {
            for report in &reports {
                if let Some(json) = printer.json(report) {
                    let text = json.to_string();
                    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
                    for field in ["roots", "paths", "files"] {
                        let Some(list) = back[field].as_array() else { continue };
                        prop_assert_eq!(list.len(), paths.len());
                        let raw = back[format!("{field}_base64")].as_array();
                        let lossless = paths.iter().all(|p| p.to_str().is_some());
                        prop_assert_eq!(raw.is_none(), lossless, "{}", text);
                        for (i, path) in paths.iter().enumerate() {
                            prop_assert_eq!(list[i].as_str().unwrap(), path.to_string_lossy());
                            if let Some(raw) = raw {
                                let bytes = data_encoding::BASE64
                                    .decode(raw[i].as_str().unwrap().as_bytes())
                                    .unwrap();
                                prop_assert_eq!(&bytes[..], path.as_os_str().as_bytes());
                            }
                        }
                    }
                }
                let _ = printer.plain(report);
            }
        }
        let hub = crate::web::hub::Hub::new(Path::new("/w/site"));
        let (_hello, mut messages) = hub.join().unwrap();
        for message in [
            Browser::Building { files: paths.clone() },
            Browser::Css { path: paths[0].clone() },
            Browser::Reload { path: paths[0].clone() },
        ] {
            hub.send(&message);
            let wire = messages.try_recv().unwrap();
            let wire: serde_json::Value = serde_json::from_str(&wire).unwrap();
            let first = wire.get("path").or_else(|| wire["files"].get(0)).unwrap();
            let name = String::from_utf8_lossy(&names[0]).into_owned();
            prop_assert!(first.as_str().unwrap().ends_with(&name), "{}", wire);
        }
    }
}
