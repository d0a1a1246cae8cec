//! DNS over UDP and TCP, as Suricata 8 models it: every message is a
//! transaction of its own (a request, or a response, in the direction it
//! came), complete as soon as it is parsed. So a flow keeps no message:
//! a delivery's messages are parsed into the worker's `DnsCx`, their
//! transactions reach their points at once, and the worker handles them
//! before the next delivery. Over TCP each direction is framed by its
//! two-byte lengths (`parser::TcpFramer`); over UDP a datagram is one
//! message.

pub mod logger;
pub mod parser;

use super::buffer::{Buffer, Kind};
use super::http::detect::TxBuffers;
use super::{AppProto, Point, Probe};
use parser::{DnsError, Message, TcpFramer};

/// Messages handled per delivery at most (a TCP segment of tiny ones);
/// more are counted (`skipped`), not inspected.
pub const MSGS_PER_FEED: usize = 64;

/// Events a DNS transaction can carry (`app-layer-event:dns.NAME`),
/// Suricata's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsEvent {
    MalformedData,
    NotARequest,
    NotAResponse,
    ZFlagSet,
    InfiniteLoop,
    NameTooLong,
}

impl DnsEvent {
    pub const ALL: [DnsEvent; 6] = [
        DnsEvent::MalformedData,
        DnsEvent::NotARequest,
        DnsEvent::NotAResponse,
        DnsEvent::ZFlagSet,
        DnsEvent::InfiniteLoop,
        DnsEvent::NameTooLong,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DnsEvent::MalformedData => "malformed_data",
            DnsEvent::NotARequest => "not_a_request",
            DnsEvent::NotAResponse => "not_a_response",
            DnsEvent::ZFlagSet => "z_flag_set",
            DnsEvent::InfiniteLoop => "infinite_loop",
            DnsEvent::NameTooLong => "name_too_long",
        }
    }

    pub fn of_name(n: &str) -> Option<DnsEvent> {
        DnsEvent::ALL.into_iter().find(|e| e.name() == n)
    }

    pub fn bit(self) -> u32 {
        1 << self as u32
    }

    fn of_error(e: DnsError) -> DnsEvent {
        match e {
            DnsError::PointerLoop => DnsEvent::InfiniteLoop,
            DnsError::NameTooLong => DnsEvent::NameTooLong,
            DnsError::Truncated | DnsError::BadLabel => DnsEvent::MalformedData,
        }
    }
}

/// What DNS parsing saw in one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsCounters {
    pub requests: u64,
    pub responses: u64,
    /// Messages not parsed, by reason (`DnsError` order).
    pub errors: [u64; 4],
    /// Messages past `MSGS_PER_FEED` in one delivery.
    pub skipped: u64,
}

impl DnsCounters {
    pub fn add(&mut self, o: &DnsCounters) {
        self.requests += o.requests;
        self.responses += o.responses;
        for (a, b) in self.errors.iter_mut().zip(o.errors) {
            *a += b;
        }
        self.skipped += o.skipped;
    }
}

/// One message of the delivery being handled: a transaction.
#[derive(Debug, Clone, Copy)]
struct MsgTx {
    id: u64,
    to_server: bool,
    /// Came over TCP (after its two-byte length).
    tcp: bool,
    start: u32,
    end: u32,
    events: u32,
}

/// What one worker's DNS flows share: the messages of the delivery being
/// handled, the points their transactions reached, a parse buffer and
/// the counters.
#[derive(Debug)]
pub struct DnsCx {
    pub out: Vec<(u8, Point)>,
    txs: Vec<MsgTx>,
    bytes: Vec<u8>,
    msg: Message,
    pub counters: DnsCounters,
}

impl Default for DnsCx {
    fn default() -> Self {
        DnsCx {
            out: Vec::with_capacity(2 * MSGS_PER_FEED),
            txs: Vec::with_capacity(MSGS_PER_FEED),
            bytes: Vec::with_capacity(64 * 1024),
            msg: Message::with_capacity(4096),
            counters: DnsCounters::default(),
        }
    }
}

impl DnsCx {
    /// The delivery's transactions were handled: they go.
    pub fn clear(&mut self) {
        self.out.clear();
        self.txs.clear();
        self.bytes.clear();
    }

    /// The message of transaction `i` as it came (what its EVE record is
    /// made from).
    pub fn raw(&self, i: u8) -> &[u8] {
        match self.txs.get(usize::from(i)) {
            Some(t) => &self.bytes[t.start as usize..t.end as usize],
            None => &[],
        }
    }

    /// Whether transaction `i` is a message toward the server.
    pub fn to_server(&self, i: u8) -> bool {
        self.txs.get(usize::from(i)).is_some_and(|t| t.to_server)
    }

