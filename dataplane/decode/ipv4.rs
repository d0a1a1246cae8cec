//! IPv4 headers, options included. `new_checked` validates version, header
//! length, total length and the option list once; the view is then bounded by
//! the total length, so Ethernet padding never reaches the transport layer.

use super::{be16, DecodeError, Field, IpProtocol};

const VER_IHL: usize = 0;
const TOTAL_LEN: Field = 2..4;
const IDENT: Field = 4..6;
const FLAGS_FRAG: Field = 6..8;
const TTL: usize = 8;
const PROTOCOL: usize = 9;
const CHECKSUM: Field = 10..12;
const SRC: Field = 12..16;
const DST: Field = 16..20;
/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// A zero-copy view of an IPv4 datagram, bounded by its total length.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Ipv4Packet<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < MIN_HEADER_LEN {
            return Err(DecodeError::Ipv4Truncated);
        }
        if buf[VER_IHL] >> 4 != 4 {
            return Err(DecodeError::Ipv4BadVersion);
        }
        let header_len = usize::from(buf[VER_IHL] & 0x0f) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(DecodeError::Ipv4BadHeaderLen);
        }
        if header_len > buf.len() {
            return Err(DecodeError::Ipv4Truncated);
        }
        let total_len = usize::from(be16(&buf[TOTAL_LEN]));
        if total_len < header_len {
            return Err(DecodeError::Ipv4BadTotalLen);
        }
        if total_len > buf.len() {
            // The header claims more bytes than the frame carries: the
            // capture cut it (snaplen) or the length lies. Suricata counts
            // both as a truncated packet; so do we.
            return Err(DecodeError::Ipv4Truncated);
        }
        check_options(&buf[MIN_HEADER_LEN..header_len])?;
        Ok(Ipv4Packet {
            buf: &buf[..total_len],
        })
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buf[VER_IHL] & 0x0f) * 4
    }

    pub fn total_len(&self) -> usize {
        self.buf.len()
    }

    pub fn ident(&self) -> u16 {
        be16(&self.buf[IDENT])
    }

    pub fn dont_frag(&self) -> bool {
        self.buf[FLAGS_FRAG.start] & 0x40 != 0
    }

    pub fn more_frags(&self) -> bool {
        self.buf[FLAGS_FRAG.start] & 0x20 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        usize::from(be16(&self.buf[FLAGS_FRAG]) & 0x1fff) * 8
    }

    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buf[TTL]
    }

    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buf[PROTOCOL])
    }

    pub fn checksum(&self) -> u16 {
        be16(&self.buf[CHECKSUM])
    }

    pub fn src(&self) -> [u8; 4] {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buf[SRC]);
        a
    }

    pub fn dst(&self) -> [u8; 4] {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buf[DST]);
        a
    }

    pub fn options(&self) -> &'a [u8] {
        &self.buf[MIN_HEADER_LEN..self.header_len()]
    }

    /// The transport bytes, without the Ethernet padding that may follow.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len()..]
    }
}

/// Walks the option list: EOL ends it, NOP is one byte, every other option
/// carries a length of at least 2 that must fit in the header.
fn check_options(mut opts: &[u8]) -> Result<(), DecodeError> {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return Ok(()),
            1 => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1).ok_or(DecodeError::Ipv4BadOptions)?);
                if len < 2 || len > opts.len() {
                    return Err(DecodeError::Ipv4BadOptions);
                }
                opts = &opts[len..];
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10.0.0.1 -> 10.0.0.2, TCP, with a 4-byte router-alert option (ihl 6),
    // total length 28 (header 24 + 4 payload bytes), then 2 bytes of padding.
    static PACKET_BYTES: [u8; 30] = [
        0x46, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, 0x94, 0x04, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00,
    ];

    #[test]
    fn parses_header_with_options_and_trims_padding() {
        let p = Ipv4Packet::new_checked(&PACKET_BYTES).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Tcp);
        assert_eq!(p.src(), [10, 0, 0, 1]);
        assert_eq!(p.dst(), [10, 0, 0, 2]);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn fragment_fields() {
        let mut b = PACKET_BYTES;
        b[6] = 0x20; // MF
        b[7] = 0x03; // offset 3 * 8
        let p = Ipv4Packet::new_checked(&b).unwrap();
        assert!(p.more_frags());
        assert_eq!(p.frag_offset(), 24);
        assert!(p.is_fragment());
    }

    #[test]
    fn malformed_headers_are_named() {
        let err = |b: &[u8]| Ipv4Packet::new_checked(b).unwrap_err();
        assert_eq!(err(&PACKET_BYTES[..19]), DecodeError::Ipv4Truncated);
        let mut b = PACKET_BYTES;
        b[0] = 0x66;
        assert_eq!(err(&b), DecodeError::Ipv4BadVersion);
        b[0] = 0x44;
        assert_eq!(err(&b), DecodeError::Ipv4BadHeaderLen);
        b[0] = 0x4f; // 60-byte header in a 30-byte buffer
        assert_eq!(err(&b), DecodeError::Ipv4Truncated);
        let mut b = PACKET_BYTES;
        b[3] = 0x10; // total length 16 < header length 24
        assert_eq!(err(&b), DecodeError::Ipv4BadTotalLen);
        b[3] = 0xff; // total length beyond the frame
        assert_eq!(err(&b), DecodeError::Ipv4Truncated);
        let mut b = PACKET_BYTES;
        b[21] = 0x09; // option length runs past the header
        assert_eq!(err(&b), DecodeError::Ipv4BadOptions);
        b[21] = 0x01; // option length below 2
        assert_eq!(err(&b), DecodeError::Ipv4BadOptions);
    }

    #[test]
    fn every_prefix_is_safe() {
        for n in 0..PACKET_BYTES.len() {
            let _ = Ipv4Packet::new_checked(&PACKET_BYTES[..n]);
        }
    }
}
