//! What one load run should do, and the checks that keep it safe.
//!
//! The load generator is meant for loopback: [`Config::validate`] refuses a
//! target outside 127.0.0.0/8 and ::1 unless [`Config::allow_remote`] is set
//! explicitly (`--allow-remote`), so neither the library nor the binary can be
//! turned on another host by mistake. Source addresses must be loopback
//! whatever that setting.
//!
//! A run is either closed-loop (a fixed number of connections in flight, each
//! slot starting its next connection when the previous one ends: the
//! throughput figure) or open-loop ([`OpenLoop`]: connections start on a
//! schedule of intended times whatever the server does, so a stall shows up
//! as latency instead of being hidden by the client slowing down).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

pub use records::units::parse_duration;

use crate::http::Attribution;
use crate::report::IntervalHist;

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

/// How open-loop arrivals are spaced in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arrivals {
    /// Exactly 1/R apart (the wrk2 model).
    Constant,
    /// Exponential gaps with mean 1/R from a seeded generator: a Poisson
    /// process, as independent clients would produce.
    Poisson,
}

impl Arrivals {
    pub const ALL: [Arrivals; 2] = [Arrivals::Constant, Arrivals::Poisson];

    /// The name used on the command line and in output.
    pub fn name(self) -> &'static str {
        match self {
            Arrivals::Constant => "constant",
            Arrivals::Poisson => "poisson",
        }
    }
}

impl fmt::Display for Arrivals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arrivals {
    type Err = String;
    fn from_str(s: &str) -> Result<Arrivals, String> {
        Arrivals::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown arrivals {s:?}: expected constant or poisson"))
    }
}

/// Open-loop load: connections start at scheduled times (see
/// [`crate::schedule`]) rather than when a previous one ends.
///
/// Each of the `T` threads takes rate `R/T` with its own arrival stream and
/// `max_inflight/T` (split like `concurrency`) connection slots. An arrival
/// whose time has come starts at once if its thread has a free slot;
/// otherwise it waits in a FIFO backlog and starts when a slot frees (counted
/// in [`crate::Report::late`]). Arrivals still waiting when the run stops, or
/// waiting longer than [`Config::timeout`], are not started and are counted
/// in [`crate::Report::dropped`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenLoop {
    /// New connections per second, over all threads (> 0, finite).
    pub rate: f64,
    pub arrivals: Arrivals,
    /// Most connections open at once, over all threads (>= threads).
    pub max_inflight: usize,
}

/// Default [`OpenLoop::max_inflight`]: enough for 1000 conn/s at up to 1 s of
/// latency, and below the common 1024 open-file soft limit.
pub const DEFAULT_MAX_INFLIGHT: usize = 1000;

impl OpenLoop {
    /// `rate` connections per second, constant arrivals, [`DEFAULT_MAX_INFLIGHT`].
    pub fn new(rate: f64) -> OpenLoop {
        OpenLoop {
            rate,
            arrivals: Arrivals::Constant,
            max_inflight: DEFAULT_MAX_INFLIGHT,
        }
    }
}

/// Where and how often to send interval histograms (for an HdrHistogram
/// interval log) and per-worker interval counts (for a per-worker time series
/// of what the load generator attributed). See [`IntervalHist`] for what each
/// message holds. Sent with [`Config::record`] `= false` too (empty
/// histograms, counts as usual).
#[derive(Debug, Clone)]
pub struct Intervals {
    /// Interval length (> 0). Interval `k` covers `[k*every, (k+1)*every)`
    /// after the run start.
    pub every: Duration,
    /// Receives one histogram per thread per interval. Unbounded: a slow
    /// receiver costs memory on its side, never stalls the generator. A
    /// dropped receiver is ignored.
    pub sink: Sender<IntervalHist>,
}

