//! What every chart shares: the canvas size, fonts, one colour per accept
//! model (the same in every chart, in a fixed order), a palette for workers
//! and how numbers are written.

use plotters::style::RGBColor;

/// Every chart is this many pixels (and SVG user units).
pub const SIZE: (u32, u32) = (1024, 640);
/// The family the bundled DejaVu Sans is registered under.
pub const FONT_FAMILY: &str = "sans-serif";
pub const TITLE_SIZE: u32 = 22;
pub const AXIS_DESC_SIZE: u32 = 16;
pub const TICK_SIZE: u32 = 13;
pub const LEGEND_SIZE: u32 = 14;
pub const NOTE_SIZE: u32 = 12;
/// Width of the legend panel on the right of each chart.
pub const LEGEND_WIDTH: u32 = 210;
pub const MARGIN: u32 = 12;
pub const X_LABEL_AREA: u32 = 50;
pub const Y_LABEL_AREA: u32 = 78;
pub const LINE_WIDTH: u32 = 2;

/// The models in the order charts list them (legends, groups).
pub const MODEL_ORDER: [&str; 5] = [
    "shared-blocking",
    "shared-epoll",
    "epoll-exclusive",
    "reuseport",
    "dispatch-rr",
];

/// Okabe-Ito colours (readable with the common colour-vision deficiencies),
/// one per known model, in [`MODEL_ORDER`].
const MODEL_COLOURS: [RGBColor; 5] = [
    RGBColor(0, 114, 178),   // shared-blocking: blue
    RGBColor(213, 94, 0),    // shared-epoll: vermillion (the seed's model)
    RGBColor(204, 121, 167), // epoll-exclusive: reddish purple
    RGBColor(0, 158, 115),   // reuseport: bluish green
    RGBColor(230, 159, 0),   // dispatch-rr: orange
];

/// Colours for models the list above does not know, by order of first
/// appearance (sorted by name, so the same input gives the same colours).
const OTHER_COLOURS: [RGBColor; 6] = [
    RGBColor(86, 180, 233), // sky blue
    RGBColor(0, 0, 0),
    RGBColor(128, 128, 128),
    RGBColor(140, 86, 75),
    RGBColor(148, 103, 189),
    RGBColor(188, 189, 34),
];

/// Sort key of a model name: known models in [`MODEL_ORDER`], then others
/// by name.
pub fn model_rank(model: &str) -> (usize, String) {
    match MODEL_ORDER.iter().position(|m| *m == model) {
        Some(i) => (i, String::new()),
        None => (MODEL_ORDER.len(), model.to_string()),
    }
}

/// Sorts and deduplicates model names into chart order.
pub fn order_models<'a>(models: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = models.into_iter().map(str::to_string).collect();
    v.sort_by_key(|m| model_rank(m));
    v.dedup();
    v
}

/// The colour of `model`. `all` is every model of the chart, so that unknown
/// models get distinct colours.
pub fn model_colour(model: &str, all: &[String]) -> RGBColor {
    if let Some(i) = MODEL_ORDER.iter().position(|m| *m == model) {
        return MODEL_COLOURS[i];
    }
    let others = all.iter().filter(|m| !MODEL_ORDER.contains(&m.as_str()));
    let i = others.take_while(|m| m.as_str() != model).count();
    OTHER_COLOURS[i % OTHER_COLOURS.len()]
}

/// Tableau 10: distinct colours for the workers of one run.
const WORKER_COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of worker `i`; past ten the palette repeats, alternately
/// lightened and darkened so neighbours still differ.
pub fn worker_colour(i: usize) -> RGBColor {
    let c = WORKER_COLOURS[i % WORKER_COLOURS.len()];
    match (i / WORKER_COLOURS.len()) % 3 {
        0 => c,
        1 => mix(c, RGBColor(255, 255, 255), 0.45),
        _ => mix(c, RGBColor(0, 0, 0), 0.35),
    }
}

/// `a` moved a fraction `t` of the way to `b`.
pub fn mix(a: RGBColor, b: RGBColor, t: f64) -> RGBColor {
    let f = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round().clamp(0.0, 255.0) as u8;
    RGBColor(f(a.0, b.0), f(a.1, b.1), f(a.2, b.2))
}

pub const GRID: RGBColor = RGBColor(225, 225, 225);
/// The minor lines of a log axis (2, 3, ... 9 times a power of ten).
pub const GRID_MINOR: RGBColor = RGBColor(242, 242, 242);
pub const INK: RGBColor = RGBColor(30, 30, 30);
pub const MUTED: RGBColor = RGBColor(110, 110, 110);

/// A count with thousands separators: `14561` -> `14,561`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An axis value with no more digits than it needs: `1500` -> `1,500`,
/// `0.25` -> `0.25`, `1e-3` -> `0.001`.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.abs() >= 1000.0 && (v - v.round()).abs() < 1e-9 {
        let s = count(v.abs().round() as u64);
        return if v < 0.0 { format!("-{s}") } else { s };
    }
    let mut s = format!("{v:.4}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// A latency in µs, as a log axis tick: `1000` -> `1,000`.
pub fn micros(v: f64) -> String {
    if v >= 1.0 {
        count(v.round() as u64)
    } else {
        number(v)
    }
}

/// Width in pixels of `text` at `size`, measured with the bundled font
/// (once registered); before that, an estimate of 0.55 em per character.
pub fn text_width(text: &str, size: u32) -> f64 {
    use plotters::style::IntoFont;
    match (FONT_FAMILY, size).into_font().box_size(text) {
        Ok((w, _)) => w as f64,
        Err(_) => text.chars().count() as f64 * size as f64 * 0.55,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_models_come_first_in_fixed_order() {
        let v = order_models(["reuseport", "zeta", "shared-blocking", "alpha", "reuseport"]);
        assert_eq!(v, ["shared-blocking", "reuseport", "alpha", "zeta"]);
    }

    #[test]
    fn colours_are_stable_and_distinct() {
        let all = order_models(MODEL_ORDER.iter().copied().chain(["x", "y"]));
        let cs: Vec<_> = all.iter().map(|m| model_colour(m, &all)).collect();
        for i in 0..cs.len() {
            for j in 0..i {
                assert_ne!(cs[i], cs[j], "{} and {}", all[i], all[j]);
            }
        }
        // A known model's colour does not depend on what else is drawn.
        assert_eq!(model_colour("reuseport", &[]), model_colour("reuseport", &all));
        assert_ne!(worker_colour(0), worker_colour(10));
    }

    #[test]
    fn numbers_are_written_plainly() {
        assert_eq!(count(14561), "14,561");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000000), "1,000,000");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1.0), "1");
        assert_eq!(number(25000.0), "25,000");
        assert_eq!(number(-0.0), "0");
        assert_eq!(micros(1000.0), "1,000");
    }
}
