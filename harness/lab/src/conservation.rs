//! Conservation: no connection is silently lost.
//!
//! Every run reconciles what the load generator saw with what the workers
//! counted: connections completed = connections the workers accepted; each
//! worker's accepted count = the connections whose first response named it;
//! its requests = the responses that named it; the dispatcher's hand-offs =
//! what each worker took; no response from an unknown worker; no failed
//! connection; no worker that died during the run. Each failure is reported
//! with its figures.
//!
//! For a real server the workers' counts are the server's own (Node's
//! workers' report, nginx's access log), so the same checks compare the
//! attribution with what the server counted. A `--target` server's counts
//! are unknown: only the attribution itself is checked (every response names
//! a worker, no connection failed), and the line says so.

use crate::account::{CountSource, Measured, RunResult};
use records::WorkerRow;

pub fn check(m: &Measured, workers: &[WorkerRow]) -> Vec<String> {
    let report = &m.report;
    let mut problems = Vec::new();
    if report.started != report.completed + report.errors.total() {
        problems.push(format!(
            "the load generator started {} connections but completed {} and saw {} fail",
            report.started,
            report.completed,
            report.errors.total()
        ));
    }
    // A worker killed on purpose may have taken connections it never
    // answered (its last `inflight`): they are among the failures.
    let killed = |w: &WorkerRow| m.account.killed.contains(&w.worker);
    let mut cut = 0;
    // Handed to a killed worker but still in its channel when it died.
    let mut undelivered = 0;
    for w in workers.iter().filter(|w| killed(w)) {
        undelivered += w.dispatched.unwrap_or(0).saturating_sub(w.accepted);
        let unanswered = w.accepted.saturating_sub(w.attributed);
        if w.accepted < w.attributed || unanswered > m.account.inflight as u64 {
            problems.push(format!(
                "killed worker {} accepted {} connections and {} name it: more than the {} it may have been serving",
                w.worker, w.accepted, w.attributed, m.account.inflight
            ));
        }
        cut += unanswered;
    }
    if cut + undelivered > report.errors.total() {
        problems.push(format!(
            "killed workers left {} connections unanswered but only {} failed",
            cut + undelivered,
            report.errors.total()
        ));
    }
    // Connections a signal's cancel closed (loadgen's CANCEL_GRACE ran out)
    // may have been accepted, and even answered, without being completed:
    // each is allowed once, across all workers.
    let cancelled = report.errors.cancelled;
    let unfinished: u64 = workers
        .iter()
        .filter(|w| !killed(w))
        .map(|w| w.accepted.saturating_sub(w.attributed))
        .sum();
    let accepted: u64 = workers.iter().map(|w| w.accepted).sum();
    let within = |got: u64, want: u64, slack: u64| got >= want && got - want <= slack;
    if !within(accepted, report.completed + cut, cancelled) {
        problems.push(format!(
            "the load generator completed {} connections but the workers accepted {accepted}",
            report.completed
        ));
    }
    let requests: u64 = workers.iter().map(|w| w.requests).sum();
    // A killed worker may also have sent a response and died before
    // counting it: up to `inflight` each.
    let uncounted = cut + (m.account.killed.len() * m.account.inflight) as u64;
    // (0 without kills: then the counts must be equal.)
    let cut_short = report.requests >= requests && report.requests - requests <= uncounted;
    let cancelled_short = within(requests, report.requests, cancelled);
    // Under kernel attribution a target's requests per worker are unknown.
    let by_kernel = m.account.source == CountSource::Kernel;
    if !cut_short && !cancelled_short && !by_kernel {
        problems.push(format!(
            "the load generator completed {} requests but the workers answered {requests}",
            report.requests
        ));
    }
    // With cancelled connections, what each worker accepted beyond what
    // names it must fit in the cancelled count, in all.
    let lenient = cancelled > 0 && unfinished <= cancelled;
    for w in workers {
        if killed(w) || by_kernel {
            continue;
        }
        if w.attributed != w.accepted && !(lenient && w.accepted > w.attributed) {
            problems.push(format!(
                "worker {} accepted {} connections but {} name it",
                w.worker, w.accepted, w.attributed
            ));
        }
        if w.attributed_requests != w.requests && !(lenient && w.requests > w.attributed_requests) {
            problems.push(format!(
                "worker {} answered {} requests but {} responses name it",
                w.worker, w.requests, w.attributed_requests
            ));
        }
        if let Some(d) = w.dispatched {
            if d != w.accepted {
                problems.push(format!("worker {} was handed {d} but took {}", w.worker, w.accepted));
            }
        }
    }
    for w in report.per_worker.iter().filter(|_| !by_kernel) {
        if !m.account.ids.contains(&w.id) {
            problems.push(format!("{} responses from unknown worker '{}'", w.requests, w.id));
        }
    }
    // Under injected faults failed connections are the measurement (the
    // conservation line states them by class), not a broken run.
    // Connections a signal cut short are the interruption's, which the
    // line states, not a loss.
    if !m.account.faulted {
        let errors = loadgen::ErrorCounts {
            cancelled: 0,
            ..report.errors
        };
        problems.extend(failed(&errors));
    }
    // A hand-off to a killed worker fails once, and the connection goes to
    // the next worker: under faults that is no loss.
    let dispatch_errors: u64 = m.account.counts.iter().map(|c| c.dispatch_errors).sum();
    if dispatch_errors > 0 && !m.account.faulted {
        problems.push(format!("{dispatch_errors} hand-offs from the dispatcher failed"));
    }
    for gone in &m.account.early_exits {
        problems.push(format!("{gone} during the run"));
    }
    problems.extend(kernel_witness(m, accepted));
    problems.extend(kernel_accepts(m, workers));
    problems
}

