//! Incremental HTTP/1.x response parser.
//!
//! The engine reads a response in whatever pieces the socket hands over; this
//! parser takes those pieces one by one, keeps only the header block (bounded
//! by [`MAX_HEAD`]), counts body bytes without keeping them, and extracts the
//! id of the worker that served the response, as configured by
//! [`Attribution`] ([`ResponseParser::set_attribution`]):
//!
//! - [`Attribution::Header`] (the default, `x-worker`): the trimmed value of
//!   the first non-empty header of that name, matched case-insensitively;
//! - [`Attribution::Body`]: the body's first line (up to the first `\n`),
//!   trimmed of ASCII whitespace, of which at most [`MAX_BODY_ID`] bytes are
//!   kept in a fixed buffer (the rest of the body is counted, not kept);
//! - [`Attribution::Off`]: no response names a worker (the harness counts
//!   who accepted in the kernel instead).
//!
//! It is reused across connections ([`ResponseParser::reset`]) so the hot
//! path does not allocate.
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

use records::names::{ACCEPTED_HEADER, RESPONDED_HEADER};

/// Largest header block (status line through the blank line) accepted.
pub const MAX_HEAD: usize = 16 * 1024;

/// Most bytes of a body-borne worker id kept ([`Attribution::Body`]); the
/// rest of the first line is counted as body but not kept.
pub const MAX_BODY_ID: usize = 64;

/// Where a response names the worker that served it.
///
/// On the command line (`--attribute`) and in output: `header:NAME` or
/// `body` ([`Attribution::parse`], [`fmt::Display`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    /// The trimmed value of the first non-empty header of this name (an HTTP
    /// token, stored lower-case, matched case-insensitively).
    Header(String),
    /// The body's first line (up to the first `\n`), trimmed of ASCII
    /// whitespace; at most [`MAX_BODY_ID`] bytes of it are kept. An empty
    /// body or first line names no worker. The body is taken as it comes on
    /// the wire: a `transfer-encoding: chunked` body (not decoded) would be
    /// named by its first chunk-size line, so servers should send a
    /// content-length (or close after an EOF-delimited body).
    Body,
    /// Nothing in a response names a worker: every response is the unknown
    /// worker's (the harness then counts who accepted in the kernel).
    Off,
}

/// The header every response carried before attribution was configurable.
pub const DEFAULT_WORKER_HEADER: &str = "x-worker";

impl Default for Attribution {
    /// `Header("x-worker")`.
    fn default() -> Self {
        Attribution::Header(DEFAULT_WORKER_HEADER.to_string())
    }
}

impl Attribution {
    /// Parses `header:NAME` (NAME a non-empty HTTP token, stored lower-case)
    /// or `body`. The error is one line naming the bad value.
    pub fn parse(s: &str) -> Result<Attribution, String> {
        let quoted = format!("'{}'", s.escape_debug());
        if s == "body" {
            return Ok(Attribution::Body);
        }
        let Some(name) = s.strip_prefix("header:") else {
            return Err(format!(
                "--attribute {quoted}: expected header:NAME (e.g. header:x-worker) or body"
            ));
        };
        match header_name_problem(name) {
            None => Ok(Attribution::Header(name.to_ascii_lowercase())),
            Some(why) => Err(format!("--attribute {quoted}: {why}")),
        }
    }

    /// Why this attribution cannot be used (a header name that is not an
    /// HTTP token, e.g. built directly rather than by [`Attribution::parse`]),
    /// as one line; `None` if it is fine.
    pub fn problem(&self) -> Option<String> {
        match self {
            Attribution::Header(name) => {
                header_name_problem(name).map(|why| format!("attribution 'header:{}': {why}", name.escape_debug()))
            }
            Attribution::Body | Attribution::Off => None,
        }
    }
}

