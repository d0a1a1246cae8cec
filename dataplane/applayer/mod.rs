//! The app layer: what the reassembled bytes of a TCP connection say.
//!
//! A connection's protocol is found by content, on each direction's first
//! bytes and on any port (`probe`); its parser is then fed each direction's
//! bytes in order, hears about gaps, and is closed with the flow. Parser
//! state lives in slots made at start-up, and variable-length data (heads,
//! bodies) in a block store, both sized from `--applayer-memcap`: a flow
//! that cannot get a slot is left to stream rules and counted, never
//! dropped for it. Parsers report the points their transactions reach;
//! the worker evaluates buffer rules and writes events at each.
//!
//! One folder per protocol, split as Suricata's `rust/src/<proto>/` is
//! (parser, state, detect buffers, logger). HTTP/1.x, TLS handshakes and
//! DNS (over TCP, and over UDP through `datagram`) parse today; TLS's
//! record follower (in reassembly) keeps ciphertext out of stream rules.

pub mod blocks;
pub mod buffer;
pub mod dns;
pub mod http;
pub mod json;
pub mod llm;
pub mod model;
pub mod tls;

use dns::{DnsCx, DnsState};
use http::detect::TxBuffers;
use http::state::HttpState;
use http::{HttpConfig, HttpCounters, HttpCx};
use tls::{TlsCx, TlsState};

pub use http::parser::Probe;

/// A file in a transaction: which body, how big, how it ended (what an
/// EVE `fileinfo` event says of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef {
    pub to_server: bool,
    pub size: u64,
    /// Whole (else the connection ended first: TRUNCATED).
    pub closed: bool,
    /// Bytes of it were never seen.
    pub gaps: bool,
    /// Its number among a multipart body's files (None: a whole body).
    pub part: Option<u8>,
}

/// The files of one transaction (`AppLayer::files`), without allocating.
#[derive(Debug, Clone, Copy, Default)]
pub struct Files {
    list: [Option<FileRef>; 2 + http::detect::MAX_PARTS],
    n: usize,
}

impl Files {
    fn push(&mut self, f: FileRef) {
        if let Some(slot) = self.list.get_mut(self.n) {
            *slot = Some(f);
            self.n += 1;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = FileRef> + '_ {
        self.list[..self.n].iter().flatten().copied()
    }
}

/// A connection's application protocol, as found by probing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub enum AppProto {
    /// Not known yet (or no data).
    #[default]
    Unknown,
    Http,
    Tls,
    Dns,
    /// Probed, and no parser took it.
    Failed,
}

impl AppProto {
    /// The name EVE's `app_proto` gives it (Suricata's: `http` for
    /// HTTP/1.x, `failed` when detection gave up).
    pub fn name(self) -> &'static str {
        match self {
            AppProto::Unknown => "unknown",
            AppProto::Http => "http",
            AppProto::Tls => "tls",
            AppProto::Dns => "dns",
            AppProto::Failed => "failed",
        }
    }

    /// A rule header's protocol keyword for an app-layer protocol.
    pub fn of_rule_proto(p: &str) -> Option<AppProto> {
        match p {
            "http" | "http1" => Some(AppProto::Http),
            "tls" | "ssl" => Some(AppProto::Tls),
            "dns" => Some(AppProto::Dns),
            _ => None,
        }
    }
}

/// Where a transaction stands: the points buffer rules are evaluated at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Point {
    RequestHeaders = 0,
    RequestBody = 1,
    ResponseHeaders = 2,
    ResponseBody = 3,
    /// Both messages done (or the connection closed): logged, let go.
    Complete = 4,
}