/// `--attribute kernel`: who the kernel saw accept against the workers'
/// own counts and the responses. Where nobody but the workers accepted,
/// each worker's kernel count equals its own count (and so the responses
/// naming it); where someone else accepted (a dispatcher, Node's cluster
/// master), the workers accepted nothing themselves. Either way the kernel
/// saw every connection the workers took accepted once, exactly when none
/// failed.
fn kernel_accepts(m: &Measured, workers: &[WorkerRow]) -> Vec<String> {
    let Some(all) = &m.account.kernel else {
        return Vec::new();
    };
    let exact = m.report.errors.total() == 0 && !m.account.faulted;
    // Workers that pass connections among themselves: the totals only.
    let source = match m.account.redistributes {
        true => CountSource::Kernel,
        false => m.account.source,
    };
    kernel_problems(all, workers, exact, source)
}

/// [`kernel_accepts`] on its figures: every watched process or thread,
/// the worker rows, whether the totals must be equal (nothing failed) and
/// whose counts the rows hold.
fn kernel_problems(
    all: &[crate::accepts::Accepted],
    workers: &[WorkerRow],
    exact: bool,
    source: CountSource,
) -> Vec<String> {
    let covered: Vec<&WorkerRow> = workers.iter().filter(|w| w.kernel_accepted.is_some()).collect();
    if covered.is_empty() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    let total: u64 = all.iter().map(|a| a.accepted).sum();
    let by_workers: u64 = covered.iter().filter_map(|w| w.kernel_accepted).sum();
    let others = total.saturating_sub(by_workers);
    let accepted: u64 = workers.iter().map(|w| w.accepted).sum();
    let whole = covered.len() == workers.len();
    if whole && exact && total != accepted {
        problems.push(format!(
            "the kernel saw {total} connections accepted but the workers took {accepted}"
        ));
    }
    if source == CountSource::Kernel {
        return problems;
    }
    let own = match source {
        CountSource::Server => "the server's own count",
        _ => "its own count",
    };
    let name = |w: &WorkerRow| format!("worker {} (pid {})", w.worker_id, w.pid);
    if others == 0 {
        for w in &covered {
            let k = w.kernel_accepted.unwrap_or(0);
            if k != w.accepted {
                problems.push(format!(
                    "{}: the kernel saw it accept {k} connections, {own} is {} and {} responses name it",
                    name(w),
                    w.accepted,
                    w.attributed
                ));
            }
        }
    } else {
        let elsewhere: Vec<String> = all
            .iter()
            .filter(|a| a.accepted > 0 && !covered.iter().any(|w| w.pid == a.id()))
            .map(|a| format!("{} by {}", a.accepted, a.id()))
            .collect();
        for w in covered.iter().filter(|w| w.kernel_accepted.unwrap_or(0) > 0) {
            problems.push(format!(
                "{}: the kernel saw it accept {} connections while others accepted too ({}): neither one dispatcher nor the workers alone",
                name(w),
                w.kernel_accepted.unwrap_or(0),
                elsewhere.join(", ")
            ));
        }
    }
    problems
}

