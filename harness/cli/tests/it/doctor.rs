//! `harness doctor`: a line per capability, what each missing one disables,
//! server lines that agree with PATH, a prompt stop on SIGINT, and the
//! refusal of a run that needs what the machine lacks.
//!
//! The doctor is a report, so it exits 0 whatever is missing; what must be
//! there is said by the machine kind: CI's (root, Linux 6.18) has every
//! kernel capability the models use, and a test that finds one missing
//! fails there and skips elsewhere ([`needs`]).

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::common::{alive, children, harness, is_root, needs, output_within, scratch, show, wait_until, wait_within};

/// Every line the doctor prints, in its order.
const NAMES: [&str; 20] = [
    "root",
    "network namespaces",
    "sock_diag",
    "tracefs",
    "perf events",
    "kernel accept counters",
    "bpf SOCKET_FILTER",
    "bpf SK_REUSEPORT",
    "classic BPF",
    "io_uring",
    "tcp_migrate_req",
    "nginx",
    "node",
    "haproxy",
    "apache2",
    "gunicorn",
    "uwsgi",
    "h2o",
    "lighttpd",
    "wrk",
];

/// What the models and runs use, which CI's machine kind has.
const KERNEL_NEEDS: [&str; 8] = [
    "root",
    "kernel accept counters",
    "network namespaces",
    "sock_diag",
    "bpf SOCKET_FILTER",
    "bpf SK_REUSEPORT",
    "classic BPF",
    "io_uring",
];

/// A liveness bound: the doctor takes well under a second here (each
/// version command is stopped after 5 s).
const LIMIT: Duration = Duration::from_secs(120);

/// One line of the report.
#[derive(Debug, Clone)]
struct Line {
    ok: bool,
    /// What was found (a version, a value, or why it is missing).
    detail: String,
    /// For a missing one: what it disables.
    disables: Option<String>,
}

/// The report's lines, in order; fails on a line that is not
/// `ok|missing NAME DETAIL[ — disables: WHAT]` with a known name, or on a
/// name given twice.
fn parse_in_order(stdout: &str) -> Vec<(&'static str, Line)> {
    let mut lines: Vec<(&'static str, Line)> = Vec::new();
    for l in stdout.lines() {
        let (ok, rest) = match l.split_once(' ') {
            Some(("ok", rest)) => (true, rest.trim_start()),
            Some(("missing", rest)) => (false, rest.trim_start()),
            _ => panic!("not a capability line: {l:?}"),
        };
        // Names are padded to the longest one and two spaces more.
        let name = *NAMES
            .iter()
            .find(|n| rest.strip_prefix(**n).is_some_and(|after| after.starts_with("  ")))
            .unwrap_or_else(|| panic!("no known capability in {l:?}"));
        let detail = rest[name.len()..].trim().to_string();
        let (detail, disables) = match detail.split_once(" — disables: ") {
            Some((d, what)) => (d.to_string(), Some(what.to_string())),
            None => (detail, None),
        };
        assert!(lines.iter().all(|(n, _)| *n != name), "{name} twice:\n{stdout}");
        lines.push((name, Line { ok, detail, disables }));
    }
    lines
}

/// The report's lines by name.
fn parse(stdout: &str) -> HashMap<&'static str, Line> {
    parse_in_order(stdout).into_iter().collect()
}

/// The column where a line's detail starts: after the status, the name
/// and the spaces that pad it.
fn detail_column(line: &str, name: &str) -> usize {
    let after = line.find(&format!(" {name} ")).unwrap_or(0) + 1 + name.len();
    after + (line[after..].len() - line[after..].trim_start().len())
}

fn doctor(args: &[&str]) -> Output {
    output_within(harness().arg("doctor").args(args), LIMIT)
}

