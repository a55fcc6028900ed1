//! Reads, from /proc, what the kernel says each worker takes connections from.
//!
//! Models are told apart by their kernel signature, not by what the code
//! claims: `/proc/PID/fd/N` names the socket inode of a worker's listener
//! (shared models: one inode for all; `reuseport`: one each), and
//! `/proc/PID/fdinfo/N` of an epoll descriptor lists what that epoll set
//! watches with the tag it was registered with. Workers tag the listener with
//! their own index, so a worker whose set shows another index shares a set.

use std::fs;

use crate::counters::Slot;
use crate::supervise::Fleet;

/// What the kernel shows for one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Inode of the socket the worker takes connections from (a TCP listener,
    /// or the Unix channel from the dispatcher).
    pub listen_inode: Option<u64>,
    /// Tag found on the listener in the worker's epoll set (models with epoll).
    pub epoll_owner: Option<u64>,
}

pub fn endpoints(fleet: &Fleet) -> Vec<Endpoint> {
    fleet
        .pids
        .iter()
        .enumerate()
        .map(|(i, &pid)| {
            let slot = fleet.counters.slot(i);
            Endpoint {
                listen_inode: Slot::get_fd(slot.listen_fd).and_then(|fd| socket_inode(pid, fd)),
                epoll_owner: Slot::get_fd(slot.epoll_fd).and_then(|fd| epoll_tag(pid, fd)),
            }
        })
        .collect()
}

/// `socket:[12345]` -> 12345.
fn socket_inode(pid: libc::pid_t, fd: i32) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    parse_socket_link(link.to_str()?)
}

fn parse_socket_link(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

fn epoll_tag(pid: libc::pid_t, fd: i32) -> Option<u64> {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    parse_epoll_fdinfo(&info)
}

/// The `data:` field (hex) of the first `tfd:` line of an epoll fdinfo.
fn parse_epoll_fdinfo(info: &str) -> Option<u64> {
    let line = info.lines().find(|l| l.starts_with("tfd:"))?;
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "data:" {
            return u64::from_str_radix(words.next()?, 16).ok();
        }
    }
    None
}

/// Processes whose parent is `pid`, in pid order (a server's workers).
pub fn children_of(pid: libc::pid_t) -> Vec<libc::pid_t> {
    let mut kids: Vec<libc::pid_t> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|p| fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| parse_ppid(&s) == Some(pid)))
        .collect();
    kids.sort_unstable();
    kids
}

/// The parent pid from a /proc/PID/stat line (the field after the state,
/// itself after the command name in parentheses, which may hold spaces).
fn parse_ppid(stat: &str) -> Option<libc::pid_t> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Inodes of the TCP sockets listening on `port` (any address), from
/// /proc/net/tcp and tcp6: one for a shared socket, one per worker with
/// SO_REUSEPORT.
pub fn listening_inodes(port: u16) -> Vec<u64> {
    let mut inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| fs::read_to_string(f).ok())
        .flat_map(|t| parse_listeners(&t, port))
        .collect();
    inodes.sort_unstable();
    inodes
}

fn parse_listeners(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            // State 0A is TCP_LISTEN; the inode is the tenth field.
            (local_port == port && *f.get(3)? == "0A").then(|| f.get(9)?.parse().ok())?
        })
        .collect()
}

/// Which of `listeners` (socket inodes) process `pid` holds open. A worker
/// that holds exactly one takes its connections from it.
pub fn held_listeners(pid: libc::pid_t, listeners: &[u64]) -> Vec<u64> {
    let mut held: Vec<u64> = fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| parse_socket_link(fs::read_link(e.path()).ok()?.to_str()?))
        .filter(|i| listeners.contains(i))
        .collect();
    held.sort_unstable();
    held.dedup();
    held
}

/// Which of `listeners` (socket inodes) sit in one of process `pid`'s epoll
/// sets: the socket a worker of an event-driven server waits on, even when
/// it holds the other workers' SO_REUSEPORT sockets open too (nginx).
pub fn polled_listeners(pid: libc::pid_t, listeners: &[u64]) -> Vec<u64> {
    let mut polled: Vec<u64> = fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| fs::read_link(e.path()).is_ok_and(|l| l.to_str() == Some("anon_inode:[eventpoll]")))
        .filter_map(|e| fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", e.file_name().to_str()?)).ok())
        .flat_map(|info| epoll_target_inodes(&info))
        .filter(|i| listeners.contains(i))
        .collect();
    polled.sort_unstable();
    polled.dedup();
    polled
}

