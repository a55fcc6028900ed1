//! `latency-spectrum`: the connection latency at every percentile, on the
//! usual HdrHistogram scale (x = log10(1/(1-q)), so 90%, 99%, 99.9% ... are
//! evenly spaced), one colour per model: the solid line the corrected total
//! (measured from each connection's intended start), the dashed line the
//! uncorrected one (from its actual start). Where they part, the load
//! generator was held back and a closed loop would have hidden the wait.
//!
//! Data: the `total` and `total_uncorrected` histograms of
//! `histograms.hlog`, merged over the repetitions of each point without
//! loss. A sweep with one point per model gets one chart; otherwise one per
//! value of the other varying parameters (`latency-spectrum-<param>-<value>`),
//! at most [`MAX_CHARTS`].

use anyhow::Result;
use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::data::{Latency, Point, RunDir, SweepDir};
use super::legend::{self, font, Entry, Swatch};
use super::style::{self, INK};
use super::{perr, Figure, Planned};

pub(crate) const NAME: &str = "latency-spectrum";
/// At most this many spectra are drawn for one sweep.
pub(crate) const MAX_CHARTS: usize = 8;
/// The spectrum stops at 99.999% (x = 5), or earlier where the histogram
/// has too few values to say more (x = log10(count)).
const MAX_X: f64 = 5.0;
const STEP_X: f64 = 0.025;

/// The percentile spectrum of `h`: `(log10(1/(1-q)), value in µs)` from
/// q = 0 up to the last quantile the count supports.
pub(crate) fn spectrum(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let n = h.len();
    if n == 0 {
        return Vec::new();
    }
    let x_max = (n as f64).log10().min(MAX_X);
    let steps = (x_max / STEP_X).floor() as usize;
    let mut xs: Vec<f64> = (0..=steps).map(|i| i as f64 * STEP_X).collect();
    if x_max - steps as f64 * STEP_X > 1e-9 {
        xs.push(x_max);
    }
    xs.into_iter()
        .map(|x| {
            let q = 1.0 - 10f64.powf(-x);
            (x, (h.value_at_quantile(q) as f64).max(1.0))
        })
        .collect()
}

/// The percentile at x: 0 -> `0`, 1 -> `90`, 3 -> `99.9`.
pub(crate) fn percentile_label(x: f64) -> String {
    let q = 100.0 * (1.0 - 10f64.powf(-x));
    let digits = (x.round() as i32 - 2).clamp(0, 6) as usize;
    format!("{q:.digits$}")
}

/// One model's (or one point's) line pair.
struct Line {
    model: String,
    label: String,
    total: Vec<(f64, f64)>,
    uncorrected: Option<Vec<(f64, f64)>>,
    count: u64,
    runs: usize,
    p50: f64,
    p99: f64,
    p999: f64,
}

impl Line {
    fn new(model: &str, label: String, l: &Latency) -> Line {
        let q = |p: f64| l.total.value_at_quantile(p) as f64;
        Line {
            model: model.to_string(),
            label,
            total: spectrum(&l.total),
            uncorrected: l.uncorrected.as_ref().map(spectrum).filter(|s| !s.is_empty()),
            count: l.total.len(),
            runs: l.runs,
            p50: q(0.5),
            p99: q(0.99),
            p999: q(0.999),
        }
    }
}

pub(crate) fn plan_run(run: &RunDir) -> Vec<Planned> {
    match run.latency() {
        Err(e) => vec![Planned::skip(NAME, format!("cannot read the histograms: {e:#}"))],
        Ok(None) => vec![Planned::skip(
            NAME,
            "no `total` histogram in histograms.hlog (missing file or --no-record)",
        )],
        Ok(Some(l)) if l.total.is_empty() => vec![Planned::skip(NAME, "the `total` histogram is empty")],
        Ok(Some(l)) => {
            let model = &run.run.model;
            let mut chart = Spectrum::new(NAME.into(), String::new(), vec![Line::new(model, model.clone(), &l)]);
            chart.title_subject = model.clone();
            vec![Planned::Draw(Box::new(chart))]
        }
    }
}

/// `20%` -> `20pct`: a value as it can stand in a file name.
pub(crate) fn slug(v: &str) -> String {
    let mut out = String::new();
    for c in v.trim().chars() {
        match c {
            'a'..='z' | '0'..='9' | '.' | '-' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            '%' => out.push_str("pct"),
            _ => out.push('_'),
        }
    }
    out
}

