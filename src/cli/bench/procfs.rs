//! What the bench learns about the server process from Linux's `/proc`: which process
//! listens on the target port (listening socket inode → the process holding
//! `socket:[inode]` among its descriptors) and its resident memory (`VmRSS`). Read
//! only; every lookup may fail (another user's process, no procfs) and then answers
//! `None` instead of an error — the report says the number is unknown.

use std::fs;

/// TCP state `LISTEN` in `/proc/net/tcp{,6}`.
const TCP_LISTEN: &str = "0A";

/// The pid of the process listening on TCP `port` (any local address), if visible.
pub(super) fn listener_pid(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(table) {
            inodes.extend(listen_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let me = std::process::id();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid != me && holds_any(pid, &wanted) {
            return Some(pid);
        }
    }
    None
}

/// Inodes of the sockets in LISTEN state on `port` in one `/proc/net/tcp*` table.
fn listen_inodes(table: &str, port: u16) -> Vec<u64> {
    let want = format!("{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit(':').next()?;
            (local_port == want && *f.get(3)? == TCP_LISTEN).then(|| f.get(9)?.parse().ok())?
        })
        .filter(|inode| *inode != 0)
        .collect()
}

fn holds_any(pid: u32, wanted: &[String]) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| wanted.iter().any(|w| target.as_os_str() == w.as_str())))
}

/// Resident memory of a process, in KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Resident {
    /// `VmRSS`: everything resident, the binary's code pages included.
    pub rss: u64,
    /// `RssAnon`: heap, stacks and other anonymous memory only (None on kernels
    /// before 4.5, which do not report it).
    pub anon: Option<u64>,
}

/// Resident memory of `pid` (from `/proc/<pid>/status`).
pub(super) fn resident(pid: u32) -> Option<Resident> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_resident(&status)
}

fn parse_resident(status: &str) -> Option<Resident> {
    let kib = |key: &str| {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(Resident { rss: kib("VmRSS:")?, anon: kib("RssAnon:") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_listening_inodes_by_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n\
   1: 0100007F:1F40 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0 20 4 30 10 -1\n\
   2: 0100007F:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0 100 0 0 10 0\n";
        assert_eq!(listen_inodes(table, 8000), vec![4242]);
        assert_eq!(listen_inodes(table, 8001), vec![99]);
        assert!(listen_inodes(table, 9).is_empty());
    }

    #[test]
    fn reads_rss() {
        assert_eq!(
            parse_resident("Name:\trotor\nVmRSS:\t   12345 kB\nRssAnon:\t    2345 kB\nVmSwap: 0 kB\n"),
            Some(Resident { rss: 12345, anon: Some(2345) })
        );
        assert_eq!(parse_resident("VmRSS:\t 7 kB\n"), Some(Resident { rss: 7, anon: None }), "an old kernel");
        assert_eq!(parse_resident("Name: x\n"), None);
        assert_eq!(parse_resident("VmRSS: lots\n"), None);
        let own = resident(std::process::id()).expect("our own status");
        assert!(own.rss > 0 && own.anon.is_some_and(|a| a > 0 && a <= own.rss));
    }

    #[test]
    fn finds_its_own_listener_from_another_view() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut inodes = Vec::new();
        for t in ["/proc/net/tcp", "/proc/net/tcp6"] {
            inodes.extend(listen_inodes(&fs::read_to_string(t).unwrap_or_default(), port));
        }
        assert_eq!(inodes.len(), 1, "one listening socket on port {port}");
        let wanted = vec![format!("socket:[{}]", inodes[0])];
        assert!(holds_any(std::process::id(), &wanted));
    }
}
