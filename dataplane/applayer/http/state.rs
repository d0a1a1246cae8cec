//! One HTTP/1.x connection: both directions' parsers and the transactions
//! between them. A request and its response are one transaction; requests
//! may be pipelined (responses are paired in order); a response with no
//! request gets a transaction of its own. Each transaction goes through
//! its points (request headers, request body, response headers, response
//! body, complete) exactly once, and the app layer evaluates rules and logs
//! at each. Heads and bodies live in the worker's block store.

use super::decompress::{Coding, Inflater, Outcome};
use super::parser::{looks_like_request, looks_like_response, status_code, trim, Probe};
use super::{HttpAnomaly, HttpCounters, HttpCx, HttpEvent};
use crate::applayer::blocks::Chain;
use crate::applayer::Point;

/// Transactions in flight on one connection (requests waiting for their
/// response); one more request past them stops the request side.
pub const MAX_TX: usize = 16;
/// Content codings decoded in a row (`gzip, gzip`); more are inspected as
/// they are.
pub const MAX_CODINGS: usize = 2;

/// Flags of a transaction.
pub mod flag {
    pub const REQ_GAP: u16 = 1;
    pub const RESP_GAP: u16 = 2;
    pub const REQ_TRUNCATED: u16 = 4;
    pub const RESP_TRUNCATED: u16 = 8;
    /// A response with no request before it.
    pub const NO_REQUEST: u16 = 16;
    pub const HEAD: u16 = 32;
    pub const CONNECT: u16 = 64;
    /// HTTP/0.9: a request line alone, a response with no head.
    pub const HTTP09: u16 = 128;
    /// The body was decoded from a content coding.
    pub const REQ_DECODED: u16 = 256;
    pub const RESP_DECODED: u16 = 512;
    /// The connection closed before the body's length or last chunk.
    pub const REQ_CUT: u16 = 1024;
    pub const RESP_CUT: u16 = 2048;
}

/// One transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tx {
    pub id: u64,
    pub live: bool,
    pub req_head: Chain,
    pub req_body: Chain,
    pub resp_head: Chain,
    pub resp_body: Chain,
    pub status: u16,
    /// Body bytes as sent (de-chunked, before decoding).
    pub req_body_len: u64,
    pub resp_body_len: u64,
    /// Body bytes after decoding (a file's size; a coded body's stops
    /// where decoding stopped).
    pub req_size: u64,
    pub resp_size: u64,
    /// The bodies' hashes (the files'), those asked for.
    pub req_hash: FileHashes,
    pub resp_hash: FileHashes,
    pub flags: u16,
    /// Events raised on it, a bit per `HttpEvent`.
    pub events: u32,
    /// Points reached, a bit per `Point`.
    pub points: u8,
}

impl Tx {
    pub fn reached(&self, p: Point) -> bool {
        self.points & (1 << p as u8) != 0
    }

    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// The size line: its value so far, whether a digit was seen, and
    /// whether an extension (`;…`) is being skipped.
    Size {
        value: u64,
        digits: bool,
        ext: bool,
    },
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines; `empty`: the current line has nothing yet.
    Trailer {
        empty: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked(Chunk),
    /// Until the connection closes.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Between messages (line ends before a message are skipped).
    #[default]
    Idle,
    /// Reading a head: the current line's length and lines so far.
    Head {
        line: u32,
        lines: u32,
    },
    Body(Body),
    /// After CONNECT or Upgrade: not HTTP any more.
    Tunnel,
    /// Lost: waiting for a message start at a line start.
    Resync,
    /// Given up on (a limit or an unrecoverable error).
    Stopped,
    /// A request's message is read; what follows it in the same bytes is
    /// looked at before it completes (libhtp's REQ_FINALIZE): lines that
    /// do not start with a method are more of its body
    /// (`request_body_unexpected`). Never outlives one `parse` call.
    Finalize,
}

/// One direction's parser.
#[derive(Debug, Default)]
struct Side {
    state: State,
    /// The transaction being read (its id).
    tx: u64,
    head_len: u32,
    /// Decoders of the current body, outermost coding first.
    dec: [Option<Box<Inflater>>; MAX_CODINGS],
    /// Stop storing this body (limit, ratio or corrupt coding).
    full: bool,
    /// The body limit was hit (counted once; decoding goes on for the
    /// hashes).
    limit_hit: bool,
    /// The file hashes of the current body, as it streams.
    hash: Hashers,
    /// The byte before the current one, for a line start in resync.
    last: u8,
}

/// A file's hashes, those computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileHashes {
    pub md5: Option<[u8; 16]>,
    pub sha1: Option<[u8; 20]>,
    pub sha256: Option<[u8; 32]>,
}

impl FileHashes {
    /// The hashes `which` (`hash::MD5` | …) of `data`, whole.
    pub fn of(which: u8, data: &[u8]) -> FileHashes {
        let mut h = Hashers::default();
        h.start(which);
        h.update(data);
        h.finish()
    }
}

/// Hash states of one body.
#[derive(Debug, Default)]
struct Hashers {
    md5: Option<md5::Md5>,
    sha1: Option<sha1::Sha1>,
    sha256: Option<sha2::Sha256>,
}

impl Hashers {
    fn start(&mut self, which: u8) {
        use super::hash::{MD5, SHA1, SHA256};
        use sha2::Digest;
        self.md5 = (which & MD5 != 0).then(md5::Md5::new);
        self.sha1 = (which & SHA1 != 0).then(sha1::Sha1::new);
        self.sha256 = (which & SHA256 != 0).then(sha2::Sha256::new);
    }

    fn update(&mut self, b: &[u8]) {
        use sha2::Digest;
        if let Some(h) = &mut self.md5 {
            h.update(b);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(b);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(b);
        }
    }

    fn active(&self) -> bool {
        self.md5.is_some() || self.sha1.is_some() || self.sha256.is_some()
    }

