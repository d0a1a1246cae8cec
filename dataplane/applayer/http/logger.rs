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
}

impl Field {
    pub const ALL: [Field; 15] = [
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
        }
    }
}

/// Longest value kept per field (a URL past it is cut, as Suricata's
/// logger has no limit but a record must fit the arena).
pub const MAX_VALUE: usize = 2048;

/// Packs transaction `bufs`' logged fields into `out` (cleared first):
/// per field its number, a two-byte length, the bytes.
pub fn pack(bufs: &mut TxBuffers, blocks: &Blocks, xff: Option<Xff>, out: &mut Vec<u8>) {
    out.clear();
    let mut put = |f: Field, v: &[u8]| {
        let v = &v[..v.len().min(MAX_VALUE)];
        out.push(f as u8);
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        out.extend_from_slice(v);
    };
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