/// What a parser is asked to do with a connection. One implementation per
/// protocol; `Cx` is what its connections share in one worker (a block
/// store, decoders, counters, the points reached).
pub trait Parser {
    type Cx;
    /// Whether a direction's first bytes are this protocol.
    fn probe(to_server: bool, first: &[u8]) -> Probe;
    /// The next bytes of one direction, in order.
    fn parse(&mut self, cx: &mut Self::Cx, to_server: bool, data: &[u8]);
    /// `len` bytes of one direction will never come.
    fn gap(&mut self, cx: &mut Self::Cx, to_server: bool, len: u64);
    /// The connection ended.
    fn close(&mut self, cx: &mut Self::Cx);
    /// Lets go of what finished transactions hold.
    fn reap(&mut self, cx: &mut Self::Cx);
    /// Back to empty, for the slot's next connection.
    fn reset(&mut self, cx: &mut Self::Cx);
}

impl Parser for HttpState {
    type Cx = HttpCx;
    fn probe(to_server: bool, first: &[u8]) -> Probe {
        // Line ends before a request are tolerated, as libhtp does.
        let b = &first[first
            .iter()
            .position(|&c| c != b'\r' && c != b'\n')
            .unwrap_or(first.len())..];
        if b.is_empty() {
            return Probe::More;
        }
        if to_server {
            http::parser::looks_like_request(b)
        } else {
            http::parser::looks_like_response(b)
        }
    }
    fn parse(&mut self, cx: &mut HttpCx, to_server: bool, data: &[u8]) {
        HttpState::parse(self, cx, to_server, data)
    }
    fn gap(&mut self, cx: &mut HttpCx, to_server: bool, len: u64) {
        HttpState::gap(self, cx, to_server, len)
    }
    fn close(&mut self, cx: &mut HttpCx) {
        HttpState::close(self, cx)
    }
    fn reap(&mut self, cx: &mut HttpCx) {
        HttpState::reap(self, cx)
    }
    fn reset(&mut self, cx: &mut HttpCx) {
        HttpState::reset(self, cx)
    }
}

/// `--applayer-memcap` and the protocols' own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppConfig {
    pub enabled: bool,
    /// Bytes per worker for parser slots and the block store.
    pub memcap: usize,
    pub http: HttpConfig,
    /// JA3, JA3S and JA4 in EVE (`--tls-fingerprints`).
    pub tls_fingerprints: bool,
    /// TLS handshakes and DNS are parsed (else TLS is only recognised,
    /// for the record follower, and DNS left to packet rules): what the
    /// applayer bench turns off to price them.
    pub tls: bool,
    pub dns: bool,
}

/// Suricata's default app-layer HTTP memcap is unlimited; 64 MiB per
/// worker holds thousands of concurrent HTTP connections with bodies.
pub const MEMCAP: usize = 64 << 20;

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            enabled: true,
            memcap: MEMCAP,
            http: HttpConfig::default(),
            tls_fingerprints: true,
            tls: true,
            dns: true,
        }
    }
}

/// What the app layer saw in one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppCounters {
    /// Connections by protocol found (`AppProto` order).
    pub flows: [u64; 5],
    /// Connections whose parser found no free slot (left to stream rules).
    pub no_slot: u64,
    pub http: HttpCounters,
    pub dns: dns::DnsCounters,
    pub tls: tls::TlsCounters,
    /// Block store use at most, in bytes.
    pub store_peak: u64,
    pub store_bytes: u64,
    pub ai: AiCounters,
}

/// What the AI parsers found in one worker's HTTP transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AiCounters {
    /// LLM-API calls by endpoint (`llm::Endpoint` order).
    pub llm_calls: [u64; llm::Endpoint::ALL.len()],
    pub llm_streamed: u64,
    /// Responses whose JSON was not read whole (`json::JsonError` order).
    pub llm_errors: [u64; json::JsonError::ALL.len()],
    /// Model artifacts by format (`model::Format` order).
    pub artifacts: [u64; model::Format::ALL.len()],
    /// Artifacts that do not hold together (a pickle that could not be
    /// walked to its end, a safetensors header that lies).
    pub artifacts_malformed: u64,
    /// Artifacts whose pickles import outside the safe list and call.
    pub pickle_suspicious: u64,
}

