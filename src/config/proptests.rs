//! Property tests of `.hotrun.toml` as users write it: `file::parse`, then
//! `settings::resolve`, never panic, and every error points at a line and column.

use std::path::Path;

use clap::Parser;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;

use crate::config::cli::Cli;
use crate::config::file as config;
use crate::config::reference::{KEYS, SECTIONS};
use crate::config::settings;
use crate::proptests::{boundary, cases};

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
