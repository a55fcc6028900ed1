//! `harness doctor`: what this machine lets the harness do, one capability
//! a line, and what each missing one disables.
//!
//! Why it exists: the harness leans on kernel features a machine may lack
//! or refuse (root, network namespaces, sock_diag, bpf(2), io_uring, perf
//! events and a mounted tracefs, a sysctl of Linux 5.14) and on real servers
//! that may not be installed. Without a list, a researcher learns of each
//! one when a run fails half-way, in the words of whichever syscall failed.
//! [`examine`] asks the kernel for each capability by trying it on
//! something thrown away (a listener on 127.0.0.1 that never has a
//! connection, a two-instruction program, a thread that leaves its
//! namespace and ends) and says what is missing and what that disables;
//! it changes nothing on the machine (it mounts nothing, sets no sysctl,
//! installs nothing).
//!
//! The same probes decide, before a run starts, whether it can run at all
//! ([`check`], called by [`crate::preflight::check`]): a run that needs a
//! missing capability is refused in one line naming it (exit 2), instead of
//! failing once its namespace, fleet or server is half made.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use serde::Serialize;

use crate::servers::install;
use crate::servers::process::WaitTimeout;
use crate::spec::{Netns, RunSpec};
use crate::subject::Subject;
use crate::{interrupt, machine, UsageError};
use fleet::model::Model;

/// One thing the harness may need of the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capability {
    /// What it is, as the line names it (`io_uring`, `nginx`).
    pub name: &'static str,
    /// Whether this machine has it.
    pub ok: bool,
    /// What the probe found: a version, a value, or why it is missing.
    pub detail: String,
    /// What the harness cannot do without it.
    pub disables: &'static str,
}

impl Capability {
    fn new(name: &'static str, disables: &'static str, found: Result<String, String>) -> Capability {
        let (ok, detail) = match found {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        Capability {
            name,
            ok,
            detail,
            disables,
        }
    }
}

/// What a run may need of the kernel beyond what every Linux has: probed
/// once per process ([`have`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// unshare(CLONE_NEWNET): `--netns run`, as root.
    NetworkNamespaces = 0,
    /// NETLINK_SOCK_DIAG: every run samples its accept queues.
    SockDiag,
    /// SO_ATTACH_REUSEPORT_CBPF: `reuseport-cbpf`.
    ClassicBpf,
    /// A ring and a multishot accept: `io-uring`.
    IoUring = 3,
    /// An eBPF SOCKET_FILTER program with an atomic counter in an ARRAY
    /// map, attached with SO_ATTACH_REUSEPORT_EBPF: `reuseport-ebpf-rr`.
    EbpfSocketFilter = 4,
    /// An SK_REUSEPORT program with a REUSEPORT_SOCKARRAY and an mmap-able
    /// ARRAY: `reuseport-ebpf-least`.
    EbpfSkReuseport = 5,
    /// Filtered perf counters on the accept tracepoints: `--attribute kernel`.
    KernelAccepts = 6,
}

impl Need {
    /// How many there are (the variants are 0, 1, ... in order).
    const COUNT: usize = 7;

    /// Tries the capability now.
    pub fn probe(self) -> Capability {
        match self {
            Need::NetworkNamespaces => network_namespaces(),
            Need::SockDiag => sock_diag(),
            Need::ClassicBpf => classic_bpf(),
            Need::IoUring => io_uring(),
            Need::EbpfSocketFilter => bpf_socket_filter(),
            Need::EbpfSkReuseport => bpf_sk_reuseport(),
            Need::KernelAccepts => kernel_accepts(),
        }
    }
}

// Every variant indexes `have`'s cache.
const _: () = assert!(Need::KernelAccepts as usize + 1 == Need::COUNT);

