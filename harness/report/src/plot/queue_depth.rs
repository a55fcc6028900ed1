//! `queue-depth`: the accept-queue depth of every listening socket of one
//! run over time, a line per listener, with the queue's limit dashed. This
//! is how a stalled reuseport worker shows: its private queue fills while
//! the others stay near empty. A shared listener (one queue every worker
//! takes from) shows the whole fleet falling behind instead.
//!
//! Data: the run's `queue.csv` (one row per listener per sample, about
//! every 10 ms; a listener several workers share has no worker); for a
//! sweep, the first run's `runs/<run_id>/queue.csv`. A worker's injected
//! stall (`stall_from_ms`, `stall_to_ms` of workers.csv) is shaded. Lines
//! with more samples than the plot has pixels are thinned to each pixel
//! column's lowest and highest sample, so a spike is never lost.

use std::collections::BTreeMap;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use records::rows::QueueRow;

use super::data::OneRun;
use super::legend::{self, font, Entry, Swatch};
use super::style::{self, INK, MUTED};
use super::{perr, Figure, Planned};

pub(crate) const NAME: &str = "queue-depth";

/// Up to this many listeners get a legend line each.
const LEGEND_LISTENERS: usize = 16;
/// Lines are thinned to the lowest and highest sample of this many
/// stretches of time (about one per pixel column of the plot).
const BUCKETS: usize = 700;
/// The limits are drawn when the deepest queue reached at least this
/// fraction of the smallest limit; below it they would flatten every line
/// against the axis, and the legend gives them instead.
const SHOW_LIMIT_FROM: f64 = 0.1;

pub(crate) fn plan(run: &OneRun, queue: Result<Option<Vec<QueueRow>>>) -> Planned {
    match queue {
        Err(e) => Planned::skip(NAME, format!("cannot read queue.csv: {e:#}")),
        Ok(None) => Planned::skip(
            NAME,
            "no queue.csv (the run predates it, or its accept queues were not sampled)",
        ),
        Ok(Some(rows)) => {
            let listeners = listeners(&rows);
            if listeners.is_empty() {
                return Planned::skip(NAME, "queue.csv has no sample");
            }
            let stalls = run
                .workers
                .iter()
                .filter_map(|w| Some((w.worker, w.stall_from_ms? / 1000.0, w.stall_to_ms.map(|t| t / 1000.0))))
                .collect();
            Planned::Draw(Box::new(QueueDepth {
                model: run.model.clone(),
                describe: run.describe(),
                interval_ms: sample_interval_ms(&rows),
                listeners,
                stalls,
            }))
        }
    }
}

/// One listening socket's samples.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listener {
    pub inode: u64,
    pub worker: Option<usize>,
    /// `worker 0`, `shared listener`; with the inode when two would read
    /// the same.
    pub label: String,
    /// `(seconds since the load began, depth)`, in time order.
    pub depth: Vec<(f64, f64)>,
    /// `(seconds, limit)` where the limit is first seen and where it
    /// changes, and the last sample.
    pub limit: Vec<(f64, f64)>,
    pub max: u32,
    pub mean: f64,
    pub min_limit: u32,
    pub max_limit: u32,
    /// Samples at which the queue was at (or over) its limit.
    pub full: usize,
}

