//! Property tests of the HTTP response parser (`loadgen::http::ResponseParser`)
//! and of `Attribution::parse`: the fuzz target of the "hostile server" issue.
//!
//! The parser reads whatever a server sends, in whatever pieces the socket
//! hands over, so it is the load generator's attack surface: a panic there
//! kills a run, a state that takes zero bytes without finishing would spin
//! the engine's read loop, and a head kept without bound would let a server
//! grow the generator's memory. What is checked:
//!
//! - (a) arbitrary bytes (random, HTTP-like pieces glued at random, and
//!   well-formed responses back to back with a few bytes changed, inserted,
//!   deleted or cut off, which reach the header and body states), cut
//!   into arbitrary chunks, under every attribution mode with and without
//!   `require_length`, fed the way the engine feeds them (`feed_partial`,
//!   `reset` after each complete response, the rest of the chunk to the
//!   next): no panic, `finish()` no panic, a complete response always took
//!   at least one byte (so the engine's loop ends), `NeedMore` took the whole
//!   chunk, errors are sticky, the ids and status codes are in range, and the
//!   outcome does not depend on where the stream was cut;
//! - (b) well-formed responses built from parts (status, reason, extra
//!   headers, `content-length` with optional white space, `transfer-encoding:
//!   chunked` (not decoded by this parser: an EOF-delimited body) or no
//!   framing, the worker id in a header or in the body's first line, a body)
//!   parse to the status, worker and body length the parts say, in one chunk,
//!   at random cuts and byte by byte; a length-delimited one followed by
//!   another response ends exactly where it should (keep-alive);
//! - (c) a header block longer than `MAX_HEAD` is an error by the time
//!   `MAX_HEAD` bytes have been fed, however it is cut, so a server cannot
//!   make the parser keep more than that;
//! - `Attribution::parse` never panics, round-trips through `Display`, and its
//!   errors are one non-empty line.
//!
//! Each property runs a fixed number of cases (`ProptestConfig::cases`) so the
//! time is bounded (at most about 2 s each, under 4 s for the file, on the
//! 2-core development machine in release). Failures are not persisted to files (`failure_persistence:
//! None`): proptest prints the shrunk input, which is what to copy into a
//! unit test.

use loadgen::http::{ParseError, Progress, ResponseParser, MAX_BODY_ID, MAX_HEAD};
use loadgen::Attribution;
use proptest::prelude::*;
use proptest::sample::Index;

/// A fixed number of cases per property, so CI time is bounded.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        // Shrinking runs only after a failure; bound it too.
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ helpers

/// One response as the parser saw it, for comparing parses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    status: Option<u16>,
    worker: Option<Vec<u8>>,
    body_len: u64,
}

fn seen(p: &ResponseParser) -> Seen {
    Seen {
        status: p.status(),
        worker: p.worker().map(<[u8]>::to_vec),
        body_len: p.body_len(),
    }
}

/// Everything a stream parsed to: the responses completed, and how the last
/// one ended (`finish()` at end of stream, or the error that stopped it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Streamed {
    complete: Vec<Seen>,
    last: Seen,
    end: Result<(), ParseError>,
}

fn parser(attribution: &Attribution, require_length: bool) -> ResponseParser {
    let mut p = ResponseParser::new();
    p.set_attribution(attribution);
    p.set_require_length(require_length);
    p
}

/// `bytes` cut at `cuts` (any order, repeats allowed: empty chunks are fed too).
fn split<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::with_capacity(at.len() + 1);
    let mut prev = 0;
    for a in at {
        chunks.push(&bytes[prev..a]);
        prev = a;
    }
    chunks.push(&bytes[prev..]);
    chunks
}