    fn finish(&mut self) -> FileHashes {
        use sha2::Digest;
        FileHashes {
            md5: self.md5.take().map(|h| h.finalize().into()),
            sha1: self.sha1.take().map(|h| h.finalize().into()),
            sha256: self.sha256.take().map(|h| h.finalize().into()),
        }
    }
}

/// The parser state of one HTTP connection.
#[derive(Debug, Default)]
pub struct HttpState {
    txs: [Tx; MAX_TX],
    /// The id the next request (or unanswered response) takes.
    next_id: u64,
    /// The oldest transaction still waiting for its response.
    answer: u64,
    req: Side,
    resp: Side,
}

impl HttpState {
    /// A fresh state (reused: slots are made once).
    pub fn reset(&mut self, cx: &mut HttpCx) {
        for t in &mut self.txs {
            release_tx(cx, t);
        }
        for s in [&mut self.req, &mut self.resp] {
            give_back(cx, s);
            *s = Side::default();
        }
        self.next_id = 0;
        self.answer = 0;
    }

    /// The transaction in ring slot `slot`.
    pub fn tx(&self, slot: u8) -> &Tx {
        &self.txs[usize::from(slot) % MAX_TX]
    }

    fn slot(id: u64) -> usize {
        (id % MAX_TX as u64) as usize
    }

    /// Whether the connection became a tunnel (CONNECT, Upgrade).
    pub fn tunnel(&self) -> bool {
        self.req.state == State::Tunnel
    }

    /// Parses `data`, the next bytes of one direction; points reached go
    /// to `cx.out`.
    pub fn parse(&mut self, cx: &mut HttpCx, to_server: bool, data: &[u8]) {
        let mut i = 0;
        while i < data.len() {
            let st = if to_server {
                self.req.state
            } else {
                self.resp.state
            };
            let rest = &data[i..];
            i += match st {
                State::Idle => self.idle(cx, to_server, rest),
                State::Head { .. } => self.head(cx, to_server, rest),
                State::Body(b) => self.body(cx, to_server, b, rest),
                State::Resync => self.resync(cx, to_server, rest),
                State::Finalize => self.finalize(cx, rest),
                State::Tunnel | State::Stopped => rest.len(),
            };
        }
        if to_server && self.req.state == State::Finalize {
            self.req.state = State::Idle;
            self.end_message(cx, true);
        }
    }

