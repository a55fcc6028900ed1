//! Every run parameter, defined once: its name (the scenario key), its flag,
//! its help, its default, how its value is read and checked, what it sets in
//! a [`RunSpec`], and what it records in `meta.json` and `summary.csv`.
//!
//! Why it exists: a run parameter used to be spelled out about nine times
//! (flag, default, scenario key, validation, spec field, meta key, CSV
//! column ...) across three files. Now the command line (`harness run`, built
//! from [`PARAMS`]), scenario files ([`crate::scenario`]), meta.json
//! ([`meta`]) and the parameter columns of summary.csv ([`columns`]) all
//! read this table. Adding a parameter is one [`Param`] here plus its use.
//!
//! Reading is pure: [`build`] turns the values given (as text, from either
//! source) into a spec, or refuses them in one line naming the value; it
//! changes nothing on the machine. Checks that look at the machine (root, the
//! kernel, the open-file limit) are [`crate::preflight::check`], run before
//! a run starts and never for `--dry-run`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::spec::{Load, Rate, RunSpec, MAX_WORKER_CONCURRENCY};
use crate::subject::{Subject, Target};
use fleet::faults::Kill;
use fleet::worker::Stall;
use loadgen::{Arrivals, Attribution, OpenLoop, Stop};
use records::units::parse_duration;

/// How a parameter's value is written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A whole number from `lo` to `hi`; `what` says what it counts.
    Int { lo: u64, hi: u64, what: &'static str },
    /// A duration such as `2s` or `500ms`; `positive`: more than 0.
    Duration { positive: bool },
    /// Yes or no: a switch on the command line (`--respawn`), true or false
    /// in a scenario file (`on`/`off` are taken too).
    Bool,
    /// Text the parameter parses itself; `what` shows the form.
    Text { what: &'static str },
    /// Connections per second, or in a scenario file a percentage of the
    /// measured capacity (`"20%"`).
    Rate,
    /// `KEY=VALUE` settings: repeated on the command line, a table in a
    /// scenario file (`sysctl = { "net.core.somaxconn" = 64 }`; a list of
    /// tables is a dimension).
    Settings,
}

/// A value as read, before the parameter applies it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(u64),
    Duration(Duration),
    Bool(bool),
    Text(String),
    Rate(Rate),
}

impl Value {
    fn int(&self) -> u64 {
        match self {
            Value::Int(n) => *n,
            _ => 0,
        }
    }

    fn duration(&self) -> Duration {
        match self {
            Value::Duration(d) => *d,
            _ => Duration::ZERO,
        }
    }

    fn flag(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    fn text(&self) -> &str {
        match self {
            Value::Text(s) => s,
            _ => "",
        }
    }
}

/// One run parameter.
pub struct Param {
    /// The scenario key, also its name in messages and in meta.json when
    /// `meta` records it under the same name.
    pub key: &'static str,
    /// The long option of `harness run`, without the dashes.
    pub flag: &'static str,
    /// The value's name in `--help`.
    pub value_name: &'static str,
    pub help: &'static str,
    /// The value a run takes when none is given (shown in `--help`); `None`
    /// for a parameter that is unset by default or whose default depends on
    /// others (`concurrency`, `threads`).
    pub default: Option<&'static str>,
    pub kind: Kind,
    /// Whether a scenario file may give it.
    pub scenario: bool,
    /// Whether it may be given more than once (`--kill-worker`).
    pub repeat: bool,
    /// Applies one value to the spec; the message names what is wrong.
    pub set: fn(&mut RunSpec, &Value) -> Result<(), String>,
    /// The value in force, for meta.json: `(key, value)` pairs.
    pub meta: fn(&RunSpec) -> Vec<(&'static str, Json)>,
    /// The value in force, for summary.csv: `(column, cell)` pairs.
    pub columns: fn(&RunSpec) -> Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({})", self.key)
    }
}

impl Param {
    /// `--flag` as the command line has it.
    pub fn flag_name(&self) -> String {
        format!("--{}", self.flag)
    }

    /// Reads a value written as text (the command line, or a default).
    pub fn parse_text(&self, text: &str) -> Result<Value, String> {
        let got = format!("'{text}'");
        match self.kind {
            Kind::Int { .. } => match text.trim().parse::<u64>() {
                Ok(n) => self.check_int(n, &got),
                Err(_) => Err(format!("'{text}' is not a whole number")),
            },
            Kind::Duration { positive } => {
                let d = parse_duration(text)?;
                check_duration(d, positive, &got)
            }
            Kind::Bool => match text {
                "true" | "on" | "yes" => Ok(Value::Bool(true)),
                "false" | "off" | "no" => Ok(Value::Bool(false)),
                _ => Err(format!("'{text}' is not on or off")),
            },
            Kind::Text { .. } => Ok(Value::Text(text.to_string())),
            Kind::Settings => parse_settings(text).map(|_| Value::Text(text.to_string())),
            Kind::Rate => match text.parse::<f64>() {
                Ok(r) => per_second(r),
                Err(_) if text.trim_end().ends_with('%') => {
                    Err(format!("'{text}': a percentage of capacity is for scenario files, where a sweep measures the capacity first"))
                }
                Err(_) => Err(format!("'{text}' is not a positive number of connections per second")),
            },
        }
    }