impl AiCounters {
    pub fn add(&mut self, o: &AiCounters) {
        let pairs = [
            (&mut self.llm_calls[..], &o.llm_calls[..]),
            (&mut self.llm_errors[..], &o.llm_errors[..]),
            (&mut self.artifacts[..], &o.artifacts[..]),
        ];
        for (a, b) in pairs {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.llm_streamed += o.llm_streamed;
        self.artifacts_malformed += o.artifacts_malformed;
        self.pickle_suspicious += o.pickle_suspicious;
    }
}

impl AppCounters {
    pub fn add(&mut self, o: &AppCounters) {
        for (a, b) in self.flows.iter_mut().zip(o.flows) {
            *a += b;
        }
        self.no_slot += o.no_slot;
        self.http.add(&o.http);
        self.dns.add(&o.dns);
        self.tls.add(&o.tls);
        self.store_peak += o.store_peak;
        self.store_bytes += o.store_bytes;
        self.ai.add(&o.ai);
    }
}

const NONE: u32 = u32::MAX;

/// A flow's parser state: its protocol's pool and its place there. What
/// `feed`, `datagram` and `close` hand back when transactions reached
/// points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserSlot {
    pub proto: AppProto,
    pub idx: u32,
}

/// What the app layer knows of one flow (by flow-table slot).
#[derive(Debug, Clone, Copy)]
struct FlowApp {
    flow_id: u64,
    proto: AppProto,
    /// The parser slot, or NONE.
    state: u32,
    /// The stream offset each direction's next byte is expected at
    /// (to server, to client).
    next: [u64; 2],
    /// Each direction's probe said no.
    refused: [bool; 2],
}

impl Default for FlowApp {
    fn default() -> Self {
        FlowApp {
            flow_id: u64::MAX,
            proto: AppProto::Unknown,
            state: NONE,
            next: [0; 2],
            refused: [false; 2],
        }
    }
}

/// One worker's app layer.
#[derive(Debug)]
pub struct AppLayer {
    pub cfg: AppConfig,
    pub http_cx: HttpCx,
    http: Vec<HttpState>,
    free: Vec<u32>,
    pub dns_cx: DnsCx,
    dns: Vec<DnsState>,
    free_dns: Vec<u32>,
    pub tls_cx: TlsCx,
    tls: Vec<TlsState>,
    free_tls: Vec<u32>,
    flows: Vec<FlowApp>,
    counters: AppCounters,
    /// The buffers of the transaction being evaluated.
    pub bufs: TxBuffers,
    /// Room for a transaction's logged fields.
    pub log_buf: Vec<u8>,
    /// The DNS transaction loaded last.
    loaded_dns: u8,
    /// The TLS parser slot loaded last.
    loaded_tls: u32,
}

impl AppLayer {
    /// Everything allocated here: slots for `flows` flow-table slots, the
    /// parser slots and the block store out of the memcap.
    pub fn new(mut cfg: AppConfig, flows: usize) -> AppLayer {
        if cfg.http.ai {
            // The AI parsers read every body (the EVE `llm` and
            // `artifact` objects), not only those a rule reads.
            cfg.http.keep_bodies = [true, true];
        }
        let slot = std::mem::size_of::<HttpState>();
        // A quarter of the memcap for parser slots, the rest for data.
        let slots = (cfg.memcap / 4 / slot).clamp(1, flows.max(1));
        let store = cfg.memcap.saturating_sub(slots * slot);
        AppLayer {
            http_cx: HttpCx::new(cfg.http, store),
            http: (0..slots).map(|_| HttpState::default()).collect(),
            free: (0..slots as u32).rev().collect(),
            dns_cx: DnsCx::default(),
            dns: (0..slots).map(|_| DnsState::default()).collect(),
            free_dns: (0..slots as u32).rev().collect(),
            tls_cx: TlsCx {
                fingerprints: cfg.tls_fingerprints,
                ..TlsCx::default()
            },
            tls: (0..slots).map(|_| TlsState::default()).collect(),
            free_tls: (0..slots as u32).rev().collect(),
            flows: vec![FlowApp::default(); flows],
            counters: AppCounters::default(),
            bufs: TxBuffers::new(cfg.http.head_limit, cfg.http.body_limit).with_ai(cfg.http.ai),
            log_buf: Vec::with_capacity(16 * 1024),
            loaded_dns: 0,
            loaded_tls: 0,
            cfg,
        }
    }