/// `need`, probed the first time it is asked for in this process (a sweep
/// checks every run; the answer does not change meanwhile).
pub fn have(need: Need) -> &'static Capability {
    static SEEN: [OnceLock<Capability>; Need::COUNT] = [const { OnceLock::new() }; Need::COUNT];
    SEEN[need as usize].get_or_init(|| need.probe())
}

/// What `spec` needs of the kernel, each with the option that asks for it.
/// Pure: `root` says whether the harness runs as root.
pub fn needs(spec: &RunSpec, root: bool) -> Vec<(Need, String)> {
    let mut all = vec![(
        Need::SockDiag,
        "a run (it samples its listeners' accept queues into queue.csv)".to_string(),
    )];
    if root && spec.netns == Netns::Run && !matches!(spec.subject, Subject::Target(_)) {
        all.push((Need::NetworkNamespaces, "--netns run (the default as root)".into()));
    }
    match spec.subject {
        Subject::Model(Model::IoUring) => all.push((Need::IoUring, "--model io-uring".into())),
        Subject::Model(Model::ReuseportCbpf) => all.push((Need::ClassicBpf, "--model reuseport-cbpf".into())),
        Subject::Model(Model::ReuseportEbpfRr) => {
            all.push((Need::EbpfSocketFilter, "--model reuseport-ebpf-rr".into()))
        }
        Subject::Model(m @ (Model::ReuseportEbpfLeast | Model::ReuseportEbpfMigrate)) => {
            all.push((Need::EbpfSkReuseport, format!("--model {m}")))
        }
        _ => {}
    }
    if spec.kernel_attribution {
        all.push((Need::KernelAccepts, "--attribute kernel".into()));
    }
    all
}

/// The one-line refusal of a run that needs `cap`, which is missing.
pub fn refusal(cap: &Capability, asked: &str) -> UsageError {
    let hint = match cap.name {
        NETNS => "; use --netns host",
        _ => "",
    };
    UsageError(format!(
        "{asked} needs {}: it is not available here ({}){hint}; `harness doctor` lists what this machine has",
        cap.name, cap.detail
    ))
}

/// Refuses `spec` if it needs a capability this machine lacks, or a real
/// server that is neither installed nor installable. Reads, changes nothing.
pub fn check(spec: &RunSpec) -> Result<(), UsageError> {
    for (need, asked) in needs(spec, sys::geteuid() == 0) {
        let cap = have(need);
        if !cap.ok {
            return Err(refusal(cap, &asked));
        }
    }
    if let Subject::Server(s) = spec.subject {
        let (binary, package) = s.binary();
        if let Some(why) = install::unavailable(binary, package) {
            return Err(UsageError(format!("--model {s}: {why}")));
        }
        if s.one_request_per_connection() && spec.requests_per_conn > 1 {
            return Err(UsageError(format!(
                "--model {s} closes every connection after its response: --requests-per-conn must be 1"
            )));
        }
    }
    Ok(())
}

/// Every capability, in the order `harness doctor` prints them. A SIGINT
/// or SIGTERM stops it between probes (and a version command at once):
/// what was examined by then is returned.
pub fn examine() -> Vec<Capability> {
    let kernel: [fn() -> Capability; 11] = [
        root,
        network_namespaces,
        sock_diag,
        tracefs,
        perf_events,
        kernel_accepts,
        bpf_socket_filter,
        bpf_sk_reuseport,
        classic_bpf,
        io_uring,
        tcp_migrate_req,
    ];
    let mut all = Vec::new();
    for probe in kernel {
        if interrupt::interrupted().is_some() {
            return all;
        }
        all.push(probe());
    }
    for server in SERVERS {
        if interrupt::interrupted().is_some() {
            return all;
        }
        all.push(server.probe());
    }
    all
}

