//! Scenario files: a grid of runs described in TOML.
//!
//! A scenario has a `name`, a `description`, optional `repetitions`,
//! `shuffle` and `seed`, and run parameters. Each parameter is either one
//! value (fixed for every run) or a list (a dimension of the grid); lists
//! expand to their cross product, the first parameter outermost:
//!
//! ```toml
//! name = "load-sweep"
//! description = "Fairness against offered load"
//! repetitions = 3
//! model = ["shared-epoll", "reuseport"]
//! workers = 4
//! rate = ["5%", "50%", "100%"]   # fractions of the measured capacity
//! duration = "2s"
//! ```
//!
//! Everything is checked before anything runs: an unknown key, a wrong type,
//! an empty list, a bad value or an impossible combination is one error
//! naming the file, the line and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::{Spanned, Value};

use crate::spec::{Load, RunSpec};
use crate::subject::Subject;
use crate::UsageError;
use fleet::model::Steer;
use fleet::supervise::FleetKind;
use fleet::worker::{Service, Stall};
use loadgen::{Arrivals, OpenLoop, Stop};

/// The parameters a scenario may vary, in expansion order.
pub const PARAMETERS: [&str; 25] = [
    "model",
    "workers",
    "concurrency",
    "rate",
    "arrivals",
    "max_inflight",
    "requests_per_conn",
    "connections",
    "duration",
    "warmup",
    "threads",
    "gap",
    "timeout",
    "interval",
    "stall_worker",
    "arrival_seed",
    "service",
    "slow_worker",
    "backlog",
    "steer",
    "worker_concurrency",
    "fleet",
    "shared_epoll_set",
    "rolling_restart",
    "tcp_migrate_req",
];

/// The file as TOML gives it: known keys only, values kept with their span.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Spanned<String>,
    description: Spanned<String>,
    repetitions: Option<Spanned<i64>>,
    shuffle: Option<bool>,
    seed: Option<Spanned<i64>>,
    model: Option<Spanned<Value>>,
    workers: Option<Spanned<Value>>,
    concurrency: Option<Spanned<Value>>,
    rate: Option<Spanned<Value>>,
    arrivals: Option<Spanned<Value>>,
    max_inflight: Option<Spanned<Value>>,
    requests_per_conn: Option<Spanned<Value>>,
    connections: Option<Spanned<Value>>,
    duration: Option<Spanned<Value>>,
    warmup: Option<Spanned<Value>>,
    threads: Option<Spanned<Value>>,
    gap: Option<Spanned<Value>>,
    timeout: Option<Spanned<Value>>,
    interval: Option<Spanned<Value>>,
    stall_worker: Option<Spanned<Value>>,
    arrival_seed: Option<Spanned<Value>>,
    service: Option<Spanned<Value>>,
    slow_worker: Option<Spanned<Value>>,
    backlog: Option<Spanned<Value>>,
    steer: Option<Spanned<Value>>,
    fleet: Option<Spanned<Value>>,
    shared_epoll_set: Option<Spanned<Value>>,
    worker_concurrency: Option<Spanned<Value>>,
    rolling_restart: Option<Spanned<Value>>,
    tcp_migrate_req: Option<Spanned<Value>>,
}

/// An offered rate: per second, or a fraction of the measured capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    OfCapacity(f64),
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::PerSecond(r) => write!(f, "{r}"),
            Rate::OfCapacity(x) => write!(f, "{}%", x * 100.0),
        }
    }
}

/// One value of one parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Subject(Subject),
    Int(u64),
    Rate(Rate),
    Arrivals(Arrivals),
    Duration(Duration, String),
    Stall(usize, Stall, String),
    Service(Service),
    Slow(usize, f64, String),
    Steer(Steer),
    Fleet(FleetKind),
    Flag(bool),
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Subject(m) => f.write_str(m.name()),
            Param::Int(n) => write!(f, "{n}"),
            Param::Rate(r) => write!(f, "{r}"),
            Param::Arrivals(a) => write!(f, "{}", a.name()),
            Param::Duration(_, text) | Param::Stall(_, _, text) | Param::Slow(_, _, text) => f.write_str(text),
            Param::Service(sv) => write!(f, "{sv}"),
            Param::Steer(st) => f.write_str(st.name()),
            Param::Fleet(k) => f.write_str(k.name()),
            Param::Flag(b) => write!(f, "{b}"),
        }
    }
}

