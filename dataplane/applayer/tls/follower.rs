//! Following a TLS direction record by record, so that ciphertext is not
//! scanned and nothing else escapes scanning.
//!
//! A direction whose stream starts with a handshake record header is walked
//! record by record. Record bodies are skipped as ciphertext only once the
//! handshake is real: this direction's hello (a ClientHello to the server,
//! a ServerHello to the client) was parsed and the peer's was too. Every
//! record header is still validated after that; bytes that are not a TLS
//! record header (a type other than 20–24, a version other than 3.x, a
//! length past 2^14 + 2048, an empty handshake, alert or ChangeCipherSpec
//! record) end the walk: from there the direction is scanned as plaintext
//! and the loss of sync is reported. A ten-byte `16 03 01 00 00 17 03 03 00
//! 00` in front of a cleartext request blinds nothing.

/// The next run of delivered bytes: scan it, or skip it as ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Scan(usize),
    Skip(usize),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// Nothing delivered yet.
    #[default]
    Unknown,
    /// Not TLS, or record sync was lost: everything is scanned.
    Plain,
    /// Inside TLS records.
    Records,
}

/// Largest record body TLS allows (2^14 plus expansion).
const MAX_RECORD: u32 = (1 << 14) + 2048;
/// Handshake message types of the two hellos.
pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;
/// A hello body holds at least its version, 32 random bytes and a session
/// id length.
const MIN_HELLO: u32 = 2 + 32 + 1;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsFollower {
    state: State,
    /// The record header being read, and how much of it is in.
    hdr: [u8; 5],
    have: u8,
    /// Body bytes left in the current record, and its content type.
    left: u32,
    kind: u8,
    /// The first bytes of the current handshake body (type, length,
    /// version), and how many are in.
    hs: [u8; 6],
    hs_have: u8,
    /// This direction's hello was parsed.
    pub hello: bool,
    /// Record sync was lost: the caller reports it once and clears it.
    pub lost_sync: bool,
    /// Ciphertext was skipped: plaintext after it does not follow on.
    pub skipped: bool,
}

impl TlsFollower {
    /// Whether the direction is being walked as TLS records.
    pub fn in_records(&self) -> bool {
        self.state == State::Records
    }

    /// The next run of `b`, delivered from stream offset `at`. `hello`:
    /// the handshake type of this direction's hello; `peer_hello`: the
    /// other direction's hello was parsed.
    pub fn next_run(&mut self, b: &[u8], at: u64, hello: u8, peer_hello: bool) -> Run {
        if self.state == State::Unknown {
            self.state = if at == 0 && b.first() == Some(&0x16) {
                State::Records
            } else {
                State::Plain
            };
        }
        let mut i = 0;
        while i < b.len() {
            if self.state != State::Records {
                return Run::Scan(b.len());
            }
            if self.left > 0 {
                let secret = matches!(self.kind, 20 | 21 | 23) && self.hello && peer_hello;
                let n = (self.left as usize).min(b.len() - i);
                if secret {
                    if i > 0 {
                        return Run::Scan(i);
                    }
                    self.left -= n as u32;
                    self.skipped = true;
                    return Run::Skip(n);
                }
                if self.kind == 22 {
                    for &x in &b[i..i + n] {
                        self.handshake_byte(x, hello);
                    }
                }
                self.left -= n as u32;
                i += n;
                continue;
            }
            self.hdr[usize::from(self.have)] = b[i];
            self.have += 1;
            i += 1;
            if self.have < 5 {
                continue;
            }
            self.have = 0;
            let [kind, major, minor, l0, l1] = self.hdr;
            let len = u32::from(u16::from_be_bytes([l0, l1]));
            let valid = (20..=24).contains(&kind)
                && major == 3
                && minor <= 4
                && len <= MAX_RECORD
                && (len > 0 || kind == 23);
            if !valid {
                self.state = State::Plain;
                self.lost_sync = true;
                return Run::Scan(b.len());
            }
            self.kind = kind;
            self.left = len;
            self.hs_have = 0;
        }
        Run::Scan(b.len())
    }

