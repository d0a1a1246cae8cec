//! The EVE `http` object of a transaction, as Suricata's HTTP logger
//! writes it (hostname, url, http_user_agent, http_content_type,
//! http_refer, http_method, protocol, status, length, redirect; each only
//! when the transaction has it). The worker packs the fields into a
//! compact record (`pack`) that crosses to the EVE writer in its byte
//! arena; the writer unpacks it (`unpack`) and writes JSON.

use super::detect::{Buffer, Kind, TxBuffers};
use super::parser::trim;
use super::state::{flag, FileHashes};
use super::xff::Xff;
use crate::applayer::blocks::Blocks;

/// The fields, in the order Suricata writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Hostname = 1,
    Url,
    UserAgent,
    ContentType,
    Refer,
    Method,
    Protocol,
    Status,
    Length,
    Redirect,
    /// A file's name and hashes (fileinfo events).
    Filename,
    Md5,
    Sha1,
    Sha256,
    /// The client's address from X-Forwarded-For (`--xff`).
    Xff,
    /// An LLM-API call (EVE `tollgate.llm`).
    LlmEndpoint,
    LlmModel,
    LlmMessages,
    LlmPromptBytes,
    LlmTools,
    LlmStreamed,
    LlmCompletionBytes,
    LlmError,
    LlmPrompt,
    LlmCompletion,
    /// A model artifact (EVE `tollgate.artifact` on `fileinfo`).
    ArtFormat,
    ArtImports,
    ArtSuspicious,
    ArtTensors,
    ArtError,
}

impl Field {
    pub const ALL: [Field; 30] = [
        Field::Hostname,
        Field::Url,
        Field::UserAgent,
        Field::ContentType,
        Field::Refer,
        Field::Method,
        Field::Protocol,
        Field::Status,
        Field::Length,
        Field::Redirect,
        Field::Filename,
        Field::Md5,
        Field::Sha1,
        Field::Sha256,
        Field::Xff,
        Field::LlmEndpoint,
        Field::LlmModel,
        Field::LlmMessages,
        Field::LlmPromptBytes,
        Field::LlmTools,
        Field::LlmStreamed,
        Field::LlmCompletionBytes,
        Field::LlmError,
        Field::LlmPrompt,
        Field::LlmCompletion,
        Field::ArtFormat,
        Field::ArtImports,
        Field::ArtSuspicious,
        Field::ArtTensors,
        Field::ArtError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Hostname => "hostname",
            Field::Url => "url",
            Field::UserAgent => "http_user_agent",
            Field::ContentType => "http_content_type",
            Field::Refer => "http_refer",
            Field::Method => "http_method",
            Field::Protocol => "protocol",
            Field::Status => "status",
            Field::Length => "length",
            Field::Redirect => "redirect",
            Field::Filename => "filename",
            Field::Md5 => "md5",
            Field::Sha1 => "sha1",
            Field::Sha256 => "sha256",
            Field::Xff => "xff",
            Field::LlmEndpoint => "endpoint",
            Field::LlmModel => "model",
            Field::LlmMessages => "messages",
            Field::LlmPromptBytes => "prompt_bytes",
            Field::LlmTools => "tools",
            Field::LlmStreamed => "streamed",
            Field::LlmCompletionBytes => "completion_bytes",
            Field::LlmError => "error",
            Field::LlmPrompt => "prompt",
            Field::LlmCompletion => "completion",
            Field::ArtFormat => "format",
            Field::ArtImports => "pickle_imports",
            Field::ArtSuspicious => "pickle_suspicious",
            Field::ArtTensors => "tensors",
            Field::ArtError => "error",
        }
    }
}

/// Longest value kept per field (a URL past it is cut, as Suricata's
/// logger has no limit but a record must fit the arena).
pub const MAX_VALUE: usize = 2048;

/// Prompt and completion text kept per call for EVE at most
/// (`--eve-llm-text`); longer text is cut there.
pub const MAX_LLM_TEXT: usize = 8192;

fn put_field(out: &mut Vec<u8>, f: Field, v: &[u8], max: usize) {
    let v = &v[..v.len().min(max)];
    out.push(f as u8);
    out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    out.extend_from_slice(v);
}

/// Packs transaction `bufs`' logged fields into `out` (cleared first):
/// per field its number, a two-byte length, the bytes.
/// With `llm_text`, an LLM call's prompt and completion text go too.
pub fn pack(
    bufs: &mut TxBuffers,
    blocks: &Blocks,
    xff: Option<Xff>,
    llm_text: bool,
    out: &mut Vec<u8>,
) {
    out.clear();
    let mut put = |f: Field, v: &[u8]| put_field(out, f, v, MAX_VALUE);
    let req = |k| Buffer::new(k, Some(true));
    let resp = |k| Buffer::new(k, Some(false));
    let tx = *bufs.tx();
    for (f, b) in [
        (Field::Hostname, req(Kind::Host)),
        (Field::Url, req(Kind::UriRaw)),
        (Field::UserAgent, req(Kind::UserAgent)),
        (Field::ContentType, resp(Kind::ContentType)),
        (Field::Refer, req(Kind::Referer)),
        (Field::Method, req(Kind::Method)),
        (Field::Protocol, req(Kind::Protocol)),
    ] {
        if let Some(v) = bufs.get(blocks, b) {
            // Suricata's content type stops at its parameters.
            let v = if f == Field::ContentType {
                let end = v.iter().position(|&c| c == b';').unwrap_or(v.len());
                trim(&v[..end])
            } else {
                v
            };
            put(f, v);
        }
    }
    if tx.has(flag::NO_REQUEST) {
        if let Some(v) = bufs.get(blocks, resp(Kind::Protocol)) {
            put(Field::Protocol, v);
        }
    }
    if tx.status != 0 {
        let mut n = itoa(u64::from(tx.status));
        put(Field::Status, n.digits());
    }
    // Suricata writes the response body's length so far, 0 before one.
    let mut n = itoa(tx.resp_body_len);
    put(Field::Length, n.digits());
    if let Some(v) = bufs.get(blocks, resp(Kind::Location)) {
        put(Field::Redirect, v);
    }
    if let Some(x) = xff {
        if let Some(ip) = bufs
            .get(blocks, req(Kind::Header))
            .and_then(|h| x.client(h))
        {
            put(Field::Xff, ip);
        }
    }
    pack_llm(bufs, blocks, llm_text, out);
}

