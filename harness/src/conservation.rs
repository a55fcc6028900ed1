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

use crate::record::WorkerRow;
use crate::run::{CountSource, Measured, RunResult};

pub fn check(m: &Measured, workers: &[WorkerRow]) -> Vec<String> {
    let report = &m.report;
    let mut problems = Vec::new();
    let accepted: u64 = workers.iter().map(|w| w.accepted).sum();
    if report.completed != accepted {
        problems.push(format!(
            "the load generator completed {} connections but the workers accepted {accepted}",
            report.completed
        ));
    }
    let requests: u64 = workers.iter().map(|w| w.requests).sum();
    if report.requests != requests {
        problems.push(format!(
            "the load generator completed {} requests but the workers answered {requests}",
            report.requests
        ));
    }
    for w in workers {
        if w.attributed != w.accepted {
            problems.push(format!(
                "worker {} accepted {} connections but {} name it",
                w.worker, w.accepted, w.attributed
            ));
        }
        if w.attributed_requests != w.requests {
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
    for w in &report.per_worker {
        if !m.ids.contains(&w.id) {
            problems.push(format!("{} responses from unknown worker '{}'", w.requests, w.id));
        }
    }
    let lost = report.errors.total();
    if lost > 0 {
        let classes: Vec<String> = report
            .errors
            .iter()
            .filter(|(_, c)| *c > 0)
            .map(|(k, c)| format!("{k} {c}"))
            .collect();
        problems.push(format!("{lost} connections failed ({})", classes.join(", ")));
    }
    let dispatch_errors: u64 = m.counts.iter().map(|c| c.dispatch_errors).sum();
    if dispatch_errors > 0 {
        problems.push(format!("{dispatch_errors} hand-offs from the dispatcher failed"));
    }
    for gone in &m.early_exits {
        problems.push(format!("{gone} during the run"));
    }
    problems
}

/// One line saying whether conservation held, with the figures.
pub fn line(r: &RunResult) -> String {
    if r.ok() && r.source == CountSource::Attribution {
        format!(
            "conservation: ok as far as it can be checked ({} completed, every response named one of {} workers, none failed; the server's own counts are unknown)",
            r.summary.completed,
            r.workers.len()
        )
    } else if r.ok() {
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
        format!(
            "conservation: ok ({} completed = {} accepted{requests}; {whose} the responses attributed to it)",
            r.summary.completed, r.summary.accepted
        )
    } else {
        format!("conservation: FAILED: {}", r.problems.join("; "))
    }
}