    /// Reads a value as a scenario file gives it (one element of a list).
    pub fn parse_toml(&self, v: &toml::Value) -> Result<Value, String> {
        let got = match v {
            toml::Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        match (self.kind, v) {
            (Kind::Int { .. }, toml::Value::Integer(n)) if *n >= 0 => self.check_int(*n as u64, &got),
            (Kind::Int { lo, hi, what }, _) => Err(format!("expected {what} ({lo} to {hi}), got {got}")),
            (Kind::Duration { positive }, toml::Value::String(s)) => check_duration(parse_duration(s)?, positive, &got),
            (Kind::Duration { .. }, _) => Err(format!("expected a duration such as \"2s\" or \"500ms\", got {got}")),
            (Kind::Bool, toml::Value::Boolean(b)) => Ok(Value::Bool(*b)),
            (Kind::Bool, _) => Err(format!("expected true or false, got {got}")),
            (Kind::Text { .. }, toml::Value::String(s)) => Ok(Value::Text(s.clone())),
            // `service = 0`: no service time.
            (Kind::Text { .. }, toml::Value::Integer(0)) if self.key == "service" => Ok(Value::Text("0".into())),
            (Kind::Text { what }, _) => Err(format!("expected {what}, got {got}")),
            (Kind::Settings, toml::Value::Table(t)) => {
                let mut parts = Vec::new();
                for (k, v) in t {
                    let v = match v {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(n) => n.to_string(),
                        toml::Value::Boolean(b) => if *b { "1" } else { "0" }.to_string(),
                        other => return Err(format!("{k}: expected a number or a string, got {other}")),
                    };
                    parts.push(format!("{k}={v}"));
                }
                let text = parts.join(",");
                parse_settings(&text).map(|_| Value::Text(text))
            }
            (Kind::Settings, _) => Err(format!(
                "expected a table of settings such as {{ \"net.core.somaxconn\" = 64 }}, got {got}"
            )),
            (Kind::Rate, toml::Value::Integer(n)) if *n > 0 => per_second(*n as f64),
            (Kind::Rate, toml::Value::Float(r)) if r.is_finite() && *r > 0.0 => per_second(*r),
            (Kind::Rate, toml::Value::String(s)) => {
                let pct = s
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .filter(|p| p.is_finite() && *p > 0.0 && *p <= 1000.0);
                pct.map(|p| Value::Rate(Rate::OfCapacity(p / 100.0))).ok_or_else(|| {
                    format!("expected connections per second or a percentage of capacity such as \"20%\", got {got}")
                })
            }
            (Kind::Rate, _) => Err(format!(
                "expected connections per second or a percentage of capacity such as \"20%\", got {got}"
            )),
        }
    }

    fn check_int(&self, n: u64, got: &str) -> Result<Value, String> {
        match self.kind {
            Kind::Int { lo, hi, what } if !(lo..=hi).contains(&n) => {
                Err(format!("expected {what} ({lo} to {hi}), got {got}"))
            }
            _ => Ok(Value::Int(n)),
        }
    }
}

fn check_duration(d: Duration, positive: bool, got: &str) -> Result<Value, String> {
    if positive && d.is_zero() {
        Err(format!("must be longer than 0, got {got}"))
    } else {
        Ok(Value::Duration(d))
    }
}

fn per_second(r: f64) -> Result<Value, String> {
    match loadgen::config::rate_problem(r) {
        None => Ok(Value::Rate(Rate::PerSecond(r))),
        Some(why) => Err(why),
    }
}

fn none(_: &RunSpec) -> Vec<(&'static str, String)> {
    Vec::new()
}

fn cell<T: ToString>(x: Option<T>) -> String {
    x.map_or(String::new(), |v| v.to_string())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `IDX:FACTOR`, e.g. `0:10`.
pub fn parse_slow(s: &str) -> Result<(usize, f64), String> {
    let (idx, factor) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not IDX:FACTOR (e.g. 0:10)"))?;
    let idx = idx
        .parse()
        .map_err(|_| format!("'{idx}' in '{s}' is not a worker index"))?;
    match factor.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok((idx, f)),
        _ => Err(format!("'{factor}' in '{s}' is not a positive factor")),
    }
}

/// `IDX:AT:FOR`, e.g. `0:1s:300ms`.
pub fn parse_stall(s: &str) -> Result<(usize, Stall), String> {
    let parts: Vec<&str> = s.split(':').collect();
    let [idx, at, length] = parts[..] else {
        return Err(format!("'{s}' is not IDX:AT:FOR (e.g. 0:1s:300ms)"));
    };
    let idx = idx
        .parse()
        .map_err(|_| format!("'{idx}' in '{s}' is not a worker index"))?;
    let at = parse_duration(at)?;
    let length = parse_duration(length)?;
    if length.is_zero() {
        return Err(format!("'{s}': the stall must last more than 0"));
    }
    Ok((idx, Stall { at, length }))
}

/// `KEY=VALUE[,KEY=VALUE...]` sysctl settings: keys of the net. tree
/// (`net.core.somaxconn`), values of printable text (`1024 65535`).
pub fn parse_settings(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(|one| {
            let (k, v) = one
                .split_once('=')
                .ok_or_else(|| format!("'{one}' is not KEY=VALUE (e.g. net.core.somaxconn=64)"))?;
            let (k, v) = (k.trim(), v.trim());
            let key_ok = k.starts_with("net.")
                && k.split('.').all(|part| {
                    !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
            if !key_ok {
                return Err(format!(
                    "'{k}' is not a per-namespace network sysctl (net.KEY, e.g. net.core.somaxconn)"
                ));
            }
            if v.is_empty() || v.chars().any(|c| c.is_control()) {
                return Err(format!("'{one}': the value must be printable and not empty"));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// `HOST:PORT`, an address or a name (its first address).
pub fn parse_target(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("'{s}' is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)"))
}

/// A comma-separated list of this machine's CPUs.
pub fn parse_cpus(s: &str) -> Result<Vec<usize>, String> {
    let n = sys::cpu_count();
    s.split(',')
        .map(|c| match c.trim().parse::<usize>() {
            Ok(c) if c < n => Ok(c),
            _ => Err(format!("'{c}' in '{s}' is not a CPU of this machine (0 to {})", n - 1)),
        })
        .collect()
}

/// The open loop of `spec`, made so (with the defaults) if it was closed.
fn open_loop(spec: &mut RunSpec) -> &mut OpenLoop {
    if let Load::Closed { .. } = spec.load {
        spec.load = Load::Open(OpenLoop {
            rate: 1.0,
            arrivals: Arrivals::Poisson,
            max_inflight: loadgen::config::DEFAULT_MAX_INFLIGHT,
        });
    }
    match &mut spec.load {
        Load::Open(o) => o,
        Load::Closed { .. } => unreachable!("made open above"),
    }
}

/// The table: scenario keys first, in the order a scenario's lists expand
/// (the first outermost), then the parameters of the command line only.
pub static PARAMS: &[Param] = &[
    Param {
        key: "model",
        flag: "model",
        value_name: "MODEL",
        help: "Accept model, or a real server the harness starts (see `harness models`)",
        default: None,
        kind: Kind::Text { what: "a model name" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.subject = v.text().parse::<Subject>()?;
            Ok(())
        },
        meta: |s| vec![("model", json!(s.subject.name()))],
        // summary.csv's first column, `model`, is every row's own.
        columns: none,
    },
    Param {
        key: "workers",
        flag: "workers",
        value_name: "N",
        help: "Worker processes",
        default: Some("4"),
        kind: Kind::Int { lo: 1, hi: 1024, what: "a number of workers" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.workers = v.int() as usize;
            Ok(())
        },
        meta: |s| vec![("workers", json!(s.workers))],
        // summary.csv's `workers` is the workers measured.
        columns: none,
    },
    Param {
        key: "concurrency",
        flag: "concurrency",
        value_name: "C",
        help: "Closed loop: connections in flight [default: 32 unless --rate]",
        default: None,
        kind: Kind::Int { lo: 1, hi: 1_000_000, what: "a number of connections" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.load = Load::Closed { concurrency: v.int() as usize };
            Ok(())
        },
        meta: |s| vec![("concurrency", json!(s.load.columns().0))],
        columns: |s| vec![("concurrency", cell(s.load.columns().0))],
    },
    Param {
        key: "rate",
        flag: "rate",
        value_name: "R",
        help: "Open loop instead: new connections per second, on a schedule fixed in advance (at most 1e9)",
        default: None,
        kind: Kind::Rate,
        scenario: true,
        repeat: false,
        set: |s, v| {
            let Value::Rate(r) = v else { return Ok(()) };
            s.rate_spec = Some(*r);
            open_loop(s).rate = match r {
                Rate::PerSecond(x) => *x,
                // Resolved once the sweep has measured the capacity.
                Rate::OfCapacity(_) => 1.0,
            };
            Ok(())
        },
        meta: |s| {
            let rate = s.load.columns().1;
            vec![
                ("loop", json!(if rate.is_some() { "open" } else { "closed" })),
                ("rate_per_s", json!(rate)),
            ]
        },
        columns: |s| {
            let rate = s.load.columns().1;
            vec![
                ("loop", if rate.is_some() { "open" } else { "closed" }.to_string()),
                ("rate", cell(rate)),
            ]
        },
    },
    Param {
        key: "arrivals",
        flag: "arrivals",
        value_name: "constant|poisson",
        help: "Open loop: the arrival process",
        default: Some("poisson"),
        kind: Kind::Text { what: "\"constant\" or \"poisson\"" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            let a: Arrivals = v.text().parse()?;
            if let Load::Open(o) = &mut s.load {
                o.arrivals = a;
            }
            Ok(())
        },
        meta: |s| vec![("arrivals", json!(s.load.columns().2))],
        columns: |s| vec![("arrivals", cell(s.load.columns().2))],
    },
    Param {
        key: "max_inflight",
        flag: "max-inflight",
        value_name: "N",
        help: "Open loop: cap on open connections; arrivals that find it full start late, and those that wait longer than --timeout are dropped",
        default: Some("1000"),
        kind: Kind::Int { lo: 1, hi: 1_000_000, what: "a number of connections" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            if let Load::Open(o) = &mut s.load {
                o.max_inflight = v.int() as usize;
            }
            Ok(())
        },
        meta: |s| vec![("max_inflight", json!(s.load.columns().3))],
        columns: |s| vec![("max_inflight", cell(s.load.columns().3))],
    },
    Param {
        key: "requests_per_conn",
        flag: "requests-per-conn",
        value_name: "K",
        help: "Requests per connection (keep-alive); 1 = a connection per request",
        default: Some("1"),
        kind: Kind::Int { lo: 1, hi: 1_000_000, what: "a number of requests" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.requests_per_conn = v.int() as u32;
            Ok(())
        },
        meta: |s| vec![("requests_per_conn", json!(s.requests_per_conn))],
        columns: |s| vec![("requests_per_conn", s.requests_per_conn.to_string())],
    },
    Param {
        key: "connections",
        flag: "connections",
        value_name: "N",
        help: "Stop after this many connections [default: 20000 unless --duration]",
        default: None,
        kind: Kind::Int { lo: 1, hi: u64::MAX >> 1, what: "a number of connections" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.stop = Stop::Connections(v.int());
            Ok(())
        },
        meta: |s| {
            let n = match s.stop {
                Stop::Connections(n) => Some(n),
                Stop::Duration(_) => None,
            };
            vec![("connections", json!(n))]
        },
        // summary.csv's `connections` is the connections attempted.
        columns: none,
    },
    Param {
        key: "duration",
        flag: "duration",
        value_name: "D",
        help: "Stop after this long (e.g. 10s, 500ms)",
        default: None,
        kind: Kind::Duration { positive: true },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.stop = Stop::Duration(v.duration());
            Ok(())
        },
        meta: |s| {
            let d = match s.stop {
                Stop::Duration(d) => Some(d.as_secs_f64()),
                Stop::Connections(_) => None,
            };
            vec![("duration_s", json!(d))]
        },
        // summary.csv's `duration_s` is how long the load took.
        columns: none,
    },
    Param {
        key: "warmup",
        flag: "warmup",
        value_name: "D",
        help: "Run the same load this long first and leave it out of every figure",
        default: Some("0"),
        kind: Kind::Duration { positive: false },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.warmup = v.duration();
            Ok(())
        },
        meta: |s| vec![("warmup_s", json!(s.warmup.as_secs_f64()))],
        columns: |s| vec![("warmup_s", s.warmup.as_secs_f64().to_string())],
    },
    Param {
        key: "threads",
        flag: "threads",
        value_name: "T",
        help: "Load generator threads, each with its own epoll loop [default: 4 per CPU, at most the connections that may be open]",
        default: None,
        kind: Kind::Int { lo: 1, hi: 1024, what: "a number of threads" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.threads = v.int() as usize;
            Ok(())
        },
        meta: |s| vec![("threads", json!(s.threads))],
        columns: |s| vec![("threads", s.threads.to_string())],
    },
    Param {
        key: "gap",
        flag: "gap",
        value_name: "D",
        help: "Closed loop: think time between one client's connections (e.g. 200us)",
        default: Some("0"),
        kind: Kind::Duration { positive: false },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.gap = v.duration();
            Ok(())
        },
        meta: |s| vec![("gap_us", json!(s.gap.as_micros() as u64))],
        columns: |s| vec![("gap_us", (s.gap.as_micros() as u64).to_string())],
    },
    Param {
        key: "timeout",
        flag: "timeout",
        value_name: "D",
        help: "Per request (and, in the open loop, the longest an arrival waits for a slot)",
        default: Some("5s"),
        kind: Kind::Duration { positive: true },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.timeout = v.duration();
            Ok(())
        },
        meta: |s| vec![("timeout_ms", json!(s.timeout.as_millis() as u64))],
        columns: |s| vec![("timeout_ms", (s.timeout.as_millis() as u64).to_string())],
    },
    Param {
        key: "interval",
        flag: "interval",
        value_name: "D",
        help: "Sampling interval of timeseries.csv and latency.hlog",
        default: Some("100ms"),
        kind: Kind::Duration { positive: true },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.interval = v.duration();
            Ok(())
        },
        meta: |s| vec![("interval_ms", json!(ms(s.interval)))],
        columns: |s| vec![("interval_ms", ms(s.interval).to_string())],
    },
    Param {
        key: "stall_worker",
        flag: "stall-worker",
        value_name: "IDX:AT:FOR",
        help: "Worker IDX stops serving at AT after the load begins, for FOR (e.g. 0:1s:300ms)",
        default: None,
        kind: Kind::Text { what: "\"IDX:AT:FOR\" such as \"0:1s:300ms\"" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.stall = Some(parse_stall(v.text())?);
            Ok(())
        },
        meta: |s| {
            let stall = s.stall.map(|(w, st)| {
                json!({"worker": w, "at_ms": ms(st.at), "for_ms": ms(st.length)})
            });
            vec![("stall", json!(stall))]
        },
        columns: none,
    },
    Param {
        key: "arrival_seed",
        flag: "seed",
        value_name: "S",
        help: "Seed of the arrival process (recorded), so a run can be repeated",
        default: Some("1"),
        kind: Kind::Int { lo: 0, hi: i64::MAX as u64, what: "a seed" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.seed = v.int();
            Ok(())
        },
        meta: |s| vec![("seed", json!(s.seed))],
        columns: |s| vec![("seed", s.seed.to_string())],
    },
    Param {
        key: "service",
        flag: "service",
        value_name: "S",
        help: "Time each request takes in a worker: 0, spin:50us (busy CPU), sleep:1ms, or exp:200us (sleeps, exponentially distributed, that mean)",
        default: Some("0"),
        kind: Kind::Text { what: "a service time such as \"spin:50us\"" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.service = v.text().parse()?;
            Ok(())
        },
        meta: |s| vec![("service", json!(s.service.to_string()))],
        columns: |s| vec![("service", s.service.to_string())],
    },
    Param {
        key: "slow_worker",
        flag: "slow-worker",
        value_name: "IDX:FACTOR",
        help: "Worker IDX's service time is FACTOR times longer (e.g. 0:10)",
        default: None,
        kind: Kind::Text { what: "\"IDX:FACTOR\" such as \"0:10\"" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.slow = Some(parse_slow(v.text())?);
            Ok(())
        },
        meta: |s| vec![("slow_worker", json!(s.slow.map(|(w, f)| json!({"worker": w, "factor": f}))))],
        columns: |s| {
            vec![
                ("slow_worker", cell(s.slow.map(|(w, _)| w))),
                ("slow_factor", cell(s.slow.map(|(_, f)| f))),
            ]
        },
    },
    Param {
        key: "backlog",
        flag: "backlog",
        value_name: "N",
        help: "listen(2) backlog of every listening socket",
        default: Some("511"),
        kind: Kind::Int { lo: 1, hi: i32::MAX as u64, what: "a listen backlog" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.model_opts.backlog = v.int() as i32;
            Ok(())
        },
        meta: |s| vec![("backlog", json!(s.model_opts.backlog))],
        columns: |s| vec![("backlog", s.model_opts.backlog.to_string())],
    },
    Param {
        key: "steer",
        flag: "steer",
        value_name: "cpu|random",
        help: "reuseport-cbpf: how the BPF program picks a socket",
        default: Some("cpu"),
        kind: Kind::Text { what: "\"cpu\" or \"random\"" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.model_opts.steer = v.text().parse()?;
            Ok(())
        },
        meta: |s| vec![("steer", json!(s.model_opts.steer.name()))],
        columns: |s| vec![("steer", s.model_opts.steer.name().to_string())],
    },
    Param {
        key: "worker_concurrency",
        flag: "worker-concurrency",
        value_name: "K",
        help: "Connections a worker may have open at once: above 1 each worker serves them from an event loop (epoll models and dispatchers only)",
        default: Some("1"),
        kind: Kind::Int { lo: 1, hi: MAX_WORKER_CONCURRENCY as u64, what: "a number of connections per worker" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.worker_concurrency = v.int() as usize;
            Ok(())
        },
        meta: |s| vec![("worker_concurrency", json!(s.worker_concurrency))],
        columns: |s| vec![("worker_concurrency", s.worker_concurrency.to_string())],
    },
    Param {
        key: "fleet",
        flag: "fleet",
        value_name: "processes|threads",
        help: "Workers as forked processes, or as threads of one forked process",
        default: Some("processes"),
        kind: Kind::Text { what: "\"processes\" or \"threads\"" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.fleet = v.text().parse()?;
            Ok(())
        },
        meta: |s| vec![("fleet", json!(s.fleet.name()))],
        columns: |s| vec![("fleet", s.fleet.name().to_string())],
    },
    Param {
        key: "shared_epoll_set",
        flag: "shared-epoll-set",
        value_name: "",
        help: "Thread fleets of shared-epoll or epoll-exclusive: every thread waits on one epoll set",
        default: None,
        kind: Kind::Bool,
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.shared_epoll_set = v.flag();
            Ok(())
        },
        meta: |s| vec![("shared_epoll_set", json!(s.shared_epoll_set))],
        columns: |s| vec![("shared_epoll_set", s.shared_epoll_set.to_string())],
    },
    Param {
        key: "rolling_restart",
        flag: "rolling-restart",
        value_name: "AT",
        help: "From AT on, replace every worker one after another (pm2 reload)",
        default: None,
        kind: Kind::Duration { positive: false },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.faults.rolling_restart = Some(v.duration());
            Ok(())
        },
        meta: |s| vec![("rolling_restart_ms", json!(s.faults.rolling_restart.map(ms)))],
        columns: |s| vec![("rolling_restart_ms", cell(s.faults.rolling_restart.map(ms)))],
    },
    Param {
        key: "tcp_migrate_req",
        flag: "tcp-migrate-req",
        value_name: "on|off",
        help: "Set net.ipv4.tcp_migrate_req for the run (on: a closed reuseport socket's queued connections move to the group's other sockets; off: they are reset), restored afterwards; needs root",
        default: None,
        kind: Kind::Bool,
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.tcp_migrate_req = Some(v.flag());
            Ok(())
        },
        // The run's value (null: the machine's, in meta.json's sysctls).
        meta: |s| vec![("tcp_migrate_req", json!(s.tcp_migrate_req))],
        columns: |s| vec![("tcp_migrate_req", cell(s.tcp_migrate_req))],
    },
    Param {
        key: "netns",
        flag: "netns",
        value_name: "run|host",
        help: "run: as root, the run gets a network namespace of its own (its kernel counters and sysctls are its alone; without root the host's is used, and said so); host: the host's namespace",
        default: Some("run"),
        kind: Kind::Text { what: "\"run\" or \"host\"" },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.netns = v.text().parse()?;
            Ok(())
        },
        // What was asked; meta.json's `netns` says what the run had.
        meta: |s| vec![("netns", json!(s.netns.name()))],
        columns: |s| vec![("netns", s.netns.name().to_string())],
    },
    Param {
        key: "sysctl",
        flag: "sysctl",
        value_name: "KEY=VALUE",
        help: "Set a per-namespace net sysctl in the run's own namespace (root), e.g. net.core.somaxconn=64; repeatable; the host's value is never changed",
        default: None,
        kind: Kind::Settings,
        scenario: true,
        repeat: true,
        set: |s, v| {
            for (k, val) in parse_settings(v.text())? {
                s.sysctls.insert(k, val);
            }
            Ok(())
        },
        meta: |s| vec![("sysctl", json!(s.sysctls))],
        columns: |s| {
            let all: Vec<String> = s.sysctls.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![("sysctl", all.join(" "))]
        },
    },
    Param {
        key: "queue_interval",
        flag: "queue-interval",
        value_name: "D",
        help: "How often every listener's accept-queue depth is sampled (sock_diag), never slower than --interval",
        default: Some("10ms"),
        kind: Kind::Duration { positive: true },
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.queue_interval = v.duration();
            Ok(())
        },
        meta: |s| vec![("queue_interval_ms", json!(ms(s.queue_every())))],
        columns: none,
    },
    // ---- the command line only ----
    Param {
        key: "target",
        flag: "target",
        value_name: "HOST:PORT",
        help: "Measure a server the harness did not start, instead of --model (loopback only unless --allow-remote)",
        default: None,
        kind: Kind::Text { what: "HOST:PORT" },
        scenario: false,
        repeat: false,
        set: |s, v| {
            s.subject = Subject::Target(Target {
                addr: parse_target(v.text())?,
                attribution: Attribution::default(),
                allow_remote: false,
            });
            Ok(())
        },
        meta: |s| {
            let t = match &s.subject {
                Subject::Target(t) => Some(json!({
                    "address": t.addr.to_string(),
                    "attribute": t.attribution.to_string(),
                })),
                _ => None,
            };
            vec![("target", json!(t))]
        },
        columns: none,
    },
    Param {
        key: "attribute",
        flag: "attribute",
        value_name: "header:NAME|body|kernel",
        help: "How a connection's worker is known: with --target, header:NAME or body (the body's first line) [default: header:x-worker]; kernel (any subject, root): the kernel counts who accepted, per process or thread (--kernel-by), beside what the responses say",
        default: None,
        kind: Kind::Text { what: "header:NAME, body or kernel" },
        scenario: false,
        repeat: false,
        set: |s, v| {
            if v.text() == "kernel" {
                s.kernel_attribution = true;
                // A target's responses then name nobody: the kernel's
                // workers are the workers.
                if let Subject::Target(t) = &mut s.subject {
                    t.attribution = Attribution::Off;
                }
                return Ok(());
            }
            let a = Attribution::parse(v.text()).map_err(|e| e.replace("or body", "or body, or kernel"))?;
            if let Subject::Target(t) = &mut s.subject {
                t.attribution = a;
            }
            Ok(())
        },
        // In `target`, and `kernel_attribution`.
        meta: |s| {
            let by = s.kernel_attribution.then(|| s.kernel_by.name());
            vec![("kernel_attribution", json!(by))]
        },
        columns: none,
    },
    Param {
        key: "kernel_by",
        flag: "kernel-by",
        value_name: "process|thread",
        help: "With --attribute kernel: a worker is a process (its threads summed) or a thread [default: process]",
        default: None,
        kind: Kind::Text { what: "process or thread" },
        scenario: false,
        repeat: false,
        set: |s, v| {
            s.kernel_by = v.text().parse()?;
            Ok(())
        },
        // In `kernel_attribution`.
        meta: |_| Vec::new(),
        columns: none,
    },
    Param {
        key: "target_pid",
        flag: "target-pid",
        value_name: "PID",
        help: "With --target and --attribute kernel: a process of the server to count (repeatable) [default: every process holding its listening socket]",
        default: None,
        kind: Kind::Int { lo: 1, hi: i32::MAX as u64, what: "a process id" },
        scenario: false,
        repeat: true,
        set: |s, v| {
            s.target_pids.push(v.int() as i32);
            Ok(())
        },
        meta: |s| vec![("target_pids", json!(s.target_pids))],
        columns: none,
    },
    Param {
        key: "allow_remote",
        flag: "allow-remote",
        value_name: "",
        help: "With --target: allow a target that is not on loopback",
        default: None,
        kind: Kind::Bool,
        scenario: false,
        repeat: false,
        set: |s, v| {
            if let Subject::Target(t) = &mut s.subject {
                t.allow_remote = v.flag();
            }
            Ok(())
        },
        meta: |s| vec![("allow_remote", json!(matches!(&s.subject, Subject::Target(t) if t.allow_remote)))],
        columns: none,
    },
    Param {
        key: "sources",
        flag: "sources",
        value_name: "LIST",
        help: "Source addresses to rotate over, e.g. 127.0.0.1-127.0.0.32 [default: the kernel's choice, 127.0.0.1]",
        default: None,
        kind: Kind::Text { what: "a list of loopback addresses" },
        scenario: false,
        repeat: false,
        set: |s, v| {
            s.sources = loadgen::config::parse_sources(v.text())?;
            Ok(())
        },
        meta: |s| vec![("sources", json!(s.sources.iter().map(|a| a.to_string()).collect::<Vec<_>>()))],
        columns: none,
    },
    Param {
        key: "port",
        flag: "port",
        value_name: "P",
        help: "Port to listen on; 0 picks a free one",
        default: Some("0"),
        kind: Kind::Int { lo: 0, hi: 65535, what: "a port" },
        scenario: false,
        repeat: false,
        set: |s, v| {
            s.port = v.int() as u16;
            Ok(())
        },
        meta: |s| vec![("port", json!(s.port))],
        columns: none,
    },
    Param {
        key: "no_record",
        flag: "no-record",
        value_name: "",
        help: "Record no latency (to measure what recording costs)",
        default: None,
        kind: Kind::Bool,
        scenario: false,
        repeat: false,
        set: |s, v| {
            s.record = !v.flag();
            Ok(())
        },
        meta: |s| vec![("record_latency", json!(s.record))],
        columns: none,
    },
    Param {
        key: "connection_log",
        flag: "connection-log",
        value_name: "",
        help: "Write connections.csv: when each connection started, was established, was taken by its worker (x-accepted-ns), was answered (x-responded-ns) and completed (about 56 bytes of memory per connection)",
        default: None,
        kind: Kind::Bool,
        scenario: true,
        repeat: false,
        set: |s, v| {
            s.connection_log = v.flag();
            Ok(())
        },
        meta: |s| vec![("connection_log", json!(s.connection_log))],
        columns: none,
    },
    Param {
        key: "pin_workers",
        flag: "pin-workers",
        value_name: "",
        help: "Pin worker i to CPU i modulo the CPU count",
        default: None,
        kind: Kind::Bool,
        scenario: false,
        repeat: false,
        set: |s, v| {
            s.pin_workers = v.flag();
            Ok(())
        },
        meta: |s| vec![("pin_workers", json!(s.pin_workers))],
        columns: none,
    },
    Param {
        key: "pin_loadgen",
        flag: "pin-loadgen",
        value_name: "CPUS",
        help: "Pin the load generator's threads to these CPUs (e.g. 0 or 0,1)",
        default: None,
        kind: Kind::Text { what: "a list of CPUs such as 0,1" },
        scenario: false,
        repeat: false,
        set: |s, v| {
            s.pin_loadgen = parse_cpus(v.text())?;
            Ok(())
        },
        meta: |s| vec![("pin_loadgen", json!(s.pin_loadgen))],
        columns: none,
    },
    Param {
        key: "kill_worker",
        flag: "kill-worker",
        value_name: "IDX@T",
        help: "SIGKILL worker IDX at T after the measured load began (e.g. 1@2s); repeatable",
        default: None,
        kind: Kind::Text { what: "IDX@T such as 1@2s" },
        scenario: false,
        repeat: true,
        set: |s, v| {
            s.faults.kills.push(v.text().parse::<Kill>()?);
            Ok(())
        },
        meta: |s| {
            let kills: Vec<Json> = s
                .faults
                .kills
                .iter()
                .map(|k| json!({"worker": k.worker, "at_ms": ms(k.at)}))
                .collect();
            vec![("kill_worker", json!(kills))]
        },
        columns: none,
    },
    Param {
        key: "respawn",
        flag: "respawn",
        value_name: "",
        help: "With --kill-worker: start a replacement for each killed worker at once, as pm2 and Node's cluster do",
        default: None,
        kind: Kind::Bool,
        scenario: false,
        repeat: false,
        set: |s, v| {
            s.faults.respawn = v.flag();
            Ok(())
        },
        meta: |s| vec![("respawn", json!(s.faults.respawn))],
        columns: none,
    },
    Param {
        key: "bind",
        flag: "bind",
        value_name: "IP",
        help: "Where the workers listen: a loopback address, or 0.0.0.0 / :: for every interface (the load still goes to loopback)",
        default: Some("127.0.0.1"),
        kind: Kind::Text { what: "an IP address" },
        scenario: false,
        repeat: false,
        set: |s, v| {
            s.bind = v
                .text()
                .parse::<IpAddr>()
                .map_err(|_| format!("'{}' is not an IP address", v.text()))?;
            Ok(())
        },
        meta: |s| vec![("bind", json!(s.bind.to_string()))],
        columns: none,
    },
];

