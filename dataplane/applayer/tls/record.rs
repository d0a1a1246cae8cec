//! One TLS direction's bytes, record by record: handshake messages are
//! put back together across records (and records across segments), and
//! the hellos and the certificate chain are kept whole for the handshake
//! parser. Once a direction changes cipher spec, its handshake is
//! encrypted and nothing more of it is read; every record header is
//! still checked, and bytes that are not one end the walk (counted by the
//! caller as `not_tls`).

/// A handshake message kept at most (a certificate chain is rarely over
/// 16 KiB; TLS allows 2^24). A longer one is skipped, counted.
pub const MAX_MESSAGE: usize = 64 * 1024;

pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;
pub const CERTIFICATE: u8 = 11;
pub const SERVER_HELLO_DONE: u8 = 14;

/// What a direction's walk found in one delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Found {
    /// A whole hello (this direction's: a ClientHello or a ServerHello).
    pub hello: bool,
    pub certificate: bool,
    /// The server said its part of the handshake is over (ServerHelloDone)
    /// or stopped speaking in clear (ChangeCipherSpec, application data).
    pub done: bool,
    /// Bytes that are not a TLS record: the walk stopped.
    pub not_tls: bool,
    /// A handshake message longer than `MAX_MESSAGE`, skipped.
    pub too_long: bool,
    /// Record-level anomalies, a bit per `super::TlsEvent`.
    pub events: u32,
    /// The body length of a heartbeat record sent encrypted (for the
    /// peer's answer to be compared with).
    pub encrypted_heartbeat: Option<usize>,
}

/// Records in one delivery past which `too_many_records_in_packet` is
/// raised (Suricata's limit).
pub const MAX_RECORDS_PER_DELIVERY: u32 = 255;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Walk {
    #[default]
    Header,
    Body,
    /// Not TLS, or sync lost: nothing more is read.
    Stopped,
}

/// One direction's walk.
#[derive(Debug, Default)]
pub struct Direction {
    walk: Walk,
    hdr: [u8; 5],
    have: usize,
    kind: u8,
    left: usize,
    /// Handshake bytes not yet a whole message.
    hs: Vec<u8>,
    /// A message being skipped (too long): bytes left of it.
    skip: usize,
    /// The direction changed cipher spec: its handshake is encrypted.
    encrypted: bool,
    /// The first bytes of the current record's body (alert and
    /// heartbeat records are judged by them), and how many are in.
    head: [u8; 3],
    head_have: u8,
    /// The last record version seen (for `ssl_version`-like reads).
    pub record_version: u16,
    /// Records seen, and their body bytes.
    pub records: u64,
    pub record_bytes: u64,
    /// The kept messages: this direction's hello and certificate chain
    /// (message bodies, without their four-byte headers).
    pub hello: Vec<u8>,
    pub certificate: Vec<u8>,
}

impl Direction {
    pub fn reset(&mut self) {
        let (mut hs, mut hello, mut cert) = (
            std::mem::take(&mut self.hs),
            std::mem::take(&mut self.hello),
            std::mem::take(&mut self.certificate),
        );
        hs.clear();
        hello.clear();
        cert.clear();
        *self = Direction {
            hs,
            hello,
            certificate: cert,
            ..Direction::default()
        };
    }

    /// `len` bytes were lost. Inside a record's body (ciphertext the
    /// stream skipped), the walk goes on after it; elsewhere it stops.
    pub fn gap(&mut self, len: u64) {
        match self.walk {
            Walk::Body if (len as usize) <= self.left => {
                self.left -= len as usize;
                if self.kind == 22 {
                    // A handshake message lost a piece.
                    self.hs.clear();
                    self.encrypted = true;
                }
                if self.left == 0 {
                    self.walk = Walk::Header;
                    self.have = 0;
                }
            }
            _ => self.walk = Walk::Stopped,
        }
    }

