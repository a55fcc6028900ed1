//! Helpers shared by the integration tests: running the `harness` binary,
//! reading its CSVs, and the lock that keeps distribution-reading tests from
//! running beside each other on two cores.
//!
//! Time in these tests: a test asserts relations that hold however the
//! scheduler behaves (conservation, bounds that follow from the run's own
//! figures), never a window of time. Where it must wait for something, it
//! polls for that condition with a bound ([`wait_until`]); where the point
//! is that something ends (a run, a server), the bound is a generous
//! liveness bound ([`output_within`], [`wait_within`]) that only catches a
//! hang, never a slow machine.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long one `harness run` of a test may take before the test gives up
/// on it: a liveness bound (the longest run here takes a few seconds), so a
/// hung harness fails the test instead of hanging it.
pub const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Runs `harness run` with `args` into a fresh directory; returns the output
/// and the directory. Bounded by [`RUN_LIMIT`].
pub fn run(name: &str, args: &[&str]) -> (Output, PathBuf) {
    let out = scratch(name);
    let output = output_within(harness().arg("run").args(args).arg("--out").arg(&out), RUN_LIMIT);
    (output, out)
}

/// Polls `cond` every 20 ms until it holds or `limit` has passed; whether
/// it held. The wait-until loop of every test: bounded in time, and in
/// count by the 20 ms between polls.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `cmd.output()`, but a liveness bound: if the command has not ended after
/// `limit` it is killed and the test fails with what it printed so far.
/// (stdout and stderr are read on their own threads, so a chatty command
/// cannot block on a full pipe.)
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let ended = wait_until(limit, || child.try_wait().expect("try_wait").is_some());
    if !ended {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait");
    // The pipes close when the command and everything it started are gone
    // (workers die with the harness); a descendant that keeps one open
    // would be a leak of its own, so this wait is bounded too.
    let grace = Duration::from_secs(30);
    let stdout = stdout.recv_timeout(grace).unwrap_or_default();
    let stderr = stderr.recv_timeout(grace).unwrap_or_default();
    let output = Output { status, stdout, stderr };
    assert!(
        ended,
        "{cmd:?} did not end within {limit:?} (liveness bound), killed:\n{}",
        show(&output)
    );
    output
}

/// Waits for `child` to end, at most `limit` (a liveness bound); kills it and
/// fails the test if it does not.
pub fn wait_within(child: &mut Child, limit: Duration) -> ExitStatus {
    if !wait_until(limit, || child.try_wait().expect("try_wait").is_some()) {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "pid {} did not end within {limit:?} (liveness bound), killed",
            child.id()
        );
    }
    child.wait().expect("wait")
}

/// Whether the load generator is running inside `pid`: its threads are
/// named `loadgen-<i>` and exist only while a load (a warm-up or the
/// measured one) runs. The harness forks its fleet while single-threaded,
/// so once they exist the fleet is up and the load has begun: the condition
/// to wait for instead of sleeping "until the run is going".
pub fn load_running(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks
        .flatten()
        .any(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("loadgen-")))
}

/// The threads of `pid`, from /proc (0 if it is gone).
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
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

/// A run that passed: exit 0, "conservation: ok", `connections` completed
/// with no error, each counted once by a worker and named by its responses.
/// Returns the workers.csv rows and the summary row.
pub fn assert_conserved(
    o: &Output,
    dir: &Path,
    connections: u64,
) -> (Vec<HashMap<String, String>>, HashMap<String, String>) {
    let what = show(o);
    assert!(o.status.success(), "{what}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("conservation: ok"),
        "{what}"
    );
    let s = summary(dir);
    assert_eq!(s["conserved"], "true", "{what}");
    assert_eq!(s["completed"], connections.to_string(), "{what}");
    assert_eq!(s["errors"], "0", "{what}");
    let rows = read_csv(&dir.join("workers.csv"));
    assert_eq!(col(&rows, "accepted").iter().sum::<u64>(), connections, "{what}");
    assert_eq!(col(&rows, "attributed"), col(&rows, "accepted"), "{what}");
    (rows, s)
}

/// Whether a test may go on without `what` (root, io_uring, a kernel
/// feature): off CI it says so and skips; on CI (`CI` set, on this machine
/// kind, where every capability exists) a missing one fails the test.
pub fn needs(have: bool, what: &str) -> bool {
    if have {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but this machine lacks {what}, which CI's machine kind has"
    );
    eprintln!("skipped: this machine lacks {what}");
    false
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}