/// Checks what may be said of any parser state, whatever it was fed.
fn check_state(p: &ResponseParser, fed: u64) {
    if let Some(s) = p.status() {
        assert!((100..=999).contains(&s), "status {s}");
    }
    assert!(p.body_len() <= fed, "body {} of {fed} bytes fed", p.body_len());
    if let Some(w) = p.worker() {
        assert!(!w.is_empty(), "an empty id is None");
        match p.attribution() {
            Attribution::Body => {
                assert!(w.len() <= MAX_BODY_ID, "{} id bytes", w.len());
                assert!(!w.contains(&b'\n'), "{w:?}");
                assert!(
                    !w[0].is_ascii_whitespace() && !w[w.len() - 1].is_ascii_whitespace(),
                    "{w:?}"
                );
            }
            Attribution::Header(_) => {
                assert!(w.len() < MAX_HEAD, "{} id bytes", w.len());
                assert!(!w.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)), "{w:?}");
                assert!(
                    !matches!(w[0], b' ' | b'\t') && !matches!(w[w.len() - 1], b' ' | b'\t'),
                    "{w:?}"
                );
            }
            Attribution::Off => panic!("no worker is named when attribution is off: {w:?}"),
        }
    }
}

/// Feeds `chunks` as the engine does (`feed_partial`; after a complete
/// response, `reset` and the rest of the chunk to the next one), checking
/// the parser's promises on the way; `finish()` at the end.
fn stream(attribution: &Attribution, require_length: bool, chunks: &[&[u8]]) -> Streamed {
    let mut p = parser(attribution, require_length);
    let mut complete = Vec::new();
    let mut fed = 0u64;
    for c in chunks {
        let mut pos = 0;
        // Each pass either ends the chunk or completes a response that took
        // at least one byte of it, so c.len() + 1 passes are enough.
        let mut passes = 0;
        loop {
            passes += 1;
            assert!(passes <= c.len() + 1, "no progress on a {}-byte chunk", c.len());
            let rest = &c[pos..];
            match p.feed_partial(rest) {
                Ok((Progress::NeedMore, used)) => {
                    assert_eq!(used, rest.len(), "NeedMore takes the whole chunk");
                    assert!(!p.is_complete());
                    fed += used as u64;
                    check_state(&p, fed);
                    break;
                }
                Ok((Progress::Complete, used)) => {
                    // Zero would make the engine's read loop spin forever.
                    assert!(used > 0 && used <= rest.len(), "used {used} of {}", rest.len());
                    assert!(p.is_complete());
                    assert!(p.status().is_some(), "a complete response has a status");
                    fed += used as u64;
                    check_state(&p, fed);
                    // Done: takes nothing more.
                    assert_eq!(p.feed_partial(&rest[used..]), Ok((Progress::Complete, 0)));
                    assert_eq!(p.finish(), Ok(()));
                    complete.push(seen(&p));
                    p.reset();
                    fed = 0;
                    pos += used;
                    if pos == c.len() {
                        break;
                    }
                }
                Err(e) => {
                    // Sticky, whatever comes next.
                    assert_eq!(p.feed_partial(b"HTTP/1.1 200 OK\r\n\r\n"), Err(e));
                    assert_eq!(p.feed(&[]), Err(e));
                    assert_eq!(p.finish(), Err(e));
                    assert!(!p.is_complete());
                    check_state(&p, fed + rest.len() as u64);
                    return Streamed {
                        complete,
                        last: seen(&p),
                        end: Err(e),
                    };
                }
            }
        }
    }
    let end = p.finish();
    assert_eq!(end.is_ok(), p.is_complete(), "{end:?}");
    assert_eq!(p.finish(), end, "finish twice");
    check_state(&p, fed);
    Streamed {
        complete,
        last: seen(&p),
        end,
    }
}

/// Feeds `chunks` with `feed` (bytes after a complete response ignored),
/// then `finish()`; the error, if any, is where it stopped.
fn parse_once(attribution: &Attribution, require_length: bool, chunks: &[&[u8]]) -> (Seen, Result<(), ParseError>) {
    let mut p = parser(attribution, require_length);
    for c in chunks {
        if let Err(e) = p.feed(c) {
            return (seen(&p), Err(e));
        }
    }
    let r = p.finish();
    (seen(&p), r)
}