/// The parameter with scenario key `key`.
pub fn by_key(key: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.key == key)
}

/// The scenario keys, in expansion order.
pub fn scenario_keys() -> impl Iterator<Item = &'static str> {
    PARAMS.iter().filter(|p| p.scenario).map(|p| p.key)
}

/// The key a refusal carries when the point as a whole cannot run (what
/// [`RunSpec::validate`] refuses): a scenario shows it with the point's label.
pub const POINT: &str = "(point)";

/// How refusals name parameters: as flags (`--duration`) on the command
/// line, as keys (`duration`) in scenario files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    Flags,
    Keys,
}

impl Naming {
    pub fn name(self, key: &str) -> String {
        match (self, by_key(key)) {
            (Naming::Flags, Some(p)) => p.flag_name(),
            _ => key.to_string(),
        }
    }
}

/// Why a set of values cannot make a run: the parameter to blame and the
/// message (which, on the command line, names the flag itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub key: &'static str,
    pub message: String,
}

/// The values given for one run, each already read by its parameter.
#[derive(Debug, Clone, Default)]
pub struct Given(Vec<(&'static Param, Vec<Value>)>);

impl Given {
    /// Adds the values of `param` (several only where it repeats).
    pub fn push(&mut self, param: &'static Param, values: Vec<Value>) {
        self.0.retain(|(p, _)| p.key != param.key);
        self.0.push((param, values));
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(p, _)| p.key == key)
    }

    /// The given values in table order.
    fn in_order(&self) -> Vec<&(&'static Param, Vec<Value>)> {
        let mut v: Vec<_> = self.0.iter().collect();
        v.sort_by_key(|(p, _)| PARAMS.iter().position(|q| q.key == p.key));
        v
    }
}

/// Every parameter at its default, with `subject` (a closed loop of 32
/// connections, 20000 connections).
pub fn defaults(subject: Subject) -> RunSpec {
    let mut spec = RunSpec::blank(subject);
    for p in PARAMS {
        if let Some(text) = p.default {
            // The table's own defaults parse (a unit test says so).
            if let Ok(v) = p.parse_text(text) {
                let _ = (p.set)(&mut spec, &v);
            }
        }
    }
    spec.threads = loadgen::config::default_threads(spec.load.max_open());
    spec
}

/// The spec the `given` values make: the defaults, each given value applied
/// in table order, the combinations checked, the defaults that depend on
/// others filled in, and [`RunSpec::validate`]. Pure: nothing on the machine
/// is read or changed.
pub fn build(given: &Given, naming: Naming) -> Result<RunSpec, Refusal> {
    let n = |k: &str| naming.name(k);
    let refuse = |key: &'static str, message: String| Refusal { key, message };
    // On the command line a message names its flag; in a file the location
    // names the key already.
    let says = |key: &'static str, rest: String| match naming {
        Naming::Flags => refuse(key, format!("{} {rest}", n(key))),
        Naming::Keys => refuse(key, rest),
    };
    let has = |k: &str| given.has(k);
    // Which subject: exactly one of --model and --target.
    match (has("model"), has("target")) {
        (true, true) => return Err(says("target", format!("cannot be given with {}", n("model")))),
        (false, false) => {
            return Err(refuse(
                "model",
                format!("name what to measure: {} or {}", n("model"), n("target")),
            ))
        }
        _ => {}
    }
    for k in ["allow_remote", "target_pid"] {
        if has(k) && !has("target") {
            let key = by_key(k).map_or("target", |p| p.key);
            return Err(says(key, format!("applies to {} only", n("target"))));
        }
    }
    if has("rate") && has("concurrency") {
        return Err(says(
            "rate",
            format!(
                "cannot be given with {} (open or closed loop: choose one)",
                n("concurrency")
            ),
        ));
    }
    if has("connections") && has("duration") {
        return Err(says(
            "duration",
            format!("cannot be given with {} (choose one way to stop)", n("connections")),
        ));
    }
    for k in ["arrivals", "max_inflight"] {
        if has(k) && !has("rate") {
            let key = by_key(k).map_or("rate", |p| p.key);
            return Err(says(key, format!("only applies to an open loop: give a {}", n("rate"))));
        }
    }
    if has("gap") && has("rate") {
        return Err(says(
            "gap",
            format!("only applies to a closed loop, not with a {}", n("rate")),
        ));
    }
    let mut spec = defaults(Subject::Model(fleet::model::Model::SharedEpoll));
    for (p, values) in given.in_order() {
        for v in values {
            (p.set)(&mut spec, v).map_err(|e| {
                let shown = match v {
                    Value::Text(t) => t.clone(),
                    Value::Int(i) => i.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Duration(d) => format!("{d:?}"),
                    Value::Rate(r) => r.to_string(),
                };
                match naming {
                    Naming::Flags => refuse(p.key, format!("{} {shown}: {e}", p.flag_name())),
                    Naming::Keys => refuse(p.key, e),
                }
            })?;
        }
    }
    if has("attribute") && !has("target") && !spec.kernel_attribution {
        return Err(says(
            "attribute",
            format!(
                "header:NAME and body apply to {} only (kernel applies to any subject)",
                n("target")
            ),
        ));
    }
    for k in ["kernel_by", "target_pid"] {
        if has(k) && !spec.kernel_attribution {
            let key = by_key(k).map_or("attribute", |p| p.key);
            return Err(says(key, format!("applies with {} kernel only", n("attribute"))));
        }
    }
    // A rate given: the open loop's own defaults for what was not.
    if has("rate") && !has("arrivals") {
        if let Load::Open(o) = &mut spec.load {
            o.arrivals = Arrivals::Poisson;
        }
    }
    if !has("threads") {
        spec.threads = loadgen::config::default_threads(spec.load.max_open());
    }
    for (key, w) in [
        ("stall_worker", spec.stall.map(|s| s.0)),
        ("slow_worker", spec.slow.map(|s| s.0)),
    ] {
        if let Some(w) = w.filter(|w| *w >= spec.workers) {
            let message = match naming {
                Naming::Flags => format!(
                    "{} {w}: there are only {} workers (0 to {})",
                    n(key),
                    spec.workers,
                    spec.workers - 1
                ),
                Naming::Keys => format!("worker {w} does not exist with {} workers", spec.workers),
            };
            return Err(refuse(by_key(key).map_or("workers", |p| p.key), message));
        }
    }
    spec.validate().map_err(|e| refuse(POINT, e.0))?;
    Ok(spec)
}

