//! TLS: recognising a connection by its first record header (the app
//! layer's probe); in `follower`, walking a direction record by record so
//! that reassembly hands ciphertext to nobody; and the handshake, one
//! transaction per connection as in Suricata: the ClientHello (its point
//! is the request's), the server's hello and certificates (the
//! response's), complete when the server's part is over.

pub mod cert;
pub mod follower;
pub mod hello;
pub mod logger;
pub mod record;

use super::buffer::{Buffer, Kind};
use super::http::detect::TxBuffers;
use super::{AppProto, Point, Probe};
use hello::Hello;
use record::{Direction, CLIENT_HELLO, SERVER_HELLO};

/// What TLS parsing saw in one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsCounters {
    pub client_hellos: u64,
    pub server_hellos: u64,
    pub certificates: u64,
    /// Hellos that did not parse.
    pub bad_hellos: u64,
    /// Directions whose bytes stopped being TLS records.
    pub not_tls: u64,
    /// Handshake messages past `record::MAX_MESSAGE`.
    pub too_long: u64,
}

impl TlsCounters {
    pub fn add(&mut self, o: &TlsCounters) {
        self.client_hellos += o.client_hellos;
        self.server_hellos += o.server_hellos;
        self.certificates += o.certificates;
        self.bad_hellos += o.bad_hellos;
        self.not_tls += o.not_tls;
        self.too_long += o.too_long;
    }
}

/// What one worker's TLS connections share: the points the last delivery
/// moved the handshake through, and the counters.
#[derive(Debug, Default)]
pub struct TlsCx {
    pub out: Vec<(u8, Point)>,
    pub counters: TlsCounters,
    /// `--tls-fingerprints`: JA3, JA3S and JA4 in EVE.
    pub fingerprints: bool,
}

/// One connection's handshake.
#[derive(Debug, Default)]
pub struct TlsState {
    dirs: [Direction; 2],
    /// Points reached, a bit per `Point`.
    reached: u8,
}

impl TlsState {
    pub fn reset(&mut self) {
        for d in &mut self.dirs {
            d.reset();
        }
        self.reached = 0;
    }

    fn reach(&mut self, cx: &mut TlsCx, p: Point) {
        if self.reached & 1 << p as u8 == 0 {
            self.reached |= 1 << p as u8;
            cx.out.push((0, p));
        }
    }

    /// The next bytes of one direction, in order.
    pub fn parse(&mut self, cx: &mut TlsCx, to_server: bool, data: &[u8]) {
        let hello = if to_server {
            CLIENT_HELLO
        } else {
            SERVER_HELLO
        };
        let f = self.dirs[usize::from(!to_server)].feed(data, hello);
        cx.counters.not_tls += u64::from(f.not_tls);
        cx.counters.too_long += u64::from(f.too_long);
        cx.counters.certificates += u64::from(f.certificate);
        if f.hello {
            let d = &self.dirs[usize::from(!to_server)];
            let ok = if to_server {
                Hello::client(&d.hello).is_some()
            } else {
                Hello::server(&d.hello).is_some()
            };
            match (ok, to_server) {
                (false, _) => cx.counters.bad_hellos += 1,
                (true, true) => cx.counters.client_hellos += 1,
                (true, false) => cx.counters.server_hellos += 1,
            }
            if to_server {
                self.reach(cx, Point::RequestHeaders);
            }
        }
        // A TLS 1.3 server's certificate is encrypted: its hello is all
        // there is to see.
        let tls13 = !to_server
            && f.hello
            && Hello::server(&self.dirs[1].hello).is_some_and(|h| h.effective_version() == 0x0304);
        if !to_server && (f.done || tls13 || f.not_tls) && !self.dirs[1].hello.is_empty() {
            self.reach(cx, Point::ResponseHeaders);
            self.reach(cx, Point::Complete);
        }
    }

    /// `len` bytes of one direction were lost (ciphertext the stream
    /// skipped, or a hole).
    pub fn gap(&mut self, to_server: bool, len: u64) {
        self.dirs[usize::from(!to_server)].gap(len);
    }

