//! Property tests of what builds print: the JSON lines of `cargo build`, its status
//! lines, dep-info files, and the `path:line:col:` locations in a build command's
//! output.

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;

use crate::build::cargo::{is_cargo_status, parse_dep_info, MessageCollector, RunTarget};
use crate::build::locations::locations;
use crate::proptests::{boundary, cases};
use crate::text::strip_ansi;

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
