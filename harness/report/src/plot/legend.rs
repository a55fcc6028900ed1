//! The frame every chart shares: the title across the top, the plot on the
//! left and a legend panel on the right, outside the data, so a legend
//! never hides a line or a bar whatever the data look like.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::perr;
use super::style::{self, INK, LEGEND_SIZE, LEGEND_WIDTH, MUTED};

/// How a legend entry is marked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Swatch {
    Fill(RGBColor),
    /// A line, solid or dashed, with an optional marker and an optional
    /// vertical interval bar through it.
    Line {
        colour: RGBColor,
        dashed: bool,
        marker: Option<Marker>,
        bar: bool,
    },
    /// No mark: a line of explanatory text.
    Note,
}

impl Swatch {
    pub fn line(colour: RGBColor) -> Swatch {
        Swatch::Line {
            colour,
            dashed: false,
            marker: None,
            bar: false,
        }
    }

    pub fn dashed(colour: RGBColor) -> Swatch {
        Swatch::Line {
            colour,
            dashed: true,
            marker: None,
            bar: false,
        }
    }
}

/// Point markers, one per model where lines may overlap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
}

impl Marker {
    pub fn nth(i: usize) -> Marker {
        [
            Marker::Circle,
            Marker::Square,
            Marker::Triangle,
            Marker::Diamond,
            Marker::Cross,
        ][i % 5]
    }

    /// The marker at `at` (data or pixel coordinates) as an element.
    pub fn at<C>(self, at: C, colour: RGBColor) -> MarkerAt<C> {
        MarkerAt {
            at,
            marker: self,
            colour,
        }
    }
}

/// A [`Marker`] placed at one point: an element any backend can draw.
pub(crate) struct MarkerAt<C> {
    at: C,
    marker: Marker,
    colour: RGBColor,
}

impl<'a, C: 'a> PointCollection<'a, C> for &'a MarkerAt<C> {
    type Point = &'a C;
    type IntoIter = std::iter::Once<&'a C>;

    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<C, DB: DrawingBackend> Drawable<DB> for MarkerAt<C> {
    fn draw<I: Iterator<Item = (i32, i32)>>(
        &self,
        mut pos: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), plotters_backend::DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = pos.next() else { return Ok(()) };
        let fill = self.colour.filled();
        match self.marker {
            Marker::Circle => backend.draw_circle((x, y), 5, &fill, true),
            Marker::Square => backend.draw_rect((x - 4, y - 4), (x + 4, y + 4), &fill, true),
            Marker::Triangle => backend.fill_polygon([(x, y - 6), (x + 6, y + 4), (x - 6, y + 4)], &fill),
            Marker::Diamond => backend.fill_polygon([(x, y - 6), (x + 6, y), (x, y + 6), (x - 6, y)], &fill),
            Marker::Cross => {
                let stroke = self.colour.stroke_width(2);
                backend.draw_line((x - 5, y - 5), (x + 5, y + 5), &stroke)?;
                backend.draw_line((x - 5, y + 5), (x + 5, y - 5), &stroke)
            }
        }
    }
}

pub(crate) struct Entry {
    pub swatch: Swatch,
    pub label: String,
}

impl Entry {
    pub fn new(swatch: Swatch, label: impl Into<String>) -> Entry {
        Entry {
            swatch,
            label: label.into(),
        }
    }
}

/// A text style of the bundled font.
pub(crate) fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from((style::FONT_FAMILY, size).into_font()).color(&INK)
}

/// Draws the title and splits what is left into the plot area and the
/// legend panel.
pub(crate) fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<(DrawingArea<DB, Shift>, DrawingArea<DB, Shift>)> {
    // A long title (a point with many parameters) is set smaller to fit.
    let (w, _) = root.dim_in_pixel();
    let mut size = style::TITLE_SIZE;
    while size > 12 && style::text_width(title, size) > w as f64 - 2.0 * style::MARGIN as f64 {
        size -= 1;
    }
    let body = root
        .titled(title, font(size).pos(Pos::new(HPos::Center, VPos::Top)))
        .map_err(perr)?;
    let (bw, _) = body.dim_in_pixel();
    Ok(body.split_horizontally(bw.saturating_sub(LEGEND_WIDTH)))
}