    /// The next bytes of the direction, in order; `hello` is the type of
    /// this direction's hello.
    pub fn feed(&mut self, mut b: &[u8], hello: u8) -> Found {
        use super::TlsEvent as E;
        let mut found = Found::default();
        let mut records = 0u32;
        while !b.is_empty() {
            match self.walk {
                Walk::Stopped => break,
                Walk::Header => {
                    let take = (5 - self.have).min(b.len());
                    self.hdr[self.have..self.have + take].copy_from_slice(&b[..take]);
                    self.have += take;
                    b = &b[take..];
                    if self.have < 5 {
                        break;
                    }
                    let [kind, major, minor, hi, lo] = self.hdr;
                    let len = usize::from(u16::from_be_bytes([hi, lo]));
                    let bad = if !(20..=24).contains(&kind) {
                        Some(E::InvalidRecordType)
                    } else if major != 3 || minor > 4 {
                        Some(E::InvalidRecordVersion)
                    } else if len > (1 << 14) + 2048 {
                        Some(E::InvalidRecordLength)
                    } else {
                        None
                    };
                    if let Some(e) = bad {
                        self.walk = Walk::Stopped;
                        found.not_tls = true;
                        found.events |= e.bit();
                        break;
                    }
                    records += 1;
                    if records == MAX_RECORDS_PER_DELIVERY + 1 {
                        found.events |= E::TooManyRecordsInPacket.bit();
                    }
                    self.head_have = 0;
                    if kind == 24 {
                        found.events |= E::HeartbeatMessage.bit();
                        if self.encrypted {
                            found.encrypted_heartbeat = Some(len);
                        }
                    }
                    if kind == 21 && !self.encrypted && len != 2 {
                        found.events |= E::InvalidAlertMessage.bit();
                    }
                    self.kind = kind;
                    self.left = len;
                    self.record_version = u16::from_be_bytes([major, minor]);
                    self.records += 1;
                    self.record_bytes += len as u64;
                    if kind == 20 {
                        self.encrypted = true;
                    }
                    if matches!(kind, 20 | 23) && hello == SERVER_HELLO {
                        found.done = true;
                    }
                    self.have = 0;
                    self.walk = if len == 0 { Walk::Header } else { Walk::Body };
                }
                Walk::Body => {
                    let take = self.left.min(b.len());
                    if self.kind == 22 && !self.encrypted {
                        self.handshake(&b[..take], hello, &mut found);
                    }
                    if matches!(self.kind, 21 | 24) && !self.encrypted {
                        self.record_head(&b[..take], &mut found);
                    }
                    self.left -= take;
                    b = &b[take..];
                    if self.left == 0 {
                        self.walk = Walk::Header;
                    }
                }
            }
        }
        found
    }

    /// The first body bytes of an alert or heartbeat record in clear:
    /// a fatal alert, a heartbeat of no known type or one whose payload
    /// claims more than the record holds (Heartbleed) are anomalies.
    fn record_head(&mut self, b: &[u8], found: &mut Found) {
        use super::TlsEvent as E;
        let have = usize::from(self.head_have);
        let n = (self.head.len() - have).min(b.len());
        if n == 0 {
            return;
        }
        self.head[have..have + n].copy_from_slice(&b[..n]);
        self.head_have += n as u8;
        let len = self.left;
        match (self.kind, self.head_have) {
            (21, 1) | (21, 2) | (21, 3) if have == 0 && self.head[0] == 2 => {
                found.events |= E::ErrorMessageEncountered.bit();
            }
            (24, 3) => {
                // `left` counts from the record's start here.
                let record = len + have;
                let payload = usize::from(u16::from_be_bytes([self.head[1], self.head[2]]));
                if !matches!(self.head[0], 1 | 2) {
                    found.events |= E::InvalidHeartbeatMessage.bit();
                }
                // Type, length, payload, then at least 16 bytes of padding.
                if 3 + payload + 16 > record {
                    found.events |= E::OverflowHeartbeatMessage.bit();
                }
            }
            _ => {}
        }
    }

