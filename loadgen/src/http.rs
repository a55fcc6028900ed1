//! Incremental HTTP/1.x response parser.
//!
//! The engine reads a response in whatever pieces the socket hands over; this
//! parser takes those pieces one by one, keeps only the header block (bounded
//! by [`MAX_HEAD`]), counts body bytes without keeping them, and exposes the
//! `x-worker` header so that every response can be attributed to the worker
//! that served it. It is reused across connections ([`ResponseParser::reset`])
//! so the hot path does not allocate.
//!
//! Body framing: `content-length` if present; otherwise (including
//! `transfer-encoding`, which with `Connection: close` ends at EOF anyway) the
//! body runs until end of stream. Status 1xx, 204 and 304 have no body. Any
//! well-formed status is accepted: a 404 is a complete response, not a
//! malformed one.
//!
//! Keep-alive: responses may arrive back to back on one connection.
//! [`ResponseParser::feed_partial`] says how many bytes of a chunk belong to
//! the current response, so the rest can be fed to the next one after a
//! [`ResponseParser::reset`]. A response to a keep-alive request must be
//! length-delimited ([`ResponseParser::set_require_length`]): one that would
//! run until end of stream (no content-length, or transfer-encoding, which
//! this parser does not decode) is rejected as [`ParseError::NoContentLength`].
//! [`ResponseParser::feed`] ignores bytes after a complete response.

use std::fmt;

/// Largest header block (status line through the blank line) accepted.
pub const MAX_HEAD: usize = 16 * 1024;

/// Why a response was rejected. All of these count as `malformed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The first line is not `HTTP/1.x ddd[ reason]`.
    BadStatusLine,
    /// A header line is not `name: value`.
    BadHeader,
    /// `content-length` is not a number, or appears twice with different values.
    BadContentLength,
    /// No blank line within [`MAX_HEAD`] bytes.
    HeadTooLarge,
    /// End of stream before the response was complete.
    Truncated,
    /// A response to a keep-alive request without content-length framing.
    NoContentLength,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::BadStatusLine => "bad status line",
            ParseError::BadHeader => "bad header line",
            ParseError::BadContentLength => "bad content-length",
            ParseError::HeadTooLarge => "header block larger than 16 KiB",
            ParseError::Truncated => "end of stream before the response was complete",
            ParseError::NoContentLength => "keep-alive response without content-length (or with transfer-encoding)",
        })
    }
}

impl std::error::Error for ParseError {}

/// What [`ResponseParser::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The response is not complete yet.
    NeedMore,
    /// The response is complete (only possible for length-delimited bodies;
    /// EOF-delimited ones complete in [`ResponseParser::finish`]).
    Complete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body { remaining: u64 },
    UntilEof,
    Done,
    Failed(ParseError),
}

/// Parser state for one response; reuse it with [`ResponseParser::reset`].
#[derive(Debug, Clone)]
pub struct ResponseParser {
    /// Header bytes so far; after the head is parsed, exactly the head.
    head: Vec<u8>,
    /// Where to resume searching for the blank line.
    scan_from: usize,
    state: State,
    status: u16,
    worker: Option<(usize, usize)>,
    body_len: u64,
    /// Reject responses that would run until end of stream.
    require_length: bool,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    pub fn new() -> Self {
        ResponseParser {
            head: Vec::with_capacity(512),
            scan_from: 0,
            state: State::Head,
            status: 0,
            worker: None,
            body_len: 0,
            require_length: false,
        }
    }

    /// Whether the next responses must be length-delimited (they answer a
    /// keep-alive request). Kept across [`ResponseParser::reset`].
    pub fn set_require_length(&mut self, yes: bool) {
        self.require_length = yes;
    }

    /// Forgets the previous response, keeping the buffer's capacity.
    pub fn reset(&mut self) {
        self.head.clear();
        self.scan_from = 0;
        self.state = State::Head;
        self.status = 0;
        self.worker = None;
        self.body_len = 0;
    }

    /// True once a whole response has been seen.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// The status code, once the header block has been parsed.
    pub fn status(&self) -> Option<u16> {
        (self.status != 0).then_some(self.status)
    }

    /// The trimmed value of the first non-empty `x-worker` header, if any.
    pub fn worker(&self) -> Option<&[u8]> {
        self.worker.map(|(a, b)| &self.head[a..b])
    }