    pub fn counters(&self) -> AppCounters {
        let mut c = self.counters;
        c.http = self.http_cx.counters;
        c.dns = self.dns_cx.counters;
        c.tls = self.tls_cx.counters;
        c.store_peak = (self.http_cx.blocks.peak * blocks::BLOCK) as u64;
        c.store_bytes = (self.http_cx.blocks.capacity() * blocks::BLOCK) as u64;
        c
    }

    /// The protocol of the flow in `slot` (Unknown for another flow).
    pub fn proto(&self, slot: u32, flow_id: u64) -> AppProto {
        match self.flows.get(slot as usize) {
            Some(f) if f.flow_id == flow_id => f.proto,
            _ => AppProto::Unknown,
        }
    }

    fn flow(&mut self, slot: u32, flow_id: u64) -> Option<&mut FlowApp> {
        let f = *self.flows.get(slot as usize)?;
        if f.flow_id != flow_id {
            // The slot's earlier flow ended without a close (not TCP …).
            self.free_state(f);
            self.flows[slot as usize] = FlowApp {
                flow_id,
                ..FlowApp::default()
            };
        }
        self.flows.get_mut(slot as usize)
    }

    /// A flow's parser state goes back to its pool.
    fn free_state(&mut self, f: FlowApp) {
        if f.state == NONE {
            return;
        }
        let st = f.state;
        match f.proto {
            AppProto::Dns => {
                self.dns[st as usize].reset();
                self.free_dns.push(st);
            }
            AppProto::Tls => {
                self.tls[st as usize].reset();
                self.free_tls.push(st);
            }
            _ => {
                self.http[st as usize].reset(&mut self.http_cx);
                self.free.push(st);
            }
        }
    }