/// The report: a line per capability, `ok` or `missing`, its name, what
/// was found, and for a missing one what it disables; names aligned.
pub fn text(caps: &[Capability]) -> String {
    let width = caps.iter().map(|c| c.name.len()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for c in caps {
        let status = if c.ok { "ok" } else { "missing" };
        let line = format!("{status:<8}{:<width$}{}", c.name, c.detail);
        out.push_str(line.trim_end());
        if !c.ok {
            out.push_str(&format!(" — disables: {}", c.disables));
        }
        out.push('\n');
    }
    out
}

/// The capabilities as a JSON array of `{name, ok, detail, disables}`.
pub fn json(caps: &[Capability]) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(caps)?)
}

// ---- the probes, one per capability ----

const NETNS: &str = "network namespaces";

/// The symbolic name of an errno (`EPERM`), or the error as std words it.
fn errno_name(e: &io::Error) -> String {
    let name = match sys::errno_of(e) {
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EINTR) => "EINTR",
        Some(libc::EIO) => "EIO",
        Some(libc::EBADF) => "EBADF",
        Some(libc::EAGAIN) => "EAGAIN",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EFAULT) => "EFAULT",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::ENODEV) => "ENODEV",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EMFILE) => "EMFILE",
        Some(libc::ENFILE) => "ENFILE",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::E2BIG) => "E2BIG",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        Some(libc::EPROTONOSUPPORT) => "EPROTONOSUPPORT",
        Some(libc::EAFNOSUPPORT) => "EAFNOSUPPORT",
        _ => return e.to_string(),
    };
    name.to_string()
}

/// A sysctl's value for a detail line: `kernel.x = 1`, or nothing if absent.
fn sysctl_note(name: &str) -> Option<String> {
    machine::sysctl(name).map(|v| format!("{name} = {v}"))
}

fn root() -> Capability {
    let uid = sys::geteuid();
    Capability::new(
        "root",
        "runs share the host's network namespace (kernel counters machine-wide), --sysctl and \
         --tcp-migrate-req are refused, missing real servers are not installed, and bpf(2) and perf \
         counters may be refused (see their lines)",
        if uid == 0 {
            Ok("uid 0".into())
        } else {
            Err(format!("euid {uid}"))
        },
    )
}

fn network_namespaces() -> Capability {
    // On the calling thread, and back at once (as a run's namespace does):
    // a probe thread would linger in the thread count for a moment after
    // it ended, and a run forks its fleet only while single-threaded. The
    // namespace disappears as the thread leaves it.
    let tried = (|| -> Result<(), String> {
        let host = sys::current_netns().map_err(|e| format!("opening this thread's namespace: {e}"))?;
        sys::unshare_netns().map_err(|e| format!("unshare(CLONE_NEWNET): {}", errno_name(&e)))?;
        let lo = sys::loopback_up().map_err(|e| format!("lo up in a new namespace: {}", errno_name(&e)));
        if let Err(e) = sys::enter_netns(host.as_fd()) {
            // The harness must not go on in a throw-away namespace.
            eprintln!("harness: could not return to the host's network namespace: {e}");
            std::process::exit(1);
        }
        lo
    })();
    Capability::new(
        NETNS,
        "as root, --netns run (the default) is refused: use --netns host, where the kernel's counters are \
         machine-wide and --sysctl is refused (without root runs use the host's namespace anyway)",
        tried.map(|()| "unshare(CLONE_NEWNET) and lo up in a throw-away namespace, and back".into()),
    )
}

fn sock_diag() -> Capability {
    let tried = (|| -> Result<String, String> {
        let listener = sys::tcp_listener(
            &std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
            sys::ListenOpts {
                reuseport: false,
                nonblocking: true,
                backlog: 1,
            },
        )
        .map_err(|e| format!("a probe listener on 127.0.0.1: {e}"))?;
        let port = sys::local_addr(listener.as_fd()).map_err(|e| e.to_string())?.port();
        let mut diag = sys::diag::Diag::new().map_err(|e| format!("NETLINK_SOCK_DIAG: {}", errno_name(&e)))?;
        let found = diag
            .listeners(port)
            .map_err(|e| format!("inet_diag dump: {}", errno_name(&e)))?;
        match found[..] {
            [l] => Ok(format!(
                "inet_diag sees a probe listener: accept queue {} of {}",
                l.depth, l.limit
            )),
            _ => Err(format!(
                "inet_diag listed {} listeners on the probe's port, not 1",
                found.len()
            )),
        }
    })();
    Capability::new(
        "sock_diag",
        "every run: each samples its listeners' accept queues with it (queue.csv), so runs are refused",
        tried,
    )
}

