//! The servers people run, beyond Node.js and nginx (HAProxy, gunicorn,
//! uWSGI, Apache, lighttpd, h2o): each is started, loaded and stopped by
//! `harness run --model NAME`, its own per-worker count must equal the load
//! generator's attribution, and its workers must show the kernel signature
//! of its accept mechanism in /proc (one shared socket, or one per worker).
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
        check_server("haproxy", Listener::Shared, &["--warmup", "200ms"]);
    }
}

#[test]
fn haproxy_nomq_counts_agree_and_threads_share_one_socket() {
    if have("haproxy") {
        check_server("haproxy-nomq", Listener::Shared, &[]);
    }
}

#[test]
fn haproxy_shards_counts_agree_and_each_thread_has_its_own_socket() {
    if have("haproxy") {
        check_server("haproxy-shards", Listener::OwnEach, &[]);
    }
}

// gunicorn's sync workers and uWSGI's HTTP socket close every connection
// after its response: one request per connection.

#[test]
fn gunicorn_counts_agree_and_workers_share_one_socket() {
    if have("gunicorn") {
        check_server_per_conn("gunicorn", Listener::Shared, &["--warmup", "200ms"], 1);
    }
}

#[test]
fn uwsgi_counts_agree_and_workers_share_one_socket() {
    if have("uwsgi") {
        check_server_per_conn("uwsgi", Listener::Shared, &[], 1);
    }
}

#[test]
fn uwsgi_thunder_lock_counts_agree_and_workers_share_one_socket() {
    if have("uwsgi") {
        check_server_per_conn("uwsgi-thunder", Listener::Shared, &["--warmup", "200ms"], 1);
    }
}

#[test]
fn apache_prefork_counts_agree_and_servers_share_one_socket() {
    if have("apache2") {
        check_server("apache-prefork", Listener::Shared, &["--warmup", "200ms"]);
    }
}

#[test]
fn apache_event_counts_agree_and_processes_share_one_socket() {
    if have("apache2") {
        check_server("apache-event", Listener::Shared, &[]);
    }
}

#[test]
fn lighttpd_counts_agree_and_workers_share_one_socket() {
    if have("lighttpd") {
        check_server_per_conn("lighttpd", Listener::Shared, &["--warmup", "200ms"], 1);
    }
}
