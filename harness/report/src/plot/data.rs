//! Loads what the charts need from a run or sweep directory: CSVs read by
//! column name (extra columns are ignored, so newer files still load; the
//! phase columns and `queue.csv` may be missing, as in older files), and
//! the whole-run histograms of `histograms.hlog`.
//!
//! A missing optional file (no `timeseries.csv`, no `histograms.hlog`) is
//! not an error: the chart that needs it is skipped with the reason. A file
//! that is there but malformed (a missing column, a value that is not a
//! number) is an error naming the file, the line and the column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use records::rows::QueueRow;
use records::{Estimate, Table};

/// What a directory holds.
pub enum Source {
    Run(RunDir),
    Sweep(SweepDir),
}

impl Source {
    /// A sweep if `dir/runs.csv` exists, else a run if `dir/summary.csv` or
    /// `dir/workers.csv` does; otherwise an error naming what is missing.
    pub fn detect(dir: &Path) -> Result<Source> {
        if !dir.is_dir() {
            bail!("{}: not a directory", dir.display());
        }
        if dir.join("runs.csv").is_file() {
            return Ok(Source::Sweep(SweepDir::load(dir)?));
        }
        if dir.join("summary.csv").is_file() || dir.join("workers.csv").is_file() {
            return Ok(Source::Run(RunDir::load(dir)?));
        }
        bail!(
            "{}: nothing to draw: no runs.csv (a sweep or reproduce folder) and no summary.csv or workers.csv (a run folder)",
            dir.display()
        )
    }
}

/// One worker's row of `workers.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    pub worker: usize,
    pub pid: Option<u64>,
    pub accepted: u64,
    /// Corrected total latency percentiles (µs); `None` when not recorded.
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    /// When its injected stall began and ended (ms since the load began),
    /// if it was stalled.
    pub stall_from_ms: Option<f64>,
    pub stall_to_ms: Option<f64>,
}

/// One row of `timeseries.csv`: what a worker gained in the interval that
/// ended at `t_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct TsRow {
    pub t_ms: f64,
    pub worker: usize,
    pub accepted: u64,
}

/// The summary figures a chart quotes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub jain: Option<f64>,
    pub max_min_ratio: Option<f64>,
    pub conn_per_s: Option<f64>,
    pub phases: Phases,
}

/// The phases of a connection whose p50 and p99 summary.csv (and a sweep's
/// runs.csv) may give, as `<phase>_p50_us` and `<phase>_p99_us`, in the
/// order a connection meets them. `queue` and `service` are newer than the
/// others: older files lack them.
pub const PHASES: [&str; 5] = ["connect", "queue", "service", "ttfb", "total"];

/// The percentiles of each phase a file gives.
pub const PHASE_QUANTILES: [&str; 2] = ["p50", "p99"];

/// p50 and p99 (µs) of each of [`PHASES`], in that order; `None` for a
/// missing column or an empty cell.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases(pub [[Option<f64>; 2]; 5]);

/// `connect_p50_us`, or with `suffix` `_mean` the column of aggregate.csv.
pub fn phase_column(phase: &str, quantile: &str, suffix: &str) -> String {
    format!("{phase}_{quantile}_us{suffix}")
}

fn phases(t: &Table, r: usize, suffix: &str) -> Result<Phases> {
    let mut out = Phases::default();
    for (i, p) in PHASES.iter().enumerate() {
        for (j, q) in PHASE_QUANTILES.iter().enumerate() {
            out.0[i][j] = t.f64(r, t.col(&phase_column(p, q, suffix)))?;
        }
    }
    Ok(out)
}

/// Which of [`PHASES`] `t` has a p50 or p99 column for.
fn phase_columns(t: &Table, suffix: &str) -> Vec<&'static str> {
    PHASES
        .iter()
        .copied()
        .filter(|p| {
            PHASE_QUANTILES
                .iter()
                .any(|q| t.col(&phase_column(p, q, suffix)).is_some())
        })
        .collect()
}