/// Where a tracefs is mounted, per /proc/self/mounts.
fn mounted_tracefs() -> Option<String> {
    sys::perf::tracefs_in(&std::fs::read_to_string("/proc/self/mounts").unwrap_or_default())
}

/// The id of syscalls:sys_exit_accept4 in the mounted tracefs.
fn accept4_tracepoint(tracefs: &str) -> io::Result<u64> {
    sys::perf::tracepoint_id(Path::new(tracefs), "syscalls", "sys_exit_accept4")
}

/// What tracefs and perf events give.
const TRACING_DISABLES: &str = "--attribute kernel without root (as root a run reads the tracepoints' ids in a \
                                private tracefs and needs neither line)";

/// The name of the capability `--attribute kernel` needs.
const KERNEL_ACCEPTS: &str = "kernel accept counters";

/// What `--attribute kernel` needs: the accept tracepoints' ids and a
/// filtered counter on them, which takes root or perf_event_paranoid 1 or
/// lower (and then a tracefs this user can read).
fn kernel_accepts() -> Capability {
    let paranoid = machine::sysctl("kernel.perf_event_paranoid").unwrap_or_else(|| "absent".into());
    let uid = sys::geteuid();
    let who = if uid == 0 {
        "root".to_string()
    } else {
        format!("not root (euid {uid})")
    };
    let found = crate::accepts::probe().map(|d| format!("{who}; {d}")).map_err(|e| {
        format!(
            "{who} and kernel.perf_event_paranoid = {paranoid}: counting a tracepoint in another process takes \
                 root, or kernel.perf_event_paranoid 1 or lower and a tracefs this user can read ({e})"
        )
    });
    Capability::new(
        KERNEL_ACCEPTS,
        "--attribute kernel (the kernel's count of who accepted each connection)",
        found,
    )
}

fn tracefs() -> Capability {
    let found = match mounted_tracefs() {
        None => Err("not mounted: `mount -t tracefs nodev /sys/kernel/tracing` mounts it".to_string()),
        Some(at) => match accept4_tracepoint(&at) {
            Ok(id) => Ok(format!("mounted at {at}; syscalls:sys_exit_accept4 is id {id}")),
            Err(e) => Err(format!(
                "mounted at {at}, but no syscalls:sys_exit_accept4 there ({e}): syscall tracepoints need \
                 CONFIG_FTRACE_SYSCALLS"
            )),
        },
    };
    Capability::new("tracefs", TRACING_DISABLES, found)
}

fn perf_events() -> Capability {
    let paranoid = machine::sysctl("kernel.perf_event_paranoid").unwrap_or_else(|| "absent".into());
    let tracepoint = mounted_tracefs().and_then(|at| accept4_tracepoint(&at).ok());
    let (event, what, note) = match tracepoint {
        Some(id) => (
            sys::perf::Event {
                kind: sys::perf::PERF_TYPE_TRACEPOINT,
                config: id,
                user_only: false,
            },
            "a counter of syscalls:sys_exit_accept4",
            "",
        ),
        None => (
            sys::perf::Event {
                kind: sys::perf::PERF_TYPE_SOFTWARE,
                config: sys::perf::PERF_COUNT_SW_TASK_CLOCK,
                user_only: sys::geteuid() != 0,
            },
            "a task-clock counter",
            " (the accept4 tracepoint needs tracefs)",
        ),
    };
    // Opened stopped on this thread and closed at once.
    let found = match sys::perf::thread_counter(event, true) {
        Ok(_counter) => Ok(format!(
            "perf_event_paranoid {paranoid}; {what} opened on this thread{note}"
        )),
        Err(e) => Err(format!(
            "perf_event_paranoid {paranoid}; perf_event_open of {what}: {}{note}",
            errno_name(&e)
        )),
    };
    Capability::new("perf events", TRACING_DISABLES, found)
}

