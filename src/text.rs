//! Small text helpers every layer uses: escape sequences out of a line, a signal's
//! name, a duration as hotrun prints it. No state, no I/O.

use std::time::Duration;

/// Remove ANSI escape sequences (colours, cursor moves) from a line.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                // CSI: parameters, then one final byte in @..~
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // OSC: up to BEL or ST
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.peek() == Some(&'\\')) {
                        chars.next_if_eq(&'\\');
                        break;
                    }
                }
            }
            _ => {
                chars.next();
            }
        }
    }
    out
}

pub fn format_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// `SIGTERM` for 15, or the number when it names no signal.
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map_or_else(|_| signal.to_string(), |s| s.as_str().to_string())
}

/// Keep a line's colours (SGR sequences) but nothing that moves the cursor, clears the
/// screen or switches screens — those would wreck the lines above the panel — and end
/// it with a reset so a colour never bleeds into the next line.
pub fn keep_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    let mut coloured = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut sequence = String::from("\x1b[");
                for c in chars.by_ref() {
                    sequence.push(c);
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
                if sequence.ends_with('m') {
                    coloured = true;
                    out.push_str(&sequence);
                }
            }
            '\x1b' => {
                // Any other escape: drop it and what it introduces.
                let rest: String = chars.clone().collect();
                let stripped = strip_ansi(&format!("\x1b{rest}"));
                out.push_str(&stripped);
                break;
            }
            '\r' | '\x08' | '\x07' => {}
            c => out.push(c),
        }
    }
    if coloured {
        out.push_str("\x1b[0m");
    }
    out
}

/// A line as hotrun shows it: its colours kept when colour is on, else none.
pub fn shown(line: &str, color: bool) -> String {
    if color {
        keep_colours(line)
    } else {
        strip_ansi(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_colours_but_not_cursor_moves() {
        assert_eq!(keep_colours("\x1b[31mred"), "\x1b[31mred\x1b[0m");
        assert_eq!(keep_colours("up\x1b[3Aabove\x1b[2J"), "upabove");
        assert_eq!(keep_colours("plain\r"), "plain");
    }

    #[test]
    fn strips_colours() {
        assert_eq!(strip_ansi("\x1b[1m\x1b[31merror\x1b[0m: x"), "error: x");
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(
            strip_ansi("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"),
            "link"
        );
    }
}