/// The points of a sweep split into charts of `name`: `(name, subject,
/// points)`. One chart when every model has one point or only the model
/// varies; otherwise one per value of the other varying parameters
/// (`<name>-<param>-<value>`).
pub(crate) fn split<'a>(sweep: &'a SweepDir, name: &str) -> Vec<(String, String, Vec<&'a Point>)> {
    let mut models: Vec<&str> = sweep.points.iter().map(|p| p.model.as_str()).collect();
    models.sort();
    models.dedup();
    let others: Vec<String> = sweep.varying().into_iter().filter(|p| p != "model").collect();
    if models.len() == sweep.points.len() || others.is_empty() {
        return vec![(name.into(), String::new(), sweep.points.iter().collect())];
    }
    // (the other parameters' values, the points that have them)
    type Group<'a> = (Vec<(String, String)>, Vec<&'a Point>);
    let mut groups: Vec<Group> = Vec::new();
    for p in &sweep.points {
        let key: Vec<(String, String)> = others
            .iter()
            .map(|k| (k.clone(), p.param(k).unwrap_or("-").to_string()))
            .collect();
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.1.push(p),
            None => groups.push((key, vec![p])),
        }
    }
    groups
        .into_iter()
        .map(|(key, pts)| {
            let suffix = key
                .iter()
                .map(|(k, v)| format!("{}-{}", slug(k), slug(v)))
                .collect::<Vec<_>>()
                .join("-");
            let subject = key
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            (format!("{name}-{suffix}"), subject, pts)
        })
        .collect()
}

/// Which of `n` charts to draw: all up to [`MAX_CHARTS`], else that many
/// evenly spaced, the first and the last among them.
pub(crate) fn pick(n: usize) -> Vec<usize> {
    if n <= MAX_CHARTS {
        return (0..n).collect();
    }
    let mut v: Vec<usize> = (0..MAX_CHARTS)
        .map(|i| ((i * (n - 1)) as f64 / (MAX_CHARTS - 1) as f64).round() as usize)
        .collect();
    v.dedup();
    v
}

pub(crate) fn plan_sweep(sweep: &SweepDir) -> Vec<Planned> {
    if sweep.points.is_empty() {
        return vec![Planned::skip(NAME, "the sweep has no finished point yet")];
    }
    let charts = split(sweep, NAME);
    let chosen = pick(charts.len());
    let mut out = Vec::new();
    for (i, (name, subject, points)) in charts.into_iter().enumerate() {
        if !chosen.contains(&i) {
            out.push(Planned::skip(
                &name,
                format!("at most {MAX_CHARTS} latency spectra are drawn per sweep"),
            ));
            continue;
        }
        let mut lines = Vec::new();
        let mut missing = Vec::new();
        for p in &points {
            match sweep.latency(p.point) {
                Err(e) => {
                    out.push(Planned::skip(
                        &name,
                        format!("cannot read or merge the histograms: {e:#}"),
                    ));
                    lines.clear();
                    missing.clear();
                    break;
                }
                Ok(Some(l)) if !l.total.is_empty() => lines.push((p, l)),
                Ok(_) => missing.push(p.label.clone()),
            }
        }
        if lines.is_empty() {
            if missing.is_empty() {
                continue; // already skipped with the read error
            }
            out.push(Planned::skip(
                &name,
                "no run of these points has a `total` histogram in runs/<run_id>/histograms.hlog",
            ));
            continue;
        }
        // Label by model; by point label if a model has several points here.
        let dup = {
            let mut m: Vec<&str> = lines.iter().map(|(p, _)| p.model.as_str()).collect();
            m.sort();
            let n = m.len();
            m.dedup();
            m.len() < n
        };
        let mut built: Vec<Line> = lines
            .iter()
            .map(|(p, l)| {
                let label = if dup { p.label.clone() } else { p.model.clone() };
                Line::new(&p.model, label, l)
            })
            .collect();
        built.sort_by_key(|l| style::model_rank(&l.model));
        let mut chart = Spectrum::new(name, subject, built);
        if chart.title_subject.is_empty() {
            chart.title_subject = super::shares::sweep_name(sweep);
        }
        out.push(Planned::Draw(Box::new(chart)));
    }
    out
}

struct Spectrum {
    name: String,
    /// What the chart's points share, e.g. `concurrency 64`; empty for all.
    subject: String,
    /// What the title adds: the subject, or a single run's model.
    title_subject: String,
    lines: Vec<Line>,
    models: Vec<String>,
}

