//! Charts drawn from fixture folders written here (small CSVs and hlogs, no
//! fleets), so every edge case is quick and deterministic: one worker, a
//! worker with no connections, a sweep of one run, one repetition (no
//! intervals), a model missing from some loads.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use records::hlog::HlogWriter;
use report::plot::{draw_all, Chart, Drawn};

/// A scratch folder removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "harness-plot-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What one fixture run looks like.
struct RunSpec {
    model: &'static str,
    counts: Vec<u64>,
    /// Latency base (µs): the run's values spread from here up.
    base_us: u64,
}

fn hist(n: u64, base: u64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).unwrap();
    for i in 0..n {
        // Deterministic spread with a tail: base .. ~30 x base.
        let v = base + (i * 37 % 1000) * base / 100 + if i % 97 == 0 { base * 20 } else { 0 };
        h.record(v).unwrap();
    }
    h
}

fn jain(xs: &[u64]) -> f64 {
    let s: f64 = xs.iter().map(|&x| x as f64).sum();
    let sq: f64 = xs.iter().map(|&x| (x as f64).powi(2)).sum();
    if sq == 0.0 {
        0.0
    } else {
        s * s / (xs.len() as f64 * sq)
    }
}

/// The phase columns the fixtures write (`queue` and `service` are newer
/// than the files most fixtures stand for).
const PHASE_HEADER: &str = "connect_p50_us,connect_p99_us,ttfb_p50_us,ttfb_p99_us,total_p50_us,total_p99_us";

/// The cells of [`PHASE_HEADER`] for a run whose latency starts at `base`.
fn phase_cells(base: u64) -> String {
    format!("{},{},{},{},{},{}", base / 4, base, base, base * 4, base * 2, base * 5)
}

/// `summary.csv` columns (a few, plus one the charts do not know).
fn summary_row(r: &RunSpec) -> (String, String) {
    let total: u64 = r.counts.iter().sum();
    (
        format!("model,workers,connections,conn_per_s,jain,max_min_ratio,p99_us,{PHASE_HEADER},future_column"),
        format!(
            "{},{},{total},{:.1},{:.6},{},{},{},x",
            r.model,
            r.counts.len(),
            total as f64 * 10.0,
            jain(&r.counts),
            "inf",
            r.base_us * 5,
            phase_cells(r.base_us)
        ),
    )
}

/// One row per worker; a worker with no connections has zero latencies,
/// as the harness writes them.
fn worker_rows(r: &RunSpec) -> Vec<String> {
    let total: u64 = r.counts.iter().sum::<u64>().max(1);
    r.counts
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let (p50, p99, p999) = if a == 0 {
                (0, 0, 0)
            } else {
                let b = r.base_us + i as u64 * 10;
                (b, b * 4, b * 9)
            };
            // A reuseport fleet's worker 1 is stalled from 200 to 400 ms.
            let stall = if stalls(r) && i == 1 { "200,400" } else { "," };
            format!(
                "{},{},{i},{},{a},{:.6},{p50},{p99},{p999},{stall},extra",
                r.model,
                r.counts.len(),
                1000 + i,
                a as f64 / total as f64
            )
        })
        .collect()
}
const WORKERS_HEADER: &str =
    "model,workers,worker,pid,accepted,share,p50_us,p99_us,p999_us,stall_from_ms,stall_to_ms,unknown_later_column";

/// Whether the fixture run has a listener per worker (and worker 1
/// stalled) rather than one shared listener.
fn stalls(r: &RunSpec) -> bool {
    r.model.starts_with("reuseport") && r.counts.len() > 1
}

/// The queue limit of every fixture listener.
const LIMIT: u32 = 128;

/// `queue.csv`: a sample every 10 ms for 500 ms. A reuseport fleet has a
/// listener per worker and worker 1's fills to its limit while it is
/// stalled (200-400 ms); anything else has one shared listener.
fn queue_rows(r: &RunSpec) -> Vec<String> {
    let mut out = vec!["t_ms,worker,listener_inode,depth,limit".to_string()];
    for k in 1..=50u32 {
        let t = k * 10;
        if stalls(r) {
            for w in 0..r.counts.len() as u32 {
                let depth = if w == 1 && (200..=400).contains(&t) {
                    ((t - 190) as f64 * 1.2) as u32
                } else {
                    (k + w) % 3
                }
                .min(LIMIT);
                out.push(format!("{t}.0,{w},{},{depth},{LIMIT}", 7000 + w));
            }
        } else {
            out.push(format!("{t}.0,,6999,{},{LIMIT}", (k * 7) % 5));
        }
    }
    out
}

