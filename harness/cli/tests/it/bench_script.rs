//! The side-by-side benchmark (`scripts/bench/bench.sh`) runs end to end on
//! a tiny budget and writes well-formed CSVs. What it measures is a
//! benchmark, not a test: only the shape and sanity of its output are
//! checked here.

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;

#[test]
fn bench_script_runs_on_a_tiny_budget_and_writes_its_csvs() {
    let _g = serial();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let harness_bin = PathBuf::from(env!("CARGO_BIN_EXE_harness"));
    let loadgen_bin = harness_bin.with_file_name("loadgen");
    assert!(
        loadgen_bin.exists(),
        "{} is built with the workspace",
        loadgen_bin.display()
    );
    let out = scratch("bench-script");
    let o = Command::new("bash")
        .arg(root.join("scripts/bench/bench.sh"))
        .args(["1", "1"])
        .arg(&out)
        .env("HARNESS_BIN", &harness_bin)
        .env("LOADGEN_BIN", &loadgen_bin)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));

    let samples = read_csv(&out.join("bench.csv"));
    let measures: Vec<&str> = samples.iter().map(|r| r["measure"].as_str()).collect();
    for m in [
        "wrk",
        "loadgen",
        "loadgen-piggyback",
        "nginx-reuseport",
        "harness-reuseport",
        "no-record",
        "record",
    ] {
        assert_eq!(
            measures.iter().filter(|x| **x == m).count(),
            1,
            "{m} once per pair: {measures:?}"
        );
    }
    assert_eq!(
        measures.iter().filter(|x| x.starts_with("model:")).count(),
        9,
        "{measures:?}"
    );
    // A rate was measured for each (how high is the machine's business: a
    // benchmark, not a test).
    let rate = |m: &str| -> f64 {
        let r = samples.iter().find(|r| r["measure"] == m).unwrap();
        r["conn_per_s"].parse().unwrap_or_else(|_| panic!("{r:?}"))
    };
    for r in &samples {
        assert_eq!(r["pair"], "0");
        let v = rate(&r["measure"]);
        assert!(v.is_finite() && v > 0.0, "{r:?}: nothing measured");
    }

    let ratios = read_csv(&out.join("ratios.csv"));
    let names: Vec<&str> = ratios.iter().map(|r| r["ratio"].as_str()).collect();
    assert_eq!(
        names,
        [
            "loadgen/wrk",
            "loadgen --piggyback-ack/wrk",
            "reuseport fleet/nginx",
            "dispatch-rr/reuseport",
            "recording on/off"
        ]
    );
    for r in &ratios {
        let med: f64 = r["median"].parse().unwrap();
        // With one pair, the ratio is that pair's: a / b of the samples
        // (awk prints 6 significant digits).
        let want = rate(&r["a"]) / rate(&r["b"]);
        assert!((med - want).abs() <= 1e-5 * want, "{r:?}: {med} is not {want}");
        assert_eq!(r["median"], r["min"], "one pair: median = min = max");
        // A number, or "-" for a ratio shown for information.
        assert!(r["target"] == "-" || r["target"].parse::<f64>().is_ok(), "{r:?}");
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("loadgen/wrk") && stdout.contains(">= 1.25"), "{stdout}");
    let _ = std::fs::remove_dir_all(out);
}
