//! What handing one connection to a worker costs in the dispatch models
//! (`dispatch-rr`, `dispatch-least`): the dispatcher accepts a connection and
//! passes its descriptor to a worker over a SOCK_SEQPACKET Unix socket with
//! SCM_RIGHTS, a cost the accept models without a dispatcher do not pay.
//!
//! One iteration of `scm_rights` is one hand-off as the dispatch models make
//! it, with the same calls (`sys::seqpacket_pair`, `send_fd`,
//! `recv_fd`): `send_fd` of an accepted loopback TCP socket over the pair,
//! `recv_fd` of it on the other end, and dropping the received `OwnedFd`
//! (close(2) of one reference to the socket, which stays open through the
//! bench's own copy). That close is part of the real cost: the dispatcher
//! closes its copy of every connection it hands off, the worker keeping the
//! other. Both ends are in this one thread, so the cross-process wakeup of a
//! real hand-off (the worker sleeping in recvmsg) is not included.
//!
//! Baselines, so the descriptor-passing overhead can be read off:
//! `seqpacket_byte` writes and reads one byte over the same seqpacket pair
//! without a descriptor (`send_fd` also sends one data byte), and
//! `unix_stream_byte` does the same over a `std::os::unix::net::UnixStream`
//! pair (SOCK_STREAM).
//!
//! Run with `cargo bench -p harness --bench handoff`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let (tx, rx) = sys::seqpacket_pair().expect("socketpair(SOCK_SEQPACKET)");
    // A real connection to pass, as the dispatcher would: the accepted end.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let client = TcpStream::connect(listener.local_addr().expect("local_addr")).expect("connect");
    let (conn, _) = listener.accept().expect("accept");

    let mut g = c.benchmark_group("handoff");
    g.throughput(Throughput::Elements(1));
    g.bench_function("scm_rights", |b| {
        b.iter(|| {
            sys::send_fd(tx.as_fd(), conn.as_fd()).expect("send_fd");
            let got = sys::recv_fd(rx.as_fd()).expect("recv_fd").expect("a descriptor");
            // Closes the received copy, as the dispatcher closes its own.
            drop(black_box(got));
        })
    });
    g.bench_function("seqpacket_byte", |b| {
        let mut byte = [0u8; 1];
        b.iter(|| {
            let n = sys::write(tx.as_fd(), black_box(&[1u8])).expect("write");
            assert_eq!(n, 1);
            let n = sys::read(rx.as_fd(), &mut byte).expect("read");
            assert_eq!(n, 1);
            black_box(byte);
        })
    });
    let (mut a, mut b_end) = UnixStream::pair().expect("socketpair(SOCK_STREAM)");
    g.bench_function("unix_stream_byte", |b| {
        let mut byte = [0u8; 1];
        b.iter(|| {
            a.write_all(black_box(&[1u8])).expect("write");
            b_end.read_exact(&mut byte).expect("read");
            black_box(byte);
        })
    });
    g.finish();
    drop(client);
}

criterion_group!(benches, bench);
criterion_main!(benches);
