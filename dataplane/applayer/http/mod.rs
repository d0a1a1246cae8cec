//! HTTP/1.x, split as Suricata's `rust/src/<proto>/` is: `parser` reads
//! heads and URIs, `state` follows a connection's two directions and its
//! transactions, `decompress` undoes content codings, `detect` builds the
//! `http.*` buffers rules inspect, `logger` writes the EVE `http` object.

pub mod decompress;
pub mod detect;
pub mod logger;
pub mod multipart;
pub mod parser;
pub mod state;
pub mod xff;

use super::blocks::Blocks;
use super::Point;
use decompress::Inflater;
use parser::HeadIndex;

/// Suricata's default request-body-limit and response-body-limit.
pub const BODY_LIMIT: usize = 100 * 1024;
/// Longest head (start line and header fields) a direction may send;
/// longer, the direction is left to stream rules (libhtp's field limit
/// is 18,000 bytes per line).
pub const HEAD_LIMIT: usize = 64 * 1024;
/// A head line longer than this raises `request_field_too_long` (or the
/// response's) and ends the direction's parsing: libhtp's field limit as
/// Suricata configures it.
pub const FIELD_LIMIT: u32 = 18_000;
/// Decoded bytes per coded byte past which a body is a bomb.
pub const RATIO_CAP: u32 = 512;

/// HTTP's limits, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Body bytes kept (after decoding) per direction per transaction.
    pub body_limit: usize,
    pub head_limit: usize,
    pub ratio_cap: u32,
    /// Decoders a worker keeps for content codings.
    pub decoders: usize,
    /// Keep (and decode) request and response bodies: only when a loaded
    /// rule reads them; otherwise they are counted and skipped.
    pub keep_bodies: [bool; 2],
    /// Hashes of files to compute (`hash::MD5` | `SHA1` | `SHA256`): asked
    /// by `--file-hashes` or by a loaded `filemd5`-like rule.
    pub hashes: u8,
    /// The header naming the client behind a proxy, for EVE (`--xff`).
    pub xff: Option<xff::Xff>,
    /// LLM-API JSON and model files are read in bodies (`--ai-inspect`):
    /// bodies are then kept whether or not a rule reads them, for the
    /// EVE `llm` and `artifact` objects.
    pub ai: bool,
    /// Prompt and completion text goes into EVE (`--eve-llm-text`).
    pub llm_text: bool,
}

/// Which file hashes.
pub mod hash {
    pub const MD5: u8 = 1;
    pub const SHA1: u8 = 2;
    pub const SHA256: u8 = 4;
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit: BODY_LIMIT,
            head_limit: HEAD_LIMIT,
            ratio_cap: RATIO_CAP,
            decoders: 64,
            keep_bodies: [true, true],
            hashes: 0,
            xff: None,
            ai: true,
            llm_text: false,
        }
    }
}

/// What a parser found odd, counted by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAnomaly {
    InvalidRequestLine,
    InvalidResponseLine,
    InvalidStatus,
    HeaderWithoutColon,
    InvalidHeaderName,
    InvalidFolding,
    TooManyHeaders,
    HeadTooLong,
    InvalidContentLength,
    InvalidChunkSize,
    ChunkWithoutCrlf,
    UnknownCoding,
    TooManyCodings,
    CorruptCoding,
    ResponseWithoutRequest,
    TooManyTransactions,
    GapInHead,
    BodyCutShort,
}

