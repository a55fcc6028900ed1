//! `jain-vs-load`: Jain's fairness index against the offered load, one line
//! per model, with the 95% confidence interval of each point as a vertical
//! bar (from `aggregate.csv`; a point run once has none). DESIGN.md's
//! lesson is that a model is characterised by a sweep over load, not one
//! run: this is that characterisation.
//!
//! The load is the first of `rate`, `concurrency`, `workers`,
//! `requests_per_conn` that varies across the points; with none varying the
//! chart is skipped.

use std::collections::BTreeMap;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::data::SweepDir;
use super::legend::{self, font, Entry, Marker, Swatch};
use super::style;
use super::{perr, Figure, Planned};

pub(crate) const NAME: &str = "jain-vs-load";

/// The parameters that can serve as the load axis, in order of preference.
pub(crate) const LOAD_PARAMS: [&str; 4] = ["rate", "concurrency", "workers", "requests_per_conn"];

/// How the load axis is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Unit {
    /// `rate` as a percentage of the model's measured capacity.
    Percent,
    /// `rate` in connections per second.
    PerSecond,
    /// A count: connections in flight, workers, requests per connection.
    Count,
}

/// The x axis: which parameter, in what unit, and whether on a log scale.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Axis {
    pub param: String,
    pub unit: Unit,
    pub log: bool,
}

impl Axis {
    /// The axis description, with its unit (and the log scale, if used).
    pub fn description(&self) -> String {
        let log = if self.log { ", log scale" } else { "" };
        match (self.param.as_str(), self.unit) {
            ("rate", Unit::Percent) => format!("offered load (% of the model's measured capacity{log})"),
            ("rate", _) => format!("offered load (new connections per second{log})"),
            ("concurrency", _) => format!("connections in flight (closed loop{log})"),
            ("workers", _) => format!("worker processes (count{log})"),
            ("requests_per_conn", _) => format!("requests per connection (count{log})"),
            (p, _) => format!("{p}{log}"),
        }
    }

    /// A load as a caption says it: `rate 20%`, `concurrency 64`.
    pub fn at(&self, v: f64) -> String {
        format!("{} {}", self.param, self.tick(v))
    }

    /// The same for a caption: without the scale.
    pub fn noun(&self) -> &'static str {
        match self.param.as_str() {
            "rate" => "offered load",
            "concurrency" => "connections in flight",
            "workers" => "fleet size",
            "requests_per_conn" => "requests per connection",
            _ => "load",
        }
    }

    pub fn tick(&self, v: f64) -> String {
        match self.unit {
            Unit::Percent => format!("{}%", style::number(v)),
            _ => style::number(v),
        }
    }
}

/// Parses a value of the load parameter: `20%` -> 20 (percent), `5000` ->
/// 5000.
pub(crate) fn parse_load(v: &str) -> Option<(f64, bool)> {
    let v = v.trim();
    let (num, pct) = match v.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (v, false),
    };
    let x: f64 = num.parse().ok()?;
    (x.is_finite() && x > 0.0).then_some((x, pct))
}

/// Picks the load axis of a sweep, or says why there is none.
pub(crate) fn choose_axis(sweep: &SweepDir) -> Result<Axis, String> {
    let varying = sweep.varying();
    let Some(param) = LOAD_PARAMS.iter().find(|p| varying.iter().any(|v| v == *p)) else {
        return Err(format!(
            "needs a sweep with several loads: none of {} varies across its points",
            LOAD_PARAMS.join(", ")
        ));
    };
    let mut values = Vec::new();
    for p in &sweep.points {
        if let Some(v) = p.param(param) {
            match parse_load(v) {
                Some(x) => values.push(x),
                None => return Err(format!("{param} value {v:?} is not a positive number")),
            }
        }
    }
    let pct = values.iter().filter(|v| v.1).count();
    let unit = match (*param, pct) {
        ("rate", 0) => Unit::PerSecond,
        ("rate", n) if n == values.len() => Unit::Percent,
        ("rate", _) => return Err("its rates mix % of capacity and connections per second".into()),
        (_, 0) => Unit::Count,
        _ => return Err(format!("{param} values cannot be percentages")),
    };
    let lo = values.iter().map(|v| v.0).fold(f64::INFINITY, f64::min);
    let hi = values.iter().map(|v| v.0).fold(0.0, f64::max);
    let log = unit == Unit::Count && *param != "requests_per_conn" && hi >= 8.0 * lo;
    Ok(Axis {
        param: param.to_string(),
        unit,
        log,
    })
}

