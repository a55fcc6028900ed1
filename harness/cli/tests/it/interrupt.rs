//! The harness under faults of its own: SIGINT and SIGTERM mid-sweep and
//! mid-run (caught: the run ends early, its files say `complete=false`, the
//! fleet is torn down, exit 128 + the signal), SIGKILL mid-sweep (no
//! process left, no half-written CSV), an open-file limit too small for the
//! concurrency, and a disk that fills up under `--out`.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::{children, harness, scratch, serial};

/// Three runs of 2 s, so a signal can land in the middle of the second.
const THREE_RUNS: &str = r#"
name = "interrupt"
description = "3 runs of 2 s"
repetitions = 3
seed = 5
model = "reuseport"
workers = 2
concurrency = 4
duration = "2s"
"#;

fn write_scenario(name: &str, text: &str) -> PathBuf {
    let path = scratch(name).with_extension("toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn signal(pid: u32, sig: i32) {
    sys::kill(pid as i32, sig).expect("kill(2)");
}

/// Waits at most `limit` for `child` to exit; kills it and fails otherwise.
fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the harness did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    text
}

/// Field 22 of /proc/PID/stat: when the process started, so that a pid
/// the kernel has given to another process since is not mistaken for ours.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.split_whitespace().nth(19)?.parse().ok()
}

/// The processes seen as children of the harness, with their start times.
#[derive(Default)]
struct Seen(Vec<(u32, u64)>);

impl Seen {
    fn look(&mut self, harness: u32) -> usize {
        let now = children(harness);
        for &pid in &now {
            if let Some(t) = start_time(pid) {
                if !self.0.contains(&(pid, t)) {
                    self.0.push((pid, t));
                }
            }
        }
        now.len()
    }