    /// The bytes after a request, in the same delivery: a line whose first
    /// word is no method is taken as more of the request's body, said
    /// once (libhtp reads a POST without Content-Length this way); blank
    /// lines are skipped; anything else completes the request.
    fn finalize(&mut self, cx: &mut HttpCx, b: &[u8]) -> usize {
        let end = b
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |i| i + 1);
        let line = &b[..end];
        let word = &line[line
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(line.len())..];
        if word.is_empty() {
            // libhtp hands a blank line after a request to its body too.
            self.body_data(cx, true, line);
            return end;
        }
        if looks_like_request(word) != Probe::No {
            self.req.state = State::Idle;
            self.end_message(cx, true);
            return 0;
        }
        let t = &mut self.txs[Self::slot(self.req.tx)];
        t.events |= HttpEvent::RequestBodyUnexpected.bit();
        self.body_data(cx, true, line);
        end
    }

    /// `len` bytes of one direction were lost. A body of known length
    /// steps over them; anything else waits for the next message.
    pub fn gap(&mut self, cx: &mut HttpCx, to_server: bool, len: u64) {
        cx.counters.gaps += 1;
        let side = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        let id = side.tx;
        let gap_flag = if to_server {
            flag::REQ_GAP
        } else {
            flag::RESP_GAP
        };
        match side.state {
            State::Body(Body::Length(left)) if len < left => {
                side.state = State::Body(Body::Length(left - len));
                side.full = true;
                self.txs[Self::slot(id)].flags |= gap_flag;
            }
            State::Body(Body::Length(_)) | State::Body(Body::Close) => {
                self.txs[Self::slot(id)].flags |= gap_flag;
                if matches!(side.state, State::Body(Body::Close)) {
                    side.full = true;
                    return;
                }
                self.end_body(cx, to_server);
            }
            State::Body(Body::Chunked(_)) | State::Head { .. } => {
                self.txs[Self::slot(id)].flags |= gap_flag;
                if matches!(side.state, State::Body(_)) {
                    self.end_body(cx, to_server);
                } else {
                    // A head cut short: its transaction reaches no point
                    // past it, and completes.
                    cx.counters.note(HttpAnomaly::GapInHead);
                    let t = &mut self.txs[Self::slot(id)];
                    t.points |= 1 << Point::RequestHeaders as u8
                        | 1 << Point::RequestBody as u8
                        | 1 << Point::ResponseHeaders as u8
                        | 1 << Point::ResponseBody as u8;
                    reach(&mut cx.out, t, Point::Complete);
                    if !to_server {
                        self.answer = self.answer.max(id + 1);
                    }
                }
                let side = if to_server {
                    &mut self.req
                } else {
                    &mut self.resp
                };
                give_back(cx, side);
                side.state = State::Resync;
                side.last = b'\n';
            }
            State::Idle => {}
            // (Resolved within the delivery that set it.)
            State::Finalize | State::Resync | State::Tunnel | State::Stopped => {}
        }
        let side = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        if side.state == State::Idle {
            side.state = State::Resync;
            side.last = b'\n';
        }
    }

    /// The connection closed: bodies that end at close end, every
    /// transaction reaches what it can and completes.
    pub fn close(&mut self, cx: &mut HttpCx) {
        // A head the close cut short counts as whole, as libhtp takes it.
        for to_server in [true, false] {
            let side = if to_server { &self.req } else { &self.resp };
            if let State::Head { line, lines } = side.state {
                let t = &self.txs[Self::slot(side.tx)];
                if (line > 0 || lines > 0) && t.live && t.id == side.tx {
                    self.head_done(cx, to_server);
                }
            }
        }
        for to_server in [true, false] {
            let side = if to_server { &self.req } else { &self.resp };
            if matches!(side.state, State::Body(_)) {
                if let State::Body(Body::Length(_) | Body::Chunked(_)) = side.state {
                    cx.counters.note(HttpAnomaly::BodyCutShort);
                    let id = side.tx;
                    self.txs[Self::slot(id)].flags |= if to_server {
                        flag::REQ_CUT
                    } else {
                        flag::RESP_CUT
                    };
                }
                self.end_body(cx, to_server);
            }
        }
        for id in self.next_id.saturating_sub(MAX_TX as u64)..self.next_id {
            let t = &mut self.txs[Self::slot(id)];
            if !t.live || t.reached(Point::Complete) {
                continue;
            }
            if t.reached(Point::RequestHeaders) {
                reach(&mut cx.out, t, Point::RequestBody);
            }
            if t.reached(Point::ResponseHeaders) {
                reach(&mut cx.out, t, Point::ResponseBody);
            }
            reach(&mut cx.out, t, Point::Complete);
        }
    }

    /// Lets go of transactions that are complete (after the app layer has
    /// seen their points).
    pub fn reap(&mut self, cx: &mut HttpCx) {
        for t in &mut self.txs {
            if t.live && t.reached(Point::Complete) {
                release_tx(cx, t);
            }
        }
    }

    fn new_tx(&mut self, cx: &mut HttpCx) -> Option<u64> {
        let id = self.next_id;
        let t = &mut self.txs[Self::slot(id)];
        if t.live {
            cx.counters.note(HttpAnomaly::TooManyTransactions);
            return None;
        }
        release_tx(cx, t);
        *t = Tx {
            id,
            live: true,
            ..Tx::default()
        };
        self.next_id += 1;
        cx.counters.txs += 1;
        Some(id)
    }

    fn idle(&mut self, cx: &mut HttpCx, to_server: bool, b: &[u8]) -> usize {
        let skip = b
            .iter()
            .position(|&c| c != b'\r' && c != b'\n')
            .unwrap_or(b.len());
        if skip == b.len() {
            return skip;
        }
        // A response answers the oldest request still waiting for one.
        while self.answer < self.next_id && {
            let t = &self.txs[Self::slot(self.answer)];
            !t.live || t.reached(Point::ResponseHeaders) || t.reached(Point::Complete)
        } {
            self.answer += 1;
        }
        let id = if to_server {
            self.new_tx(cx)
        } else if self.answer < self.next_id {
            let id = self.answer;
            Some(id)
        } else {
            // A response nothing asked for.
            let id = self.new_tx(cx);
            if let Some(id) = id {
                let t = &mut self.txs[Self::slot(id)];
                t.flags |= flag::NO_REQUEST;
                t.points |= 1 << Point::RequestHeaders as u8 | 1 << Point::RequestBody as u8;
                self.answer = self.next_id - 1;
                cx.counters.note(HttpAnomaly::ResponseWithoutRequest);
            }
            id
        };
        let side = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        match id {
            Some(id) => {
                side.tx = id;
                side.head_len = 0;
                side.state = State::Head { line: 0, lines: 0 };
            }
            None => side.state = State::Stopped,
        }
        // A response without a status line (HTTP/0.9 style): no head, its
        // bytes are body until the close.
        if !to_server && looks_like_response(&b[skip..]) == Probe::No {
            if let Some(id) = id {
                let t = &mut self.txs[Self::slot(id)];
                t.flags |= flag::HTTP09;
                reach(&mut cx.out, t, Point::ResponseHeaders);
                self.resp.state = State::Body(Body::Close);
            }
        }
        skip
    }

    fn head(&mut self, cx: &mut HttpCx, to_server: bool, b: &[u8]) -> usize {
        let side = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        let State::Head {
            mut line,
            mut lines,
        } = side.state
        else {
            return b.len();
        };
        let mut end = None;
        let mut first_line = false;
        for (i, &c) in b.iter().enumerate() {
            match c {
                b'\n' if line == 0 && lines > 0 => {
                    end = Some(i + 1);
                    break;
                }
                b'\n' => {
                    lines += 1;
                    line = 0;
                    // HTTP/0.9: a request line without a protocol has no
                    // head after it; checked once the first line is in.
                    if lines == 1 && to_server {
                        end = Some(i + 1);
                        first_line = true;
                        break;
                    }
                }
                b'\r' => {}
                _ => line += 1,
            }
        }
        let take = end.unwrap_or(b.len());
        let too_long = end.is_none() && line > super::FIELD_LIMIT;
        let id = side.tx;
        let t = &mut self.txs[Self::slot(id)];
        if !t.live || t.id != id {
            // Its transaction ended under it (a gap, the close): the
            // direction waits for the next message.
            side.state = State::Resync;
            side.last = 0;
            return take;
        }
        let chain = if to_server {
            &mut t.req_head
        } else {
            &mut t.resp_head
        };
        if side.head_len as usize + take > cx.cfg.head_limit {
            cx.counters.note(HttpAnomaly::HeadTooLong);
            side.state = State::Stopped;
            return b.len();
        }
        side.head_len += take as u32;
        if cx.blocks.push(chain, &b[..take]) < take {
            cx.counters.memcap += 1;
            side.state = State::Stopped;
            return b.len();
        }
        if too_long {
            // libhtp gives up on the connection's parsing here: the
            // transaction is inspected with the head it has, and the
            // direction is left to stream rules.
            t.events |= if to_server {
                HttpEvent::RequestFieldTooLong.bit()
            } else {
                HttpEvent::ResponseFieldTooLong.bit()
            };
            let point = if to_server {
                Point::RequestHeaders
            } else {
                Point::ResponseHeaders
            };
            reach(&mut cx.out, t, point);
            side.state = State::Stopped;
            return b.len();
        }
        side.state = State::Head { line, lines };
        if end.is_some() {
            if first_line {
                // End of the request line. Without a protocol it is said
                // (libhtp still reads the header lines that follow, up to
                // the blank line or the close).
                cx.head_buf.clear();
                cx.blocks.read(chain, &mut cx.head_buf);
                if !has_protocol(&cx.head_buf) {
                    t.events |= HttpEvent::RequestLineMissingProtocol.bit();
                }
                return take;
            }
            self.head_done(cx, to_server);
        }
        take
    }

    fn head_done(&mut self, cx: &mut HttpCx, to_server: bool) {
        let side = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        let id = side.tx;
        let t = &mut self.txs[Self::slot(id)];
        let chain = if to_server { t.req_head } else { t.resp_head };
        cx.head_buf.clear();
        cx.blocks.read(&chain, &mut cx.head_buf);
        let HttpCx {
            head_buf, index, ..
        } = cx;
        index.parse(head_buf, to_server);
        cx.counters.anomalies_from(index.anomalies);
        let head = &cx.head_buf;
        let index = &cx.index;
        if to_server {
            let method = index.parts[0].of(head);
            if method.eq_ignore_ascii_case(b"HEAD") {
                t.flags |= flag::HEAD;
            }
            if method.eq_ignore_ascii_case(b"CONNECT") {
                t.flags |= flag::CONNECT;
            }
            cx.counters.requests += 1;
            t.events |= request_events(index, head);
        } else {
            cx.counters.responses += 1;
            t.status = status_code(index.parts[1].of(head)).unwrap_or(0);
            if t.has(flag::HTTP09) {
                t.status = 0;
            }
            // An interim response (100-continue …): the real one follows.
            if (100..200).contains(&t.status) && t.status != 101 {
                cx.blocks.release(&mut t.resp_head);
                side.state = State::Idle;
                return;
            }
        }
        // No body: HTTP/0.9 heads, responses to HEAD, 1xx, 204 and 304.
        let bodiless = t.has(flag::HTTP09)
            || (!to_server
                && (t.has(flag::HEAD) || t.status == 204 || t.status == 304 || t.status < 200));
        let framing = if bodiless {
            None
        } else if cx
            .index
            .first(head, b"transfer-encoding")
            .is_some_and(has_chunked)
        {
            Some(Body::Chunked(Chunk::Size {
                value: 0,
                digits: false,
                ext: false,
            }))
        } else if let Some(v) = cx.index.first(head, b"content-length") {
            match parse_len(v) {
                Some(0) => None,
                Some(n) => Some(Body::Length(n)),
                None => {
                    cx.counters.note(HttpAnomaly::InvalidContentLength);
                    if to_server {
                        None
                    } else {
                        Some(Body::Close)
                    }
                }
            }
        } else if to_server {
            None
        } else {
            Some(Body::Close)
        };
        // The codings to undo, innermost last as listed.
        let mut codings = [None; MAX_CODINGS];
        let mut n = 0;
        let mut unknown = false;
        if framing.is_some() {
            let mut v = [0u8; 0].as_slice();
            let mut tmp = std::mem::take(&mut cx.value_buf);
            if cx.index.get_into(head, b"content-encoding", &mut tmp) {
                v = &tmp[..];
            }
            for tok in v.split(|&c| c == b',').map(trim).filter(|t| !t.is_empty()) {
                if tok.eq_ignore_ascii_case(b"identity") {
                    continue;
                }
                match Coding::of(tok) {
                    Some(c) if n < MAX_CODINGS => {
                        codings[n] = Some(c);
                        n += 1;
                    }
                    Some(_) => {
                        cx.counters.note(HttpAnomaly::TooManyCodings);
                        t.events |= HttpEvent::TooManyEncodingLayers.bit();
                    }
                    None => unknown = true,
                }
            }
            cx.value_buf = tmp;
        }
        if unknown {
            cx.counters.note(HttpAnomaly::UnknownCoding);
            n = 0;
        }
        let point = if to_server {
            Point::RequestHeaders
        } else {
            Point::ResponseHeaders
        };
        reach(&mut cx.out, t, point);
        let side = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        // Bodies no rule reads are only counted (not kept, not decoded);
        // hashing a file needs it decoded, and a multipart upload's files
        // are found in it (for their fileinfo events).
        let multipart = to_server
            && cx
                .index
                .first(&cx.head_buf, b"content-type")
                .and_then(super::multipart::boundary)
                .is_some();
        let keep = cx.cfg.keep_bodies[usize::from(!to_server)] || cx.cfg.hashes != 0 || multipart;
        side.full = !keep;
        side.limit_hit = false;
        if framing.is_some() {
            side.hash.start(cx.cfg.hashes);
        }
        if !keep {
            n = 0;
        }
        // Content is applied in the order listed: undo the last first.
        for (k, c) in codings[..n].iter().rev().flatten().enumerate() {
            match cx.inflaters.pop() {
                Some(mut d) => {
                    d.start(*c, cx.cfg.ratio_cap);
                    side.dec[k] = Some(d);
                }
                None => {
                    cx.counters.decoders_busy += 1;
                    give_back(cx, side);
                    break;
                }
            }
        }
        if side.dec[0].is_some() {
            t.flags |= if to_server {
                flag::REQ_DECODED
            } else {
                flag::RESP_DECODED
            };
        }
        // CONNECT answered 2xx, or 101 Switching Protocols: a tunnel.
        let tunnel = !to_server
            && (t.status == 101 || (t.has(flag::CONNECT) && (200..300).contains(&t.status)));
        match framing {
            Some(b) if !tunnel => side.state = State::Body(b),
            _ if to_server => side.state = State::Finalize,
            _ => {
                side.state = State::Idle;
                self.end_message(cx, to_server);
            }
        }
        if tunnel {
            cx.counters.tunnels += 1;
            self.req.state = State::Tunnel;
            self.resp.state = State::Tunnel;
        }
    }

    /// A message (head and body) of one direction is done.
    fn end_message(&mut self, cx: &mut HttpCx, to_server: bool) {
        let side = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        give_back(cx, side);
        let id = side.tx;
        if side.state != State::Tunnel && side.state != State::Stopped {
            side.state = State::Idle;
        }
        let hashes = side.hash.active().then(|| side.hash.finish());
        let t = &mut self.txs[Self::slot(id)];
        if let Some(h) = hashes.filter(|_| t.live && t.id == id) {
            if to_server {
                t.req_hash = h;
            } else {
                t.resp_hash = h;
            }
        }
        if to_server {
            reach(&mut cx.out, t, Point::RequestBody);
        } else {
            reach(&mut cx.out, t, Point::ResponseBody);
            self.answer = self.answer.max(id + 1);
        }
        if t.reached(Point::RequestBody) && t.reached(Point::ResponseBody) {
            reach(&mut cx.out, t, Point::Complete);
        }
    }

    fn end_body(&mut self, cx: &mut HttpCx, to_server: bool) {
        if to_server {
            self.req.state = State::Finalize;
            return;
        }
        self.resp.state = State::Idle;
        self.end_message(cx, false);
    }

    fn body(&mut self, cx: &mut HttpCx, to_server: bool, body: Body, b: &[u8]) -> usize {
        match body {
            Body::Length(left) => {
                let n = left.min(b.len() as u64) as usize;
                self.body_data(cx, to_server, &b[..n]);
                let left = left - n as u64;
                if left == 0 {
                    self.end_body(cx, to_server);
                } else {
                    let side = if to_server {
                        &mut self.req
                    } else {
                        &mut self.resp
                    };
                    side.state = State::Body(Body::Length(left));
                }
                n
            }
            Body::Close => {
                self.body_data(cx, to_server, b);
                b.len()
            }
            Body::Chunked(c) => self.chunked(cx, to_server, c, b),
        }
    }

    fn chunked(&mut self, cx: &mut HttpCx, to_server: bool, c: Chunk, b: &[u8]) -> usize {
        let set = |s: &mut Self, c: Chunk| {
            let side = if to_server { &mut s.req } else { &mut s.resp };
            side.state = State::Body(Body::Chunked(c));
        };
        match c {
            Chunk::Size {
                mut value,
                mut digits,
                mut ext,
            } => {
                for (i, &ch) in b.iter().enumerate() {
                    match ch {
                        b'\n' if !digits => {
                            // A blank line before a size: tolerated.
                            continue;
                        }
                        b'\n' => {
                            if value == 0 {
                                set(self, Chunk::Trailer { empty: true });
                            } else {
                                set(self, Chunk::Data(value));
                            }
                            return i + 1;
                        }
                        _ if ext => {}
                        b';' => {
                            ext = true;
                            if to_server {
                                let id = self.req.tx;
                                self.txs[Self::slot(id)].events |=
                                    HttpEvent::RequestChunkExtension.bit();
                            }
                        }
                        b'\r' | b' ' | b'\t' => {}
                        _ => match (ch as char).to_digit(16) {
                            Some(d) if value < (1 << 56) => {
                                value = value << 4 | u64::from(d);
                                digits = true;
                            }
                            _ => {
                                // Not a chunk size: libhtp gives up on
                                // chunking; the rest is body until close.
                                cx.counters.note(HttpAnomaly::InvalidChunkSize);
                                let side = if to_server {
                                    &mut self.req
                                } else {
                                    &mut self.resp
                                };
                                side.state = State::Body(Body::Close);
                                return i;
                            }
                        },
                    }
                }
                set(self, Chunk::Size { value, digits, ext });
                b.len()
            }
            Chunk::Data(left) => {
                let n = (left.min(b.len() as u64)) as usize;
                self.body_data(cx, to_server, &b[..n]);
                let left = left - n as u64;
                set(
                    self,
                    if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    },
                );
                n
            }
            Chunk::DataEnd => {
                let mut i = 0;
                while i < b.len() && b[i] == b'\r' {
                    i += 1;
                }
                if i < b.len() {
                    if b[i] == b'\n' {
                        i += 1;
                    } else {
                        cx.counters.note(HttpAnomaly::ChunkWithoutCrlf);
                    }
                    set(
                        self,
                        Chunk::Size {
                            value: 0,
                            digits: false,
                            ext: false,
                        },
                    );
                }
                i
            }
            Chunk::Trailer { mut empty } => {
                for (i, &ch) in b.iter().enumerate() {
                    match ch {
                        b'\n' if empty => {
                            self.end_body(cx, to_server);
                            return i + 1;
                        }
                        b'\n' => empty = true,
                        b'\r' => {}
                        _ => empty = false,
                    }
                }
                set(self, Chunk::Trailer { empty });
                b.len()
            }
        }
    }

    /// De-framed body bytes: decoded if the body has a coding, stored up
    /// to the body limit, the ratio cap and the block store's room.
    fn body_data(&mut self, cx: &mut HttpCx, to_server: bool, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let side = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        let t = &mut self.txs[Self::slot(side.tx)];
        if !t.live || t.id != side.tx {
            return;
        }
        let (chain, len, size, trunc) = if to_server {
            (
                &mut t.req_body,
                &mut t.req_body_len,
                &mut t.req_size,
                flag::REQ_TRUNCATED,
            )
        } else {
            (
                &mut t.resp_body,
                &mut t.resp_body_len,
                &mut t.resp_size,
                flag::RESP_TRUNCATED,
            )
        };
        *len += data.len() as u64;
        let coded = side.dec[0].is_some();
        if !coded {
            *size += data.len() as u64;
            side.hash.update(data);
        }
        if side.full {
            return;
        }
        let limit = cx.cfg.body_limit;
        let HttpCx {
            blocks,
            counters,
            room,
            ..
        } = cx;
        let Side {
            dec,
            hash,
            limit_hit,
            ..
        } = side;
        let hashing = hash.active();
        let mut store = |out: &[u8]| -> bool {
            if coded {
                *size += out.len() as u64;
                hash.update(out);
                counters.bytes_decompressed += out.len() as u64;
            }
            let room_left = limit.saturating_sub(chain.len());
            let n = out.len().min(room_left);
            let pushed = blocks.push(chain, &out[..n]);
            if pushed < n {
                counters.memcap += 1;
                return false;
            }
            if n < out.len() {
                if !*limit_hit {
                    counters.body_limit += 1;
                    *limit_hit = true;
                }
                // Past the limit nothing is kept; a coded body is still
                // decoded for its hashes.
                return coded && hashing;
            }
            true
        };
        let [dec0, dec1] = dec;
        let half = room.len() / 2;
        let ok = match (dec0, dec1) {
            (None, _) => store(data),
            (Some(d0), None) => {
                let (r0, _) = room.split_at_mut(half);
                let o = d0.decode(data, r0, &mut store);
                decoded_ok(o, counters)
            }
            (Some(d0), Some(d1)) => {
                let (r0, r1) = room.split_at_mut(half);
                let mut inner = Outcome::More;
                let o = d0.decode(data, r0, &mut |b| {
                    inner = d1.decode(b, r1, &mut store);
                    matches!(inner, Outcome::More)
                });
                decoded_ok(o, counters) && decoded_ok(inner, counters)
            }
        };
        if !ok {
            t.flags |= trunc;
            side.full = true;
            give_back(cx, side);
        }
    }

    fn resync(&mut self, cx: &mut HttpCx, to_server: bool, b: &[u8]) -> usize {
        let side = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        let mut last = side.last;
        for i in 0..b.len() {
            if last == b'\n' {
                let rest = &b[i..];
                let ok = if to_server {
                    looks_like_request(rest) == Probe::Yes
                } else {
                    rest.starts_with(b"HTTP/")
                };
                if ok {
                    side.state = State::Idle;
                    side.last = 0;
                    cx.counters.resyncs += 1;
                    return i;
                }
            }
            last = b[i];
        }
        side.last = last;
        b.len()
    }
}

