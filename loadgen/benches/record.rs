//! What recording one connection costs: the calls the engine makes when a
//! connection's response completes and the connection closes
//! ([`Recorder::start`], [`Recorder::response`] with its four phases and
//! per-worker attribution, [`Recorder::connection_ok`]), so the cost per
//! call can be read off and compared with the ~50 µs of kernel work a
//! loopback connection costs.
//!
//! Run with `cargo bench -p loadgen --bench record`.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use loadgen::{Recorder, RequestTimes};

/// Worker ids as servers send them, and latencies spread over 50 µs .. 5 ms
/// so the histograms see varied buckets.
fn inputs(workers: usize) -> (Vec<Vec<u8>>, Vec<RequestTimes>) {
    let ids = (0..workers).map(|k| k.to_string().into_bytes()).collect();
    let t0 = Instant::now();
    let times = (0..1024u64)
        .map(|i| {
            let us = |n: u64| Duration::from_micros(n);
            let lat = 50 + (i * 7919) % 5000;
            let start = t0 + us(i % 13);
            RequestTimes {
                intended: t0,
                start,
                first_byte: start + us(lat / 2),
                done: start + us(lat),
                established: None,
                stamps: None,
            }
        })
        .collect();
    (ids, times)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("record_connection");
    g.throughput(Throughput::Elements(1));
    for (name, workers, record, intervals) in [
        ("4_workers", 4, true, false),
        ("64_workers", 64, true, false),
        ("4_workers_intervals", 4, true, true),
        ("4_workers_no_record", 4, false, false),
    ] {
        let (ids, times) = inputs(workers);
        let mut rec = Recorder::new(record);
        let (tx, rx) = mpsc::channel();
        if intervals {
            // Intervals far longer than the benchmark: the per-response cost,
            // not the (per-interval) send.
            rec = rec.with_intervals(0, Instant::now(), Duration::from_secs(3600), tx);
        }
        let connect = Duration::from_micros(40);
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                let t = &times[i % times.len()];
                let id = &ids[i % ids.len()];
                rec.start(t.start);
                let w = rec.response(Some(black_box(id.as_slice())), black_box(t));
                rec.connection_ok(w, Some(connect), t.done);
                i = i.wrapping_add(1);
            })
        });
        black_box(rec.started());
        drop(rx);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