    /// New bytes of one direction: `data` starts at stream offset `at`;
    /// `from_start` is the direction's bytes from offset 0 when they are
    /// all still at hand (for a probe that needed more); `port53`: either
    /// port is DNS's. Returns the parser slot whose transactions reached
    /// points (`points`), if any; the caller handles them, then calls
    /// `done`.
    #[allow(clippy::too_many_arguments)]
    pub fn feed(
        &mut self,
        slot: u32,
        flow_id: u64,
        to_server: bool,
        data: &[u8],
        at: u64,
        from_start: Option<&[u8]>,
        port53: bool,
    ) -> Option<ParserSlot> {
        if !self.cfg.enabled {
            return None;
        }
        self.http_cx.out.clear();
        self.dns_cx.clear();
        self.tls_cx.out.clear();
        let d = usize::from(!to_server);
        let f = *self.flow(slot, flow_id)?;
        let mut data = data;
        let mut at = at;
        if f.proto == AppProto::Unknown {
            let first = match from_start {
                Some(b) => b,
                None if at == 0 => data,
                None => {
                    // The start is gone: nothing to probe.
                    self.set_proto(slot, AppProto::Failed);
                    return None;
                }
            };
            let http = HttpState::probe(to_server, first);
            let tls = tls::probe(first);
            let dns = if self.cfg.dns {
                dns::probe(first, port53, true)
            } else {
                Probe::No
            };
            if tls == Probe::Yes && !self.cfg.tls {
                self.set_proto(slot, AppProto::Tls);
                return None;
            }
            match (http, tls, dns) {
                (Probe::Yes, _, _) | (_, Probe::Yes, _) | (_, _, Probe::Yes) => {
                    let p = match (http, tls) {
                        (Probe::Yes, _) => AppProto::Http,
                        (_, Probe::Yes) => AppProto::Tls,
                        _ => AppProto::Dns,
                    };
                    self.start(slot, p)?;
                    // Parse this direction from its start.
                    data = first;
                    at = 0;
                    // Both directions parse from their start (the other
                    // one's first bytes, if any came, with its next ones:
                    // they are still in its window, or else a gap then).
                    self.flows[slot as usize].next = [0, 0];
                }
                (Probe::More, _, _) | (_, Probe::More, _) | (_, _, Probe::More) => {
                    self.flows[slot as usize].next[d] = at + data.len() as u64;
                    return None;
                }
                _ => {
                    let fl = &mut self.flows[slot as usize];
                    fl.refused[d] = true;
                    fl.next[d] = at + data.len() as u64;
                    if fl.refused == [true, true] {
                        self.set_proto(slot, AppProto::Failed);
                    }
                    return None;
                }
            }
        }
        let fl = &mut self.flows[slot as usize];
        let proto = fl.proto;
        if !matches!(proto, AppProto::Http | AppProto::Dns | AppProto::Tls) || fl.state == NONE {
            return None;
        }
        let st = fl.state;
        let expect = fl.next[d];
        // Bytes before these not parsed yet but still at hand (delivered
        // before the protocol was known): parsed now, no gap.
        if let Some(all) = from_start.filter(|a| at > expect && a.len() as u64 >= at) {
            data = &all[expect as usize..];
            at = expect;
        }
        fl.next[d] = at + data.len() as u64;
        // Bytes before what is expected were parsed already.
        let skip = expect.saturating_sub(at).min(data.len() as u64) as usize;
        if proto == AppProto::Dns {
            let state = &mut self.dns[st as usize];
            if at > expect {
                state.gap(to_server);
            }
            state.parse(&mut self.dns_cx, to_server, &data[skip..]);
        } else if proto == AppProto::Tls {
            let state = &mut self.tls[st as usize];
            if at > expect {
                state.gap(to_server, at - expect);
            }
            state.parse(&mut self.tls_cx, to_server, &data[skip..]);
        } else {
            let state = &mut self.http[st as usize];
            if at > expect {
                state.gap(&mut self.http_cx, to_server, at - expect);
            }
            state.parse(&mut self.http_cx, to_server, &data[skip..]);
        }
        let ps = ParserSlot { proto, idx: st };
        (!self.points(ps).is_empty()).then_some(ps)
    }

    /// One UDP datagram's payload: DNS when its probe says so (its first
    /// datagram decides, in either direction). Returns the parser slot
    /// whose transactions reached points, as `feed` does.
    pub fn datagram(
        &mut self,
        slot: u32,
        flow_id: u64,
        to_server: bool,
        data: &[u8],
        port53: bool,
    ) -> Option<ParserSlot> {
        if !self.cfg.enabled || !self.cfg.dns || data.is_empty() {
            return None;
        }
        self.dns_cx.clear();
        let f = *self.flow(slot, flow_id)?;
        match f.proto {
            AppProto::Unknown => {
                if dns::probe(data, port53, false) != Probe::Yes {
                    self.set_proto(slot, AppProto::Failed);
                    return None;
                }
                self.start(slot, AppProto::Dns)?;
            }
            AppProto::Dns => {}
            _ => return None,
        }
        let st = self.flows[slot as usize].state;
        self.dns
            .get_mut(st as usize)?
            .datagram(&mut self.dns_cx, to_server, data);
        let ps = ParserSlot {
            proto: AppProto::Dns,
            idx: st,
        };
        (!self.dns_cx.out.is_empty()).then_some(ps)
    }

    fn set_proto(&mut self, slot: u32, p: AppProto) {
        let f = &mut self.flows[slot as usize];
        f.proto = p;
        self.counters.flows[p as usize] += 1;
    }

    /// The flow in `slot` is `p`'s: it takes a parser slot of that pool
    /// (None, counted, when there is none free).
    fn start(&mut self, slot: u32, p: AppProto) -> Option<()> {
        self.set_proto(slot, p);
        let free = match p {
            AppProto::Dns => &mut self.free_dns,
            AppProto::Tls => &mut self.free_tls,
            _ => &mut self.free,
        };
        let Some(st) = free.pop() else {
            self.counters.no_slot += 1;
            return None;
        };
        match p {
            AppProto::Dns => self.dns[st as usize].reset(),
            AppProto::Tls => self.tls[st as usize].reset(),
            _ => self.http[st as usize].reset(&mut self.http_cx),
        }
        self.flows[slot as usize].state = st;
        Some(())
    }