/// A closed-loop run of `subject` with every other setting at its default.
pub fn closed(subject: impl Into<Subject>, workers: usize, concurrency: usize, stop: Stop) -> RunSpec {
    let mut spec = defaults(subject.into());
    spec.workers = workers;
    spec.load = Load::Closed { concurrency };
    spec.stop = stop;
    spec.threads = loadgen::config::default_threads(concurrency);
    spec
}

/// meta.json's `parameters`: every parameter's value in force.
pub fn meta(spec: &RunSpec) -> Json {
    let mut m = serde_json::Map::new();
    for p in PARAMS {
        for (k, v) in (p.meta)(spec) {
            m.insert(k.to_string(), v);
        }
    }
    Json::Object(m)
}

/// summary.csv's parameter columns, in table order.
pub fn columns(spec: &RunSpec) -> Vec<(&'static str, String)> {
    PARAMS.iter().flat_map(|p| (p.columns)(spec)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &[(&str, &str)]) -> Given {
        let mut g = Given::default();
        for (k, text) in pairs {
            let p = by_key(k).unwrap();
            g.push(p, vec![p.parse_text(text).unwrap()]);
        }
        g
    }

    #[test]
    fn every_default_parses_and_every_name_is_unique() {
        for p in PARAMS {
            if let Some(d) = p.default {
                assert!(p.parse_text(d).is_ok(), "{}: default {d:?}", p.key);
            }
            assert_eq!(PARAMS.iter().filter(|q| q.key == p.key).count(), 1, "{}", p.key);
            assert_eq!(PARAMS.iter().filter(|q| q.flag == p.flag).count(), 1, "{}", p.flag);
            assert!(!p.help.is_empty() && !p.help.contains('\n'), "{}", p.key);
        }
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let s = defaults(Subject::Model(fleet::model::Model::Reuseport));
        assert_eq!(s.workers, 4);
        assert_eq!(s.load, Load::Closed { concurrency: 32 });
        assert_eq!(s.stop, Stop::Connections(20_000));
        assert_eq!(
            (s.timeout, s.interval),
            (Duration::from_secs(5), Duration::from_millis(100))
        );
        assert_eq!((s.seed, s.requests_per_conn, s.worker_concurrency), (1, 1, 1));
        assert_eq!(s.model_opts.backlog, 511);
        assert_eq!(s.threads, loadgen::config::default_threads(32));
    }

    #[test]
    fn kernel_attribution_applies_to_any_subject_and_a_target_then_names_nobody() {
        let s = build(
            &given(&[("model", "nginx-reuseport"), ("attribute", "kernel")]),
            Naming::Flags,
        )
        .unwrap();
        assert!(s.kernel_attribution);
        assert_eq!(s.kernel_by, crate::accepts::KernelBy::Process);
        let s = build(
            &given(&[
                ("target", "127.0.0.1:8080"),
                ("attribute", "kernel"),
                ("kernel_by", "thread"),
                ("target_pid", "42"),
            ]),
            Naming::Flags,
        )
        .unwrap();
        assert_eq!(s.kernel_by, crate::accepts::KernelBy::Thread);
        assert_eq!(s.target_pids, [42]);
        match &s.subject {
            Subject::Target(t) => assert_eq!(t.attribution, Attribution::Off),
            other => panic!("{other:?}"),
        }
        let refused = |pairs: &[(&str, &str)]| build(&given(pairs), Naming::Flags).unwrap_err().message;
        assert_eq!(
            refused(&[("model", "reuseport"), ("attribute", "body")]),
            "--attribute header:NAME and body apply to --target only (kernel applies to any subject)"
        );
        assert_eq!(
            refused(&[("model", "reuseport"), ("kernel_by", "thread")]),
            "--kernel-by applies with --attribute kernel only"
        );
        assert_eq!(
            refused(&[("model", "reuseport"), ("attribute", "kernel"), ("target_pid", "7")]),
            "--target-pid applies to --target only"
        );
        assert_eq!(
            refused(&[("target", "127.0.0.1:1"), ("target_pid", "7")]),
            "--target-pid applies with --attribute kernel only"
        );
        let e = refused(&[("model", "reuseport"), ("attribute", "kernel"), ("kernel_by", "fibre")]);
        assert_eq!(e, "--kernel-by fibre: 'fibre' is not process or thread");
        let e = refused(&[("target", "127.0.0.1:1"), ("attribute", "kernal")]);
        assert!(e.starts_with("--attribute kernal: ") && e.contains("or kernel"), "{e}");
    }

    #[test]
    fn values_apply_and_combinations_are_checked() {
        let s = build(
            &given(&[("model", "reuseport"), ("rate", "500"), ("arrivals", "constant")]),
            Naming::Flags,
        )
        .unwrap();
        match s.load {
            Load::Open(o) => assert_eq!((o.rate, o.arrivals, o.max_inflight), (500.0, Arrivals::Constant, 1000)),
            other => panic!("{other:?}"),
        }
        let e = build(
            &given(&[("model", "reuseport"), ("rate", "5"), ("concurrency", "2")]),
            Naming::Flags,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "--rate cannot be given with --concurrency (open or closed loop: choose one)"
        );
        let e = build(
            &given(&[("model", "reuseport"), ("rate", "5"), ("concurrency", "2")]),
            Naming::Keys,
        )
        .unwrap_err();
        assert_eq!(
            (e.key, e.message.as_str()),
            (
                "rate",
                "cannot be given with concurrency (open or closed loop: choose one)"
            )
        );
        let e = build(&given(&[("workers", "2")]), Naming::Flags).unwrap_err();
        assert!(e.message.contains("--model"), "{e:?}");
        let e = build(
            &given(&[("model", "reuseport"), ("workers", "2"), ("stall_worker", "3:1s:1s")]),
            Naming::Keys,
        )
        .unwrap_err();
        assert_eq!(
            (e.key, e.message.as_str()),
            ("stall_worker", "worker 3 does not exist with 2 workers")
        );
        let e = build(&given(&[("model", "round-robin")]), Naming::Flags).unwrap_err();
        assert!(
            e.message
                .starts_with("--model round-robin: unknown model 'round-robin'"),
            "{e:?}"
        );
    }

    #[test]
    fn text_and_toml_read_alike_and_name_the_bad_value() {
        let w = by_key("workers").unwrap();
        assert_eq!(w.parse_text("8"), Ok(Value::Int(8)));
        assert_eq!(w.parse_toml(&toml::Value::Integer(8)), Ok(Value::Int(8)));
        assert!(w.parse_text("four").unwrap_err().contains("'four'"));
        assert_eq!(
            w.parse_toml(&toml::Value::String("four".into())).unwrap_err(),
            "expected a number of workers (1 to 1024), got \"four\""
        );
        assert!(w.parse_text("1025").unwrap_err().contains("1025"));
        let d = by_key("duration").unwrap();
        assert_eq!(
            d.parse_toml(&toml::Value::String("0s".into())).unwrap_err(),
            "must be longer than 0, got \"0s\""
        );
        let r = by_key("rate").unwrap();
        assert_eq!(
            r.parse_toml(&toml::Value::String("20%".into())),
            Ok(Value::Rate(Rate::OfCapacity(0.2)))
        );
        assert!(r.parse_text("20%").unwrap_err().contains("scenario"));
        assert!(r.parse_text("1e12").unwrap_err().contains("maximum"));
    }

    #[test]
    fn meta_and_columns_record_every_parameter_in_force() {
        let s = build(
            &given(&[("model", "reuseport"), ("slow_worker", "1:10"), ("duration", "2s")]),
            Naming::Flags,
        )
        .unwrap();
        let m = meta(&s);
        for key in [
            "model",
            "workers",
            "loop",
            "concurrency",
            "rate_per_s",
            "arrivals",
            "max_inflight",
            "seed",
            "connections",
            "duration_s",
            "requests_per_conn",
            "warmup_s",
            "interval_ms",
            "threads",
            "port",
            "gap_us",
            "timeout_ms",
            "sources",
            "stall",
            "record_latency",
            "backlog",
            "steer",
            "service",
            "slow_worker",
            "pin_workers",
            "pin_loadgen",
            "fleet",
            "shared_epoll_set",
            "worker_concurrency",
            "kill_worker",
            "respawn",
            "rolling_restart_ms",
            "tcp_migrate_req",
            "bind",
            "target",
        ] {
            assert!(m.get(key).is_some(), "meta.json lacks {key}");
        }
        assert_eq!(m["duration_s"], json!(2.0));
        assert_eq!(m["slow_worker"], json!({"worker": 1, "factor": 10.0}));
        let cols = columns(&s);
        let get = |c: &str| cols.iter().find(|(k, _)| *k == c).map(|(_, v)| v.as_str());
        assert_eq!(
            (get("slow_worker"), get("slow_factor"), get("concurrency")),
            (Some("1"), Some("10"), Some("32"))
        );
        assert_eq!((get("loop"), get("rate")), (Some("closed"), Some("")));
    }
}