/// Marks point `p` reached on `t` and reports it, once.
pub(super) fn reach(out: &mut Vec<(u8, Point)>, t: &mut Tx, p: Point) {
    if !t.reached(p) {
        t.points |= 1 << p as u8;
        out.push(((t.id % MAX_TX as u64) as u8, p));
    }
}

fn decoded_ok(o: Outcome, counters: &mut HttpCounters) -> bool {
    match o {
        Outcome::More | Outcome::End => true,
        Outcome::Corrupt => {
            counters.note(HttpAnomaly::CorruptCoding);
            false
        }
        Outcome::Stopped => false,
        Outcome::Bomb => {
            counters.ratio_cap += 1;
            false
        }
    }
}

fn give_back(cx: &mut HttpCx, side: &mut Side) {
    for d in side.dec.iter_mut() {
        if let Some(d) = d.take() {
            cx.inflaters.push(d);
        }
    }
}

fn release_tx(cx: &mut HttpCx, t: &mut Tx) {
    for c in [
        &mut t.req_head,
        &mut t.req_body,
        &mut t.resp_head,
        &mut t.resp_body,
    ] {
        cx.blocks.release(c);
    }
    t.live = false;
}

/// What a request head raises by itself: a second Content-Length, an
/// Authorization scheme libhtp does not know, a Host that is no host.
fn request_events(index: &super::parser::HeadIndex, head: &[u8]) -> u32 {
    let mut ev = 0;
    let named = |n: &'static [u8]| {
        index
            .fields
            .iter()
            .filter(move |f| f.name.of(head).eq_ignore_ascii_case(n))
            .map(|f| f.value.of(&index.values))
    };
    if named(b"content-length").count() > 1 {
        ev |= HttpEvent::DuplicateContentLengthInRequest.bit();
    }
    if named(b"transfer-encoding").any(|v| !has_chunked(v)) {
        ev |= HttpEvent::InvalidTransferEncodingInRequest.bit();
    }
    if let Some(auth) = named(b"authorization").next() {
        let scheme = auth.split(|&c| c == b' ').next().unwrap_or(&[]);
        if !["basic", "digest", "bearer"]
            .iter()
            .any(|s| scheme.eq_ignore_ascii_case(s.as_bytes()))
        {
            ev |= HttpEvent::RequestAuthUnrecognized.bit();
        }
    }
    if let Some(host) = named(b"host").next() {
        if !valid_host(host) {
            ev |= HttpEvent::RequestHeaderHostInvalid.bit();
        }
    }
    ev
}