/// Five 100 ms intervals; the third is empty (no accepts at all).
fn ts_rows(r: &RunSpec) -> Vec<String> {
    let mut out = Vec::new();
    for k in 1..=5u64 {
        for (w, &a) in r.counts.iter().enumerate() {
            let got = if k == 3 {
                0
            } else {
                a / 4 + if k == 5 { a % 4 } else { 0 }
            };
            out.push(format!("{}.0,{w},{got},{got},0,1", k * 100));
        }
    }
    out
}
const TS_HEADER: &str = "t_ms,worker,accepted,requests,spurious_wakeups,active";

fn write_hlog(dir: &Path, r: &RunSpec) {
    let total: u64 = r.counts.iter().sum();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut w = HlogWriter::create(&dir.join("histograms.hlog"), start, "fixture").unwrap();
    let len = Duration::from_millis(500);
    w.write(Some("total"), Duration::ZERO, len, &hist(total, r.base_us * 2))
        .unwrap();
    w.write(Some("total_uncorrected"), Duration::ZERO, len, &hist(total, r.base_us))
        .unwrap();
    w.write(Some("connect"), Duration::ZERO, len, &hist(total, 5)).unwrap();
    w.write(Some("worker0-total"), Duration::ZERO, len, &hist(10, 1))
        .unwrap();
    w.finish().unwrap();
}

fn write_run_dir(dir: &Path, r: &RunSpec) {
    fs::create_dir_all(dir).unwrap();
    let (h, row) = summary_row(r);
    fs::write(dir.join("summary.csv"), format!("{h}\n{row}\n")).unwrap();
    let mut workers = vec![WORKERS_HEADER.to_string()];
    workers.extend(worker_rows(r));
    fs::write(dir.join("workers.csv"), workers.join("\n") + "\n").unwrap();
    let mut ts = vec![TS_HEADER.to_string()];
    ts.extend(ts_rows(r));
    fs::write(dir.join("timeseries.csv"), ts.join("\n") + "\n").unwrap();
    write_hlog(dir, r);
    fs::write(dir.join("queue.csv"), queue_rows(r).join("\n") + "\n").unwrap();
}

/// One grid point of a fixture sweep.
struct PointSpec {
    model: &'static str,
    /// The value of the varying load parameter, if any (`rate`).
    rate: Option<&'static str>,
    reps: Vec<Vec<u64>>,
}