/// One load run. Build with [`Config::new`] (closed loop) or
/// [`Config::new_open`] (open loop), adjust fields, then [`Config::validate`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to connect; must be loopback unless `allow_remote`.
    pub target: SocketAddr,
    /// Accept a target outside 127.0.0.0/8 and ::1 (default `false`). Source
    /// addresses must still be loopback, so none may be given with a remote
    /// target (a loopback-bound socket cannot reach another host).
    pub allow_remote: bool,
    /// Value of the `Host:` request header.
    pub host_header: String,
    /// Closed loop: connections in flight in total (>= 1), split over threads
    /// as evenly as possible. Ignored in the open loop ([`OpenLoop::max_inflight`]).
    pub concurrency: usize,
    /// Event-loop threads, 1 ..= concurrency (open loop: 1 ..= max_inflight).
    pub threads: usize,
    pub stop: Stop,
    /// Per request: from connect start (first request of a connection) or
    /// send start (later ones) to response complete, and for the last
    /// request to end of stream. In the open loop also the longest an arrival
    /// may wait for a free slot before it is dropped.
    pub timeout: Duration,
    /// Think time: a slot waits this long after finishing a connection before
    /// starting its next. Closed loop only (must be 0 in the open loop).
    pub gap: Duration,
    /// If non-empty, each new socket is bound to these loopback source
    /// addresses in rotation (port chosen at connect time); empty = no bind.
    /// See [`parse_sources`].
    pub sources: Vec<IpAddr>,
    /// When set: start nothing new, let in-flight connections finish, return.
    pub cancel: Arc<AtomicBool>,
    /// `None`: the closed loop with `concurrency`; `Some`: the open loop.
    pub open: Option<OpenLoop>,
    /// Seeds the Poisson arrival streams (mixed with the thread index):
    /// the same seed gives the same schedule. Default 1.
    pub seed: u64,
    /// Requests per connection (>= 1). 1 (the default): every request says
    /// `Connection: close`. K > 1: K requests in sequence, the first K-1 with
    /// `Connection: keep-alive` (their responses must carry content-length),
    /// the K-th with `Connection: close` so that the server closes first.
    pub requests_per_conn: u32,
    /// Interval histograms and per-worker interval counts; `None` = none.
    pub intervals: Option<Intervals>,
    /// `false`: count completions and attribute them, but record no latency
    /// (all histograms stay empty). Default `true`.
    pub record: bool,
    /// Keep one [`crate::Traced`] per connection (its first response), in
    /// [`crate::Report::traced`]: about 56 bytes each. Default `false`.
    pub trace: bool,
    /// Where each response names the worker that served it; responses that
    /// name none count under [`crate::report::UNKNOWN_WORKER`]. Default:
    /// the `x-worker` header.
    pub attribution: Attribution,
    /// Send the handshake's last ACK with the request instead of alone
    /// (TCP_DEFER_ACCEPT on the connecting socket). The server's kernel then
    /// queues the connection for accept only when the request is there, so
    /// the worker that accepts it never waits for it: one wakeup and one
    /// packet fewer per connection. Off by default: it changes what the
    /// accept queue sees, and ordinary clients (browsers, curl, wrk) send the
    /// ACK at once.
    pub piggyback_ack: bool,
}

/// The highest arrival rate (connections per second) an open loop takes.
/// Arrival times are whole nanoseconds, so above 1e9/s two arrivals would
/// share one; the counts of arrivals then still fit in 64 bits for any run
/// shorter than 500 years.
pub const MAX_RATE: f64 = 1e9;

