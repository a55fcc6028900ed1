//! `share-over-time`: each worker's share of the connections accepted in
//! each sampling interval of one run, stacked to 1, against time. A model
//! that is even on the whole can still take turns (one worker for a while,
//! then another); this shows it. Intervals in which nothing was accepted
//! are left blank: a share of nothing is not a number.

use std::collections::BTreeMap;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::data::OneRun;
use super::legend::{self, font, Entry, Swatch};
use super::style;
use super::{perr, Figure, Planned};

pub(crate) const NAME: &str = "share-over-time";

/// Up to this many workers get a legend line each.
const LEGEND_WORKERS: usize = 16;

pub(crate) fn plan(run: &OneRun) -> Planned {
    let Some(ts) = &run.timeseries else {
        return Planned::skip(NAME, "no timeseries.csv");
    };
    let series = Series::from_rows(ts.iter().map(|r| (r.t_ms, r.worker, r.accepted)));
    if series.intervals.iter().all(|iv| iv.total == 0) {
        return Planned::skip(NAME, "no interval of timeseries.csv has an accepted connection");
    }
    Planned::Draw(Box::new(ShareOverTime {
        model: run.model.clone(),
        describe: run.describe(),
        series,
    }))
}

/// One sampling interval: `[from, to)` in seconds since the load began.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Interval {
    pub from: f64,
    pub to: f64,
    /// Connections each worker accepted in it, by worker index.
    pub accepted: Vec<u64>,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub workers: usize,
    pub intervals: Vec<Interval>,
}

impl Series {
    /// Builds the intervals from `(t_ms, worker, accepted)` rows: each
    /// distinct `t_ms` ends an interval that began at the one before (the
    /// first at 0).
    pub fn from_rows(rows: impl Iterator<Item = (f64, usize, u64)>) -> Series {
        // Keyed by the bits of a non-negative finite float, which sort as
        // the floats do.
        let mut by_t: BTreeMap<u64, BTreeMap<usize, u64>> = BTreeMap::new();
        let mut workers = 0;
        for (t, w, a) in rows {
            if !t.is_finite() || t < 0.0 {
                continue;
            }
            workers = workers.max(w + 1);
            *by_t.entry(t.to_bits()).or_default().entry(w).or_default() += a;
        }
        let mut from = 0.0;
        let mut intervals = Vec::new();
        for (bits, counts) in by_t {
            let to = f64::from_bits(bits) / 1000.0;
            let mut accepted = vec![0; workers];
            for (w, a) in counts {
                accepted[w] = a;
            }
            let total = accepted.iter().sum();
            intervals.push(Interval {
                from,
                to,
                accepted,
                total,
            });
            from = to;
        }
        Series { workers, intervals }
    }

    /// For each worker, the outlines of its band: one polygon per run of
    /// consecutive non-empty intervals, stepping with each interval
    /// (the band lies between the shares of the workers below it and its
    /// own added on top).
    pub fn bands(&self) -> Vec<Vec<Vec<(f64, f64)>>> {
        let mut out = vec![Vec::new(); self.workers];
        for (w, polys) in out.iter_mut().enumerate() {
            let mut upper: Vec<(f64, f64)> = Vec::new();
            let mut lower: Vec<(f64, f64)> = Vec::new();
            for iv in &self.intervals {
                if iv.total == 0 {
                    close(polys, &mut upper, &mut lower);
                    continue;
                }
                let below: u64 = iv.accepted[..w].iter().sum();
                let lo = below as f64 / iv.total as f64;
                let hi = (below + iv.accepted[w]) as f64 / iv.total as f64;
                upper.extend([(iv.from, hi), (iv.to, hi)]);
                lower.extend([(iv.from, lo), (iv.to, lo)]);
            }
            close(polys, &mut upper, &mut lower);
        }
        out
    }

    /// The busiest worker's share in the median non-empty interval.
    pub fn median_top_share(&self) -> Option<f64> {
        let mut tops: Vec<f64> = self
            .intervals
            .iter()
            .filter(|iv| iv.total > 0)
            .map(|iv| *iv.accepted.iter().max().unwrap_or(&0) as f64 / iv.total as f64)
            .collect();
        if tops.is_empty() {
            return None;
        }
        tops.sort_by(f64::total_cmp);
        Some(tops[tops.len() / 2])
    }
}

fn close(polys: &mut Vec<Vec<(f64, f64)>>, upper: &mut Vec<(f64, f64)>, lower: &mut Vec<(f64, f64)>) {
    if upper.is_empty() {
        return;
    }
    let mut poly = std::mem::take(upper);
    poly.extend(lower.drain(..).rev());
    polys.push(poly);
}

struct ShareOverTime {
    model: String,
    describe: String,
    series: Series,
}