/// Writes a sweep folder: runs.csv (in a shuffled order, as a sweep does),
/// workers.csv, timeseries.csv, aggregate.csv and runs/<id>/.
fn write_sweep(dir: &Path, points: &[PointSpec]) {
    fs::create_dir_all(dir.join("runs")).unwrap();
    let has_rate = points.iter().any(|p| p.rate.is_some());
    let mut runs = vec![format!(
        "run_id,point,repetition,order,label,rate_spec,capacity_conn_per_s,model,workers,jain,conn_per_s,rate,{PHASE_HEADER}"
    )];
    let mut workers = vec![format!("run_id,point,repetition,{WORKERS_HEADER}")];
    let mut ts = vec![format!("run_id,point,repetition,{TS_HEADER}")];
    let params = if has_rate {
        "model,workers,rate"
    } else {
        "model,workers"
    };
    let mut agg = vec![format!(
        "point,label,{params},n,conn_per_s_mean,conn_per_s_sd,conn_per_s_ci_low,conn_per_s_ci_high,jain_mean,jain_sd,jain_ci_low,jain_ci_high"
    )];
    let mut order = 0;
    // Last point first: runs.csv is in run order, not grid order.
    for (p, spec) in points.iter().enumerate().rev() {
        let label = match spec.rate {
            Some(r) => format!("model={} rate={r}", spec.model),
            None => format!("model={}", spec.model),
        };
        let mut jains = Vec::new();
        for (rep, counts) in spec.reps.iter().enumerate() {
            let id = format!("p{p:03}-r{rep:02}");
            let run = RunSpec {
                model: spec.model,
                counts: counts.clone(),
                base_us: 100 + 50 * p as u64,
            };
            let j = jain(counts);
            jains.push(j);
            runs.push(format!(
                "{id},{p},{rep},{order},{label},{},1000,{},{},{j:.6},5000,{},{}",
                spec.rate.unwrap_or(""),
                spec.model,
                counts.len(),
                spec.rate.unwrap_or(""),
                phase_cells(run.base_us + rep as u64 * 10)
            ));
            order += 1;
            for row in worker_rows(&run) {
                workers.push(format!("{id},{p},{rep},{row}"));
            }
            for row in ts_rows(&run) {
                ts.push(format!("{id},{p},{rep},{row}"));
            }
            write_run_dir(&dir.join("runs").join(&id), &run);
        }
        let n = jains.len();
        let mean = jains.iter().sum::<f64>() / n as f64;
        let (sd, lo, hi) = if n > 1 {
            let sd = (jains.iter().map(|j| (j - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            // Deliberately wide, as Student's t with few repetitions is.
            (
                format!("{sd:.4}"),
                format!("{:.4}", mean - 0.2),
                format!("{:.4}", mean + 0.3),
            )
        } else {
            (String::new(), String::new(), String::new())
        };
        let rate = match (has_rate, spec.rate) {
            (true, Some(r)) => format!(",{r}"),
            (true, None) => ",".into(),
            _ => String::new(),
        };
        agg.push(format!(
            "{p},{label},{},{}{rate},{n},5000,,,,{mean:.4},{sd},{lo},{hi}",
            spec.model,
            spec.reps[0].len()
        ));
    }
    // aggregate.csv is in grid order.
    let header = agg.remove(0);
    agg.reverse();
    agg.insert(0, header);
    fs::write(dir.join("runs.csv"), runs.join("\n") + "\n").unwrap();
    fs::write(dir.join("workers.csv"), workers.join("\n") + "\n").unwrap();
    fs::write(dir.join("timeseries.csv"), ts.join("\n") + "\n").unwrap();
    fs::write(dir.join("aggregate.csv"), agg.join("\n") + "\n").unwrap();
    fs::write(
        dir.join("sweep.json"),
        r#"{"name": "fixture-sweep", "shuffle_seed": 7}"#,
    )
    .unwrap();
}

/// Checks both files of a chart: the PNG's signature, size and that text
/// was drawn in its title band; the SVG parses, carries the title and has
/// no NaN or infinite coordinates.
fn check_chart(c: &Chart) {
    let png = fs::read(&c.png).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}", c.png.display());
    assert_eq!(&png[12..16], b"IHDR");
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((w, h), (1024, 640), "{}", c.png.display());
    let decoder = png::Decoder::new(std::io::Cursor::new(&png));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    // The title band (the top 30 rows, the middle half) has dark pixels:
    // the bundled font drew the title.
    let dark = (0..30usize)
        .flat_map(|y| (256..768usize).map(move |x| (y * 1024 + x) * 3))
        .filter(|&i| pixels[i] < 100 && pixels[i + 1] < 100 && pixels[i + 2] < 100)
        .count();
    assert!(dark > 50, "{}: no title text drawn ({dark} dark pixels)", c.name);

    let svg = fs::read_to_string(&c.svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{}: {e}", c.svg.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert_eq!(doc.root_element().attribute("width"), Some("1024"));
    assert_eq!(doc.root_element().attribute("height"), Some("640"));
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect();
    assert!(
        texts.contains(&c.title),
        "{}: title {:?} not in {texts:?}",
        c.name,
        c.title
    );
    for node in doc.descendants() {
        for a in node.attributes() {
            let v = a.value();
            assert!(
                !v.contains("NaN") && !v.contains("inf"),
                "{}: {}={v:?}",
                c.name,
                a.name()
            );
        }
    }
    assert!(
        !c.caption.is_empty() && c.caption.ends_with('.'),
        "{}: {:?}",
        c.name,
        c.caption
    );
    assert_eq!(c.svg.file_name().unwrap().to_str().unwrap(), format!("{}.svg", c.name));
}

fn names(d: &Drawn) -> Vec<&str> {
    d.charts.iter().map(|c| c.name.as_str()).collect()
}

fn skipped<'a>(d: &'a Drawn, name: &str) -> Option<&'a str> {
    d.skipped.iter().find(|s| s.0 == name).map(|s| s.1.as_str())
}

fn svg_text(d: &Drawn, name: &str) -> String {
    let c = d
        .charts
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no chart {name}"));
    fs::read_to_string(&c.svg).unwrap()
}

#[test]
fn a_run_dir_with_an_idle_worker_draws_every_run_chart() {
    let s = Scratch::new("run");
    let run = RunSpec {
        model: "shared-epoll",
        counts: vec![263, 1018, 0, 1109],
        base_us: 120,
    };
    write_run_dir(&s.0, &run);
    let drawn = draw_all(&s.0).unwrap();
    assert_eq!(
        names(&drawn),
        [
            "workers",
            "latency-spectrum",
            "phases",
            "share-over-time",
            "worker-latency",
            "queue-depth"
        ]
    );
    for c in &drawn.charts {
        check_chart(c);
        assert!(c.svg.starts_with(s.0.join("charts")));
    }
    assert!(skipped(&drawn, "shares").unwrap().contains("sweep"));
    assert!(skipped(&drawn, "jain-vs-load").unwrap().contains("several loads"));
    // The caption quotes Jain's index of these counts.
    let workers = &drawn.charts[0];
    assert!(
        workers.caption.contains(&format!("{:.3}", jain(&run.counts))),
        "{}",
        workers.caption
    );
    // Each count is labelled on its bar, the idle worker's too.
    let svg = svg_text(&drawn, "workers");
    for label in ["263", "1,018", "1,109", "0"] {
        assert!(
            svg.contains(&format!(">\n{label}\n<")) || svg.contains(&format!(">{label}<")),
            "{label}"
        );
    }
    // The idle worker has no latency bars and says so.
    assert!(svg_text(&drawn, "worker-latency").contains("none"));
    // Nothing but the charts was written, and no temporary files remain.
    let mut files: Vec<String> = fs::read_dir(s.0.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), 12, "{files:?}");
    assert!(files.iter().all(|f| !f.starts_with('.')), "{files:?}");
}

