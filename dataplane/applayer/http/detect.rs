//! The `http.*` buffers rules inspect, built from a transaction on demand
//! and kept for the rest of its evaluation: each is made at most once per
//! point, in working buffers the worker made at start-up.

use super::multipart;
use super::parser::{normalize_uri, HeadIndex, Span};
use super::state::{flag, Tx};
use crate::applayer::blocks::Blocks;
use crate::applayer::Point;

/// What a buffer is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Uri,
    UriRaw,
    Method,
    RequestLine,
    Protocol,
    Host,
    HostRaw,
    UserAgent,
    Cookie,
    Header,
    HeaderRaw,
    HeaderNames,
    ContentType,
    ContentLen,
    Referer,
    Accept,
    AcceptEnc,
    AcceptLang,
    Connection,
    Start,
    RequestBody,
    ResponseBody,
    StatCode,
    StatMsg,
    ResponseLine,
    Location,
    Server,
    FileData,
    /// The names of the same files, an instance each.
    FileName,
    /// Each request header field as `Name: value` (an instance each).
    RequestHeader,
    ResponseHeader,
    /// The message as it came: head, then body (the payload content of a
    /// transaction rule; no keyword names it).
    Message,
}

/// Which directions a kind exists in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sides {
    Request,
    Response,
    Both,
}

impl Kind {
    pub const ALL: [Kind; 32] = [
        Kind::Uri,
        Kind::UriRaw,
        Kind::Method,
        Kind::RequestLine,
        Kind::Protocol,
        Kind::Host,
        Kind::HostRaw,
        Kind::UserAgent,
        Kind::Cookie,
        Kind::Header,
        Kind::HeaderRaw,
        Kind::HeaderNames,
        Kind::ContentType,
        Kind::ContentLen,
        Kind::Referer,
        Kind::Accept,
        Kind::AcceptEnc,
        Kind::AcceptLang,
        Kind::Connection,
        Kind::Start,
        Kind::RequestBody,
        Kind::ResponseBody,
        Kind::StatCode,
        Kind::StatMsg,
        Kind::ResponseLine,
        Kind::Location,
        Kind::Server,
        Kind::FileData,
        Kind::FileName,
        Kind::RequestHeader,
        Kind::ResponseHeader,
        Kind::Message,
    ];

    /// A buffer of instances: a chain holds when it holds on one.
    pub fn multi(self) -> bool {
        matches!(
            self,
            Kind::RequestHeader | Kind::ResponseHeader | Kind::FileData | Kind::FileName
        )
    }

    /// A kind about a side's files (`file.data`, `file.name`): a rule that
    /// does not say which side looks at both, each on its own.
    pub fn of_files(self) -> bool {
        matches!(self, Kind::FileData | Kind::FileName)
    }

    fn sides(self) -> Sides {
        match self {
            Kind::Uri
            | Kind::UriRaw
            | Kind::Method
            | Kind::RequestLine
            | Kind::Host
            | Kind::HostRaw
            | Kind::UserAgent
            | Kind::Referer
            | Kind::Accept
            | Kind::AcceptEnc
            | Kind::AcceptLang
            | Kind::RequestHeader
            | Kind::RequestBody => Sides::Request,
            Kind::StatCode
            | Kind::StatMsg
            | Kind::ResponseLine
            | Kind::Location
            | Kind::Server
            | Kind::ResponseHeader
            | Kind::ResponseBody => Sides::Response,
            _ => Sides::Both,
        }
    }