impl ShareOverTime {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (plot, side) = legend::frame(root, &self.title())?;
        let s = &self.series;
        let t_end = s.intervals.last().map(|iv| iv.to).unwrap_or(1.0).max(1e-3);
        let mut chart = super::builder(&plot)
            .build_cartesian_2d(0.0..t_end, 0.0..1.0)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(style::GRID)
            .x_desc("time since the load began (s)")
            .y_desc("share of the interval's accepted connections")
            .axis_desc_style(font(style::AXIS_DESC_SIZE))
            .label_style(font(style::TICK_SIZE))
            .x_label_formatter(&|v| style::number(*v))
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .draw()
            .map_err(perr)?;
        for (w, polys) in s.bands().into_iter().enumerate() {
            let c = style::worker_colour(w);
            chart
                .draw_series(polys.into_iter().map(|p| Polygon::new(p, c.filled())))
                .map_err(perr)?;
        }
        // The even split, for reference.
        if s.workers > 1 && s.workers <= 32 {
            for k in 1..s.workers {
                let y = k as f64 / s.workers as f64;
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(0.0, y), (t_end, y)],
                        4,
                        4,
                        WHITE.mix(0.8).stroke_width(1),
                    ))
                    .map_err(perr)?;
            }
        }
        // Listed top-down, as the bands are stacked.
        let mut entries: Vec<Entry> = (0..s.workers.min(LEGEND_WORKERS))
            .rev()
            .map(|w| Entry::new(Swatch::Fill(style::worker_colour(w)), format!("worker {w}")))
            .collect();
        if s.workers > LEGEND_WORKERS {
            entries.insert(
                0,
                Entry::new(
                    Swatch::Note,
                    format!("workers {LEGEND_WORKERS}-{} (above) not listed", s.workers - 1),
                ),
            );
        }
        if s.workers > 1 && s.workers <= 32 {
            entries.push(Entry::new(Swatch::Note, "dashed: the even split"));
        }
        if s.intervals.iter().any(|iv| iv.total == 0) {
            entries.push(Entry::new(Swatch::Note, "blank: nothing accepted"));
        }
        legend::draw(&side, Some(&format!("{} workers", self.model)), &entries)
    }
}

impl Figure for ShareOverTime {
    fn name(&self) -> String {
        NAME.into()
    }

    fn title(&self) -> String {
        format!("Share of each interval's connections by worker: {}", self.describe)
    }

    fn caption(&self) -> String {
        let s = &self.series;
        let even = 100.0 / s.workers.max(1) as f64;
        match s.median_top_share() {
            Some(top) => {
                let n = s.intervals.iter().filter(|iv| iv.total > 0).count();
                let which = if n == 1 {
                    "its one sampling interval: the busiest worker".to_string()
                } else {
                    format!("each of {n} sampling intervals: in the median interval the busiest worker")
                };
                format!(
                    "How the {} workers of one {} run split the connections of {which} took {:.0}% (an even split is {:.0}%).",
                    s.workers,
                    self.model,
                    top * 100.0,
                    even
                )
            }
            None => format!(
                "No connections were accepted in any interval of the {} run.",
                self.model
            ),
        }
    }

    super::figure_backends!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_skip_empty_ones_and_stack_to_one() {
        let rows = vec![
            (100.0, 0, 3),
            (100.0, 1, 1),
            (200.0, 0, 0),
            (200.0, 1, 0),
            (300.0, 1, 2),
            (300.0, 0, 0),
        ];
        let s = Series::from_rows(rows.into_iter());
        assert_eq!(s.workers, 2);
        assert_eq!(s.intervals.len(), 3);
        assert_eq!(s.intervals[1].from, 0.1);
        assert_eq!(s.intervals[1].total, 0);
        let bands = s.bands();
        // The empty interval splits each band in two.
        assert_eq!(bands[0].len(), 2);
        assert_eq!(bands[1].len(), 2);
        // Worker 1's band tops out at 1 in every drawn interval.
        for poly in &bands[1] {
            let top = poly.iter().map(|p| p.1).fold(0.0, f64::max);
            assert!((top - 1.0).abs() < 1e-12);
        }
        // Worker 0 took 3/4 in the first interval.
        assert!(bands[0][0].contains(&(0.0, 0.75)));
        for poly in bands.iter().flatten() {
            assert!(poly.iter().all(|p| p.1.is_finite() && (0.0..=1.0).contains(&p.1)));
        }
        assert_eq!(s.median_top_share(), Some(1.0));
    }

    #[test]
    fn all_empty_has_no_bands_and_no_median() {
        let s = Series::from_rows(vec![(100.0, 0, 0), (100.0, 1, 0)].into_iter());
        assert!(s.bands().iter().all(|b| b.is_empty()));
        assert_eq!(s.median_top_share(), None);
    }
}
