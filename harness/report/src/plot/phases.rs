//! `phases`: where the time goes for each model: p50 and p99 of each phase
//! of a connection (connect, the wait in the accept queue, the service in
//! the worker, the time to the first response byte, the whole connection)
//! side by side, one group of bars per model, on a log scale in µs. A model
//! that spreads connections unevenly pays in the queue; one that herds pays
//! in the service; the total says what the client saw.
//!
//! Data: the `<phase>_p50_us` and `<phase>_p99_us` columns of summary.csv;
//! for a sweep, per point, aggregate.csv's `<phase>_p50_us_mean` where it
//! has them and otherwise the mean over the point's runs in runs.csv. A
//! phase a file has no column (or no value) for is left out, and the
//! legend says so. A sweep whose models ran at several loads gets one chart
//! per load, as `latency-spectrum` does.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::{Phases, Point, RunDir, SweepDir, PHASES, PHASE_QUANTILES};
use super::latency_spectrum::{pick, split, MAX_CHARTS};
use super::legend::{self, font, Entry, Swatch};
use super::style::{self, INK};
use super::{perr, Figure, Planned};

pub(crate) const NAME: &str = "phases";

/// One colour per phase, in [`PHASES`] order; the p50 bar is the same
/// colour lightened.
const PHASE_COLOURS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),  // connect: blue
    RGBColor(214, 39, 40),   // queue: red
    RGBColor(44, 160, 44),   // service: green
    RGBColor(148, 103, 189), // ttfb: purple
    RGBColor(255, 127, 14),  // total: orange
];
/// How far the p50 bar is lightened towards white.
const P50_LIGHTEN: f64 = 0.55;

/// What each of [`PHASES`] is, for the legend and captions.
const PHASE_NAMES: [(&str, &str); 5] = [
    ("connect", "connect: handshake"),
    ("queue", "queue: until accepted"),
    ("service", "service: in the worker"),
    ("time to first byte", "ttfb: to the first byte"),
    ("total", "total (corrected)"),
];

/// Bars of a phase are this far from the next phase's (in bar widths).
const PHASE_GAP: f64 = 0.5;
/// Groups are this far apart (in bar widths).
const GROUP_GAP: f64 = 1.5;

fn no_column(file: &str) -> String {
    format!(
        "no phase column in {file} (`<phase>_p50_us` or `<phase>_p99_us` of {})",
        PHASES.join(", ")
    )
}

/// One group of bars: a model (a point of a sweep).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub model: String,
    pub label: String,
    pub values: Phases,
    /// Runs behind the values (1 for a run).
    pub runs: usize,
}

impl Group {
    fn value(&self, phase: usize, q: usize) -> Option<f64> {
        self.values.0[phase][q].filter(|v| v.is_finite() && *v > 0.0)
    }

    fn any(&self) -> bool {
        (0..PHASES.len()).any(|i| (0..2).any(|q| self.value(i, q).is_some()))
    }
}

pub(crate) fn plan_run(run: &RunDir) -> Vec<Planned> {
    if run.phase_columns.is_empty() {
        return vec![Planned::skip(NAME, no_column("summary.csv"))];
    }
    let group = Group {
        model: run.run.model.clone(),
        label: run.run.model.clone(),
        values: run.run.figures.phases,
        runs: 1,
    };
    if !group.any() {
        return vec![Planned::skip(
            NAME,
            "every phase cell of summary.csv is empty or zero (nothing was recorded)",
        )];
    }
    vec![Planned::Draw(Box::new(PhasesChart::new(
        NAME.into(),
        String::new(),
        run.run.model.clone(),
        vec![group],
        run.phase_columns.clone(),
    )))]
}

/// The mean of each phase over the runs of `p`, preferring what
/// aggregate.csv says; and how many runs the point has.
fn point_values(sweep: &SweepDir, p: &Point) -> (Phases, usize) {
    let runs: Vec<&Phases> = sweep
        .runs
        .iter()
        .filter(|r| r.point == p.point)
        .map(|r| &r.figures.phases)
        .collect();
    let mut out = Phases::default();
    for i in 0..PHASES.len() {
        for q in 0..PHASE_QUANTILES.len() {
            out.0[i][q] = p.phases.0[i][q].or_else(|| {
                let vs: Vec<f64> = runs
                    .iter()
                    .filter_map(|ph| ph.0[i][q])
                    .filter(|v| v.is_finite())
                    .collect();
                (!vs.is_empty()).then(|| vs.iter().sum::<f64>() / vs.len() as f64)
            });
        }
    }
    (out, runs.len().max(1))
}

