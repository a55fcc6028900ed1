//! `shares`: every point of a sweep side by side, one group of bars per
//! point (one bar per worker, its share of the connections averaged over
//! the repetitions), grouped by model, with the fair share 1/N marked on
//! each group. The whole sweep's spread in one picture.

use std::collections::BTreeMap;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::SweepDir;
use super::legend::{self, font, Entry, Swatch};
use super::style::{self, INK};
use super::{perr, Figure, Planned};

pub(crate) const NAME: &str = "shares";

/// One group of bars: a point's mean share per worker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub model: String,
    /// What tells it from the other points of its model (the values of the
    /// other varying parameters), or the model if nothing else varies.
    pub label: String,
    /// The same as words for a caption: `concurrency 64`; empty if only
    /// the model varies.
    pub desc: String,
    pub shares: Vec<f64>,
    pub runs: usize,
}

pub(crate) fn plan(sweep: &SweepDir) -> Planned {
    let groups = groups(sweep);
    if groups.is_empty() {
        return Planned::skip(
            NAME,
            "no run of the sweep has per-worker rows with connections (workers.csv)",
        );
    }
    let varying: Vec<String> = sweep.varying().into_iter().filter(|p| p != "model").collect();
    let models = style::order_models(groups.iter().map(|g| g.model.as_str()));
    Planned::Draw(Box::new(Shares {
        groups,
        models,
        other: varying,
        name: sweep_name(sweep),
    }))
}

/// The sweep's name from its `sweep.json` (`load-sweep`, `seed-table`), or
/// empty. Not the folder's name: a copy of the folder draws the same.
pub(crate) fn sweep_name(sweep: &SweepDir) -> String {
    sweep.name.clone().unwrap_or_default()
}

/// The groups in chart order: by model (in the style's order), then in
/// `aggregate.csv` order.
pub(crate) fn groups(sweep: &SweepDir) -> Vec<Group> {
    let other: Vec<String> = sweep.varying().into_iter().filter(|p| p != "model").collect();
    // Per run: the share of each worker.
    let mut per_run: BTreeMap<&str, Vec<(usize, u64)>> = BTreeMap::new();
    for (id, w) in &sweep.workers {
        per_run.entry(id.as_str()).or_default().push((w.worker, w.accepted));
    }
    let mut out = Vec::new();
    for p in &sweep.points {
        let mut sums: Vec<f64> = Vec::new();
        let mut runs = 0;
        for r in sweep.runs.iter().filter(|r| r.point == p.point) {
            let Some(rows) = per_run.get(r.run_id.as_str()) else {
                continue;
            };
            let total: u64 = rows.iter().map(|x| x.1).sum();
            if total == 0 {
                continue;
            }
            let n = rows.iter().map(|x| x.0 + 1).max().unwrap_or(0);
            if sums.len() < n {
                sums.resize(n, 0.0);
            }
            for &(w, a) in rows {
                sums[w] += a as f64 / total as f64;
            }
            runs += 1;
        }
        if runs == 0 {
            continue;
        }
        let label = if other.is_empty() {
            p.model.clone()
        } else {
            other
                .iter()
                .map(|k| p.param(k).unwrap_or("-").to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let desc = other
            .iter()
            .map(|k| format!("{k} {}", p.param(k).unwrap_or("-")))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(Group {
            model: p.model.clone(),
            label,
            desc,
            shares: sums.iter().map(|s| s / runs as f64).collect(),
            runs,
        });
    }
    out.sort_by_key(|g| style::model_rank(&g.model));
    out
}

struct Shares {
    groups: Vec<Group>,
    models: Vec<String>,
    other: Vec<String>,
    name: String,
}

/// Where each group sits on the x axis: its first bar's left edge.
fn layout(groups: &[Group]) -> (Vec<f64>, f64) {
    let mut x = 0.5;
    let mut starts = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            x += if groups[i - 1].model == g.model { 1.0 } else { 2.0 };
        }
        starts.push(x);
        x += g.shares.len() as f64;
    }
    (starts, x + 0.5)
}

