//! `harness report DIR`: a report a researcher can hand on, written from a
//! run's or a sweep's saved files alone.
//!
//! Two renderings of the same content: `REPORT.md` (charts linked as SVG
//! files) and a self-contained `report.html` (charts inlined as SVG). Both
//! hold the question, the environment from meta.json, the summary tables,
//! the seed comparison where the folder is the seed's experiment, and every
//! chart with one sentence on what it shows.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, Context};
use serde_json::Value;

use crate::plot::{self, Chart, Drawn};
use records::seed::SEED;
use records::stats;

/// A table of text cells, rendered as Markdown or HTML.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub caption: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(caption: &str, headers: &[&str]) -> Table {
        Table {
            caption: caption.to_string(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn markdown(&self) -> String {
        let cell = |c: &str| c.replace('|', "\\|");
        let mut s = format!("**{}**\n\n", self.caption);
        s.push_str(&format!(
            "| {} |\n",
            self.headers.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")
        ));
        s.push_str(&format!("|{}\n", "---|".repeat(self.headers.len())));
        for r in &self.rows {
            s.push_str(&format!(
                "| {} |\n",
                r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
            ));
        }
        s
    }

    pub fn html(&self) -> String {
        let mut s = format!("<table>\n<caption>{}</caption>\n<tr>", esc(&self.caption));
        for h in &self.headers {
            let _ = write!(s, "<th>{}</th>", esc(h));
        }
        s.push_str("</tr>\n");
        for r in &self.rows {
            s.push_str("<tr>");
            for c in r {
                let _ = write!(s, "<td>{}</td>", esc(c));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table>\n");
        s
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Rows of a CSV file, by column name.
type Rows = Vec<HashMap<String, String>>;

fn read_rows(path: &Path) -> anyhow::Result<Rows> {
    let t = records::Table::read(path)?.ok_or_else(|| anyhow!("reading {}: no such file", path.display()))?;
    let headers = t.headers();
    Ok((0..t.len())
        .map(|r| {
            headers
                .iter()
                .enumerate()
                .map(|(c, h)| (h.to_string(), t.str(r, c).to_string()))
                .collect()
        })
        .collect())
}

fn get<'a>(row: &'a HashMap<String, String>, key: &str) -> &'a str {
    row.get(key).map_or("", String::as_str)
}

/// A number as the report shows it: integers plain, others to 3 digits.
fn fmt_num(text: &str, digits: usize) -> String {
    match text.parse::<f64>() {
        Ok(v) if v.is_infinite() => "inf".into(),
        Ok(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Ok(v) => format!("{v:.digits$}"),
        Err(_) => text.to_string(),
    }
}

/// What the report says, before rendering.
pub struct Content {
    pub title: String,
    pub question: String,
    pub environment: Vec<(String, String)>,
    pub tables: Vec<Table>,
    pub charts: Vec<Chart>,
}

/// Reads `dir` and assembles the report's content around `charts`.
pub fn content(dir: &Path, charts: &[Chart]) -> anyhow::Result<Content> {
    let sweep = dir.join("runs.csv").is_file();
    let meta_path = if sweep {
        dir.join("sweep.json")
    } else {
        dir.join("meta.json")
    };
    let meta: Value =
        serde_json::from_slice(&std::fs::read(&meta_path).with_context(|| format!("reading {}", meta_path.display()))?)
            .with_context(|| format!("parsing {}", meta_path.display()))?;
    let env_meta = if sweep { &meta["meta"] } else { &meta };
    let environment = environment(env_meta);
    let (title, question, tables) = if sweep {
        sweep_content(dir, &meta)?
    } else if dir.join("summary.csv").is_file() {
        run_content(dir)?
    } else {
        return Err(anyhow!(
            "{} holds neither a run (summary.csv) nor a sweep (runs.csv)",
            dir.display()
        ));
    };
    Ok(Content {
        title,
        question,
        environment,
        tables,
        charts: charts.to_vec(),
    })
}

fn environment(meta: &Value) -> Vec<(String, String)> {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let mut env = vec![
        ("kernel".to_string(), s(&meta["kernel_release"])),
        (
            "CPU".to_string(),
            format!("{} x {}", s(&meta["cpu_count"]), s(&meta["cpu_model"])),
        ),
        (
            "harness".to_string(),
            format!("{} ({})", s(&meta["harness_version"]), s(&meta["git_revision"])),
        ),
        ("started (UTC)".to_string(), s(&meta["started_at_utc"])),
    ];
    if let Some(cmd) = meta["command_line"].as_array() {
        let words: Vec<String> = cmd.iter().map(s).collect();
        env.push(("command".to_string(), words.join(" ")));
    }
    if let Some(sysctls) = meta["sysctls"].as_object() {
        for (k, v) in sysctls {
            env.push((k.clone(), s(v)));
        }
    }
    env
}

fn run_content(dir: &Path) -> anyhow::Result<(String, String, Vec<Table>)> {
    let summary = read_rows(&dir.join("summary.csv"))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("{}: summary.csv has no row", dir.display()))?;
    let workers = read_rows(&dir.join("workers.csv"))?;
    let model = get(&summary, "model");
    let load = match get(&summary, "loop") {
        "open" => format!(
            "{} new connections/s ({} arrivals)",
            get(&summary, "rate"),
            get(&summary, "arrivals")
        ),
        _ => format!("{} connections in flight", get(&summary, "concurrency")),
    };
    let title = format!("{model}: {} workers, {load}", get(&summary, "workers"));
    let question = format!(
        "How does the `{model}` accept model spread {} connections over {} worker processes at {load}, and what does it cost in fairness, throughput and latency?",
        get(&summary, "completed"),
        get(&summary, "workers")
    );
    let mut t = Table::new("The run", &["figure", "value"]);
    for (label, key, digits) in [
        ("connections completed", "completed", 0),
        ("requests completed", "requests", 0),
        ("connections/s", "conn_per_s", 0),
        ("Jain's index", "jain", 3),
        ("coefficient of variation", "cov", 3),
        ("max/min", "max_min_ratio", 2),
        ("Gini", "gini", 3),
        ("top-1 share", "top1_share", 3),
        ("latency p50 (µs)", "p50_us", 0),
        ("latency p99 (µs)", "p99_us", 0),
        ("latency p99.9 (µs)", "p999_us", 0),
        ("uncorrected p99 (µs)", "uncorrected_p99_us", 0),
        ("worker context switches per connection", "switches_per_conn", 2),
        ("errors", "errors", 0),
        ("conserved", "conserved", 0),
    ] {
        t.rows
            .push(vec![label.to_string(), fmt_num(get(&summary, key), digits)]);
    }
    let mut w = Table::new(
        "Per worker",
        &[
            "worker",
            "pid",
            "accepted",
            "share",
            "requests",
            "spurious wakeups",
            "CPU ms",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
        ],
    );
    for r in &workers {
        w.rows.push(vec![
            get(r, "worker").into(),
            get(r, "pid").into(),
            get(r, "accepted").into(),
            fmt_num(get(r, "share"), 3),
            get(r, "requests").into(),
            get(r, "spurious_wakeups").into(),
            fmt_num(get(r, "cpu_ms"), 0),
            get(r, "p50_us").into(),
            get(r, "p99_us").into(),
            get(r, "p999_us").into(),
        ]);
    }
    let mut tables = vec![t, w];
    if let Some(k) = kernel_table(&summary) {
        tables.push(k);
    }
    Ok((title, question, tables))
}

/// The kernel's counters and the accept queues as summary.csv (and a
/// sweep's runs.csv) gives them: `(column, what it counts)`.
const KERNEL_COLUMNS: [(&str, &str); 15] = [
    (
        "kernel_listen_overflows",
        "listen overflows (TcpExt.ListenOverflows): a SYN or a handshake's last ACK found the accept queue full",
    ),
    (
        "kernel_listen_drops",
        "listen drops (TcpExt.ListenDrops): connections dropped at a listener, overflows included",
    ),
    (
        "kernel_syn_cookies_sent",
        "SYN cookies sent (TcpExt.SyncookiesSent): the SYN queue was full",
    ),
    (
        "kernel_reqq_full_drops",
        "SYNs dropped, request queue full (TcpExt.TCPReqQFullDrop)",
    ),
    (
        "kernel_syn_retrans",
        "SYN and SYN-ACK retransmits (TcpExt.TCPSynRetrans)",
    ),
    ("kernel_timeouts", "retransmit timeouts (TcpExt.TCPTimeouts)"),
    (
        "kernel_migrate_req_success",
        "requests migrated to another listener (TcpExt.TCPMigrateReqSuccess)",
    ),
    (
        "kernel_migrate_req_failure",
        "requests that could not be migrated (TcpExt.TCPMigrateReqFailure)",
    ),
    ("kernel_passive_opens", "passive opens (Tcp.PassiveOpens)"),
    ("kernel_active_opens", "active opens (Tcp.ActiveOpens)"),
    ("kernel_attempt_fails", "failed connection attempts (Tcp.AttemptFails)"),
    (
        "kernel_estab_resets",
        "resets of established connections (Tcp.EstabResets)",
    ),
    ("queue_max", "deepest accept queue (connections)"),
    ("queue_mean", "mean of the accept queues' summed depth (connections)"),
    ("queue_full_ms", "longest time an accept queue was at its limit (ms)"),
];

/// "The kernel's account" of a run: each kernel counter's change over the
/// measured load and the accept queues, for the columns summary.csv has
/// (an empty cell, a figure not read, shows as `-`); `None` when it has
/// none of them (a run from before they were recorded).
fn kernel_table(summary: &HashMap<String, String>) -> Option<Table> {
    let present: Vec<&(&str, &str)> = KERNEL_COLUMNS
        .iter()
        .filter(|(c, _)| summary.contains_key(*c))
        .collect();
    if present.is_empty() {
        return None;
    }
    let mut t = Table::new(
        "The kernel's account: each TCP counter's change over the measured load (the run's own in its own network namespace, else machine-wide), and the accept queues as sampled",
        &["counter", "change"],
    );
    for (col, label) in present {
        let value = match get(summary, col) {
            "" => "-".to_string(),
            v => fmt_num(v, 1),
        };
        t.rows.push(vec![label.to_string(), value]);
    }
    Some(t)
}

/// The kernel columns a sweep's table gives per point: `(column, header)`.
const SWEEP_KERNEL_COLUMNS: [(&str, &str); 5] = [
    ("kernel_listen_overflows", "listen overflows"),
    ("kernel_listen_drops", "listen drops"),
    ("kernel_syn_cookies_sent", "SYN cookies"),
    ("kernel_syn_retrans", "SYN retransmits"),
    ("queue_max", "deepest accept queue"),
];

/// Per point of a sweep, the mean over its complete runs of the kernel
/// columns runs.csv has; `None` when it has none of them.
fn sweep_kernel_table(runs: &Rows, aggregate: &Rows) -> Option<Table> {
    let present: Vec<&(&str, &str)> = SWEEP_KERNEL_COLUMNS
        .iter()
        .filter(|(c, _)| runs.iter().any(|r| r.contains_key(*c)))
        .collect();
    if present.is_empty() {
        return None;
    }
    let mut headers = vec!["point", "n"];
    headers.extend(present.iter().map(|(_, h)| *h));
    let mut t = Table::new(
        "The kernel's account per point: the mean over repetitions of each counter's change over the measured load and of the deepest accept queue (`-`: not read)",
        &headers,
    );
    for row in aggregate {
        let point = get(row, "point");
        let of_point: Vec<&HashMap<String, String>> = runs
            .iter()
            .filter(|r| get(r, "point") == point && get(r, "complete") != "false")
            .collect();
        let mut cells = vec![
            match get(row, "label") {
                "" => get(row, "model").to_string(),
                l => l.to_string(),
            },
            of_point.len().to_string(),
        ];
        for (col, _) in &present {
            let values: Vec<f64> = of_point.iter().filter_map(|r| get(r, col).parse().ok()).collect();
            cells.push(if values.is_empty() {
                "-".into()
            } else {
                fmt_num(&(values.iter().sum::<f64>() / values.len() as f64).to_string(), 1)
            });
        }
        t.rows.push(cells);
    }
    Some(t)
}

/// The scenario's leading comment: the question it answers.
fn scenario_question(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("scenario.toml")).ok()?;
    let lines: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .collect();
    (!lines.is_empty()).then(|| lines.join(" "))
}

fn sweep_content(dir: &Path, record: &Value) -> anyhow::Result<(String, String, Vec<Table>)> {
    let name = record["name"].as_str().unwrap_or("sweep");
    let description = record["description"].as_str().unwrap_or("");
    let title = format!("{name}: {description}");
    let question = scenario_question(dir).unwrap_or_else(|| description.to_string());
    let runs = read_rows(&dir.join("runs.csv"))?;
    let aggregate = read_rows(&dir.join("aggregate.csv"))?;
    let mut tables = Vec::new();

    let mut agg = Table::new(
        "Per grid point (mean over repetitions, 95% confidence interval in brackets)",
        &["point", "n", "connections/s", "Jain's index", "max/min", "p99 µs"],
    );
    let ci = |row: &HashMap<String, String>, f: &str, digits: usize| {
        let mean = fmt_num(get(row, &format!("{f}_mean")), digits);
        match (get(row, &format!("{f}_ci_low")), get(row, &format!("{f}_ci_high"))) {
            ("", _) | (_, "") => mean,
            (lo, hi) => format!("{mean} [{}, {}]", fmt_num(lo, digits), fmt_num(hi, digits)),
        }
    };
    for row in &aggregate {
        let label = match get(row, "label") {
            "" => get(row, "model").to_string(),
            l => l.to_string(),
        };
        agg.rows.push(vec![
            label,
            get(row, "n").into(),
            ci(row, "conn_per_s", 0),
            ci(row, "jain", 3),
            fmt_num(get(row, "max_min_ratio_mean"), 2),
            fmt_num(get(row, "p99_us_mean"), 0),
        ]);
    }
    tables.push(agg);

    if aggregate.iter().any(|row| !get(row, "slow_share_mean").is_empty()) {
        let mut slow = Table::new(
            "The slowed worker: its share of the connections beside its fair share, and the latency everyone saw",
            &["point", "slow worker's share", "fair share", "p99 µs", "p99.9 µs"],
        );
        for row in &aggregate {
            let workers: f64 = get(row, "workers").parse().unwrap_or(4.0);
            slow.rows.push(vec![
                match get(row, "label") {
                    "" => get(row, "model").to_string(),
                    l => l.to_string(),
                },
                ci(row, "slow_share", 3),
                format!("{:.3}", 1.0 / workers),
                fmt_num(get(row, "p99_us_mean"), 0),
                fmt_num(get(row, "p999_us_mean"), 0),
            ]);
        }
        tables.push(slow);
    }

    if let Some(k) = sweep_kernel_table(&runs, &aggregate) {
        tables.push(k);
    }

    if name == "seed-table" {
        let workers = read_rows(&dir.join("workers.csv"))?;
        let mut seed = Table::new(
            "The seed's table beside each model under the same load (first repetition)",
            &[
                "model",
                "connections per worker",
                "Jain's index",
                "max/min",
                "connections/s",
            ],
        );
        let join = |c: &[u64]| c.iter().map(u64::to_string).collect::<Vec<_>>().join(" / ");
        seed.rows.push(vec![
            "seed (Node.js, the article)".into(),
            join(&SEED),
            stats::show(stats::jain(&SEED), 3),
            stats::show(stats::max_min_ratio(&SEED), 2),
            "-".into(),
        ]);
        for run in runs.iter().filter(|r| get(r, "repetition") == "0") {
            let id = get(run, "run_id");
            let counts: Vec<u64> = workers
                .iter()
                .filter(|w| get(w, "run_id") == id)
                .filter_map(|w| get(w, "accepted").parse().ok())
                .collect();
            seed.rows.push(vec![
                get(run, "model").into(),
                join(&counts),
                fmt_num(get(run, "jain"), 3),
                fmt_num(get(run, "max_min_ratio"), 2),
                fmt_num(get(run, "conn_per_s"), 0),
            ]);
        }
        tables.push(seed);
    }

    // Runs with injected faults (each has a faults.csv): what was lost.
    let faulted = |r: &HashMap<String, String>| dir.join("runs").join(get(r, "run_id")).join("faults.csv").exists();
    if runs.iter().any(faulted) {
        let mut lost = Table::new(
            "Connections lost during the injected faults (kills, reloads), per point: median over repetitions [min, max], and the classes seen",
            &["point", "n", "failed", "reset", "timeout", "refused", "other"],
        );
        let mut points: Vec<(u64, String)> = runs
            .iter()
            .filter(|r| faulted(r))
            .map(|r| (get(r, "point").parse().unwrap_or(0), get(r, "label").to_string()))
            .collect();
        points.sort();
        points.dedup();
        for (_, label) in points {
            let of = |col: &str| -> Vec<u64> {
                let mut v: Vec<u64> = runs
                    .iter()
                    .filter(|r| faulted(r) && get(r, "label") == label)
                    .filter_map(|r| get(r, col).parse().ok())
                    .collect();
                v.sort_unstable();
                v
            };
            let spread = |v: &[u64]| match v {
                [] => "-".to_string(),
                [one] => one.to_string(),
                _ => format!("{} [{}, {}]", v[v.len() / 2], v[0], v[v.len() - 1]),
            };
            let sum_of = |cols: &[&str]| -> Vec<u64> {
                let parts: Vec<Vec<u64>> = cols.iter().map(|c| of(c)).collect();
                (0..parts[0].len())
                    .map(|i| parts.iter().map(|p| p.get(i).copied().unwrap_or(0)).sum())
                    .collect()
            };
            let failed = of("errors");
            lost.rows.push(vec![
                label.clone(),
                failed.len().to_string(),
                spread(&failed),
                spread(&of("err_reset")),
                spread(&of("err_timeout")),
                spread(&of("err_refused")),
                spread(&sum_of(&["err_malformed", "err_other", "err_addr_not_available"])),
            ]);
        }
        tables.push(lost);
    }

    if let Some(caps) = record["capacities"].as_object().filter(|c| !c.is_empty()) {
        let mut t = Table::new(
            "Measured capacity (saturated closed loop), the base of percentage rates",
            &["model, workers, requests per connection", "connections/s"],
        );
        for (k, v) in caps {
            t.rows
                .push(vec![k.clone(), v.as_f64().map_or("-".into(), |c| format!("{c:.0}"))]);
        }
        tables.push(t);
    }
    let failed = runs.iter().filter(|r| get(r, "conserved") != "true").count();
    let cut = runs.iter().filter(|r| get(r, "complete") == "false").count();
    let mut t = Table::new("Runs", &["figure", "value"]);
    t.rows.push(vec!["runs".into(), runs.len().to_string()]);
    if cut > 0 {
        t.rows.push(vec![
            "runs cut short by a signal (complete=false; `harness sweep --resume` runs them again)".into(),
            cut.to_string(),
        ]);
    }
    t.rows
        .push(vec!["runs whose conservation check failed".into(), failed.to_string()]);
    t.rows.push(vec![
        "shuffle seed".into(),
        record["shuffle_seed"].as_u64().map_or("-".into(), |s| s.to_string()),
    ]);
    tables.push(t);
    Ok((title, question, tables))
}

/// REPORT.md: charts linked by relative path.
pub fn markdown(c: &Content, dir: &Path) -> String {
    let mut s = format!(
        "# {}\n\n## The question\n\n{}\n\n## Environment\n\n",
        c.title, c.question
    );
    s.push_str("| | |\n|---|---|\n");
    for (k, v) in &c.environment {
        let _ = writeln!(s, "| {} | {} |", k, v.replace('|', "\\|"));
    }
    s.push_str("\n## Results\n\n");
    for t in &c.tables {
        s.push_str(&t.markdown());
        s.push('\n');
    }
    if !c.charts.is_empty() {
        s.push_str("## Charts\n\n");
    }
    for chart in &c.charts {
        let rel = chart.svg.strip_prefix(dir).unwrap_or(&chart.svg);
        let _ = write!(
            s,
            "### {}\n\n![{}]({})\n\n{}\n\n",
            chart.title,
            chart.title,
            rel.display(),
            chart.caption
        );
    }
    s
}

/// report.html: one file, charts inlined as SVG.
pub fn html(c: &Content) -> anyhow::Result<String> {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{}\n</style>\n</head>\n<body>\n<h1>{}</h1>\n<h2>The question</h2>\n<p>{}</p>\n<h2>Environment</h2>\n<table>\n",
        esc(&c.title),
        CSS,
        esc(&c.title),
        esc(&c.question)
    );
    for (k, v) in &c.environment {
        let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    s.push_str("</table>\n<h2>Results</h2>\n");
    for t in &c.tables {
        s.push_str(&t.html());
    }
    if !c.charts.is_empty() {
        s.push_str("<h2>Charts</h2>\n");
    }
    for chart in &c.charts {
        let svg = std::fs::read_to_string(&chart.svg).with_context(|| format!("reading {}", chart.svg.display()))?;
        let svg = match svg.find("<svg") {
            Some(i) => &svg[i..],
            None => return Err(anyhow!("{} is not an SVG", chart.svg.display())),
        };
        let _ = write!(
            s,
            "<figure id=\"{}\">\n<h3>{}</h3>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
            esc(&chart.name),
            esc(&chart.title),
            svg,
            esc(&chart.caption)
        );
    }
    s.push_str("</body>\n</html>\n");
    Ok(s)
}

const CSS: &str = "body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
caption { font-weight: bold; text-align: left; padding: 0.3em 0; }
figure { margin: 2em 0; }
figure svg { max-width: 100%; height: auto; }";

/// Draws every chart `dir` supports and writes REPORT.md and report.html.
pub fn write(dir: &Path) -> anyhow::Result<Drawn> {
    write_until(dir, &|| false)
}

/// [`write()`], asking `stop` before each chart (see
/// [`plot::draw_all_until`]); once it says yes the report is not written,
/// so an earlier REPORT.md and report.html stay whole.
pub fn write_until(dir: &Path, stop: &dyn Fn() -> bool) -> anyhow::Result<Drawn> {
    let drawn = plot::draw_all_until(dir, stop)?;
    if drawn.interrupted() {
        return Ok(drawn);
    }
    let c = content(dir, &drawn.charts)?;
    records::write_atomic(dir, "REPORT.md", markdown(&c, dir).as_bytes())?;
    records::write_atomic(dir, "report.html", html(&c)?.as_bytes())?;
    Ok(drawn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_and_escape() {
        let mut t = Table::new("Caps <b>", &["a", "b|c"]);
        t.rows.push(vec!["1".into(), "x & y".into()]);
        assert_eq!(
            t.markdown(),
            "**Caps <b>**\n\n| a | b\\|c |\n|---|---|\n| 1 | x & y |\n"
        );
        assert_eq!(
            t.html(),
            "<table>\n<caption>Caps &lt;b&gt;</caption>\n<tr><th>a</th><th>b|c</th></tr>\n<tr><td>1</td><td>x &amp; y</td></tr>\n</table>\n"
        );
    }

    fn row(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_kernel_account_of_a_run_lists_the_columns_it_has() {
        assert_eq!(kernel_table(&row(&[("model", "reuseport"), ("jain", "1")])), None);
        let t = kernel_table(&row(&[
            ("kernel_listen_overflows", "12"),
            ("kernel_syn_retrans", ""),
            ("queue_mean", "3.26"),
        ]))
        .unwrap();
        assert!(t.caption.starts_with("The kernel's account"), "{}", t.caption);
        assert_eq!(t.headers, ["counter", "change"]);
        let cells: Vec<(&str, &str)> = t.rows.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
        assert_eq!(cells.len(), 3);
        assert!(cells[0].0.starts_with("listen overflows") && cells[0].1 == "12");
        assert!(cells[1].0.starts_with("SYN and SYN-ACK retransmits") && cells[1].1 == "-");
        assert!(cells[2].0.starts_with("mean of the accept queues") && cells[2].1 == "3.3");
    }

    #[test]
    fn the_kernel_account_of_a_sweep_is_a_mean_per_point_over_complete_runs() {
        let aggregate = vec![
            row(&[("point", "0"), ("label", "model=reuseport"), ("model", "reuseport")]),
            row(&[("point", "1"), ("label", ""), ("model", "shared-epoll")]),
        ];
        let runs = vec![
            row(&[
                ("point", "0"),
                ("complete", "true"),
                ("kernel_listen_overflows", "10"),
                ("queue_max", "128"),
            ]),
            row(&[
                ("point", "0"),
                ("complete", "true"),
                ("kernel_listen_overflows", "15"),
                ("queue_max", "64"),
            ]),
            // Cut short: left out.
            row(&[
                ("point", "0"),
                ("complete", "false"),
                ("kernel_listen_overflows", "900"),
                ("queue_max", "1"),
            ]),
            row(&[
                ("point", "1"),
                ("complete", "true"),
                ("kernel_listen_overflows", ""),
                ("queue_max", "3"),
            ]),
        ];
        assert_eq!(sweep_kernel_table(&vec![row(&[("point", "0")])], &aggregate), None);
        let t = sweep_kernel_table(&runs, &aggregate).unwrap();
        assert_eq!(t.headers, ["point", "n", "listen overflows", "deepest accept queue"]);
        assert_eq!(
            t.rows,
            [["model=reuseport", "2", "12.5", "96"], ["shared-epoll", "1", "-", "3"]]
        );
    }

    #[test]
    fn numbers_format_for_reading() {
        assert_eq!(fmt_num("12", 3), "12");
        assert_eq!(fmt_num("0.73025", 3), "0.730");
        assert_eq!(fmt_num("inf", 2), "inf");
        assert_eq!(fmt_num("", 2), "");
        assert_eq!(fmt_num("true", 0), "true");
    }
}