/// A Host value: a name or an IPv4 address, or an IPv6 address in
/// brackets, with an optional port.
fn valid_host(h: &[u8]) -> bool {
    if h.is_empty() {
        return false;
    }
    let (name, port) = if h[0] == b'[' {
        match h.iter().position(|&c| c == b']') {
            Some(e) => {
                let inside = &h[1..e];
                if inside.is_empty()
                    || !inside
                        .iter()
                        .all(|c| c.is_ascii_hexdigit() || b":.".contains(c))
                {
                    return false;
                }
                (&b"x"[..], &h[e + 1..])
            }
            None => return false,
        }
    } else {
        match h.iter().rposition(|&c| c == b':') {
            Some(p) => (&h[..p], &h[p..]),
            None => (h, &b""[..]),
        }
    };
    let port_ok = port.is_empty()
        || (port[0] == b':' && port.len() > 1 && port[1..].iter().all(u8::is_ascii_digit));
    let name_ok = !name.is_empty()
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(c));
    port_ok && name_ok
}

/// Whether a request line (with its line end) names a protocol.
fn has_protocol(line: &[u8]) -> bool {
    let l = trim(line);
    let words = l
        .split(|&c| c == b' ' || c == b'\t')
        .filter(|w| !w.is_empty())
        .count();
    words >= 3
}