#[test]
fn doctor_prints_a_line_per_capability_and_what_each_missing_one_disables() {
    let o = doctor(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let in_order = parse_in_order(&stdout);
    let order: Vec<&str> = in_order.iter().map(|(n, _)| *n).collect();
    assert_eq!(order, NAMES, "one line each, in order:\n{stdout}");
    for (name, l) in &in_order {
        assert!(!l.detail.is_empty(), "{name}: no detail:\n{stdout}");
        match (l.ok, &l.disables) {
            (true, None) => {}
            (false, Some(what)) if !what.trim().is_empty() => {}
            _ => panic!("{name}: a missing line says what it disables, an ok one does not:\n{stdout}"),
        }
    }
    // Aligned: every detail starts in the same column.
    let columns: Vec<usize> = stdout.lines().zip(&order).map(|(l, n)| detail_column(l, n)).collect();
    assert!(columns.windows(2).all(|w| w[0] == w[1]), "{columns:?}\n{stdout}");
}

#[test]
fn this_machine_kind_has_what_the_models_use() {
    let o = doctor(&[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lines = parse(&stdout);
    for name in KERNEL_NEEDS {
        let l = &lines[name];
        needs(l.ok, &format!("{name} ({})", l.detail));
    }
    // What the probes found, where they found it.
    if lines["root"].ok {
        assert_eq!(lines["root"].detail, "uid 0");
    }
    if lines["io_uring"].ok {
        assert!(lines["io_uring"].detail.contains("multishot accept"), "{stdout}");
    }
}

/// Where the harness would find `binary`: PATH, then the sbin directories.
fn on_path(binary: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(binary))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[test]
fn server_lines_agree_with_path_and_give_a_version() {
    let o = doctor(&[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lines = parse(&stdout);
    for name in &NAMES[11..] {
        let l = &lines[name];
        match on_path(name) {
            Some(p) => {
                assert!(l.ok, "{name} is at {} but its line is missing:\n{stdout}", p.display());
                assert!(l.detail.contains(&p.display().to_string()), "{name}: {}", l.detail);
                // The version, not the path's digits.
                let version = l.detail.trim_end_matches(&format!("({})", p.display()));
                assert!(
                    version.chars().any(|c| c.is_ascii_digit()),
                    "{name}: no version in {:?}",
                    l.detail
                );
            }
            None => assert!(!l.ok, "{name} is not on PATH but its line is ok:\n{stdout}"),
        }
    }
}

#[test]
fn json_says_the_same() {
    let text = parse(&String::from_utf8_lossy(&doctor(&[]).stdout));
    let o = doctor(&["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON array");
    let caps = json.as_array().expect("an array");
    let names: Vec<&str> = caps.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, NAMES);
    for c in caps {
        let name = c["name"].as_str().unwrap();
        assert!(!c["disables"].as_str().unwrap().is_empty(), "{c}");
        // Servers and probes can change between the two runs only if someone
        // installs or mounts something meanwhile: the kernel lines cannot.
        if !NAMES[11..].contains(&name) && name != "tracefs" && name != "perf events" {
            assert_eq!(c["ok"].as_bool(), Some(text[name].ok), "{name}");
        }
    }
}

/// Writes an executable shell script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_version_on_stderr_is_read_and_sigint_stops_a_version_command_that_hangs() {
    let dir = scratch("doctor-fake-servers");
    std::fs::create_dir_all(&dir).unwrap();
    // nginx prints its version on stderr; this haproxy never answers.
    script(&dir, "nginx", "echo 'nginx version: nginx/9.8.7' >&2");
    script(&dir, "haproxy", "exec sleep 600");
    let path = std::env::join_paths(
        std::iter::once(dir.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let mut child = harness()
        .arg("doctor")
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The doctor waits on the fake haproxy (a `sleep`): then the signal.
    let mut sleeper = None;
    let waiting = wait_until(LIMIT, || {
        sleeper = children(pid)
            .into_iter()
            .find(|c| std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|s| s.trim() == "sleep"));
        sleeper.is_some()
    });
    assert!(waiting, "the doctor never ran the fake haproxy");
    sys::kill(pid as i32, libc::SIGINT).unwrap();
    // Stopped at once, not after the 5 s the version command may take: a
    // doctor that ignored the signal would exit 0 after it.
    let status = wait_within(&mut child, LIMIT);
    let o = Output {
        status,
        stdout: std::io::read_to_string(child.stdout.take().unwrap())
            .unwrap()
            .into_bytes(),
        stderr: std::io::read_to_string(child.stderr.take().unwrap())
            .unwrap()
            .into_bytes(),
    };
    assert_eq!(o.status.code(), Some(130), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lines = parse(&stdout);
    let nginx = &lines["nginx"];
    assert!(
        nginx.ok && nginx.detail.starts_with("nginx version: nginx/9.8.7"),
        "{stdout}"
    );
    assert!(lines["haproxy"].detail.contains("stopped by SIGINT"), "{stdout}");
    // What was examined by then, and nothing after.
    assert!(!lines.contains_key("wrk"), "{stdout}");
    let sleeper = sleeper.unwrap();
    assert!(!alive(sleeper), "the fake haproxy {sleeper} outlived the doctor");
    let _ = std::fs::remove_dir_all(dir);
}

/// `harness` with `args` as the unprivileged user nobody (65534).
fn as_nobody(args: &[&str]) -> Output {
    output_within(harness().args(args).uid(65534).gid(65534), LIMIT)
}

#[test]
fn without_root_the_doctor_says_what_root_would_give() {
    if !is_root() {
        eprintln!("skipped: only root can run the harness as another user");
        return;
    }
    let o = as_nobody(&["doctor"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lines = parse(&stdout);
    let root = &lines["root"];
    assert!(!root.ok && root.detail == "euid 65534", "{stdout}");
    assert!(
        root.disables
            .as_deref()
            .is_some_and(|d| d.contains("host's network namespace")),
        "{stdout}"
    );
    let netns = &lines["network namespaces"];
    assert!(!netns.ok && netns.detail.contains("EPERM"), "{stdout}");
    assert!(
        netns.disables.as_deref().is_some_and(|d| d.contains("--netns host")),
        "{stdout}"
    );
}

#[test]
fn a_run_of_a_server_neither_installed_nor_installable_is_refused_naming_it() {
    if !is_root() {
        eprintln!("skipped: only root can run the harness as another user");
        return;
    }
    let Some(server) = [("nginx", "nginx-reuseport"), ("node", "node-rr")]
        .into_iter()
        .find(|(binary, _)| on_path(binary).is_none())
    else {
        eprintln!("skipped: nginx and node are both installed here");
        return;
    };
    let out = scratch("doctor-refused");
    let o = as_nobody(&[
        "run",
        "--model",
        server.1,
        "--connections",
        "10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(server.0) && stderr.contains("needs root"), "{stderr}");
    assert!(!out.exists(), "a refused run writes nothing");
}
