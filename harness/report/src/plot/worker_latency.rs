//! `worker-latency`: each worker's p50, p99 and p99.9 connection latency
//! (the corrected total, µs) in one run, grouped bars on a log scale, so a
//! worker that is slow (or starved, or swamped) stands out.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::OneRun;
use super::legend::{self, font, Entry, Swatch};
use super::style::{self, MUTED};
use super::workers::index_ticks;
use super::{perr, Figure, Planned};

pub(crate) const NAME: &str = "worker-latency";

/// The percentiles drawn, with how much of the model colour each bar takes
/// (lighter for the median, full for the tail).
const LEVELS: [(&str, f64); 3] = [("p50", 0.6), ("p99", 0.3), ("p99.9", 0.0)];

pub(crate) fn plan(run: &OneRun) -> Planned {
    if run.workers.is_empty() {
        return Planned::skip(NAME, "no per-worker rows (workers.csv is missing or empty)");
    }
    let any = run
        .workers
        .iter()
        .any(|w| w.accepted > 0 && [w.p50_us, w.p99_us, w.p999_us].iter().any(|v| v.unwrap_or(0.0) > 0.0));
    if !any {
        return Planned::skip(
            NAME,
            "no worker has a recorded latency (a --no-record run, or no connections)",
        );
    }
    Planned::Draw(Box::new(WorkerLatency { run: run.clone() }))
}

struct WorkerLatency {
    run: OneRun,
}

impl WorkerLatency {
    /// Per worker, the three percentiles (`None` for a worker with no
    /// connections or a value that was not recorded).
    fn values(&self) -> Vec<[Option<f64>; 3]> {
        self.run
            .workers
            .iter()
            .map(|w| {
                let ok = |v: Option<f64>| v.filter(|x| w.accepted > 0 && *x > 0.0 && x.is_finite());
                [ok(w.p50_us), ok(w.p99_us), ok(w.p999_us)]
            })
            .collect()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (plot, side) = legend::frame(root, &self.title())?;
        let values = self.values();
        let n = values.len();
        let all: Vec<f64> = values.iter().flatten().flatten().copied().collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(0.0, f64::max);
        let y_lo = (lo / 1.6).max(0.5);
        let y_hi = (hi * 1.4).max(y_lo * 3.0);
        let colour = style::model_colour(&self.run.model, &[]);
        let x_range = -0.5..(n as f64 - 0.5);
        let mut chart = super::builder(&plot)
            .build_cartesian_2d(
                super::Ticked::new(x_range, index_ticks(n)),
                super::LogAxis::new(y_lo, y_hi),
            )
            .map_err(perr)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(style::GRID_MINOR)
            .bold_line_style(style::GRID)
            .x_desc("worker (index)")
            .y_desc("latency per connection (µs, log scale)")
            .axis_desc_style(font(style::AXIS_DESC_SIZE))
            .label_style(font(style::TICK_SIZE))
            .x_label_formatter(&|v| format!("{}", v.round() as i64))
            .y_label_formatter(&|v| style::micros(*v))
            .draw()
            .map_err(perr)?;
        let width = 0.8 / LEVELS.len() as f64;
        for (k, (_, lighten)) in LEVELS.iter().enumerate() {
            let c = style::mix(colour, WHITE, *lighten);
            chart
                .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                    let y = v[k]?;
                    let x0 = i as f64 - 0.4 + k as f64 * width;
                    Some(Rectangle::new([(x0, y_lo), (x0 + width * 0.92, y)], c.filled()))
                }))
                .map_err(perr)?;
        }
        // Say why a worker has no bars rather than leave a silent gap.
        let note = font(style::NOTE_SIZE)
            .color(&MUTED)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(
                self.run
                    .workers
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.accepted == 0 && n <= 32)
                    .map(|(i, _)| Text::new("none", (i as f64, y_lo), note.clone())),
            )
            .map_err(perr)?;
        let mut entries: Vec<Entry> = LEVELS
            .iter()
            .map(|(p, lighten)| {
                Entry::new(
                    Swatch::Fill(style::mix(colour, WHITE, *lighten)),
                    format!("{} {p}", self.run.model),
                )
            })
            .collect();
        entries.push(Entry::new(Swatch::Note, "corrected total latency"));
        let idle = self.run.workers.iter().filter(|w| w.accepted == 0).count();
        if idle > 0 {
            entries.push(Entry::new(
                Swatch::Note,
                format!("{idle} worker{} with no connections", if idle == 1 { "" } else { "s" }),
            ));
        }
        legend::draw(&side, None, &entries)
    }
}

impl Figure for WorkerLatency {
    fn name(&self) -> String {
        NAME.into()
    }

    fn title(&self) -> String {
        format!("Latency per worker: {}", self.run.describe())
    }

    fn caption(&self) -> String {
        let p99: Vec<(usize, f64)> = self
            .values()
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((i, v[1]?)))
            .collect();
        let best = p99.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1));
        let worst = p99.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
        match (best, worst) {
            (Some(b), Some(w)) if p99.len() > 1 => format!(
                "p50, p99 and p99.9 latency of each {} worker: p99 ranges from {} µs (worker {}) to {} µs (worker {}).",
                self.run.model,
                style::micros(b.1),
                self.run.workers[b.0].worker,
                style::micros(w.1),
                self.run.workers[w.0].worker
            ),
            _ => format!(
                "p50, p99 and p99.9 latency of each {} worker (only one worker served connections).",
                self.run.model
            ),
        }
    }

    super::figure_backends!();
}