// --------------------------------------------------------------- strategies

fn attribution() -> impl Strategy<Value = Attribution> {
    prop_oneof![
        Just(Attribution::default()),
        Just(Attribution::Body),
        // A header the parser also reads for framing.
        Just(Attribution::Header("content-length".into())),
        "[a-z0-9!#$%&'*+.^_`|~-]{1,12}".prop_map(Attribution::Header),
    ]
}

/// Pieces of HTTP, so random input reaches the header and body states.
const PIECES: &[&[u8]] = &[
    b"HTTP/1.1 ",
    b"HTTP/1.0 ",
    b"HTTP/1.",
    b"HTTP/2 ",
    b"200",
    b"204",
    b"304",
    b"101",
    b"099",
    b"999",
    b" OK",
    b"\r\n",
    b"\r\n\r\n",
    b"\r",
    b"\n",
    b":",
    b" ",
    b"\t",
    b"\0",
    b"content-length:",
    b"Content-Length: 0",
    b"content-length: 5",
    b"content-length: 18446744073709551615",
    b"content-length: 18446744073709551616",
    b"content-length: -1",
    b"transfer-encoding: chunked",
    b"x-worker:",
    b"X-Worker: 7",
    b"0",
    b"5",
    b"\r\n0\r\n\r\n",
    b"hello\n",
    b"\xff\xfe",
];

fn http_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(PIECES).prop_map(<[u8]>::to_vec),
            1 => prop::collection::vec(any::<u8>(), 0..24),
        ],
        0..80,
    )
    .prop_map(|v| v.concat())
}

/// One change to a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), prop::sample::select(&b"\r\n: \t0\xff"[..])).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Set(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
        Mutation::Delete(i) => {
            bytes.remove(i.index(bytes.len()));
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
    }
}

/// Well-formed responses back to back (as on a keep-alive connection),
/// then a few random changes: reaches the header and body states that
/// random bytes rarely do.
fn damaged_responses() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(any_parts(), 1..4),
        prop::collection::vec(mutation(), 0..4),
    )
        .prop_map(|(responses, mutations)| {
            let mut bytes: Vec<u8> = responses.iter().flat_map(|(a, p)| p.bytes(a)).collect();
            for m in &mutations {
                mutate(&mut bytes, m);
            }
            bytes
        })
}

/// Random bytes (now and then more than a head may hold), HTTP-like ones,
/// or damaged responses.
fn any_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..512),
        1 => prop::collection::vec(any::<u8>(), MAX_HEAD - 64..MAX_HEAD + 256),
        3 => http_like(),
        6 => damaged_responses(),
    ]
}

fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..10)
}

/// How the body of a generated response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `content-length: N`, with optional white space around N, sometimes twice.
    Length {
        ows: (&'static str, &'static str),
        twice: bool,
    },
    /// `transfer-encoding: chunked`: this parser reads it to end of stream.
    Chunked,
    /// Nothing: the body runs to end of stream.
    Eof,
}

/// A well-formed response, in parts.
#[derive(Debug, Clone)]
struct Parts {
    minor: u8,
    status: u16,
    reason: Option<String>,
    /// Extra headers (names never collide with the ones below).
    extra: Vec<(String, String)>,
    framing: Framing,
    /// The worker header's name as sent (any case) and its white space.
    id_header: String,
    id_ows: (&'static str, &'static str),
    /// An empty header of that name before the real one (first non-empty wins).
    empty_first: bool,
    /// Where the id and framing headers go among the extras.
    at: Index,
    /// The id; with `header:content-length`, the body length (the
    /// `content-length` header names the worker).
    id: String,
    id_is_length: bool,
    payload: Vec<u8>,
}

fn has_body(status: u16) -> bool {
    !((100..200).contains(&status) || status == 204 || status == 304)
}

