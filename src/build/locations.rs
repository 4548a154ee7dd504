//! `path:line:col:` locations in a build command's output (gcc, go, zig, tsc…), each
//! turned into a diagnostic the overlay can point at.

use crate::core::event::Diagnostic;

/// One diagnostic per `path:line:col:` or `path:line:` location in a tool's output
/// (gcc, clang, go, zig, tsc… all print them).
pub fn locations(text: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = crate::text::strip_ansi(raw);
        if let Some(d) = location(&line) {
            out.push(Diagnostic {
                rendered: raw.to_string(),
                ..d
            });
        }
    }
    out
}

fn location(line: &str) -> Option<Diagnostic> {
    let trimmed = line.trim_start();
    // The path is the first word; it must look like a file (a dot or a slash).
    let word_end = trimmed
        .find(|c: char| c.is_whitespace())
        .unwrap_or(trimmed.len());
    let word = &trimmed[..word_end];
    let mut parts = word.split(':');
    let file = parts.next()?;
    let name = file.trim_start_matches("./");
    if name.is_empty() || !(file.contains('.') || file.contains('/')) {
        return None;
    }
    let line_no = number(parts.next()?)?;
    let next = parts.next()?;
    let (column, rest_start) = match number(next) {
        Some(col) => (Some(col), parts.next()),
        None => (None, Some(next)),
    };
    // `path:line:` must end in a colon (the rest of the word is empty).
    if rest_start.is_none_or(|r| !r.is_empty()) || parts.next().is_some() {
        return None;
    }
    let message = trimmed[word_end..].trim().to_string();
    let lower = message.to_ascii_lowercase();
    let level = if lower.starts_with("warning") {
        "warning"
    } else if lower.starts_with("note") {
        "note"
    } else {
        "error"
    };
    Some(Diagnostic {
        level: level.into(),
        message,
        rendered: String::new(),
        file: Some(name.to_string()),
        line: Some(line_no),
        column,
    })
}

/// A line or column number as tools print them: digits only (`+5` is none).
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_compiler_locations() {
        let text = "server.c: In function 'main':\nserver.c:12:5: error: expected ';' before 'return'\n./main.go:7:2: undefined: x\nsrc/app.zig:3: warning: unused\nhttp://example.com:80/ is not a location\nnothing here\n";
        let found = locations(text);
        let summary: Vec<_> = found
            .iter()
            .map(|d| {
                (
                    d.file.clone().unwrap(),
                    d.line.unwrap(),
                    d.column,
                    d.level.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("server.c".into(), 12, Some(5), "error".into()),
                ("main.go".into(), 7, Some(2), "error".into()),
                ("src/app.zig".into(), 3, None, "warning".into()),
            ]
        );
    }

    #[test]
    fn locations_name_a_file_and_numbers_in_digits() {
        // No file left after `./`, a signed line or column: not a location.
        let text = "./:0: error: x\n./././:3:1: y\nmain.c:+5: z\nmain.c:5:+2: w\n";
        assert!(locations(text).is_empty(), "{:?}", locations(text));
    }
}