/// The license of the probe programs (GPL-compatible, as the kernel asks
/// of programs that call GPL-only helpers; these call none).
const LICENSE: &std::ffi::CStr = c"Dual MIT/GPL";

/// Why a bpf(2) call failed, for a detail line: the errno, the verifier's
/// reason if it gave one, and the sysctl that refuses it to non-root.
fn bpf_failure(what: &str, e: &io::Error) -> String {
    let mut s = format!("{what}: {}", errno_name(e));
    if let Some(reason) = sys::load_error(e).and_then(|l| l.reason()) {
        s.push_str(&format!(" (verifier: {reason})"));
    }
    if sys::geteuid() != 0 {
        s.push_str("; loading these programs needs CAP_BPF (root)");
        if let Some(note) = sysctl_note("kernel.unprivileged_bpf_disabled") {
            s.push_str(&format!(", and {note}"));
        }
    }
    s
}

fn jit() -> String {
    match machine::sysctl("net.core.bpf_jit_enable").as_deref() {
        Some("0") => "JIT off: interpreted".into(),
        Some(_) => "JIT on".into(),
        None => "no JIT setting".into(),
    }
}

fn bpf_socket_filter() -> Capability {
    let found = fleet::model::reuseport_ebpf_rr::check_available()
        .map(|()| {
            format!(
                "loaded reuseport-ebpf-rr's program (an atomic counter in an ARRAY map) and attached it to a \
                 throw-away group ({})",
                jit()
            )
        })
        .map_err(|e| e.to_string());
    Capability::new("bpf SOCKET_FILTER", "--model reuseport-ebpf-rr is refused", found)
}

fn bpf_sk_reuseport() -> Capability {
    let program = [sys::Insn::mov64_imm(0, sys::SK_PASS), sys::Insn::exit()];
    let attach = [
        ("SELECT", sys::BPF_SK_REUSEPORT_SELECT),
        ("SELECT_OR_MIGRATE", sys::BPF_SK_REUSEPORT_SELECT_OR_MIGRATE),
    ];
    let found = attach
        .iter()
        .try_for_each(|(name, a)| {
            sys::prog_load(sys::BPF_PROG_TYPE_SK_REUSEPORT, *a, &program, LICENSE)
                .map(drop)
                .map_err(|e| bpf_failure(&format!("BPF_PROG_LOAD for {name}"), &e))
        })
        .and_then(|()| {
            sys::map_create(sys::BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8, 2)
                .map_err(|e| bpf_failure("BPF_MAP_CREATE REUSEPORT_SOCKARRAY", &e))
        })
        .and_then(|_map| fleet::model::reuseport_ebpf_least::check_available().map_err(|e| e.to_string()))
        .map(|()| {
            "loaded `r0 = SK_PASS; exit` for SELECT and SELECT_OR_MIGRATE, and reuseport-ebpf-least's program \
             with its REUSEPORT_SOCKARRAY and mmap-ed ARRAY, attached to a throw-away group"
                .into()
        });
    Capability::new(
        "bpf SK_REUSEPORT",
        "--model reuseport-ebpf-least and reuseport-ebpf-migrate are refused",
        found,
    )
}

fn classic_bpf() -> Capability {
    Capability::new(
        "classic BPF",
        "--model reuseport-cbpf is refused",
        fleet::model::reuseport_cbpf::check_available()
            .map(|()| "SO_ATTACH_REUSEPORT_CBPF took the cpu and random steering programs".into())
            .map_err(|e| e.to_string()),
    )
}

