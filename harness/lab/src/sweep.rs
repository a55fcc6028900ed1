//! `harness sweep`: runs a scenario's grid and leaves one tidy data set.
//!
//! Runs go in a shuffled order (seeded, and the seed recorded) so that drift
//! on a shared machine spreads over every point instead of masquerading as
//! an effect. After every run the combined files are rewritten atomically:
//! `runs.csv` (one row per run: its identity and parameters, then its
//! summary), `workers.csv` (one row per worker per run), `timeseries.csv`,
//! and `aggregate.csv` (one row per grid point: mean, standard deviation and
//! 95% confidence interval of the headline figures). An interrupted sweep
//! therefore keeps every finished run, and `--resume` runs only the rest.
//! Rates given as a percentage are resolved against a capacity measured
//! first, once per model, fleet size and requests per connection.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use csv::StringRecord;
use records::Table;
use serde::{Deserialize, Serialize};

use crate::output::write_run;

use crate::account::RunResult;
use crate::interrupt;
use crate::run;
use crate::scenario::{Point, Rate, Scenario};

use crate::UsageError;
use fleet::worker::Service;
use loadgen::schedule::Xoshiro256pp;
use loadgen::Stop;
use records::stats::Estimate;

/// How long a capacity measurement runs, and at what concurrency.
const CAPACITY_RUN: Duration = Duration::from_secs(2);
const CAPACITY_CONCURRENCY: usize = 64;

/// One run of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub id: String,
    pub point: usize,
    pub repetition: u32,
}

/// The order runs go in: every point times every repetition, shuffled with
/// `seed` unless the scenario says `shuffle = false`.
pub fn plan(scn: &Scenario, seed: u64) -> Vec<Planned> {
    let mut runs: Vec<Planned> = (0..scn.repetitions)
        .flat_map(|r| {
            scn.points.iter().map(move |p| Planned {
                id: format!("p{:03}-r{r:02}", p.index),
                point: p.index,
                repetition: r,
            })
        })
        .collect();
    if scn.shuffle {
        let mut rng = Xoshiro256pp::new(seed, 0);
        for i in (1..runs.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            runs.swap(i, j);
        }
    }
    runs
}

/// A rough duration of one run of `p` (for --dry-run and the ETA).
fn estimate_run(p: &Point) -> Duration {
    let spec = p.spec(Some(20_000.0));
    let service = match spec.service {
        Service::None => 0.0,
        Service::Spin(d) | Service::Sleep(d) | Service::Exp(d) => d.as_secs_f64(),
    };
    let load = match spec.stop {
        Stop::Duration(d) => d,
        Stop::Connections(n) => {
            let n = n as f64;
            let rate = match spec.load {
                crate::spec::Load::Open(o) => o.rate,
                // Served one at a time, N workers answer at most N per service time.
                crate::spec::Load::Closed { concurrency } => {
                    let served = if service > 0.0 {
                        spec.workers as f64 / service
                    } else {
                        f64::MAX
                    };
                    (concurrency as f64 * 6000.0).min(25_000.0).min(served)
                }
            };
            // A slowed worker that keeps its fair share (hashing, round robin)
            // sets the pace: its share of the requests at its own speed.
            let slowest = spec
                .slow
                .map_or(0.0, |(_, factor)| n / spec.workers as f64 * service * factor);
            Duration::from_secs_f64((n / rate).max(slowest))
        }
    };
    load + spec.warmup + Duration::from_millis(300)
}

/// Capacity measurements a scenario needs: one per model, workers and
/// requests per connection among the points with a percentage rate.
fn capacity_keys(scn: &Scenario) -> BTreeSet<(String, usize, u32)> {
    scn.points
        .iter()
        .filter(|p| matches!(p.rate(), Some(Rate::OfCapacity(_))))
        .map(|p| (p.subject().name().to_string(), p.workers(), p.requests_per_conn()))
        .collect()
}