/// The third witness: in the run's own network namespace the kernel's
/// counters are the run's alone, so the connections it saw opened must be
/// those the load generator started (Tcp.ActiveOpens: a SYN sent) and those
/// the server side established (Tcp.PassiveOpens: a child socket made on
/// the final ACK). Exactly, when nothing failed; when connections failed
/// they bound each other (accepted <= established <= started).
fn kernel_witness(m: &Measured, accepted: u64) -> Vec<String> {
    let Some(k) = m.kernel.as_ref().filter(|k| k.own) else {
        return Vec::new();
    };
    let (Some(active), Some(passive)) = (k.get("Tcp.ActiveOpens"), k.get("Tcp.PassiveOpens")) else {
        return vec!["the kernel's Tcp.ActiveOpens or Tcp.PassiveOpens was not read".into()];
    };
    let started = m.report.started as i64;
    let accepted = accepted as i64;
    let mut problems = Vec::new();
    if m.report.errors.total() == 0 && !m.account.faulted {
        if active != started {
            problems.push(format!(
                "the kernel saw {active} connections opened (Tcp.ActiveOpens) but the load generator started {started}"
            ));
        }
        if passive != accepted {
            problems.push(format!(
                "the kernel saw {passive} connections established (Tcp.PassiveOpens) but the workers accepted {accepted}"
            ));
        }
    } else if !(accepted <= passive && passive <= active && active <= started) {
        problems.push(format!(
            "the kernel's counts do not bound the run's: accepted {accepted} <= established {passive} (Tcp.PassiveOpens) <= opened {active} (Tcp.ActiveOpens) <= started {started} does not hold"
        ));
    }
    problems
}

/// One line saying whether conservation held, with the figures; for a run
/// a signal cut short, first that it was interrupted.
pub fn line(r: &RunResult) -> String {
    let mut text = match r.interrupted {
        Some(sig) => format!(
            "interrupted by {}: the load was cut short after {} connections (complete=false); {}",
            crate::interrupt::name(sig),
            r.summary.connections,
            held(r)
        ),
        None => held(r),
    };
    // Also where failures are not problems (injected faults).
    if r.summary.err_addr_not_available > 0 && !text.contains(SOURCES_HINT) {
        text.push_str(&format!(
            "; {} connections found no free local port (EADDRNOTAVAIL): {SOURCES_HINT}",
            r.summary.err_addr_not_available
        ));
    }
    text
}

/// Reports "N connections failed (class n, ...)"; when some found no free
/// local address (EADDRNOTAVAIL: the client's ephemeral ports ran out), with
/// the hint to spread the load over more source addresses. `None`: none
/// failed.
fn failed(errors: &loadgen::ErrorCounts) -> Option<String> {
    let lost = errors.total();
    if lost == 0 {
        return None;
    }
    let classes: Vec<String> = errors
        .iter()
        .filter(|(_, c)| *c > 0)
        .map(|(k, c)| format!("{k} {c}"))
        .collect();
    let mut text = format!("{lost} connections failed ({})", classes.join(", "));
    if errors.addr_not_available > 0 {
        text.push_str(&format!(
            "; {} found no free local port (EADDRNOTAVAIL): {SOURCES_HINT}",
            errors.addr_not_available
        ));
    }
    Some(text)
}

/// What to do when connections fail with EADDRNOTAVAIL.
pub const SOURCES_HINT: &str = "widen --sources (e.g. --sources 127.0.0.1-127.0.0.32)";

/// Whether conservation held, with the figures.
fn held(r: &RunResult) -> String {
    let ok = r.problems.is_empty();
    if ok && r.source == CountSource::Kernel {
        format!(
            "conservation: ok as far as it can be checked ({} completed = {} the kernel saw {} workers accept, none failed; the responses name no worker and the server's own counts are unknown)",
            r.summary.completed,
            r.summary.accepted,
            r.workers.len()
        )
    } else if ok && r.source == CountSource::Attribution {
        format!(
            "conservation: ok as far as it can be checked ({} completed, every response named one of {} workers, none failed; the server's own counts are unknown)",
            r.summary.completed,
            r.workers.len()
        )
    } else if ok && r.summary.errors > 0 {
        format!(
            "conservation: ok ({} started = {} completed + {} failed {}: {}; every surviving worker's count equals the responses attributed to it)",
            r.summary.completed + r.summary.errors,
            r.summary.completed,
            r.summary.errors,
            if r.summary.errors == r.summary.err_cancelled {
                "when the signal cut the connections in flight"
            } else {
                "during the injected faults or the interruption"
            },
            failure_classes(r)
        )
    } else if ok {
        let requests = if r.summary.requests != r.summary.completed {
            let answered: u64 = r.workers.iter().map(|w| w.requests).sum();
            format!(", {} requests = {answered} answered", r.summary.requests)
        } else {
            String::new()
        };
        let whose = if r.source == CountSource::Server {
            "the server's own count of every worker equals"
        } else {
            "every worker's count equals"
        };
        let kernel = match (
            r.netns.as_str(),
            r.summary.kernel_active_opens,
            r.summary.kernel_passive_opens,
        ) {
            ("own", Some(a), Some(p)) => format!("; the kernel saw {a} opened and {p} established"),
            _ => String::new(),
        };
        let accepts = match r.summary.kernel_accepted {
            Some(k) if r.workers.iter().all(|w| w.kernel_accepted == Some(w.accepted)) => {
                format!("; the kernel saw {k} accepted, each worker's accepts equal to its count")
            }
            Some(k) if r.workers.iter().all(|w| w.kernel_accepted == Some(0)) => {
                format!("; the kernel saw {k} accepted, all by a process that is no worker (a dispatcher)")
            }
            Some(k) => format!("; the kernel saw {k} accepted"),
            None => String::new(),
        };
        format!(
            "conservation: ok ({} completed = {} accepted{requests}; {whose} the responses attributed to it{kernel}{accepts})",
            r.summary.completed, r.summary.accepted
        )
    } else {
        format!("conservation: FAILED: {}", r.problems.join("; "))
    }
}