/// One point of the grid: a value for every parameter that was given.
#[derive(Debug, Clone)]
pub struct Point {
    pub index: usize,
    pub values: BTreeMap<&'static str, Param>,
    /// The varying parameters, `key=value` joined by spaces.
    pub label: String,
}

impl Point {
    fn int(&self, key: &str) -> Option<u64> {
        match self.values.get(key) {
            Some(Param::Int(n)) => Some(*n),
            _ => None,
        }
    }

    fn duration(&self, key: &str) -> Option<Duration> {
        match self.values.get(key) {
            Some(Param::Duration(d, _)) => Some(*d),
            _ => None,
        }
    }

    /// The model or server the point runs (the `model` key).
    pub fn subject(&self) -> Subject {
        match self.values.get("model") {
            Some(Param::Subject(m)) => m.clone(),
            _ => unreachable!("every point has a model (checked when parsed)"),
        }
    }

    pub fn workers(&self) -> usize {
        self.int("workers").unwrap_or(4) as usize
    }

    pub fn requests_per_conn(&self) -> u32 {
        self.int("requests_per_conn").unwrap_or(1) as u32
    }

    /// The rate as written, if the point is open-loop.
    pub fn rate(&self) -> Option<Rate> {
        match self.values.get("rate") {
            Some(Param::Rate(r)) => Some(*r),
            _ => None,
        }
    }

    /// The run this point describes; `capacity` (conn/s) resolves a rate
    /// given as a fraction of it.
    pub fn spec(&self, capacity: Option<f64>) -> RunSpec {
        let load = match self.rate() {
            Some(rate) => {
                let per_second = match rate {
                    Rate::PerSecond(r) => r,
                    Rate::OfCapacity(x) => (x * capacity.unwrap_or(0.0)).max(1.0),
                };
                let arrivals = match self.values.get("arrivals") {
                    Some(Param::Arrivals(a)) => *a,
                    _ => Arrivals::Poisson,
                };
                Load::Open(OpenLoop {
                    rate: per_second,
                    arrivals,
                    max_inflight: self
                        .int("max_inflight")
                        .map_or(loadgen::config::DEFAULT_MAX_INFLIGHT, |n| n as usize),
                })
            }
            None => Load::Closed {
                concurrency: self.int("concurrency").unwrap_or(32) as usize,
            },
        };
        let stop = match (self.int("connections"), self.duration("duration")) {
            (_, Some(d)) => Stop::Duration(d),
            (n, None) => Stop::Connections(n.unwrap_or(20_000)),
        };
        let mut spec = RunSpec::closed(self.subject(), self.workers(), 1, stop);
        spec.load = load;
        spec.threads = self
            .int("threads")
            .map_or_else(|| loadgen::config::default_threads(load.max_open()), |t| t as usize);
        spec.requests_per_conn = self.requests_per_conn();
        spec.warmup = self.duration("warmup").unwrap_or(Duration::ZERO);
        spec.gap = self.duration("gap").unwrap_or(Duration::ZERO);
        spec.timeout = self.duration("timeout").unwrap_or(spec.timeout);
        spec.interval = self.duration("interval").unwrap_or(spec.interval);
        spec.seed = self.int("arrival_seed").unwrap_or(1);
        spec.stall = match self.values.get("stall_worker") {
            Some(Param::Stall(w, s, _)) => Some((*w, *s)),
            _ => None,
        };
        spec.slow = match self.values.get("slow_worker") {
            Some(Param::Slow(w, f, _)) => Some((*w, *f)),
            _ => None,
        };
        if let Some(Param::Service(sv)) = self.values.get("service") {
            spec.service = *sv;
        }
        if let Some(b) = self.int("backlog") {
            spec.model_opts.backlog = b as i32;
        }
        if let Some(Param::Steer(st)) = self.values.get("steer") {
            spec.model_opts.steer = *st;
        }
        if let Some(Param::Fleet(k)) = self.values.get("fleet") {
            spec.fleet = *k;
        }
        if let Some(Param::Flag(b)) = self.values.get("shared_epoll_set") {
            spec.shared_epoll_set = *b;
        }
        if let Some(k) = self.int("worker_concurrency") {
            spec.worker_concurrency = k as usize;
        }
        spec.faults.rolling_restart = self.duration("rolling_restart");
        if let Some(Param::Flag(b)) = self.values.get("tcp_migrate_req") {
            spec.tcp_migrate_req = Some(*b);
        }
        spec
    }
}