    /// The sticky-buffer keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Kind::Uri => "http.uri",
            Kind::UriRaw => "http.uri.raw",
            Kind::Method => "http.method",
            Kind::RequestLine => "http.request_line",
            Kind::Protocol => "http.protocol",
            Kind::Host => "http.host",
            Kind::HostRaw => "http.host.raw",
            Kind::UserAgent => "http.user_agent",
            Kind::Cookie => "http.cookie",
            Kind::Header => "http.header",
            Kind::HeaderRaw => "http.header.raw",
            Kind::HeaderNames => "http.header_names",
            Kind::ContentType => "http.content_type",
            Kind::ContentLen => "http.content_len",
            Kind::Referer => "http.referer",
            Kind::Accept => "http.accept",
            Kind::AcceptEnc => "http.accept_enc",
            Kind::AcceptLang => "http.accept_lang",
            Kind::Connection => "http.connection",
            Kind::Start => "http.start",
            Kind::RequestBody => "http.request_body",
            Kind::ResponseBody => "http.response_body",
            Kind::StatCode => "http.stat_code",
            Kind::StatMsg => "http.stat_msg",
            Kind::ResponseLine => "http.response_line",
            Kind::Location => "http.location",
            Kind::Server => "http.server",
            Kind::FileData => "file.data",
            Kind::FileName => "file.name",
            Kind::RequestHeader => "http.request_header",
            Kind::ResponseHeader => "http.response_header",
            Kind::Message => "pkt_data",
        }
    }

    /// A sticky-buffer keyword (or its older name).
    pub fn of_sticky(k: &str) -> Option<Kind> {
        if k == "file_data" {
            return Some(Kind::FileData);
        }
        Kind::ALL
            .into_iter()
            .filter(|x| *x != Kind::Message)
            .find(|x| x.keyword() == k)
    }

    /// An older name of a sticky buffer (`http_request_line;`), as
    /// Suricata still takes them when no content comes before.
    pub fn of_sticky_alias(k: &str) -> Option<Kind> {
        Some(match k {
            "http_request_line" => Kind::RequestLine,
            "http_response_line" => Kind::ResponseLine,
            "http_protocol" => Kind::Protocol,
            "http_start" => Kind::Start,
            "http_header_names" => Kind::HeaderNames,
            "http_accept" => Kind::Accept,
            "http_accept_enc" => Kind::AcceptEnc,
            "http_accept_lang" => Kind::AcceptLang,
            "http_connection" => Kind::Connection,
            "http_content_len" => Kind::ContentLen,
            "http_content_type" => Kind::ContentType,
            "http_referer" => Kind::Referer,
            "http_server" => Kind::Server,
            "http_location" => Kind::Location,
            "http_request_header" => Kind::RequestHeader,
            "http_response_header" => Kind::ResponseHeader,
            _ => return None,
        })
    }

    /// A content modifier of the older syntax (`content:…; http_uri;`).
    pub fn of_modifier(k: &str) -> Option<Kind> {
        Some(match k {
            "http_uri" => Kind::Uri,
            "http_raw_uri" => Kind::UriRaw,
            "http_method" => Kind::Method,
            "http_client_body" => Kind::RequestBody,
            "http_server_body" => Kind::FileData,
            "http_header" => Kind::Header,
            "http_raw_header" => Kind::HeaderRaw,
            "http_cookie" => Kind::Cookie,
            "http_user_agent" => Kind::UserAgent,
            "http_host" => Kind::Host,
            "http_raw_host" => Kind::HostRaw,
            "http_stat_code" => Kind::StatCode,
            "http_stat_msg" => Kind::StatMsg,
            "http_content_type" => Kind::ContentType,
            "http_header_names" => Kind::HeaderNames,
            "http_accept" => Kind::Accept,
            "http_accept_enc" => Kind::AcceptEnc,
            "http_accept_lang" => Kind::AcceptLang,
            "http_referer" => Kind::Referer,
            "http_connection" => Kind::Connection,
            "http_content_len" => Kind::ContentLen,
            "http_protocol" => Kind::Protocol,
            "http_start" => Kind::Start,
            "http_request_line" => Kind::RequestLine,
            "http_response_line" => Kind::ResponseLine,
            _ => return None,
        })
    }

    /// A pcre buffer flag (`/…/U`).
    pub fn of_pcre_flag(c: char) -> Option<Kind> {
        Some(match c {
            'U' => Kind::Uri,
            'I' => Kind::UriRaw,
            'P' => Kind::RequestBody,
            'Q' => Kind::FileData,
            'H' => Kind::Header,
            'D' => Kind::HeaderRaw,
            'M' => Kind::Method,
            'C' => Kind::Cookie,
            'S' => Kind::StatCode,
            'Y' => Kind::StatMsg,
            'V' => Kind::UserAgent,
            'W' => Kind::Host,
            'Z' => Kind::HostRaw,
            _ => return None,
        })
    }
}

/// A buffer: a kind on one side of the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Buffer {
    pub kind: Kind,
    pub to_server: bool,
}