    /// Body bytes seen so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Consumes the next piece of the stream; bytes after a complete
    /// response are ignored.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Progress, ParseError> {
        self.feed_partial(chunk).map(|(p, _)| p)
    }

    /// Consumes the next piece of the stream up to the end of this response.
    /// Returns the progress and how many bytes of `chunk` belong to this
    /// response: when `Complete`, `chunk[used..]` is the start of the next
    /// response (always all of `chunk` when `NeedMore`).
    pub fn feed_partial(&mut self, chunk: &[u8]) -> Result<(Progress, usize), ParseError> {
        match self.state {
            State::Failed(e) => Err(e),
            State::Done => Ok((Progress::Complete, 0)),
            State::Head => self.feed_head(chunk),
            State::Body { .. } | State::UntilEof => {
                let (p, used) = self.count_body(chunk.len() as u64);
                Ok((p, used as usize))
            }
        }
    }

    /// Reports end of stream: completes an EOF-delimited body, and is an
    /// error if the response was not complete otherwise.
    pub fn finish(&mut self) -> Result<(), ParseError> {
        match self.state {
            State::Done => Ok(()),
            State::UntilEof => {
                self.state = State::Done;
                Ok(())
            }
            State::Failed(e) => Err(e),
            State::Head | State::Body { .. } => self.fail(ParseError::Truncated),
        }
    }

    fn fail<T>(&mut self, e: ParseError) -> Result<T, ParseError> {
        self.state = State::Failed(e);
        Err(e)
    }

    fn feed_head(&mut self, chunk: &[u8]) -> Result<(Progress, usize), ParseError> {
        let room = MAX_HEAD - self.head.len();
        // Common case: the whole head is in this chunk; copy only the head,
        // not the body bytes behind it.
        let take = match self.head.is_empty().then(|| find_blank_line(chunk)).flatten() {
            Some(p) if p + 4 <= room => p + 4,
            _ => chunk.len().min(room),
        };
        self.head.extend_from_slice(&chunk[..take]);
        let Some(pos) = find_blank_line(&self.head[self.scan_from..]) else {
            if self.head.len() >= MAX_HEAD {
                return self.fail(ParseError::HeadTooLarge);
            }
            self.scan_from = self.head.len().saturating_sub(3);
            return Ok((Progress::NeedMore, take));
        };
        let end = self.scan_from + pos + 4;
        let spill = self.head.len() - end;
        self.head.truncate(end);
        if let Err(e) = self.parse_head() {
            return self.fail(e);
        }
        // Body bytes that arrived with the head: those copied past the blank
        // line (all from this chunk: earlier chunks held no blank line), then
        // whatever did not fit into the head buffer.
        let head_part = take - spill;
        let (p1, used1) = self.count_body(spill as u64);
        let rest = &chunk[take..];
        if rest.is_empty() || p1 == Progress::Complete {
            return Ok((p1, head_part + used1 as usize));
        }
        let (p2, used2) = self.count_body(rest.len() as u64);
        Ok((p2, take + used2 as usize))
    }

    /// Counts `n` more body bytes; returns the progress and how many of them
    /// belong to this response.
    fn count_body(&mut self, n: u64) -> (Progress, u64) {
        match &mut self.state {
            State::Body { remaining } => {
                let used = n.min(*remaining);
                *remaining -= used;
                self.body_len += used;
                if *remaining == 0 {
                    self.state = State::Done;
                    (Progress::Complete, used)
                } else {
                    (Progress::NeedMore, used)
                }
            }
            State::UntilEof => {
                self.body_len += n;
                (Progress::NeedMore, n)
            }
            State::Done => (Progress::Complete, 0),
            State::Head | State::Failed(_) => (Progress::NeedMore, n),
        }
    }

    /// Parses `self.head`, which ends with the blank line, and sets the body state.
    fn parse_head(&mut self) -> Result<(), ParseError> {
        let head = &self.head[..self.head.len() - 4];
        let mut lines = Lines { buf: head, pos: 0 };
        let (_, status_line) = lines.next().ok_or(ParseError::BadStatusLine)?;
        let status = parse_status_line(status_line)?;
        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut worker = None;
        for (start, line) in lines {
            let colon = line.iter().position(|&b| b == b':').ok_or(ParseError::BadHeader)?;
            let name = &line[..colon];
            if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                return Err(ParseError::BadHeader);
            }
            let (vs, ve) = trim_ows(line, colon + 1);
            let value = &line[vs..ve];
            if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(ParseError::BadHeader);
            }
            if name.eq_ignore_ascii_case(b"content-length") {
                let n = parse_u64(value).ok_or(ParseError::BadContentLength)?;
                if content_length.is_some_and(|old| old != n) {
                    return Err(ParseError::BadContentLength);
                }
                content_length = Some(n);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = true;
            } else if name.eq_ignore_ascii_case(b"x-worker") && worker.is_none() && !value.is_empty() {
                worker = Some((start + vs, start + ve));
            }
        }
        self.status = status;
        self.worker = worker;
        self.state = if (100..200).contains(&status) || status == 204 || status == 304 {
            State::Done
        } else if self.require_length && (chunked || content_length.is_none()) {
            return Err(ParseError::NoContentLength);
        } else if chunked {
            State::UntilEof
        } else {
            match content_length {
                Some(0) => State::Done,
                Some(n) => State::Body { remaining: n },
                None => State::UntilEof,
            }
        };
        Ok(())
    }
}