/// Why `name` is not a usable header name, if it is not.
fn header_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the header name is empty: expected header:NAME, e.g. header:x-worker".into());
    }
    if !name.bytes().all(is_tchar) {
        return Some(format!(
            "'{}' is not a header name: only letters, digits and !#$%&'*+-.^_`|~ are allowed",
            name.escape_debug()
        ));
    }
    None
}

impl fmt::Display for Attribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribution::Header(name) => write!(f, "header:{name}"),
            Attribution::Body => f.write_str("body"),
            Attribution::Off => f.write_str("none"),
        }
    }
}

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
    /// Header attribution: bounds of the worker id in `head`.
    worker: Option<(usize, usize)>,
    body_len: u64,
    /// Reject responses that would run until end of stream.
    require_length: bool,
    /// Where the worker id is; kept across [`ResponseParser::reset`].
    attribution: Attribution,
    /// Body attribution: the first line's bytes so far, leading whitespace
    /// skipped, at most [`MAX_BODY_ID`].
    body_id: [u8; MAX_BODY_ID],
    body_id_len: usize,
    /// Body attribution: the first line has ended (or filled `body_id`).
    body_id_done: bool,
    /// The server's stamps, if it sent them (see [`Stamps`]).
    accepted_ns: Option<u64>,
    responded_ns: Option<u64>,
}