    /// Those still alive (a zombie is not).
    fn alive(&self) -> Vec<u32> {
        self.0
            .iter()
            .filter(|(pid, t)| start_time(*pid) == Some(*t) && crate::common::alive(*pid))
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// Asserts that every one is gone within 2 s.
    fn assert_gone(&self, what: &str) {
        assert!(!self.0.is_empty(), "{what}: no worker was ever seen");
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.alive().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(self.alive(), Vec::<u32>::new(), "{what}: workers outlived the harness");
    }
}

/// A CSV parsed strictly (the same number of fields on every line), as
/// column -> value rows.
fn parse_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r
        .headers()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap_or_else(|e| panic!("{} is not well-formed: {e}", path.display()));
            header
                .iter()
                .map(String::from)
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// No temporary file (`.NAME.tmp`) anywhere under `dir`.
fn assert_no_temporaries(dir: &Path) {
    let temps: Vec<_> = files(dir)
        .into_iter()
        .filter(|p| name_of(p).ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}

/// Starts the three-run sweep into `out` and returns once the first run's
/// row is in runs.csv and the second run's fleet is up and loaded.
fn sweep_into_second_run(out: &Path, seen: &mut Seen) -> Child {
    let file = write_scenario(&format!("{}-scn", name_of(out)), THREE_RUNS);
    let mut child = spawn(
        harness()
            .arg("sweep")
            .arg(&file)
            .arg("--out")
            .arg(out)
            .arg("--no-plots"),
    );
    let pid = child.id();
    let runs = out.join("runs.csv");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        seen.look(pid);
        if runs.is_file() && !parse_csv(&runs).is_empty() {
            break;
        }
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no run finished within 15 s: {}", stderr_of(&mut child));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The second run's fleet: the first one is gone once its row is written
    // (bounded: go on without it after 3 s).
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && seen.look(pid) < 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    seen.look(pid);
    child
}

/// SIGINT or SIGTERM in the middle of the second run of three.
fn interrupted_sweep(sig: i32, code: i32, label: &str) -> (PathBuf, String) {
    let out = scratch(label);
    let mut seen = Seen::default();
    let mut child = sweep_into_second_run(&out, &mut seen);
    signal(child.id(), sig);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(code), "{stderr}");
    seen.assert_gone(label);

    let runs = parse_csv(&out.join("runs.csv"));
    let complete: Vec<&str> = runs.iter().map(|r| r["complete"].as_str()).collect();
    assert_eq!(
        complete.iter().filter(|c| **c == "false").count(),
        1,
        "one run was cut short: {complete:?}"
    );
    assert!(complete.iter().filter(|c| **c == "true").count() >= 1, "{complete:?}");
    assert_eq!(complete.len(), 2, "{complete:?}");
    let cut = runs.iter().find(|r| r["complete"] == "false").unwrap();
    assert!(
        stderr.contains(&format!("run {} was cut short", cut["run_id"])),
        "{stderr}"
    );
    let name = if sig == libc::SIGINT { "SIGINT" } else { "SIGTERM" };
    assert!(stderr.contains(&format!("interrupted by {name}")), "{stderr}");
    assert!(
        stderr.contains(&format!("harness sweep --resume {}", out.display())),
        "{stderr}"
    );
    assert_eq!(parse_csv(&out.join("workers.csv")).len(), 2 * runs.len());
    let series = parse_csv(&out.join("timeseries.csv"));
    assert!(series
        .iter()
        .all(|r| runs.iter().any(|run| run["run_id"] == r["run_id"])));
    // The cut run's own folder says so too.
    let own = parse_csv(&out.join("runs").join(&cut["run_id"]).join("summary.csv"));
    assert_eq!(own[0]["complete"], "false");
    // Its figures stay out of the aggregate: n counts complete runs only.
    let agg = parse_csv(&out.join("aggregate.csv"));
    assert_eq!(agg[0]["n"], "1");
    assert_no_temporaries(&out);
    (out, cut["run_id"].clone())
}

#[test]
fn sigint_mid_sweep_keeps_finished_runs_marks_the_cut_one_and_resume_reruns_it() {
    let _g = serial();
    let (out, cut) = interrupted_sweep(libc::SIGINT, 130, "sigint-sweep");
    let mut resume = spawn(harness().args(["sweep", "--quiet", "--no-plots", "--resume"]).arg(&out));
    let status = wait_exit(&mut resume, Duration::from_secs(60));
    assert!(status.success(), "{}", stderr_of(&mut resume));
    let runs = parse_csv(&out.join("runs.csv"));
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r["complete"] == "true"), "{runs:?}");
    assert!(runs.iter().any(|r| r["run_id"] == cut), "{cut} ran again");
    assert_eq!(parse_csv(&out.join("workers.csv")).len(), 6);
    assert_eq!(parse_csv(&out.join("aggregate.csv"))[0]["n"], "3");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn sigterm_mid_sweep_exits_143_with_well_formed_files() {
    let _g = serial();
    let (out, _) = interrupted_sweep(libc::SIGTERM, 143, "sigterm-sweep");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn sigkill_mid_sweep_leaves_no_worker_and_no_half_written_csv() {
    let _g = serial();
    let out = scratch("sigkill-sweep");
    let mut seen = Seen::default();
    let mut child = sweep_into_second_run(&out, &mut seen);
    signal(child.id(), libc::SIGKILL);
    let status = wait_exit(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), None, "killed");
    seen.assert_gone("SIGKILL");
    let csvs: Vec<PathBuf> = files(&out)
        .into_iter()
        .filter(|p| name_of(p).ends_with(".csv"))
        .collect();
    assert!(csvs.len() >= 4, "{csvs:?}");
    for f in &csvs {
        parse_csv(f);
    }
    let runs = parse_csv(&out.join("runs.csv"));
    assert!(!runs.is_empty());
    assert!(runs.iter().all(|r| r["complete"] == "true"), "{runs:?}");
    let _ = std::fs::remove_dir_all(out);
}

/// `harness run` for 30 s, signalled once its fleet has served for 0.5 s;
/// with `group`, the harness leads a process group of its own and the
/// signals go to the whole group, as a terminal sends a Ctrl-C.
fn signalled_run(label: &str, signals: &[i32], group: bool) -> (PathBuf, ExitStatus, String, Seen) {
    use std::os::unix::process::CommandExt;
    let out = scratch(label);
    let mut cmd = harness();
    if group {
        cmd.process_group(0);
    }
    let mut child = spawn(
        cmd.args([
            "run",
            "--model",
            "reuseport",
            "--workers",
            "2",
            "--concurrency",
            "4",
            "--duration",
            "30s",
            "--out",
        ])
        .arg(&out),
    );
    let pid = child.id();
    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.look(pid) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    seen.look(pid);
    for &sig in signals {
        let target = if group { -(pid as i32) } else { pid as i32 };
        sys::kill(target, sig).expect("kill(2)");
    }
    let status = wait_exit(&mut child, Duration::from_secs(10));
    let stderr = stderr_of(&mut child);
    seen.assert_gone(label);
    (out, status, stderr, seen)
}