impl Buffer {
    /// The buffer of `kind` for a rule whose direction is `to_server`
    /// (None: unsaid). A kind on both sides follows the rule; unsaid, the
    /// request's, but file data is the response's (as `file_data` was).
    pub fn new(kind: Kind, to_server: Option<bool>) -> Buffer {
        let to_server = match kind.sides() {
            Sides::Request => true,
            Sides::Response => false,
            Sides::Both if kind.of_files() => to_server.unwrap_or(false),
            Sides::Both => to_server.unwrap_or(true),
        };
        Buffer { kind, to_server }
    }

    /// Its number among all buffers (for masks and tables).
    pub fn index(self) -> usize {
        self.kind as usize * 2 + usize::from(self.to_server)
    }

    pub const COUNT: usize = Kind::ALL.len() * 2;

    /// The point at which it is whole.
    pub fn point(self) -> Point {
        match (self.kind, self.to_server) {
            (Kind::RequestBody, _) | (Kind::FileData | Kind::FileName | Kind::Message, true) => {
                Point::RequestBody
            }
            (Kind::ResponseBody, _) | (Kind::FileData | Kind::FileName | Kind::Message, false) => {
                Point::ResponseBody
            }
            (_, true) => Point::RequestHeaders,
            (_, false) => Point::ResponseHeaders,
        }
    }

    /// Its name in reports (`http.header` or `http.header (response)`).
    pub fn name(self) -> String {
        match (self.kind.sides(), self.to_server) {
            (Sides::Both, false) => format!("{} (response)", self.kind.keyword()),
            _ => self.kind.keyword().to_string(),
        }
    }
}

/// Files taken from one multipart body at most.
pub const MAX_PARTS: usize = 16;

/// One file of a transaction's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileView<'a> {
    pub name: &'a [u8],
    pub data: &'a [u8],
    /// Whole: its end was seen (else the body limit or the connection's
    /// end cut it).
    pub closed: bool,
    /// Its number among a multipart body's files (None: the whole body).
    pub part: Option<u8>,
}

/// One transaction's buffers, built as rules ask for them.
#[derive(Debug)]
pub struct TxBuffers {
    req_head: Vec<u8>,
    resp_head: Vec<u8>,
    req: HeadIndex,
    resp: HeadIndex,
    bufs: Vec<Vec<u8>>,
    tmp: Vec<u8>,
    /// Built (and present) buffers, by index.
    built: u64,
    present: u64,
    loaded: u8,
    tx: Tx,
}

const REQ_HEAD: u8 = 1;
const RESP_HEAD: u8 = 2;

impl TxBuffers {
    /// Working room for heads of `head_limit` and bodies of `body_limit`.
    pub fn new(head_limit: usize, body_limit: usize) -> TxBuffers {
        TxBuffers {
            req_head: Vec::with_capacity(head_limit),
            resp_head: Vec::with_capacity(head_limit),
            req: HeadIndex::with_capacity(head_limit),
            resp: HeadIndex::with_capacity(head_limit),
            bufs: (0..Buffer::COUNT)
                .map(|i| {
                    let k = Kind::ALL[i / 2];
                    let body = matches!(
                        k,
                        Kind::RequestBody | Kind::ResponseBody | Kind::FileData | Kind::Message
                    );
                    // Room made now for what a buffer usually takes, so
                    // building one allocates only for an unusual head.
                    Vec::with_capacity(if body { body_limit } else { 8 * 1024 })
                })
                .collect(),
            tmp: Vec::with_capacity(4096),
            built: 0,
            present: 0,
            loaded: 0,
            tx: Tx::default(),
        }
    }

    /// Calls `f` with each instance of a multi buffer (each header field
    /// as `Name: value`, each file's data or name) until it returns false;
    /// false if there is none.
    pub fn each_instance(
        &mut self,
        blocks: &Blocks,
        b: Buffer,
        mut f: impl FnMut(&[u8]) -> bool,
    ) -> bool {
        match b.kind {
            Kind::FileData => return self.each_file(blocks, b.to_server, |v| f(v.data)),
            Kind::FileName => return self.each_file(blocks, b.to_server, |v| f(v.name)),
            _ => {}
        }
        if self.get(blocks, b).is_none() {
            return false;
        }
        let (head, idx) = if b.to_server {
            (&self.req_head[..], &self.req)
        } else {
            (&self.resp_head[..], &self.resp)
        };
        for fd in &idx.fields {
            self.tmp.clear();
            self.tmp.extend_from_slice(fd.name.of(head));
            self.tmp.extend_from_slice(b": ");
            self.tmp.extend_from_slice(fd.value.of(&idx.values));
            if !f(&self.tmp) {
                break;
            }
        }
        true
    }

