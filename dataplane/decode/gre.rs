//! GRE (RFC 2784, with RFC 2890's key and sequence number): IP protocol 47
//! carrying another packet. Followed one level deep when it carries an
//! Ethernet frame (transparent Ethernet bridging, 0x6558), IPv4 or IPv6;
//! anything else (PPTP's enhanced GRE, ERSPAN …) stays an opaque payload.

use super::DecodeError;

/// The IP protocol number of GRE.
pub const PROTO: u8 = 47;
/// Protocol types followed.
pub const TEB: u16 = 0x6558;
pub const IPV4: u16 = 0x0800;
pub const IPV6: u16 = 0x86dd;

/// A GRE header: the protocol it carries and how long it is; None for a
/// version this decoder does not follow.
pub fn parse(b: &[u8]) -> Result<Option<(u16, usize)>, DecodeError> {
    if b.len() < 4 {
        return Err(DecodeError::GreTruncated);
    }
    if b[1] & 0x07 != 0 {
        return Ok(None);
    }
    let flags = b[0];
    let mut len = 4;
    if flags & 0xc0 != 0 {
        // Checksum (and the reserved word with it), or routing present.
        len += 4;
    }
    if flags & 0x20 != 0 {
        len += 4;
    }
    if flags & 0x10 != 0 {
        len += 4;
    }
    if b.len() < len {
        return Err(DecodeError::GreTruncated);
    }
    Ok(Some((u16::from_be_bytes([b[2], b[3]]), len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_with_their_optional_words() {
        assert_eq!(parse(&[0, 0, 0x65, 0x58]), Ok(Some((TEB, 4))));
        // Key and sequence number.
        let b = [0x30, 0, 0x08, 0x00, 0, 0, 0, 7, 0, 0, 0, 1];
        assert_eq!(parse(&b), Ok(Some((IPV4, 12))));
        assert_eq!(parse(&b[..8]), Err(DecodeError::GreTruncated));
        // PPTP's version 1 is not followed.
        assert_eq!(parse(&[0x30, 0x81, 0x88, 0x0b, 0, 0, 0, 0]), Ok(None));
        assert_eq!(parse(&[0, 0]), Err(DecodeError::GreTruncated));
    }
}