#[test]
fn sigint_mid_run_writes_its_files_marked_incomplete_and_exits_130() {
    let _g = serial();
    let (out, status, stderr, _) = signalled_run("sigint-run", &[libc::SIGINT], false);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    let s = parse_csv(&out.join("summary.csv"));
    assert_eq!(s[0]["complete"], "false");
    assert!(s[0]["completed"].parse::<u64>().unwrap() > 0, "{s:?}");
    assert!(
        s[0]["duration_s"].parse::<f64>().unwrap() < 10.0,
        "the load stopped early"
    );
    assert_eq!(parse_csv(&out.join("workers.csv")).len(), 2);
    assert!(!parse_csv(&out.join("timeseries.csv")).is_empty());
    assert!(out.join("meta.json").is_file() && out.join("histograms.hlog").is_file());
    assert_no_temporaries(&out);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_second_sigint_ends_the_harness_at_once_and_leaves_no_worker() {
    let _g = serial();
    // Two signals back to back: the first is caught, the second (if it is
    // not merged with the first while pending) takes the default action.
    let (out, status, stderr, _) = signalled_run("double-sigint", &[libc::SIGINT, libc::SIGINT], false);
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.code() == Some(130) || status.signal() == Some(libc::SIGINT),
        "{status:?} {stderr}"
    );
    for f in files(&out).into_iter().filter(|p| name_of(p) == "summary.csv") {
        parse_csv(&f);
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn ctrl_c_at_a_terminal_stops_the_run_without_losing_a_connection() {
    let _g = serial();
    // The workers get the SIGINT too, and ignore it: the harness lets the
    // connections in flight finish and then stops the fleet itself.
    let (out, status, stderr, _) = signalled_run("ctrl-c", &[libc::SIGINT], true);
    assert_eq!(status.code(), Some(130), "{stderr}");
    let s = parse_csv(&out.join("summary.csv"));
    assert_eq!(
        (
            s[0]["complete"].as_str(),
            s[0]["conserved"].as_str(),
            s[0]["errors"].as_str()
        ),
        ("false", "true", "0"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(out);
}

/// The hard limit of open files of this process (the harness inherits it).
fn hard_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    line.split_whitespace().nth(4).unwrap().parse().unwrap()
}

#[test]
fn a_concurrency_beyond_the_hard_open_file_limit_is_refused_in_one_line() {
    let hard = hard_nofile();
    let concurrency = (hard + 1).to_string();
    let out = scratch("nofile");
    let o = harness()
        .args(["run", "--model", "reuseport", "--connections", "10", "--concurrency"])
        .arg(&concurrency)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    for needle in [
        format!("--concurrency {concurrency}"),
        "RLIMIT_NOFILE".to_string(),
        format!("at most {hard}"),
    ] {
        assert!(stderr.contains(&needle), "{stderr:?} lacks {needle:?}");
    }
    assert!(!out.exists(), "a refused run wrote {}", out.display());
}

/// A tmpfs of 200 KiB mounted on a fresh directory, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(name: &str) -> Option<SmallDisk> {
        if !crate::common::needs(crate::common::is_root(), "root (to mount a small tmpfs)") {
            return None;
        }
        let dir = scratch(name);
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=200k", "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !crate::common::needs(ok, "a tmpfs mount") {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_stops_the_sweep_with_one_line_and_keeps_earlier_runs() {
    let _g = serial();
    let Some(disk) = SmallDisk::mount("small-disk") else {
        return;
    };
    // About 50 KiB per run (a 10 ms interval makes long logs): the disk
    // fills during the third or fourth run.
    let text = THREE_RUNS
        .replace("repetitions = 3", "repetitions = 10")
        .replace("duration = \"2s\"", "duration = \"1s\"\ninterval = \"10ms\"");
    let file = write_scenario("small-disk-scn", &text);
    let out = disk.0.join("sweep");
    let mut child = spawn(
        harness()
            .arg("sweep")
            .arg(&file)
            .args(["--quiet", "--no-plots", "--out"])
            .arg(&out),
    );
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no space left"), "{stderr}");
    assert!(stderr.contains(&out.display().to_string()), "{stderr}");
    // What was written before the disk filled is whole and consistent.
    let runs = parse_csv(&out.join("runs.csv"));
    assert!(!runs.is_empty() && runs.len() < 10, "{} runs", runs.len());
    assert!(runs.iter().all(|r| r["complete"] == "true"));
    assert_eq!(parse_csv(&out.join("workers.csv")).len(), 2 * runs.len());
    for r in &runs {
        let s = parse_csv(&out.join("runs").join(&r["run_id"]).join("summary.csv"));
        assert_eq!(s[0]["completed"], r["completed"]);
    }
    parse_csv(&out.join("timeseries.csv"));
    parse_csv(&out.join("aggregate.csv"));
    assert_no_temporaries(&out);
}

// ------------------------------------------------------- every other phase

/// Starts `harness` with `args`, waits (bounded) until `ready` says the
/// phase to interrupt has begun, sends `sig`, and returns the exit status,
/// stdout and stderr, with every process it ever had checked gone.
fn interrupt_when(
    args: &[&str],
    out: &Path,
    sig: i32,
    mut ready: impl FnMut(&mut Seen, u32) -> bool,
) -> (ExitStatus, String, String) {
    let mut child = spawn(harness().args(args).arg("--out").arg(out));
    let pid = child.id();
    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(&mut seen, pid) {
        seen.look(pid);
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the phase to interrupt never began: {}", stderr_of(&mut child));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    seen.look(pid);
    signal(pid, sig);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let mut stdout = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    let stderr = stderr_of(&mut child);
    if !seen.0.is_empty() {
        seen.assert_gone(&format!("{args:?}"));
    }
    (status, stdout, stderr)
}

#[test]
fn sigterm_during_the_warm_up_cuts_the_run_short() {
    let _g = serial();
    let out = scratch("warmup-sigterm");
    let args = [
        "run",
        "--model",
        "reuseport",
        "--workers",
        "2",
        "--concurrency",
        "4",
        "--warmup",
        "30s",
        "--duration",
        "1s",
    ];
    // The fleet is up and loaded: the warm-up has begun.
    let (status, _, stderr) = interrupt_when(&args, &out, libc::SIGTERM, |seen, pid| {
        seen.look(pid) >= 2 && seen.0.iter().all(|(p, _)| crate::common::state(*p).is_some())
    });
    assert_eq!(status.code(), Some(143), "{stderr}");
    let s = parse_csv(&out.join("summary.csv"));
    // The measured load never started: nothing is counted, and the run says so.
    assert_eq!(
        (s[0]["complete"].as_str(), s[0]["connections"].as_str()),
        ("false", "0"),
        "{s:?}"
    );
    assert_no_temporaries(&out);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn sigint_during_the_drain_closes_what_is_in_flight() {
    let _g = serial();
    let out = scratch("drain-sigint");
    // Every request takes 5 s: after the 1 s of load, four connections are
    // still being served (the drain) until about 5 s. A signal at 1.5 s
    // must not wait for them.
    let args = [
        "run",
        "--model",
        "reuseport",
        "--workers",
        "4",
        "--concurrency",
        "4",
        "--threads",
        "1",
        "--service",
        "sleep:5s",
        "--duration",
        "1s",
        "--timeout",
        "20s",
    ];
    let mut up: Option<Instant> = None;
    let (status, _, stderr) = interrupt_when(&args, &out, libc::SIGINT, |seen, pid| {
        if seen.look(pid) >= 4 {
            up.get_or_insert_with(Instant::now);
        }
        up.is_some_and(|t| t.elapsed() >= Duration::from_millis(1500))
    });
    assert_eq!(status.code(), Some(130), "{stderr}");
    let s = parse_csv(&out.join("summary.csv"));
    let n = |k: &str| s[0][k].parse::<u64>().unwrap();
    // Had the harness waited for the drain, the four would have completed.
    assert_eq!(n("completed"), 0, "{s:?}");
    assert!(n("connections") >= 1, "{s:?}");
    assert_eq!(n("err_cancelled"), n("connections"), "{s:?}");
    assert_eq!(
        (s[0]["complete"].as_str(), s[0]["conserved"].as_str()),
        ("false", "true"),
        "{s:?}"
    );
    assert_no_temporaries(&out);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn sigint_during_a_capacity_run_stops_the_sweep_and_resume_finishes_it() {
    let _g = serial();
    let text = r#"
name = "capacity-cut"
description = "a percentage rate needs a capacity run first"
seed = 3
model = "reuseport"
workers = 2
rate = "20%"
duration = "500ms"
"#;
    let file = write_scenario("capacity-cut-scn", text);
    let out = scratch("capacity-cut");
    let args = ["sweep", file.to_str().unwrap(), "--no-plots"];
    // The capacity run's fleet is up (no runs.csv yet).
    let (status, _, stderr) = interrupt_when(&args, &out, libc::SIGINT, |seen, pid| {
        seen.look(pid) >= 2 && !out.join("runs.csv").exists()
    });
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("capacity"), "{stderr}");
    assert!(
        stderr.contains(&format!("harness sweep --resume {}", out.display())),
        "{stderr}"
    );
    let mut resume = spawn(harness().args(["sweep", "--quiet", "--no-plots", "--resume"]).arg(&out));
    let status = wait_exit(&mut resume, Duration::from_secs(60));
    assert!(status.success(), "{}", stderr_of(&mut resume));
    let runs = parse_csv(&out.join("runs.csv"));
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["complete"], "true");
    assert_no_temporaries(&out);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn sigterm_while_charts_are_drawn_keeps_the_earlier_report_whole() {
    let _g = serial();
    let text = THREE_RUNS
        .replace("repetitions = 3", "repetitions = 2")
        .replace("duration = \"2s\"", "duration = \"300ms\"");
    let file = write_scenario("charts-cut-scn", &text);
    let out = scratch("charts-cut");
    let ok = harness()
        .args(["sweep", "--quiet"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let report = std::fs::read(out.join("REPORT.md")).unwrap();
    // Draw again, and stop it after its first chart.
    let mut child = spawn(harness().arg("report").arg(&out));
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("drew ") {
        match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    signal(child.id(), libc::SIGTERM);
    let _ = stdout.read_to_end(&mut seen);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&seen);
    let stderr = stderr_of(&mut child);
    // Three outcomes, by when the signal was seen (the scheduler decides):
    // before a chart (the rest are skipped, the earlier report stays, 143);
    // after the last chart began (the report is written whole, 143); or
    // after the harness's last look at it (whole, 0).
    if stdout.contains("interrupted by a signal before it was drawn") {
        assert_eq!(status.code(), Some(143), "{stdout}\n{stderr}");
        assert!(stderr.contains("harness report"), "{stderr}");
        assert_eq!(
            std::fs::read(out.join("REPORT.md")).unwrap(),
            report,
            "the earlier report stays"
        );
    } else {
        assert!(
            matches!(status.code(), Some(143) | Some(0)),
            "{status:?}\n{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("report: "),
            "a whole drawing says where the report is: {stdout}"
        );
    }
    assert_no_temporaries(&out);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn sigint_while_a_real_server_starts_leaves_nothing() {
    let _g = serial();
    let out = scratch("server-start-cut");
    let args = ["run", "--model", "nginx-reuseport", "--connections", "1000"];
    // nginx's master is up (its workers may not be): the start is under way.
    let (status, _, stderr) = interrupt_when(&args, &out, libc::SIGINT, |seen, pid| seen.look(pid) >= 1);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.code(), Some(130), "{status:?} {stderr}");
    assert_eq!(status.signal(), None);
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    // Cut before the load: no files, or files that say complete=false.
    if out.join("summary.csv").exists() {
        assert_eq!(parse_csv(&out.join("summary.csv"))[0]["complete"], "false");
    }
    let _ = std::fs::remove_dir_all(out);
}