impl HttpAnomaly {
    pub const ALL: [HttpAnomaly; 18] = [
        HttpAnomaly::InvalidRequestLine,
        HttpAnomaly::InvalidResponseLine,
        HttpAnomaly::InvalidStatus,
        HttpAnomaly::HeaderWithoutColon,
        HttpAnomaly::InvalidHeaderName,
        HttpAnomaly::InvalidFolding,
        HttpAnomaly::TooManyHeaders,
        HttpAnomaly::HeadTooLong,
        HttpAnomaly::InvalidContentLength,
        HttpAnomaly::InvalidChunkSize,
        HttpAnomaly::ChunkWithoutCrlf,
        HttpAnomaly::UnknownCoding,
        HttpAnomaly::TooManyCodings,
        HttpAnomaly::CorruptCoding,
        HttpAnomaly::ResponseWithoutRequest,
        HttpAnomaly::TooManyTransactions,
        HttpAnomaly::GapInHead,
        HttpAnomaly::BodyCutShort,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HttpAnomaly::InvalidRequestLine => "invalid_request_line",
            HttpAnomaly::InvalidResponseLine => "invalid_response_line",
            HttpAnomaly::InvalidStatus => "invalid_status",
            HttpAnomaly::HeaderWithoutColon => "header_without_colon",
            HttpAnomaly::InvalidHeaderName => "invalid_header_name",
            HttpAnomaly::InvalidFolding => "invalid_folding",
            HttpAnomaly::TooManyHeaders => "too_many_headers",
            HttpAnomaly::HeadTooLong => "head_too_long",
            HttpAnomaly::InvalidContentLength => "invalid_content_length",
            HttpAnomaly::InvalidChunkSize => "invalid_chunk_size",
            HttpAnomaly::ChunkWithoutCrlf => "chunk_without_crlf",
            HttpAnomaly::UnknownCoding => "unknown_content_coding",
            HttpAnomaly::TooManyCodings => "too_many_content_codings",
            HttpAnomaly::CorruptCoding => "corrupt_content_coding",
            HttpAnomaly::ResponseWithoutRequest => "response_without_request",
            HttpAnomaly::TooManyTransactions => "too_many_transactions",
            HttpAnomaly::GapInHead => "gap_in_head",
            HttpAnomaly::BodyCutShort => "body_cut_short",
        }
    }
}

/// Events a transaction carries, by Suricata's names: what
/// `app-layer-event:http.NAME` tests and EVE's `applayer` anomalies name.
/// Only the ones this parser raises the way libhtp does are here; a rule
/// naming another is skipped for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpEvent {
    RequestLineMissingProtocol,
    RequestChunkExtension,
    DuplicateContentLengthInRequest,
    RequestAuthUnrecognized,
    RequestHeaderHostInvalid,
    TooManyEncodingLayers,
    /// A request's Transfer-Encoding that does not name chunked (a
    /// request-smuggling tell: the body's end is then each side's guess).
    InvalidTransferEncodingInRequest,
    /// A head line longer than libhtp's field limit: the direction's
    /// parsing stops there, as libhtp's does.
    RequestFieldTooLong,
    ResponseFieldTooLong,
    /// Lines after a request that start with no method, taken as more of
    /// its body (a POST without Content-Length, as libhtp reads it).
    RequestBodyUnexpected,
}

impl HttpEvent {
    pub const ALL: [HttpEvent; 10] = [
        HttpEvent::RequestLineMissingProtocol,
        HttpEvent::RequestChunkExtension,
        HttpEvent::DuplicateContentLengthInRequest,
        HttpEvent::RequestAuthUnrecognized,
        HttpEvent::RequestHeaderHostInvalid,
        HttpEvent::TooManyEncodingLayers,
        HttpEvent::InvalidTransferEncodingInRequest,
        HttpEvent::RequestFieldTooLong,
        HttpEvent::ResponseFieldTooLong,
        HttpEvent::RequestBodyUnexpected,
    ];