    /// Puts transaction `i`'s buffers in `bufs`.
    pub fn load(&mut self, i: u8, bufs: &mut TxBuffers) {
        let Some(&t) = self.txs.get(usize::from(i)) else {
            bufs.start_direct(AppProto::Dns, u64::MAX, 0);
            return;
        };
        bufs.start_direct(AppProto::Dns, t.id, t.events);
        let raw = &self.bytes[t.start as usize..t.end as usize];
        let side = Some(t.to_server);
        let b = |k: Kind| Buffer::new(k, side);
        // A rule's payload content: the message as it came on the wire
        // (over TCP, after its length).
        let msg = b(Kind::Message);
        if t.tcp {
            bufs.put(msg, &(raw.len() as u16).to_be_bytes());
            bufs.extend(msg, raw);
        } else {
            bufs.put(msg, raw);
        }
        if let Some(h) = raw.get(2..4) {
            let flags = u16::from_be_bytes([h[0], h[1]]);
            bufs.put_number(b(Kind::DnsOpcode), u64::from((flags >> 11) & 0x0f));
            bufs.put_number(b(Kind::DnsRcode), u64::from(flags & 0x0f));
        }
        if self.msg.parse(raw).is_err() {
            return;
        }
        let m = &self.msg;
        for q in &m.questions {
            let name = m.name(q.name);
            if t.to_server {
                bufs.put_instance(Buffer::new(Kind::DnsQuery, side), name);
            }
            bufs.put_instance(b(Kind::DnsQueriesRrname), name);
            bufs.put_number(b(Kind::DnsRrtype), u64::from(q.rrtype));
        }
        for a in &m.answers {
            bufs.put_instance(b(Kind::DnsAnswersRrname), m.name(a.name));
        }
    }
}

/// One flow's DNS state: each direction's TCP framing and the next
/// transaction's number.
#[derive(Debug, Default)]
pub struct DnsState {
    framers: [TcpFramer; 2],
    next_tx: u64,
}

impl DnsState {
    /// Stream bytes of one direction (DNS over TCP).
    pub fn parse(&mut self, cx: &mut DnsCx, to_server: bool, data: &[u8]) {
        let next = &mut self.next_tx;
        self.framers[usize::from(!to_server)].feed(data, |m| message(cx, next, to_server, true, m));
    }

    /// One datagram's payload (DNS over UDP).
    pub fn datagram(&mut self, cx: &mut DnsCx, to_server: bool, data: &[u8]) {
        message(cx, &mut self.next_tx, to_server, false, data);
    }

    /// Bytes of one direction were lost: its partial message goes.
    pub fn gap(&mut self, to_server: bool) {
        self.framers[usize::from(!to_server)].gap();
    }

    pub fn reset(&mut self) {
        for f in &mut self.framers {
            f.gap();
        }
        self.next_tx = 0;
    }
}

/// A whole message: a transaction, at its direction's point and complete.
fn message(cx: &mut DnsCx, next: &mut u64, to_server: bool, tcp: bool, m: &[u8]) {
    if cx.txs.len() >= MSGS_PER_FEED {
        cx.counters.skipped += 1;
        return;
    }
    let mut events = 0;
    if let Err(e) = cx.msg.parse(m) {
        cx.counters.errors[e as usize] += 1;
        events |= DnsEvent::of_error(e).bit();
    }
    let Some(h) = m.get(2..4) else {
        // Not even a header: nothing to match or log.
        return;
    };
    let flags = u16::from_be_bytes([h[0], h[1]]);
    let response = flags & 0x8000 != 0;
    if to_server && response {
        events |= DnsEvent::NotARequest.bit();
    }
    if !to_server && !response {
        events |= DnsEvent::NotAResponse.bit();
    }
    if flags & 0x0040 != 0 {
        events |= DnsEvent::ZFlagSet.bit();
    }
    if response {
        cx.counters.responses += 1;
    } else {
        cx.counters.requests += 1;
    }
    let start = cx.bytes.len() as u32;
    cx.bytes.extend_from_slice(m);
    let i = cx.txs.len() as u8;
    cx.txs.push(MsgTx {
        id: *next,
        to_server,
        tcp,
        start,
        end: cx.bytes.len() as u32,
        events,
    });
    *next += 1;
    let point = if to_server {
        Point::RequestHeaders
    } else {
        Point::ResponseHeaders
    };
    cx.out.push((i, point));
    cx.out.push((i, Point::Complete));
}