fn capacity_key(p: &Point) -> String {
    format!("{}-w{}-k{}", p.subject().name(), p.workers(), p.requests_per_conn())
}

/// `--dry-run`: the expanded grid and how long it should take.
pub fn dry_run(scn: &Scenario) -> String {
    let mut s = format!(
        "{}: {}\n{} points x {} repetitions = {} runs{}\n",
        scn.name,
        scn.description,
        scn.points.len(),
        scn.repetitions,
        scn.runs(),
        if scn.shuffle {
            ", in shuffled order"
        } else {
            ", in file order"
        }
    );
    for p in &scn.points {
        let spec = p.spec(None);
        let load = match (spec.load, p.rate()) {
            (crate::spec::Load::Closed { concurrency }, _) => format!("concurrency {concurrency}"),
            (_, Some(r)) => format!("rate {r}"),
            _ => String::new(),
        };
        let stop = match spec.stop {
            Stop::Connections(n) => format!("{n} connections"),
            Stop::Duration(d) => format!("{:?}", d),
        };
        s.push_str(&format!(
            "  point {:3}: {:<40} {} workers, {load}, {stop}, ~{:.1} s each\n",
            p.index,
            if p.label.is_empty() {
                p.subject().name()
            } else {
                &p.label
            },
            spec.workers,
            estimate_run(p).as_secs_f64()
        ));
    }
    let keys = capacity_keys(scn);
    let capacity = (CAPACITY_RUN + Duration::from_millis(300)) * keys.len() as u32;
    let runs: Duration = scn.points.iter().map(|p| estimate_run(p) * scn.repetitions).sum();
    if !keys.is_empty() {
        s.push_str(&format!(
            "{} capacity measurements first ({:.0} s)\n",
            keys.len(),
            capacity.as_secs_f64()
        ));
    }
    s.push_str(&format!("estimated time: {:.0} s\n", (runs + capacity).as_secs_f64()));
    s
}

/// What `sweep.json` records: enough to resume the same sweep.
#[derive(Debug, Serialize, Deserialize)]
struct SweepRecord {
    name: String,
    description: String,
    scenario_file: String,
    /// FNV-1a of the scenario's text: a resume must run the same file.
    scenario_hash: String,
    shuffle_seed: u64,
    order: Vec<String>,
    /// Measured saturated conn/s, by `<model>-w<workers>-k<requests per conn>`.
    capacities: BTreeMap<String, f64>,
    meta: serde_json::Value,
}

fn fnv1a(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The error that ends a sweep a signal stopped: what happened, and how to
/// finish it.
fn stopped(sig: i32, dir: &Path, what: &str) -> anyhow::Error {
    interrupt::Interrupted::new(
        sig,
        format!(
            "{what}; finish the sweep with: harness sweep --resume {}",
            dir.display()
        ),
    )
    .into()
}

/// What a sweep did in this invocation.
pub struct Outcome {
    pub dir: PathBuf,
    /// Runs finished now, in the order they ran.
    pub results: Vec<(Planned, RunResult)>,
    /// Runs skipped because `--resume` found them complete.
    pub skipped: usize,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.results.iter().all(|(_, r)| r.ok())
    }
}

/// Options of `harness sweep`.
pub struct Options {
    pub out: PathBuf,
    pub resume: bool,
    /// Shuffle seed; `None`: the scenario's, else one drawn from the clock.
    pub seed: Option<u64>,
    pub quiet: bool,
}