/// A run's `queue.csv` ([`records::names::QUEUE`]): one row per listening
/// socket per sample. `None` when the run has none (it predates the file,
/// or nothing was sampled).
pub fn read_queue(run_dir: &Path) -> Result<Option<Vec<QueueRow>>> {
    let path = run_dir.join(records::names::QUEUE);
    let Some(t) = Table::read(&path)? else {
        return Ok(None);
    };
    let (t_ms, inode, depth, limit) = (
        t.need("t_ms")?,
        t.need("listener_inode")?,
        t.need("depth")?,
        t.need("limit")?,
    );
    let worker = t.col("worker");
    let small = |r: usize, c: usize| -> Result<u32> {
        let v = t.need_u64(r, c)?;
        u32::try_from(v).map_err(|_| anyhow!("{}:{}: {v} is too large for a queue", path.display(), r + 2))
    };
    let mut out = Vec::with_capacity(t.len());
    for r in 0..t.len() {
        out.push(QueueRow {
            t_ms: t.need_f64(r, t_ms)?,
            worker: t.u64(r, worker)?.map(|w| w as usize),
            listener_inode: t.need_u64(r, inode)?,
            depth: small(r, depth)?,
            limit: small(r, limit)?,
        });
    }
    Ok(Some(out))
}

/// One run, from a run directory or from a sweep's tidy files.
#[derive(Debug, Clone)]
pub struct OneRun {
    pub model: String,
    /// The run's id and point label inside a sweep.
    pub run_id: Option<String>,
    pub label: Option<String>,
    pub figures: Figures,
    /// Sorted by worker index; empty if there was no `workers.csv`.
    pub workers: Vec<WorkerRow>,
    /// `None` if there was no `timeseries.csv`.
    pub timeseries: Option<Vec<TsRow>>,
}

impl OneRun {
    /// Jain's index of the connection counts: the recorded figure, or
    /// computed from the counts when the summary does not have it.
    pub fn jain(&self) -> Option<f64> {
        self.figures
            .jain
            .or_else(|| records::fairness::jain(&self.workers.iter().map(|w| w.accepted).collect::<Vec<_>>()))
    }

    pub fn total_accepted(&self) -> u64 {
        self.workers.iter().map(|w| w.accepted).sum()
    }

    /// `shared-epoll` or, in a sweep whose point label says more than the
    /// model (`model=shared-epoll rate=20%`), `shared-epoll, rate 20%`.
    pub fn describe(&self) -> String {
        let own = format!("model={}", self.model);
        let rest: Vec<String> = self
            .label
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .filter(|t| *t != own)
            .map(|t| t.replacen('=', " ", 1))
            .collect();
        if rest.is_empty() {
            self.model.clone()
        } else {
            format!("{}, {}", self.model, rest.join(", "))
        }
    }
}

fn worker_rows(t: &Table, rows: impl Iterator<Item = usize>) -> Result<Vec<WorkerRow>> {
    let worker = t.need("worker")?;
    let accepted = t.need("accepted")?;
    let (pid, p50, p99, p999) = (t.col("pid"), t.col("p50_us"), t.col("p99_us"), t.col("p999_us"));
    let (stall_from, stall_to) = (t.col("stall_from_ms"), t.col("stall_to_ms"));
    let mut out = Vec::new();
    for r in rows {
        out.push(WorkerRow {
            worker: t.need_u64(r, worker)? as usize,
            pid: t.u64(r, pid)?,
            accepted: t.need_u64(r, accepted)?,
            p50_us: t.f64(r, p50)?,
            p99_us: t.f64(r, p99)?,
            p999_us: t.f64(r, p999)?,
            stall_from_ms: t.f64(r, stall_from)?,
            stall_to_ms: t.f64(r, stall_to)?,
        });
    }
    Ok(out)
}

fn ts_rows(t: &Table, rows: impl Iterator<Item = usize>) -> Result<Vec<TsRow>> {
    let (t_ms, worker, accepted) = (t.need("t_ms")?, t.need("worker")?, t.need("accepted")?);
    let mut out = Vec::new();
    for r in rows {
        out.push(TsRow {
            t_ms: t.need_f64(r, t_ms)?,
            worker: t.need_u64(r, worker)? as usize,
            accepted: t.need_u64(r, accepted)?,
        });
    }
    Ok(out)
}

fn figures(t: &Table, r: usize) -> Result<Figures> {
    Ok(Figures {
        jain: t.f64(r, t.col("jain"))?,
        max_min_ratio: t.f64(r, t.col("max_min_ratio"))?,
        conn_per_s: t.f64(r, t.col("conn_per_s"))?,
        phases: phases(t, r, "")?,
    })
}

