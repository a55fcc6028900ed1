//! The kernel's own account of a run: its TCP counters before and after the
//! measured load.
//!
//! Why it exists: the harness's load generator and workers see only their
//! side. A full accept queue, SYNs dropped or answered with cookies, SYNs
//! retransmitted a second later: the kernel counts all of it, and without
//! its account a queue overflow looks like a property of the model. Every
//! field of `/proc/net/netstat` (TcpExt, IpExt) and `/proc/net/snmp` (Ip,
//! Tcp) of the calling thread's namespace is read before and after the
//! measured load; kernel.csv has them all, summary.csv the ones that matter.

use std::collections::BTreeMap;
use std::io;

use records::rows::KernelRow;

/// One reading of every counter, by `Group.Name` (`TcpExt.ListenOverflows`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters(pub BTreeMap<String, i64>);

/// The groups read: of `/proc/net/netstat` and `/proc/net/snmp`.
const GROUPS: [(&str, &[&str]); 2] = [("netstat", &["TcpExt", "IpExt"]), ("snmp", &["Ip", "Tcp"])];

impl Counters {
    /// Reads the calling thread's namespace's counters.
    pub fn read() -> io::Result<Counters> {
        let mut all = BTreeMap::new();
        for (file, groups) in GROUPS {
            let text = std::fs::read_to_string(format!("/proc/thread-self/net/{file}"))?;
            parse_into(&text, groups, &mut all);
        }
        Ok(Counters(all))
    }
}

/// `Group: name1 name2 ...` then `Group: v1 v2 ...`, for each group wanted.
fn parse_into(text: &str, groups: &[&str], into: &mut BTreeMap<String, i64>) {
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let (Some((g, names)), Some((g2, values))) = (names.split_once(':'), values.split_once(':')) else {
            continue;
        };
        if g != g2 || !groups.contains(&g) {
            continue;
        }
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse::<i64>() {
                into.insert(format!("{g}.{n}"), v);
            }
        }
    }
}

/// The counters over the measured load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    pub before: Counters,
    pub after: Counters,
    /// The run had its own namespace: the counters are its alone.
    pub own: bool,
}

impl Delta {
    /// How much `counter` (`Tcp.PassiveOpens`) moved.
    pub fn get(&self, counter: &str) -> Option<i64> {
        Some(self.after.0.get(counter)? - self.before.0.get(counter)?)
    }

    /// kernel.csv: every counter read at both ends.
    pub fn rows(&self) -> Vec<KernelRow> {
        self.after
            .0
            .iter()
            .filter_map(|(k, after)| {
                let before = *self.before.0.get(k)?;
                Some(KernelRow {
                    counter: k.clone(),
                    before,
                    after: *after,
                    delta: after - before,
                })
            })
            .collect()
    }

    /// One line saying what the kernel dropped and what that costs, when
    /// any drop counter moved; `None` when none did.
    pub fn warning(&self) -> Option<String> {
        let n = |c: &str| self.get(c).unwrap_or(0);
        let (overflows, drops, qfull, cookies, retrans) = (
            n("TcpExt.ListenOverflows"),
            n("TcpExt.ListenDrops"),
            n("TcpExt.TCPReqQFullDrop"),
            n("TcpExt.TCPReqQFullDoCookies"),
            n("TcpExt.TCPSynRetrans"),
        );
        if overflows == 0 && drops == 0 && qfull == 0 && cookies == 0 {
            return None;
        }
        Some(format!(
            "kernel: the accept queue overflowed {overflows} times and {drops} connection attempts were dropped \
             ({qfull} SYNs dropped and {cookies} answered with a SYN cookie because the SYN queue was full; \
             {retrans} SYNs retransmitted): a dropped SYN or final ACK is retransmitted after 1 s, so those \
             connections took a second or more; see kernel.csv{}",
            if self.own {
                ""
            } else {
                " (machine-wide counters: the run shared the host's namespace)"
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETSTAT: &str = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 2 418 418\nIpExt: InNoRoutes\nIpExt: 0\nMPTcpExt: X\nMPTcpExt: 9\n";
    const SNMP: &str = "Ip: Forwarding DefaultTTL\nIp: 1 64\nIcmp: InMsgs\nIcmp: 3\nTcp: RtoAlgorithm MaxConn PassiveOpens\nTcp: 1 -1 20000\n";

    #[test]
    fn counters_parse_by_group_and_name() {
        let mut m = BTreeMap::new();
        parse_into(NETSTAT, &["TcpExt", "IpExt"], &mut m);
        parse_into(SNMP, &["Ip", "Tcp"], &mut m);
        assert_eq!(m["TcpExt.ListenOverflows"], 418);
        assert_eq!(m["IpExt.InNoRoutes"], 0);
        assert_eq!(m["Tcp.MaxConn"], -1);
        assert_eq!(m["Tcp.PassiveOpens"], 20000);
        assert!(!m.contains_key("MPTcpExt.X") && !m.contains_key("Icmp.InMsgs"));
    }

    #[test]
    fn the_delta_and_its_warning() {
        let c = |o: i64, p: i64| {
            Counters(BTreeMap::from([
                ("TcpExt.ListenOverflows".to_string(), o),
                ("Tcp.PassiveOpens".to_string(), p),
            ]))
        };
        let quiet = Delta {
            before: c(5, 100),
            after: c(5, 300),
            own: true,
        };
        assert_eq!(quiet.get("Tcp.PassiveOpens"), Some(200));
        assert_eq!(quiet.warning(), None);
        assert_eq!(quiet.rows().len(), 2);
        let full = Delta {
            before: c(5, 100),
            after: c(9, 300),
            own: true,
        };
        let w = full.warning().unwrap();
        assert!(w.contains("overflowed 4 times") && w.contains("after 1 s"), "{w}");
        assert!(!w.contains('\n'));
    }

    #[test]
    fn this_machine_has_the_counters_that_matter() {
        let c = Counters::read().unwrap();
        for k in [
            "TcpExt.ListenOverflows",
            "TcpExt.ListenDrops",
            "TcpExt.SyncookiesSent",
            "TcpExt.TCPReqQFullDrop",
            "TcpExt.TCPSynRetrans",
            "TcpExt.TCPTimeouts",
            "Tcp.PassiveOpens",
            "Tcp.ActiveOpens",
            "Tcp.AttemptFails",
            "Tcp.EstabResets",
        ] {
            assert!(c.0.contains_key(k), "{k}");
        }
    }
}
