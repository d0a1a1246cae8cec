//! UDP headers. The length field bounds the datagram; a length below the
//! header or beyond the IP payload is counted as a lie.

use super::{be16, DecodeError, Field};

const SRC_PORT: Field = 0..2;
const DST_PORT: Field = 2..4;
const LENGTH: Field = 4..6;
const CHECKSUM: Field = 6..8;
pub const HEADER_LEN: usize = 8;

#[derive(Debug, Clone, Copy)]
pub struct UdpDatagram<'a> {
    buf: &'a [u8],
}

impl<'a> UdpDatagram<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::UdpTruncated);
        }
        let len = usize::from(be16(&buf[LENGTH]));
        if len < HEADER_LEN || len > buf.len() {
            return Err(DecodeError::UdpBadLen);
        }
        Ok(UdpDatagram { buf: &buf[..len] })
    }

    pub fn src_port(&self) -> u16 {
        be16(&self.buf[SRC_PORT])
    }

    pub fn dst_port(&self) -> u16 {
        be16(&self.buf[DST_PORT])
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.len() == HEADER_LEN
    }

    pub fn checksum(&self) -> u16 {
        be16(&self.buf[CHECKSUM])
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 53535 -> 53, length 12, checksum 0xbeef, payload "abcd".
    static DATAGRAM_BYTES: [u8; 12] = [
        0xd1, 0x1f, 0x00, 0x35, 0x00, 0x0c, 0xbe, 0xef, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn parses_header() {
        let d = UdpDatagram::new_checked(&DATAGRAM_BYTES).unwrap();
        assert_eq!(d.src_port(), 53535);
        assert_eq!(d.dst_port(), 53);
        assert_eq!(d.len(), 12);
        assert_eq!(d.checksum(), 0xbeef);
        assert_eq!(d.payload(), b"abcd");
    }

    #[test]
    fn malformed_datagrams_are_named() {
        assert_eq!(
            UdpDatagram::new_checked(&DATAGRAM_BYTES[..7]).unwrap_err(),
            DecodeError::UdpTruncated
        );
        let mut b = DATAGRAM_BYTES;
        b[5] = 4;
        assert_eq!(
            UdpDatagram::new_checked(&b).unwrap_err(),
            DecodeError::UdpBadLen
        );
        b[5] = 13;
        assert_eq!(
            UdpDatagram::new_checked(&b).unwrap_err(),
            DecodeError::UdpBadLen
        );
    }
}
