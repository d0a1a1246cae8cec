//! The buffers rules inspect of one transaction. HTTP's (`http.*`) are
//! built from its transaction on demand; other protocols' (DNS, TLS) are
//! put in whole when their transaction is loaded (`start_direct`, `put`).
//! Either way each is made at most once per point, in working buffers the
//! worker made at start-up.
//!
//! HTTP's buffers
//! and kept for the rest of its evaluation: each is made at most once per
//! point, in working buffers the worker made at start-up.

use super::multipart;
use super::parser::{normalize_uri, HeadIndex, Span};
use super::state::{flag, Tx};
use crate::applayer::blocks::Blocks;
pub use crate::applayer::buffer::{Buffer, Kind};
use crate::applayer::{AppProto, Point};

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

/// An LLM-API call, as `TxBuffers::llm_call` finds it.
#[derive(Debug, Clone, Copy)]
pub struct LlmCall<'a> {
    pub endpoint: crate::applayer::llm::Endpoint,
    pub req: &'a crate::applayer::llm::Request,
    pub resp: &'a crate::applayer::llm::Response,
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
    built: u128,
    present: u128,
    loaded: u8,
    tx: Tx,
    /// The protocol of the transaction loaded (its buffers were put in
    /// whole unless HTTP).
    proto: AppProto,
    /// Instances of the buffers put in whole: (buffer index, start, end)
    /// in that buffer.
    spans: Vec<(u8, u32, u32)>,
    /// Room for an archive member a model walk inflates.
    model_room: Vec<u8>,
    /// What each file of the loaded transaction is, once asked (side,
    /// part, artifact): counted and logged from one identification.
    artifacts: Vec<(bool, Option<u8>, Option<crate::applayer::model::Artifact>)>,
    /// An LLM-API request's fields, read from its body.
    llm: crate::applayer::llm::Request,
    /// And its response's.
    llm_resp: crate::applayer::llm::Response,
    /// The AI parsers (LLM-API JSON, model files) run (`--ai-inspect`):
    /// off, their buffers are never there.
    pub ai: bool,
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
            proto: AppProto::Http,
            spans: Vec::with_capacity(256),
            model_room: Vec::new(),
            artifacts: Vec::with_capacity(2 + MAX_PARTS),
            llm: Default::default(),
            llm_resp: Default::default(),
            ai: true,
        }
    }

    /// With the AI parsers on or off.
    pub fn with_ai(mut self, on: bool) -> TxBuffers {
        self.ai = on;
        self
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
        if self.proto != AppProto::Http {
            let i = b.index();
            if self.present & 1 << i == 0 {
                return false;
            }
            let buf = &self.bufs[i];
            for &(k, s, e) in &self.spans {
                if usize::from(k) == i && !f(&buf[s as usize..e as usize]) {
                    break;
                }
            }
            return true;
        }
        match b.kind {
            Kind::FileData => return self.each_file(blocks, b.to_server, |v| f(v.data)),
            Kind::FileName => return self.each_file(blocks, b.to_server, |v| f(v.name)),
            Kind::PickleImports => {
                if self.get(blocks, b).is_none() {
                    return false;
                }
                for line in self.bufs[b.index()].split(|&c| c == b'\n') {
                    if !line.is_empty() && !f(line) {
                        break;
                    }
                }
                return true;
            }
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
        self.proto = AppProto::Http;
        self.llm.clear();
        self.llm_resp.clear();
        self.artifacts.clear();
    }

    /// The LLM-API call the HTTP transaction loaded is, if it is one:
    /// its request and response as read, and which API they are.
    pub fn llm_call(&mut self, blocks: &Blocks) -> Option<LlmCall<'_>> {
        use crate::applayer::llm;
        if !self.ai || self.proto != AppProto::Http {
            return None;
        }
        self.get(blocks, Buffer::new(Kind::LlmModel, Some(true)));
        self.get(blocks, Buffer::new(Kind::LlmCompletion, Some(false)));
        let (req, resp) = (&self.llm, &self.llm_resp);
        if !req.found() && resp.endpoint == llm::Endpoint::Unknown {
            return None;
        }
        let uri = Buffer::new(Kind::UriRaw, Some(true));
        self.get(blocks, uri);
        let path = if self.present & 1 << uri.index() != 0 {
            &self.bufs[uri.index()][..]
        } else {
            &[]
        };
        Some(LlmCall {
            endpoint: llm::endpoint(&self.llm, &self.llm_resp, path),
            req: &self.llm,
            resp: &self.llm_resp,
        })
    }

    /// What the file `part` (None: the whole body) of a side is, if a
    /// model artifact; identified once per load of the transaction.
    pub fn artifact(
        &mut self,
        blocks: &Blocks,
        to_server: bool,
        part: Option<u8>,
    ) -> Option<&crate::applayer::model::Artifact> {
        if !self.ai || self.proto != AppProto::Http {
            return None;
        }
        let at = match self
            .artifacts
            .iter()
            .position(|(s, p, _)| (*s, *p) == (to_server, part))
        {
            Some(at) => at,
            None => {
                let found = self.identify(blocks, to_server, part);
                self.artifacts.push((to_server, part, found));
                self.artifacts.len() - 1
            }
        };
        self.artifacts[at].2.as_ref()
    }

    fn identify(
        &mut self,
        blocks: &Blocks,
        to_server: bool,
        part: Option<u8>,
    ) -> Option<crate::applayer::model::Artifact> {
        let mut room = std::mem::take(&mut self.model_room);
        let mut found = None;
        self.each_file(blocks, to_server, |v| {
            if v.part != part {
                return true;
            }
            // A file cut (by the body limit, or the connection's end) has
            // no size to hold a header to.
            let whole = v.closed.then_some(v.data.len() as u64);
            found = crate::applayer::model::identify(v.data, whole, &mut room);
            false
        });
        self.model_room = room;
        found
    }

    /// Starts on a transaction of another protocol, numbered `id`, with
    /// the events raised on it (a bit each, that protocol's): its buffers
    /// come in whole with `put` and `put_instance`, every other is absent.
    pub fn start_direct(&mut self, proto: AppProto, id: u64, events: u32) {
        self.tx = Tx {
            id,
            events,
            ..Tx::default()
        };
        self.built = u128::MAX;
        self.present = 0;
        self.loaded = 0;
        self.proto = proto;
        self.spans.clear();
    }

    /// The protocol of the transaction loaded.
    pub fn proto(&self) -> AppProto {
        self.proto
    }

    /// Puts buffer `b` in whole (a direct load).
    pub fn put(&mut self, b: Buffer, bytes: &[u8]) {
        let i = b.index();
        self.present |= 1 << i;
        self.bufs[i].clear();
        self.bufs[i].extend_from_slice(bytes);
    }

    /// Adds bytes to buffer `b`, put before (a direct load).
    pub fn extend(&mut self, b: Buffer, bytes: &[u8]) {
        self.bufs[b.index()].extend_from_slice(bytes);
    }

    /// Adds an instance to a buffer of instances (a direct load): the
    /// buffer as a whole (what the prefilter scans) is every instance, a
    /// line each.
    pub fn put_instance(&mut self, b: Buffer, bytes: &[u8]) {
        let i = b.index();
        let buf = &mut self.bufs[i];
        if self.present & 1 << i == 0 {
            self.present |= 1 << i;
            buf.clear();
        }
        let start = buf.len() as u32;
        buf.extend_from_slice(bytes);
        self.spans.push((i as u8, start, buf.len() as u32));
        buf.push(b'\n');
    }

    /// Adds a number to a numeric buffer (`Kind::numeric`).
    pub fn put_number(&mut self, b: Buffer, n: u64) {
        self.put_instance(b, &n.to_be_bytes());
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
        let bit = 1u128 << i;
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
            Kind::LlmPrompt
            | Kind::LlmSystem
            | Kind::LlmToolArgs
            | Kind::LlmModel
            | Kind::LlmCompletion
            | Kind::PickleImports
            | Kind::PickleSuspicious
                if !self.ai =>
            {
                false
            }
            Kind::LlmPrompt | Kind::LlmSystem | Kind::LlmToolArgs | Kind::LlmModel => {
                self.bufs[i] = out;
                return self.build_llm(blocks, b.kind);
            }
            Kind::LlmCompletion => {
                self.bufs[i] = out;
                self.parse_completion(blocks);
                let out = &mut self.bufs[i];
                out.clear();
                out.extend_from_slice(&self.llm_resp.text);
                return !out.is_empty();
            }
            Kind::PickleImports | Kind::PickleSuspicious => {
                self.bufs[i] = out;
                return self.build_pickles(blocks, b);
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

    /// The `llm.*` buffers of the request's body, all four from one parse
    /// (marked built together); whether `kind`'s is there.
    fn build_llm(&mut self, blocks: &Blocks, kind: Kind) -> bool {
        let body = Buffer::new(Kind::RequestBody, Some(true));
        let kinds = [
            Kind::LlmPrompt,
            Kind::LlmSystem,
            Kind::LlmToolArgs,
            Kind::LlmModel,
        ];
        let mut req = std::mem::take(&mut self.llm);
        req.clear();
        if let Some(b) = self.get(blocks, body) {
            // Cut by the body limit: what was read before the cut counts.
            let _ = crate::applayer::llm::parse_request(b, &mut req);
        }
        for k in kinds {
            let bb = Buffer::new(k, Some(true));
            let i = bb.index();
            let src = match k {
                Kind::LlmPrompt => &req.prompt,
                Kind::LlmSystem => &req.system,
                Kind::LlmToolArgs => &req.tool_args,
                _ => &req.model,
            };
            self.built |= 1 << i;
            self.bufs[i].clear();
            self.bufs[i].extend_from_slice(src);
            if !src.is_empty() {
                self.present |= 1 << i;
            }
        }
        self.llm = req;
        self.present & 1 << Buffer::new(kind, Some(true)).index() != 0
    }

    /// The response's `llm.completion` read into `llm_resp` (server-sent
    /// events when its Content-Type says so).
    fn parse_completion(&mut self, blocks: &Blocks) {
        let sse = self
            .get(blocks, Buffer::new(Kind::ContentType, Some(false)))
            .is_some_and(|c| c.len() >= 17 && c[..17].eq_ignore_ascii_case(b"text/event-stream"));
        let mut resp = std::mem::take(&mut self.llm_resp);
        match self.get(blocks, Buffer::new(Kind::ResponseBody, Some(false))) {
            Some(b) => crate::applayer::llm::parse_response(b, sse, &mut resp),
            None => resp.clear(),
        }
        self.llm_resp = resp;
    }

    /// `pickle.imports` and `pickle.suspicious` of a side's files, from
    /// one walk (both marked built); whether `b`'s is there.
    fn build_pickles(&mut self, blocks: &Blocks, b: Buffer) -> bool {
        let side = Some(b.to_server);
        let (imp, sus) = (
            Buffer::new(Kind::PickleImports, side).index(),
            Buffer::new(Kind::PickleSuspicious, side).index(),
        );
        let mut out = std::mem::take(&mut self.bufs[imp]);
        out.clear();
        let mut room = std::mem::take(&mut self.model_room);
        let mut suspicious = false;
        // What each file's pickles import, a line each (a chain is
        // confirmed on each import alone).
        self.each_file(blocks, b.to_server, |v| {
            if let Some(w) = crate::applayer::model::walk_body(v.data, &mut room) {
                suspicious |= w.suspicious;
                for i in &w.imports {
                    out.extend_from_slice(i.as_bytes());
                    out.push(b'\n');
                }
            }
            true
        });
        self.model_room = room;
        self.built |= 1 << imp | 1 << sus;
        if !out.is_empty() {
            self.present |= 1 << imp;
        }
        self.bufs[imp] = out;
        self.bufs[sus].clear();
        if suspicious {
            self.bufs[sus].extend_from_slice(&1u64.to_be_bytes());
            self.present |= 1 << sus;
        }
        self.present & 1 << b.index() != 0
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
            | Kind::PickleImports
            | Kind::PickleSuspicious
            | Kind::LlmCompletion
            | Kind::Message => false,
            // Other protocols' kinds are put in whole, never built.
            _ => false,
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