/// A parsed, checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: PathBuf,
    pub name: String,
    pub description: String,
    pub repetitions: u32,
    pub shuffle: bool,
    pub seed: Option<u64>,
    /// The parameters that vary, with their values in file order.
    pub axes: Vec<(&'static str, Vec<Param>)>,
    pub points: Vec<Point>,
    /// The file's text, kept so a sweep can record exactly what it ran.
    pub source: String,
}

/// Where in the file an error is.
struct Loc<'a> {
    path: &'a Path,
    source: &'a str,
}

impl Loc<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.source[..offset.min(self.source.len())].matches('\n').count() + 1
    }

    /// One line, whatever the file held: control characters a quoted key or
    /// value carried into the message are shown escaped.
    fn error(&self, span: std::ops::Range<usize>, key: &str, msg: impl fmt::Display) -> UsageError {
        let text = format!("{}:{}: {key}: {msg}", self.path.display(), self.line_of(span.start));
        let one_line = text
            .chars()
            .flat_map(|c| match c.is_control() {
                true => c.escape_debug().collect::<Vec<_>>(),
                false => vec![c],
            })
            .collect();
        UsageError(one_line)
    }
}

impl Scenario {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Scenario, UsageError> {
        let source =
            std::fs::read_to_string(path).map_err(|e| UsageError(format!("scenario {}: {e}", path.display())))?;
        Scenario::parse(path, &source)
    }