/// The `name` of `dir/sweep.json`, if it has one (anything unreadable there
/// only costs the chart titles their name).
fn sweep_json_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("sweep.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("name")?.as_str().map(str::to_string).filter(|s| !s.is_empty())
}

/// The whole-run corrected and uncorrected latency histograms (µs).
pub struct Latency {
    pub total: Histogram<u64>,
    pub uncorrected: Option<Histogram<u64>>,
    /// How many runs were merged.
    pub runs: usize,
}

/// Adds the `total` and `total_uncorrected` histograms of `path` into `acc`.
/// A missing file adds nothing; returns whether it added anything.
fn add_histograms(path: &Path, acc: &mut Option<Latency>) -> Result<bool> {
    if !path.is_file() {
        return Ok(false);
    }
    let logged = records::hlog::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut total: Option<Histogram<u64>> = None;
    let mut uncorrected: Option<Histogram<u64>> = None;
    for l in logged {
        let slot = match l.tag.as_deref() {
            Some("total") => &mut total,
            Some("total_uncorrected") | Some("uncorrected") => &mut uncorrected,
            _ => continue,
        };
        match slot {
            Some(h) => h.add(&l.histogram).map_err(|e| anyhow!("{}: {e:?}", path.display()))?,
            None => {
                // A deserialised histogram has a fixed range; the merge may
                // need a wider one.
                let mut h = l.histogram;
                h.auto(true);
                *slot = Some(h);
            }
        }
    }
    let Some(total) = total else { return Ok(false) };
    match acc {
        None => {
            *acc = Some(Latency {
                total,
                uncorrected,
                runs: 1,
            })
        }
        Some(a) => {
            a.total.add(&total).map_err(|e| anyhow!("{}: {e:?}", path.display()))?;
            a.uncorrected = match (a.uncorrected.take(), uncorrected) {
                (Some(mut x), Some(y)) => {
                    x.add(&y).map_err(|e| anyhow!("{}: {e:?}", path.display()))?;
                    Some(x)
                }
                // Only runs that all have it: a partial merge would mislead.
                _ => None,
            };
            a.runs += 1;
        }
    }
    Ok(true)
}

/// A run directory.
pub struct RunDir {
    pub dir: PathBuf,
    pub run: OneRun,
    /// The [`PHASES`] summary.csv has columns for.
    pub phase_columns: Vec<&'static str>,
}

impl RunDir {
    pub fn load(dir: &Path) -> Result<RunDir> {
        let summary = Table::read(&dir.join("summary.csv"))?;
        let workers = Table::read(&dir.join("workers.csv"))?;
        let timeseries = Table::read(&dir.join("timeseries.csv"))?;
        let mut model = None;
        let mut figs = Figures::default();
        let phase_cols = summary.as_ref().map_or_else(Vec::new, |s| phase_columns(s, ""));
        if let Some(s) = summary.as_ref().filter(|s| !s.is_empty()) {
            model = s.opt_str(0, s.col("model")).map(str::to_string);
            figs = figures(s, 0)?;
        }
        let worker_rows = match &workers {
            Some(w) => {
                if model.is_none() && !w.is_empty() {
                    model = w.opt_str(0, w.col("model")).map(str::to_string);
                }
                let mut rows = worker_rows(w, 0..w.len())?;
                rows.sort_by_key(|r| r.worker);
                rows
            }
            None => Vec::new(),
        };
        let timeseries = match &timeseries {
            Some(t) => Some(ts_rows(t, 0..t.len())?),
            None => None,
        };
        Ok(RunDir {
            dir: dir.to_path_buf(),
            run: OneRun {
                model: model.unwrap_or_else(|| "unknown model".into()),
                run_id: None,
                label: None,
                figures: figs,
                workers: worker_rows,
                timeseries,
            },
            phase_columns: phase_cols,
        })
    }

    pub fn one_run(&self) -> OneRun {
        self.run.clone()
    }

    pub fn latency(&self) -> Result<Option<Latency>> {
        let mut acc = None;
        add_histograms(&self.dir.join("histograms.hlog"), &mut acc)?;
        Ok(acc)
    }

    /// The run's `queue.csv`, if it has one.
    pub fn queue(&self) -> Result<Option<Vec<QueueRow>>> {
        read_queue(&self.dir)
    }
}