impl Shares {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (plot, side) = legend::frame(root, &self.title())?;
        let (starts, x_end) = layout(&self.groups);
        let top = self
            .groups
            .iter()
            .flat_map(|g| g.shares.iter().copied().chain([1.0 / g.shares.len().max(1) as f64]))
            .fold(0.0, f64::max);
        let ymax = (top * 1.12).clamp(0.05, 1.05);
        let two_levels = !self.other.is_empty() && self.models.len() > 1;
        // Label layout: horizontal when every label fits its group, else
        // rotated to read upwards.
        let (pw, _) = plot.dim_in_pixel();
        let px_per_unit = (pw as f64 - style::Y_LABEL_AREA as f64 - 2.0 * style::MARGIN as f64) / x_end;
        let fits =
            self.groups.iter().zip(&starts).all(|(g, _)| {
                style::text_width(&g.label, style::TICK_SIZE) <= (g.shares.len() as f64 + 0.9) * px_per_unit
            });
        let longest = self
            .groups
            .iter()
            .map(|g| style::text_width(&g.label, style::TICK_SIZE))
            .fold(0.0, f64::max);
        let level1 = if fits {
            style::TICK_SIZE as f64 + 4.0
        } else {
            longest + 6.0
        };
        let level2 = if two_levels {
            style::TICK_SIZE as f64 + 14.0
        } else {
            0.0
        };
        let label_area = (8.0 + level1 + level2 + 30.0).min(220.0) as u32;
        let mut chart = super::builder(&plot)
            .x_label_area_size(label_area)
            .build_cartesian_2d(super::Ticked::new(0.0..x_end, vec![]), 0.0..ymax)
            .map_err(perr)?;
        let x_desc = if self.other.is_empty() {
            "points of the sweep (bars: workers 0..N-1, left to right)".to_string()
        } else {
            format!("{} (bars: workers 0..N-1, left to right)", self.other.join(", "))
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(style::GRID)
            .x_desc(x_desc)
            .y_desc("share of the point's connections")
            .axis_desc_style(font(style::AXIS_DESC_SIZE))
            .label_style(font(style::TICK_SIZE))
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .draw()
            .map_err(perr)?;
        // Bars too narrow for a visible gap (under 6 px) alternate in shade
        // instead, so neighbouring workers stay apart.
        let narrow = px_per_unit < 6.0;
        for (g, &x0) in self.groups.iter().zip(&starts) {
            let c = style::model_colour(&g.model, &self.models);
            let light = style::mix(c, WHITE, 0.4);
            let gap = if narrow { 0.0 } else { 0.08 };
            chart
                .draw_series(g.shares.iter().enumerate().map(|(j, s)| {
                    let x = x0 + j as f64;
                    let fill = if narrow && j % 2 == 1 { light } else { c };
                    Rectangle::new([(x + gap, 0.0), (x + 1.0 - gap, *s)], fill.filled())
                }))
                .map_err(perr)?;
            let fair = 1.0 / g.shares.len().max(1) as f64;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x0 - 0.3, fair), (x0 + g.shares.len() as f64 + 0.3, fair)],
                    INK.stroke_width(2),
                )))
                .map_err(perr)?;
        }
        // Group labels under the axis, then model names under their groups.
        let (_, axis_y) = chart.backend_coord(&(0.0, 0.0));
        let y1 = axis_y + 6;
        for (g, &x0) in self.groups.iter().zip(&starts) {
            let (cx, _) = chart.backend_coord(&(x0 + g.shares.len() as f64 / 2.0, 0.0));
            let style = if fits {
                font(style::TICK_SIZE).pos(Pos::new(HPos::Center, VPos::Top))
            } else {
                font(style::TICK_SIZE)
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Right, VPos::Center))
            };
            root.draw(&Text::new(g.label.clone(), (cx, y1), style)).map_err(perr)?;
        }
        if two_levels {
            let y2 = y1 + level1 as i32 + 4;
            for m in &self.models {
                let xs: Vec<f64> = self
                    .groups
                    .iter()
                    .zip(&starts)
                    .filter(|(g, _)| g.model == *m)
                    .flat_map(|(g, &x0)| [x0, x0 + g.shares.len() as f64])
                    .collect();
                let (a, b) = (
                    xs.iter().copied().fold(f64::INFINITY, f64::min),
                    xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                );
                let (pa, _) = chart.backend_coord(&(a, 0.0));
                let (pb, _) = chart.backend_coord(&(b, 0.0));
                let c = style::model_colour(m, &self.models);
                root.draw(&PathElement::new(vec![(pa, y2), (pb, y2)], c.stroke_width(3)))
                    .map_err(perr)?;
                root.draw(&Text::new(
                    m.clone(),
                    ((pa + pb) / 2, y2 + 6),
                    font(style::TICK_SIZE).pos(Pos::new(HPos::Center, VPos::Top)),
                ))
                .map_err(perr)?;
            }
        }
        let mut entries: Vec<Entry> = self
            .models
            .iter()
            .map(|m| Entry::new(Swatch::Fill(style::model_colour(m, &self.models)), m.clone()))
            .collect();
        entries.push(Entry::new(Swatch::line(INK), "fair share 1/N"));
        let reps: Vec<usize> = self.groups.iter().map(|g| g.runs).collect();
        let (lo, hi) = (
            reps.iter().min().copied().unwrap_or(0),
            reps.iter().max().copied().unwrap_or(0),
        );
        let reps = if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo}-{hi}")
        };
        entries.push(Entry::new(
            Swatch::Note,
            format!(
                "each bar: mean over {reps} repetition{}",
                if hi == 1 { "" } else { "s" }
            ),
        ));
        if narrow {
            entries.push(Entry::new(Swatch::Note, "every other worker lighter"));
        }
        legend::draw(&side, None, &entries)
    }
}

