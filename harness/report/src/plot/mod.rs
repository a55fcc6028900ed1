//! Charts of a finished run or sweep, drawn from its saved files only.
//!
//! A table of per-worker counts says how uneven one run was; a sweep's
//! question (how does the spread change with load, which model is fairest,
//! what does the herd cost in the latency tail) is answered by a picture.
//! This module reads what a run or a sweep left on disk (`summary.csv`,
//! `workers.csv`, `timeseries.csv`, `histograms.hlog`, `queue.csv`,
//! `runs.csv`, `aggregate.csv`), never reruns anything, and writes each chart as SVG
//! (for reports) and PNG (for a quick look) under `DIR/charts/`.
//!
//! One file per chart, a shared [`style`] (one colour per model name in
//! every chart) and [`data`], which loads the files by column name. Text is
//! drawn with a bundled DejaVu Sans through `ab_glyph`, so a PNG renders the
//! same on a machine with no system font library at all. Output is
//! deterministic: the same input files give byte-identical SVGs.
//!
//! [`draw_all`] on a directory that is neither a run nor a sweep (an empty
//! one, say) is an error naming the files it looked for; a chart the data
//! cannot support (a load chart for a single run) is listed in
//! [`Drawn::skipped`] with the reason.

mod axis;
pub mod data;
mod jain_vs_load;
mod latency_spectrum;
mod legend;
mod phases;
mod queue_depth;
mod share_over_time;
mod shares;
pub mod style;
mod worker_latency;
mod workers;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

pub(crate) use axis::{LogAxis, Ticked};
use data::Source;

/// One chart written to disk, as both SVG and PNG.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// File stem, e.g. `jain-vs-load` or `latency-spectrum-concurrency-64`.
    pub name: String,
    /// The title drawn on the chart.
    pub title: String,
    /// One sentence saying what the chart shows.
    pub caption: String,
    pub svg: PathBuf,
    pub png: PathBuf,
}

/// What [`draw_all`] drew, and what it could not draw with the reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drawn {
    pub charts: Vec<Chart>,
    /// `(chart name, why it was not drawn)`.
    pub skipped: Vec<(String, String)>,
}

/// Draws every chart the files in `dir` support into `dir/charts/`.
///
/// `dir` is a run directory (it has `summary.csv` or `workers.csv`) or a
/// sweep directory, which is also what `reproduce` writes (it has
/// `runs.csv`). Anything else is an error naming both. Each file is written
/// atomically; charts already drawn stay if a later one fails. Charts of an
/// earlier drawing that this one does not produce are removed from
/// `charts/`; files of other names there are left alone.
pub fn draw_all(dir: &Path) -> Result<Drawn> {
    draw_all_until(dir, &|| false)
}