/// Index of the first `\r\n\r\n` in `buf`.
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// CRLF-separated lines of a header block (without the final blank line),
/// each with its start offset.
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos > self.buf.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.buf[start..];
        let len = rest.windows(2).position(|w| w == b"\r\n").unwrap_or(rest.len());
        self.pos = start + len + 2;
        Some((start, &rest[..len]))
    }
}

/// `HTTP/1.x ddd` optionally followed by ` reason`.
fn parse_status_line(line: &[u8]) -> Result<u16, ParseError> {
    let bad = ParseError::BadStatusLine;
    if line.len() < 12 || !line.starts_with(b"HTTP/1.") || !line[7].is_ascii_digit() || line[8] != b' ' {
        return Err(bad);
    }
    let code = &line[9..12];
    if !code.iter().all(u8::is_ascii_digit) || (line.len() > 12 && line[12] != b' ') {
        return Err(bad);
    }
    if line[12..].iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(bad);
    }
    let status = code.iter().fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    if status < 100 {
        return Err(bad);
    }
    Ok(status)
}

/// RFC 9110 token characters (header names).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bounds of `line[from..]` without leading and trailing spaces and tabs.
fn trim_ows(line: &[u8], from: usize) -> (usize, usize) {
    let mut s = from;
    let mut e = line.len();
    while s < e && (line[s] == b' ' || line[s] == b'\t') {
        s += 1;
    }
    while e > s && (line[e - 1] == b' ' || line[e - 1] == b'\t') {
        e -= 1;
    }
    (s, e)
}

