//! Scenario files: a grid of runs described in TOML.
//!
//! A scenario has a `name`, a `description`, optional `repetitions`,
//! `shuffle` and `seed`, and run parameters (the keys of the parameter
//! table, [`crate::params`]). Each parameter is either one value (fixed for
//! every run) or a list (a dimension of the grid); lists expand to their
//! cross product, the first parameter in table order outermost:
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
//! Everything is checked before anything runs, each point as `harness run`
//! checks its flags: an unknown key, a wrong type, an empty list, a bad
//! value or an impossible combination is one error naming the file, the
//! line and the key. Checking is pure: nothing on the machine is read.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::params::{self, Given, Naming, Param, Value};
pub use crate::spec::Rate;
use crate::spec::RunSpec;
use crate::subject::Subject;
use crate::UsageError;

/// A value as the file wrote it, and as its parameter read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// As written: `reuseport`, `4`, `20%`, `2s`.
    pub text: String,
    pub value: Value,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One point of the grid: a value for every parameter that was given.
#[derive(Debug, Clone)]
pub struct Point {
    pub index: usize,
    pub values: BTreeMap<&'static str, Written>,
    /// The varying parameters, `key=value` joined by spaces.
    pub label: String,
    /// The run the point describes, a percentage rate not yet resolved.
    spec: RunSpec,
}

impl Point {
    /// The model or server the point runs (the `model` key).
    pub fn subject(&self) -> Subject {
        self.spec.subject.clone()
    }

    pub fn workers(&self) -> usize {
        self.spec.workers
    }

    pub fn requests_per_conn(&self) -> u32 {
        self.spec.requests_per_conn
    }

    /// The rate as written, if the point is open-loop.
    pub fn rate(&self) -> Option<Rate> {
        self.spec.rate_spec
    }

