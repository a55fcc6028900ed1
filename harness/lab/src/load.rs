//! The load itself: a warm-up, then the measured load while the subject is
//! sampled every interval, with the latency logs written as it goes.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context};

use loadgen::{IntervalHist, Report};
use records::hlog::HlogWriter;
use records::timeseries::{TimeseriesRow, TimeseriesWriter};

/// What [`drive`] measured.
pub struct Driven {
    pub report: Report,
    /// When the load began (CLOCK_MONOTONIC ns).
    pub started_ns: u64,
    /// CPU time of the harness process (the load generator) over the load.
    pub loadgen_cpu: Duration,
    /// What the load generator attributed to each worker, interval by interval.
    pub intervals: Vec<IntervalCounts>,
    /// The signal that cut the load short (see `interrupt.rs`).
    pub interrupted: Option<i32>,
}

/// Drives the measured load `cfg` while calling `sample` every `interval`
/// (with the ms since the load began; the load generator's threads pinned
/// to `pin` when it is not empty), writes the interval
/// latency log and the whole-run histograms into `dir`, and returns what the
/// load generator saw.
pub fn drive(
    mut cfg: loadgen::Config,
    interval: Duration,
    pin: &[usize],
    dir: &Path,
    mut sample: impl FnMut(f64) -> anyhow::Result<()>,
) -> anyhow::Result<Driven> {
    let cpu0 = sys::self_cpu();
    // Intervals also without latency recording: they carry the per-worker
    // counts that make a real server's time series.
    let (tx, rx) = mpsc::channel::<IntervalHist>();
    cfg.intervals = Some(loadgen::Intervals {
        every: interval,
        sink: tx,
    });
    let cancel = std::sync::Arc::clone(&cfg.cancel);
    // SIGINT/SIGTERM (interrupt.rs): cancel the load as a sampling error
    // would, but end the run normally, marked as cut short.
    let mut signal = crate::interrupt::interrupted();
    if signal.is_some() {
        cancel.store(true, Ordering::Relaxed);
    }
    let started = Instant::now();
    let started_ns = sys::monotonic_ns();
    let wall = SystemTime::now();
    let threads = cfg.threads;
    let record = cfg.record;
    let (report, intervals) = std::thread::scope(|s| -> anyhow::Result<(Report, Vec<IntervalCounts>)> {
        let log = s.spawn(move || interval_log(rx, threads, dir, wall, record));
        // The load thread owns the config, so the interval channel closes when
        // the load ends and the log writer can finish.
        // It also owns `done`, whose closing wakes the sampler at once.
        let (done, finished) = mpsc::channel::<()>();
        let load = s.spawn(move || {
            let _done = done;
            if !pin.is_empty() {
                // The load generator's threads start from this one and inherit its CPUs.
                sys::pin_to(pin).context("pinning the load generator")?;
            }
            loadgen::run(&cfg).context("running the load generator")
        });
        let mut next = started + interval;
        let mut sampled = Ok(());
        while let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(
            next.min(Instant::now() + crate::interrupt::POLL)
                .saturating_duration_since(Instant::now()),
        ) {
            // Interrupted: start nothing new, let in-flight connections finish.
            if signal.is_none() {
                signal = crate::interrupt::interrupted();
                if signal.is_some() {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
            if Instant::now() < next {
                continue;
            }
            if let Err(e) = sample(ms_since(started)) {
                // Stop the load at once; report this error, not the load's.
                cancel.store(true, Ordering::Relaxed);
                sampled = Err(e);
                break;
            }
            next += interval;
            let now = Instant::now();
            if next < now {
                next = now + interval;
            }
        }
        let report = load.join().map_err(|_| anyhow!("the load generator panicked"))?;
        let intervals = log.join().map_err(|_| anyhow!("the interval log writer panicked"))??;
        sampled?;
        Ok((report?, intervals))
    })?;
    let loadgen_cpu = sys::self_cpu().saturating_sub(cpu0);
    write_overall_histograms(dir, &report, report.run_start)?;
    Ok(Driven {
        report,
        started_ns,
        loadgen_cpu,
        intervals,
        interrupted: signal,
    })
}

/// Runs a warm-up load `cfg` to its end, or until a SIGINT/SIGTERM
/// (interrupt.rs) cancels it; the measured load after it then starts
/// nothing and the run is marked as cut short.
pub fn warm_up(cfg: &loadgen::Config) -> anyhow::Result<Report> {
    let cancel = std::sync::Arc::clone(&cfg.cancel);
    std::thread::scope(|s| -> anyhow::Result<Report> {
        let load = s.spawn(|| loadgen::run(cfg));
        while !load.is_finished() {
            if crate::interrupt::interrupted().is_some() {
                cancel.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let report = load
            .join()
            .map_err(|_| anyhow!("the warm-up load generator panicked"))?;
        Ok(report?)
    })
    .context("warm-up load")
}

pub(crate) fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// What the load generator attributed to each worker in one interval, all
/// threads merged: the time series of a server the harness cannot sample.
#[derive(Debug, Clone, Default)]
pub struct IntervalCounts {
    /// End of the interval, since the load began.
    pub end: Duration,
    /// Worker id -> (connections completed, requests answered).
    pub workers: std::collections::BTreeMap<String, (u64, u64)>,
}

type Pending = std::collections::BTreeMap<u64, (IntervalHist, usize)>;

/// Receives each load generator thread's interval histograms, merges those
/// of the same interval, writes them in order to `latency.hlog` (when
/// latency is recorded) and returns each interval's per-worker counts.
/// Memory stays flat but for those counts: an interval is written as soon as
/// every thread has sent it.
fn interval_log(
    rx: mpsc::Receiver<IntervalHist>,
    threads: usize,
    dir: &Path,
    start: SystemTime,
    record: bool,
) -> anyhow::Result<Vec<IntervalCounts>> {
    let mut writer: Option<HlogWriter> = None;
    let mut pending = Pending::default();
    let mut counts = Vec::new();
    let mut next = 0u64;
    let mut flush = |pending: &mut Pending, writer: &mut Option<HlogWriter>, all: bool| -> anyhow::Result<()> {
        while let Some(entry) = pending.first_entry() {
            if *entry.key() != next && !all {
                break;
            }
            if entry.get().1 < threads && !all {
                break;
            }
            let (h, _) = entry.remove();
            if let Some(w) = writer.as_mut() {
                w.write(None, h.start, h.length, &h.total)?;
            }
            let mut workers = std::collections::BTreeMap::new();
            for w in &h.workers {
                let e: &mut (u64, u64) = workers.entry(w.id.clone()).or_default();
                e.0 += w.connections;
                e.1 += w.requests;
            }
            counts.push(IntervalCounts {
                end: h.start + h.length,
                workers,
            });
            next = h.index + 1;
        }
        Ok(())
    };
    for h in rx {
        if writer.is_none() && record {
            writer = Some(HlogWriter::create(
                &dir.join("latency.hlog"),
                start,
                "harness: corrected total latency (us) of the requests completed in each interval, all workers",
            )?);
        }
        match pending.get_mut(&h.index) {
            Some((merged, n)) => {
                merged
                    .total
                    .add(&h.total)
                    .map_err(|e| anyhow!("merging interval histograms: {e:?}"))?;
                merged.workers.extend(h.workers);
                *n += 1;
            }
            None => {
                pending.insert(h.index, (h, 1));
            }
        }
        flush(&mut pending, &mut writer, false)?;
    }
    flush(&mut pending, &mut writer, true)?;
    if let Some(w) = writer {
        w.finish()?;
    }
    Ok(counts)
}

/// `histograms.hlog`: the whole run's histograms, one tagged line each, so
/// runs can be merged without loss.
fn write_overall_histograms(dir: &Path, report: &Report, start: SystemTime) -> anyhow::Result<()> {
    let mut w = HlogWriter::create(
        &dir.join("histograms.hlog"),
        start,
        "harness: whole-run latency histograms (us); tags: <phase> overall, worker<id>-<phase> per worker",
    )?;
    let length = report.elapsed;
    let phases = |p: &loadgen::Phases| {
        [
            ("total", p.total.clone()),
            ("total_uncorrected", p.total_uncorrected.clone()),
            ("connect", p.connect.clone()),
            ("queue", p.queue.clone()),
            ("service", p.service.clone()),
            ("ttfb", p.ttfb.clone()),
        ]
    };
    for (name, h) in phases(&report.phases) {
        w.write(Some(name), Duration::ZERO, length, &h)?;
    }
    for wr in &report.per_worker {
        let id: String = wr
            .id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        for (name, h) in phases(&wr.phases) {
            w.write(Some(&format!("worker{id}-{name}")), Duration::ZERO, length, &h)?;
        }
    }
    w.finish()?;
    Ok(())
}

/// `timeseries.csv` from what the load generator attributed in each
/// interval (a server's own counters cannot be sampled while it runs): the
/// same columns as a fleet's, with `accepted` the connections completed in
/// the interval and no spurious wakeups or open connections known (0).
pub fn write_attributed_timeseries(dir: &Path, ids: &[String], intervals: &[IntervalCounts]) -> anyhow::Result<()> {
    let mut series = TimeseriesWriter::create(&dir.join(records::names::TIMESERIES))?;
    for iv in intervals {
        for (worker, id) in ids.iter().enumerate() {
            let (accepted, requests) = iv.workers.get(id).copied().unwrap_or((0, 0));
            series.write(&TimeseriesRow {
                t_ms: iv.end.as_secs_f64() * 1000.0,
                worker,
                accepted,
                requests,
                spurious_wakeups: 0,
                active: 0,
            })?;
        }
    }
    series.finish()?;
    Ok(())
}