    /// The flow ended: its parser closes (its transactions reach their
    /// last points; the caller handles them, then calls `done` and
    /// `release`). Returns the parser slot if there are points.
    pub fn close(&mut self, slot: u32, flow_id: u64) -> Option<ParserSlot> {
        self.http_cx.out.clear();
        self.dns_cx.clear();
        self.tls_cx.out.clear();
        let f = self.flows.get(slot as usize)?;
        // A DNS transaction is complete when its message is: nothing
        // waits for the end.
        if f.flow_id != flow_id || f.state == NONE || f.proto == AppProto::Dns {
            return None;
        }
        let st = f.state;
        if f.proto == AppProto::Tls {
            self.tls[st as usize].close(&mut self.tls_cx);
            return (!self.tls_cx.out.is_empty()).then_some(ParserSlot {
                proto: AppProto::Tls,
                idx: st,
            });
        }
        self.http[st as usize].close(&mut self.http_cx);
        (!self.http_cx.out.is_empty()).then_some(ParserSlot {
            proto: AppProto::Http,
            idx: st,
        })
    }

    /// After the points of `feed`, `datagram` or `close` were handled:
    /// what finished transactions hold goes back.
    pub fn done(&mut self, st: ParserSlot) {
        if st.proto == AppProto::Http {
            if let Some(s) = self.http.get_mut(st.idx as usize) {
                s.reap(&mut self.http_cx);
            }
        }
        self.http_cx.out.clear();
        self.dns_cx.clear();
        self.tls_cx.out.clear();
    }

    /// The flow in `slot` is gone: its parser slot goes back.
    pub fn release(&mut self, slot: u32, flow_id: u64) -> AppProto {
        let Some(&f) = self.flows.get(slot as usize) else {
            return AppProto::Unknown;
        };
        if f.flow_id != flow_id {
            return AppProto::Unknown;
        }
        self.free_state(f);
        self.flows[slot as usize] = FlowApp::default();
        f.proto
    }

    /// Points reached by the last `feed`, `datagram` or `close` of `st`.
    pub fn points(&self, st: ParserSlot) -> &[(u8, Point)] {
        match st.proto {
            AppProto::Dns => &self.dns_cx.out,
            AppProto::Tls => &self.tls_cx.out,
            _ => &self.http_cx.out,
        }
    }

    /// Loads transaction `tx` of parser slot `st` into `bufs`, and gives
    /// the block store its buffers read from.
    pub fn load(&mut self, st: ParserSlot, tx: u8) -> (&mut TxBuffers, &blocks::Blocks) {
        match st.proto {
            AppProto::Dns => {
                self.dns_cx.load(tx, &mut self.bufs);
                self.loaded_dns = tx;
            }
            AppProto::Tls => {
                if let Some(s) = self.tls.get(st.idx as usize) {
                    s.load(&mut self.bufs);
                }
                self.loaded_tls = st.idx;
            }
            _ => {
                if let Some(s) = self.http.get(st.idx as usize) {
                    self.bufs.start(s.tx(tx));
                }
            }
        }
        (&mut self.bufs, &self.http_cx.blocks)
    }

    /// The transaction loaded last, with the block store.
    pub fn loaded(&mut self) -> (&mut TxBuffers, &blocks::Blocks) {
        (&mut self.bufs, &self.http_cx.blocks)
    }

