//! TLS. Today: recognising a TLS connection by its first record header
//! (the app layer's probe) and, in `follower`, walking a direction record
//! by record so that reassembly hands ciphertext to nobody. The handshake
//! parser (SNI, certificates, fingerprints) plugs in here.

pub mod follower;

use super::Probe;

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