/// [`draw_all`], asking `stop` before each chart: once it says yes (a
/// SIGINT or SIGTERM came), the charts left are listed as skipped, nothing
/// half-drawn is left, and charts of an earlier drawing stay as they were.
pub fn draw_all_until(dir: &Path, stop: &dyn Fn() -> bool) -> Result<Drawn> {
    let source = Source::detect(dir)?;
    let out = dir.join("charts");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // What a drawing killed half-way left.
    records::remove_temporaries(&out);
    let mut drawn = Drawn::default();
    let mut plans: Vec<Planned> = Vec::new();
    match &source {
        Source::Run(run) => {
            let one = run.one_run();
            plans.push(workers::plan(&one));
            drawn.skip(
                "shares",
                "needs a sweep: it compares the points of a sweep side by side",
            );
            drawn.skip("jain-vs-load", "needs a sweep with several loads");
            plans.extend(latency_spectrum::plan_run(run));
            plans.extend(phases::plan_run(run));
            plans.push(share_over_time::plan(&one));
            plans.push(worker_latency::plan(&one));
            plans.push(queue_depth::plan(&one, run.queue()));
        }
        Source::Sweep(sweep) => {
            // The one-run charts show the first run of runs.csv.
            let first = sweep.runs.first().map(|r| sweep.run(r));
            let one_run = |plan: fn(&data::OneRun) -> Planned, name: &str| match &first {
                Some(run) => plan(run),
                None => Planned::skip(name, "runs.csv lists no finished run yet"),
            };
            plans.push(one_run(workers::plan, workers::NAME));
            plans.push(shares::plan(sweep));
            plans.push(jain_vs_load::plan(sweep));
            plans.extend(latency_spectrum::plan_sweep(sweep));
            plans.extend(phases::plan_sweep(sweep));
            plans.push(one_run(share_over_time::plan, share_over_time::NAME));
            plans.push(one_run(worker_latency::plan, worker_latency::NAME));
            plans.push(match (sweep.runs.first(), &first) {
                (Some(row), Some(run)) => queue_depth::plan(run, sweep.queue(row)),
                _ => Planned::skip(queue_depth::NAME, "runs.csv lists no finished run yet"),
            });
        }
    }
    let mut stopped = false;
    for plan in plans {
        stopped = stopped || stop();
        match plan {
            Planned::Skip(name, why) => drawn.skip(&name, &why),
            Planned::Draw(fig) if stopped => drawn.skip(&fig.name(), INTERRUPTED),
            Planned::Draw(fig) => drawn.charts.push(render(&out, fig.as_ref())?),
        }
    }
    if !stopped {
        remove_stale(&out, &drawn)?;
    }
    Ok(drawn)
}

/// Why a chart was not drawn when a signal stopped the drawing.
pub const INTERRUPTED: &str = "interrupted by a signal before it was drawn";

/// The chart names this module writes (a spectrum's and a phase chart's
/// may have a suffix: [`SUFFIXED`]).
const CHART_NAMES: [&str; 8] = [
    workers::NAME,
    shares::NAME,
    jain_vs_load::NAME,
    latency_spectrum::NAME,
    phases::NAME,
    share_over_time::NAME,
    worker_latency::NAME,
    queue_depth::NAME,
];

/// The charts drawn once per load of a sweep, as `<name>-<param>-<value>`.
const SUFFIXED: [&str; 2] = [latency_spectrum::NAME, phases::NAME];

/// Removes charts an earlier drawing left that this one did not draw (a
/// spectrum for a point the sweep no longer has, a chart now skipped), so
/// `charts/` holds exactly what [`Drawn`] lists. Other files are left alone.
fn remove_stale(out: &Path, drawn: &Drawn) -> Result<()> {
    let entries = fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("reading {}", out.display()))?.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let ours = CHART_NAMES.contains(&stem) || SUFFIXED.iter().any(|n| stem.starts_with(&format!("{n}-")));
        let current = drawn.charts.iter().any(|c| c.name == stem);
        if (ext == "svg" || ext == "png") && ours && !current {
            fs::remove_file(&path).with_context(|| format!("removing the stale chart {}", path.display()))?;
        }
    }
    Ok(())
}

impl Drawn {
    /// Whether a signal stopped the drawing before every chart was drawn.
    pub fn interrupted(&self) -> bool {
        self.skipped.iter().any(|(_, why)| why == INTERRUPTED)
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.skipped.push((name.to_string(), why.to_string()));
    }
}

/// A chart ready to draw, or the reason it cannot be.
pub(crate) enum Planned {
    Draw(Box<dyn Figure>),
    Skip(String, String),
}

impl Planned {
    pub(crate) fn skip(name: &str, why: impl Into<String>) -> Planned {
        Planned::Skip(name.to_string(), why.into())
    }
}