/// "reset 3, timeout 1": the failure classes that occurred.
fn failure_classes(r: &RunResult) -> String {
    let s = &r.summary;
    let classes = [
        ("refused", s.err_refused),
        ("reset", s.err_reset),
        ("timeout", s.err_timeout),
        ("address not available", s.err_addr_not_available),
        ("malformed", s.err_malformed),
        ("other", s.err_other),
        ("cancelled", s.err_cancelled),
    ];
    let named: Vec<String> = classes
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    named.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accepts::Accepted;

    fn row(pid: i32, accepted: u64, attributed: u64, kernel: Option<u64>) -> WorkerRow {
        WorkerRow {
            pid,
            worker_id: pid.to_string(),
            accepted,
            attributed,
            kernel_accepted: kernel,
            ..WorkerRow::default()
        }
    }

    fn by(pid: i32, accepted: u64) -> Accepted {
        Accepted {
            pid,
            tid: None,
            accepted,
        }
    }

    #[test]
    fn the_kernel_is_checked_against_each_workers_own_count_and_named_where_it_differs() {
        let rows = [row(10, 5, 5, Some(5)), row(11, 7, 7, Some(7))];
        let all = [by(1, 0), by(10, 5), by(11, 7)];
        assert!(kernel_problems(&all, &rows, true, CountSource::Server).is_empty());
        // The server says 7 and the responses 7, the kernel 6.
        let rows = [row(10, 5, 5, Some(5)), row(11, 7, 7, Some(6))];
        let all = [by(10, 5), by(11, 6)];
        let p = kernel_problems(&all, &rows, true, CountSource::Server);
        assert_eq!(
            p,
            [
                "the kernel saw 11 connections accepted but the workers took 12",
                "worker 11 (pid 11): the kernel saw it accept 6 connections, the server's own count is 7 and 7 responses name it"
            ]
        );
        // When connections failed the totals need not meet.
        assert_eq!(kernel_problems(&all, &rows, false, CountSource::Server).len(), 1);
    }

    #[test]
    fn a_dispatcher_accepts_everything_and_workers_that_accepted_beside_it_are_named() {
        let rows = [row(10, 5, 5, Some(0)), row(11, 7, 7, Some(0))];
        let all = [by(9, 12), by(10, 0), by(11, 0)];
        assert!(kernel_problems(&all, &rows, true, CountSource::Workers).is_empty());
        let rows = [row(10, 5, 5, Some(2)), row(11, 7, 7, Some(0))];
        let all = [by(9, 10), by(10, 2), by(11, 0)];
        let p = kernel_problems(&all, &rows, true, CountSource::Workers);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("worker 10 (pid 10): the kernel saw it accept 2") && p[0].contains("10 by 9"),
            "{p:?}"
        );
    }

    #[test]
    fn a_targets_kernel_count_is_only_checked_in_total() {
        let rows = [row(10, 5, 0, Some(5)), row(11, 7, 0, Some(7))];
        let all = [by(10, 5), by(11, 7)];
        assert!(kernel_problems(&all, &rows, true, CountSource::Kernel).is_empty());
    }

    #[test]
    fn address_exhaustion_names_the_remedy() {
        assert_eq!(failed(&loadgen::ErrorCounts::default()), None);
        let refused = loadgen::ErrorCounts {
            refused: 2,
            ..Default::default()
        };
        let text = failed(&refused).unwrap();
        assert_eq!(text, "2 connections failed (refused 2)");
        let ports = loadgen::ErrorCounts {
            addr_not_available: 5,
            reset: 1,
            ..Default::default()
        };
        let text = failed(&ports).unwrap();
        assert!(text.starts_with("6 connections failed ("), "{text}");
        assert!(text.contains("addr_not_available 5"), "{text}");
        assert!(
            text.contains("widen --sources (e.g. --sources 127.0.0.1-127.0.0.32)"),
            "{text}"
        );
    }
}