/// The listeners of `rows` in chart order: workers' own by worker index,
/// then shared ones by inode. Rows with a time that is not a finite,
/// non-negative number are left out.
pub(crate) fn listeners(rows: &[QueueRow]) -> Vec<Listener> {
    let mut by_inode: BTreeMap<u64, Vec<&QueueRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.t_ms.is_finite() && r.t_ms >= 0.0) {
        by_inode.entry(r.listener_inode).or_default().push(r);
    }
    let mut out: Vec<Listener> = by_inode
        .into_iter()
        .map(|(inode, mut rs)| {
            rs.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
            let worker = rs.iter().find_map(|r| r.worker);
            let mut limit: Vec<(f64, f64)> = Vec::new();
            for r in &rs {
                if limit.last().is_none_or(|l| l.1 != r.limit as f64) {
                    limit.push((r.t_ms / 1000.0, r.limit as f64));
                }
            }
            let last = rs[rs.len() - 1];
            if limit.last().is_some_and(|l| l.0 < last.t_ms / 1000.0) {
                limit.push((last.t_ms / 1000.0, last.limit as f64));
            }
            Listener {
                inode,
                worker,
                label: match worker {
                    Some(w) => format!("worker {w}"),
                    None => "shared listener".into(),
                },
                depth: rs.iter().map(|r| (r.t_ms / 1000.0, r.depth as f64)).collect(),
                limit,
                max: rs.iter().map(|r| r.depth).max().unwrap_or(0),
                mean: rs.iter().map(|r| r.depth as f64).sum::<f64>() / rs.len() as f64,
                min_limit: rs.iter().map(|r| r.limit).min().unwrap_or(0),
                max_limit: rs.iter().map(|r| r.limit).max().unwrap_or(0),
                full: rs.iter().filter(|r| r.depth >= r.limit).count(),
            }
        })
        .collect();
    out.sort_by_key(|l| (l.worker.is_none(), l.worker, l.inode));
    // Two listeners that would read the same are told apart by inode.
    let labels: Vec<String> = out.iter().map(|l| l.label.clone()).collect();
    for l in &mut out {
        if labels.iter().filter(|x| **x == l.label).count() > 1 {
            l.label = format!("{} (inode {})", l.label, l.inode);
        }
    }
    out
}

/// The usual time between samples (the median step between distinct
/// sample times), if there are two.
fn sample_interval_ms(rows: &[QueueRow]) -> Option<f64> {
    let mut ts: Vec<f64> = rows.iter().map(|r| r.t_ms).filter(|t| t.is_finite()).collect();
    ts.sort_by(f64::total_cmp);
    ts.dedup();
    let mut steps: Vec<f64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
    if steps.is_empty() {
        return None;
    }
    steps.sort_by(f64::total_cmp);
    Some(steps[steps.len() / 2])
}

/// `points` (in time order) thinned to at most two per bucket of equal
/// sample count: each bucket's lowest and highest, in time order. Fewer
/// than twice `buckets` points are returned as they are.
pub(crate) fn envelope(points: &[(f64, f64)], buckets: usize) -> Vec<(f64, f64)> {
    if buckets == 0 || points.len() <= 2 * buckets {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(2 * buckets + 2);
    for b in 0..buckets {
        let (from, to) = (b * points.len() / buckets, (b + 1) * points.len() / buckets);
        let slice = &points[from..to];
        if slice.is_empty() {
            continue;
        }
        let lo = (0..slice.len())
            .min_by(|&i, &j| slice[i].1.total_cmp(&slice[j].1))
            .unwrap_or(0);
        let hi = (0..slice.len())
            .max_by(|&i, &j| slice[i].1.total_cmp(&slice[j].1))
            .unwrap_or(0);
        let (first, second) = (lo.min(hi), lo.max(hi));
        out.push(slice[first]);
        if second != first {
            out.push(slice[second]);
        }
    }
    // The line still ends where the samples do.
    if out.last() != points.last() {
        out.extend(points.last());
    }
    out
}

/// Integer ticks for a count axis from 0 to `top`: steps of 1, 2 or 5
/// times a power of ten, at most about eight of them.
pub(crate) fn count_ticks(top: f64) -> Vec<f64> {
    let mut step = 1.0;
    'found: for k in 0..12 {
        for m in [1.0, 2.0, 5.0] {
            step = m * 10f64.powi(k);
            if top / step <= 8.0 {
                break 'found;
            }
        }
    }
    (0..).map(|i| i as f64 * step).take_while(|v| *v <= top).collect()
}

struct QueueDepth {
    model: String,
    describe: String,
    interval_ms: Option<f64>,
    listeners: Vec<Listener>,
    /// `(worker, from s, to s)`; no end when it never resumed.
    stalls: Vec<(usize, f64, Option<f64>)>,
}

impl QueueDepth {
    /// Each listener's colour: a worker's own in the worker palette, shared
    /// listeners in ink (then in palette colours past the workers').
    fn colours(&self) -> Vec<RGBColor> {
        let after = self
            .listeners
            .iter()
            .filter_map(|l| l.worker)
            .max()
            .map_or(0, |w| w + 1);
        let mut shared = 0;
        self.listeners
            .iter()
            .map(|l| match l.worker {
                Some(w) => style::worker_colour(w),
                None => {
                    shared += 1;
                    if shared == 1 {
                        INK
                    } else {
                        style::worker_colour(after + shared - 2)
                    }
                }
            })
            .collect()
    }