#[test]
fn a_run_with_one_worker_draws() {
    let s = Scratch::new("one");
    write_run_dir(
        &s.0,
        &RunSpec {
            model: "reuseport",
            counts: vec![500],
            base_us: 80,
        },
    );
    let drawn = draw_all(&s.0).unwrap();
    assert_eq!(drawn.charts.len(), 6, "{:?}", drawn.skipped);
    for c in &drawn.charts {
        check_chart(c);
    }
    let over_time = drawn.charts.iter().find(|c| c.name == "share-over-time").unwrap();
    assert!(over_time.caption.contains("100%"), "{}", over_time.caption);
}

#[test]
fn a_run_without_timeseries_or_histograms_skips_those_charts() {
    let s = Scratch::new("bare");
    write_run_dir(
        &s.0,
        &RunSpec {
            model: "dispatch-rr",
            counts: vec![5, 5],
            base_us: 80,
        },
    );
    fs::remove_file(s.0.join("timeseries.csv")).unwrap();
    fs::remove_file(s.0.join("histograms.hlog")).unwrap();
    let drawn = draw_all(&s.0).unwrap();
    assert_eq!(names(&drawn), ["workers", "phases", "worker-latency", "queue-depth"]);
    assert!(skipped(&drawn, "share-over-time").unwrap().contains("timeseries.csv"));
    assert!(skipped(&drawn, "latency-spectrum").unwrap().contains("histograms.hlog"));
}

/// Every model at three loads; reuseport misses 50%; dispatch-rr ran once
/// per load (no intervals), the others twice.
fn load_sweep() -> Vec<PointSpec> {
    let mut points = Vec::new();
    for model in [
        "shared-blocking",
        "shared-epoll",
        "epoll-exclusive",
        "reuseport",
        "dispatch-rr",
    ] {
        for rate in ["10%", "50%", "100%"] {
            if model == "reuseport" && rate == "50%" {
                continue;
            }
            let reps = if model == "dispatch-rr" { 1 } else { 2 };
            let counts = match model {
                "epoll-exclusive" => vec![300, 0, 2, 98],
                "shared-epoll" => vec![100, 140, 60, 100],
                _ => vec![100, 100, 101, 99],
            };
            points.push(PointSpec {
                model,
                rate: Some(rate),
                reps: (0..reps).map(|k| counts.iter().map(|c| c + k).collect()).collect(),
            });
        }
    }
    points
}