/// Runs the sweep (or the rest of it, with `resume`).
pub fn run(scn: &Scenario, opts: &Options) -> anyhow::Result<Outcome> {
    let dir = &opts.out;
    let record_path = dir.join("sweep.json");
    let hash = fnv1a(&scn.source);
    let mut record = if opts.resume {
        let text = std::fs::read_to_string(&record_path)
            .map_err(|e| UsageError(format!("--resume {}: no sweep there ({e})", dir.display())))?;
        let rec: SweepRecord = serde_json::from_str(&text)
            .map_err(|e| UsageError(format!("--resume {}: sweep.json is damaged ({e})", dir.display())))?;
        if rec.scenario_hash != hash {
            return Err(UsageError(format!(
                "--resume {}: that sweep ran a different scenario (its copy is {}/scenario.toml)",
                dir.display(),
                dir.display()
            ))
            .into());
        }
        rec
    } else {
        if record_path.exists() {
            return Err(UsageError(format!(
                "--out {} already holds a sweep: use --resume {} or another --out",
                dir.display(),
                dir.display()
            ))
            .into());
        }
        records::check_writable(dir).map_err(UsageError)?;
        let seed = opts.seed.or(scn.seed).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        let (started, _) = records::meta::utc_now();
        SweepRecord {
            name: scn.name.clone(),
            description: scn.description.clone(),
            scenario_file: scn.path.display().to_string(),
            scenario_hash: hash,
            shuffle_seed: seed,
            order: plan(scn, seed).into_iter().map(|p| p.id).collect(),
            capacities: BTreeMap::new(),
            meta: serde_json::to_value(crate::machine::meta(started, serde_json::json!({"scenario": scn.name})))?,
        }
    };
    let planned = plan(scn, record.shuffle_seed);
    let save = |record: &SweepRecord| -> anyhow::Result<()> {
        records::write_atomic(dir, "sweep.json", &serde_json::to_vec_pretty(record)?)?;
        Ok(())
    };
    save(&record)?;
    records::write_atomic(dir, "scenario.toml", scn.source.as_bytes())?;

    let mut progress = Progress::new(opts.quiet, scn.runs());
    for p in &scn.points {
        let key = capacity_key(p);
        if !matches!(p.rate(), Some(Rate::OfCapacity(_))) || record.capacities.contains_key(&key) {
            continue;
        }
        progress.line(&format!(
            "measuring capacity of {key} ({} s saturated)",
            CAPACITY_RUN.as_secs()
        ));
        let mut spec = crate::params::closed(
            p.subject(),
            p.workers(),
            CAPACITY_CONCURRENCY,
            Stop::Duration(CAPACITY_RUN),
        );
        spec.requests_per_conn = p.requests_per_conn();
        crate::preflight::check(&spec)?;
        if let Some(sig) = interrupt::interrupted() {
            return Err(stopped(
                sig,
                dir,
                &format!("stopped before measuring the capacity of {key}"),
            ));
        }
        let cap_dir = dir.join("capacity").join(&key);
        std::fs::create_dir_all(&cap_dir)?;
        let r = match run::execute(&spec, &cap_dir) {
            Ok(r) => r,
            Err(e) => {
                if let Some(sig) = interrupt::interrupted() {
                    let what = format!("the capacity run of {key} was stopped ({e:#})");
                    return Err(stopped(sig, dir, &what));
                }
                return Err(e.context(format!("measuring the capacity of {key}")));
            }
        };
        write_run(
            &cap_dir,
            &r,
            &crate::output::run_meta(records::meta::utc_now().0, &spec, &r),
        )?;
        if let Some(sig) = r.interrupted {
            let what = format!("the capacity run of {key} was cut short (not recorded)");
            return Err(stopped(sig, dir, &what));
        }
        if !r.ok() {
            bail!("the capacity run of {key} failed: {}", r.problems.join("; "));
        }
        record.capacities.insert(key, r.summary.conn_per_s);
        save(&record)?;
    }

    let mut runs = Table::read_or_empty(&dir.join("runs.csv"))?;
    let mut workers = Table::read_or_empty(&dir.join("workers.csv"))?;
    let mut series = Table::read_or_empty(&dir.join("timeseries.csv"))?;
    // Resuming: a run a signal cut short (complete=false) runs again, so its
    // rows go; a sweep from before the `complete` column had only complete
    // runs; temporary files a SIGKILL left are removed.
    runs.add_column_after("complete", "conserved", "true");
    let incomplete = runs.incomplete_runs();
    for t in [&mut runs, &mut workers, &mut series] {
        t.drop_runs(&incomplete);
    }
    // Rows of a run that runs.csv does not list (a kill came between the
    // renames of the combined files): the run is not done, so they go.
    let listed: BTreeSet<String> = match runs.col("run_id") {
        Some(c) => runs.rows().iter().map(|r| r[c].to_string()).collect(),
        None => BTreeSet::new(),
    };
    for t in [&mut workers, &mut series] {
        let strays: BTreeSet<String> = match t.col("run_id") {
            Some(c) => t
                .rows()
                .iter()
                .map(|r| r[c].to_string())
                .filter(|id| !listed.contains(id))
                .collect(),
            None => BTreeSet::new(),
        };
        t.drop_runs(&strays);
    }
    if !incomplete.is_empty() {
        let ids: Vec<&str> = incomplete.iter().map(String::as_str).collect();
        progress.line(&format!("running again, as it was cut short: {}", ids.join(", ")));
    }
    records::remove_temporaries(dir);
    // And those of a chart drawing a kill cut short (a resume with
    // --no-plots draws none to replace them).
    records::remove_temporaries(&dir.join(records::names::CHARTS_DIR));
    let done: BTreeSet<String> = match runs.col("run_id") {
        Some(c) => runs.rows().iter().map(|r| r[c].to_string()).collect(),
        None => BTreeSet::new(),
    };
    let skipped = planned.iter().filter(|p| done.contains(&p.id)).count();
    progress.skip(skipped);
    let mut results = Vec::new();
    for (order, run) in planned.iter().enumerate() {
        if done.contains(&run.id) {
            continue;
        }
        if let Some(sig) = interrupt::interrupted() {
            progress.finish();
            let what = format!("stopped before run {} (complete runs: {})", run.id, runs.rows().len());
            return Err(stopped(sig, dir, &what));
        }
        let point = &scn.points[run.point];
        let capacity = record.capacities.get(&capacity_key(point)).copied();
        let spec = point.spec(capacity);
        if spec.tcp_migrate_req.is_some() && sys::geteuid() != 0 {
            // Only root may set the sysctl: say so and leave the point out.
            progress.line(&format!(
                "skipping run {} ({}): setting net.ipv4.tcp_migrate_req needs root",
                run.id, point.label
            ));
            continue;
        }
        // What the machine must allow (the point itself was checked with the file).
        crate::preflight::check(&spec)?;
        progress.start(&run.id, &point.label);
        let run_dir = dir.join("runs").join(&run.id);
        // What an earlier, interrupted or killed attempt at this run left.
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
        let (at, _) = records::meta::utc_now();
        let result = match run::execute(&spec, &run_dir) {
            Ok(r) => r,
            Err(e) => {
                if let Some(sig) = interrupt::interrupted() {
                    progress.finish();
                    let what = format!("run {} was stopped before it measured anything ({e:#})", run.id);
                    return Err(stopped(sig, dir, &what));
                }
                return Err(e.context(format!("run {} ({})", run.id, point.label)));
            }
        };
        write_run(&run_dir, &result, &crate::output::run_meta(at, &spec, &result))?;
        if let Some(w) = &result.kernel_warning {
            progress.line(&format!("run {}: {w}", run.id));
        }

        // The identity of the run, then its summary.csv row.
        let info = [
            ("run_id", run.id.clone()),
            ("point", run.point.to_string()),
            ("repetition", run.repetition.to_string()),
            ("order", order.to_string()),
            ("label", point.label.clone()),
            ("rate_spec", point.rate().map_or(String::new(), |r| r.to_string())),
            ("capacity_conn_per_s", capacity.map_or(String::new(), |c| c.to_string())),
        ];
        let row = records::csv::summary(std::slice::from_ref(&result.summary), &result.params)?;
        runs.extend_csv(&row, &info)?;
        let prefix = [
            ("run_id", run.id.clone()),
            ("point", run.point.to_string()),
            ("repetition", run.repetition.to_string()),
        ];
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in &result.workers {
            w.serialize(row)?;
        }
        workers.extend_csv(&w.into_inner().map_err(|e| anyhow!("csv: {e}"))?, &prefix)?;
        // A real server's run has no time series without latency recording.
        if let Ok(rows) = std::fs::read(run_dir.join("timeseries.csv")) {
            series.extend_csv(&rows, &prefix)?;
        }
        // All four or none (a full disk leaves the previous four in place).
        // runs.csv is renamed last: a kill between the renames leaves rows
        // of a run runs.csv does not list, which a resume drops.
        records::write_atomic_group(
            dir,
            &[
                ("workers.csv", &workers.to_bytes()?),
                ("timeseries.csv", &series.to_bytes()?),
                ("aggregate.csv", &aggregate(scn, &runs)?),
                ("runs.csv", &runs.to_bytes()?),
            ],
        )?;
        if !result.ok() {
            progress.line(&format!("run {}: {}", run.id, crate::conservation::line(&result)));
        }
        if let Some(sig) = result.interrupted {
            progress.finish();
            let what = format!(
                "run {}{} was cut short: its row in runs.csv says complete=false (complete runs: {})",
                run.id,
                if point.label.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", point.label)
                },
                runs.rows().len() - 1
            );
            return Err(stopped(sig, dir, &what));
        }
        results.push((run.clone(), result));
    }
    progress.finish();
    if let Some(sig) = interrupt::interrupted() {
        let what = format!(
            "every run is complete, but the charts and report were not drawn (harness report {})",
            dir.display()
        );
        return Err(interrupt::Interrupted::new(sig, what).into());
    }
    if runs.rows().is_empty() {
        bail!("no run finished");
    }
    records::write_atomic(dir, "aggregate.csv", &aggregate(scn, &runs)?)?;
    Ok(Outcome {
        dir: dir.clone(),
        results,
        skipped,
    })
}

