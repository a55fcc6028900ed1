//! One run, end to end, whatever its subject: enter the run's network
//! namespace, start the subject, warm up, take the baselines (the subject's
//! and the kernel's counters), drive the measured load while ticking the
//! subject and sampling the accept queues, finish the subject (always), then
//! build the rows, reconcile, and return the result.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use crate::accepts::{Accepted, Watch};
use crate::account::{CountSource, Measured, RunResult};
use crate::kernel::{Counters, Delta};
use crate::load::{drive, warm_up, Driven};
use crate::netns::RunNamespace;
use crate::queue::Sampler;
use crate::spec::RunSpec;
use crate::subject::Subject;
use crate::{conservation, rows};
use loadgen::Stop;

/// Runs `spec` once, writing its time series and latency logs into `dir`,
/// and returns its records. The fleet (or server) is gone, and the harness
/// back in the host's network namespace, when this returns, whatever
/// happened.
pub fn execute(spec: &RunSpec, dir: &Path) -> anyhow::Result<RunResult> {
    spec.prepare_process().context("raising the open-file limit")?;
    // apt-get needs the host's network: install before leaving it.
    if let Subject::Server(s) = &spec.subject {
        s.ensure_installed()?;
    }
    // Dropped last: the subject is gone before the thread goes back.
    let ns = RunNamespace::enter(spec)?;
    let signalled = || crate::interrupt::interrupted().is_some();
    let mut subject = crate::running::start(&spec.subject, spec, &signalled)?;
    // Counters on the subject's threads, once it is ready; a failure stops
    // the subject before it is reported.
    let mut watch = match watch_accepts(spec, subject.as_ref()) {
        Ok(w) => w,
        Err(e) => {
            let _ = subject.finish(None, dir);
            return Err(e);
        }
    };
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
    let mut before: Option<Counters> = None;
    let mut sampler: Option<Sampler> = None;
    let drove = warm.and_then(|warm| {
        subject.begin(warm.as_ref(), dir)?;
        if let Some(w) = &mut watch {
            w.baseline()?;
        }
        before = Some(Counters::read().context("reading the kernel's counters")?);
        sampler = Some(Sampler::start(
            addr.port(),
            spec.queue_every(),
            dir,
            listener_owners(&subject.listen_inodes()),
            Instant::now(),
        )?);
        drive(measured_cfg, spec.interval, &spec.pin_loadgen, dir, |t_ms| {
            subject.tick(t_ms)
        })
    });
    let queues = sampler.map(Sampler::finish).transpose();
    let epoch_ns = subject.epoch_ns();
    let after = Counters::read().context("reading the kernel's counters");
    let sysctls = ns.sysctls(spec);
    // Read at the end of the load, before the subject stops.
    let accepts = watch.as_ref().map(Watch::read).transpose();
    drop(watch);
    // The subject stops whatever happened to the load.
    let account = subject.finish(drove.as_ref().ok(), dir);
    let Driven {
        report,
        started_ns,
        loadgen_cpu,
        interrupted,
        ..
    } = drove?;
    let mut account = account?;
    if let Some(all) = accepts? {
        account = with_kernel(account, all, spec);
    }
    let queues = queues?;
    if spec.connection_log {
        crate::connections::write(dir, &report.traced, epoch_ns.unwrap_or(started_ns))?;
    }
    let kernel = match before {
        Some(before) => Some(Delta {
            before,
            after: after?,
            own: ns.own(),
        }),
        None => None,
    };
    if let Some(k) = &kernel {
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in k.rows() {
            w.serialize(row)?;
        }
        let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?;
        records::write_atomic(dir, records::names::KERNEL, &bytes)?;
    }
    let interrupted = interrupted.or(account.interrupted);
    let measured = Measured {
        report,
        loadgen_cpu,
        account,
        kernel,
        queues,
    };
    let (summary, workers) = rows::build(spec, &measured);
    if let Some(accepts) = rows::accept_rows(spec, &measured, &workers) {
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in accepts {
            w.serialize(row)?;
        }
        let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?;
        records::write_atomic(dir, records::names::ACCEPTS, &bytes)?;
    }
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
        netns: ns.mode(),
        sysctls,
        kernel_warning: measured.kernel.as_ref().and_then(Delta::warning),
    })
}

/// Opens the kernel's accept counters on the subject's processes (its
/// own, or `--target-pid`'s) when the run asks for them.
fn watch_accepts(spec: &RunSpec, subject: &dyn crate::running::Running) -> anyhow::Result<Option<Watch>> {
    if !spec.kernel_attribution {
        return Ok(None);
    }
    if spec.subject.model() == Some(fleet::model::Model::IoUring) {
        eprintln!(
            "harness: --attribute kernel: io-uring's accepts are not counted (IORING_OP_ACCEPT takes connections without an accept system call); kernel_accepted stays empty"
        );
    }
    let pids = match spec.target_pids.is_empty() {
        true => subject.kernel_pids(),
        false => spec.target_pids.clone(),
    };
    if pids.is_empty() {
        return Err(anyhow::anyhow!(crate::UsageError(format!(
            "--attribute kernel: no process holds a socket listening on port {} here; name the server's processes with --target-pid PID",
            subject.addr().port()
        ))));
    }
    Watch::open(&pids, spec.kernel_by).map(Some)
}

/// The account with the kernel's count in it; for a target whose responses
/// name nobody, the kernel's workers are the workers.
fn with_kernel(mut account: crate::account::Account, all: Vec<Accepted>, spec: &RunSpec) -> crate::account::Account {
    if let Subject::Target(_) = &spec.subject {
        let named: Vec<i32> = spec.target_pids.clone();
        let workers = crate::accepts::distribution(&all, &named);
        let ids = workers.iter().map(|a| a.id().to_string()).collect();
        let counts = workers
            .iter()
            .map(|a| fleet::counters::Snapshot {
                accepted: a.accepted,
                ..Default::default()
            })
            .collect();
        let interrupted = account.interrupted;
        account = crate::account::Account::attributed(ids, counts, CountSource::Kernel);
        account.processes = workers.iter().map(|a| a.pid).collect();
        account.interrupted = interrupted;
    }
    account.kernel = Some(all);
    account.redistributes = matches!(spec.subject, Subject::Server(crate::servers::Server::Haproxy));
    account
}

/// Listener inode -> the worker taking connections from it, for the
/// listeners exactly one worker holds.
fn listener_owners(inodes: &[Option<u64>]) -> BTreeMap<u64, usize> {
    let mut owners: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (w, inode) in inodes.iter().enumerate() {
        if let Some(i) = inode {
            owners.entry(*i).or_default().push(w);
        }
    }
    owners
        .into_iter()
        .filter(|(_, ws)| ws.len() == 1)
        .map(|(i, ws)| (i, ws[0]))
        .collect()
}