/// The `ino:` (hex) of every `tfd:` line of an epoll fdinfo.
fn epoll_target_inodes(info: &str) -> Vec<u64> {
    info.lines()
        .filter(|l| l.starts_with("tfd:"))
        .filter_map(|l| {
            let ino = l.split_whitespace().find_map(|w| w.strip_prefix("ino:"))?;
            u64::from_str_radix(ino, 16).ok()
        })
        .collect()
}

/// A process's CPU time and voluntary context switches so far, from
/// /proc/PID/schedstat (ns on CPU) and /proc/PID/status. Read at the start
/// and the end of the measured load, so a warm-up is excluded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_ns: u64,
    pub voluntary_switches: u64,
}

impl Usage {
    pub fn of(pid: libc::pid_t) -> Option<Usage> {
        let sched = fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        parse_usage(&sched, &status)
    }

    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            voluntary_switches: self.voluntary_switches.saturating_sub(earlier.voluntary_switches),
        }
    }
}

fn parse_usage(schedstat: &str, status: &str) -> Option<Usage> {
    let cpu_ns = schedstat.split_whitespace().next()?.parse().ok()?;
    let voluntary_switches = status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
        .trim()
        .parse()
        .ok()?;
    Some(Usage {
        cpu_ns,
        voluntary_switches,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_usage() {
        let u = parse_usage(
            "604749 0 2\n",
            "Name:\tx\nvoluntary_ctxt_switches:\t17\nnonvoluntary_ctxt_switches:\t3\n",
        );
        assert_eq!(
            u,
            Some(Usage {
                cpu_ns: 604749,
                voluntary_switches: 17
            })
        );
        assert_eq!(parse_usage("", ""), None);
        let own = Usage::of(sys::getpid()).expect("own /proc entry");
        assert!(own.cpu_ns > 0);
    }

    use super::*;

    #[test]
    fn parses_socket_links() {
        assert_eq!(parse_socket_link("socket:[4242]"), Some(4242));
        assert_eq!(parse_socket_link("anon_inode:[eventpoll]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
    }

    #[test]
    fn parses_ppid_and_listeners() {
        assert_eq!(parse_ppid("42 (a (b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parse_ppid("garbage"), None);
        let table =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 5002 1 0 100 0 0 10 0\n\
   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5003 1 0 100 0 0 10 0\n";
        assert_eq!(parse_listeners(table, 8080), vec![5001]);
        assert_eq!(parse_listeners(table, 8081), vec![5003]);
        assert!(parse_listeners(table, 80).is_empty());
    }

    #[test]
    fn finds_this_process_listener_and_children() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let inodes = listening_inodes(port);
        assert_eq!(inodes.len(), 1, "{inodes:?}");
        assert_eq!(held_listeners(sys::getpid(), &inodes), inodes);
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let kids = children_of(sys::getpid());
        let _ = child.kill();
        let _ = child.wait();
        assert!(kids.contains(&(child.id() as i32)), "{kids:?}");
    }

    #[test]
    fn parses_epoll_fdinfo() {
        let info = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\ntfd:        3 events:       19 data:                2  pos:0 ino:1b5a3 sdev:8\n";
        assert_eq!(parse_epoll_fdinfo(info), Some(2));
        assert_eq!(epoll_target_inodes(info), vec![0x1b5a3]);
        assert_eq!(parse_epoll_fdinfo("pos:\t0\n"), None);
    }

    #[test]
    fn reads_this_process_epoll_set() {
        use std::os::fd::AsFd;
        let ep = sys::Epoll::new().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        ep.add(l.as_fd(), libc::EPOLLIN as u32, 0xabc).unwrap();
        assert_eq!(epoll_tag(sys::getpid(), ep.raw()), Some(0xabc));
        use std::os::fd::AsRawFd;
        let inode = socket_inode(sys::getpid(), l.as_raw_fd()).unwrap();
        assert_eq!(polled_listeners(sys::getpid(), &[inode]), vec![inode]);
        assert!(polled_listeners(sys::getpid(), &[inode + 1]).is_empty());
    }
}
