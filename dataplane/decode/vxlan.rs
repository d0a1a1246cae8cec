//! VXLAN (RFC 7348): an 8-byte header in UDP to port 4789 carrying a tenant's
//! Ethernet frame. The VNI names the tenant network: tenants reuse address
//! space, so the VNI becomes part of the inner flow's key.

use super::DecodeError;

/// The IANA port for VXLAN.
pub const PORT: u16 = 4789;
pub const HEADER_LEN: usize = 8;
/// The I flag: the VNI is valid.
const FLAG_VNI: u8 = 0x08;

#[derive(Debug, Clone, Copy)]
pub struct VxlanHeader<'a> {
    buf: &'a [u8],
}

impl<'a> VxlanHeader<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::VxlanTruncated);
        }
        Ok(VxlanHeader { buf })
    }

    /// The VNI is present (the I flag). Without it the datagram is not
    /// treated as VXLAN.
    pub fn has_vni(&self) -> bool {
        self.buf[0] & FLAG_VNI != 0
    }

    /// The 24-bit VXLAN network identifier.
    pub fn vni(&self) -> u32 {
        u32::from_be_bytes([0, self.buf[4], self.buf[5], self.buf[6]])
    }

    /// The inner Ethernet frame.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vni_and_payload() {
        let b = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0x00, 0xaa];
        let v = VxlanHeader::new_checked(&b).unwrap();
        assert!(v.has_vni());
        assert_eq!(v.vni(), 0x123456);
        assert_eq!(v.payload(), &[0xaa]);
        let mut b2 = b;
        b2[0] = 0;
        assert!(!VxlanHeader::new_checked(&b2).unwrap().has_vni());
        assert_eq!(
            VxlanHeader::new_checked(&b[..7]).unwrap_err(),
            DecodeError::VxlanTruncated
        );
    }
}