    /// The files the transaction loaded last carried, as Suricata tracks
    /// HTTP files: each file part of a multipart request, else a POST's or
    /// PUT's body; then a response body with bytes.
    pub fn files(&mut self) -> Files {
        use http::state::flag;
        if self.bufs.proto() != AppProto::Http {
            return Files::default();
        }
        let t = *self.bufs.tx();
        let blocks = &self.http_cx.blocks;
        let mut out = Files::default();
        if self.bufs.multipart_request(blocks) {
            self.bufs.each_file(blocks, true, |v| {
                out.push(FileRef {
                    to_server: true,
                    size: v.data.len() as u64,
                    closed: v.closed,
                    gaps: t.has(flag::REQ_GAP),
                    part: v.part,
                });
                true
            });
        } else {
            if self.bufs.upload(blocks) && t.req_body_len > 0 {
                out.push(FileRef {
                    to_server: true,
                    size: t.req_size,
                    closed: !t.has(flag::REQ_CUT),
                    gaps: t.has(flag::REQ_GAP),
                    part: None,
                });
            }
        }
        if t.resp_body_len > 0 {
            out.push(FileRef {
                to_server: false,
                size: t.resp_size,
                closed: !t.has(flag::RESP_CUT),
                gaps: t.has(flag::RESP_GAP),
                part: None,
            });
        }
        out
    }

    /// Counts what the AI parsers make of the HTTP transaction loaded
    /// last (at its end): the LLM call it is, the model files it carried.
    pub fn count_ai(&mut self) {
        if !self.cfg.http.ai || self.bufs.proto() != AppProto::Http {
            return;
        }
        let c = &mut self.counters.ai;
        let blocks = &self.http_cx.blocks;
        if let Some(call) = self.bufs.llm_call(blocks) {
            c.llm_calls[call.endpoint as usize] += 1;
            c.llm_streamed += u64::from(call.req.stream || call.resp.streamed);
            if let Some(e) = call.resp.error {
                c.llm_errors[e as usize] += 1;
            }
        }
        for f in self.files().iter() {
            let blocks = &self.http_cx.blocks;
            if let Some(a) = self.bufs.artifact(blocks, f.to_server, f.part) {
                let c = &mut self.counters.ai;
                c.artifacts[a.format as usize] += 1;
                c.artifacts_malformed += u64::from(a.error.is_some());
                c.pickle_suspicious += u64::from(a.walk.as_ref().is_some_and(|w| w.suspicious));
            }
        }
    }

    /// The logged fields of the transaction loaded last with the name and
    /// hashes of its file `f`, packed.
    pub fn file_record(&mut self, f: FileRef) -> &[u8] {
        let (xff, text) = (self.cfg.http.xff, self.cfg.http.llm_text);
        let blocks = &self.http_cx.blocks;
        http::logger::pack(&mut self.bufs, blocks, xff, text, &mut self.log_buf);
        match f.part {
            None => {
                http::logger::pack_filename(&mut self.bufs, blocks, f.to_server, &mut self.log_buf)
            }
            Some(k) => {
                let (which, out) = (self.cfg.http.hashes, &mut self.log_buf);
                self.bufs.each_file(blocks, f.to_server, |v| {
                    if v.part != Some(k) {
                        return true;
                    }
                    // Hashes of a whole file only (as Suricata logs them).
                    let h = if v.closed {
                        http::state::FileHashes::of(which, v.data)
                    } else {
                        http::state::FileHashes::default()
                    };
                    http::logger::pack_file(v.name, &h, out);
                    false
                });
            }
        }
        let Some(a) = self.bufs.artifact(blocks, f.to_server, f.part) else {
            return &self.log_buf;
        };
        http::logger::pack_artifact(a, &mut self.log_buf);
        // A model file whole gets its sha256 though --file-hashes did not
        // ask (what a registry or an allow-list names it by).
        if f.closed && self.cfg.http.hashes & http::hash::SHA256 == 0 {
            let out = &mut self.log_buf;
            self.bufs.each_file(blocks, f.to_server, |v| {
                if v.part != f.part {
                    return true;
                }
                let h = http::state::FileHashes::of(http::hash::SHA256, v.data);
                http::logger::pack_hashes(&h, out);
                false
            });
        }
        &self.log_buf
    }

