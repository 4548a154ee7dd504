//! The status pipe between a helper and hotrun: one line per fact, `started PID`,
//! `exited code N` or `exited signal N`, `failed WHY`.

/// The hidden first argument that turns hotrun into the helper.
pub const MODE: &str = "__supervise";

pub type StatusReader = tokio::io::Lines<tokio::io::BufReader<tokio::net::unix::pipe::Receiver>>;

/// One line of the status pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Started(u32),
    Exited(crate::core::event::ExitStatus),
    Failed(String),
}

impl Status {
    pub fn parse(line: &str) -> Option<Status> {
        let (word, rest) = line.split_once(' ')?;
        match word {
            "started" => rest.parse().ok().map(Status::Started),
            "exited" => {
                let (kind, n) = rest.split_once(' ')?;
                let n: i32 = n.parse().ok()?;
                Some(Status::Exited(match kind {
                    "code" => crate::core::event::ExitStatus {
                        code: Some(n),
                        signal: None,
                    },
                    _ => crate::core::event::ExitStatus {
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
            Some(Status::Exited(crate::core::event::ExitStatus {
                code: Some(3),
                signal: None
            }))
        );
        assert_eq!(
            Status::parse("exited signal 9"),
            Some(Status::Exited(crate::core::event::ExitStatus {
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
}