#[test]
fn a_load_sweep_draws_every_chart_and_a_spectrum_per_load() {
    let s = Scratch::new("load");
    write_sweep(&s.0, &load_sweep());
    let drawn = draw_all(&s.0).unwrap();
    assert_eq!(
        names(&drawn),
        [
            "workers",
            "shares",
            "jain-vs-load",
            "latency-spectrum-rate-10pct",
            "latency-spectrum-rate-50pct",
            "latency-spectrum-rate-100pct",
            "phases-rate-10pct",
            "phases-rate-50pct",
            "phases-rate-100pct",
            "share-over-time",
            "worker-latency",
            "queue-depth"
        ],
        "{:?}",
        drawn.skipped
    );
    assert!(drawn.skipped.is_empty(), "{:?}", drawn.skipped);
    for c in &drawn.charts {
        check_chart(c);
    }
    // Titles carry the scenario's name from sweep.json.
    assert!(
        drawn.charts[1].title.ends_with(": fixture-sweep"),
        "{}",
        drawn.charts[1].title
    );
    // The first run of runs.csv is drawn (the last grid point here).
    let workers = &drawn.charts[0];
    assert!(
        workers.title.contains("dispatch-rr") && workers.title.contains("100%"),
        "{}",
        workers.title
    );
    // Every model is in the legend of the load chart, which names the least
    // fair one.
    let jain_svg = svg_text(&drawn, "jain-vs-load");
    for m in [
        "shared-blocking",
        "shared-epoll",
        "epoll-exclusive",
        "reuseport",
        "dispatch-rr",
    ] {
        assert!(jain_svg.contains(m), "{m}");
    }
    let caption = &drawn.charts[2].caption;
    assert!(caption.contains("epoll-exclusive the least fair"), "{caption}");
    assert!(jain_svg.contains("10%") && jain_svg.contains("100%"));
    // The 50% spectrum has no reuseport line; the others have.
    assert!(
        !svg_text(&drawn, "latency-spectrum-rate-50pct").contains(">reuseport<")
            && !svg_text(&drawn, "latency-spectrum-rate-50pct").contains("\nreuseport\n")
    );
    assert!(svg_text(&drawn, "latency-spectrum-rate-10pct").contains("reuseport"));
    // Percentile ticks on the HdrHistogram scale.
    let spectrum = svg_text(&drawn, "latency-spectrum-rate-10pct");
    for tick in ["90", "99", "99.9"] {
        assert!(spectrum.contains(&format!("\n{tick}\n")), "tick {tick}");
    }
}

#[test]
fn a_sweep_of_one_run_draws_and_says_why_there_is_no_load_chart() {
    let s = Scratch::new("single");
    write_sweep(
        &s.0,
        &[PointSpec {
            model: "shared-epoll",
            rate: None,
            reps: vec![vec![263, 1018, 610, 1109]],
        }],
    );
    let drawn = draw_all(&s.0).unwrap();
    assert_eq!(
        names(&drawn),
        [
            "workers",
            "shares",
            "latency-spectrum",
            "phases",
            "share-over-time",
            "worker-latency",
            "queue-depth"
        ]
    );
    for c in &drawn.charts {
        check_chart(c);
    }
    assert!(skipped(&drawn, "jain-vs-load").unwrap().contains("several loads"));
}

#[test]
fn a_models_sweep_gets_one_spectrum_with_every_model() {
    let s = Scratch::new("models");
    let points: Vec<PointSpec> = ["dispatch-rr", "shared-blocking", "a-new-model"]
        .into_iter()
        .map(|model| PointSpec {
            model,
            rate: None,
            reps: vec![vec![10, 20], vec![12, 18], vec![11, 19]],
        })
        .collect();
    write_sweep(&s.0, &points);
    let drawn = draw_all(&s.0).unwrap();
    assert!(names(&drawn).contains(&"latency-spectrum"), "{:?}", names(&drawn));
    let spectrum = drawn.charts.iter().find(|c| c.name == "latency-spectrum").unwrap();
    assert_eq!(spectrum.title, "Latency by percentile: fixture-sweep");
    let svg = svg_text(&drawn, "latency-spectrum");
    // Known models first in the fixed order, the unknown one after.
    let pos = |m: &str| svg.find(m).unwrap_or_else(|| panic!("{m} missing"));
    assert!(pos("shared-blocking") < pos("dispatch-rr") && pos("dispatch-rr") < pos("a-new-model"));
    assert!(svg.contains("3 runs merged"));
}