/// One row of `runs.csv`.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub run_id: String,
    pub point: u64,
    pub label: String,
    pub model: String,
    pub figures: Figures,
}

/// One grid point of a sweep (a row of `aggregate.csv`).
#[derive(Debug, Clone)]
pub struct Point {
    pub point: u64,
    pub label: String,
    pub model: String,
    /// The scenario parameters given for the sweep, in file order, as
    /// written (`rate` may be `20%`); an empty value is left out.
    pub params: Vec<(String, String)>,
    pub n: u64,
    pub jain: Option<Estimate>,
    /// The phases' means over the repetitions, where aggregate.csv has them
    /// (`connect_p99_us_mean`, ...).
    pub phases: Phases,
}

impl Point {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A sweep directory (also what `reproduce` writes).
pub struct SweepDir {
    pub dir: PathBuf,
    /// The scenario's name, from `sweep.json`.
    pub name: Option<String>,
    /// In `runs.csv` order.
    pub runs: Vec<RunRow>,
    /// In `aggregate.csv` order.
    pub points: Vec<Point>,
    /// The names of the scenario parameters of `aggregate.csv`.
    pub params: Vec<String>,
    /// `(run_id, row)` of the combined `workers.csv`.
    pub workers: Vec<(String, WorkerRow)>,
    /// `(run_id, row)` of the combined `timeseries.csv`, if there is one.
    pub timeseries: Option<Vec<(String, TsRow)>>,
    /// The [`PHASES`] runs.csv or aggregate.csv has columns for.
    pub phase_columns: Vec<&'static str>,
}

impl SweepDir {
    pub fn load(dir: &Path) -> Result<SweepDir> {
        let runs_t = Table::read(&dir.join("runs.csv"))?.ok_or_else(|| anyhow!("{}: no runs.csv", dir.display()))?;
        let (id, point, label, model) = (
            runs_t.need("run_id")?,
            runs_t.need("point")?,
            runs_t.col("label"),
            runs_t.col("model"),
        );
        let mut runs = Vec::new();
        let complete = runs_t.col("complete");
        for r in 0..runs_t.len() {
            // A run a signal cut short (complete=false) is no data point.
            if runs_t.opt_str(r, complete) == Some("false") {
                continue;
            }
            runs.push(RunRow {
                run_id: runs_t.str(r, id).to_string(),
                point: runs_t.need_u64(r, point)?,
                label: runs_t.opt_str(r, label).unwrap_or("").to_string(),
                model: runs_t.opt_str(r, model).unwrap_or("unknown model").to_string(),
                figures: figures(&runs_t, r)?,
            });
        }
        let mut phase_cols = phase_columns(&runs_t, "");
        let (points, params) = match Table::read(&dir.join("aggregate.csv"))? {
            Some(agg) => {
                let agg_cols = phase_columns(&agg, "_mean");
                phase_cols.retain(|p| !agg_cols.contains(p));
                phase_cols.extend(agg_cols);
                // Back in PHASES order.
                phase_cols.sort_by_key(|p| PHASES.iter().position(|q| q == p));
                points_from_aggregate(&agg, &runs)?
            }
            None => points_from_runs(&runs),
        };
        let workers = match Table::read(&dir.join("workers.csv"))? {
            Some(t) => {
                let id = t.need("run_id")?;
                let rows = worker_rows(&t, 0..t.len())?;
                (0..t.len()).map(|r| t.str(r, id).to_string()).zip(rows).collect()
            }
            None => Vec::new(),
        };
        let timeseries = match Table::read(&dir.join("timeseries.csv"))? {
            Some(t) => {
                let id = t.need("run_id")?;
                let rows = ts_rows(&t, 0..t.len())?;
                Some((0..t.len()).map(|r| t.str(r, id).to_string()).zip(rows).collect())
            }
            None => None,
        };
        Ok(SweepDir {
            dir: dir.to_path_buf(),
            name: sweep_json_name(dir),
            runs,
            points,
            params,
            workers,
            timeseries,
            phase_columns: phase_cols,
        })
    }

    /// The `queue.csv` of a run of the sweep (`runs/<run_id>/queue.csv`),
    /// if it has one.
    pub fn queue(&self, row: &RunRow) -> Result<Option<Vec<QueueRow>>> {
        read_queue(&self.dir.join(records::names::RUNS_DIR).join(&row.run_id))
    }