pub(crate) fn plan_sweep(sweep: &SweepDir) -> Vec<Planned> {
    if sweep.phase_columns.is_empty() {
        return vec![Planned::skip(NAME, no_column("runs.csv or aggregate.csv"))];
    }
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
                format!("at most {MAX_CHARTS} phase charts are drawn per sweep"),
            ));
            continue;
        }
        // Label by model; by point label if a model has several points here.
        let dup = {
            let mut m: Vec<&str> = points.iter().map(|p| p.model.as_str()).collect();
            m.sort();
            let n = m.len();
            m.dedup();
            m.len() < n
        };
        let mut groups: Vec<Group> = points
            .iter()
            .map(|p| {
                let (values, runs) = point_values(sweep, p);
                Group {
                    model: p.model.clone(),
                    label: if dup { p.label.clone() } else { p.model.clone() },
                    values,
                    runs,
                }
            })
            .filter(Group::any)
            .collect();
        if groups.is_empty() {
            out.push(Planned::skip(
                &name,
                "every phase cell of these points is empty or zero (nothing was recorded)",
            ));
            continue;
        }
        groups.sort_by_key(|g| style::model_rank(&g.model));
        let title_subject = if subject.is_empty() {
            super::shares::sweep_name(sweep)
        } else {
            subject.clone()
        };
        out.push(Planned::Draw(Box::new(PhasesChart::new(
            name,
            subject,
            title_subject,
            groups,
            sweep.phase_columns.clone(),
        ))));
    }
    out
}

struct PhasesChart {
    name: String,
    /// What the chart's points share, e.g. `rate 20%`; empty for all.
    subject: String,
    title_subject: String,
    groups: Vec<Group>,
    /// Indices into [`PHASES`] of the phases drawn (some group has a value).
    drawn: Vec<usize>,
    /// The phases left out: no column in the file, or no value in it.
    missing: Vec<&'static str>,
}

impl PhasesChart {
    fn new(
        name: String,
        subject: String,
        title_subject: String,
        groups: Vec<Group>,
        columns: Vec<&'static str>,
    ) -> PhasesChart {
        let drawn: Vec<usize> = (0..PHASES.len())
            .filter(|&i| columns.contains(&PHASES[i]) && groups.iter().any(|g| (0..2).any(|q| g.value(i, q).is_some())))
            .collect();
        let missing = (0..PHASES.len())
            .filter(|i| !drawn.contains(i))
            .map(|i| PHASES[i])
            .collect();
        PhasesChart {
            name,
            subject,
            title_subject,
            groups,
            drawn,
            missing,
        }
    }

    /// The width of one group, in bar widths.
    fn group_width(&self) -> f64 {
        let k = self.drawn.len() as f64;
        2.0 * k + PHASE_GAP * (k - 1.0).max(0.0)
    }

    /// Where group `g`'s first bar begins.
    fn group_start(&self, g: usize) -> f64 {
        g as f64 * (self.group_width() + GROUP_GAP)
    }