    /// The request's body is a file, as Suricata takes a request's: a
    /// POST's or a PUT's (multipart parts aside).
    pub fn upload(&mut self, blocks: &Blocks) -> bool {
        self.get(blocks, Buffer::new(Kind::Method, Some(true)))
            .is_some_and(|m| m.eq_ignore_ascii_case(b"POST") || m.eq_ignore_ascii_case(b"PUT"))
    }

    /// The name of a side's whole-body file, as Suricata names HTTP files:
    /// the message's Content-Disposition filename, else the request URI's
    /// path (empty if neither is there).
    pub fn body_file_name(&mut self, blocks: &Blocks, to_server: bool) -> &[u8] {
        self.get(blocks, Buffer::new(Kind::Header, Some(to_server)));
        self.get(blocks, Buffer::new(Kind::UriRaw, Some(true)));
        self.built_file_name(to_server)
    }

    /// `body_file_name` from the buffers it built.
    fn built_file_name(&self, to_server: bool) -> &[u8] {
        let built =
            |b: Buffer| (self.present & 1 << b.index() != 0).then(|| &self.bufs[b.index()][..]);
        built(Buffer::new(Kind::Header, Some(to_server)))
            .and_then(multipart::disposition_filename)
            .or_else(|| {
                built(Buffer::new(Kind::UriRaw, Some(true)))
                    .map(|u| &u[..u.iter().position(|&c| c == b'?').unwrap_or(u.len())])
            })
            .unwrap_or_default()
    }

    /// The request is a `multipart/form-data` upload.
    pub fn multipart_request(&mut self, blocks: &Blocks) -> bool {
        self.get(blocks, Buffer::new(Kind::ContentType, Some(true)))
            .and_then(multipart::boundary)
            .is_some()
    }