    fn deepest(&self) -> u32 {
        self.listeners.iter().map(|l| l.max).max().unwrap_or(0)
    }

    /// The smallest and largest limit of any listener.
    fn limits(&self) -> (u32, u32) {
        (
            self.listeners.iter().map(|l| l.min_limit).min().unwrap_or(0),
            self.listeners.iter().map(|l| l.max_limit).max().unwrap_or(0),
        )
    }

    fn show_limits(&self) -> bool {
        self.deepest() as f64 >= SHOW_LIMIT_FROM * self.limits().0 as f64
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (plot, side) = legend::frame(root, &self.title())?;
        let colours = self.colours();
        let deepest = self.deepest() as f64;
        let (lo_limit, hi_limit) = self.limits();
        let show_limits = self.show_limits();
        let y_top = if show_limits {
            (deepest.max(hi_limit as f64) * 1.08).max(4.0)
        } else {
            (deepest * 1.15).max(4.0)
        };
        let t_end = self
            .listeners
            .iter()
            .filter_map(|l| l.depth.last().map(|p| p.0))
            .fold(0.0, f64::max)
            .max(1e-3);
        let mut chart = super::builder(&plot)
            .build_cartesian_2d(0.0..t_end, super::Ticked::new(0.0..y_top, count_ticks(y_top)))
            .map_err(perr)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(style::GRID)
            .x_desc("time since the load began (s)")
            .y_desc("connections waiting in the accept queue")
            .axis_desc_style(font(style::AXIS_DESC_SIZE))
            .label_style(font(style::TICK_SIZE))
            .x_label_formatter(&|v| style::number(*v))
            .y_label_formatter(&|v| style::number(*v))
            .draw()
            .map_err(perr)?;
        let mut entries = Vec::new();
        // Stalls first, under the lines.
        for &(w, from, to) in &self.stalls {
            let shade = style::mix(style::worker_colour(w), WHITE, 0.82);
            let to = to.unwrap_or(t_end).min(t_end);
            if to > from {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(from, 0.0), (to, y_top)],
                        shade.filled(),
                    )))
                    .map_err(perr)?;
                entries.push(Entry::new(Swatch::Fill(shade), format!("worker {w} stalled")));
            }
        }
        let same_limit = lo_limit == hi_limit;
        if show_limits && same_limit {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, lo_limit as f64), (t_end, lo_limit as f64)],
                    8,
                    6,
                    MUTED.stroke_width(style::LINE_WIDTH),
                ))
                .map_err(perr)?;
        }
        for (l, &c) in self.listeners.iter().zip(&colours) {
            if show_limits && !same_limit {
                chart
                    .draw_series(DashedLineSeries::new(
                        step_line(&l.limit),
                        8,
                        6,
                        c.stroke_width(style::LINE_WIDTH),
                    ))
                    .map_err(perr)?;
            }
            chart
                .draw_series(LineSeries::new(
                    envelope(&l.depth, BUCKETS),
                    c.stroke_width(style::LINE_WIDTH),
                ))
                .map_err(perr)?;
        }
        let shown = self.listeners.len().min(LEGEND_LISTENERS);
        for (l, &c) in self.listeners.iter().zip(&colours).take(shown) {
            entries.push(Entry::new(Swatch::line(c), l.label.clone()));
        }
        if self.listeners.len() > shown {
            entries.push(Entry::new(
                Swatch::Note,
                format!("... and {} more listeners", self.listeners.len() - shown),
            ));
        }
        let limits = if same_limit {
            style::count(lo_limit as u64)
        } else {
            format!("{}-{}", style::count(lo_limit as u64), style::count(hi_limit as u64))
        };
        match (show_limits, same_limit) {
            (true, true) => entries.push(Entry::new(
                Swatch::dashed(MUTED),
                if self.listeners.len() == 1 {
                    format!("its limit, {limits}")
                } else {
                    format!("the limit, {limits} (every listener)")
                },
            )),
            (true, false) => entries.push(Entry::new(
                Swatch::dashed(INK),
                format!("dashed: each listener's limit ({limits})"),
            )),
            (false, _) => entries.push(Entry::new(
                Swatch::Note,
                format!(
                    "limit {limits}: off the scale (the deepest queue held {})",
                    style::count(deepest as u64)
                ),
            )),
        }
        if let Some(ms) = self.interval_ms {
            entries.push(Entry::new(
                Swatch::Note,
                format!("sampled every {} ms", style::number(ms.round().max(0.0))),
            ));
        }
        legend::draw(&side, Some("listening sockets"), &entries)
    }
}