impl Parts {
    /// The body as it goes on the wire.
    fn wire_body(&self) -> Vec<u8> {
        if !has_body(self.status) {
            // Bytes after a body-less response belong to the next one.
            return self.payload.clone();
        }
        match self.framing {
            Framing::Chunked => {
                let mut b = format!("{:x}\r\n", self.payload.len()).into_bytes();
                b.extend_from_slice(&self.payload);
                b.extend_from_slice(b"\r\n0\r\n\r\n");
                b
            }
            _ => self.payload.clone(),
        }
    }

    fn head(&self, attribution: &Attribution) -> Vec<u8> {
        let mut h = format!("HTTP/1.{} {}", self.minor, self.status);
        if let Some(r) = &self.reason {
            h.push(' ');
            h.push_str(r);
        }
        h.push_str("\r\n");
        let mut special = Vec::new();
        if let Attribution::Header(_) = attribution {
            if self.id_is_length {
                // The framing header below is the id.
            } else if self.empty_first {
                special.push(format!("{}:{}", self.id_header, self.id_ows.0));
            }
            if !self.id_is_length {
                special.push(format!(
                    "{}:{}{}{}",
                    self.id_header, self.id_ows.0, self.id, self.id_ows.1
                ));
            }
        } else {
            // Not the configured source: must be ignored.
            special.push("x-worker: decoy".to_string());
        }
        match self.framing {
            Framing::Length { ows, twice } => {
                let n = self.payload.len();
                special.push(format!("Content-Length:{}{n}{}", ows.0, ows.1));
                if twice {
                    special.push(format!("content-length: {n}"));
                }
            }
            Framing::Chunked => special.push("Transfer-Encoding: chunked".into()),
            Framing::Eof => {}
        }
        let at = self.at.index(self.extra.len() + 1);
        let extra = self.extra.iter().map(|(n, v)| format!("{n}: {v}"));
        let lines: Vec<String> = extra.clone().take(at).chain(special).chain(extra.skip(at)).collect();
        for l in lines {
            h.push_str(&l);
            h.push_str("\r\n");
        }
        h.push_str("\r\n");
        h.into_bytes()
    }

    fn bytes(&self, attribution: &Attribution) -> Vec<u8> {
        let mut b = self.head(attribution);
        b.extend_from_slice(&self.wire_body());
        b
    }

    /// What the parser must report, worked out from the parts: the parse
    /// result and the response.
    fn expected(&self, attribution: &Attribution, require_length: bool) -> (Result<(), ParseError>, Option<Seen>) {
        if !has_body(self.status) {
            let worker = match attribution {
                Attribution::Header(_) => Some(self.id.clone().into_bytes()),
                Attribution::Body | Attribution::Off => None,
            };
            let s = Seen {
                status: Some(self.status),
                worker,
                body_len: 0,
            };
            return (Ok(()), Some(s));
        }
        if require_length && !matches!(self.framing, Framing::Length { .. }) {
            return (Err(ParseError::NoContentLength), None);
        }
        let body = self.wire_body();
        let worker = match attribution {
            Attribution::Header(_) => Some(self.id.clone().into_bytes()),
            Attribution::Body => first_line_id(&body),
            Attribution::Off => None,
        };
        let s = Seen {
            status: Some(self.status),
            worker,
            body_len: body.len() as u64,
        };
        (Ok(()), Some(s))
    }
}

/// The body-attribution rule, written independently of the parser: the
/// first line (to the first `\n`), leading ASCII white space skipped, at
/// most `MAX_BODY_ID` bytes kept, trailing white space trimmed; empty: none.
fn first_line_id(body: &[u8]) -> Option<Vec<u8>> {
    let line = body.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let start = line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len());
    let kept = &line[start..line.len().min(start + MAX_BODY_ID)];
    let end = kept.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    (end > 0).then(|| kept[..end].to_vec())
}

fn ows() -> impl Strategy<Value = (&'static str, &'static str)> {
    let one = prop::sample::select(&["", " ", "\t", "  \t "][..]);
    (one.clone(), one)
}

