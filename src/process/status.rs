//! The status pipe between a helper and hotrun: one line per fact, `started PID`,
//! `exited code N` or `exited signal N`, `failed WHY`.

use crate::core::event::ExitStatus;

/// The hidden first argument that turns hotrun into the helper.
pub const MODE: &str = "__supervise";

pub type StatusReader = tokio::io::Lines<tokio::io::BufReader<tokio::net::unix::pipe::Receiver>>;

/// One line of the status pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Started(u32),
    Exited(ExitStatus),
    Failed(String),
}

impl Status {
    /// The line that says it on the pipe (without its newline).
    pub fn line(&self) -> String {
        match self {
            Status::Started(pid) => format!("started {pid}"),
            Status::Exited(ExitStatus {
                signal: Some(signal),
                ..
            }) => format!("exited signal {signal}"),
            Status::Exited(status) => format!("exited code {}", status.code.unwrap_or(-1)),
            Status::Failed(why) => format!("failed {why}"),
        }
    }

    pub fn parse(line: &str) -> Option<Status> {
        let (word, rest) = line.split_once(' ')?;
        match word {
            "started" => rest.parse().ok().map(Status::Started),
            "exited" => {
                let (kind, n) = rest.split_once(' ')?;
                let n: i32 = n.parse().ok()?;
                Some(Status::Exited(match kind {
                    "code" => ExitStatus {
                        code: Some(n),
                        signal: None,
                    },
                    _ => ExitStatus {
                        code: None,
                        signal: Some(n),
                    },
                }))
            }
            "failed" => Some(Status::Failed(rest.to_string())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        assert_eq!(Status::parse("started 42"), Some(Status::Started(42)));
        assert_eq!(
            Status::parse("exited code 3"),
            Some(Status::Exited(ExitStatus {
                code: Some(3),
                signal: None
            }))
        );
        assert_eq!(
            Status::parse("exited signal 9"),
            Some(Status::Exited(ExitStatus {
                code: None,
                signal: Some(9)
            }))
        );
        assert!(matches!(
            Status::parse("failed cannot run"),
            Some(Status::Failed(_))
        ));
        assert_eq!(Status::parse("nonsense"), None);
    }

    #[test]
    fn what_the_helper_writes_is_what_hotrun_reads() {
        for status in [
            Status::Started(42),
            Status::Exited(ExitStatus {
                code: Some(3),
                signal: None,
            }),
            Status::Exited(ExitStatus {
                code: None,
                signal: Some(9),
            }),
            Status::Failed("cannot run `x`: No such file or directory".into()),
        ] {
            assert_eq!(Status::parse(&status.line()), Some(status));
        }
    }
}
