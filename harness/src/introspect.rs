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
use crate::fleet::Fleet;

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
                listen_inode: Slot::get_fd(&slot.listen_fd).and_then(|fd| socket_inode(pid, fd)),
                epoll_owner: Slot::get_fd(&slot.epoll_fd).and_then(|fd| epoll_tag(pid, fd)),
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
        let own = Usage::of(crate::sys::getpid()).expect("own /proc entry");
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
    fn parses_epoll_fdinfo() {
        let info = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\ntfd:        3 events:       19 data:                2  pos:0 ino:1b5a3 sdev:8\n";
        assert_eq!(parse_epoll_fdinfo(info), Some(2));
        assert_eq!(parse_epoll_fdinfo("pos:\t0\n"), None);
    }

    #[test]
    fn reads_this_process_epoll_set() {
        use std::os::fd::AsFd;
        let ep = crate::sys::Epoll::new().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        ep.add(l.as_fd(), libc::EPOLLIN as u32, 0xabc).unwrap();
        assert_eq!(epoll_tag(crate::sys::getpid(), ep.raw()), Some(0xabc));
        use std::os::fd::AsRawFd;
        assert!(socket_inode(crate::sys::getpid(), l.as_raw_fd()).is_some());
    }
}