    /// Checks `source`, the text of `path`.
    pub fn parse(path: &Path, source: &str) -> Result<Scenario, UsageError> {
        let loc = Loc { path, source };
        let file: File = toml::from_str(source).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            // The key is whatever stands before `=` on the error's line.
            let at = span.start.min(source.len());
            let start = source[..at].rfind('\n').map_or(0, |i| i + 1);
            let line = source[start..].split('\n').next().unwrap_or("");
            let missing = e
                .message()
                .strip_prefix("missing field `")
                .and_then(|m| m.split('`').next());
            let key = match missing {
                Some(field) => field,
                None => line.split('=').next().unwrap_or("").trim().trim_matches('"'),
            };
            let key = if key.is_empty() || key.starts_with('#') {
                "(file)"
            } else {
                key
            };
            loc.error(span, key, e.message())
        })?;
        let name = file.name.get_ref().trim().to_string();
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(loc.error(file.name.span(), "name", "must be a non-empty name without '/'"));
        }
        let repetitions = match &file.repetitions {
            None => 1,
            Some(r) if (1..=1000).contains(r.get_ref()) => *r.get_ref() as u32,
            Some(r) => return Err(loc.error(r.span(), "repetitions", format!("{} is not 1 to 1000", r.get_ref()))),
        };
        let seed = match &file.seed {
            None => None,
            Some(s) if *s.get_ref() >= 0 => Some(*s.get_ref() as u64),
            Some(s) => return Err(loc.error(s.span(), "seed", "must not be negative")),
        };

        let given: Vec<(&'static str, &Option<Spanned<Value>>)> = vec![
            ("model", &file.model),
            ("workers", &file.workers),
            ("concurrency", &file.concurrency),
            ("rate", &file.rate),
            ("arrivals", &file.arrivals),
            ("max_inflight", &file.max_inflight),
            ("requests_per_conn", &file.requests_per_conn),
            ("connections", &file.connections),
            ("duration", &file.duration),
            ("warmup", &file.warmup),
            ("threads", &file.threads),
            ("gap", &file.gap),
            ("timeout", &file.timeout),
            ("interval", &file.interval),
            ("stall_worker", &file.stall_worker),
            ("arrival_seed", &file.arrival_seed),
            ("service", &file.service),
            ("slow_worker", &file.slow_worker),
            ("backlog", &file.backlog),
            ("steer", &file.steer),
            ("fleet", &file.fleet),
            ("shared_epoll_set", &file.shared_epoll_set),
            ("worker_concurrency", &file.worker_concurrency),
            ("rolling_restart", &file.rolling_restart),
            ("tcp_migrate_req", &file.tcp_migrate_req),
        ];
        let mut lists: Vec<(&'static str, Vec<Param>, std::ops::Range<usize>)> = Vec::new();
        for (key, value) in given {
            let Some(value) = value else { continue };
            let (value, span) = (value.get_ref().clone(), value.span());
            let items = match value {
                Value::Array(items) if items.is_empty() => {
                    return Err(loc.error(span, key, "an empty list: give at least one value"))
                }
                Value::Array(items) => items,
                one => vec![one],
            };
            let params = items
                .iter()
                .map(|v| convert(key, v))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|m| loc.error(span.clone(), key, m))?;
            lists.push((key, params, span));
        }
        if !lists.iter().any(|(k, _, _)| *k == "model") {
            return Err(loc.error(0..0, "model", "missing: name one or more accept models"));
        }

        // Cross product, first parameter outermost.
        let mut combos: Vec<BTreeMap<&'static str, Param>> = vec![BTreeMap::new()];
        for (key, params, _) in &lists {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    params.iter().map(move |p| {
                        let mut c = c.clone();
                        c.insert(*key, p.clone());
                        c
                    })
                })
                .collect();
        }
        let varying: Vec<&'static str> = lists.iter().filter(|(_, p, _)| p.len() > 1).map(|l| l.0).collect();
        let span_of = |key: &str| lists.iter().find(|l| l.0 == key).map_or(0..0, |l| l.2.clone());
        let points: Vec<Point> = combos
            .into_iter()
            .enumerate()
            .map(|(index, values)| {
                let label = varying
                    .iter()
                    .map(|k| format!("{k}={}", values[k]))
                    .collect::<Vec<_>>()
                    .join(" ");
                Point { index, values, label }
            })
            .collect();
        if points.len() > 10_000 {
            return Err(loc.error(0..0, "(grid)", format!("{} points: at most 10000", points.len())));
        }
        for p in &points {
            check_point(p, &|key| loc.error(span_of(key), key, ""))?;
        }
        Ok(Scenario {
            path: path.to_path_buf(),
            name,
            description: file.description.get_ref().trim().to_string(),
            repetitions,
            shuffle: file.shuffle.unwrap_or(true),
            seed,
            axes: lists
                .into_iter()
                .filter(|(_, p, _)| p.len() > 1)
                .map(|(k, p, _)| (k, p))
                .collect(),
            points,
            source: source.to_string(),
        })
    }

    /// Runs in the grid: points times repetitions.
    pub fn runs(&self) -> usize {
        self.points.len() * self.repetitions as usize
    }
}

/// Checks one combination: impossible pairs, and what a run would refuse.
/// `at(key)` gives an error located at `key` (its message is appended).
fn check_point(p: &Point, at: &dyn Fn(&str) -> UsageError) -> Result<(), UsageError> {
    let err = |key: &str, msg: String| UsageError(format!("{}{msg}", at(key).0));
    let has = |k: &str| p.values.contains_key(k);
    if has("rate") && has("concurrency") {
        return Err(err(
            "rate",
            "cannot be given with concurrency (open or closed loop: choose one)".into(),
        ));
    }
    if has("connections") && has("duration") {
        return Err(err(
            "duration",
            "cannot be given with connections (choose one way to stop)".into(),
        ));
    }
    for k in ["arrivals", "max_inflight"] {
        if has(k) && !has("rate") {
            return Err(err(k, "only applies to an open loop: give a rate".into()));
        }
    }
    if has("gap") && has("rate") {
        return Err(err("gap", "only applies to a closed loop, not with a rate".into()));
    }
    for key in ["stall_worker", "slow_worker"] {
        let w = match p.values.get(key) {
            Some(Param::Stall(w, _, _)) | Some(Param::Slow(w, _, _)) => *w,
            _ => continue,
        };
        if w >= p.workers() {
            return Err(err(
                key,
                format!("worker {w} does not exist with {} workers", p.workers()),
            ));
        }
    }
    let spec = p.spec(Some(1000.0));
    // Whatever `harness run` would refuse for this point.
    spec.validate().map_err(|e| {
        err(
            "(point)",
            format!(
                "{}: {}",
                if p.label.is_empty() { "the scenario" } else { &p.label },
                e.0
            ),
        )
    })?;
    if let Some(t) = p.int("threads") {
        let open = spec.load.max_open();
        if t as usize > open {
            return Err(err(
                "threads",
                format!("{t} threads but at most {open} connections may be open ({})", p.label),
            ));
        }
    }
    Ok(())
}

