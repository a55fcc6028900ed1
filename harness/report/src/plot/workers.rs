//! `workers`: the connections each worker of one run accepted, as bars, with
//! the fair share (total / N) as a dashed line: the seed's table as a
//! picture. For a sweep the run is the first of `runs.csv` (for
//! `reproduce`, the seed's shared-epoll run).

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::OneRun;
use super::legend::{self, font, Entry, Swatch};
use super::style::{self, INK};
use super::{perr, Figure, Planned};

pub(crate) const NAME: &str = "workers";

pub(crate) fn plan(run: &OneRun) -> Planned {
    if run.workers.is_empty() {
        return Planned::skip(NAME, "no per-worker rows (workers.csv is missing or empty)");
    }
    Planned::Draw(Box::new(Workers { run: run.clone() }))
}

struct Workers {
    run: OneRun,
}

impl Workers {
    fn fair(&self) -> f64 {
        self.run.total_accepted() as f64 / self.run.workers.len() as f64
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (plot, side) = legend::frame(root, &self.title())?;
        let ws = &self.run.workers;
        let n = ws.len();
        let fair = self.fair();
        let top = ws.iter().map(|w| w.accepted).max().unwrap_or(0) as f64;
        let ymax = (top.max(fair) * 1.12).max(1.0);
        let colour = style::model_colour(&self.run.model, &[]);
        let x_range = -0.5..(n as f64 - 0.5);
        let ticks = index_ticks(n);
        let mut chart = super::builder(&plot)
            .build_cartesian_2d(super::Ticked::new(x_range.clone(), ticks), 0.0..ymax)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(style::GRID)
            .x_desc("worker (index)")
            .y_desc("connections accepted")
            .axis_desc_style(font(style::AXIS_DESC_SIZE))
            .label_style(font(style::TICK_SIZE))
            .x_label_formatter(&|v| format!("{}", v.round() as i64))
            .y_label_formatter(&|v| style::number(*v))
            .draw()
            .map_err(perr)?;
        let half = if n > 64 { 0.5 } else { 0.38 };
        chart
            .draw_series(ws.iter().enumerate().map(|(i, w)| {
                let x = i as f64;
                Rectangle::new([(x - half, 0.0), (x + half, w.accepted as f64)], colour.filled())
            }))
            .map_err(perr)?;
        if n <= 24 {
            let label = font(style::NOTE_SIZE).pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(ws.iter().enumerate().map(|(i, w)| {
                    EmptyElement::at((i as f64, w.accepted as f64))
                        + Text::new(style::count(w.accepted), (0, -4), label.clone())
                }))
                .map_err(perr)?;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x_range.start, fair), (x_range.end, fair)],
                10,
                6,
                INK.stroke_width(2),
            ))
            .map_err(perr)?;
        let mut entries = vec![
            Entry::new(Swatch::Fill(colour), format!("{} ({n} workers)", self.run.model)),
            Entry::new(
                Swatch::dashed(INK),
                format!("fair share: total / N = {}", style::number(fair.round())),
            ),
        ];
        entries.push(Entry::new(
            Swatch::Note,
            format!("total {} connections", style::count(self.run.total_accepted())),
        ));
        if let Some(j) = self.run.jain() {
            entries.push(Entry::new(Swatch::Note, format!("Jain's index {j:.3}")));
        }
        if let Some(r) = self.max_min() {
            entries.push(Entry::new(Swatch::Note, format!("max / min {r}")));
        }
        legend::draw(&side, None, &entries)
    }

    fn max_min(&self) -> Option<String> {
        let max = self.run.workers.iter().map(|w| w.accepted).max()?;
        let min = self.run.workers.iter().map(|w| w.accepted).min()?;
        Some(if min == 0 {
            if max == 0 {
                "-".into()
            } else {
                "inf (a worker got none)".into()
            }
        } else {
            format!("{:.2}", max as f64 / min as f64)
        })
    }
}

/// Tick positions for `n` categories 0..n: every one up to 32, else about
/// 16 evenly spaced.
pub(crate) fn index_ticks(n: usize) -> Vec<f64> {
    let step = if n <= 32 { 1 } else { n.div_ceil(16) };
    (0..n).step_by(step.max(1)).map(|i| i as f64).collect()
}

impl Figure for Workers {
    fn name(&self) -> String {
        NAME.into()
    }

    fn title(&self) -> String {
        format!("Connections per worker: {}", self.run.describe())
    }

    fn caption(&self) -> String {
        let n = self.run.workers.len();
        let jain = match self.run.jain() {
            Some(j) => format!("Jain's fairness index is {j:.3} (1 = even, 1/N = one worker takes all)"),
            None => "no connections were accepted".into(),
        };
        format!(
            "How the {} connections of one {} run spread over its {n} worker{}: {jain}; the dashed line is the fair share of {} each.",
            style::count(self.run.total_accepted()),
            self.run.model,
            if n == 1 { "" } else { "s" },
            style::number(self.fair().round())
        )
    }

    super::figure_backends!();
}