impl Figure for Shares {
    fn name(&self) -> String {
        NAME.into()
    }

    fn title(&self) -> String {
        if self.name.is_empty() {
            "Per-worker share of connections at every point".into()
        } else {
            format!("Per-worker share of connections at every point: {}", self.name)
        }
    }

    fn caption(&self) -> String {
        // The point furthest from even: the largest share over 1/N.
        let worst = self
            .groups
            .iter()
            .map(|g| {
                let top = g.shares.iter().copied().fold(0.0, f64::max);
                (g, top * g.shares.len() as f64)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match worst {
            Some((g, ratio)) if ratio > 1.0 + 1e-9 => format!(
                "Each worker's share of the connections at each of {} points (mean over repetitions): the most uneven is {}{}, whose busiest worker took {:.0}% ({:.1}x its fair share).",
                self.groups.len(),
                g.model,
                if g.desc.is_empty() { String::new() } else { format!(" at {}", g.desc) },
                g.shares.iter().copied().fold(0.0, f64::max) * 100.0,
                ratio
            ),
            _ => format!(
                "Each worker's share of the connections at each of {} points (mean over repetitions): every point is split evenly.",
                self.groups.len()
            ),
        }
    }

    super::figure_backends!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(model: &str, n: usize) -> Group {
        Group {
            model: model.into(),
            label: String::new(),
            desc: String::new(),
            shares: vec![1.0 / n as f64; n],
            runs: 1,
        }
    }

    #[test]
    fn groups_do_not_overlap_and_models_are_set_apart() {
        let groups = vec![g("a", 4), g("a", 2), g("b", 1)];
        let (starts, end) = layout(&groups);
        assert_eq!(starts, [0.5, 5.5, 9.5]);
        assert_eq!(end, 11.0);
    }
}