/// The figures `aggregate.csv` summarises per point.
const FIGURES: [&str; 17] = [
    "conn_per_s",
    "jain",
    "max_min_ratio",
    "p50_us",
    "p99_us",
    "p999_us",
    "slow_share",
    "connect_p50_us",
    "connect_p99_us",
    "queue_p50_us",
    "queue_p99_us",
    "service_p50_us",
    "service_p99_us",
    "ttfb_p50_us",
    "ttfb_p99_us",
    "total_p50_us",
    "total_p99_us",
];

/// One row per grid point that has runs: its parameters, the number of
/// repetitions, and mean, sd and 95% CI of each figure.
fn aggregate(scn: &Scenario, runs: &Table) -> anyhow::Result<Vec<u8>> {
    let point_col = runs
        .col("point")
        .ok_or_else(|| anyhow!("runs.csv has no point column"))?;
    // A run a signal cut short is left out of every figure.
    let complete_col = runs.col("complete");
    let cols: Vec<usize> = FIGURES
        .iter()
        .map(|f| runs.col(f).ok_or_else(|| anyhow!("runs.csv has no {f} column")))
        .collect::<anyhow::Result<_>>()?;
    let keys: Vec<&str> = crate::params::scenario_keys()
        .filter(|k| scn.points.iter().any(|p| p.values.contains_key(k)))
        .collect();
    let mut header: Vec<String> = vec!["point".into(), "label".into()];
    header.extend(keys.iter().map(|k| k.to_string()));
    header.push("n".into());
    for f in FIGURES {
        for s in ["mean", "sd", "ci_low", "ci_high"] {
            header.push(format!("{f}_{s}"));
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header)?;
    let cell = |x: Option<f64>| x.map_or(String::new(), |v| format!("{}", records::round(v, 4)));
    for p in &scn.points {
        let rows: Vec<&StringRecord> = runs
            .rows()
            .iter()
            .filter(|r| r[point_col].parse::<usize>().ok() == Some(p.index))
            .filter(|r| !matches!(complete_col, Some(c) if &r[c] == "false"))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let mut rec: Vec<String> = vec![p.index.to_string(), p.label.clone()];
        rec.extend(
            keys.iter()
                .map(|k| p.values.get(k).map_or(String::new(), |v| v.to_string())),
        );
        rec.push(rows.len().to_string());
        for &c in &cols {
            let values: Vec<f64> = rows.iter().filter_map(|r| r[c].parse().ok()).collect();
            match Estimate::of(&values) {
                Some(e) => rec.extend([cell(Some(e.mean)), cell(e.sd), cell(e.ci_low), cell(e.ci_high)]),
                None => rec.extend([String::new(), String::new(), String::new(), String::new()]),
            }
        }
        w.write_record(&rec)?;
    }
    w.into_inner().map_err(|e| anyhow!("csv: {e}"))
}

/// Progress on stderr: a bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    total: usize,
    done: usize,
    skipped: usize,
    started: Instant,
}