    /// The logged fields of the transaction loaded last (EVE's `http`
    /// object), packed.
    pub fn log_record(&mut self) -> &[u8] {
        if self.bufs.proto() == AppProto::Dns {
            // The message as it came, after its direction: the EVE writer
            // makes the `dns` object of it (`dns::logger`).
            let to_server = self.dns_cx.to_server(self.loaded_dns);
            self.log_buf.clear();
            self.log_buf.push(u8::from(to_server));
            self.log_buf
                .extend_from_slice(self.dns_cx.raw(self.loaded_dns));
            return &self.log_buf;
        }
        if self.bufs.proto() == AppProto::Tls {
            if let Some(s) = self.tls.get(self.loaded_tls as usize) {
                s.pack(self.tls_cx.fingerprints, &mut self.log_buf);
            }
            return &self.log_buf;
        }
        let (xff, text) = (self.cfg.http.xff, self.cfg.http.llm_text);
        let blocks = &self.http_cx.blocks;
        http::logger::pack(&mut self.bufs, blocks, xff, text, &mut self.log_buf);
        &self.log_buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(memcap: usize) -> AppLayer {
        AppLayer::new(
            AppConfig {
                memcap,
                http: HttpConfig {
                    decoders: 2,
                    ..HttpConfig::default()
                },
                ..AppConfig::default()
            },
            64,
        )
    }

    #[test]
    fn protocols_are_found_by_content_on_either_direction() {
        let mut a = layer(1 << 20);
        // A request split before its method is complete: probed again on
        // the whole window.
        assert_eq!(a.feed(0, 7, true, b"PO", 0, Some(b"PO"), false), None);
        assert_eq!(a.proto(0, 7), AppProto::Unknown);
        let all = b"POST / HTTP/1.1\r\n\r\n";
        assert!(a.feed(0, 7, true, &all[2..], 2, Some(all), false).is_some());
        assert_eq!(a.proto(0, 7), AppProto::Http);
        // A response seen first (a capture started mid-connection).
        a.feed(1, 8, false, b"HTTP/1.1 200 OK\r\n\r\n", 0, None, false);
        assert_eq!(a.proto(1, 8), AppProto::Http);
        // TLS, and neither.
        a.feed(2, 9, true, &[0x16, 3, 1, 0, 0x40, 1], 0, None, false);
        assert_eq!(a.proto(2, 9), AppProto::Tls);
        a.feed(3, 10, true, b"SSH-2.0-x\r\n", 0, None, false);
        a.feed(3, 10, false, b"SSH-2.0-y\r\n", 0, None, false);
        assert_eq!(a.proto(3, 10), AppProto::Failed);
        let c = a.counters();
        assert_eq!(c.flows[AppProto::Http as usize], 2);
        assert_eq!(c.flows[AppProto::Tls as usize], 1);
        assert_eq!(c.flows[AppProto::Failed as usize], 1);
        // A slot's next flow starts afresh.
        assert_eq!(a.release(0, 7), AppProto::Http);
        assert_eq!(a.proto(0, 11), AppProto::Unknown);
    }

    #[test]
    fn a_flow_without_a_parser_slot_is_counted_and_left_alone() {
        // Room for a few connections' state.
        let mut a = layer(16 * std::mem::size_of::<HttpState>());
        let req = b"GET / HTTP/1.1\r\n\r\n";
        let slots = a.http.len();
        for f in 0..slots as u32 + 1 {
            if let Some(st) = a.feed(f, u64::from(f), true, req, 0, None, false) {
                a.done(st);
            }
        }
        assert_eq!(a.counters().no_slot, 1);
        // Its slot back, the next flow gets it.
        a.release(0, 0);
        a.feed(0, 99, true, req, 0, None, false);
        assert_eq!(a.counters().no_slot, 1);
    }

    #[test]
    fn off_means_nothing_is_parsed() {
        let mut a = AppLayer::new(
            AppConfig {
                enabled: false,
                ..AppConfig::default()
            },
            4,
        );
        assert_eq!(
            a.feed(0, 1, true, b"GET / HTTP/1.1\r\n\r\n", 0, None, false),
            None
        );
        assert_eq!(a.proto(0, 1), AppProto::Unknown);
    }
}
