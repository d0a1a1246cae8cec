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

/// Events a TLS handshake can carry (`app-layer-event:tls.NAME`), with
/// Suricata 8's names; each is raised where Suricata raises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsEvent {
    InvalidRecordType,
    InvalidRecordVersion,
    InvalidRecordLength,
    InvalidHandshakeMessage,
    HandshakeInvalidLength,
    HeartbeatMessage,
    InvalidHeartbeatMessage,
    OverflowHeartbeatMessage,
    DataleakHeartbeatMismatch,
    MultipleSniExtensions,
    InvalidSniType,
    InvalidSniLength,
    TooManyRecordsInPacket,
    InvalidAlertMessage,
    ErrorMessageEncountered,
    InvalidCertificate,
    CertificateInvalidLength,
    CertificateInvalidVersion,
    CertificateInvalidSerial,
    CertificateInvalidAlgorithmidentifier,
    CertificateInvalidX509name,
    CertificateInvalidDate,
    CertificateInvalidExtensions,
    CertificateInvalidDer,
}

impl TlsEvent {
    pub const ALL: [TlsEvent; 24] = [
        TlsEvent::InvalidRecordType,
        TlsEvent::InvalidRecordVersion,
        TlsEvent::InvalidRecordLength,
        TlsEvent::InvalidHandshakeMessage,
        TlsEvent::HandshakeInvalidLength,
        TlsEvent::HeartbeatMessage,
        TlsEvent::InvalidHeartbeatMessage,
        TlsEvent::OverflowHeartbeatMessage,
        TlsEvent::DataleakHeartbeatMismatch,
        TlsEvent::MultipleSniExtensions,
        TlsEvent::InvalidSniType,
        TlsEvent::InvalidSniLength,
        TlsEvent::TooManyRecordsInPacket,
        TlsEvent::InvalidAlertMessage,
        TlsEvent::ErrorMessageEncountered,
        TlsEvent::InvalidCertificate,
        TlsEvent::CertificateInvalidLength,
        TlsEvent::CertificateInvalidVersion,
        TlsEvent::CertificateInvalidSerial,
        TlsEvent::CertificateInvalidAlgorithmidentifier,
        TlsEvent::CertificateInvalidX509name,
        TlsEvent::CertificateInvalidDate,
        TlsEvent::CertificateInvalidExtensions,
        TlsEvent::CertificateInvalidDer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TlsEvent::InvalidRecordType => "invalid_record_type",
            TlsEvent::InvalidRecordVersion => "invalid_record_version",
            TlsEvent::InvalidRecordLength => "invalid_record_length",
            TlsEvent::InvalidHandshakeMessage => "invalid_handshake_message",
            TlsEvent::HandshakeInvalidLength => "handshake_invalid_length",
            TlsEvent::HeartbeatMessage => "heartbeat_message",
            TlsEvent::InvalidHeartbeatMessage => "invalid_heartbeat_message",
            TlsEvent::OverflowHeartbeatMessage => "overflow_heartbeat_message",
            TlsEvent::DataleakHeartbeatMismatch => "dataleak_heartbeat_mismatch",
            TlsEvent::MultipleSniExtensions => "multiple_sni_extensions",
            TlsEvent::InvalidSniType => "invalid_sni_type",
            TlsEvent::InvalidSniLength => "invalid_sni_length",
            TlsEvent::TooManyRecordsInPacket => "too_many_records_in_packet",
            TlsEvent::InvalidAlertMessage => "invalid_alert_message",
            TlsEvent::ErrorMessageEncountered => "error_message_encountered",
            TlsEvent::InvalidCertificate => "invalid_certificate",
            TlsEvent::CertificateInvalidLength => "certificate_invalid_length",
            TlsEvent::CertificateInvalidVersion => "certificate_invalid_version",
            TlsEvent::CertificateInvalidSerial => "certificate_invalid_serial",
            TlsEvent::CertificateInvalidAlgorithmidentifier => {
                "certificate_invalid_algorithmidentifier"
            }
            TlsEvent::CertificateInvalidX509name => "certificate_invalid_x509name",
            TlsEvent::CertificateInvalidDate => "certificate_invalid_date",
            TlsEvent::CertificateInvalidExtensions => "certificate_invalid_extensions",
            TlsEvent::CertificateInvalidDer => "certificate_invalid_der",
        }
    }

    pub fn bit(self) -> u32 {
        1 << self as u32
    }

    /// The event of this name, or why a rule on it cannot be matched:
    /// Suricata's names Tollgate does not raise (the rule is skipped and
    /// says so), and names Suricata 8 does not have either.
    pub fn of_name(n: &str) -> Result<TlsEvent, String> {
        if let Some(e) = TlsEvent::ALL.into_iter().find(|e| e.name() == n) {
            return Ok(e);
        }
        Err(match n {
            "invalid_sslv2_header" | "invalid_ssl_record" => {
                format!("app-layer-event:tls.{n} (SSLv2 records are not parsed)")
            }
            "invalid_tls_header"
            | "certificate_invalid_subject"
            | "certificate_invalid_issuer"
            | "certificate_invalid_validity"
            | "too_many_subject_alternative_names" => {
                format!("app-layer-event:tls.{n} (an event Tollgate does not raise)")
            }
            _ => format!("app-layer-event:tls.{n} (Suricata 8 has no such event either)"),
        })
    }
}

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
    /// Events raised, a bit per `TlsEvent`.
    events: u32,
    /// Each direction's last encrypted heartbeat record's length, until
    /// the peer answers (`dataleak_heartbeat_mismatch`).
    heartbeat: [Option<usize>; 2],
}