    /// The rule keyword's name (`app-layer-event:http.NAME`).
    pub fn name(self) -> &'static str {
        match self {
            HttpEvent::RequestLineMissingProtocol => "request_line_missing_protocol",
            HttpEvent::RequestChunkExtension => "request_chunk_extension",
            HttpEvent::DuplicateContentLengthInRequest => {
                "duplicate_content_length_field_in_request"
            }
            HttpEvent::RequestAuthUnrecognized => "request_auth_unrecognized",
            HttpEvent::RequestHeaderHostInvalid => "request_header_host_invalid",
            HttpEvent::TooManyEncodingLayers => "too_many_encoding_layers",
            HttpEvent::InvalidTransferEncodingInRequest => {
                "invalid_transfer_encoding_value_in_request"
            }
            HttpEvent::RequestFieldTooLong => "request_field_too_long",
            HttpEvent::ResponseFieldTooLong => "response_field_too_long",
            HttpEvent::RequestBodyUnexpected => "request_body_unexpected",
        }
    }

    /// EVE's name (Suricata writes them in capitals).
    pub fn eve_name(self) -> &'static str {
        match self {
            HttpEvent::RequestLineMissingProtocol => "REQUEST_LINE_MISSING_PROTOCOL",
            HttpEvent::RequestChunkExtension => "REQUEST_CHUNK_EXTENSION",
            HttpEvent::DuplicateContentLengthInRequest => {
                "DUPLICATE_CONTENT_LENGTH_FIELD_IN_REQUEST"
            }
            HttpEvent::RequestAuthUnrecognized => "REQUEST_AUTH_UNRECOGNIZED",
            HttpEvent::RequestHeaderHostInvalid => "REQUEST_HEADER_HOST_INVALID",
            HttpEvent::TooManyEncodingLayers => "TOO_MANY_ENCODING_LAYERS",
            HttpEvent::InvalidTransferEncodingInRequest => {
                "INVALID_TRANSFER_ENCODING_VALUE_IN_REQUEST"
            }
            HttpEvent::RequestFieldTooLong => "REQUEST_FIELD_TOO_LONG",
            HttpEvent::ResponseFieldTooLong => "RESPONSE_FIELD_TOO_LONG",
            HttpEvent::RequestBodyUnexpected => "REQUEST_BODY_UNEXPECTED",
        }
    }

    /// The first point of its transaction at which the event is known.
    pub fn point(self) -> crate::applayer::Point {
        use crate::applayer::Point;
        match self {
            HttpEvent::RequestChunkExtension | HttpEvent::RequestBodyUnexpected => {
                Point::RequestBody
            }
            // Raised by either side's head.
            HttpEvent::TooManyEncodingLayers | HttpEvent::ResponseFieldTooLong => {
                Point::ResponseHeaders
            }
            _ => Point::RequestHeaders,
        }
    }

    pub fn of_name(n: &str) -> Option<HttpEvent> {
        HttpEvent::ALL.into_iter().find(|e| e.name() == n)
    }

    pub fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// HTTP's counters in one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpCounters {
    pub txs: u64,
    pub requests: u64,
    pub responses: u64,
    pub anomalies: [u64; HttpAnomaly::ALL.len()],
    pub bytes_decompressed: u64,
    /// Bodies cut at `--http-body-limit`.
    pub body_limit: u64,
    /// Bodies whose decoding stopped at the ratio cap.
    pub ratio_cap: u64,
    /// Bodies left coded: every decoder was busy.
    pub decoders_busy: u64,
    /// Heads or bodies cut short: the block store was full.
    pub memcap: u64,
    pub gaps: u64,
    pub resyncs: u64,
    pub tunnels: u64,
}

impl HttpCounters {
    pub fn note(&mut self, a: HttpAnomaly) {
        self.anomalies[a as usize] += 1;
    }

    /// Counts the anomalies of a head (`bits`: one per `HttpAnomaly`).
    pub fn anomalies_from(&mut self, bits: u32) {
        for a in HttpAnomaly::ALL {
            if bits & (1 << a as u32) != 0 {
                self.note(a);
            }
        }
    }

    pub fn add(&mut self, o: &HttpCounters) {
        self.txs += o.txs;
        self.requests += o.requests;
        self.responses += o.responses;
        for (a, b) in self.anomalies.iter_mut().zip(o.anomalies) {
            *a += b;
        }
        self.bytes_decompressed += o.bytes_decompressed;
        self.body_limit += o.body_limit;
        self.ratio_cap += o.ratio_cap;
        self.decoders_busy += o.decoders_busy;
        self.memcap += o.memcap;
        self.gaps += o.gaps;
        self.resyncs += o.resyncs;
        self.tunnels += o.tunnels;
    }

    pub fn errors(&self) -> u64 {
        self.anomalies.iter().sum()
    }
}

/// What HTTP parsing needs besides one connection's state: a worker's
/// block store, decoders, working buffers (all made at start-up) and
/// counters; `out` collects the points transactions reach.
#[derive(Debug)]
pub struct HttpCx {
    pub cfg: HttpConfig,
    pub blocks: Blocks,
    pub inflaters: Vec<Box<Inflater>>,
    pub head_buf: Vec<u8>,
    pub value_buf: Vec<u8>,
    pub index: HeadIndex,
    /// Output room for two decoders in a row.
    pub room: Vec<u8>,
    pub counters: HttpCounters,
    /// (transaction slot, point) as they are reached.
    pub out: Vec<(u8, Point)>,
}

impl HttpCx {
    pub fn new(cfg: HttpConfig, store_bytes: usize) -> HttpCx {
        HttpCx {
            cfg,
            blocks: Blocks::new(store_bytes),
            inflaters: (0..cfg.decoders)
                .map(|_| Box::new(Inflater::new()))
                .collect(),
            head_buf: Vec::with_capacity(cfg.head_limit),
            value_buf: Vec::with_capacity(4096),
            index: HeadIndex::with_capacity(cfg.head_limit),
            room: vec![0; 16 * 1024],
            counters: HttpCounters::default(),
            // Every point of every transaction in flight, and more.
            out: Vec::with_capacity(8 * state::MAX_TX),
        }
    }
}