/// Decimal digits only, no sign, no overflow.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Worker: 3\r\nConnection: close\r\n\r\nhello";

    fn parse_all(chunks: &[&[u8]]) -> (ResponseParser, Result<(), ParseError>) {
        let mut p = ResponseParser::new();
        for c in chunks {
            if let Err(e) = p.feed(c) {
                return (p, Err(e));
            }
        }
        let r = p.finish();
        (p, r)
    }

    #[test]
    fn complete_in_one_chunk() {
        let mut p = ResponseParser::new();
        assert_eq!(p.feed(OK), Ok(Progress::Complete));
        assert!(p.is_complete());
        assert_eq!(p.status(), Some(200));
        assert_eq!(p.worker(), Some(&b"3"[..]));
        assert_eq!(p.body_len(), 5);
        assert_eq!(p.finish(), Ok(()));
    }

    #[test]
    fn split_at_every_byte_position() {
        for i in 0..=OK.len() {
            let mut p = ResponseParser::new();
            let first = p.feed(&OK[..i]).unwrap();
            assert_eq!(first == Progress::Complete, i == OK.len(), "split at {i}");
            assert_eq!(p.feed(&OK[i..]), Ok(Progress::Complete), "split at {i}");
            assert_eq!(p.worker(), Some(&b"3"[..]), "split at {i}");
            assert_eq!(p.body_len(), 5);
        }
        // And one byte at a time.
        let mut p = ResponseParser::new();
        for (i, b) in OK.iter().enumerate() {
            let got = p.feed(std::slice::from_ref(b)).unwrap();
            assert_eq!(got == Progress::Complete, i == OK.len() - 1, "byte {i}");
        }
        assert_eq!(p.worker(), Some(&b"3"[..]));
    }

    #[test]
    fn missing_content_length_reads_until_eof() {
        let resp = b"HTTP/1.0 200 OK\r\nx-worker: 7\r\n\r\nsome body";
        let mut p = ResponseParser::new();
        assert_eq!(p.feed(resp), Ok(Progress::NeedMore));
        assert_eq!(p.feed(b" more"), Ok(Progress::NeedMore));
        assert!(!p.is_complete());
        assert_eq!(p.finish(), Ok(()));
        assert!(p.is_complete());
        assert_eq!(p.body_len(), 14);
        assert_eq!(p.worker(), Some(&b"7"[..]));
    }

    #[test]
    fn eof_before_complete_is_truncated() {
        let (_, r) = parse_all(&[&OK[..OK.len() - 1]]);
        assert_eq!(r, Err(ParseError::Truncated));
        let (_, r) = parse_all(&[b"HTTP/1.1 200 OK\r\nContent-Le"]);
        assert_eq!(r, Err(ParseError::Truncated));
        let (_, r) = parse_all(&[]);
        assert_eq!(r, Err(ParseError::Truncated));
    }

    #[test]
    fn bad_status_lines() {
        for bad in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1  200 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 099\r\n\r\n",
            b"\r\n\r\n",
        ] {
            let (_, r) = parse_all(&[bad]);
            assert_eq!(r, Err(ParseError::BadStatusLine), "{:?}", String::from_utf8_lossy(bad));
        }
        // Reason phrase is optional; non-200 is still a response.
        let (p, r) = parse_all(&[b"HTTP/1.1 404\r\ncontent-length: 0\r\n\r\n"]);
        assert_eq!((r, p.status()), (Ok(()), Some(404)));
    }

    #[test]
    fn bad_headers() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nfolded: a\r\n continued\r\n\r\n",
        ] {
            let (_, r) = parse_all(&[bad]);
            assert_eq!(r, Err(ParseError::BadHeader), "{:?}", String::from_utf8_lossy(bad));
        }
        for bad in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 1x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length:\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
        ] {
            let (_, r) = parse_all(&[bad]);
            assert_eq!(
                r,
                Err(ParseError::BadContentLength),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // The same length twice is fine.
        let (p, r) = parse_all(&[b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\nContent-Length: 1\r\n\r\nx"]);
        assert_eq!((r, p.body_len()), (Ok(()), 1));
    }

    #[test]
    fn huge_header_block_is_rejected() {
        let mut p = ResponseParser::new();
        assert_eq!(p.feed(b"HTTP/1.1 200 OK\r\n"), Ok(Progress::NeedMore));
        let filler = [b'a'; 1000];
        let mut result = Ok(Progress::NeedMore);
        for _ in 0..20 {
            result = p.feed(&filler);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(ParseError::HeadTooLarge));
        assert!(p.head.capacity() <= 2 * MAX_HEAD, "head buffer must stay bounded");
        // Just under the limit is accepted.
        let mut resp = b"HTTP/1.1 200 OK\r\nx-pad: ".to_vec();
        resp.resize(MAX_HEAD - 4, b'p');
        resp.extend_from_slice(b"\r\n\r\n");
        let (_, r) = parse_all(&[&resp]);
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn x_worker_is_case_insensitive_and_trimmed() {
        for name in ["x-worker", "X-Worker", "X-WORKER", "x-WoRkEr"] {
            let resp = format!("HTTP/1.1 200 OK\r\n{name}: \t pid-1234 \t\r\ncontent-length: 0\r\n\r\n");
            let (p, r) = parse_all(&[resp.as_bytes()]);
            assert_eq!(r, Ok(()));
            assert_eq!(p.worker(), Some(&b"pid-1234"[..]), "{name}");
        }
        let (p, _) = parse_all(&[b"HTTP/1.1 200 OK\r\nx-workers: 1\r\ncontent-length: 0\r\n\r\n"]);
        assert_eq!(p.worker(), None);
        let (p, _) = parse_all(&[b"HTTP/1.1 200 OK\r\nx-worker:\r\nx-worker: 2\r\ncontent-length: 0\r\n\r\n"]);
        assert_eq!(p.worker(), Some(&b"2"[..]));
    }

    #[test]
    fn body_larger_than_any_buffer() {
        let body = 10 * MAX_HEAD as u64 + 17;
        let head = format!("HTTP/1.1 200 OK\r\nx-worker: 1\r\ncontent-length: {body}\r\n\r\n");
        let mut p = ResponseParser::new();
        let mut first = head.into_bytes();
        first.resize(first.len() + 40_000, b'b'); // more than the head buffer holds
        assert_eq!(p.feed(&first), Ok(Progress::NeedMore));
        let chunk = [b'b'; 4096];
        let mut fed = 40_000u64;
        let mut last = Progress::NeedMore;
        while fed < body {
            last = p.feed(&chunk).unwrap();
            fed += chunk.len() as u64;
        }
        assert_eq!(last, Progress::Complete);
        assert_eq!(p.body_len(), body);
        assert_eq!(p.worker(), Some(&b"1"[..]));
        assert!(p.head.len() < 100, "body bytes must not be kept");
    }

    #[test]
    fn no_body_statuses_and_reset() {
        let (p, r) = parse_all(&[b"HTTP/1.1 204 No Content\r\nx-worker: a\r\n\r\n"]);
        assert_eq!((r, p.body_len()), (Ok(()), 0));
        let mut p = p;
        p.reset();
        assert!(!p.is_complete());
        assert_eq!(p.worker(), None);
        assert_eq!(p.feed(OK), Ok(Progress::Complete));
        assert_eq!(p.worker(), Some(&b"3"[..]));
    }

    #[test]
    fn failure_is_sticky() {
        let mut p = ResponseParser::new();
        assert!(p.feed(b"nope\r\n\r\n").is_err());
        assert_eq!(p.feed(OK), Err(ParseError::BadStatusLine));
        assert_eq!(p.finish(), Err(ParseError::BadStatusLine));
    }

    /// Feeds `chunks` as the engine does: each complete response is
    /// recorded (worker id, body length), the parser is reset, and the rest
    /// of the chunk goes to the next response.
    fn stream(chunks: &[&[u8]], require_length: bool) -> Result<Vec<(String, u64)>, ParseError> {
        let mut p = ResponseParser::new();
        p.set_require_length(require_length);
        let mut out = Vec::new();
        for c in chunks {
            let mut pos = 0;
            loop {
                let (progress, used) = p.feed_partial(&c[pos..])?;
                pos += used;
                if progress == Progress::NeedMore {
                    assert_eq!(pos, c.len(), "NeedMore takes the whole chunk");
                    break;
                }
                let id = String::from_utf8_lossy(p.worker().unwrap_or(b"?")).into_owned();
                out.push((id, p.body_len()));
                p.reset();
                if pos == c.len() {
                    break;
                }
            }
        }
        Ok(out)
    }

    #[test]
    fn back_to_back_responses_at_every_split() {
        let r = |id: &str, body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nx-worker: {id}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let all = [r("1", "hello"), r("2", ""), r("3", "x"), r("4", "bye!")].concat();
        let all = all.as_bytes();
        let want: Vec<(String, u64)> = [("1", 5), ("2", 0), ("3", 1), ("4", 4)]
            .map(|(a, b)| (a.to_string(), b))
            .to_vec();
        assert_eq!(stream(&[all], true), Ok(want.clone()));
        for i in 0..=all.len() {
            assert_eq!(stream(&[&all[..i], &all[i..]], true), Ok(want.clone()), "split at {i}");
        }
        let bytes: Vec<&[u8]> = all.chunks(1).collect();
        assert_eq!(stream(&bytes, true), Ok(want));
        // feed_partial reports exactly the first response's length.
        let mut p = ResponseParser::new();
        let first = r("1", "hello").len();
        assert_eq!(p.feed_partial(all), Ok((Progress::Complete, first)));
        assert_eq!(
            p.feed_partial(&all[first..]),
            Ok((Progress::Complete, 0)),
            "done: takes nothing"
        );
        // feed() still ignores what follows a complete response.
        let mut p = ResponseParser::new();
        assert_eq!(p.feed(all), Ok(Progress::Complete));
        assert_eq!(p.worker(), Some(&b"1"[..]));
    }

    #[test]
    fn keep_alive_responses_need_a_length() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nx-worker: 1\r\n\r\nbody"[..],
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
        ] {
            let mut p = ResponseParser::new();
            p.set_require_length(true);
            assert_eq!(
                p.feed(bad),
                Err(ParseError::NoContentLength),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            // The same response to a `Connection: close` request reads to EOF.
            let mut p = ResponseParser::new();
            assert_eq!(p.feed(bad), Ok(Progress::NeedMore));
        }
        // No body, or a length: fine; the setting survives reset().
        let mut p = ResponseParser::new();
        p.set_require_length(true);
        assert_eq!(p.feed(b"HTTP/1.1 204 No Content\r\n\r\n"), Ok(Progress::Complete));
        p.reset();
        assert_eq!(p.feed(OK), Ok(Progress::Complete));
        p.reset();
        assert_eq!(p.feed(b"HTTP/1.1 200 OK\r\n\r\n"), Err(ParseError::NoContentLength));
    }
}
