//! ICMP and ICMPv6 headers: type, code, and the echo identifier that lets a
//! request and its reply share a flow.

use super::{be16, DecodeError};

pub const HEADER_LEN: usize = 8;

pub const V4_ECHO_REPLY: u8 = 0;
pub const V4_ECHO_REQUEST: u8 = 8;
pub const V6_ECHO_REQUEST: u8 = 128;
pub const V6_ECHO_REPLY: u8 = 129;

/// A view of an ICMP or ICMPv6 message; the two share the first 8 bytes.
#[derive(Debug, Clone, Copy)]
pub struct IcmpMessage<'a> {
    buf: &'a [u8],
    v6: bool,
}

impl<'a> IcmpMessage<'a> {
    pub fn new_checked(buf: &'a [u8], v6: bool) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(if v6 {
                DecodeError::Icmpv6Truncated
            } else {
                DecodeError::Icmpv4Truncated
            });
        }
        Ok(IcmpMessage { buf, v6 })
    }

    pub fn msg_type(&self) -> u8 {
        self.buf[0]
    }

    pub fn code(&self) -> u8 {
        self.buf[1]
    }

    pub fn checksum(&self) -> u16 {
        be16(&self.buf[2..4])
    }

    pub fn is_echo(&self) -> bool {
        if self.v6 {
            matches!(self.msg_type(), V6_ECHO_REQUEST | V6_ECHO_REPLY)
        } else {
            matches!(self.msg_type(), V4_ECHO_REQUEST | V4_ECHO_REPLY)
        }
    }

    /// The echo identifier for echo requests and replies.
    pub fn echo_ident(&self) -> Option<u16> {
        self.is_echo().then(|| be16(&self.buf[4..6]))
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ECHO_BYTES: [u8; 10] = [8, 0, 0xf7, 0xfe, 0x12, 0x34, 0x00, 0x01, 0xaa, 0xbb];

    #[test]
    fn parses_echo() {
        let m = IcmpMessage::new_checked(&ECHO_BYTES, false).unwrap();
        assert_eq!(m.msg_type(), 8);
        assert_eq!(m.code(), 0);
        assert_eq!(m.checksum(), 0xf7fe);
        assert_eq!(m.echo_ident(), Some(0x1234));
        assert_eq!(m.payload(), &[0xaa, 0xbb]);
        // The same bytes as ICMPv6 are not an echo (128/129 are).
        assert_eq!(
            IcmpMessage::new_checked(&ECHO_BYTES, true)
                .unwrap()
                .echo_ident(),
            None
        );
    }

    #[test]
    fn truncation_names_the_version() {
        assert_eq!(
            IcmpMessage::new_checked(&ECHO_BYTES[..7], false).unwrap_err(),
            DecodeError::Icmpv4Truncated
        );
        assert_eq!(
            IcmpMessage::new_checked(&ECHO_BYTES[..7], true).unwrap_err(),
            DecodeError::Icmpv6Truncated
        );
    }
}