    /// Where the bar of the `k`th drawn phase, quantile `q`, of group `g`
    /// begins.
    fn bar_start(&self, g: usize, k: usize, q: usize) -> f64 {
        self.group_start(g) + k as f64 * (2.0 + PHASE_GAP) + q as f64
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (plot, side) = legend::frame(root, &self.title())?;
        let values: Vec<f64> = self
            .groups
            .iter()
            .flat_map(|g| {
                self.drawn
                    .iter()
                    .flat_map(move |&i| (0..2).filter_map(move |q| g.value(i, q)))
            })
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(0.0, f64::max);
        let y_lo = (lo / 1.6).max(0.5);
        let y_hi = (hi * 1.4).max(y_lo * 3.0);
        let x_end = self.group_start(self.groups.len()) - GROUP_GAP;
        let x_range = -GROUP_GAP / 2.0..x_end + GROUP_GAP / 2.0;
        // Group labels: horizontal when each fits its group, else rotated.
        let (pw, _) = plot.dim_in_pixel();
        let px_per_unit =
            (pw as f64 - style::Y_LABEL_AREA as f64 - 2.0 * style::MARGIN as f64) / (x_range.end - x_range.start);
        let group_px = (self.group_width() + GROUP_GAP * 0.8) * px_per_unit;
        let fits = self
            .groups
            .iter()
            .all(|g| style::text_width(&g.label, style::TICK_SIZE) <= group_px);
        let longest = self
            .groups
            .iter()
            .map(|g| style::text_width(&g.label, style::TICK_SIZE))
            .fold(0.0, f64::max);
        let label_room = if fits {
            style::TICK_SIZE as f64 + 4.0
        } else {
            longest + 6.0
        };
        let label_area = (8.0 + label_room + 30.0).min(220.0) as u32;
        let mut chart = super::builder(&plot)
            .x_label_area_size(label_area)
            .build_cartesian_2d(super::Ticked::new(x_range, vec![]), super::LogAxis::new(y_lo, y_hi))
            .map_err(perr)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(style::GRID_MINOR)
            .bold_line_style(style::GRID)
            .x_desc("model (bars: p50 then p99 of each phase, left to right)")
            .y_desc("latency (µs, log scale)")
            .axis_desc_style(font(style::AXIS_DESC_SIZE))
            .label_style(font(style::TICK_SIZE))
            .y_label_formatter(&|v| style::micros(*v))
            .draw()
            .map_err(perr)?;
        // Values on the bars when there is room to write them.
        let label_values = values
            .iter()
            .all(|v| style::text_width(&style::micros(*v), style::NOTE_SIZE) + 4.0 <= px_per_unit);
        let note = font(style::NOTE_SIZE).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (g, group) in self.groups.iter().enumerate() {
            for (k, &i) in self.drawn.iter().enumerate() {
                for q in 0..2 {
                    let Some(v) = group.value(i, q) else { continue };
                    let colour = if q == 0 {
                        style::mix(PHASE_COLOURS[i], WHITE, P50_LIGHTEN)
                    } else {
                        PHASE_COLOURS[i]
                    };
                    let x0 = self.bar_start(g, k, q);
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x0 + 0.04, y_lo), (x0 + 0.96, v)],
                            colour.filled(),
                        )))
                        .map_err(perr)?;
                    if label_values {
                        chart
                            .draw_series(std::iter::once(
                                EmptyElement::at((x0 + 0.5, v)) + Text::new(style::micros(v), (0, -3), note.clone()),
                            ))
                            .map_err(perr)?;
                    }
                }
            }
        }
        let (_, axis_y) = chart.backend_coord(&(0.0, y_lo));
        for (g, group) in self.groups.iter().enumerate() {
            let (cx, _) = chart.backend_coord(&(self.group_start(g) + self.group_width() / 2.0, y_lo));
            let style = if fits {
                font(style::TICK_SIZE).pos(Pos::new(HPos::Center, VPos::Top))
            } else {
                font(style::TICK_SIZE)
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Right, VPos::Center))
            };
            root.draw(&Text::new(group.label.clone(), (cx, axis_y + 6), style))
                .map_err(perr)?;
        }
        let mut entries: Vec<Entry> = self
            .drawn
            .iter()
            .map(|&i| Entry::new(Swatch::Fill(PHASE_COLOURS[i]), PHASE_NAMES[i].1))
            .collect();
        entries.push(Entry::new(
            Swatch::Fill(style::mix(INK, WHITE, P50_LIGHTEN)),
            "p50: lighter, left",
        ));
        entries.push(Entry::new(Swatch::Fill(INK), "p99: darker, right"));
        let gap = self
            .groups
            .iter()
            .any(|g| self.drawn.iter().any(|&i| (0..2).any(|q| g.value(i, q).is_none())));
        if gap {
            entries.push(Entry::new(Swatch::Note, "no bar: not recorded there"));
        }
        if !self.missing.is_empty() {
            entries.push(Entry::new(
                Swatch::Note,
                format!("left out, not recorded: {}", self.missing.join(", ")),
            ));
        }
        let (rlo, rhi) = (
            self.groups.iter().map(|g| g.runs).min().unwrap_or(1),
            self.groups.iter().map(|g| g.runs).max().unwrap_or(1),
        );
        if rhi > 1 {
            let r = if rlo == rhi {
                format!("{rlo}")
            } else {
                format!("{rlo}-{rhi}")
            };
            entries.push(Entry::new(Swatch::Note, format!("each bar: mean over {r} runs")));
        }
        legend::draw(&side, None, &entries)
    }

    /// The drawn phases as words: `connect, time to first byte and total`.
    fn phase_list(&self) -> String {
        let names: Vec<&str> = self.drawn.iter().map(|&i| PHASE_NAMES[i].0).collect();
        match names.split_last() {
            None => String::new(),
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        }
    }
}