/// The LLM-API call the transaction is, if one.
fn pack_llm(bufs: &mut TxBuffers, blocks: &Blocks, text: bool, out: &mut Vec<u8>) {
    let Some(c) = bufs.llm_call(blocks) else {
        return;
    };
    let num = |out: &mut Vec<u8>, f, n: u64| put_field(out, f, itoa(n).digits(), MAX_VALUE);
    put_field(
        out,
        Field::LlmEndpoint,
        c.endpoint.name().as_bytes(),
        MAX_VALUE,
    );
    if !c.req.model.is_empty() {
        put_field(out, Field::LlmModel, &c.req.model, MAX_VALUE);
    }
    num(out, Field::LlmMessages, u64::from(c.req.messages));
    num(out, Field::LlmPromptBytes, c.req.prompt.len() as u64);
    if !c.req.tools.is_empty() {
        put_field(out, Field::LlmTools, &c.req.tools, MAX_VALUE);
    }
    num(
        out,
        Field::LlmStreamed,
        u64::from(c.req.stream || c.resp.streamed),
    );
    num(out, Field::LlmCompletionBytes, c.resp.text.len() as u64);
    if let Some(e) = c.resp.error {
        put_field(out, Field::LlmError, e.name().as_bytes(), MAX_VALUE);
    }
    if text {
        put_field(out, Field::LlmPrompt, &c.req.prompt, MAX_LLM_TEXT);
        put_field(out, Field::LlmCompletion, &c.resp.text, MAX_LLM_TEXT);
    }
}

/// Appends what a file is, if a model artifact.
pub fn pack_artifact(a: &crate::applayer::model::Artifact, out: &mut Vec<u8>) {
    put_field(out, Field::ArtFormat, a.format.name().as_bytes(), MAX_VALUE);
    if let Some(w) = &a.walk {
        // The imports a line each, as many whole ones as fit.
        out.push(Field::ArtImports as u8);
        let len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let start = out.len();
        for i in &w.imports {
            let sep = usize::from(out.len() > start);
            if out.len() - start + sep + i.len() > MAX_VALUE {
                break;
            }
            if sep == 1 {
                out.push(b'\n');
            }
            out.extend_from_slice(i.as_bytes());
        }
        let n = (out.len() - start) as u16;
        out[len_at..start].copy_from_slice(&n.to_le_bytes());
        put_field(
            out,
            Field::ArtSuspicious,
            &[b'0' + u8::from(w.suspicious)],
            1,
        );
    }
    if let Some(n) = a.tensors {
        put_field(
            out,
            Field::ArtTensors,
            itoa(u64::from(n)).digits(),
            MAX_VALUE,
        );
    }
    if let Some(e) = a.error {
        put_field(out, Field::ArtError, e.as_bytes(), MAX_VALUE);
    }
}

/// A number's digits without an allocation.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn digits(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa(mut n: u64) -> Digits {
    let mut d = Digits {
        buf: [0; 20],
        start: 20,
    };
    loop {
        d.start -= 1;
        d.buf[d.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    d
}

/// Appends a whole-body file's name and hashes to a packed record: the
/// filename of a Content-Disposition if the message has one, else the
/// URI's path (as Suricata names HTTP files).
pub fn pack_filename(bufs: &mut TxBuffers, blocks: &Blocks, to_server: bool, out: &mut Vec<u8>) {
    let t = bufs.tx();
    let h = if to_server { t.req_hash } else { t.resp_hash };
    pack_file(bufs.body_file_name(blocks, to_server), &h, out);
}

/// Appends a file's name and the hashes computed of it.
pub fn pack_file(name: &[u8], h: &FileHashes, out: &mut Vec<u8>) {
    let name = &name[..name.len().min(MAX_VALUE)];
    out.push(Field::Filename as u8);
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name);
    pack_hashes(h, out);
}

/// Appends the hashes computed of a file.
pub fn pack_hashes(h: &FileHashes, out: &mut Vec<u8>) {
    let digests: [(Field, Option<&[u8]>); 3] = [
        (Field::Md5, h.md5.as_ref().map(|d| &d[..])),
        (Field::Sha1, h.sha1.as_ref().map(|d| &d[..])),
        (Field::Sha256, h.sha256.as_ref().map(|d| &d[..])),
    ];
    for (f, d) in digests {
        if let Some(d) = d {
            out.push(f as u8);
            out.extend_from_slice(&((d.len() * 2) as u16).to_le_bytes());
            for b in d {
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The fields of a packed record, in order (a record cut short ends).
pub fn unpack(rec: &[u8]) -> impl Iterator<Item = (Field, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let id = *rec.get(at)?;
        let len = u16::from_le_bytes([*rec.get(at + 1)?, *rec.get(at + 2)?]) as usize;
        let v = rec.get(at + 3..at + 3 + len)?;
        at += 3 + len;
        let f = Field::ALL.into_iter().find(|f| *f as u8 == id)?;
        Some((f, v))
    })
}