/// A limit series as horizontal steps.
fn step_line(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for (i, &(t, v)) in points.iter().enumerate() {
        if i > 0 {
            out.push((t, points[i - 1].1));
        }
        out.push((t, v));
    }
    out
}

impl Figure for QueueDepth {
    fn name(&self) -> String {
        NAME.into()
    }

    fn title(&self) -> String {
        format!("Accept-queue depth per listening socket: {}", self.describe)
    }

    fn caption(&self) -> String {
        let n = self.listeners.len();
        let Some(top) = self.listeners.iter().max_by_key(|l| l.max) else {
            return "No accept queue was sampled.".into();
        };
        let full = match (top.full, self.interval_ms) {
            (0, _) => String::new(),
            (k, Some(ms)) => format!(", at its limit for about {} ms", style::number((k as f64 * ms).round())),
            (k, None) => format!(", at its limit in {k} samples"),
        };
        if n == 1 {
            return format!(
                "The accept-queue depth of the one listening socket ({}) of one {} run over time: at most {} of its limit {}{full}, {} on average.",
                top.label,
                self.model,
                style::count(top.max as u64),
                style::count(top.max_limit as u64),
                style::number((top.mean * 10.0).round() / 10.0)
            );
        }
        let others = self
            .listeners
            .iter()
            .filter(|l| l.inode != top.inode)
            .map(|l| l.max)
            .max()
            .unwrap_or(0);
        format!(
            "The accept-queue depth of each of the {n} listening sockets of one {} run over time (a stalled worker's private queue fills while the others stay near empty): the deepest was {}'s at {} of its limit {}{full}, while the others held at most {}.",
            self.model,
            top.label,
            style::count(top.max as u64),
            style::count(top.max_limit as u64),
            style::count(others as u64)
        )
    }

    super::figure_backends!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t_ms: f64, worker: Option<usize>, inode: u64, depth: u32, limit: u32) -> QueueRow {
        QueueRow {
            t_ms,
            worker,
            listener_inode: inode,
            depth,
            limit,
        }
    }

    #[test]
    fn listeners_are_ordered_labelled_and_summed_up() {
        let rows = vec![
            row(10.0, None, 90, 1, 128),
            row(10.0, Some(1), 71, 5, 128),
            row(10.0, Some(0), 70, 0, 128),
            row(20.0, Some(1), 71, 128, 128),
            row(20.0, Some(0), 70, 2, 128),
            row(20.0, None, 90, 0, 64),
            row(20.0, None, 91, 0, 128),
        ];
        let ls = listeners(&rows);
        let labels: Vec<&str> = ls.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "worker 0",
                "worker 1",
                "shared listener (inode 90)",
                "shared listener (inode 91)"
            ]
        );
        assert_eq!((ls[1].max, ls[1].full, ls[1].mean), (128, 1, 66.5));
        // The shared listener's limit changed: both values, then the end.
        assert_eq!(ls[2].limit, [(0.01, 128.0), (0.02, 64.0)]);
        assert_eq!((ls[2].min_limit, ls[2].max_limit), (64, 128));
        assert_eq!(ls[0].limit, [(0.01, 128.0), (0.02, 128.0)]);
        assert_eq!(sample_interval_ms(&rows), Some(10.0));
    }

    #[test]
    fn envelope_keeps_every_spike_and_the_end() {
        let pts: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (i as f64, if i == 4321 { 99.0 } else { (i % 3) as f64 }))
            .collect();
        let thin = envelope(&pts, 100);
        assert!(thin.len() <= 201, "{}", thin.len());
        assert!(thin.contains(&(4321.0, 99.0)));
        assert_eq!(thin.last(), pts.last());
        assert!(thin.windows(2).all(|w| w[0].0 < w[1].0));
        let few = &pts[..50];
        assert_eq!(envelope(few, 100), few);
    }

    #[test]
    fn count_ticks_are_whole_and_few() {
        assert_eq!(count_ticks(4.0), [0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(count_ticks(138.0), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0]);
        assert_eq!(count_ticks(4424.0).len(), 5);
    }
}