/// Whether a flow's first bytes of a direction are DNS: on port 53 a
/// plausible header; elsewhere only a whole query that parses, with one
/// question and nothing after it. `tcp`: the bytes are a stream (each
/// message after its length).
pub fn probe(first: &[u8], port53: bool, tcp: bool) -> Probe {
    let m = if tcp {
        let Some(len) = first.get(..2) else {
            return Probe::More;
        };
        let n = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if n < 12 {
            return Probe::No;
        }
        match first.get(2..2 + n) {
            Some(m) => m,
            // A message split over segments: on port 53 its header will
            // do; elsewhere a query comes whole in its first segment.
            None if port53 && first.len() >= 14 => &first[2..],
            None if port53 => return Probe::More,
            None => return Probe::No,
        }
    } else {
        first
    };
    let Some(h) = m.get(..12) else {
        return if tcp { Probe::More } else { Probe::No };
    };
    let be16 = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let flags = be16(2);
    let opcode = (flags >> 11) & 0x0f;
    let (qd, an, ns, ar) = (be16(4), be16(6), be16(8), be16(10));
    // Opcodes 0–6 are assigned (3 never); a message names few records.
    let plausible = opcode <= 6 && opcode != 3 && qd <= 16 && an <= 512 && ns <= 512 && ar <= 512;
    if !plausible {
        return Probe::No;
    }
    if port53 {
        return Probe::Yes;
    }
    let query = flags & 0x8000 == 0 && qd == 1 && an == 0 && ns == 0 && ar <= 1;
    if query && Message::with_capacity(256).parse_exact(m) {
        Probe::Yes
    } else {
        Probe::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message for `name` (type A) with `flags`, id 0x1234.
    pub(crate) fn msg(name: &str, flags: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34];
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    }

    fn tcp(msgs: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in msgs {
            out.extend_from_slice(&(m.len() as u16).to_be_bytes());
            out.extend_from_slice(m);
        }
        out
    }

    fn queries(cx: &mut DnsCx, i: u8) -> Vec<Vec<u8>> {
        let mut bufs = TxBuffers::new(1024, 1024);
        cx.load(i, &mut bufs);
        let mut names = Vec::new();
        let blocks = crate::applayer::blocks::Blocks::new(0);
        bufs.each_instance(&blocks, Buffer::new(Kind::DnsQuery, Some(true)), |n| {
            names.push(n.to_vec());
            true
        });
        names
    }

    #[test]
    fn two_messages_in_one_segment_are_two_transactions() {
        let (a, b) = (msg("a.example.com", 0x0100), msg("b.example.net", 0x0100));
        let mut cx = DnsCx::default();
        let mut st = DnsState::default();
        st.parse(&mut cx, true, &tcp(&[&a, &b]));
        assert_eq!(
            cx.out,
            vec![
                (0, Point::RequestHeaders),
                (0, Point::Complete),
                (1, Point::RequestHeaders),
                (1, Point::Complete)
            ]
        );
        assert_eq!(queries(&mut cx, 0), vec![b"a.example.com".to_vec()]);
        assert_eq!(queries(&mut cx, 1), vec![b"b.example.net".to_vec()]);
        cx.clear();
        // A message split over two segments is one transaction, the third.
        let c = tcp(&[&msg("c.example.org", 0x0100)]);
        st.parse(&mut cx, true, &c[..7]);
        assert!(cx.out.is_empty());
        st.parse(&mut cx, true, &c[7..]);
        let mut bufs = TxBuffers::new(1024, 1024);
        cx.load(0, &mut bufs);
        assert_eq!(bufs.tx().id, 2);
        assert_eq!(cx.counters.requests, 3);
    }

    #[test]
    fn a_pointer_loop_is_counted_and_carries_its_event() {
        let mut m = msg("x.example.com", 0x0100);
        // The question's name is a pointer to itself.
        m.truncate(12);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let mut cx = DnsCx::default();
        DnsState::default().datagram(&mut cx, true, &m);
        assert_eq!(cx.counters.errors[DnsError::PointerLoop as usize], 1);
        let mut bufs = TxBuffers::new(1024, 1024);
        cx.load(0, &mut bufs);
        assert_eq!(bufs.tx().events, DnsEvent::InfiniteLoop.bit());
    }

    #[test]
    fn directions_and_flags_raise_suricatas_events() {
        let mut cx = DnsCx::default();
        let mut st = DnsState::default();
        // A response toward the server, a query with the Z bit.
        st.datagram(&mut cx, true, &msg("a.b", 0x8180));
        st.datagram(&mut cx, true, &msg("a.b", 0x0140));
        let mut bufs = TxBuffers::new(1024, 1024);
        cx.load(0, &mut bufs);
        assert_eq!(bufs.tx().events, DnsEvent::NotARequest.bit());
        cx.load(1, &mut bufs);
        assert_eq!(bufs.tx().events, DnsEvent::ZFlagSet.bit());
    }

    #[test]
    fn dns_is_found_on_port_53_or_by_a_whole_query() {
        let q = msg("api.openai.com", 0x0100);
        assert_eq!(probe(&q, true, false), Probe::Yes);
        assert_eq!(probe(&q, false, false), Probe::Yes);
        assert_eq!(probe(&q[..20], false, false), Probe::No);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n\r\n", false, false), Probe::No);
        let t = tcp(&[&q]);
        assert_eq!(probe(&t, false, true), Probe::Yes);
        assert_eq!(probe(&t[..1], false, true), Probe::More);
        assert_eq!(probe(&t[..10], true, true), Probe::More);
        assert_eq!(probe(&t[..10], false, true), Probe::No);
        assert_eq!(probe(b"SSH-2.0-x\r\n", false, true), Probe::No);
        assert_eq!(probe(&t[..20], true, true), Probe::Yes);
    }
}