impl Spectrum {
    fn new(name: String, subject: String, lines: Vec<Line>) -> Spectrum {
        let models = style::order_models(lines.iter().map(|l| l.model.as_str()));
        Spectrum {
            name,
            title_subject: subject.clone(),
            subject,
            lines,
            models,
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (plot, side) = legend::frame(root, &self.title())?;
        let all = self
            .lines
            .iter()
            .flat_map(|l| l.total.iter().chain(l.uncorrected.iter().flatten()));
        let (mut lo, mut hi, mut x_max) = (f64::INFINITY, 0.0f64, 0.0f64);
        for &(x, y) in all {
            lo = lo.min(y);
            hi = hi.max(y);
            x_max = x_max.max(x);
        }
        let (y_lo, y_hi) = (lo / 1.3, (hi * 1.3).max(lo * 3.0));
        let x_end = x_max.max(1.0) + 0.1;
        let ticks: Vec<f64> = (0..=x_end.floor() as usize).map(|i| i as f64).collect();
        let mut chart = super::builder(&plot)
            .build_cartesian_2d(super::Ticked::new(0.0..x_end, ticks), super::LogAxis::new(y_lo, y_hi))
            .map_err(perr)?;
        chart
            .configure_mesh()
            .light_line_style(style::GRID_MINOR)
            .bold_line_style(style::GRID)
            .x_desc("percentile (%)")
            .y_desc("latency per connection (µs, log scale)")
            .axis_desc_style(font(style::AXIS_DESC_SIZE))
            .label_style(font(style::TICK_SIZE))
            .x_label_formatter(&|v| percentile_label(*v))
            .y_label_formatter(&|v| style::micros(*v))
            .draw()
            .map_err(perr)?;
        let mut entries = Vec::new();
        let mut any_uncorrected = false;
        for l in &self.lines {
            let c = style::model_colour(&l.model, &self.models);
            if let Some(u) = &l.uncorrected {
                any_uncorrected = true;
                chart
                    .draw_series(DashedLineSeries::new(
                        u.clone(),
                        7,
                        5,
                        c.stroke_width(style::LINE_WIDTH),
                    ))
                    .map_err(perr)?;
            }
            chart
                .draw_series(LineSeries::new(l.total.clone(), c.stroke_width(style::LINE_WIDTH)))
                .map_err(perr)?;
            entries.push(Entry::new(Swatch::line(c), l.label.clone()));
        }
        entries.push(Entry::new(Swatch::line(INK), "solid: corrected total"));
        if any_uncorrected {
            entries.push(Entry::new(Swatch::dashed(INK), "dashed: uncorrected"));
            let same = self
                .lines
                .iter()
                .all(|l| l.uncorrected.as_ref().is_none_or(|u| *u == l.total));
            if same {
                entries.push(Entry::new(
                    Swatch::Note,
                    "dashed = solid here: no connection started late",
                ));
            }
        }
        let runs: Vec<usize> = self.lines.iter().map(|l| l.runs).collect();
        let (rlo, rhi) = (
            runs.iter().min().copied().unwrap_or(0),
            runs.iter().max().copied().unwrap_or(0),
        );
        if rhi > 1 {
            let r = if rlo == rhi {
                format!("{rlo}")
            } else {
                format!("{rlo}-{rhi}")
            };
            entries.push(Entry::new(Swatch::Note, format!("each line: {r} runs merged")));
        }
        let fewest = self.lines.iter().map(|l| l.count).min().unwrap_or(0);
        entries.push(Entry::new(
            Swatch::Note,
            format!(
                "lines end where the count runs out ({} connections at least)",
                style::count(fewest)
            ),
        ));
        legend::draw(&side, None, &entries)
    }
}

impl Figure for Spectrum {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn title(&self) -> String {
        if self.title_subject.is_empty() {
            "Latency by percentile".into()
        } else {
            format!("Latency by percentile: {}", self.title_subject)
        }
    }

    fn caption(&self) -> String {
        let at = if self.subject.is_empty() {
            String::new()
        } else {
            format!(" at {}", self.subject)
        };
        let best = self.lines.iter().min_by(|a, b| a.p99.total_cmp(&b.p99));
        let worst = self.lines.iter().max_by(|a, b| a.p99.total_cmp(&b.p99));
        match (best, worst) {
            (Some(b), Some(w)) if self.lines.len() > 1 => format!(
                "Corrected (solid) and uncorrected (dashed) connection latency at every percentile{at}: at p99 {} is lowest ({} µs) and {} highest ({} µs).",
                b.label,
                style::micros(b.p99),
                w.label,
                style::micros(w.p99)
            ),
            (Some(b), _) => format!(
                "Corrected (solid) and uncorrected (dashed) connection latency of {} at every percentile{at}: p50 {} µs, p99 {} µs, p99.9 {} µs.",
                b.label,
                style::micros(b.p50),
                style::micros(b.p99),
                style::micros(b.p999)
            ),
            _ => "Connection latency at every percentile.".into(),
        }
    }

    super::figure_backends!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectrum_rises_and_stops_where_the_count_does() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let s = spectrum(&h);
        assert_eq!(s[0], (0.0, 10.0));
        // 1000 values: the spectrum ends at 99.9%, x = 3.
        assert!((s.last().unwrap().0 - 3.0).abs() < 1e-9, "{:?}", s.last());
        assert!(s.windows(2).all(|w| w[1].1 >= w[0].1 && w[1].0 > w[0].0));
        let p90 = s.iter().find(|p| (p.0 - 1.0).abs() < 1e-9).unwrap().1;
        assert!((p90 - 9000.0).abs() <= 9.0, "{p90}");
        assert!(spectrum(&Histogram::<u64>::new(3).unwrap()).is_empty());
    }

    #[test]
    fn percentile_labels() {
        let l: Vec<String> = (0..=5).map(|x| percentile_label(x as f64)).collect();
        assert_eq!(l, ["0", "90", "99", "99.9", "99.99", "99.999"]);
    }

    #[test]
    fn slugs_and_picks() {
        assert_eq!(slug("20%"), "20pct");
        assert_eq!(slug("Poisson 1"), "poisson_1");
        assert_eq!(pick(3), [0, 1, 2]);
        let p = pick(20);
        assert_eq!(p.len(), MAX_CHARTS);
        assert_eq!((p[0], p[MAX_CHARTS - 1]), (0, 19));
    }
}