fn io_uring() -> Capability {
    let setting = sysctl_note("kernel.io_uring_disabled");
    let with_setting = |s: String| match &setting {
        Some(note) => format!("{s} ({note})"),
        None => s,
    };
    let found = match sys::AcceptRing::new(8) {
        Err(e) => Err(with_setting(format!("io_uring_setup: {}", errno_name(&e)))),
        Ok(_ring) => fleet::model::io_uring::check_available()
            .map(|()| with_setting("a ring and a multishot accept".into()))
            .map_err(|e| with_setting(e.to_string())),
    };
    Capability::new("io_uring", "--model io-uring is refused", found)
}

fn tcp_migrate_req() -> Capability {
    let found = match machine::migrate_req() {
        Some(on) => Ok(format!(
            "net.ipv4.tcp_migrate_req = {} in the host's namespace",
            u8::from(on)
        )),
        None => Err("no /proc/sys/net/ipv4/tcp_migrate_req (Linux 5.14 has it)".to_string()),
    };
    Capability::new(
        "tcp_migrate_req",
        "--tcp-migrate-req is refused: a closing listener's queued connections are reset, never moved",
        found,
    )
}

// ---- real servers ----

/// A real server (or tool) and how to ask its version.
struct ServerBinary {
    binary: &'static str,
    package: &'static str,
    version: &'static [&'static str],
    /// What a missing one disables when it can be installed on first use
    /// (root with apt-get), and when it cannot; the same for both when the
    /// harness never installs it.
    installable: &'static str,
    not_installable: &'static str,
}

/// How long a version command may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

const SERVERS: [ServerBinary; 9] = [
    ServerBinary {
        binary: "nginx",
        package: "nginx",
        version: &["-v"],
        installable: "nothing: --model nginx-* and `harness external nginx-*` install Debian's nginx with \
                      apt-get on first use (needs the network)",
        not_installable: "--model nginx-exclusive, nginx-mutex, nginx-reuseport and `harness external \
                          nginx-*` are refused",
    },
    ServerBinary {
        binary: "node",
        package: "nodejs",
        version: &["--version"],
        installable: "nothing: --model node-* and `harness external node-*` install Debian's nodejs with \
                      apt-get on first use (needs the network)",
        not_installable: "--model node-seed, node-none, node-rr and `harness external node-*` are refused",
    },
    ServerBinary {
        binary: "haproxy",
        package: "haproxy",
        version: &["-v"],
        installable: "nothing: --model haproxy* and `harness external haproxy*` install Debian's haproxy with \
                      apt-get on first use (needs the network)",
        not_installable: "--model haproxy, haproxy-nomq, haproxy-shards and `harness external haproxy*` are \
                          refused",
    },
    ServerBinary {
        binary: "apache2",
        package: "apache2",
        version: &["-v"],
        installable: "nothing: --model apache-* and `harness external apache-*` install Debian's apache2 with \
                      apt-get on first use (needs the network; its system service is not started)",
        not_installable: "--model apache-prefork, apache-event and `harness external apache-*` are refused",
    },
    ServerBinary {
        binary: "gunicorn",
        package: "gunicorn",
        version: &["--version"],
        installable: "nothing: --model gunicorn and `harness external gunicorn` install Debian's gunicorn with \
                      apt-get on first use (needs the network)",
        not_installable: "--model gunicorn and `harness external gunicorn` are refused",
    },
    ServerBinary {
        binary: "uwsgi",
        package: "uwsgi",
        version: &["--version"],
        installable: "nothing: --model uwsgi* and `harness external uwsgi*` install Debian's uwsgi and \
                      uwsgi-plugin-python3 with apt-get on first use (needs the network)",
        not_installable: "--model uwsgi, uwsgi-thunder and `harness external uwsgi*` are refused",
    },
    ServerBinary {
        binary: "h2o",
        package: "h2o",
        version: &["--version"],
        installable: "nothing: --model h2o and `harness external h2o` install Debian's h2o with apt-get on first \
                      use (needs the network; its system service is not started)",
        not_installable: "--model h2o and `harness external h2o` are refused",
    },
    ServerBinary {
        binary: "lighttpd",
        package: "lighttpd",
        version: &["-v"],
        installable: "nothing: --model lighttpd and `harness external lighttpd` install Debian's lighttpd and \
                      lighttpd-modules-lua with apt-get on first use (needs the network; its system service is \
                      not started)",
        not_installable: "--model lighttpd and `harness external lighttpd` are refused",
    },
    ServerBinary {
        binary: "wrk",
        package: "wrk",
        version: &["--version"],
        installable: "nothing in the harness (it has its own load generator); scripts/bench/bench.sh \
                      compares against wrk and installs it with apt-get (as root)",
        not_installable: "nothing in the harness (it has its own load generator); scripts/bench/bench.sh \
                          compares against wrk and stops without it",
    },
];