impl TlsState {
    pub fn reset(&mut self) {
        for d in &mut self.dirs {
            d.reset();
        }
        self.reached = 0;
        self.events = 0;
        self.heartbeat = [None; 2];
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
        let di = usize::from(!to_server);
        let f = self.dirs[di].feed(data, hello);
        cx.counters.not_tls += u64::from(f.not_tls);
        cx.counters.too_long += u64::from(f.too_long);
        cx.counters.certificates += u64::from(f.certificate);
        self.events |= f.events;
        if let Some(len) = f.encrypted_heartbeat {
            // An answer to the peer's heartbeat is as long as it was.
            match self.heartbeat[1 - di].take() {
                Some(asked) if asked != len => {
                    self.events |= TlsEvent::DataleakHeartbeatMismatch.bit()
                }
                Some(_) => {}
                None => self.heartbeat[di] = Some(len),
            }
        }
        if f.certificate {
            if let Some(der) = cert::chain(&self.dirs[1].certificate).next() {
                if let Err(e) = cert::check(der) {
                    self.events |= e.bit() | TlsEvent::InvalidHandshakeMessage.bit();
                }
            }
        }
        if f.hello {
            let d = &self.dirs[di];
            let ok = if to_server {
                match Hello::client(&d.hello) {
                    Some(h) => {
                        self.events |= h.sni_events;
                        true
                    }
                    None => false,
                }
            } else {
                Hello::server(&d.hello).is_some()
            };
            if !ok {
                self.events |= TlsEvent::InvalidHandshakeMessage.bit();
            }
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
        bufs.start_direct(AppProto::Tls, 0, self.events);
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
            bufs.put_number(b(Kind::TlsVersion), u64::from(h.effective_version()));
        }
        let b = |k: Kind| Buffer::new(k, Some(false));
        if let Some(h) = Hello::server(&self.dirs[1].hello) {
            let ja3s = hello::ja3s(&h);
            bufs.put(b(Kind::Ja3sHash), hello::md5_hex(&ja3s).as_bytes());
            bufs.put(b(Kind::Ja3sString), ja3s.as_bytes());
            bufs.put_number(b(Kind::TlsVersion), u64::from(h.effective_version()));
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