    /// The run this point describes; `capacity` (conn/s) resolves a rate
    /// given as a fraction of it.
    pub fn spec(&self, capacity: Option<f64>) -> RunSpec {
        self.spec.clone().at_capacity(capacity)
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
    pub axes: Vec<(&'static str, Vec<Written>)>,
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
        let file: BTreeMap<Spanned<String>, Spanned<toml::Value>> = toml::from_str(source).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            // The key is whatever stands before `=` on the error's line.
            let at = span.start.min(source.len());
            let start = source[..at].rfind('\n').map_or(0, |i| i + 1);
            let line = source[start..].split('\n').next().unwrap_or("");
            let key = line.split('=').next().unwrap_or("").trim().trim_matches('"');
            let key = if key.is_empty() || key.starts_with('#') {
                "(file)"
            } else {
                key
            };
            loc.error(span, key, e.message())
        })?;
        let get = |k: &str| file.iter().find(|(key, _)| key.get_ref() == k);
        // The sweep's own keys.
        let text_of = |k: &str| -> Result<Option<(String, std::ops::Range<usize>)>, UsageError> {
            match get(k) {
                None => Ok(None),
                Some((_, v)) => match v.get_ref() {
                    toml::Value::String(s) => Ok(Some((s.clone(), v.span()))),
                    other => Err(loc.error(v.span(), k, format!("expected a string, got {other}"))),
                },
            }
        };
        let int_of = |k: &str| -> Result<Option<(i64, std::ops::Range<usize>)>, UsageError> {
            match get(k) {
                None => Ok(None),
                Some((_, v)) => match v.get_ref() {
                    toml::Value::Integer(n) => Ok(Some((*n, v.span()))),
                    other => Err(loc.error(v.span(), k, format!("expected a whole number, got {other}"))),
                },
            }
        };
        let (name, name_span) = text_of("name")?.ok_or_else(|| loc.error(0..0, "name", "missing field `name`"))?;
        let name = name.trim().to_string();
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(loc.error(name_span, "name", "must be a non-empty name without '/'"));
        }
        let (description, _) =
            text_of("description")?.ok_or_else(|| loc.error(0..0, "description", "missing field `description`"))?;
        let repetitions = match int_of("repetitions")? {
            None => 1,
            Some((r, _)) if (1..=1000).contains(&r) => r as u32,
            Some((r, span)) => return Err(loc.error(span, "repetitions", format!("{r} is not 1 to 1000"))),
        };
        let seed = match int_of("seed")? {
            None => None,
            Some((s, _)) if s >= 0 => Some(s as u64),
            Some((_, span)) => return Err(loc.error(span, "seed", "must not be negative")),
        };
        let shuffle = match get("shuffle") {
            None => true,
            Some((_, v)) => match v.get_ref() {
                toml::Value::Boolean(b) => *b,
                other => return Err(loc.error(v.span(), "shuffle", format!("expected true or false, got {other}"))),
            },
        };
        // Every other key must be a run parameter a scenario may give.
        const OWN: [&str; 5] = ["name", "description", "repetitions", "shuffle", "seed"];
        for (k, v) in &file {
            let known = params::by_key(k.get_ref()).is_some_and(|p| p.scenario);
            if !OWN.contains(&k.get_ref().as_str()) && !known {
                let shown = match v.get_ref() {
                    toml::Value::Table(_) => format!("[{}]", k.get_ref()),
                    _ => k.get_ref().clone(),
                };
                let expected: Vec<&str> = OWN.iter().copied().chain(params::scenario_keys()).collect();
                return Err(loc.error(
                    k.span(),
                    &shown,
                    format!(
                        "unknown field `{}`, expected one of {}",
                        k.get_ref(),
                        expected.join(", ")
                    ),
                ));
            }
        }

        let mut lists: Vec<(&'static Param, Vec<Written>, std::ops::Range<usize>)> = Vec::new();
        for p in params::PARAMS.iter().filter(|p| p.scenario) {
            let Some((_, value)) = get(p.key) else { continue };
            let span = value.span();
            let items = match value.get_ref() {
                toml::Value::Array(items) if items.is_empty() => {
                    return Err(loc.error(span, p.key, "an empty list: give at least one value"))
                }
                toml::Value::Array(items) => items.clone(),
                one => vec![one.clone()],
            };
            let written = items
                .iter()
                .map(|v| {
                    let value = p.parse_toml(v)?;
                    let text = match (v, &value) {
                        (toml::Value::String(s), _) => s.clone(),
                        // A table of settings reads as KEY=VALUE,KEY=VALUE.
                        (toml::Value::Table(_), Value::Text(t)) => t.clone(),
                        (other, _) => other.to_string(),
                    };
                    Ok(Written { text, value })
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|m| loc.error(span.clone(), p.key, m))?;
            lists.push((p, written, span));
        }
        if !lists.iter().any(|(p, _, _)| p.key == "model") {
            return Err(loc.error(0..0, "model", "missing: name one or more accept models"));
        }

        // Cross product, first parameter outermost.
        let mut combos: Vec<BTreeMap<&'static str, Written>> = vec![BTreeMap::new()];
        for (p, values, _) in &lists {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.insert(p.key, v.clone());
                        c
                    })
                })
                .collect();
            if combos.len() > 10_000 {
                return Err(loc.error(0..0, "(grid)", "more than 10000 points"));
            }
        }
        let varying: Vec<&'static str> = lists.iter().filter(|(_, v, _)| v.len() > 1).map(|l| l.0.key).collect();
        let span_of = |key: &str| lists.iter().find(|l| l.0.key == key).map_or(0..0, |l| l.2.clone());
        let mut points = Vec::with_capacity(combos.len());
        for (index, values) in combos.into_iter().enumerate() {
            let label = varying
                .iter()
                .map(|k| format!("{k}={}", values[k]))
                .collect::<Vec<_>>()
                .join(" ");
            let mut given = Given::default();
            for (k, w) in &values {
                if let Some(p) = params::by_key(k) {
                    given.push(p, vec![w.value.clone()]);
                }
            }
            let spec = params::build(&given, Naming::Keys).map_err(|r| {
                if r.key == params::POINT {
                    let what = if label.is_empty() { "the scenario" } else { &label };
                    loc.error(0..0, params::POINT, format!("{what}: {}", r.message))
                } else {
                    loc.error(span_of(r.key), r.key, r.message)
                }
            })?;
            points.push(Point {
                index,
                values,
                label,
                spec,
            });
        }
        Ok(Scenario {
            path: path.to_path_buf(),
            name,
            description: description.trim().to_string(),
            repetitions,
            shuffle,
            seed,
            axes: lists
                .into_iter()
                .filter(|(_, v, _)| v.len() > 1)
                .map(|(p, v, _)| (p.key, v))
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
        assert!(matches!(spec.stop, loadgen::Stop::Connections(100)));
    }

    #[test]
    fn percentage_rates_resolve_against_capacity() {
        let s = parse(
            "name = \"x\"\ndescription = \"d\"\nmodel = \"reuseport\"\nrate = [\"20%\", 500]\nduration = \"1s\"\n",
        )
        .unwrap();
        assert_eq!(s.points[0].rate(), Some(Rate::OfCapacity(0.2)));
        match s.points[0].spec(Some(10_000.0)).load {
            crate::spec::Load::Open(o) => assert_eq!(o.rate, 2000.0),
            l => panic!("{l:?}"),
        }
        match s.points[1].spec(Some(10_000.0)).load {
            crate::spec::Load::Open(o) => assert_eq!(o.rate, 500.0),
            l => panic!("{l:?}"),
        }
    }

    #[test]
    fn a_list_of_sysctl_tables_is_a_dimension() {
        let s = parse(
            "name = \"x\"\ndescription = \"d\"\nmodel = \"reuseport\"\nsysctl = [{ \"net.core.somaxconn\" = 64 }, { \"net.core.somaxconn\" = 128, \"net.ipv4.tcp_syncookies\" = 0 }]\n",
        )
        .unwrap();
        assert_eq!(s.points.len(), 2);
        assert_eq!(s.points[0].label, "sysctl=net.core.somaxconn=64");
        let spec = s.points[1].spec(None);
        assert_eq!(spec.sysctls["net.core.somaxconn"], "128");
        assert_eq!(spec.sysctls["net.ipv4.tcp_syncookies"], "0");
        let e =
            parse("name = \"x\"\ndescription = \"d\"\nmodel = \"reuseport\"\nsysctl = { \"kernel.pid_max\" = 5 }\n")
                .unwrap_err();
        assert!(
            e.starts_with("t.toml:4: sysctl: 'kernel.pid_max' is not a per-namespace network sysctl"),
            "{e}"
        );
        let e = parse("name = \"x\"\ndescription = \"d\"\nmodel = \"reuseport\"\nnetns = \"host\"\nsysctl = { \"net.core.somaxconn\" = 5 }\n")
            .unwrap_err();
        assert!(e.contains("(point)") && e.contains("never changed"), "{e}");
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