/// Converts one TOML value of `key`; the error says what was expected.
/// A rate in connections per second, refused above the open loop's maximum.
fn per_second(r: f64) -> Result<Param, String> {
    match loadgen::config::rate_problem(r) {
        None => Ok(Param::Rate(Rate::PerSecond(r))),
        Some(why) => Err(why),
    }
}

fn convert(key: &str, v: &Value) -> Result<Param, String> {
    let got = || match v {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    };
    let int = |lo: u64, hi: u64, what: &str| -> Result<Param, String> {
        match v {
            Value::Integer(n) if *n >= lo as i64 && *n as u64 <= hi => Ok(Param::Int(*n as u64)),
            _ => Err(format!("expected {what} ({lo} to {hi}), got {}", got())),
        }
    };
    let duration = || -> Result<Param, String> {
        match v {
            Value::String(s) => loadgen::parse_duration(s).map(|d| Param::Duration(d, s.clone())),
            _ => Err(format!(
                "expected a duration such as \"2s\" or \"500ms\", got {}",
                got()
            )),
        }
    };
    match key {
        "model" => match v {
            Value::String(s) => s.parse().map(Param::Subject),
            _ => Err(format!("expected a model name, got {}", got())),
        },
        "workers" => int(1, 1024, "a number of workers"),
        "concurrency" | "max_inflight" => int(1, 1_000_000, "a number of connections"),
        "requests_per_conn" => int(1, 1_000_000, "a number of requests"),
        "connections" => int(1, u64::MAX >> 1, "a number of connections"),
        "threads" => int(1, 1024, "a number of threads"),
        "arrival_seed" => int(0, i64::MAX as u64, "a seed"),
        "duration" | "warmup" | "gap" | "timeout" | "interval" => {
            let d = duration()?;
            match (&d, key) {
                (Param::Duration(z, _), "duration" | "timeout" | "interval") if z.is_zero() => {
                    Err(format!("must be longer than 0, got {}", got()))
                }
                _ => Ok(d),
            }
        }
        "rate" => match v {
            Value::Integer(n) if *n > 0 => per_second(*n as f64),
            Value::Float(r) if r.is_finite() && *r > 0.0 => per_second(*r),
            Value::String(s) => {
                let pct = s
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .filter(|p| p.is_finite() && *p > 0.0 && *p <= 1000.0);
                pct.map(|p| Param::Rate(Rate::OfCapacity(p / 100.0))).ok_or_else(|| {
                    format!(
                        "expected connections per second or a percentage of capacity such as \"20%\", got {}",
                        got()
                    )
                })
            }
            _ => Err(format!(
                "expected connections per second or a percentage of capacity such as \"20%\", got {}",
                got()
            )),
        },
        "arrivals" => match v {
            Value::String(s) => s.parse().map(Param::Arrivals),
            _ => Err(format!("expected \"constant\" or \"poisson\", got {}", got())),
        },
        "backlog" => int(1, i32::MAX as u64, "a listen backlog"),
        "worker_concurrency" => int(
            1,
            crate::spec::MAX_WORKER_CONCURRENCY as u64,
            "a number of connections per worker",
        ),
        "service" => match v {
            Value::String(s) => s.parse().map(Param::Service),
            Value::Integer(0) => Ok(Param::Service(Service::None)),
            _ => Err(format!("expected a service time such as \"spin:50us\", got {}", got())),
        },
        "slow_worker" => match v {
            Value::String(s) => crate::params::parse_slow(s).map(|(w, f)| Param::Slow(w, f, s.clone())),
            _ => Err(format!("expected \"IDX:FACTOR\" such as \"0:10\", got {}", got())),
        },
        "rolling_restart" => duration(),
        "shared_epoll_set" | "tcp_migrate_req" => match v {
            Value::Boolean(b) => Ok(Param::Flag(*b)),
            _ => Err(format!("expected true or false, got {}", got())),
        },
        "fleet" => match v {
            Value::String(s) => s.parse().map(Param::Fleet),
            _ => Err(format!("expected \"processes\" or \"threads\", got {}", got())),
        },
        "steer" => match v {
            Value::String(s) => s.parse().map(Param::Steer),
            _ => Err(format!("expected \"cpu\" or \"random\", got {}", got())),
        },
        "stall_worker" => match v {
            Value::String(s) => crate::params::parse_stall(s).map(|(w, st)| Param::Stall(w, st, s.clone())),
            _ => Err(format!("expected \"IDX:AT:FOR\" such as \"0:1s:300ms\", got {}", got())),
        },
        other => Err(format!("unknown parameter {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Scenario, String> {
        Scenario::parse(Path::new("t.toml"), src).map_err(|e| e.0)
    }

    #[test]
    fn lists_expand_to_the_cross_product() {
        let s = parse(
            "name = \"x\"\ndescription = \"d\"\nrepetitions = 2\nmodel = [\"reuseport\", \"shared-epoll\"]\nworkers = [2, 4, 8]\nconnections = 100\n",
        )
        .unwrap();
        assert_eq!(s.points.len(), 6);
        assert_eq!(s.runs(), 12);
        assert_eq!(s.points[0].label, "model=reuseport workers=2");
        assert_eq!(s.points[5].label, "model=shared-epoll workers=8");
        assert_eq!(s.axes.len(), 2);
        let spec = s.points[1].spec(None);
        assert_eq!(
            (spec.subject.model(), spec.workers),
            (Some(fleet::model::Model::Reuseport), 4)
        );
        assert!(matches!(spec.stop, Stop::Connections(100)));
    }

    #[test]
    fn percentage_rates_resolve_against_capacity() {
        let s = parse(
            "name = \"x\"\ndescription = \"d\"\nmodel = \"reuseport\"\nrate = [\"20%\", 500]\nduration = \"1s\"\n",
        )
        .unwrap();
        assert_eq!(s.points[0].rate(), Some(Rate::OfCapacity(0.2)));
        match s.points[0].spec(Some(10_000.0)).load {
            Load::Open(o) => assert_eq!(o.rate, 2000.0),
            l => panic!("{l:?}"),
        }
        match s.points[1].spec(Some(10_000.0)).load {
            Load::Open(o) => assert_eq!(o.rate, 500.0),
            l => panic!("{l:?}"),
        }
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let e = parse("name = \"x\"\ndescription = \"d\"\nmodel = \"reuseport\"\nwrokers = 4\n").unwrap_err();
        assert!(e.starts_with("t.toml:4: wrokers: unknown field"), "{e}");
        let e = parse("name = \"x\"\ndescription = \"d\"\nmodel = \"reuseport\"\nworkers = \"four\"\n").unwrap_err();
        assert!(e.starts_with("t.toml:4: workers: expected a number of workers"), "{e}");
        let e = parse("name = \"x\"\ndescription = \"d\"\nmodel = []\n").unwrap_err();
        assert!(e.starts_with("t.toml:3: model: an empty list"), "{e}");
        let e = parse("name = \"x\"\ndescription = \"d\"\nmodel = \"nope\"\n").unwrap_err();
        assert!(e.contains("t.toml:3: model: unknown model 'nope'"), "{e}");
        let e = parse("name = \"x\"\ndescription = \"d\"\nmodel = \"reuseport\"\nconcurrency = 4\nrate = 100\n")
            .unwrap_err();
        assert!(e.starts_with("t.toml:5: rate: cannot be given with concurrency"), "{e}");
    }
}