/// When the server took the connection and began this response, by its
/// CLOCK_MONOTONIC in nanoseconds: the `x-accepted-ns` and `x-responded-ns`
/// headers the harness's own workers send (any server may).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamps {
    pub accepted_ns: u64,
    pub responded_ns: u64,
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
            attribution: Attribution::default(),
            body_id: [0; MAX_BODY_ID],
            body_id_len: 0,
            body_id_done: false,
            accepted_ns: None,
            responded_ns: None,
        }
    }

    /// Where the next responses name their worker. Kept across
    /// [`ResponseParser::reset`]; set it once per parser, not per response
    /// (it copies the header name).
    pub fn set_attribution(&mut self, attribution: &Attribution) {
        self.attribution.clone_from(attribution);
    }

    /// Where responses name their worker ([`ResponseParser::set_attribution`]).
    pub fn attribution(&self) -> &Attribution {
        &self.attribution
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
        self.body_id_len = 0;
        self.body_id_done = false;
        self.accepted_ns = None;
        self.responded_ns = None;
    }

    /// The response's stamps, if it carried both (parsed as decimal u64).
    pub fn stamps(&self) -> Option<Stamps> {
        Some(Stamps {
            accepted_ns: self.accepted_ns?,
            responded_ns: self.responded_ns?,
        })
    }

    /// True once a whole response has been seen.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// The status code, once the header block has been parsed.
    pub fn status(&self) -> Option<u16> {
        (self.status != 0).then_some(self.status)
    }

    /// The id of the worker that served the response, as configured by
    /// [`ResponseParser::set_attribution`]: the trimmed value of the first
    /// non-empty header of that name, or the body's trimmed first line (at
    /// most [`MAX_BODY_ID`] bytes; complete once the response is, for an
    /// EOF-delimited body after [`ResponseParser::finish`]). `None`: no such
    /// header, or an empty body or first line.
    pub fn worker(&self) -> Option<&[u8]> {
        match self.attribution {
            Attribution::Header(_) => self.worker.map(|(a, b)| &self.head[a..b]),
            Attribution::Body => {
                let id = trim_ascii_end(&self.body_id[..self.body_id_len]);
                (!id.is_empty()).then_some(id)
            }
            Attribution::Off => None,
        }
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
            State::Body { .. } | State::UntilEof => Ok(self.count_body(chunk)),
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
        // Body bytes that arrived with the head: all of them are in this
        // chunk (earlier chunks held no blank line), right after the head's
        // end, whether or not they were copied into the head buffer.
        let head_part = take - spill;
        let (p, used) = self.count_body(&chunk[head_part..]);
        Ok((p, head_part + used))
    }

    /// Takes the next body bytes; returns the progress and how many of them
    /// belong to this response (only those are counted, and looked at for
    /// the worker id).
    fn count_body(&mut self, bytes: &[u8]) -> (Progress, usize) {
        let (used, done) = match &mut self.state {
            State::Body { remaining } => {
                // At most bytes.len(), so it fits in usize.
                let used = (*remaining).min(bytes.len() as u64);
                *remaining -= used;
                (used as usize, *remaining == 0)
            }
            State::UntilEof => (bytes.len(), false),
            State::Done => return (Progress::Complete, 0),
            State::Head | State::Failed(_) => return (Progress::NeedMore, bytes.len()),
        };
        self.body_len += used as u64;
        if matches!(self.attribution, Attribution::Body) && !self.body_id_done {
            self.collect_body_id(&bytes[..used]);
        }
        if done {
            self.state = State::Done;
            (Progress::Complete, used)
        } else {
            (Progress::NeedMore, used)
        }
    }

    /// Body attribution: adds the next body bytes to the first line's id.
    fn collect_body_id(&mut self, mut bytes: &[u8]) {
        if self.body_id_len == 0 {
            // Leading whitespace is not kept (but a `\n` ends the line).
            let skip = bytes
                .iter()
                .position(|&b| b == b'\n' || !b.is_ascii_whitespace())
                .unwrap_or(bytes.len());
            bytes = &bytes[skip..];
        }
        let end = bytes.iter().position(|&b| b == b'\n');
        let line = &bytes[..end.unwrap_or(bytes.len())];
        let keep = line.len().min(MAX_BODY_ID - self.body_id_len);
        self.body_id[self.body_id_len..self.body_id_len + keep].copy_from_slice(&line[..keep]);
        self.body_id_len += keep;
        if end.is_some() || self.body_id_len == MAX_BODY_ID {
            self.body_id_done = true;
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
        let worker_header = match &self.attribution {
            Attribution::Header(name) => Some(name.as_bytes()),
            Attribution::Body | Attribution::Off => None,
        };
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
            } else if name.eq_ignore_ascii_case(ACCEPTED_HEADER.as_bytes()) {
                self.accepted_ns = parse_u64(value);
            } else if name.eq_ignore_ascii_case(RESPONDED_HEADER.as_bytes()) {
                self.responded_ns = parse_u64(value);
            }
            if let Some(want) = worker_header {
                if worker.is_none() && !value.is_empty() && name.eq_ignore_ascii_case(want) {
                    worker = Some((start + vs, start + ve));
                }
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

/// `s` without trailing ASCII whitespace.
fn trim_ascii_end(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    &s[..end]
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
        parse_all_with(&Attribution::default(), chunks)
    }

    fn parse_all_with(attribution: &Attribution, chunks: &[&[u8]]) -> (ResponseParser, Result<(), ParseError>) {
        let mut p = ResponseParser::new();
        p.set_attribution(attribution);
        for c in chunks {
            if let Err(e) = p.feed(c) {
                return (p, Err(e));
            }
        }
        let r = p.finish();
        (p, r)
    }

    #[test]
    fn attribution_off_names_no_worker_even_with_the_header() {
        let r: &[u8] = b"HTTP/1.1 200 OK\r\nx-worker: 7\r\ncontent-length: 2\r\n\r\n7\n";
        let (p, done) = parse_all_with(&Attribution::Off, &[r]);
        assert_eq!(done, Ok(()));
        assert_eq!(p.worker(), None);
        assert_eq!(Attribution::Off.to_string(), "none");
        assert_eq!(Attribution::Off.problem(), None);
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
        stream_with(&Attribution::default(), chunks, require_length)
    }

    fn stream_with(
        attribution: &Attribution,
        chunks: &[&[u8]],
        require_length: bool,
    ) -> Result<Vec<(String, u64)>, ParseError> {
        let mut p = ResponseParser::new();
        p.set_attribution(attribution);
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

    // ------------------------------------------------------------ attribution

    fn header(name: &str) -> Attribution {
        Attribution::parse(&format!("header:{name}")).unwrap()
    }

    /// The worker id after parsing `resp` fed in one chunk, split at every
    /// byte position, and byte by byte: all must agree.
    fn worker_of(attribution: &Attribution, resp: &[u8]) -> Option<String> {
        let id = |p: &ResponseParser| p.worker().map(|w| String::from_utf8_lossy(w).into_owned());
        // The test response is exactly one response, no more.
        let mut p = ResponseParser::new();
        if let Ok((Progress::Complete, used)) = p.feed_partial(resp) {
            assert_eq!(used, resp.len(), "{:?}", String::from_utf8_lossy(resp));
        }
        let (p, r) = parse_all_with(attribution, &[resp]);
        assert_eq!(r, Ok(()), "{:?}", String::from_utf8_lossy(resp));
        let want = id(&p);
        for i in 0..=resp.len() {
            let (p, r) = parse_all_with(attribution, &[&resp[..i], &resp[i..]]);
            assert_eq!((r, id(&p)), (Ok(()), want.clone()), "split at {i}");
        }
        let bytes: Vec<&[u8]> = resp.chunks(1).collect();
        let (p, r) = parse_all_with(attribution, &bytes);
        assert_eq!((r, id(&p)), (Ok(()), want.clone()), "byte by byte");
        want
    }

    #[test]
    fn default_attribution_is_x_worker() {
        assert_eq!(Attribution::default(), Attribution::Header("x-worker".into()));
        assert_eq!(ResponseParser::new().attribution(), &Attribution::default());
    }

    #[test]
    fn custom_header_is_case_insensitive_and_replaces_x_worker() {
        for configured in ["x-served-by", "X-Served-By", "X-SERVED-BY"] {
            let a = header(configured);
            assert_eq!(a, Attribution::Header("x-served-by".into()), "stored lower-case");
            for sent in ["x-served-by", "X-Served-By", "x-SERVED-by"] {
                let resp =
                    format!("HTTP/1.1 200 OK\r\nX-Worker: 1\r\n{sent}: \t node-7 \r\ncontent-length: 2\r\n\r\nok");
                assert_eq!(
                    worker_of(&a, resp.as_bytes()).as_deref(),
                    Some("node-7"),
                    "{configured} / {sent}"
                );
            }
        }
        let a = header("x-served-by");
        // x-worker alone does not count any more; nor does a longer name.
        let only_x_worker = b"HTTP/1.1 200 OK\r\nx-worker: 1\r\nx-served-by-x: 2\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(worker_of(&a, only_x_worker), None);
        // The first non-empty value wins.
        let twice =
            b"HTTP/1.1 200 OK\r\nx-served-by:  \r\nx-served-by: b\r\nx-served-by: c\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(worker_of(&a, twice).as_deref(), Some("b"));
        // Any header name works, even one the parser also reads for framing.
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc";
        assert_eq!(worker_of(&header("Content-Length"), resp).as_deref(), Some("3"));
        // The setting survives reset().
        let mut p = ResponseParser::new();
        p.set_attribution(&a);
        p.reset();
        assert_eq!(
            p.feed(b"HTTP/1.1 204 No Content\r\nX-Served-By: z\r\n\r\n"),
            Ok(Progress::Complete)
        );
        assert_eq!(p.worker(), Some(&b"z"[..]));
    }

    #[test]
    fn body_attribution_single_chunk_and_split() {
        let a = Attribution::Body;
        let resp = b"HTTP/1.1 200 OK\r\nx-worker: 9\r\ncontent-length: 7\r\n\r\nworker3";
        assert_eq!(worker_of(&a, resp).as_deref(), Some("worker3"), "the header is ignored");
        let mut p = ResponseParser::new();
        p.set_attribution(&a);
        assert_eq!(p.feed(resp), Ok(Progress::Complete));
        assert_eq!((p.worker(), p.body_len()), (Some(&b"worker3"[..]), 7));
        // Trimmed of ASCII whitespace on both sides, CRLF line end.
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n \t 12 ab \t\r\nxyz";
        assert_eq!(worker_of(&a, resp).as_deref(), Some("12 ab"));
    }

    #[test]
    fn body_attribution_uses_the_first_line_only() {
        let a = Attribution::Body;
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 18\r\n\r\nw1\nw2\nsecond line\n";
        assert_eq!(worker_of(&a, resp).as_deref(), Some("w1"));
        // An empty first line names no worker, even if a later one is not empty.
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n \r\nw2\n";
        assert_eq!(worker_of(&a, resp), None);
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n\nw2";
        assert_eq!(worker_of(&a, resp), None);
    }

    #[test]
    fn body_attribution_empty_body_is_unknown() {
        let a = Attribution::Body;
        for resp in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-worker: 1\r\n\r\n"[..],
            b"HTTP/1.1 204 No Content\r\nx-worker: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n \t\r\n",
            b"HTTP/1.0 200 OK\r\n\r\n",
        ] {
            assert_eq!(worker_of(&a, resp), None, "{:?}", String::from_utf8_lossy(resp));
        }
    }

    #[test]
    fn body_attribution_eof_delimited() {
        let a = Attribution::Body;
        let resp = b"HTTP/1.0 200 OK\r\nx-worker: 7\r\n\r\n  eof-worker";
        assert_eq!(worker_of(&a, resp).as_deref(), Some("eof-worker"));
        // The id grows over feeds and is complete at finish().
        let mut p = ResponseParser::new();
        p.set_attribution(&a);
        assert_eq!(p.feed(b"HTTP/1.0 200 OK\r\n\r\nab"), Ok(Progress::NeedMore));
        assert_eq!(p.feed(b"c"), Ok(Progress::NeedMore));
        assert_eq!(p.feed(b"d\nrest of the body"), Ok(Progress::NeedMore));
        assert_eq!(p.finish(), Ok(()));
        assert_eq!((p.worker(), p.body_len()), (Some(&b"abcd"[..]), 21));
    }

    #[test]
    fn body_attribution_keeps_at_most_64_bytes() {
        let a = Attribution::Body;
        let long: String = (0..100).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let body = format!("{long}\nmore");
        let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        assert_eq!(worker_of(&a, resp.as_bytes()).as_deref(), Some(&long[..MAX_BODY_ID]));
        let mut p = ResponseParser::new();
        p.set_attribution(&a);
        assert_eq!(p.feed(resp.as_bytes()), Ok(Progress::Complete));
        assert_eq!(p.body_len(), body.len() as u64, "bytes past 64 are still body");
        // Leading whitespace does not use up the 64 bytes; exactly 64 is kept whole.
        let id64 = &long[..MAX_BODY_ID];
        let resp = format!("HTTP/1.0 200 OK\r\n\r\n   {id64}");
        assert_eq!(worker_of(&a, resp.as_bytes()).as_deref(), Some(id64));
        // A body far larger than any buffer: only the id is kept.
        let n = 5 * MAX_HEAD;
        let mut resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\nbig\n").into_bytes();
        resp.resize(resp.len() + n - 4, b'x');
        let (p, r) = parse_all_with(&a, &[&resp[..100], &resp[100..]]);
        assert_eq!((r, p.worker(), p.body_len()), (Ok(()), Some(&b"big"[..]), n as u64));
        assert!(p.head.len() < 100, "body bytes must not be kept in the head");
    }

    #[test]
    fn body_attribution_keep_alive_back_to_back() {
        let r = |body: &str| format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        // Two responses in one chunk: the second body must not leak into the first id.
        let all = [r("w1"), r("w2\nlonger body")].concat();
        let all = all.as_bytes();
        let want = vec![("w1".to_string(), 2), ("w2".to_string(), 14)];
        assert_eq!(stream_with(&Attribution::Body, &[all], true), Ok(want.clone()));
        for i in 0..=all.len() {
            assert_eq!(
                stream_with(&Attribution::Body, &[&all[..i], &all[i..]], true),
                Ok(want.clone()),
                "split at {i}"
            );
        }
        let bytes: Vec<&[u8]> = all.chunks(1).collect();
        assert_eq!(stream_with(&Attribution::Body, &bytes, true), Ok(want));
        // An id does not survive reset(): an empty body after a named one is unknown.
        let all = [r("w1"), r(""), r("w3")].concat();
        let got = stream_with(&Attribution::Body, &[all.as_bytes()], true).unwrap();
        let ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["w1", "?", "w3"]);
    }

    #[test]
    fn attribution_parse_and_display() {
        for (s, want) in [
            ("body", Attribution::Body),
            ("header:x-worker", Attribution::Header("x-worker".into())),
            ("header:X-Served-By", Attribution::Header("x-served-by".into())),
            ("header:a", Attribution::Header("a".into())),
            (
                "header:!#$%&'*+-.^_`|~09",
                Attribution::Header("!#$%&'*+-.^_`|~09".into()),
            ),
        ] {
            let got = Attribution::parse(s);
            assert_eq!(got, Ok(want.clone()), "{s}");
            // Display round-trips through parse, in lower case.
            assert_eq!(want.to_string(), s.to_ascii_lowercase());
            assert_eq!(Attribution::parse(&want.to_string()), Ok(want.clone()));
            assert_eq!(want.problem(), None);
        }
        assert_eq!(Attribution::default().to_string(), "header:x-worker");
        for (s, needle) in [
            ("", "--attribute '': expected header:NAME"),
            ("header:", "--attribute 'header:': the header name is empty"),
            ("header", "--attribute 'header': expected"),
            ("Body", "--attribute 'Body': expected"),
            ("body ", "expected header:NAME"),
            (
                "x-worker",
                "--attribute 'x-worker': expected header:NAME (e.g. header:x-worker) or body",
            ),
            ("header:x worker", "'x worker' is not a header name"),
            ("header:x:y", "'x:y' is not a header name"),
            ("header:x-worker\n", "'x-worker\\n' is not a header name"),
            ("header:é", "is not a header name"),
            (" header:x", "expected"),
        ] {
            let e = Attribution::parse(s).expect_err(s);
            assert!(e.contains(needle), "{s:?}: {e:?} should contain {needle:?}");
            assert!(!e.contains('\n'), "one line: {e:?}");
        }
        // A header name built by hand is checked too.
        let e = Attribution::Header("bad name".into()).problem().unwrap();
        assert!(e.contains("'bad name' is not a header name"), "{e}");
        assert!(Attribution::Header(String::new()).problem().is_some());
    }

    #[test]
    fn stamps_are_read_when_both_are_sent_and_forgotten_on_reset() {
        let (mut p, r) = parse_all(&[
            b"HTTP/1.1 200 OK\r\nx-worker: 1\r\nX-Accepted-Ns: 00000000000000000123\r\n",
            b"x-responded-ns: 456\r\ncontent-length: 0\r\n\r\n",
        ]);
        r.unwrap();
        assert_eq!(
            p.stamps(),
            Some(Stamps {
                accepted_ns: 123,
                responded_ns: 456
            })
        );
        p.reset();
        assert_eq!(p.stamps(), None);
        let (p, _) = parse_all(&[b"HTTP/1.1 200 OK\r\nx-accepted-ns: 1\r\ncontent-length: 0\r\n\r\n"]);
        assert_eq!(p.stamps(), None, "one stamp alone is not enough");
        let (p, _) =
            parse_all(&[b"HTTP/1.1 200 OK\r\nx-accepted-ns: 1x\r\nx-responded-ns: 2\r\ncontent-length: 0\r\n\r\n"]);
        assert_eq!(p.stamps(), None, "a stamp that is not a number is ignored");
    }
}