impl ServerBinary {
    fn probe(&self) -> Capability {
        let Some(path) = install::find(self.binary) else {
            let disables = match install::unavailable(self.binary, self.package) {
                None => self.installable,
                Some(_) => self.not_installable,
            };
            return Capability::new(
                self.binary,
                disables,
                Err(format!(
                    "not found on PATH or in /usr/sbin (Debian's package: {})",
                    self.package
                )),
            );
        };
        let shown = format!("{} {}", self.binary, self.version.join(" "));
        let detail = match version(&path, self.version, VERSION_TIMEOUT) {
            Ok(v) => format!("{v} ({})", path.display()),
            Err(why) => format!("{} (`{shown}` gave no version: {why})", path.display()),
        };
        Capability::new(self.binary, self.not_installable, Ok(detail))
    }
}

/// The first non-empty line a version command prints (stdout first, then
/// stderr: nginx and Apache print theirs on stderr), trimmed; whatever its
/// exit status (wrk's is 1). Stopped after [`VERSION_TIMEOUT`], or at once
/// on a SIGINT or SIGTERM, with everything it started (its own process
/// group; it also dies with the harness).
fn version(path: &Path, args: &[&str], limit: Duration) -> Result<String, String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(path);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    sys::die_with_harness(&mut cmd, libc::SIGKILL);
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let pid = child.id() as i32;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                // At most 64 KiB: a version is a line.
                let _ = p.by_ref().take(64 * 1024).read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let waited = child
        .wait_timeout(limit, || interrupt::interrupted().is_some())
        .map_err(|e| e.to_string());
    if !matches!(waited, Ok(Some(_))) {
        let _ = sys::kill_group(pid, libc::SIGKILL);
        let _ = child.wait();
        return Err(match (waited, interrupt::interrupted()) {
            (_, Some(sig)) => format!("stopped by {}", interrupt::name(sig)),
            (Err(e), None) => e,
            (Ok(_), None) => format!("no answer within {limit:?}"),
        });
    }
    // The command is reaped: its pid, and so its group's, may be anyone's
    // now. A descendant still holding a pipe delays the reading by `grace`.
    let grace = Duration::from_secs(1);
    let text =
        |rx: mpsc::Receiver<Vec<u8>>| String::from_utf8_lossy(&rx.recv_timeout(grace).unwrap_or_default()).into_owned();
    first_line(&text(out))
        .or_else(|| first_line(&text(err)))
        .ok_or_else(|| "it printed nothing".to_string())
}