    /// Handshake record bytes: whole messages are taken out of them.
    fn handshake(&mut self, mut b: &[u8], hello: u8, found: &mut Found) {
        while !b.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(b.len());
                self.skip -= n;
                b = &b[n..];
                continue;
            }
            // The header first, then the body, into `hs`.
            let need = if self.hs.len() < 4 {
                4 - self.hs.len()
            } else {
                let len = u32::from_be_bytes([0, self.hs[1], self.hs[2], self.hs[3]]) as usize;
                if len > MAX_MESSAGE {
                    found.too_long = true;
                    found.events |= super::TlsEvent::HandshakeInvalidLength.bit();
                    self.skip = len;
                    self.hs.clear();
                    continue;
                }
                4 + len - self.hs.len()
            };
            let n = need.min(b.len());
            self.hs.extend_from_slice(&b[..n]);
            b = &b[n..];
            if self.hs.len() < 4 {
                continue;
            }
            let len = u32::from_be_bytes([0, self.hs[1], self.hs[2], self.hs[3]]) as usize;
            if self.hs.len() == 4 + len && (len <= MAX_MESSAGE) {
                self.message(hello, found);
                self.hs.clear();
            }
        }
    }

    fn message(&mut self, hello: u8, found: &mut Found) {
        let t = self.hs[0];
        let body = &self.hs[4..];
        if t == hello && self.hello.is_empty() {
            self.hello.extend_from_slice(body);
            found.hello = true;
        } else if t == CERTIFICATE && hello == SERVER_HELLO && self.certificate.is_empty() {
            self.certificate.extend_from_slice(body);
            found.certificate = true;
        } else if t == SERVER_HELLO_DONE && hello == SERVER_HELLO {
            found.done = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `msgs` as handshake messages in records of at most `rec` bytes.
    pub(crate) fn records(msgs: &[(u8, Vec<u8>)], rec: usize) -> Vec<u8> {
        let mut hs = Vec::new();
        for (t, body) in msgs {
            hs.push(*t);
            hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            hs.extend_from_slice(body);
        }
        let mut out = Vec::new();
        for c in hs.chunks(rec) {
            out.extend_from_slice(&[22, 3, 1]);
            out.extend_from_slice(&(c.len() as u16).to_be_bytes());
            out.extend_from_slice(c);
        }
        out
    }

    #[test]
    fn a_hello_split_over_records_and_segments_is_whole() {
        let body: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let stream = records(&[(CLIENT_HELLO, body.clone())], 100);
        for step in [1, 7, 64, stream.len()] {
            let mut d = Direction::default();
            let mut hello = false;
            for c in stream.chunks(step) {
                let f = d.feed(c, CLIENT_HELLO);
                assert!(!f.not_tls);
                hello |= f.hello;
            }
            assert!(hello, "step {step}");
            assert_eq!(d.hello, body);
            assert_eq!(d.records, 4);
        }
    }

    #[test]
    fn the_servers_chain_and_done_are_found_and_ciphertext_is_skipped() {
        let mut s = records(
            &[
                (SERVER_HELLO, vec![3, 3, 0]),
                (CERTIFICATE, vec![0, 0, 0]),
                (SERVER_HELLO_DONE, vec![]),
            ],
            1000,
        );
        let mut d = Direction::default();
        let f = d.feed(&s, SERVER_HELLO);
        assert!(f.hello && f.certificate && f.done);
        // A ChangeCipherSpec, then an encrypted Finished the walk does not
        // read, then a record whose body the stream skipped (a gap).
        s = vec![20, 3, 3, 0, 1, 1, 22, 3, 3, 0, 4, 0xde, 0xad, 0xbe, 0xef];
        let f = d.feed(&s, SERVER_HELLO);
        assert!(f.done && !f.not_tls);
        assert_eq!(d.hello, vec![3, 3, 0]);
        d.feed(&[23, 3, 3, 0, 100], SERVER_HELLO);
        d.gap(100);
        assert!(!d.feed(&[23, 3, 3, 0, 1, 9], SERVER_HELLO).not_tls);
        // Not a record: the walk stops.
        assert!(d.feed(b"HTTP/1.1 200 OK\r\n", SERVER_HELLO).not_tls);
        assert!(!d.feed(b"more", SERVER_HELLO).not_tls);
    }

    #[test]
    fn heartbeats_alerts_and_bad_headers_raise_suricatas_events() {
        use crate::applayer::tls::TlsEvent as E;
        // Heartbleed: a request claiming 16 KiB of payload in 19 bytes.
        let mut d = Direction::default();
        let mut hb = vec![24, 3, 3, 0, 19, 1, 0x40, 0x00];
        hb.extend_from_slice(&[0; 16]);
        let f = d.feed(&hb[..6], CLIENT_HELLO);
        let g = d.feed(&hb[6..], CLIENT_HELLO);
        let ev = f.events | g.events;
        assert_eq!(
            ev,
            E::HeartbeatMessage.bit() | E::OverflowHeartbeatMessage.bit()
        );
        // An honest one, of an unknown type.
        let mut hb = vec![24, 3, 3, 0, 21, 9, 0, 2, 7, 7];
        hb.extend_from_slice(&[0; 16]);
        let f = Direction::default().feed(&hb, CLIENT_HELLO);
        assert_eq!(
            f.events,
            E::HeartbeatMessage.bit() | E::InvalidHeartbeatMessage.bit()
        );
        // A fatal alert in clear; an alert record of three bytes.
        let f = Direction::default().feed(&[21, 3, 3, 0, 2, 2, 40], SERVER_HELLO);
        assert_eq!(f.events, E::ErrorMessageEncountered.bit());
        let f = Direction::default().feed(&[21, 3, 3, 0, 3, 1, 0, 0], SERVER_HELLO);
        assert_eq!(f.events, E::InvalidAlertMessage.bit());
        // Headers that are not TLS, each by what is wrong.
        let f = Direction::default().feed(&[25, 3, 3, 0, 1, 0], CLIENT_HELLO);
        assert_eq!(f.events, E::InvalidRecordType.bit());
        let f = Direction::default().feed(&[22, 2, 0, 0, 1, 0], CLIENT_HELLO);
        assert_eq!(f.events, E::InvalidRecordVersion.bit());
        let f = Direction::default().feed(&[22, 3, 3, 0x50, 0, 0], CLIENT_HELLO);
        assert_eq!(f.events, E::InvalidRecordLength.bit());
        // More than 255 records in one delivery.
        let many: Vec<u8> = (0..300).flat_map(|_| [23u8, 3, 3, 0, 1, 0]).collect();
        let f = Direction::default().feed(&many, CLIENT_HELLO);
        assert_eq!(f.events, E::TooManyRecordsInPacket.bit());
    }

    #[test]
    fn a_message_past_the_limit_is_skipped_and_said() {
        let body = vec![7u8; MAX_MESSAGE + 1];
        let s = records(&[(CERTIFICATE, body), (SERVER_HELLO, vec![3, 3])], 16384);
        let mut d = Direction::default();
        let f = d.feed(&s, SERVER_HELLO);
        assert!(f.too_long && f.hello && !f.certificate);
    }
}