impl Progress {
    fn new(quiet: bool, total: usize) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} run {pos}/{len} {msg} [{elapsed_precise}, eta {eta}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            quiet,
            total,
            done: 0,
            skipped: 0,
            started: Instant::now(),
        }
    }

    fn skip(&mut self, n: usize) {
        self.skipped = n;
        self.done = n;
        if let Some(b) = &self.bar {
            b.set_position(n as u64);
        }
        if n > 0 {
            self.line(&format!("resuming: {n} of {} runs already complete", self.total));
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None if !self.quiet => eprintln!("sweep: {text}"),
            None => {}
        }
    }

    fn start(&mut self, id: &str, label: &str) {
        self.done += 1;
        let elapsed = self.started.elapsed().as_secs_f64();
        let ran = (self.done - 1 - self.skipped) as f64;
        let left = (self.total - self.done + 1) as f64;
        let eta = if ran > 0.0 { elapsed / ran * left } else { f64::NAN };
        match &self.bar {
            Some(b) => {
                b.set_position((self.done - 1) as u64);
                b.set_message(format!("{id} {label}"));
            }
            None if !self.quiet => eprintln!(
                "sweep: run {}/{} {id} {label} (elapsed {elapsed:.0} s, eta {})",
                self.done,
                self.total,
                if eta.is_finite() {
                    format!("{eta:.0} s")
                } else {
                    "?".into()
                }
            ),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.set_position(self.total as u64);
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(src: &str) -> Scenario {
        Scenario::parse(Path::new("t.toml"), src).unwrap()
    }

    #[test]
    fn plan_is_a_seeded_permutation() {
        let s = scenario("name = \"x\"\ndescription = \"d\"\nrepetitions = 3\nmodel = [\"reuseport\", \"shared-epoll\"]\nworkers = [1, 2]\n");
        let a = plan(&s, 7);
        assert_eq!(a.len(), 12);
        let ids: BTreeSet<_> = a.iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids.len(), 12, "every run once");
        assert_eq!(a, plan(&s, 7), "same seed, same order");
        assert_ne!(a, plan(&s, 8), "another seed, another order");
        let fixed =
            scenario("name = \"x\"\ndescription = \"d\"\nshuffle = false\nmodel = [\"reuseport\", \"shared-epoll\"]\n");
        let ids: Vec<_> = plan(&fixed, 7).into_iter().map(|p| p.id).collect();
        assert_eq!(ids, ["p000-r00", "p001-r00"]);
    }

    #[test]
    fn dry_run_counts_and_estimates() {
        let s = scenario("name = \"x\"\ndescription = \"d\"\nrepetitions = 2\nmodel = \"reuseport\"\nrate = [\"10%\", \"50%\"]\nduration = \"2s\"\n");
        let text = dry_run(&s);
        assert!(text.contains("2 points x 2 repetitions = 4 runs"), "{text}");
        assert!(text.contains("1 capacity measurements first"), "{text}");
        assert!(text.contains("estimated time: 12 s"), "{text}");
    }
}
