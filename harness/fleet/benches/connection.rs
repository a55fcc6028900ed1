//! What one connection costs end to end when the load generator drives a
//! local fleet: the figure every run's connection rate is made of, and the
//! one to watch when the engine or the workers change.
//!
//! A `reuseport` fleet of 4 worker processes is forked once (with the
//! harness library, as `harness run` does) on 127.0.0.1 and an ephemeral
//! port, and stopped when the benchmarks are done; dropping the fleet (a
//! panic unwinding through here) SIGKILLs and reaps every worker, and the
//! workers die with this process if it is killed (PR_SET_PDEATHSIG).
//!
//! One iteration is one connection: a sample of N iterations is one
//! `loadgen::run` of a closed loop with `Stop::Connections(N)` and latency
//! recorded (as the harness runs it), timed from the call to its return,
//! and every connection must complete. Each run also starts its engine
//! threads and histograms; criterion's linear sampling (N, 2N, .. 10N
//! connections per sample) fits a slope, so that fixed cost stays out of
//! the per-connection time it reports. The load generator shares the two
//! CPUs with the workers, so this is the whole machine's cost per connection:
//! connect, request, the worker's accept, read, write and close, the
//! response's parsing and recording.
//!
//! - `concurrency_1`: one connection at a time, the latency of a connection
//!   end to end (one engine thread);
//! - `concurrency_64`: 64 in flight (the default engine threads), the time
//!   per connection at full throughput (1 / connection rate).
//!
//! Run with `cargo bench -p harness --bench connection` (about 20 s).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use fleet::model::{Model, ModelOpts};
use fleet::worker::WorkerPlan;
use fleet::{Fleet, FleetKind};
use loadgen::{Config, Stop};

const WORKERS: usize = 4;

/// Forks the fleet (this process must still have one thread) and waits
/// until every worker listens.
fn start_fleet() -> (Fleet, SocketAddr) {
    let model = Model::Reuseport;
    let listeners = model
        .prepare(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            WORKERS,
            &ModelOpts::default(),
        )
        .expect("setting up reuseport on 127.0.0.1");
    let addr = listeners.addr();
    let mut fleet = Fleet::start(model, listeners, WORKERS, &WorkerPlan::default(), FleetKind::Processes)
        .expect("forking the fleet");
    fleet
        .wait_ready(Duration::from_secs(10), &|| false)
        .expect("the fleet gets ready");
    (fleet, addr)
}

fn bench(c: &mut Criterion) {
    let (mut fleet, addr) = start_fleet();

    let mut g = c.benchmark_group("connection");
    g.throughput(Throughput::Elements(1))
        .sampling_mode(SamplingMode::Linear)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for concurrency in [1, 64] {
        g.bench_function(format!("concurrency_{concurrency}"), |b| {
            b.iter_custom(|iters| {
                let mut cfg = Config::new(addr, concurrency, Stop::Connections(iters));
                cfg.record = true;
                let t0 = Instant::now();
                let report = loadgen::run(&cfg).expect("loadgen::run");
                let elapsed = t0.elapsed();
                assert_eq!(
                    (report.started, report.completed, report.errors.total()),
                    (iters, iters, 0),
                    "every connection must complete: {report:?}"
                );
                elapsed
            })
        });
        // A worker that died would have turned connections into errors.
        fleet.check_children().expect("checking the workers");
    }
    g.finish();

    let teardown = fleet.stop(&|| false).expect("stopping the fleet");
    assert!(
        teardown.early_exits.is_empty(),
        "workers exited during the benchmark: {:?}",
        teardown.early_exits
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