/// Any status a server may send, weighted towards the body-less ones.
fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => 100u16..=999,
        1 => prop::sample::select(&[101u16, 204, 304, 200][..]),
    ]
}

fn parts(attribution: Attribution) -> impl Strategy<Value = (Attribution, Parts)> {
    let id_header = match &attribution {
        // Sent in a random case: matched case-insensitively.
        Attribution::Header(name) => {
            let name = name.clone();
            prop::collection::vec(any::<bool>(), name.len())
                .prop_map(move |upper| {
                    name.chars()
                        .zip(upper)
                        .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
                        .collect::<String>()
                })
                .boxed()
        }
        Attribution::Body | Attribution::Off => Just(String::new()).boxed(),
    };
    let id = match &attribution {
        Attribution::Header(_) => "[A-Za-z0-9._-]{1,40}".boxed(),
        // Longer than MAX_BODY_ID sometimes, with inner spaces.
        Attribution::Body | Attribution::Off => "[A-Za-z0-9._ -]{0,80}".boxed(),
    };
    let framing = prop_oneof![
        3 => (ows(), any::<bool>()).prop_map(|(ows, twice)| Framing::Length { ows, twice }),
        1 => Just(Framing::Chunked),
        1 => Just(Framing::Eof),
    ];
    let extra = prop::collection::vec(("x-h-[a-z0-9]{1,10}", "[ -~]{0,30}"), 0..6).prop_map(|hs| {
        // Values are sent trimmed, as a header value is read.
        hs.into_iter().map(|(n, v)| (n, v.trim().to_string())).collect()
    });
    let body = prop_oneof![
        // No body at all: `content-length: 0`.
        1 => Just(Vec::new()),
        4 => prop::collection::vec(any::<u8>(), 0..300),
        4 => (" {0,3}", "[ -~]{0,40}").prop_map(|(lead, rest)| format!("{lead}{rest}\nsecond line\n").into_bytes()),
    ];
    (
        (0u8..=1, status(), prop::option::of("[A-Za-z ]{0,20}"), extra, framing),
        (id_header, ows(), any::<bool>(), any::<Index>(), id, body),
    )
        .prop_map(
            move |((minor, status, reason, extra, framing), (id_header, id_ows, empty_first, at, id, body))| {
                let mut extra: Vec<(String, String)> = extra;
                let mut framing = framing;
                let mut id = id;
                let mut payload = Vec::new();
                if matches!(attribution, Attribution::Body) {
                    payload.extend_from_slice(id.as_bytes());
                    payload.push(b'\n');
                } else if !body.is_empty() {
                    // Not the configured source: must be ignored.
                    payload.extend_from_slice(b"decoy\n");
                }
                payload.extend_from_slice(&body);
                let id_is_length = matches!(&attribution, Attribution::Header(n) if n == "content-length");
                if id_is_length {
                    id = payload.len().to_string();
                    if !matches!(framing, Framing::Length { .. }) {
                        framing = Framing::Length {
                            ows: ("", ""),
                            twice: false,
                        };
                    }
                }
                if let Attribution::Header(name) = &attribution {
                    // An extra header of the configured name would be the id.
                    extra.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                }
                let parts = Parts {
                    minor,
                    status,
                    reason,
                    extra,
                    framing,
                    id_header,
                    id_ows,
                    empty_first,
                    at,
                    id,
                    id_is_length,
                    payload,
                };
                (attribution.clone(), parts)
            },
        )
}

fn any_parts() -> impl Strategy<Value = (Attribution, Parts)> {
    attribution().prop_flat_map(parts)
}

// --------------------------------------------------------------- properties

