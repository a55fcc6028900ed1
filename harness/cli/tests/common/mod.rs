//! Helpers shared by the integration tests: running the `harness` binary,
//! reading its CSVs, and the lock that keeps distribution-reading tests from
//! running beside each other on two cores.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harness"))
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `harness run` with `args` into a fresh directory; returns the output
/// and the directory.
pub fn run(name: &str, args: &[&str]) -> (Output, PathBuf) {
    let out = scratch(name);
    let output = harness()
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("harness runs");
    (output, out)
}

/// A CSV file as rows of column -> value.
pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().expect("header").split(',').map(String::from).collect();
    lines
        .map(|l| header.iter().cloned().zip(l.split(',').map(String::from)).collect())
        .collect()
}

pub fn col(rows: &[HashMap<String, String>], name: &str) -> Vec<u64> {
    rows.iter()
        .map(|r| r[name].parse().unwrap_or_else(|_| panic!("{name}={:?}", r[name])))
        .collect()
}

pub fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The single row of a run's summary.csv.
pub fn summary(dir: &Path) -> HashMap<String, String> {
    read_csv(&dir.join("summary.csv")).remove(0)
}

/// A numeric field of a CSV row.
pub fn num(row: &HashMap<String, String>, name: &str) -> f64 {
    row[name]
        .parse()
        .unwrap_or_else(|_| panic!("{name}={:?} is not a number", row[name]))
}

/// Pids of the direct children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The one-letter state of `pid` (R, S, T, Z ...), if it exists.
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.split_whitespace().next()?.chars().next()
}

/// Whether `pid` is a live process (a zombie awaiting its reaper is not).
pub fn alive(pid: u32) -> bool {
    !matches!(state(pid), Some('Z') | Some('X') | None)
}
