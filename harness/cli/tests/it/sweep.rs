//! End-to-end tests of `harness sweep`: the grid and its tidy data set,
//! aggregation, interruption and resume, validation of scenario files, and
//! the shipped scenarios.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::common::{harness, num, read_csv, scratch, serial, show, wait_until};

const SMALL: &str = r#"
name = "small"
description = "2 models x 2 concurrencies x 2 repetitions"
repetitions = 2
seed = 11
model = ["reuseport", "dispatch-rr"]
concurrency = [2, 16]
connections = 1500
"#;

fn write_scenario(name: &str, text: &str) -> PathBuf {
    let path = scratch(name).with_extension("toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn sweep(args: &[&str]) -> Output {
    harness().arg("sweep").args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_grid_gives_one_row_per_run_and_one_per_point() {
    let _g = serial();
    let file = write_scenario("grid", SMALL);
    let out = scratch("grid-out");
    let o = sweep(&[s(&file), "--out", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", show(&o));
    let runs = read_csv(&out.join("runs.csv"));
    assert_eq!(runs.len(), 8);
    assert!(runs
        .iter()
        .all(|r| r["conserved"] == "true" && r["completed"] == "1500"));
    let mut ids: Vec<&str> = runs.iter().map(|r| r["run_id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    // Shuffled: the rows are not in point order.
    let points: Vec<u64> = runs.iter().map(|r| r["point"].parse().unwrap()).collect();
    let mut sorted = points.clone();
    sorted.sort_unstable();
    assert_ne!(points, sorted, "runs went in grid order: {points:?}");
    assert_eq!(read_csv(&out.join("workers.csv")).len(), 32);
    let agg = read_csv(&out.join("aggregate.csv"));
    assert_eq!(agg.len(), 4);
    for row in &agg {
        assert_eq!(row["n"], "2");
        for f in ["conn_per_s", "jain", "p99_us"] {
            let (lo, mean, hi) = (
                num(row, &format!("{f}_ci_low")),
                num(row, &format!("{f}_mean")),
                num(row, &format!("{f}_ci_high")),
            );
            assert!(lo <= mean && mean <= hi, "{f}: {lo} <= {mean} <= {hi}");
        }
        // The mean is the mean of that point's runs.
        let own: Vec<f64> = runs
            .iter()
            .filter(|r| r["point"] == row["point"])
            .map(|r| num(r, "jain"))
            .collect();
        let mean = own.iter().sum::<f64>() / own.len() as f64;
        assert!((mean - num(row, "jain_mean")).abs() < 1e-3);
    }
    let series = read_csv(&out.join("timeseries.csv"));
    assert!(series.iter().all(|r| !r["run_id"].is_empty()));
    let record = std::fs::read_to_string(out.join("sweep.json")).unwrap();
    assert!(record.contains("\"shuffle_seed\": 11"), "{record}");
    // The same output folder again is refused, nothing overwritten.
    let again = sweep(&[s(&file), "--out", s(&out), "--quiet"]);
    assert_eq!(again.status.code(), Some(2), "{}", show(&again));
    assert_eq!(read_csv(&out.join("runs.csv")).len(), 8);
}

#[test]
fn a_killed_sweep_keeps_its_runs_and_resume_finishes_it() {
    let _g = serial();
    let text = SMALL
        .replace("repetitions = 2", "repetitions = 3")
        .replace("1500", "3000");
    let file = write_scenario("resume", &text);
    let out = scratch("resume-out");
    let mut child = harness()
        .args(["sweep", s(&file), "--out", s(&out), "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once three runs are recorded and workers.csv has caught up
    // (a condition polled with a bound, not a guessed time). Each file is
    // replaced whole, so what is read is always a complete file.
    let runs_csv = out.join("runs.csv");
    let workers_csv = out.join("workers.csv");
    let three = wait_until(Duration::from_secs(120), || {
        let n = if runs_csv.exists() {
            read_csv(&runs_csv).len()
        } else {
            0
        };
        n >= 3 && workers_csv.exists() && read_csv(&workers_csv).len() == 4 * n
    });
    sys::kill(child.id() as i32, libc::SIGKILL).expect("kill(2)");
    let _ = child.wait();
    assert!(three, "the sweep did not record three runs");
    let before = read_csv(&runs_csv);
    // Killed between the poll that saw three and the kill, a few
    // microseconds: the nine runs left (each thousands of connections)
    // cannot all finish in that time.
    assert!(
        before.len() >= 3 && before.len() < 12,
        "{} runs before the kill",
        before.len()
    );
    for r in &before {
        assert_eq!(r.len(), before[0].len(), "ragged runs.csv");
        assert!(out.join("runs").join(&r["run_id"]).join("summary.csv").is_file());
    }
    // The combined files are renamed into place one after another, runs.csv
    // first (export::write_atomic_group), so a kill that lands between two
    // renames of the next run leaves workers.csv one run behind runs.csv: the
    // relation that holds wherever the kill lands. (Exactly in step would
    // need runs.csv renamed last, and --resume dropping the rows of runs
    // that runs.csv does not list.)
    let workers = read_csv(&workers_csv).len();
    let n = before.len();
    assert!(
        workers == 4 * n || workers == 4 * (n - 1),
        "workers.csv ({workers} rows) out of step with runs.csv ({n} runs)"
    );

    let o = sweep(&["--resume", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("already complete"));
    let after = read_csv(&runs_csv);
    assert_eq!(after.len(), 12, "a resumed sweep has every run");
    let mut ids: Vec<&str> = after.iter().map(|r| r["run_id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 12, "a run ran twice");
    for old in &before {
        assert!(after.iter().any(|r| r == old), "a finished run's row changed");
    }
    assert_eq!(read_csv(&out.join("aggregate.csv")).len(), 4);

    // Resuming with another scenario is refused.
    let other = write_scenario("resume-other", &text.replace("3000", "2000"));
    let o = sweep(&[s(&other), "--resume", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("different scenario"));
}

#[test]
fn malformed_scenarios_are_refused_with_file_line_and_key() {
    let _g = serial();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("an # expect: line");
        let out = scratch("bad-out");
        let o = sweep(&[s(&f), "--out", s(&out)]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {}", f.display(), show(&o));
        assert_eq!(stderr.trim_end().lines().count(), 1, "{}: {stderr}", f.display());
        assert!(
            stderr.contains(expect.trim_end()),
            "{}: {stderr:?} lacks {expect:?}",
            f.display()
        );
        assert!(
            !out.exists(),
            "{}: a refused scenario wrote {}",
            f.display(),
            out.display()
        );
    }
}

#[test]
fn every_shipped_scenario_passes_dry_run() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let f = entry.unwrap().path();
        if f.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        n += 1;
        let o = sweep(&[s(&f), "--dry-run"]);
        assert!(o.status.success(), "{}: {}", f.display(), show(&o));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains("estimated time"), "{}: {stdout}", f.display());
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.starts_with('#'),
            "{}: no comment saying what question it answers",
            f.display()
        );
    }
    assert!(n >= 4, "{n} shipped scenarios");
}
