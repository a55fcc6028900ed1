//! One run, end to end, whatever its subject: start the subject, warm up,
//! take the baselines, drive the measured load while ticking the subject,
//! finish the subject (always), then build the rows, reconcile, and return
//! the result.

use std::path::Path;

use anyhow::Context;

use crate::account::{Measured, RunResult};
use crate::load::{drive, warm_up, Driven};
use crate::spec::RunSpec;
use crate::{conservation, rows};
use loadgen::Stop;

/// Runs `spec` once, writing its time series and latency logs into `dir`,
/// and returns its records. The fleet (or server) is gone when this returns,
/// whatever happened.
pub fn execute(spec: &RunSpec, dir: &Path) -> anyhow::Result<RunResult> {
    spec.prepare_process().context("raising the open-file limit")?;
    let signalled = || crate::interrupt::interrupted().is_some();
    let mut subject = crate::running::start(&spec.subject, spec, &signalled)?;
    let addr = subject.addr();
    let (attribution, allow_remote) = subject.attribution();
    let config = |stop: Stop| {
        let mut cfg = spec.loadgen_config(addr, stop);
        cfg.attribution = attribution.clone();
        cfg.allow_remote = allow_remote;
        cfg
    };
    let warm = match spec.warmup.is_zero() {
        true => Ok(None),
        false => warm_up(&config(Stop::Duration(spec.warmup))).map(Some),
    };
    let measured_cfg = config(spec.stop);
    let drove = warm.and_then(|warm| {
        subject.begin(warm.as_ref(), dir)?;
        drive(measured_cfg, spec.interval, &spec.pin_loadgen, dir, |t_ms| {
            subject.tick(t_ms)
        })
    });
    // The subject stops whatever happened to the load.
    let account = subject.finish(drove.as_ref().ok(), dir);
    let Driven {
        report,
        loadgen_cpu,
        interrupted,
        ..
    } = drove?;
    let account = account?;
    let interrupted = interrupted.or(account.interrupted);
    let measured = Measured {
        report,
        loadgen_cpu,
        account,
    };
    let (summary, workers) = rows::build(spec, &measured);
    let problems = conservation::check(&measured, &workers);
    Ok(RunResult {
        summary: records::SummaryRow {
            conserved: problems.is_empty(),
            complete: interrupted.is_none(),
            ..summary
        },
        params: crate::params::columns(spec),
        workers,
        problems,
        source: measured.account.source,
        interrupted,
    })
}