#[test]
fn redrawing_a_copy_gives_identical_files() {
    let a = Scratch::new("det-a");
    let b = Scratch::new("det-b");
    write_sweep(&a.0, &load_sweep());
    copy_dir(&a.0, &b.0);
    let da = draw_all(&a.0).unwrap();
    let db = draw_all(&b.0).unwrap();
    assert_eq!(names(&da), names(&db));
    for (ca, cb) in da.charts.iter().zip(&db.charts) {
        same_bytes(&ca.svg, &cb.svg);
        same_bytes(&ca.png, &cb.png);
        assert_eq!((&ca.title, &ca.caption), (&cb.title, &cb.caption));
    }
    // Drawing again over existing charts gives the same bytes too.
    let again = draw_all(&a.0).unwrap();
    for (ca, cb) in again.charts.iter().zip(&db.charts) {
        same_bytes(&ca.svg, &cb.svg);
    }
}

/// Compares two files, reporting where they first differ (not the bytes).
fn same_bytes(a: &Path, b: &Path) {
    let (x, y) = (fs::read(a).unwrap(), fs::read(b).unwrap());
    if x != y {
        let at = x
            .iter()
            .zip(&y)
            .position(|(p, q)| p != q)
            .unwrap_or(x.len().min(y.len()));
        let show = |v: &[u8]| String::from_utf8_lossy(&v[at.saturating_sub(40)..(at + 40).min(v.len())]).into_owned();
        panic!(
            "{} and {} differ at byte {at} (lengths {} and {}): {:?} vs {:?}",
            a.display(),
            b.display(),
            x.len(),
            y.len(),
            show(&x),
            show(&y)
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn a_sweep_with_no_finished_run_draws_nothing_and_says_why() {
    let s = Scratch::new("unstarted");
    fs::write(s.0.join("runs.csv"), "run_id,point,repetition,order,label,model,jain\n").unwrap();
    fs::write(s.0.join("aggregate.csv"), "point,label,model,n,jain_mean\n").unwrap();
    let drawn = draw_all(&s.0).unwrap();
    assert!(drawn.charts.is_empty(), "{:?}", names(&drawn));
    let skipped: Vec<&str> = drawn.skipped.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "workers",
            "shares",
            "jain-vs-load",
            "latency-spectrum",
            "phases",
            "share-over-time",
            "worker-latency",
            "queue-depth"
        ]
    );
    assert!(drawn.skipped.iter().all(|s| !s.1.is_empty()));
}

#[test]
fn redrawing_removes_stale_charts_and_keeps_other_files() {
    let s = Scratch::new("stale");
    write_run_dir(
        &s.0,
        &RunSpec {
            model: "reuseport",
            counts: vec![3, 4],
            base_us: 50,
        },
    );
    let charts = s.0.join("charts");
    fs::create_dir_all(&charts).unwrap();
    for f in [
        "latency-spectrum-rate-5pct.svg",
        "shares.png",
        "notes.txt",
        "my-own.svg",
    ] {
        fs::write(charts.join(f), "old").unwrap();
    }
    let drawn = draw_all(&s.0).unwrap();
    assert!(!charts.join("latency-spectrum-rate-5pct.svg").exists());
    assert!(!charts.join("shares.png").exists(), "shares is skipped for a run");
    assert!(charts.join("notes.txt").exists() && charts.join("my-own.svg").exists());
    for c in &drawn.charts {
        assert!(c.svg.is_file() && c.png.is_file());
    }
}

#[test]
fn an_empty_or_broken_dir_is_an_error_naming_what_is_wrong() {
    let s = Scratch::new("empty");
    let err = format!("{:#}", draw_all(&s.0).unwrap_err());
    assert!(err.contains("runs.csv") && err.contains("summary.csv"), "{err}");
    assert!(!s.0.join("charts").exists(), "nothing is written for nothing");
    let missing = s.0.join("no-such-dir");
    assert!(draw_all(&missing).is_err());
    fs::write(s.0.join("workers.csv"), "worker,accepted\n0,12\n1,twelve\n").unwrap();
    let err = format!("{:#}", draw_all(&s.0).unwrap_err());
    assert!(err.contains("workers.csv:3") && err.contains("accepted"), "{err}");
}

/// The SVG's text elements, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

/// The SVG's lines of more than two points, as `(stroke, points)`: the data
/// lines (dashes, grid lines and legend swatches have two points).
fn svg_data_lines(svg: &str) -> Vec<(String, usize)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") || n.has_tag_name("path"))
        .filter_map(|n| {
            let points = n.attribute("points").or(n.attribute("d"))?;
            let count = points.split_whitespace().count();
            (count > 2).then(|| (n.attribute("stroke").unwrap_or("").to_string(), count))
        })
        .collect()
}