/// One chart with its data loaded: it knows its name, title and caption and
/// draws itself on any plotters backend (SVG or bitmap).
pub(crate) trait Figure {
    fn name(&self) -> String;
    fn title(&self) -> String;
    fn caption(&self) -> String;
    fn draw_svg(&self, root: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>;
    fn draw_bitmap(&self, root: &DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>;
}

/// Implements [`Figure`]'s two backend methods by calling the type's generic
/// `draw<DB: DrawingBackend>` (a trait object cannot have generic methods).
macro_rules! figure_backends {
    () => {
        fn draw_svg(
            &self,
            root: &plotters::prelude::DrawingArea<plotters::prelude::SVGBackend<'_>, plotters::coord::Shift>,
        ) -> anyhow::Result<()> {
            self.draw(root)
        }
        fn draw_bitmap(
            &self,
            root: &plotters::prelude::DrawingArea<plotters::prelude::BitMapBackend<'_>, plotters::coord::Shift>,
        ) -> anyhow::Result<()> {
            self.draw(root)
        }
    };
}
pub(crate) use figure_backends;

/// Turns a plotters error (generic over the backend's error type, so not
/// always `'static`) into an anyhow error by its message.
pub(crate) fn perr<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing: {e}")
}

/// A chart builder with the shared margins and label areas.
pub(crate) fn builder<'a, 'b, DB: DrawingBackend>(area: &'a DrawingArea<DB, Shift>) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(area);
    b.margin(style::MARGIN)
        .margin_top(style::MARGIN + 8)
        .x_label_area_size(style::X_LABEL_AREA)
        .y_label_area_size(style::Y_LABEL_AREA);
    b
}

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font as the family every chart uses, once.
fn register_font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(style::FONT_FAMILY, FontStyle::Normal, FONT).is_ok()
            && plotters::style::register_font(style::FONT_FAMILY, FontStyle::Bold, FONT).is_ok()
    });
    if !ok {
        bail!("the bundled font assets/fonts/DejaVuSans.ttf could not be read");
    }
    Ok(())
}

/// Draws `fig` as `out/<name>.svg` and `out/<name>.png`.
fn render(out: &Path, fig: &dyn Figure) -> Result<Chart> {
    register_font()?;
    let name = fig.name();
    let title = fig.title();
    let (w, h) = style::SIZE;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        fig.draw_svg(&root).with_context(|| format!("chart {name} (SVG)"))?;
        root.present().map_err(perr)?;
    }
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        fig.draw_bitmap(&root).with_context(|| format!("chart {name} (PNG)"))?;
        root.present().map_err(perr)?;
    }
    let png = encode_png(&pixels, w, h)?;
    let svg_name = format!("{name}.svg");
    let png_name = format!("{name}.png");
    records::write_atomic(out, &svg_name, svg.as_bytes())?;
    records::write_atomic(out, &png_name, &png)?;
    Ok(Chart {
        caption: fig.caption(),
        svg: out.join(svg_name),
        png: out.join(png_name),
        name,
        title,
    })
}

/// Encodes 8-bit RGB pixels as a PNG (no timestamps or other varying
/// chunks, so the bytes depend on the pixels alone).
fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::High);
        let mut writer = enc.write_header().context("encoding PNG")?;
        writer.write_image_data(rgb).context("encoding PNG")?;
        writer.finish().context("encoding PNG")?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_signature_and_size() {
        let png = encode_png(&[255u8; 4 * 3 * 3], 4, 3).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 4);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 3);
    }

    #[test]
    fn font_registers() {
        register_font().unwrap();
        let (w, h) = (style::FONT_FAMILY, 20).into_font().box_size("Jain's index").unwrap();
        assert!(w > 80 && w < 200 && h > 10, "measured {w}x{h}");
        // Layout decisions use the same measurement.
        assert_eq!(style::text_width("Jain's index", 20), w as f64);
    }

    #[test]
    fn a_directory_that_is_neither_is_an_error_naming_the_files() {
        let dir = std::env::temp_dir().join(format!("harness-plot-empty-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let err = format!("{:#}", draw_all(&dir).unwrap_err());
        assert!(err.contains("runs.csv") && err.contains("summary.csv"), "{err}");
        assert!(!dir.join("charts").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