/// `(x, mean Jain's index, its 95% interval)`.
pub(crate) type LoadPoint = (f64, f64, Option<(f64, f64)>);

/// One line: a model (and the values of any other varying parameter).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub model: String,
    /// The other varying parameters, `workers 8`; empty if none.
    pub variant: String,
    /// Sorted by x.
    pub points: Vec<LoadPoint>,
}

impl Line {
    /// A model the style does not know (its marker then goes by line).
    fn model_unknown(&self) -> bool {
        !style::MODEL_ORDER.contains(&self.model.as_str())
    }

    pub fn label(&self) -> String {
        if self.variant.is_empty() {
            self.model.clone()
        } else {
            format!("{}, {}", self.model, self.variant)
        }
    }
}

pub(crate) fn lines(sweep: &SweepDir, axis: &Axis) -> Vec<Line> {
    let others: Vec<String> = sweep
        .varying()
        .into_iter()
        .filter(|p| p != "model" && *p != axis.param)
        .collect();
    let mut by_key: BTreeMap<((usize, String), String), Line> = BTreeMap::new();
    for p in &sweep.points {
        let (Some(x), Some(j)) = (p.param(&axis.param).and_then(parse_load), p.jain) else {
            continue;
        };
        if !j.mean.is_finite() {
            continue;
        }
        let variant = others
            .iter()
            .map(|k| format!("{} {}", k, p.param(k).unwrap_or("-")))
            .collect::<Vec<_>>()
            .join(", ");
        let key = (style::model_rank(&p.model), variant.clone());
        by_key
            .entry(key)
            .or_insert_with(|| Line {
                model: p.model.clone(),
                variant,
                points: Vec::new(),
            })
            .points
            .push((x.0, j.mean, j.ci().filter(|(a, b)| a.is_finite() && b.is_finite())));
    }
    let mut out: Vec<Line> = by_key.into_values().collect();
    for l in &mut out {
        l.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

pub(crate) fn plan(sweep: &SweepDir) -> Planned {
    let axis = match choose_axis(sweep) {
        Ok(a) => a,
        Err(why) => return Planned::skip(NAME, why),
    };
    let lines = lines(sweep, &axis);
    if lines.is_empty() {
        return Planned::skip(NAME, "no point of aggregate.csv has a Jain's index (jain_mean)");
    }
    let models = style::order_models(lines.iter().map(|l| l.model.as_str()));
    Planned::Draw(Box::new(JainVsLoad {
        axis,
        lines,
        models,
        name: super::shares::sweep_name(sweep),
    }))
}

struct JainVsLoad {
    axis: Axis,
    lines: Vec<Line>,
    models: Vec<String>,
    name: String,
}

/// Dash patterns for the variants of one model: solid, then dashed.
fn is_dashed(variant_index: usize) -> bool {
    variant_index % 2 == 1
}

impl JainVsLoad {
    /// x as drawn: log10 of the value on a log axis.
    fn px(&self, x: f64) -> f64 {
        if self.axis.log {
            x.log10()
        } else {
            x
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (plot, side) = legend::frame(root, &self.title())?;
        let mut xs: Vec<f64> = self.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let (Some(&first), Some(&last)) = (xs.first(), xs.last()) else {
            anyhow::bail!("no point to draw");
        };
        let (x_lo, x_hi) = (self.px(first), self.px(last));
        let span = if x_hi > x_lo { x_hi - x_lo } else { 1.0 };
        let x_range = (x_lo - span * 0.06)..(x_hi + span * 0.06);
        // Lines that coincide (several models at 1.0) are nudged sideways
        // so each marker and interval stays visible.
        let nudge = span * 0.008;
        let mid = (self.lines.len() as f64 - 1.0) / 2.0;
        // Jain's index lies in [1/n, 1]; intervals (Student's t from few
        // repetitions can be wide) are clipped to [0, 1].
        let clip = |v: f64| v.clamp(0.0, 1.0);
        let lo = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| clip(p.2.map_or(p.1, |c| c.0.min(p.1)))))
            .fold(1.0, f64::min);
        let y_lo = (((lo - 0.02) * 20.0).floor() / 20.0).clamp(0.0, 0.9);
        let ticks = thin_ticks(&xs.iter().map(|x| self.px(*x)).collect::<Vec<_>>(), &x_range);
        let mut chart = super::builder(&plot)
            .build_cartesian_2d(super::Ticked::new(x_range, ticks), y_lo..1.02)
            .map_err(perr)?;
        let log = self.axis.log;
        let axis = self.axis.clone();
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(style::GRID)
            .x_desc(self.axis.description())
            .y_desc("Jain's fairness index (1 = even)")
            .axis_desc_style(font(style::AXIS_DESC_SIZE))
            .label_style(font(style::TICK_SIZE))
            .x_label_formatter(&move |v| axis.tick(if log { 10f64.powf(*v) } else { *v }))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(perr)?;
        let mut variant_index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut entries = Vec::new();
        let mut any_ci = false;
        for (i, l) in self.lines.iter().enumerate() {
            let k = variant_index.entry(l.model.as_str()).or_insert(0);
            let dashed = is_dashed(*k);
            *k += 1;
            let c = style::model_colour(&l.model, &self.models);
            let marker = Marker::nth(style::model_rank(&l.model).0 + i * usize::from(l.model_unknown()));
            let dx = (i as f64 - mid) * nudge;
            let pts: Vec<(f64, f64)> = l.points.iter().map(|p| (self.px(p.0) + dx, p.1)).collect();
            let stroke = c.stroke_width(style::LINE_WIDTH);
            if dashed {
                chart
                    .draw_series(DashedLineSeries::new(pts.clone(), 8, 5, stroke))
                    .map_err(perr)?;
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), stroke)).map_err(perr)?;
            }
            let has_ci = l.points.iter().any(|p| p.2.is_some());
            any_ci |= has_ci;
            chart
                .draw_series(l.points.iter().zip(&pts).filter_map(|(p, q)| {
                    let (a, b) = p.2?;
                    Some(ErrorBar::new_vertical(
                        q.0,
                        clip(a),
                        p.1,
                        clip(b),
                        c.stroke_width(1),
                        10,
                    ))
                }))
                .map_err(perr)?;
            chart.draw_series(pts.iter().map(|&p| marker.at(p, c))).map_err(perr)?;
            let swatch = Swatch::Line {
                colour: c,
                dashed,
                marker: Some(marker),
                bar: has_ci,
            };
            entries.push(Entry::new(swatch, l.label()));
        }
        if any_ci {
            entries.push(Entry::new(Swatch::Note, "bars: 95% CI of the mean, clipped to [0, 1]"));
        } else {
            entries.push(Entry::new(Swatch::Note, "one run per point: no intervals"));
        }
        if self.lines.len() > 1 {
            entries.push(Entry::new(Swatch::Note, "lines nudged sideways so none hides another"));
        }
        legend::draw(&side, None, &entries)
    }
}