#[test]
fn a_stalled_reuseport_worker_fills_its_own_queue() {
    let s = Scratch::new("queue");
    write_run_dir(
        &s.0,
        &RunSpec {
            model: "reuseport",
            counts: vec![120, 40, 130, 125],
            base_us: 90,
        },
    );
    let drawn = draw_all(&s.0).unwrap();
    let chart = drawn
        .charts
        .iter()
        .find(|c| c.name == "queue-depth")
        .unwrap_or_else(|| panic!("not drawn: {:?}", drawn.skipped));
    check_chart(chart);
    let svg = svg_text(&drawn, "queue-depth");
    // One line per listener, each with its 50 samples, in its own colour.
    let lines = svg_data_lines(&svg);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.iter().all(|(_, n)| *n == 50), "{lines:?}");
    let mut strokes: Vec<&str> = lines.iter().map(|(s, _)| s.as_str()).collect();
    strokes.sort();
    strokes.dedup();
    assert_eq!(strokes.len(), 4, "{lines:?}");
    let texts = svg_texts(&svg);
    for name in ["worker 0", "worker 1", "worker 2", "worker 3", "worker 1 stalled"] {
        assert!(texts.iter().any(|t| t == name), "legend lacks {name:?}: {texts:?}");
    }
    // The limit is one dashed line, named once for every listener.
    assert!(texts.iter().any(|t| t.starts_with("the limit, 128")), "{texts:?}");
    assert!(texts.iter().any(|t| t == "sampled every 10 ms"), "{texts:?}");
    // The caption names the full queue and the near-empty others.
    assert!(
        chart.caption.contains("worker 1's at 128 of its limit 128")
            && chart.caption.contains("the others held at most 2"),
        "{}",
        chart.caption
    );
    assert_eq!(chart.title, "Accept-queue depth per listening socket: reuseport");
}

#[test]
fn a_shared_listener_is_one_line_and_a_sweep_draws_its_first_run() {
    let s = Scratch::new("queue-shared");
    write_sweep(
        &s.0,
        &[PointSpec {
            model: "shared-epoll",
            rate: None,
            reps: vec![vec![263, 1018, 610, 1109], vec![300, 900, 700, 1000]],
        }],
    );
    // Only the first run's queue.csv is read: the second's is broken.
    fs::write(s.0.join("runs/p000-r01/queue.csv"), "t_ms,depth\nx,y\n").unwrap();
    let drawn = draw_all(&s.0).unwrap();
    let svg = svg_text(&drawn, "queue-depth");
    assert_eq!(svg_data_lines(&svg).len(), 1);
    let texts = svg_texts(&svg);
    assert!(texts.iter().any(|t| t == "shared listener"), "{texts:?}");
    // Its depth stays far below the limit: the axis fits the depths and
    // the legend gives the limit.
    assert!(
        texts.iter().any(|t| t.starts_with("limit 128: off the scale")),
        "{texts:?}"
    );
    let chart = drawn.charts.iter().find(|c| c.name == "queue-depth").unwrap();
    assert!(chart.caption.contains("(shared listener)"), "{}", chart.caption);
    // Without its queue.csv the first run's chart is skipped, with the reason.
    fs::remove_file(s.0.join("runs/p000-r00/queue.csv")).unwrap();
    let drawn = draw_all(&s.0).unwrap();
    assert!(!names(&drawn).contains(&"queue-depth"));
    assert!(skipped(&drawn, "queue-depth").unwrap().contains("no queue.csv"));
    assert!(
        !s.0.join("charts/queue-depth.svg").exists(),
        "the stale chart is removed"
    );
}

#[test]
fn a_run_without_queue_csv_or_phase_columns_skips_those_charts() {
    let s = Scratch::new("no-queue");
    let run = RunSpec {
        model: "reuseport",
        counts: vec![5, 6],
        base_us: 80,
    };
    write_run_dir(&s.0, &run);
    fs::remove_file(s.0.join("queue.csv")).unwrap();
    fs::write(
        s.0.join("summary.csv"),
        "model,workers,connections,jain,p99_us\nreuseport,2,11,0.99,400\n",
    )
    .unwrap();
    let drawn = draw_all(&s.0).unwrap();
    assert_eq!(
        names(&drawn),
        ["workers", "latency-spectrum", "share-over-time", "worker-latency"]
    );
    assert!(skipped(&drawn, "queue-depth").unwrap().contains("no queue.csv"));
    let why = skipped(&drawn, "phases").unwrap();
    assert!(why.contains("no phase column") && why.contains("summary.csv"), "{why}");
    // Columns there but every cell empty: skipped too, saying so.
    fs::write(
        s.0.join("summary.csv"),
        format!("model,workers,{PHASE_HEADER}\nreuseport,2,,,,,,\n"),
    )
    .unwrap();
    let drawn = draw_all(&s.0).unwrap();
    assert!(
        skipped(&drawn, "phases").unwrap().contains("empty"),
        "{:?}",
        drawn.skipped
    );
}