    /// One byte of a handshake record's body: the start of a hello is
    /// checked for its type, a plausible length and a 3.x version.
    fn handshake_byte(&mut self, x: u8, hello: u8) {
        if self.hello || usize::from(self.hs_have) >= self.hs.len() {
            return;
        }
        self.hs[usize::from(self.hs_have)] = x;
        self.hs_have += 1;
        if usize::from(self.hs_have) == self.hs.len() {
            let [t, a, b, c, major, _] = self.hs;
            let len = u32::from_be_bytes([0, a, b, c]);
            self.hello = t == hello && len >= MIN_HELLO && major == 3;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `b` through `f` in pieces of `step`; returns the scanned bytes.
    fn scanned(f: &mut TlsFollower, b: &[u8], step: usize, hello: u8, peer: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        for piece in b.chunks(step) {
            let mut p = piece;
            while !p.is_empty() {
                match f.next_run(p, at, hello, peer) {
                    Run::Scan(n) => {
                        out.extend_from_slice(&p[..n]);
                        p = &p[n..];
                        at += n as u64;
                    }
                    Run::Skip(n) => {
                        p = &p[n..];
                        at += n as u64;
                    }
                }
            }
        }
        out
    }

    fn client_hello() -> Vec<u8> {
        let mut body = vec![CLIENT_HELLO, 0, 0, 40, 3, 3];
        body.extend_from_slice(&[0xaa; 38]);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(body.len() as u16).to_be_bytes());
        rec.extend_from_slice(&body);
        rec
    }

    #[test]
    fn ciphertext_is_skipped_once_both_hellos_are_real() {
        let mut stream = client_hello();
        stream.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
        stream.extend_from_slice(&[0x17, 3, 3, 0, 3, b'x', b'y', b'z']);
        for step in [1, 3, stream.len()] {
            let mut f = TlsFollower::default();
            let got = scanned(&mut f, &stream, step, CLIENT_HELLO, true);
            assert!(f.hello && !f.lost_sync);
            let mut want = client_hello();
            want.extend_from_slice(&[0x14, 3, 3, 0, 1]);
            want.extend_from_slice(&[0x17, 3, 3, 0, 3]);
            assert_eq!(got, want, "step {step}: headers scanned, bodies skipped");
            // Without the peer's hello nothing is taken for ciphertext.
            let mut f = TlsFollower::default();
            assert_eq!(scanned(&mut f, &stream, step, CLIENT_HELLO, false), stream);
        }
    }

    #[test]
    fn a_fake_record_prefix_blinds_nothing() {
        let mut stream = vec![0x16, 3, 1, 0, 0, 0x17, 3, 3, 0, 0];
        stream.extend_from_slice(b"POST /v1/chat HTTP/1.1\r\n");
        for peer in [false, true] {
            let mut f = TlsFollower::default();
            assert_eq!(scanned(&mut f, &stream, 4, CLIENT_HELLO, peer), stream);
            assert!(f.lost_sync, "an empty handshake record is no record");
        }
        // After a real handshake, plaintext where a record header should
        // be resumes scanning and says so.
        let mut stream = client_hello();
        stream.extend_from_slice(&[0x17, 3, 3, 0, 2, 0xee, 0xee]);
        stream.extend_from_slice(b"GET /admin HTTP/1.1\r\n");
        let mut f = TlsFollower::default();
        let got = scanned(&mut f, &stream, 7, CLIENT_HELLO, true);
        assert!(f.lost_sync && f.skipped);
        assert!(got.ends_with(b"GET /admin HTTP/1.1\r\n"));
        assert!(!got.windows(2).any(|w| w == [0xee, 0xee]));
    }

    #[test]
    fn not_tls_is_plain_and_the_wrong_hello_is_no_hello() {
        let mut f = TlsFollower::default();
        assert_eq!(
            f.next_run(b"\x16 POST", 5, CLIENT_HELLO, true),
            Run::Scan(6)
        );
        assert!(!f.in_records(), "TLS starts at the stream's first byte");
        let mut f = TlsFollower::default();
        scanned(&mut f, &client_hello(), 64, SERVER_HELLO, true);
        assert!(!f.hello, "a ClientHello is not the server's hello");
    }
}