/// The data's x positions as ticks, dropping any that would crowd the one
/// before (closer than 1/25 of the axis).
fn thin_ticks(xs: &[f64], range: &std::ops::Range<f64>) -> Vec<f64> {
    let min_gap = (range.end - range.start) / 25.0;
    let mut out: Vec<f64> = Vec::new();
    for &x in xs {
        match out.last() {
            Some(last) if x - last < min_gap => {}
            _ => out.push(x),
        }
    }
    out
}

impl Figure for JainVsLoad {
    fn name(&self) -> String {
        NAME.into()
    }

    fn title(&self) -> String {
        let what = self.axis.noun();
        if self.name.is_empty() {
            format!("Fairness against {what}")
        } else {
            format!("Fairness against {what}: {}", self.name)
        }
    }

    fn caption(&self) -> String {
        // Fairest: the highest mean index over its points; least fair: the
        // lowest single point.
        let mean = |l: &Line| l.points.iter().map(|p| p.1).sum::<f64>() / l.points.len().max(1) as f64;
        let best = self.lines.iter().max_by(|a, b| mean(a).total_cmp(&mean(b)));
        let worst = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(move |p| (l, p)))
            .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1));
        match (best, worst) {
            (Some(b), Some((wl, wp))) if self.lines.len() > 1 => format!(
                "Jain's fairness index of each model against {}: {} is the fairest (mean {:.3} over its loads) and {} the least fair ({:.3} at {}).",
                self.axis.noun(),
                b.label(),
                mean(b),
                wl.label(),
                wp.1,
                self.axis.at(wp.0)
            ),
            (Some(b), _) => format!(
                "Jain's fairness index of {} against {}: mean {:.3} over its loads.",
                b.label(),
                self.axis.noun(),
                mean(b)
            ),
            _ => "Jain's fairness index against load.".into(),
        }
    }

    super::figure_backends!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_values_parse_with_and_without_percent() {
        assert_eq!(parse_load("20%"), Some((20.0, true)));
        assert_eq!(parse_load(" 5000 "), Some((5000.0, false)));
        assert_eq!(parse_load("0"), None);
        assert_eq!(parse_load("fast"), None);
    }

    /// A sweep folder with only runs.csv and aggregate.csv.
    fn sweep(name: &str, params: &str, rows: &[&str]) -> (SweepDir, std::path::PathBuf) {
        let d = std::env::temp_dir().join(format!("harness-plot-jvl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("runs.csv"), "run_id,point,model\n").unwrap();
        let mut agg = format!("point,label,{params},n,jain_mean,jain_sd,jain_ci_low,jain_ci_high\n");
        for r in rows {
            agg.push_str(r);
            agg.push('\n');
        }
        std::fs::write(d.join("aggregate.csv"), agg).unwrap();
        (SweepDir::load(&d).unwrap(), d)
    }

    #[test]
    fn a_model_missing_from_a_load_has_fewer_points() {
        let (s, d) = sweep(
            "missing",
            "model,rate",
            &[
                "0,a,reuseport,10%,2,0.9,0.1,0.8,1.0",
                "1,b,reuseport,100%,2,0.95,0.1,0.9,1.0",
                "2,c,dispatch-rr,10%,1,1,,,",
                "3,d,dispatch-rr,50%,1,1,,,",
                "4,e,dispatch-rr,100%,1,1,,,",
            ],
        );
        let axis = choose_axis(&s).unwrap();
        assert_eq!(
            (axis.param.as_str(), axis.unit, axis.log),
            ("rate", Unit::Percent, false)
        );
        let lines = lines(&s, &axis);
        // Model order: reuseport before dispatch-rr.
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].model, "reuseport");
        assert_eq!(lines[0].points.len(), 2);
        assert_eq!(lines[0].points[1], (100.0, 0.95, Some((0.9, 1.0))));
        assert_eq!(lines[1].points.len(), 3);
        assert!(lines[1].points.iter().all(|p| p.2.is_none()), "n = 1 has no interval");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn the_axis_is_the_first_varying_load_and_log_when_wide() {
        let (s, d) = sweep(
            "conc",
            "model,workers,concurrency",
            &["0,a,reuseport,4,1,1,1,,,", "1,b,reuseport,4,64,1,1,,,"],
        );
        let axis = choose_axis(&s).unwrap();
        assert_eq!(
            (axis.param.as_str(), axis.unit, axis.log),
            ("concurrency", Unit::Count, true)
        );
        assert!(axis.description().contains("log scale"));
        std::fs::remove_dir_all(d).unwrap();

        let (s, d) = sweep(
            "mixed",
            "model,rate",
            &["0,a,reuseport,10%,1,1,,,", "1,b,reuseport,5000,1,1,,,"],
        );
        assert!(choose_axis(&s).unwrap_err().contains("mix"));
        std::fs::remove_dir_all(d).unwrap();

        let (s, d) = sweep(
            "none",
            "model,workers",
            &["0,a,reuseport,4,1,1,,,", "1,b,dispatch-rr,4,1,1,,,"],
        );
        assert!(choose_axis(&s).unwrap_err().contains("several loads"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn ticks_drop_crowded_values() {
        let t = thin_ticks(&[5.0, 6.0, 10.0, 50.0, 100.0], &(0.0..100.0));
        assert_eq!(t, [5.0, 10.0, 50.0, 100.0]);
    }
}