proptest! {
    #![proptest_config(config(16_384))]

    /// (a) Arbitrary bytes at arbitrary cuts: no panic, the engine's loop
    /// always advances, and the cuts do not change the outcome.
    #[test]
    fn arbitrary_bytes_never_panic_and_cuts_do_not_matter(
        bytes in any_input(),
        cuts in cuts(),
        attribution in attribution(),
        require_length in any::<bool>(),
    ) {
        // CPU-heavy: not beside a test that measures (taken per case).
        let _g = crate::common::serial();
        let chunks = split(&bytes, &cuts);
        let whole = stream(&attribution, require_length, &[&bytes]);
        let cut = stream(&attribution, require_length, &chunks);
        prop_assert_eq!(&cut, &whole);
        // One response only (`feed`, the rest ignored): the same too.
        let once = parse_once(&attribution, require_length, &[&bytes]);
        prop_assert_eq!(parse_once(&attribution, require_length, &chunks), once.clone());
        // ... and it is the first response of the stream.
        match whole.complete.first() {
            Some(first) => prop_assert_eq!(&once, &(first.clone(), Ok(()))),
            None => prop_assert_eq!(&once, &(whole.last.clone(), whole.end)),
        }
    }
}

proptest! {
    #![proptest_config(config(16_384))]

    /// (b) A well-formed response parses to what its parts say, in one
    /// chunk, at random cuts and byte by byte.
    #[test]
    fn well_formed_responses_parse_the_same_at_any_cut(
        (attribution, parts) in any_parts(),
        require_length in any::<bool>(),
        cuts in cuts(),
    ) {
        // CPU-heavy: not beside a test that measures (taken per case).
        let _g = crate::common::serial();
        let bytes = parts.bytes(&attribution);
        let (result, want) = parts.expected(&attribution, require_length);
        let one = parse_once(&attribution, require_length, &[&bytes]);
        prop_assert_eq!(&one.1, &result, "{:?}", String::from_utf8_lossy(&bytes));
        if let Some(want) = &want {
            prop_assert_eq!(&one.0, want, "{:?}", String::from_utf8_lossy(&bytes));
        }
        prop_assert_eq!(&parse_once(&attribution, require_length, &split(&bytes, &cuts)), &one);
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(&parse_once(&attribution, require_length, &bytewise), &one);
    }

    /// (b) Keep-alive: a length-delimited response followed by another ends
    /// exactly at its last byte, at any cut.
    #[test]
    fn length_delimited_responses_end_exactly(
        (attribution, parts) in any_parts(),
        cuts in cuts(),
    ) {
        // CPU-heavy: not beside a test that measures (taken per case).
        let _g = crate::common::serial();
        let mut parts = parts;
        if has_body(parts.status) && !matches!(parts.framing, Framing::Length { .. }) {
            // Keep-alive needs a length.
            parts.framing = Framing::Length { ows: (" ", ""), twice: false };
        }
        let bytes = parts.bytes(&attribution);
        // A body-less status sends no body: the payload would be the next response.
        let first = if has_body(parts.status) { bytes.clone() } else { parts.head(&attribution) };
        let mut all = first;
        all.extend_from_slice(b"HTTP/1.1 204 No Content\r\nX-Worker: next\r\n\r\n");
        let (_, want) = parts.expected(&attribution, true);
        let want = want.expect("a framed response parses");
        let next = Seen {
            status: Some(204),
            worker: match &attribution {
                Attribution::Header(n) if n == "x-worker" => Some(b"next".to_vec()),
                _ => None,
            },
            body_len: 0,
        };
        let got = stream(&attribution, true, &split(&all, &cuts));
        prop_assert_eq!(got.complete, vec![want, next]);
    }
}