/// A Transfer-Encoding value names `chunked` among its codings (as a
/// token: `xchunked` is not it).
fn has_chunked(v: &[u8]) -> bool {
    v.split(|&c| c == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(b"chunked"))
}

/// A Content-Length: digits (surrounding space allowed); None if not.
fn parse_len(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |a, &d| a * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applayer::http::HttpConfig;

    fn cx() -> HttpCx {
        HttpCx::new(
            HttpConfig {
                decoders: 4,
                ..HttpConfig::default()
            },
            1 << 20,
        )
    }

    /// Feeds `(to_server, bytes)` in order; returns the points reached as
    /// (tx id, point).
    fn feed(st: &mut HttpState, cx: &mut HttpCx, parts: &[(bool, &[u8])]) -> Vec<(u64, Point)> {
        let mut got = Vec::new();
        for (to_server, b) in parts {
            cx.out.clear();
            st.parse(cx, *to_server, b);
            got.extend(cx.out.iter().map(|&(s, p)| (st.tx(s).id, p)));
            st.reap(cx);
        }
        got
    }

    fn body(st: &HttpState, cx: &HttpCx, slot: u8, request: bool) -> Vec<u8> {
        let t = st.tx(slot);
        let mut out = Vec::new();
        cx.blocks
            .read(if request { &t.req_body } else { &t.resp_body }, &mut out);
        out
    }

    use Point::*;

    #[test]
    fn a_request_and_its_response_reach_every_point_once() {
        let (mut st, mut cx) = (HttpState::default(), cx());
        let got = feed(
            &mut st,
            &mut cx,
            &[
                (true, b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nab"),
                (true, b"c"),
                (false, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            ],
        );
        assert_eq!(
            got,
            [
                (0, RequestHeaders),
                (0, RequestBody),
                (0, ResponseHeaders),
                (0, ResponseBody),
                (0, Complete)
            ]
        );
        assert_eq!(
            cx.blocks.in_use(),
            0,
            "a complete transaction gives its blocks back"
        );
        assert_eq!(cx.counters.txs, 1);
    }

    #[test]
    fn chunks_with_extensions_and_trailers_are_body_without_their_framing() {
        let (mut st, mut cx) = (HttpState::default(), cx());
        let req: &[u8] = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n";
        for step in [1, 3, req.len()] {
            st.reset(&mut cx);
            let mut got = Vec::new();
            let mut body_seen = Vec::new();
            for piece in req.chunks(step) {
                cx.out.clear();
                st.parse(&mut cx, true, piece);
                for &(s, p) in &cx.out {
                    got.push(p);
                    if p == RequestBody {
                        body_seen = body(&st, &cx, s, true);
                    }
                }
            }
            assert_eq!(got, [RequestHeaders, RequestBody], "step {step}");
            assert_eq!(body_seen, b"Wikipedia");
        }
    }

    #[test]
    fn an_interim_100_continue_is_not_the_answer() {
        let (mut st, mut cx) = (HttpState::default(), cx());
        let got = feed(
            &mut st,
            &mut cx,
            &[
                (
                    true,
                    b"PUT /m HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
                ),
                (false, b"HTTP/1.1 100 Continue\r\n\r\n"),
                (true, b"hi"),
                (false, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
            ],
        );
        assert_eq!(got.last(), Some(&(0, Complete)));
        assert_eq!(got.iter().filter(|p| p.1 == ResponseHeaders).count(), 1);
        assert_eq!(cx.counters.responses, 2, "both heads are read");
    }

    #[test]
    fn a_response_without_a_request_gets_a_transaction_and_is_counted() {
        let (mut st, mut cx) = (HttpState::default(), cx());
        let got = feed(
            &mut st,
            &mut cx,
            &[(false, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")],
        );
        assert_eq!(
            got,
            [(0, ResponseHeaders), (0, ResponseBody), (0, Complete)]
        );
        assert_eq!(
            cx.counters.anomalies[HttpAnomaly::ResponseWithoutRequest as usize],
            1
        );
    }

    #[test]
    fn connect_and_upgrade_end_parsing_as_tunnels() {
        for (req, resp) in [
            (
                &b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n"[..],
                &b"HTTP/1.1 200 Connection established\r\n\r\n"[..],
            ),
            (
                b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            ),
        ] {
            let (mut st, mut cx) = (HttpState::default(), cx());
            let got = feed(&mut st, &mut cx, &[(true, req), (false, resp)]);
            assert_eq!(got.last(), Some(&(0, Complete)));
            assert!(st.tunnel());
            // Tunnelled bytes are nobody's request.
            let more = feed(
                &mut st,
                &mut cx,
                &[(true, b"GET /x HTTP/1.1\r\n\r\n\x16\x03\x01")],
            );
            assert!(more.is_empty());
            assert_eq!(cx.counters.tunnels, 1);
        }
    }

    #[test]
    fn a_body_without_a_length_ends_at_close() {
        let (mut st, mut cx) = (HttpState::default(), cx());
        feed(
            &mut st,
            &mut cx,
            &[
                (true, b"GET / HTTP/1.0\r\n\r\n"),
                (false, b"HTTP/1.0 200 OK\r\n\r\nall of it"),
            ],
        );
        cx.out.clear();
        st.close(&mut cx);
        let (slot, p) = cx.out[0];
        assert_eq!(p, ResponseBody);
        assert_eq!(body(&st, &cx, slot, false), b"all of it");
        assert_eq!(cx.out.last().map(|x| x.1), Some(Complete));
    }

    #[test]
    fn a_bad_chunk_size_reads_the_rest_as_body_and_is_named() {
        let (mut st, mut cx) = (HttpState::default(), cx());
        feed(
            &mut st,
            &mut cx,
            &[(
                true,
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nrest",
            )],
        );
        assert_eq!(
            cx.counters.anomalies[HttpAnomaly::InvalidChunkSize as usize],
            1
        );
        cx.out.clear();
        st.close(&mut cx);
        assert_eq!(body(&st, &cx, 0, true), b"zz\r\nrest");
    }

    #[test]
    fn too_many_pipelined_requests_stop_the_request_side() {
        let (mut st, mut cx) = (HttpState::default(), cx());
        let one: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        let many: Vec<u8> = one.repeat(MAX_TX + 3);
        feed(&mut st, &mut cx, &[(true, &many)]);
        assert_eq!(cx.counters.txs, MAX_TX as u64);
        assert_eq!(
            cx.counters.anomalies[HttpAnomaly::TooManyTransactions as usize],
            1
        );
    }

    #[test]
    fn a_head_past_its_limit_stops_the_direction() {
        let (mut st, mut cx) = (HttpState::default(), cx());
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        while req.len() <= HttpConfig::default().head_limit {
            req.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let got = feed(&mut st, &mut cx, &[(true, &req)]);
        assert!(got.is_empty());
        assert_eq!(cx.counters.anomalies[HttpAnomaly::HeadTooLong as usize], 1);
    }

    #[test]
    fn a_head_line_past_the_field_limit_is_said_and_inspected_as_it_is() {
        let (mut st, mut cx) = (HttpState::default(), cx());
        let long = [b'a'; super::super::FIELD_LIMIT as usize];
        // Spread over segments, as on the wire: said on the one that
        // takes the line past the limit, once.
        let mut parts: Vec<(bool, &[u8])> = vec![(true, b"GET /x HTTP/1.1\r\nCookie: ")];
        parts.extend(long.chunks(1448).map(|c| (true, c)));
        let got = feed(&mut st, &mut cx, &parts[..parts.len() - 1]);
        assert!(got.is_empty());
        let got = feed(&mut st, &mut cx, &parts[parts.len() - 1..]);
        assert_eq!(got, vec![(0, RequestHeaders)]);
        assert_ne!(st.tx(0).events & HttpEvent::RequestFieldTooLong.bit(), 0);
        // The rest of the request is not parsed; the response still is.
        let got = feed(
            &mut st,
            &mut cx,
            &[(true, b"\r\n\r\n"), (false, b"HTTP/1.1 400 Bad\r\n\r\n")],
        );
        // (Its body runs to the close.)
        assert_eq!(got, vec![(0, ResponseHeaders)]);
        // A line just under the limit is no event.
        let (mut st, mut cx) = (HttpState::default(), super::tests::cx());
        let mut req = b"GET /x HTTP/1.1\r\nCookie: ".to_vec();
        req.extend_from_slice(&long[..super::super::FIELD_LIMIT as usize - 8]);
        req.extend_from_slice(b"\r\n\r\n");
        feed(&mut st, &mut cx, &[(true, &req)]);
        assert_eq!(st.tx(0).events, 0);
    }

    #[test]
    fn lines_after_a_request_that_start_with_no_method_are_more_of_its_body() {
        // A POST without Content-Length, its form data right behind the
        // head (http-request-invalid): libhtp takes it as body, and says so.
        let (mut st, mut cx) = (HttpState::default(), cx());
        let req = b"POST /login HTTP/1.1\r\nHost: a\r\n\r\nlogin=foo&password=bar\r\n";
        let got = feed(&mut st, &mut cx, &[(true, req)]);
        assert_eq!(got, vec![(0, RequestHeaders), (0, RequestBody)]);
        assert_eq!(body(&st, &cx, 0, true), b"login=foo&password=bar\r\n");
        assert_ne!(st.tx(0).events & HttpEvent::RequestBodyUnexpected.bit(), 0);
        // A pipelined request, or blank lines, are no such thing (a blank
        // line still goes to the body, as libhtp hands it on).
        let (mut st, mut cx) = (HttpState::default(), super::tests::cx());
        let two = b"GET /a HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        let got = feed(&mut st, &mut cx, &[(true, two)]);
        assert_eq!(got.iter().filter(|p| p.1 == RequestBody).count(), 2);
        assert_eq!(st.tx(0).events | st.tx(1).events, 0);
        assert_eq!(body(&st, &cx, 0, true), b"\r\n");
        // Bytes that come in a later delivery start the next message.
        let (mut st, mut cx) = (HttpState::default(), super::tests::cx());
        feed(
            &mut st,
            &mut cx,
            &[(true, b"GET /a HTTP/1.1\r\n\r\n"), (true, b"junk\r\n")],
        );
        assert_eq!(st.tx(0).events, 0);
    }

    #[test]
    fn after_a_gap_in_a_head_the_next_request_is_found() {
        let (mut st, mut cx) = (HttpState::default(), cx());
        feed(&mut st, &mut cx, &[(true, b"GET /a HTTP/1.1\r\nHost: x")]);
        st.gap(&mut cx, true, 100);
        let got = feed(
            &mut st,
            &mut cx,
            &[(true, b"tail of something\r\n\r\nGET /b HTTP/1.1\r\n\r\n")],
        );
        assert_eq!(got, [(1, RequestHeaders), (1, RequestBody)]);
        assert_eq!(cx.counters.resyncs, 1);
    }

    #[test]
    fn garbage_never_panics_and_memory_comes_back() {
        // A small deterministic fuzz: random bytes and HTTP-ish pieces.
        let pieces: [&[u8]; 8] = [
            b"GET / HTTP/1.1\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Content-Length: 5\r\n",
            b"Content-Encoding: gzip, deflate\r\n",
            b"\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"ffff\r\n",
            b"\x1f\x8b\x08\x00",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cx = cx();
        for _ in 0..300 {
            let mut st = HttpState::default();
            for _ in 0..40 {
                let r = next();
                let to_server = r & 1 == 0;
                let data: Vec<u8> = if r & 6 == 0 {
                    (0..(r >> 8) % 64)
                        .map(|i| (next() >> (i % 8)) as u8)
                        .collect()
                } else {
                    pieces[(r >> 3) as usize % pieces.len()].to_vec()
                };
                if r % 29 == 0 {
                    st.gap(&mut cx, to_server, (r >> 20) % 50);
                }
                cx.out.clear();
                st.parse(&mut cx, to_server, &data);
                st.reap(&mut cx);
            }
            cx.out.clear();
            st.close(&mut cx);
            st.reset(&mut cx);
            assert_eq!(cx.blocks.in_use(), 0);
            assert_eq!(cx.inflaters.len(), 4, "every decoder goes back");
        }
    }
}