    /// One run of the sweep, from the combined files.
    pub fn run(&self, row: &RunRow) -> OneRun {
        let mut workers: Vec<WorkerRow> = self
            .workers
            .iter()
            .filter(|(id, _)| *id == row.run_id)
            .map(|(_, w)| w.clone())
            .collect();
        workers.sort_by_key(|w| w.worker);
        let timeseries = self.timeseries.as_ref().map(|ts| {
            ts.iter()
                .filter(|(id, _)| *id == row.run_id)
                .map(|(_, t)| t.clone())
                .collect()
        });
        OneRun {
            model: row.model.clone(),
            run_id: Some(row.run_id.clone()),
            label: Some(row.label.clone()),
            figures: row.figures.clone(),
            workers,
            timeseries,
        }
    }

    /// The parameters that take more than one value across the points, in
    /// `aggregate.csv` order.
    pub fn varying(&self) -> Vec<String> {
        self.params
            .iter()
            .filter(|p| {
                let mut values: Vec<Option<&str>> = self.points.iter().map(|pt| pt.param(p)).collect();
                values.sort();
                values.dedup();
                values.len() > 1
            })
            .cloned()
            .collect()
    }

    /// The merged histograms of every repetition of `point` that has a
    /// `runs/<run_id>/histograms.hlog`.
    pub fn latency(&self, point: u64) -> Result<Option<Latency>> {
        let mut acc = None;
        for r in self.runs.iter().filter(|r| r.point == point) {
            add_histograms(&self.dir.join("runs").join(&r.run_id).join("histograms.hlog"), &mut acc)?;
        }
        Ok(acc)
    }
}

fn points_from_aggregate(agg: &Table, runs: &[RunRow]) -> Result<(Vec<Point>, Vec<String>)> {
    let point = agg.need("point")?;
    let label = agg.col("label");
    let n = agg.need("n")?;
    // The scenario's parameters are the columns between `label` (or
    // `point`) and `n`.
    let first = label.unwrap_or(point) + 1;
    let params: Vec<String> = agg.headers()[first.min(n)..n].iter().map(|h| h.to_string()).collect();
    let model_col = agg.col("model");
    let (mean, sd, lo, hi) = (
        agg.col("jain_mean"),
        agg.col("jain_sd"),
        agg.col("jain_ci_low"),
        agg.col("jain_ci_high"),
    );
    let mut points = Vec::new();
    for r in 0..agg.len() {
        let p = agg.need_u64(r, point)?;
        let model = match agg.opt_str(r, model_col) {
            Some(m) => m.to_string(),
            None => runs
                .iter()
                .find(|x| x.point == p)
                .map(|x| x.model.clone())
                .unwrap_or_else(|| "unknown model".into()),
        };
        let count = agg.need_u64(r, n)? as usize;
        let jain = match agg.f64(r, mean)? {
            Some(m) => Some(
                Estimate::from_parts(count, m, agg.f64(r, sd)?, agg.f64(r, lo)?, agg.f64(r, hi)?)
                    .map_err(|e| anyhow!("aggregate.csv, point {p}: jain: {e}"))?,
            ),
            None => None,
        };
        points.push(Point {
            point: p,
            label: agg.opt_str(r, label).unwrap_or("").to_string(),
            model,
            params: params
                .iter()
                .filter_map(|k| {
                    let v = agg.opt_str(r, agg.col(k))?;
                    Some((k.clone(), v.to_string()))
                })
                .collect(),
            n: count as u64,
            jain,
            phases: phases(agg, r, "_mean")?,
        });
    }
    Ok((points, params))
}

/// Without `aggregate.csv`: one point per point number of `runs.csv`, its
/// only known parameter the model, Jain's index averaged with no interval.
fn points_from_runs(runs: &[RunRow]) -> (Vec<Point>, Vec<String>) {
    let mut by_point: BTreeMap<u64, Vec<&RunRow>> = BTreeMap::new();
    for r in runs {
        by_point.entry(r.point).or_default().push(r);
    }
    let points = by_point
        .into_iter()
        .map(|(p, rs)| {
            let jains: Vec<f64> = rs.iter().filter_map(|r| r.figures.jain).collect();
            // Without the file's intervals only the mean is known.
            let mean = Estimate::of(&jains).map(|e| Estimate {
                sd: None,
                ci_low: None,
                ci_high: None,
                ..e
            });
            Point {
                point: p,
                label: rs[0].label.clone(),
                model: rs[0].model.clone(),
                params: vec![("model".into(), rs[0].model.clone())],
                n: rs.len() as u64,
                jain: mean,
                phases: Phases::default(),
            }
        })
        .collect();
    (points, vec!["model".into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("harness-plot-data-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn columns_are_found_by_name_and_extra_ones_ignored() {
        let d = tmp("cols");
        std::fs::write(
            d.join("workers.csv"),
            "extra,accepted,model,worker,p99_us\nx,10,reuseport,1,\ny,30,reuseport,0,250\n",
        )
        .unwrap();
        let run = RunDir::load(&d).unwrap().run;
        assert_eq!(run.model, "reuseport");
        assert_eq!(run.workers.len(), 2);
        assert_eq!((run.workers[0].worker, run.workers[0].accepted), (0, 30));
        assert_eq!(run.workers[0].p99_us, Some(250.0));
        assert_eq!(run.workers[1].p99_us, None);
        assert_eq!(run.workers[0].p50_us, None);
        assert!(run.timeseries.is_none());
        // Jain's index from the counts when there is no summary.
        assert!((run.jain().unwrap() - 0.8).abs() < 1e-12);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_bad_number_names_file_line_and_column() {
        let d = tmp("bad");
        std::fs::write(d.join("workers.csv"), "worker,accepted\n0,12\n1,many\n").unwrap();
        let err = format!("{:#}", RunDir::load(&d).err().unwrap());
        assert!(err.contains("workers.csv:3") && err.contains("`accepted`"), "{err}");
        std::fs::write(d.join("workers.csv"), "worker,count\n0,12\n").unwrap();
        let err = format!("{:#}", RunDir::load(&d).err().unwrap());
        assert!(err.contains("no column `accepted`"), "{err}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn queue_rows_read_by_name_and_name_a_bad_cell() {
        let d = tmp("queue");
        assert!(read_queue(&d).unwrap().is_none());
        std::fs::write(
            d.join("queue.csv"),
            "limit,t_ms,worker,listener_inode,depth,later\n128,10.5,,77,3,x\n128,10.5,2,78,0,y\n",
        )
        .unwrap();
        let rows = read_queue(&d).unwrap().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].t_ms, rows[0].worker, rows[0].listener_inode), (10.5, None, 77));
        assert_eq!((rows[1].worker, rows[1].depth, rows[1].limit), (Some(2), 0, 128));
        std::fs::write(
            d.join("queue.csv"),
            "t_ms,worker,listener_inode,depth,limit\n10,0,77,deep,128\n",
        )
        .unwrap();
        let err = format!("{:#}", read_queue(&d).unwrap_err());
        assert!(err.contains("queue.csv:2") && err.contains("`depth`"), "{err}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn varying_parameters_and_ci() {
        let d = tmp("agg");
        std::fs::write(
            d.join("runs.csv"),
            "run_id,point,repetition,label,model,jain\np000-r00,0,0,a,reuseport,0.9\np001-r00,1,0,b,dispatch-rr,1\n",
        )
        .unwrap();
        std::fs::write(
            d.join("aggregate.csv"),
            "point,label,model,workers,rate,n,jain_mean,jain_sd,jain_ci_low,jain_ci_high\n\
             0,a,reuseport,4,20%,2,0.9,0.01,0.8,0.95\n1,b,dispatch-rr,4,40%,1,1,,,\n",
        )
        .unwrap();
        let s = SweepDir::load(&d).unwrap();
        assert_eq!(s.params, ["model", "workers", "rate"]);
        assert_eq!(s.varying(), ["model", "rate"]);
        assert_eq!(s.points[0].jain.unwrap().ci(), Some((0.8, 0.95)));
        assert_eq!(s.points[1].jain.unwrap().ci(), None);
        assert_eq!(s.points[1].param("rate"), Some("40%"));
        // No workers.csv: the first run has no worker rows, not an error.
        assert!(s.run(&s.runs[0]).workers.is_empty());
        std::fs::remove_dir_all(d).unwrap();
    }
}