/// The first non-empty line of `text`, trimmed.
fn first_line(text: &str) -> Option<String> {
    text.lines().map(str::trim).find(|l| !l.is_empty()).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::Subject;

    fn cap(name: &'static str, ok: bool, detail: &str) -> Capability {
        Capability {
            name,
            ok,
            detail: detail.into(),
            disables: "--model io-uring is refused",
        }
    }

    #[test]
    fn the_text_aligns_names_and_says_what_a_missing_one_disables() {
        let t = text(&[
            cap("root", true, "uid 0"),
            cap("io_uring", false, "io_uring_setup: EPERM"),
        ]);
        assert_eq!(
            t,
            "ok      root      uid 0\n\
             missing io_uring  io_uring_setup: EPERM — disables: --model io-uring is refused\n"
        );
        assert_eq!(text(&[]), "");
    }

    #[test]
    fn a_run_needs_what_its_model_and_namespace_use() {
        let has = |spec: &RunSpec, root: bool, need: Need| needs(spec, root).iter().any(|(n, _)| *n == need);
        let uring = RunSpec::blank(Subject::Model(Model::IoUring));
        assert!(has(&uring, true, Need::IoUring) && has(&uring, true, Need::SockDiag));
        assert!(has(&uring, true, Need::NetworkNamespaces));
        // Without root the run stays in the host's namespace (and says so).
        assert!(!has(&uring, false, Need::NetworkNamespaces));
        let cbpf = RunSpec::blank(Subject::Model(Model::ReuseportCbpf));
        assert!(has(&cbpf, false, Need::ClassicBpf) && !has(&cbpf, false, Need::IoUring));
        let mut host = RunSpec::blank(Subject::Model(Model::Reuseport));
        host.netns = Netns::Host;
        assert_eq!(needs(&host, true).len(), 1, "sock_diag only");
    }

    #[test]
    fn a_refusal_names_the_capability_the_option_and_the_way_out() {
        let e = refusal(&cap("io_uring", false, "io_uring_setup: EPERM"), "--model io-uring");
        let m = e.to_string();
        assert!(
            m.starts_with("--model io-uring needs io_uring: it is not available here (io_uring_setup: EPERM)"),
            "{m}"
        );
        assert!(m.contains("harness doctor") && !m.contains('\n'), "{m}");
        let e = refusal(&cap(NETNS, false, "unshare(CLONE_NEWNET): EPERM"), "--netns run");
        assert!(e.to_string().contains("use --netns host"), "{e}");
    }

    #[test]
    fn errno_names_and_first_lines() {
        assert_eq!(errno_name(&io::Error::from_raw_os_error(libc::EPERM)), "EPERM");
        assert_eq!(errno_name(&io::Error::other("odd")), "odd");
        assert_eq!(
            first_line("\n  nginx version: nginx/1.22.1 \nmore"),
            Some("nginx version: nginx/1.22.1".into())
        );
        assert_eq!(first_line(" \n"), None);
    }

    #[test]
    fn a_version_command_that_hangs_is_stopped() {
        let limit = Duration::from_millis(200);
        let e = version(Path::new("/bin/sh"), &["-c", "echo started; exec sleep 600"], limit);
        // Not within the limit: stopped, whatever it printed before.
        assert_eq!(e, Err("no answer within 200ms".into()));
        let ok = version(
            Path::new("/bin/sh"),
            &["-c", "echo 'v1.2.3' >&2; exit 1"],
            VERSION_TIMEOUT,
        );
        assert_eq!(ok, Ok("v1.2.3".into()));
    }

    #[test]
    fn every_capability_says_what_it_disables_and_names_are_unique() {
        let caps = [root(), tcp_migrate_req(), tracefs()];
        for c in caps
            .iter()
            .chain(SERVERS.iter().map(|s| s.probe()).collect::<Vec<_>>().iter())
        {
            assert!(!c.disables.is_empty() && !c.detail.is_empty(), "{c:?}");
        }
        let mut names: Vec<&str> = SERVERS.iter().map(|s| s.binary).collect();
        names.extend([
            "root",
            NETNS,
            "sock_diag",
            "tracefs",
            "perf events",
            KERNEL_ACCEPTS,
            "bpf SOCKET_FILTER",
        ]);
        names.extend(["bpf SK_REUSEPORT", "classic BPF", "io_uring", "tcp_migrate_req"]);
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