const ROW: i32 = 22;
const SWATCH_W: i32 = 26;
const TEXT_X: i32 = 8 + SWATCH_W + 8;

/// Draws `entries` top-down in the legend panel, under an optional heading.
/// Long labels wrap; entries that do not fit are summarised in one line.
pub(crate) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: Option<&str>,
    entries: &[Entry],
) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    let text_room = w as f64 - TEXT_X as f64 - 6.0;
    let mut y = style::MARGIN as i32 + 10;
    if let Some(head) = heading {
        for line in wrap(head, w as f64 - 14.0, LEGEND_SIZE) {
            area.draw(&Text::new(
                line,
                (8, y),
                font(LEGEND_SIZE).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(perr)?;
            y += ROW;
        }
        y += 4;
    }
    let bottom = h as i32 - ROW;
    for (i, e) in entries.iter().enumerate() {
        let lines = wrap(&e.label, text_room, LEGEND_SIZE);
        let need = ROW * lines.len() as i32;
        if y + need > bottom && i + 1 < entries.len() {
            let rest = entries.len() - i;
            let text = format!("... and {rest} more");
            area.draw(&Text::new(text, (8, y), font(LEGEND_SIZE).color(&MUTED).pos(left())))
                .map_err(perr)?;
            break;
        }
        draw_swatch(area, e.swatch, y)?;
        let (x, colour) = match e.swatch {
            Swatch::Note => (8, MUTED),
            _ => (TEXT_X, INK),
        };
        for line in lines {
            area.draw(&Text::new(line, (x, y), font(LEGEND_SIZE).color(&colour).pos(left())))
                .map_err(perr)?;
            y += ROW;
        }
    }
    Ok(())
}

fn left() -> Pos {
    Pos::new(HPos::Left, VPos::Center)
}

fn draw_swatch<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, swatch: Swatch, y: i32) -> Result<()> {
    let (x0, x1) = (8, 8 + SWATCH_W);
    let mid = (x0 + x1) / 2;
    match swatch {
        Swatch::Fill(c) => area
            .draw(&Rectangle::new([(x0 + 4, y - 7), (x1 - 4, y + 7)], c.filled()))
            .map_err(perr)?,
        Swatch::Line {
            colour,
            dashed,
            marker,
            bar,
        } => {
            let stroke = colour.stroke_width(style::LINE_WIDTH);
            let segments: &[(i32, i32)] = if dashed {
                &[(x0, x0 + 7), (x0 + 10, x0 + 17), (x0 + 20, x1)]
            } else {
                &[(x0, x1)]
            };
            for &(a, b) in segments {
                area.draw(&PathElement::new(vec![(a, y), (b, y)], stroke))
                    .map_err(perr)?;
            }
            if bar {
                let thin = colour.stroke_width(1);
                area.draw(&PathElement::new(vec![(mid, y - 9), (mid, y + 9)], thin))
                    .map_err(perr)?;
                for yy in [y - 9, y + 9] {
                    area.draw(&PathElement::new(vec![(mid - 4, yy), (mid + 4, yy)], thin))
                        .map_err(perr)?;
                }
            }
            if let Some(m) = marker {
                area.draw(&m.at((mid, y), colour)).map_err(perr)?;
            }
        }
        Swatch::Note => {}
    }
    Ok(())
}

/// Breaks `text` at spaces so each line is about `room` pixels wide at
/// `size`; a word longer than that gets a line of its own.
pub(crate) fn wrap(text: &str, room: f64, size: u32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let candidate = if cur.is_empty() {
            word.to_string()
        } else {
            format!("{cur} {word}")
        };
        if !cur.is_empty() && style::text_width(&candidate, size) > room {
            lines.push(std::mem::take(&mut cur));
            cur = word.to_string();
        } else {
            cur = candidate;
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_keeps_every_word() {
        let text = "fair share: total / N = 7,500 connections each";
        let lines = wrap(text, 120.0, 14);
        assert!(lines.len() > 1, "{lines:?}");
        assert_eq!(lines.join(" "), text);
        for l in &lines[..lines.len() - 1] {
            assert!(style::text_width(l, 14) <= 120.0 || !l.contains(' '), "{l}");
        }
        assert_eq!(wrap("short", 500.0, 14), ["short"]);
        assert_eq!(wrap("", 500.0, 14), [""]);
    }
}