    /// Calls `f` with each file of one side until it returns false; false
    /// if the side has none. Files are as Suricata tracks HTTP files: each
    /// part of a `multipart/form-data` request that names a filename, else
    /// the body of a POST or PUT; a response's body (named by its
    /// Content-Disposition, else the URI's path).
    pub fn each_file(
        &mut self,
        blocks: &Blocks,
        to_server: bool,
        mut f: impl FnMut(FileView<'_>) -> bool,
    ) -> bool {
        let body = Buffer::new(
            if to_server {
                Kind::RequestBody
            } else {
                Kind::ResponseBody
            },
            Some(to_server),
        );
        if self.get(blocks, body).is_none() {
            return false;
        }
        let cut = self.tx.has(if to_server {
            flag::REQ_CUT
        } else {
            flag::RESP_CUT
        });
        let mut bound = [0u8; multipart::BOUNDARY_MAX];
        let mut blen = 0;
        if to_server {
            if let Some(b) = self
                .get(blocks, Buffer::new(Kind::ContentType, Some(true)))
                .and_then(multipart::boundary)
            {
                bound[..b.len()].copy_from_slice(b);
                blen = b.len();
            }
        }
        if blen > 0 {
            let data = &self.bufs[body.index()];
            let mut any = false;
            let files = multipart::parts(data, &bound[..blen]).filter(|p| p.filename.is_some());
            for (k, p) in files.take(MAX_PARTS).enumerate() {
                any = true;
                let v = FileView {
                    name: p.filename.unwrap_or_default(),
                    data: p.data,
                    closed: p.closed,
                    part: Some(k as u8),
                };
                if !f(v) {
                    break;
                }
            }
            return any;
        }
        if to_server && !self.upload(blocks) {
            return false;
        }
        self.body_file_name(blocks, to_server);
        let name = self.built_file_name(to_server);
        f(FileView {
            name,
            data: &self.bufs[body.index()],
            closed: !cut,
            part: None,
        });
        true
    }

    /// Starts on transaction `tx` (buffers of an earlier one are gone).
    pub fn start(&mut self, tx: &Tx) {
        self.tx = *tx;
        self.built = 0;
        self.present = 0;
        self.loaded = 0;
    }

    pub fn tx(&self) -> &Tx {
        &self.tx
    }

    fn head(&mut self, blocks: &Blocks, request: bool) {
        let bit = if request { REQ_HEAD } else { RESP_HEAD };
        if self.loaded & bit != 0 {
            return;
        }
        self.loaded |= bit;
        let (chain, buf, idx) = if request {
            (&self.tx.req_head, &mut self.req_head, &mut self.req)
        } else {
            (&self.tx.resp_head, &mut self.resp_head, &mut self.resp)
        };
        buf.clear();
        blocks.read(chain, buf);
        idx.parse(buf, request);
    }

    /// The buffer's bytes, None if the transaction has no such thing (no
    /// such header, no response yet, HTTP/0.9 …).
    pub fn get(&mut self, blocks: &Blocks, b: Buffer) -> Option<&[u8]> {
        let i = b.index();
        let bit = 1u64 << i;
        if self.built & bit == 0 {
            self.built |= bit;
            if self.build(blocks, b) {
                self.present |= bit;
            }
        }
        (self.present & bit != 0).then(|| &self.bufs[i][..])
    }

    fn build(&mut self, blocks: &Blocks, b: Buffer) -> bool {
        let req = b.to_server;
        let have = if req {
            !self.tx.has(flag::NO_REQUEST) && self.tx.reached(Point::RequestHeaders)
        } else {
            self.tx.reached(Point::ResponseHeaders) && !self.tx.has(flag::HTTP09)
        };
        if !have {
            return false;
        }
        let i = b.index();
        let mut out = std::mem::take(&mut self.bufs[i]);
        out.clear();
        let ok = match b.kind {
            Kind::RequestBody | Kind::ResponseBody | Kind::FileData => {
                let chain = if req {
                    &self.tx.req_body
                } else {
                    &self.tx.resp_body
                };
                blocks.read(chain, &mut out);
                !out.is_empty()
            }
            Kind::FileName => {
                // Every file's name, a line each: what the prefilter
                // scans (a chain is confirmed on each name alone).
                self.each_file(blocks, req, |v| {
                    out.extend_from_slice(v.name);
                    out.push(b'\n');
                    true
                });
                !out.is_empty()
            }
            Kind::Message => {
                let (head, body) = if req {
                    (&self.tx.req_head, &self.tx.req_body)
                } else {
                    (&self.tx.resp_head, &self.tx.resp_body)
                };
                blocks.read(head, &mut out);
                blocks.read(body, &mut out);
                !out.is_empty()
            }
            _ => {
                self.head(blocks, req);
                self.build_head(b.kind, req, &mut out)
            }
        };
        self.bufs[i] = out;
        ok
    }

    fn build_head(&mut self, kind: Kind, req: bool, out: &mut Vec<u8>) -> bool {
        let (head, idx) = if req {
            (&self.req_head[..], &self.req)
        } else {
            (&self.resp_head[..], &self.resp)
        };
        let part = |s: Span| -> &[u8] { s.of(head) };
        let put = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(b);
            !b.is_empty()
        };
        let field = |out: &mut Vec<u8>, name: &[u8]| idx.get_into(head, name, out);
        match kind {
            Kind::Uri => {
                normalize_uri(part(idx.parts[1]), out, &mut self.tmp);
                !idx.parts[1].is_empty()
            }
            Kind::UriRaw => put(out, part(idx.parts[1])),
            Kind::Method => put(out, part(idx.parts[0])),
            Kind::RequestLine | Kind::ResponseLine => put(out, part(idx.line)),
            Kind::Protocol => put(out, part(idx.parts[if req { 2 } else { 0 }])),
            Kind::StatCode => put(out, part(idx.parts[1])),
            Kind::StatMsg => put(out, part(idx.parts[2])),
            Kind::Host => {
                // The URI's authority if it has one, else the Host header;
                // lower case, without a port.
                let uri = part(idx.parts[1]);
                let host: &[u8] = match uri.windows(3).position(|w| w == b"://") {
                    Some(p) => {
                        let a = &uri[p + 3..];
                        let end = a
                            .iter()
                            .position(|&c| c == b'/' || c == b'?')
                            .unwrap_or(a.len());
                        let a = &a[..end];
                        let at = a.iter().rposition(|&c| c == b'@').map_or(0, |i| i + 1);
                        &a[at..]
                    }
                    None => match idx.first(head, b"host") {
                        Some(h) => h,
                        None => return false,
                    },
                };
                let host = strip_port(host);
                out.extend(host.iter().map(u8::to_ascii_lowercase));
                !out.is_empty()
            }
            Kind::HostRaw => field(out, b"host"),
            Kind::UserAgent => field(out, b"user-agent"),
            Kind::Cookie => field(out, if req { b"cookie" } else { b"set-cookie" }),
            Kind::ContentType => field(out, b"content-type"),
            Kind::ContentLen => field(out, b"content-length"),
            Kind::Referer => field(out, b"referer"),
            Kind::Accept => field(out, b"accept"),
            Kind::AcceptEnc => field(out, b"accept-encoding"),
            Kind::AcceptLang => field(out, b"accept-language"),
            Kind::Connection => field(out, b"connection"),
            Kind::Location => field(out, b"location"),
            Kind::Server => field(out, b"server"),
            Kind::Header => {
                // "Name: value\r\n" per field, duplicates joined, without
                // the cookies (as Suricata's http.header).
                let skip: &[u8] = if req { b"cookie" } else { b"set-cookie" };
                joined_fields(idx, head, Some(skip), out, &mut self.tmp);
                !idx.fields.is_empty()
            }
            Kind::Start => {
                out.extend_from_slice(part(idx.line));
                out.extend_from_slice(b"\r\n");
                joined_fields(idx, head, None, out, &mut self.tmp);
                out.extend_from_slice(b"\r\n");
                true
            }
            Kind::HeaderNames => {
                out.extend_from_slice(b"\r\n");
                for f in &idx.fields {
                    out.extend_from_slice(f.name.of(head));
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"\r\n");
                !idx.fields.is_empty()
            }
            Kind::HeaderRaw => {
                // The head after its start line.
                let after = idx.line.end as usize;
                let rest = head.get(after..).unwrap_or(&[]);
                let rest = match rest.iter().position(|&c| c == b'\n') {
                    Some(p) => &rest[p + 1..],
                    None => &[],
                };
                put(out, rest)
            }
            Kind::RequestHeader | Kind::ResponseHeader => {
                // For the prefilter: every instance, one per line.
                for f in &idx.fields {
                    out.extend_from_slice(f.name.of(head));
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(f.value.of(&idx.values));
                    out.extend_from_slice(b"\r\n");
                }
                !idx.fields.is_empty()
            }
            Kind::RequestBody
            | Kind::ResponseBody
            | Kind::FileData
            | Kind::FileName
            | Kind::Message => false,
        }
    }
}

/// Header fields as "Name: value\r\n", each name once (its values joined
/// by ", " as libhtp joins duplicates), in the order names first appear.
fn joined_fields(
    idx: &HeadIndex,
    head: &[u8],
    skip: Option<&[u8]>,
    out: &mut Vec<u8>,
    tmp: &mut Vec<u8>,
) {
    for (i, f) in idx.fields.iter().enumerate() {
        let name = f.name.of(head);
        if skip.is_some_and(|s| name.eq_ignore_ascii_case(s)) {
            continue;
        }
        if idx.fields[..i]
            .iter()
            .any(|g| g.name.of(head).eq_ignore_ascii_case(name))
        {
            continue;
        }
        idx.get_into(head, name, tmp);
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(tmp);
        out.extend_from_slice(b"\r\n");
    }
}

fn strip_port(h: &[u8]) -> &[u8] {
    if h.first() == Some(&b'[') {
        // [v6]:port → [v6]
        return match h.iter().position(|&c| c == b']') {
            Some(e) => &h[..=e],
            None => h,
        };
    }
    match h.iter().rposition(|&c| c == b':') {
        Some(p) if h[p + 1..].iter().all(u8::is_ascii_digit) => &h[..p],
        _ => h,
    }
}