proptest! {
    #![proptest_config(config(4096))]

    /// (c) A header block past `MAX_HEAD` is an error by the time `MAX_HEAD`
    /// bytes have been fed, whatever the cuts: the parser never holds more.
    #[test]
    fn an_oversized_head_is_an_error_within_max_head(
        line_lens in prop::collection::vec(1usize..3000, 1..40),
        blank_line_after in any::<bool>(),
        chunk_lens in prop::collection::vec(1usize..6000, 1..64),
        attribution in attribution(),
        require_length in any::<bool>(),
    ) {
        // CPU-heavy: not beside a test that measures (taken per case).
        let _g = crate::common::serial();
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        let mut k = 0;
        // Headers until the block is past the limit.
        while head.len() < MAX_HEAD + 8 {
            let n = line_lens[k % line_lens.len()];
            head.extend_from_slice(format!("x-pad-{k}: ").as_bytes());
            head.resize(head.len() + n, b'a');
            head.extend_from_slice(b"\r\n");
            k += 1;
        }
        if blank_line_after {
            head.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
        }
        let mut p = parser(&attribution, require_length);
        let (mut fed, mut i, mut failed) = (0usize, 0usize, None);
        while fed < head.len() {
            let n = chunk_lens[i % chunk_lens.len()].min(head.len() - fed);
            i += 1;
            let before = fed;
            fed += n;
            match p.feed_partial(&head[before..fed]) {
                Ok((Progress::NeedMore, used)) => {
                    prop_assert_eq!(used, n);
                    prop_assert!(fed < MAX_HEAD, "{} bytes fed without an error", fed);
                }
                Ok((Progress::Complete, _)) => prop_assert!(false, "a {}-byte head completed", head.len()),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        prop_assert_eq!(failed, Some(ParseError::HeadTooLarge));
        prop_assert!(fed - chunk_lens.iter().max().copied().unwrap_or(0) < MAX_HEAD);
        prop_assert_eq!(p.finish(), Err(ParseError::HeadTooLarge));
    }

    /// `Attribution::parse` on any string: no panic; what it accepts
    /// round-trips through `Display`; what it refuses is one line.
    #[test]
    fn attribution_parse_round_trips_or_errs_on_one_line(
        s in prop_oneof![any::<String>(), "(header:|body)?[ -~\t\n\r]{0,20}".boxed()],
    ) {
        // CPU-heavy: not beside a test that measures (taken per case).
        let _g = crate::common::serial();
        match Attribution::parse(&s) {
            Ok(a) => {
                prop_assert_eq!(a.problem(), None);
                prop_assert_eq!(Attribution::parse(&a.to_string()), Ok(a.clone()));
                prop_assert_eq!(a.to_string(), s.to_ascii_lowercase());
            }
            Err(e) => {
                prop_assert!(!e.is_empty());
                prop_assert!(!e.contains('\n') && !e.contains('\r'), "{:?}", e);
            }
        }
    }
}

// ---------------------------------------------------------- fixed boundaries

/// A head of exactly `MAX_HEAD` bytes is accepted, one byte more is not,
/// whether it comes in one piece or two.
#[test]
fn max_head_boundary() {
    let head = |len: usize| {
        let mut h = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-pad: ".to_vec();
        h.resize(len - 4, b'a');
        h.extend_from_slice(b"\r\n\r\n");
        assert_eq!(h.len(), len);
        h
    };
    for (len, want) in [(MAX_HEAD, Ok(())), (MAX_HEAD + 1, Err(ParseError::HeadTooLarge))] {
        let h = head(len);
        for cut in [0, 1, 100, MAX_HEAD - 4, MAX_HEAD - 1, len - 1, len] {
            let (_, r) = parse_once(&Attribution::default(), false, &[&h[..cut], &h[cut..]]);
            assert_eq!(r, want, "{len} bytes cut at {cut}");
        }
    }
}

/// A server that never ends its head: the parser stops taking bytes (an
/// error) after the first `MAX_HEAD`, so the engine drops the connection.
#[test]
fn an_endless_head_stops_at_max_head() {
    let mut p = ResponseParser::new();
    assert_eq!(p.feed(b"HTTP/1.1 200 OK\r\nx-long: "), Ok(Progress::NeedMore));
    let chunk = [b'a'; 4096];
    let mut fed = 27;
    let mut result = Ok(Progress::NeedMore);
    // 16 MiB at most; it must stop long before.
    for _ in 0..4096 {
        result = p.feed(&chunk);
        fed += chunk.len();
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(ParseError::HeadTooLarge));
    assert!(fed < MAX_HEAD + chunk.len(), "error after {fed} bytes");
}
