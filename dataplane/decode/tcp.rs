//! TCP headers and their options. `new_checked` validates the data offset and
//! walks the option list once; the window-scale option is kept because flow
//! tracking needs it to check RST sequence numbers against the window.

use super::{be16, be32, DecodeError, Field};

const SRC_PORT: Field = 0..2;
const DST_PORT: Field = 2..4;
const SEQ: Field = 4..8;
const ACK: Field = 8..12;
const OFFSET: usize = 12;
const FLAGS: usize = 13;
const WINDOW: Field = 14..16;
const CHECKSUM: Field = 16..18;
pub const MIN_HEADER_LEN: usize = 20;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK_FLAG: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_WSCALE: u8 = 3;

#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    buf: &'a [u8],
    wscale: Option<u8>,
}

impl<'a> TcpSegment<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < MIN_HEADER_LEN {
            return Err(DecodeError::TcpTruncated);
        }
        let header_len = usize::from(buf[OFFSET] >> 4) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(DecodeError::TcpBadHeaderLen);
        }
        if header_len > buf.len() {
            return Err(DecodeError::TcpTruncated);
        }
        let wscale = parse_options(&buf[MIN_HEADER_LEN..header_len])?;
        Ok(TcpSegment { buf, wscale })
    }

    pub fn src_port(&self) -> u16 {
        be16(&self.buf[SRC_PORT])
    }

    pub fn dst_port(&self) -> u16 {
        be16(&self.buf[DST_PORT])
    }

    pub fn seq(&self) -> u32 {
        be32(&self.buf[SEQ])
    }

    pub fn ack(&self) -> u32 {
        be32(&self.buf[ACK])
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buf[OFFSET] >> 4) * 4
    }

    pub fn flags(&self) -> u8 {
        self.buf[FLAGS]
    }

    pub fn window(&self) -> u16 {
        be16(&self.buf[WINDOW])
    }

    pub fn checksum(&self) -> u16 {
        be16(&self.buf[CHECKSUM])
    }

    /// The window-scale shift from the options, if the segment carries one
    /// (clamped to 14 as RFC 7323 says).
    pub fn wscale(&self) -> Option<u8> {
        self.wscale
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len()..]
    }
}

fn parse_options(mut opts: &[u8]) -> Result<Option<u8>, DecodeError> {
    let mut wscale = None;
    while let Some(&kind) = opts.first() {
        match kind {
            OPT_EOL => break,
            OPT_NOP => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1).ok_or(DecodeError::TcpBadOptions)?);
                if len < 2 || len > opts.len() {
                    return Err(DecodeError::TcpBadOptions);
                }
                if kind == OPT_WSCALE {
                    if len != 3 {
                        return Err(DecodeError::TcpBadOptions);
                    }
                    wscale = Some(opts[2].min(14));
                }
                opts = &opts[len..];
            }
        }
    }
    Ok(wscale)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 40000 -> 443, seq 1, ack 0, SYN, window 64240, options: MSS 1460, NOP,
    // wscale 7, SACK-permitted, EOL; then no payload.
    static SEGMENT_BYTES: [u8; 32] = [
        0x9c, 0x40, 0x01, 0xbb, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x02, 0xfa,
        0xf0, 0x12, 0x34, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07, 0x04, 0x02,
        0x00, 0x00,
    ];

    #[test]
    fn parses_header_and_options() {
        let s = TcpSegment::new_checked(&SEGMENT_BYTES).unwrap();
        assert_eq!(s.src_port(), 40000);
        assert_eq!(s.dst_port(), 443);
        assert_eq!(s.seq(), 1);
        assert_eq!(s.ack(), 0);
        assert_eq!(s.header_len(), 32);
        assert_eq!(s.flags(), SYN);
        assert_eq!(s.window(), 64240);
        assert_eq!(s.checksum(), 0x1234);
        assert_eq!(s.wscale(), Some(7));
        assert!(s.payload().is_empty());
    }

    #[test]
    fn malformed_segments_are_named() {
        let err = |b: &[u8]| TcpSegment::new_checked(b).unwrap_err();
        assert_eq!(err(&SEGMENT_BYTES[..19]), DecodeError::TcpTruncated);
        let mut b = SEGMENT_BYTES;
        b[12] = 0x40; // data offset 16 bytes
        assert_eq!(err(&b), DecodeError::TcpBadHeaderLen);
        b[12] = 0xf0; // data offset 60 bytes in a 32-byte buffer
        assert_eq!(err(&b), DecodeError::TcpTruncated);
        let mut b = SEGMENT_BYTES;
        b[21] = 0x20; // MSS option length past the header
        assert_eq!(err(&b), DecodeError::TcpBadOptions);
        let mut b = SEGMENT_BYTES;
        b[26] = 0x04; // wscale with length 4
        assert_eq!(err(&b), DecodeError::TcpBadOptions);
    }

    #[test]
    fn every_prefix_is_safe() {
        for n in 0..SEGMENT_BYTES.len() {
            let _ = TcpSegment::new_checked(&SEGMENT_BYTES[..n]);
        }
    }
}
