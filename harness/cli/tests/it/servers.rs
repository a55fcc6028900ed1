//! The servers people run, beyond Node.js and nginx (HAProxy, gunicorn,
//! uWSGI, Apache, lighttpd, h2o): each is started, loaded and stopped by
//! `harness run --model NAME`, its own per-worker count must equal the load
//! generator's attribution, and its workers must show the kernel signature
//! of its accept mechanism in /proc (one shared socket, or one per worker).
//!
//! Each run also counts accepts in the kernel (`--attribute kernel`, by
//! thread for HAProxy and h2o): conservation then checks that each worker's
//! kernel count equals the server's own count (HAProxy's multi-queue
//! listener passes connections between threads, so there only the totals),
//! and the kernel saw every connection accepted once.
//!
//! `.ci/run` installs the servers; off CI the harness installs a missing one
//! itself as root, and a test without root or the server skips.

use crate::common::*;
use crate::external::{check_server, check_server_per_conn, Listener};

/// Whether `binary` can be run or installed here (it is on PATH or in an
/// sbin directory, or the tests run as root and the harness installs it).
fn have(binary: &str) -> bool {
    let found = [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/sbin",
        "/bin",
    ]
    .iter()
    .any(|d| std::path::Path::new(d).join(binary).exists());
    needs(found || is_root(), &format!("{binary} (or root to install it)"))
}

#[test]
fn haproxy_multi_queue_counts_agree_and_threads_share_one_socket() {
    if have("haproxy") {
        check_server(
            "haproxy",
            Listener::Shared,
            &["--warmup", "200ms", "--attribute", "kernel", "--kernel-by", "thread"],
        );
    }
}

#[test]
fn haproxy_nomq_counts_agree_and_threads_share_one_socket() {
    if have("haproxy") {
        check_server(
            "haproxy-nomq",
            Listener::Shared,
            &["--attribute", "kernel", "--kernel-by", "thread"],
        );
    }
}

#[test]
fn haproxy_shards_counts_agree_and_each_thread_has_its_own_socket() {
    if have("haproxy") {
        check_server(
            "haproxy-shards",
            Listener::OwnEach,
            &["--attribute", "kernel", "--kernel-by", "thread"],
        );
    }
}

// gunicorn's sync workers and uWSGI's HTTP socket close every connection
// after its response: one request per connection.

#[test]
fn gunicorn_counts_agree_and_workers_share_one_socket() {
    if have("gunicorn") {
        check_server_per_conn(
            "gunicorn",
            Listener::Shared,
            &["--warmup", "200ms", "--attribute", "kernel"],
            1,
        );
    }
}

#[test]
fn uwsgi_counts_agree_and_workers_share_one_socket() {
    if have("uwsgi") {
        check_server_per_conn("uwsgi", Listener::Shared, &["--attribute", "kernel"], 1);
    }
}

#[test]
fn uwsgi_thunder_lock_counts_agree_and_workers_share_one_socket() {
    if have("uwsgi") {
        check_server_per_conn(
            "uwsgi-thunder",
            Listener::Shared,
            &["--warmup", "200ms", "--attribute", "kernel"],
            1,
        );
    }
}

#[test]
fn apache_prefork_counts_agree_and_servers_share_one_socket() {
    if have("apache2") {
        check_server(
            "apache-prefork",
            Listener::Shared,
            &["--warmup", "200ms", "--attribute", "kernel"],
        );
    }
}

#[test]
fn apache_event_counts_agree_and_processes_share_one_socket() {
    if have("apache2") {
        check_server("apache-event", Listener::Shared, &["--attribute", "kernel"]);
    }
}

#[test]
fn lighttpd_counts_agree_and_workers_share_one_socket() {
    if have("lighttpd") {
        check_server_per_conn(
            "lighttpd",
            Listener::Shared,
            &["--warmup", "200ms", "--attribute", "kernel"],
            1,
        );
    }
}

/// h2o keeps no per-worker count: its run is checked against the
/// attribution alone (every response named one of its 4 worker threads),
/// and its threads share one socket.
#[test]
fn h2o_threads_are_attributed_by_tid_and_share_one_socket() {
    if !have("h2o") {
        return;
    }
    let _g = serial();
    let args = [
        "--model",
        "h2o",
        "--workers",
        "4",
        "--connections",
        "1200",
        "--concurrency",
        "4",
        "--requests-per-conn",
        "2",
        "--threads",
        "1",
        "--attribute",
        "kernel",
        "--kernel-by",
        "thread",
    ];
    let (o, dir) = run("h2o", &args);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("every response named one of 4 workers") && stdout.contains("own counts are unknown"),
        "{stdout}"
    );
    let s = summary(&dir);
    assert_eq!((s["completed"].as_str(), s["errors"].as_str()), ("1200", "0"));
    let rows = read_csv(&dir.join("workers.csv"));
    assert_eq!(rows.len(), 4, "one row per worker thread");
    assert_eq!(col(&rows, "attributed").iter().sum::<u64>(), 1200);
    assert_eq!(col(&rows, "attributed_requests").iter().sum::<u64>(), 2400);
    assert!(!dir.join("server-counts.csv").exists(), "h2o counts nothing itself");
    // Kernel attribution is h2o's count: each thread's accepts are the
    // connections whose first response named it.
    assert_eq!(col(&rows, "kernel_accepted"), col(&rows, "attributed"), "{}", show(&o));
    let inodes: std::collections::HashSet<&str> = rows.iter().map(|r| r["listen_inode"].as_str()).collect();
    assert!(
        inodes.len() == 1 && !inodes.contains(""),
        "one shared socket: {inodes:?}"
    );
    for pid in col(&rows, "pid") {
        assert!(!alive(pid as u32), "thread {pid} outlived the run");
    }
    let _ = std::fs::remove_dir_all(dir);
}
