//! What one load run should do, and the checks that keep it safe.
//!
//! The load generator may only ever be pointed at loopback: [`Config::validate`]
//! refuses any other target or source address, so neither the library nor the
//! binary can be turned on another host by mistake.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// When a run stops starting new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Exactly this many connections are attempted in total, over all threads
    /// (errors count against the budget; nothing is retried).
    Connections(u64),
    /// New connections are started until this much time has passed since the
    /// run began; connections in flight then finish (bounded by the timeout).
    Duration(Duration),
}

/// One load run. Build with [`Config::new`], adjust fields, then [`Config::validate`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to connect; must be loopback.
    pub target: SocketAddr,
    /// Value of the `Host:` request header.
    pub host_header: String,
    /// Connections in flight in total (>= 1), split over threads as evenly as possible.
    pub concurrency: usize,
    /// Event-loop threads, 1 ..= concurrency.
    pub threads: usize,
    pub stop: Stop,
    /// Per connection, connect start -> end of stream.
    pub timeout: Duration,
    /// Think time: a slot waits this long after finishing a connection before
    /// starting its next.
    pub gap: Duration,
    /// If non-empty, each new socket is bound to these loopback source
    /// addresses in rotation (port chosen at connect time); empty = no bind.
    pub sources: Vec<IpAddr>,
    /// When set: start nothing new, let in-flight connections finish, return.
    pub cancel: Arc<AtomicBool>,
}