/// Why `rate` (new connections per second) is not a rate an open loop can
/// run, in one line; `None` if it is one.
pub fn rate_problem(rate: f64) -> Option<String> {
    if !(rate.is_finite() && rate > 0.0) {
        Some(format!(
            "rate {rate}: must be a positive, finite number of connections per second"
        ))
    } else if rate > MAX_RATE {
        Some(format!(
            "rate {rate} is above the maximum of {MAX_RATE:e} connections per second: arrival times are whole nanoseconds"
        ))
    } else {
        None
    }
}

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl Config {
    /// A closed-loop run. Defaults: four threads per CPU but no more than
    /// `concurrency` (see [`default_threads`]), 5 s timeout, no think time,
    /// no source binding, `Host:` = the target address, one request per
    /// connection, seed 1, latency recorded, no interval histograms,
    /// attribution by the `x-worker` header, loopback targets only.
    pub fn new(target: SocketAddr, concurrency: usize, stop: Stop) -> Config {
        Config {
            target,
            allow_remote: false,
            host_header: target.to_string(),
            concurrency,
            threads: default_threads(concurrency),
            stop,
            timeout: DEFAULT_TIMEOUT,
            gap: Duration::ZERO,
            sources: Vec::new(),
            cancel: Arc::new(AtomicBool::new(false)),
            open: None,
            seed: 1,
            requests_per_conn: 1,
            intervals: None,
            record: true,
            trace: false,
            attribution: Attribution::default(),
            piggyback_ack: false,
        }
    }

    /// An open-loop run, with the defaults of [`Config::new`] and
    /// `concurrency` = `threads` bound = `open.max_inflight`.
    pub fn new_open(target: SocketAddr, open: OpenLoop, stop: Stop) -> Config {
        let mut c = Config::new(target, open.max_inflight, stop);
        c.open = Some(open);
        c
    }

    /// Connection slots over all threads: `concurrency`, or `max_inflight`
    /// in the open loop.
    pub fn slots(&self) -> usize {
        self.open.map_or(self.concurrency, |o| o.max_inflight)
    }

    /// Checks every field; the message is one line naming the bad value.
    pub fn validate(&self) -> Result<(), String> {
        if !self.allow_remote && !is_loopback(self.target.ip()) {
            return Err(format!(
                "target {} is not on loopback: only 127.0.0.0/8 and ::1 may be loaded unless --allow-remote is given",
                self.target
            ));
        }
        if self.target.port() == 0 {
            return Err(format!("target {} has port 0", self.target));
        }
        if self.open.is_none() && self.concurrency == 0 {
            return Err("concurrency 0: at least one connection must be in flight".into());
        }
        if self.threads == 0 {
            return Err("threads 0: at least one thread is needed".into());
        }
        match self.open {
            None => {
                if self.threads > self.concurrency {
                    return Err(format!(
                        "threads {} is more than concurrency {}: each thread needs a connection",
                        self.threads, self.concurrency
                    ));
                }
            }
            Some(o) => {
                if let Some(why) = rate_problem(o.rate) {
                    return Err(why);
                }
                if o.max_inflight < self.threads {
                    return Err(format!(
                        "max-inflight {} is less than threads {}: each thread needs a slot",
                        o.max_inflight, self.threads
                    ));
                }
                if !self.gap.is_zero() {
                    return Err(format!(
                        "gap {:?} with an open loop: think time is a closed-loop setting",
                        self.gap
                    ));
                }
            }
        }
        if self.requests_per_conn == 0 {
            return Err("requests-per-conn 0: a connection must carry a request".into());
        }
        if let Some(iv) = &self.intervals {
            if iv.every.is_zero() {
                return Err("interval 0s: intervals must have a length".into());
            }
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
        if let Some(why) = self.attribution.problem() {
            return Err(why);
        }
        for src in &self.sources {
            if !is_loopback(*src) {
                return Err(format!(
                    "source {src} is not on loopback: only 127.0.0.0/8 and ::1 may be used"
                ));
            }
            if !is_loopback(self.target.ip()) {
                return Err(format!(
                    "source {src} with target {}: a loopback source cannot reach a remote target",
                    self.target
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

/// Event-loop threads per CPU by default.
pub const THREADS_PER_CPU: usize = 4;

/// min([`THREADS_PER_CPU`] x CPUs available to this process, `concurrency`),
/// at least 1. More threads than CPUs, because the generator shares the CPUs
/// with the server: a thread preempted by a server worker the kernel just
/// woke stalls only its own connections while the others go on. On the
/// 2-core machines this was written for, at concurrency 64 against nginx,
/// 8 threads gave 1.19x the connection rate of 2 (medians of 5 alternating
/// 2 s runs; 4: 1.10x, 12: 1.13x) and a quarter of the context switches per
/// connection (0.4 against 1.6).
pub fn default_threads(concurrency: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (THREADS_PER_CPU * cpus).min(concurrency).max(1)
}

/// 127.0.0.0/8 or ::1, nothing else (not even IPv4-mapped loopback).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// Most addresses [`parse_sources`] returns.
pub const MAX_SOURCES: usize = 65_536;

/// Parses a source-address list: comma-separated loopback IPs and inclusive
/// IPv4 ranges, e.g. `127.0.0.1-127.0.0.32,127.0.1.1` or `::1`. At most
/// [`MAX_SOURCES`] addresses in all; the error is one line naming the bad value.
pub fn parse_sources(s: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Err(format!("sources {s:?}: empty list"));
    }
    let ip = |v: &str, item: &str| -> Result<IpAddr, String> {
        let ip: IpAddr = v
            .trim()
            .parse()
            .map_err(|_| format!("source {item:?}: {:?} is not an IP address", v.trim()))?;
        if !is_loopback(ip) {
            return Err(format!(
                "source {item:?}: {ip} is not on loopback: only 127.0.0.0/8 and ::1 may be used"
            ));
        }
        Ok(ip)
    };
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("sources {s:?}: empty item"));
        }
        let before = out.len();
        match item.split_once('-') {
            None => out.push(ip(item, item)?),
            Some((a, b)) => {
                let (IpAddr::V4(a), IpAddr::V4(b)) = (ip(a, item)?, ip(b, item)?) else {
                    return Err(format!("source range {item:?}: ranges are IPv4 only"));
                };
                let (lo, hi) = (u32::from(a), u32::from(b));
                if lo > hi {
                    return Err(format!("source range {item:?}: {a} is after {b}"));
                }
                if (hi - lo) as usize >= MAX_SOURCES.saturating_sub(before) {
                    return Err(format!(
                        "source range {item:?}: more than {MAX_SOURCES} addresses in all"
                    ));
                }
                out.extend((lo..=hi).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
            }
        }
        if out.len() > MAX_SOURCES {
            return Err(format!(
                "sources: {item:?} makes more than {MAX_SOURCES} addresses in all"
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    #[test]
    fn defaults_validate() {
        let c = Config::new(lo(), 4, Stop::Connections(10));
        assert_eq!(c.host_header, "127.0.0.1:8080");
        assert_eq!(c.threads, default_threads(4));
        assert!((1..=4).contains(&c.threads));
        assert_eq!(default_threads(1), 1);
        assert_eq!(default_threads(0), 1);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(default_threads(1000), THREADS_PER_CPU * cpus);
        assert_eq!(default_threads(3), 3.min(THREADS_PER_CPU * cpus));
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!((c.allow_remote, &c.attribution), (false, &Attribution::default()));
        assert_eq!(c.validate(), Ok(()));
        let v6 = Config::new("[::1]:80".parse().unwrap(), 1, Stop::Duration(Duration::from_secs(1)));
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
            "target 10.0.0.1:80 is not on loopback: only 127.0.0.0/8 and ::1 may be loaded unless --allow-remote is given",
        );
        check(
            Config::new("[::ffff:127.0.0.1]:80".parse().unwrap(), 1, Stop::Connections(1)),
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
    fn remote_targets_need_allow_remote() {
        let check = |c: &Config, needle: &str| {
            let e = c.validate().expect_err(needle);
            assert!(e.contains(needle), "{e:?} should contain {needle:?}");
            assert!(!e.contains('\n'));
        };
        for target in [
            "10.0.0.1:80",
            "[2001:db8::1]:443",
            "[::ffff:127.0.0.1]:80",
            "0.0.0.0:80",
        ] {
            let mut c = Config::new(target.parse().unwrap(), 2, Stop::Connections(10));
            assert!(!c.allow_remote, "refused by default");
            check(&c, &format!("target {target} is not on loopback"));
            check(&c, "unless --allow-remote is given");
            c.allow_remote = true;
            assert_eq!(c.validate(), Ok(()), "{target}");
            // Sources must still be loopback...
            c.sources = vec!["192.168.1.2".parse().unwrap()];
            check(&c, "source 192.168.1.2 is not on loopback");
            // ...and a loopback source cannot reach a remote target.
            let lo_src: IpAddr = if c.target.is_ipv4() { "127.0.0.2" } else { "::1" }.parse().unwrap();
            c.sources = vec![lo_src];
            check(&c, &format!("source {lo_src} with target {target}"));
        }
        assert_eq!(
            Config::new("10.0.0.1:80".parse().unwrap(), 1, Stop::Connections(1)).validate(),
            Err(
                "target 10.0.0.1:80 is not on loopback: only 127.0.0.0/8 and ::1 may be loaded \
                 unless --allow-remote is given"
                    .into()
            )
        );
        // Allowing remote targets changes nothing for loopback ones.
        let mut c = Config::new(lo(), 2, Stop::Connections(10));
        c.allow_remote = true;
        c.sources = vec!["127.0.0.2".parse().unwrap()];
        assert_eq!(c.validate(), Ok(()));
        c.sources = vec!["10.1.1.1".parse().unwrap()];
        check(&c, "source 10.1.1.1 is not on loopback");
    }

    #[test]
    fn attribution_is_checked() {
        let mut c = Config::new(lo(), 2, Stop::Connections(10));
        assert_eq!(c.attribution, Attribution::Header("x-worker".into()));
        c.attribution = Attribution::Body;
        assert_eq!(c.validate(), Ok(()));
        c.attribution = Attribution::Header("X-Served-By".into());
        assert_eq!(c.validate(), Ok(()), "matched case-insensitively anyway");
        for bad in ["", "x worker", "a\r\nb"] {
            c.attribution = Attribution::Header(bad.into());
            let e = c.validate().expect_err(bad);
            assert!(e.starts_with("attribution 'header:"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn loopback_ranges() {
        assert!(is_loopback("127.255.0.9".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("128.0.0.1".parse().unwrap()));
        assert!(!is_loopback("0.0.0.0".parse().unwrap()));
        assert!(!is_loopback("::".parse().unwrap()));
    }

    #[test]
    fn sources_that_parse() {
        let ips = |v: &[&str]| -> Vec<IpAddr> { v.iter().map(|s| s.parse().unwrap()).collect() };
        assert_eq!(parse_sources("127.0.0.2"), Ok(ips(&["127.0.0.2"])));
        assert_eq!(
            parse_sources("127.0.0.1-127.0.0.3, 127.0.1.9 ,::1"),
            Ok(ips(&["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.1.9", "::1"]))
        );
        assert_eq!(
            parse_sources("127.0.0.255-127.0.1.1"),
            Ok(ips(&["127.0.0.255", "127.0.1.0", "127.0.1.1"]))
        );
        assert_eq!(parse_sources("127.0.0.7-127.0.0.7"), Ok(ips(&["127.0.0.7"])));
        let full = parse_sources("127.0.0.0-127.0.255.255").unwrap();
        assert_eq!(full.len(), MAX_SOURCES);
        assert_eq!(full[MAX_SOURCES - 1], "127.0.255.255".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn sources_that_do_not_parse_name_the_value() {
        for (s, needle) in [
            ("", "empty list"),
            (" ", "empty list"),
            ("127.0.0.1,,127.0.0.2", "empty item"),
            ("127.0.0.1,", "empty item"),
            ("localhost", "\"localhost\" is not an IP address"),
            ("10.0.0.1", "10.0.0.1 is not on loopback"),
            ("127.0.0.1-10.0.0.1", "10.0.0.1 is not on loopback"),
            ("::ffff:127.0.0.1", "not on loopback"),
            ("127.0.0.1-", "\"127.0.0.1-\""),
            ("127.0.0.5-127.0.0.1", "127.0.0.5 is after 127.0.0.1"),
            ("::1-::1", "IPv4 only"),
            ("127.0.0.1-::1", "IPv4 only"),
            ("127.0.0.0-127.1.0.0", "more than 65536"),
            ("127.0.0.0-127.0.255.255,127.1.0.0", "more than 65536"),
            ("127.1.0.0,127.0.0.0-127.0.255.255", "more than 65536"),
        ] {
            let e = parse_sources(s).expect_err(s);
            assert!(e.contains(needle), "{s:?}: {e:?} should contain {needle:?}");
            assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn arrivals_round_trip() {
        for a in Arrivals::ALL {
            assert_eq!(a.name().parse::<Arrivals>(), Ok(a));
            assert_eq!(a.to_string(), a.name());
        }
        let e = "uniform".parse::<Arrivals>().unwrap_err();
        assert!(e.contains("\"uniform\"") && e.contains("constant or poisson"), "{e}");
    }

    #[test]
    fn open_loop_configs() {
        let ok = Config::new_open(lo(), OpenLoop::new(1000.0), Stop::Connections(10));
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            (ok.slots(), ok.concurrency),
            (DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_INFLIGHT)
        );
        assert_eq!((ok.seed, ok.requests_per_conn, ok.record), (1, 1, true));
        let check = |c: Config, needle: &str| {
            let e = c.validate().expect_err(needle);
            assert!(e.contains(needle), "{e:?} should contain {needle:?}");
            assert!(!e.contains('\n'));
        };
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut c = ok.clone();
            c.open = Some(OpenLoop {
                rate,
                ..OpenLoop::new(1.0)
            });
            check(c, &format!("rate {rate}"));
        }
        let mut c = ok.clone();
        c.open = Some(OpenLoop {
            max_inflight: 1,
            ..OpenLoop::new(5.0)
        });
        c.threads = 2;
        check(c, "max-inflight 1 is less than threads 2");
        // The closed-loop concurrency does not matter in the open loop.
        let mut c = ok.clone();
        c.concurrency = 0;
        assert_eq!(c.validate(), Ok(()));
        let mut c = ok.clone();
        c.gap = Duration::from_millis(1);
        check(c, "gap 1ms");
        let mut c = ok.clone();
        c.requests_per_conn = 0;
        check(c, "requests-per-conn 0");
        let mut c = ok;
        c.intervals = Some(Intervals {
            every: Duration::ZERO,
            sink: std::sync::mpsc::channel().0,
        });
        check(c, "interval 0s");
    }
}
