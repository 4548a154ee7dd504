//! What `/proc` says about processes: parents, states, environments and the sockets
//! they listen on. Read-only; every caller tolerates a process vanishing mid-read.

use std::net::SocketAddr;

/// How often what is left after SIGKILL is checked (and killed) again.
pub const RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// Live processes whose environment holds `needle` (`NAME=value`), from /proc.
pub fn marked(needle: &[u8]) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle))
        })
        // A zombie is dead already (its parent reaps it).
        .filter(|pid| state_of(*pid).is_some_and(|state| state != 'Z'))
        .collect()
}

/// Direct children of `parent`, from /proc.
pub fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

/// The fields of /proc/PID/stat after the command name (which may hold spaces and
/// parentheses: they start after the last ')'): state, parent pid, …
fn stat_fields(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.get(stat.rfind(')')? + 2..)?.to_string())
}

/// The parent pid of `pid`, from /proc/PID/stat.
pub fn parent_of(pid: i32) -> Option<i32> {
    stat_fields(pid)?.split(' ').nth(1)?.parse().ok()
}

/// The state letter of `pid` (`R`, `S`, `Z`…), from /proc/PID/stat.
fn state_of(pid: i32) -> Option<char> {
    stat_fields(pid)?.chars().next()
}

/// [`listening_under`] off the loop's thread (it reads `/proc` for every process).
pub async fn listening(root: u32) -> Vec<SocketAddr> {
    tokio::task::spawn_blocking(move || listening_under(root))
        .await
        .unwrap_or_default()
}

/// The TCP addresses processes under `root` (not `root` itself: the helper) listen on,
/// from `/proc`: each process's socket inodes matched in `/proc/net/tcp` and `tcp6`.
/// Linux only, no privileges needed; sorted, without duplicates.
pub fn listening_under(root: u32) -> Vec<SocketAddr> {
    let mut inodes = std::collections::HashSet::new();
    for pid in descendants(root) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    inodes.insert(inode);
                }
            }
        }
    }
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            if *state != "0A" || !inode.parse::<u64>().is_ok_and(|i| inodes.contains(&i)) {
                continue;
            }
            if let Some(addr) = parse_proc_address(local) {
                found.push(addr);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6), as `/proc/net/tcp*`
/// writes them: each 32-bit word of the address printed as a number in the host's byte
/// order.
fn parse_proc_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    if ip.len() % 8 != 0 || !ip.is_ascii() {
        return None;
    }
    let mut bytes = Vec::with_capacity(16);
    for i in 0..ip.len() / 8 {
        let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip: std::net::IpAddr = match bytes.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).into(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into(),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Every process below `root`, from each process's parent in `/proc`.
fn descendants(root: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid as i32)? as u32)))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, parent) in &parents {
            if *parent == p {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_of_self_is_known() {
        assert_eq!(
            parent_of(std::process::id() as i32),
            Some(std::os::unix::process::parent_id() as i32)
        );
    }

    #[test]
    fn proc_net_addresses_parse() {
        let parse = |t| parse_proc_address(t).map(|a| a.to_string());
        assert_eq!(parse("0100007F:1F90").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(parse("00000000:0050").as_deref(), Some("0.0.0.0:80"));
        assert_eq!(
            parse("00000000000000000000000001000000:1F90").as_deref(),
            Some("[::1]:8080")
        );
        assert_eq!(
            parse("00000000000000000000000000000000:0050").as_deref(),
            Some("[::]:80")
        );
        assert_eq!(parse("nonsense"), None);
    }

    #[test]
    fn a_listening_child_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // This test process is below its parent.
        let parent = std::os::unix::process::parent_id();
        assert!(listening_under(parent).contains(&addr));
    }
}