#[test]
fn phases_of_a_run_with_every_phase_draw_ten_bars() {
    let s = Scratch::new("phases-all");
    write_run_dir(
        &s.0,
        &RunSpec {
            model: "reuseport",
            counts: vec![50, 50],
            base_us: 100,
        },
    );
    fs::write(
        s.0.join("summary.csv"),
        "model,workers,connect_p50_us,connect_p99_us,queue_p50_us,queue_p99_us,service_p50_us,service_p99_us,ttfb_p50_us,ttfb_p99_us,total_p50_us,total_p99_us\n\
         reuseport,2,20,90,3,40,50,400,80,700,120,1500\n",
    )
    .unwrap();
    let drawn = draw_all(&s.0).unwrap();
    let chart = drawn.charts.iter().find(|c| c.name == "phases").unwrap();
    check_chart(chart);
    let svg = svg_text(&drawn, "phases");
    let texts = svg_texts(&svg);
    for name in [
        "connect: handshake",
        "queue: until accepted",
        "service: in the worker",
        "ttfb: to the first byte",
        "total (corrected)",
        "p50: lighter, left",
        "p99: darker, right",
    ] {
        assert!(texts.iter().any(|t| t == name), "legend lacks {name:?}: {texts:?}");
    }
    assert!(!texts.iter().any(|t| t.starts_with("left out")), "{texts:?}");
    // One group of ten bars, each with its value written on it.
    for v in ["20", "90", "3", "40", "50", "400", "80", "700", "120", "1,500"] {
        assert!(texts.iter().any(|t| t == v), "no bar labelled {v}: {texts:?}");
    }
    assert!(chart.caption.contains("the total p99 is 1,500 µs"), "{}", chart.caption);
}

#[test]
fn phases_of_a_load_sweep_are_one_chart_per_load_and_say_what_is_missing() {
    let s = Scratch::new("phases-sweep");
    write_sweep(&s.0, &load_sweep());
    let drawn = draw_all(&s.0).unwrap();
    let chart = drawn.charts.iter().find(|c| c.name == "phases-rate-50pct").unwrap();
    assert_eq!(chart.title, "Where the time goes: rate 50%");
    let texts = svg_texts(&svg_text(&drawn, "phases-rate-50pct"));
    // Every model but reuseport (which misses 50%) is a group.
    for m in ["shared-blocking", "shared-epoll", "epoll-exclusive", "dispatch-rr"] {
        assert!(texts.iter().any(|t| t == m), "{m}: {texts:?}");
    }
    assert!(!texts.iter().any(|t| t == "reuseport"), "{texts:?}");
    // The fixture's runs.csv has no queue or service columns. (Long legend
    // lines wrap.)
    let legend = texts.join(" ");
    assert!(legend.contains("left out, not recorded: queue, service"), "{legend}");
    assert!(legend.contains("each bar: mean over 1-2 runs"), "{legend}");
    // The mean over repetitions: shared-blocking at 50% is point 1, base
    // 150 µs, its two runs' total p99 (5 x base) 750 and 800; dispatch-rr
    // ran once there, base 700.
    assert!(
        chart.caption.contains("at rate 50%")
            && chart
                .caption
                .contains("lowest for shared-blocking (775 µs) and highest for dispatch-rr (3,500 µs)"),
        "{}",
        chart.caption
    );
    // Without phase columns in runs.csv (an older sweep) it is skipped.
    let runs = fs::read_to_string(s.0.join("runs.csv")).unwrap();
    let cut: String = runs
        .lines()
        .map(|l| l.split(',').take(12).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    fs::write(s.0.join("runs.csv"), cut).unwrap();
    let drawn = draw_all(&s.0).unwrap();
    assert!(!names(&drawn).iter().any(|n| n.starts_with("phases")));
    let why = skipped(&drawn, "phases").unwrap();
    assert!(why.contains("no phase column") && why.contains("runs.csv"), "{why}");
    assert!(
        !s.0.join("charts/phases-rate-50pct.svg").exists(),
        "stale phase charts are removed"
    );
}