impl Figure for PhasesChart {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn title(&self) -> String {
        if self.title_subject.is_empty() {
            "Where the time goes: p50 and p99 of each phase".into()
        } else {
            format!("Where the time goes: {}", self.title_subject)
        }
    }

    fn caption(&self) -> String {
        let at = if self.subject.is_empty() {
            String::new()
        } else {
            format!(" at {}", self.subject)
        };
        // The phase the sentence quotes: the total if drawn, else the last.
        let Some(&i) = self.drawn.iter().find(|&&i| PHASES[i] == "total").or(self.drawn.last()) else {
            return "Where the time goes: no phase was recorded.".into();
        };
        let what = PHASE_NAMES[i].0;
        let p99: Vec<(&Group, f64)> = self.groups.iter().filter_map(|g| Some((g, g.value(i, 1)?))).collect();
        let best = p99.iter().min_by(|a, b| a.1.total_cmp(&b.1));
        let worst = p99.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        let list = self.phase_list();
        match (best, worst) {
            (Some(b), Some(w)) if p99.len() > 1 => format!(
                "Where the time goes for each model{at}: p50 and p99 of {list} side by side; the {what} p99 is lowest for {} ({} µs) and highest for {} ({} µs).",
                b.0.label,
                style::micros(b.1),
                w.0.label,
                style::micros(w.1)
            ),
            (Some(b), _) => format!(
                "Where the time goes for {}{at}: p50 and p99 of {list} side by side; the {what} p99 is {} µs.",
                b.0.label,
                style::micros(b.1)
            ),
            _ => format!("Where the time goes for each model{at}: p50 and p99 of {list} side by side."),
        }
    }

    super::figure_backends!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(model: &str, total_p99: Option<f64>) -> Group {
        let mut values = Phases::default();
        values.0[0] = [Some(50.0), Some(200.0)];
        values.0[4] = [Some(300.0), total_p99];
        Group {
            model: model.into(),
            label: model.into(),
            values,
            runs: 2,
        }
    }

    #[test]
    fn only_phases_with_columns_and_values_are_drawn() {
        let chart = PhasesChart::new(
            NAME.into(),
            String::new(),
            String::new(),
            vec![group("reuseport", Some(900.0)), group("shared-epoll", Some(4000.0))],
            vec!["connect", "queue", "ttfb", "total"],
        );
        // queue has a column but no value; service and ttfb neither.
        assert_eq!(chart.drawn, [0, 4]);
        assert_eq!(chart.missing, ["queue", "service", "ttfb"]);
        assert_eq!(chart.phase_list(), "connect and total");
        // Two phases: p50, p99, a gap, p50, p99.
        assert_eq!(chart.group_width(), 4.5);
        assert_eq!(chart.bar_start(1, 1, 1), 4.5 + GROUP_GAP + 3.5);
        let c = chart.caption();
        assert!(
            c.contains("lowest for reuseport (900 µs)") && c.contains("highest for shared-epoll (4,000 µs)"),
            "{c}"
        );
    }

    #[test]
    fn zero_is_no_value() {
        let mut g = group("reuseport", Some(0.0));
        assert_eq!(g.value(4, 1), None);
        assert!(g.any());
        g.values = Phases::default();
        assert!(!g.any());
    }
}