    /// The connection ended: the handshake completes with what it has.
    pub fn close(&mut self, cx: &mut TlsCx) {
        if self.reached == 0 && self.dirs[0].hello.is_empty() {
            return;
        }
        if !self.dirs[1].hello.is_empty() {
            self.reach(cx, Point::ResponseHeaders);
        }
        self.reach(cx, Point::Complete);
    }

    /// Puts the handshake's buffers in `bufs`.
    pub fn load(&self, bufs: &mut TxBuffers) {
        bufs.start_direct(AppProto::Tls, 0, 0);
        let ch = &self.dirs[0].hello;
        if let Some(h) = Hello::client(ch) {
            let b = |k: Kind| Buffer::new(k, Some(true));
            if let Some((s, e)) = h.sni {
                bufs.put(b(Kind::TlsSni), &ch[s..e]);
            }
            for &(s, e) in &h.alpn {
                bufs.put_instance(b(Kind::TlsAlpn), &ch[s..e]);
            }
            let ja3 = hello::ja3(&h);
            bufs.put(b(Kind::Ja3Hash), hello::md5_hex(&ja3).as_bytes());
            bufs.put(b(Kind::Ja3String), ja3.as_bytes());
            bufs.put(b(Kind::Ja4Hash), hello::ja4(&h, ch).as_bytes());
        }
        let b = |k: Kind| Buffer::new(k, Some(false));
        if let Some(h) = Hello::server(&self.dirs[1].hello) {
            let ja3s = hello::ja3s(&h);
            bufs.put(b(Kind::Ja3sHash), hello::md5_hex(&ja3s).as_bytes());
            bufs.put(b(Kind::Ja3sString), ja3s.as_bytes());
        }
        let mut first = true;
        for der in cert::chain(&self.dirs[1].certificate) {
            bufs.put_instance(b(Kind::TlsCerts), der);
            if !std::mem::take(&mut first) {
                continue;
            }
            if let Some(c) = cert::CertInfo::of(der) {
                bufs.put(b(Kind::TlsCertSubject), c.subject.as_bytes());
                bufs.put(b(Kind::TlsCertIssuer), c.issuer.as_bytes());
                bufs.put(b(Kind::TlsCertSerial), c.serial.as_bytes());
                bufs.put(b(Kind::TlsCertFingerprint), c.fingerprint.as_bytes());
                for n in &c.sans {
                    bufs.put_instance(b(Kind::TlsSubjectAltName), n.as_bytes());
                }
            }
        }
    }

    /// The handshake as the EVE writer reads it (`logger::EveTls::of`):
    /// a flags byte, then the client's hello, the server's hello and the
    /// server's first certificate, each after its four-byte length.
    pub fn pack(&self, fingerprints: bool, out: &mut Vec<u8>) {
        out.clear();
        out.push(u8::from(fingerprints));
        let first = cert::chain(&self.dirs[1].certificate).next().unwrap_or(&[]);
        for part in [&self.dirs[0].hello[..], &self.dirs[1].hello[..], first] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
}

/// A handshake record header: type 22, version 3.0–3.4 (SSLv3 to the
/// TLS 1.3 legacy value), a length TLS allows.
pub fn probe(b: &[u8]) -> Probe {
    match b {
        [0x16, 0x03, v, hi, lo, ..] if *v <= 4 => {
            let len = u16::from_be_bytes([*hi, *lo]);
            if len > 0 && len <= (1 << 14) + 2048 {
                Probe::Yes
            } else {
                Probe::No
            }
        }
        [0x16] | [0x16, 0x03] | [0x16, 0x03, _] | [0x16, 0x03, _, _] => Probe::More,
        _ => Probe::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_record_header_is_tls() {
        assert_eq!(probe(&[0x16, 3, 1, 0, 0x40, 1]), Probe::Yes);
        assert_eq!(probe(&[0x16, 3]), Probe::More);
        assert_eq!(probe(&[0x16, 3, 9, 0, 1]), Probe::No);
        assert_eq!(probe(&[0x16, 3, 1, 0, 0]), Probe::No);
        assert_eq!(probe(b"GET / HTTP/1.1"), Probe::No);
    }
}
