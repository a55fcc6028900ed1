//! What a worker does with one connection: read the HTTP/1.1 request, answer
//! `200 OK` with `x-worker: <index>` and the body `hello nodejs` (the seed's),
//! and close.
//!
//! The request is read in full before answering: closing a socket with unread
//! bytes sends a RST, which the client would report as a reset (the seed's own
//! demo has that bug). The accepted socket is blocking; a worker serves one
//! connection at a time, so the order in which the kernel hands out
//! connections is what the counters record.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::counters::Slot;
use crate::sys;

/// The body every worker answers with: the seed's.
pub const BODY: &str = "hello nodejs";

/// Largest request head a worker accepts.
const MAX_REQUEST: usize = 8192;

/// A worker's canned response, built once.
pub fn response(worker: usize) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-worker: {worker}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    )
    .into_bytes()
}

/// Serves one connection and records a failure in `slot.errors`.
pub fn serve(conn: OwnedFd, response: &[u8], slot: &Slot) {
    if serve_inner(&conn, response).is_err() {
        Slot::bump(&slot.errors);
    }
    // `conn` closes here.
}

fn serve_inner(conn: &OwnedFd, response: &[u8]) -> io::Result<()> {
    let mut buf = [0u8; MAX_REQUEST];
    let mut len = 0;
    let body_len = loop {
        let n = read_retry(conn, &mut buf[len..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed before the request ended",
            ));
        }
        // Search only where the end of the head could newly appear.
        let from = len.saturating_sub(3);
        len += n;
        if let Some(end) = find_head_end(&buf[from..len]) {
            let head_end = from + end;
            let want = content_length(&buf[..head_end]).unwrap_or(0);
            break want.saturating_sub(len - head_end);
        }
        if len == buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
    };
    // Drain a request body so that closing does not send a RST.
    let mut left = body_len;
    while left > 0 {
        let n = read_retry(conn, &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed inside the body",
            ));
        }
        left = left.saturating_sub(n);
    }
    let mut sent = 0;
    while sent < response.len() {
        match sys::write(conn.as_fd(), &response[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_retry(conn: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match sys::read(conn.as_fd(), buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Offset just past the `\r\n\r\n` that ends a request head.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The request's Content-Length, if it has one.
fn content_length(head: &[u8]) -> Option<usize> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = line.split_at(colon);
        if !name.eq_ignore_ascii_case(b"content-length") {
            return None;
        }
        std::str::from_utf8(&value[1..]).ok()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_names_the_worker_and_has_the_right_length() {
        let r = String::from_utf8(response(3)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("\r\nx-worker: 3\r\n"));
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, BODY);
        assert!(head.contains(&format!("content-length: {}", BODY.len())));
    }

    #[test]
    fn head_end_and_content_length() {
        let req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        let end = find_head_end(req).unwrap();
        assert_eq!(&req[end..], b"hello");
        assert_eq!(content_length(&req[..end]), Some(5));
        assert_eq!(content_length(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn serves_over_a_socketpair() {
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;
        let (a, b) = UnixStream::pair().unwrap();
        let counters = crate::counters::Counters::new(1).unwrap();
        let mut client = a;
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        serve(OwnedFd::from(b), &response(0), counters.slot(0));
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        assert!(got.ends_with(BODY), "{got}");
        assert_eq!(counters.slot(0).snapshot().errors, 0);
    }

    #[test]
    fn early_close_counts_an_error() {
        use std::os::unix::net::UnixStream;
        let (a, b) = UnixStream::pair().unwrap();
        drop(a);
        let counters = crate::counters::Counters::new(1).unwrap();
        serve(OwnedFd::from(b), &response(0), counters.slot(0));
        assert_eq!(counters.slot(0).snapshot().errors, 1);
    }
}