/// Default per-connection timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Config {
    /// Defaults: one thread per CPU but no more than `concurrency` (see
    /// [`default_threads`]), 10 s timeout, no think time, no source binding,
    /// `Host:` = the target address.
    pub fn new(target: SocketAddr, concurrency: usize, stop: Stop) -> Config {
        Config {
            target,
            host_header: target.to_string(),
            concurrency,
            threads: default_threads(concurrency),
            stop,
            timeout: DEFAULT_TIMEOUT,
            gap: Duration::ZERO,
            sources: Vec::new(),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Checks every field; the message is one line naming the bad value.
    pub fn validate(&self) -> Result<(), String> {
        if !is_loopback(self.target.ip()) {
            return Err(format!(
                "target {} is not on loopback: only 127.0.0.0/8 and ::1 may be loaded",
                self.target
            ));
        }
        if self.target.port() == 0 {
            return Err(format!("target {} has port 0", self.target));
        }
        if self.concurrency == 0 {
            return Err("concurrency 0: at least one connection must be in flight".into());
        }
        if self.threads == 0 {
            return Err("threads 0: at least one thread is needed".into());
        }
        if self.threads > self.concurrency {
            return Err(format!(
                "threads {} is more than concurrency {}: each thread needs a connection",
                self.threads, self.concurrency
            ));
        }
        match self.stop {
            Stop::Connections(0) => return Err("connections 0: nothing to do".into()),
            Stop::Duration(d) if d.is_zero() => return Err("duration 0s: nothing to do".into()),
            _ => {}
        }
        if self.timeout.is_zero() {
            return Err("timeout 0s: every connection would time out".into());
        }
        if self.host_header.bytes().any(|b| b.is_ascii_control()) || self.host_header.is_empty() {
            return Err(format!(
                "host header {:?} is empty or has control characters",
                self.host_header
            ));
        }
        for src in &self.sources {
            if !is_loopback(*src) {
                return Err(format!(
                    "source {src} is not on loopback: only 127.0.0.0/8 and ::1 may be used"
                ));
            }
            if src.is_ipv4() != self.target.is_ipv4() {
                return Err(format!(
                    "source {src} is not of the same family as target {}",
                    self.target
                ));
            }
        }
        Ok(())
    }
}

/// min(CPUs available to this process, `concurrency`), at least 1. On the
/// 2-core machines this was written for, two threads reached about 1.5 times
/// the connection rate of one against a minimal C server.
pub fn default_threads(concurrency: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus.min(concurrency).max(1)
}

/// 127.0.0.0/8 or ::1, nothing else (not even IPv4-mapped loopback).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// Parses `10s`, `1.5s`, `500ms`, `200us`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {s:?}: expected a number with unit h, m, s, ms or us, e.g. 1.5s or 200ms")
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(v * scale).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    #[test]
    fn durations_that_parse() {
        let cases = [
            ("10s", Duration::from_secs(10)),
            ("1.5s", Duration::from_millis(1500)),
            ("500ms", Duration::from_millis(500)),
            ("200us", Duration::from_micros(200)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("3", Duration::from_secs(3)),
            ("0.25", Duration::from_millis(250)),
            ("0s", Duration::ZERO),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn durations_that_do_not_parse() {
        for s in [
            "", "s", "10x", "-1s", "1.2.3s", ".5s", "5.s", "ten", "1e3", "10 s", "1sec", "inf",
        ] {
            let err = parse_duration(s).expect_err(s);
            assert!(
                err.contains(&format!("{s:?}")),
                "message names the value: {err}"
            );
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn defaults_validate() {
        let c = Config::new(lo(), 4, Stop::Connections(10));
        assert_eq!(c.host_header, "127.0.0.1:8080");
        assert_eq!(c.threads, default_threads(4));
        assert!((1..=4).contains(&c.threads));
        assert_eq!(default_threads(1), 1);
        assert_eq!(default_threads(0), 1);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.validate(), Ok(()));
        let v6 = Config::new(
            "[::1]:80".parse().unwrap(),
            1,
            Stop::Duration(Duration::from_secs(1)),
        );
        assert_eq!(v6.validate(), Ok(()));
    }

    #[test]
    fn bad_configs_name_the_value() {
        let base = Config::new(lo(), 4, Stop::Connections(10));
        let check = |c: Config, needle: &str| {
            let e = c.validate().expect_err(needle);
            assert!(e.contains(needle), "{e:?} should contain {needle:?}");
            assert!(!e.contains('\n'));
        };
        check(
            Config {
                concurrency: 0,
                threads: 0,
                ..base.clone()
            },
            "concurrency 0",
        );
        check(
            Config {
                threads: 0,
                ..base.clone()
            },
            "threads 0",
        );
        check(
            Config {
                threads: 5,
                ..base.clone()
            },
            "threads 5",
        );
        check(
            Config {
                stop: Stop::Connections(0),
                ..base.clone()
            },
            "connections 0",
        );
        check(
            Config {
                stop: Stop::Duration(Duration::ZERO),
                ..base.clone()
            },
            "duration 0",
        );
        check(
            Config {
                timeout: Duration::ZERO,
                ..base.clone()
            },
            "timeout 0",
        );
        check(
            Config::new("10.0.0.1:80".parse().unwrap(), 1, Stop::Connections(1)),
            "target 10.0.0.1:80 is not on loopback: only 127.0.0.0/8 and ::1 may be loaded",
        );
        check(
            Config::new(
                "[::ffff:127.0.0.1]:80".parse().unwrap(),
                1,
                Stop::Connections(1),
            ),
            "not on loopback",
        );
        check(
            Config {
                sources: vec!["192.168.1.2".parse().unwrap()],
                ..base.clone()
            },
            "source 192.168.1.2",
        );
        check(
            Config {
                sources: vec!["::1".parse().unwrap()],
                ..base.clone()
            },
            "source ::1",
        );
        check(
            Config {
                host_header: "a\r\nb".into(),
                ..base
            },
            "host header",
        );
    }

    #[test]
    fn loopback_ranges() {
        assert!(is_loopback("127.255.0.9".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("128.0.0.1".parse().unwrap()));
        assert!(!is_loopback("0.0.0.0".parse().unwrap()));
        assert!(!is_loopback("::".parse().unwrap()));
    }
}
