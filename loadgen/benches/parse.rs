//! What parsing one response costs: the work [`ResponseParser`] does for
//! every connection the engine completes, so it can be set against the
//! ~50 µs of kernel work a loopback connection costs and against
//! `record_connection` (benches/record.rs), the other per-response cost.
//!
//! One iteration is what the engine does per response: `reset` and
//! `set_require_length(false)` (one request per connection), `feed_partial`
//! of every chunk of one complete response (from the socket read), and
//! reading the worker id (`worker`), all kept alive with `black_box`. The
//! bytes are already in memory: no read(2), no allocation (the parser is
//! reused, as in the engine). Cases:
//!
//! - `harness_worker`: the harness's own workers' response
//!   (`fleet::worker::response(3, false)` with its two stamps, copied as a
//!   literal since this crate must not depend on the fleet), in one chunk;
//! - `harness_worker_unstamped`: the same without the stamp headers (the
//!   response before the queue and service phases), so the two side by
//!   side give what reading the stamps costs;
//! - `nginx_like`: the headers nginx sends (Server, Date, Content-Type,
//!   Content-Length, Connection) plus `X-Worker: $pid`, in one chunk;
//! - `nginx_like_split`: the same bytes in two chunks split in the middle of
//!   the header block (the head is copied and the blank line searched for
//!   across the split);
//! - `body_attribution`: [`Attribution::Body`], the worker id being the
//!   body's first line (a server answering `$pid\n`), in one chunk.
//!
//! Run with `cargo bench -p loadgen --bench parse`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use loadgen::http::{Progress, ResponseParser};
use loadgen::Attribution;

/// `fleet::worker::response(3, false)`, stamped.
const HARNESS_WORKER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\nx-worker: 3\r\n\
x-accepted-ns: 00000012345678901234\r\nx-responded-ns: 00000012345678991234\r\n\
connection: close\r\n\r\nhello nodejs";

/// The same without its stamps.
const HARNESS_WORKER_UNSTAMPED: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\nx-worker: 3\r\nconnection: close\r\n\r\nhello nodejs";

/// nginx's headers for `return 200` with `add_header X-Worker $pid`.
const NGINX_LIKE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Date: Tue, 04 Jun 2024 10:00:00 GMT\r\n\
Content-Type: text/plain\r\n\
Content-Length: 12\r\n\
Connection: close\r\n\
X-Worker: 48213\r\n\
\r\n\
hello nodejs";

/// The worker named by the body's first line (`return 200 "$pid\n"`).
const BODY_ID: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Date: Tue, 04 Jun 2024 10:00:00 GMT\r\n\
Content-Type: text/plain\r\n\
Content-Length: 6\r\n\
Connection: close\r\n\
\r\n\
48213\n";

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_response");
    g.throughput(Throughput::Elements(1));
    // In the middle of the header block: inside the Date header.
    let split = NGINX_LIKE.len() / 3;
    assert!(NGINX_LIKE[split..].windows(4).any(|w| w == b"\r\n\r\n"));
    let header = Attribution::default();
    for (name, chunks, attribution, want) in [
        ("harness_worker", vec![HARNESS_WORKER], &header, &b"3"[..]),
        (
            "harness_worker_unstamped",
            vec![HARNESS_WORKER_UNSTAMPED],
            &header,
            b"3",
        ),
        ("nginx_like", vec![NGINX_LIKE], &header, b"48213"),
        (
            "nginx_like_split",
            vec![&NGINX_LIKE[..split], &NGINX_LIKE[split..]],
            &header,
            b"48213",
        ),
        ("body_attribution", vec![BODY_ID], &Attribution::Body, b"48213"),
    ] {
        let mut p = ResponseParser::new();
        p.set_attribution(attribution);
        // What is measured must be a whole, attributed response.
        let mut last = Progress::NeedMore;
        for chunk in &chunks {
            let (progress, used) = p.feed_partial(chunk).expect("the response parses");
            assert_eq!(used, chunk.len(), "{name}: every byte belongs to the response");
            last = progress;
        }
        assert_eq!(last, Progress::Complete, "{name}");
        assert_eq!(p.worker(), Some(want), "{name}");
        g.bench_function(name, |b| {
            b.iter(|| {
                p.reset();
                p.set_require_length(false);
                for chunk in &chunks {
                    let _ = black_box(p.feed_partial(black_box(chunk)));
                }
                black_box(p.worker());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
