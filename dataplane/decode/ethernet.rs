//! Ethernet II frames and the 802.1Q / 802.1ad tags that may follow the MAC
//! addresses. A view checks its length once in `new_checked`; after that no
//! accessor can panic.

use super::{be16, DecodeError, Field};

const DST: Field = 0..6;
const SRC: Field = 6..12;
const ETHERTYPE: Field = 12..14;
/// Length of the untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of one VLAN tag (TCI and the inner ethertype).
pub const VLAN_TAG_LEN: usize = 4;

/// Ethertypes the decoder knows; anything else is kept as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtherType {
    Ipv4,
    Ipv6,
    Arp,
    /// 802.1Q customer tag.
    Vlan,
    /// 802.1ad service tag (QinQ outer tag).
    QinQ,
    /// The pre-standard 0x9100 QinQ tag some switches still send.
    QinQLegacy,
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x86dd => EtherType::Ipv6,
            0x0806 => EtherType::Arp,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::QinQ,
            0x9100 => EtherType::QinQLegacy,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(v: EtherType) -> u16 {
        match v {
            EtherType::Ipv4 => 0x0800,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Arp => 0x0806,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::QinQLegacy => 0x9100,
            EtherType::Unknown(v) => v,
        }
    }
}

impl EtherType {
    pub fn is_vlan_tag(self) -> bool {
        matches!(
            self,
            EtherType::Vlan | EtherType::QinQ | EtherType::QinQLegacy
        )
    }
}

/// A zero-copy view of an Ethernet II header.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<'a> {
    buf: &'a [u8],
}

impl<'a> EthernetFrame<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::EthernetTruncated);
        }
        Ok(EthernetFrame { buf })
    }

    pub fn dst(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buf[DST]);
        m
    }

    pub fn src(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buf[SRC]);
        m
    }

    pub fn ethertype(&self) -> EtherType {
        EtherType::from(be16(&self.buf[ETHERTYPE]))
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }
}

/// A zero-copy view of one VLAN tag: the 2-byte TCI and the next ethertype.
#[derive(Debug, Clone, Copy)]
pub struct VlanTag<'a> {
    buf: &'a [u8],
}

impl<'a> VlanTag<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < VLAN_TAG_LEN {
            return Err(DecodeError::VlanTruncated);
        }
        Ok(VlanTag { buf })
    }

    /// The 12-bit VLAN identifier.
    pub fn vid(&self) -> u16 {
        be16(&self.buf[0..2]) & 0x0fff
    }

    /// The 3-bit priority code point.
    pub fn pcp(&self) -> u8 {
        self.buf[0] >> 5
    }

    pub fn inner_ethertype(&self) -> EtherType {
        EtherType::from(be16(&self.buf[2..4]))
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.buf[VLAN_TAG_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // dst 00:11:22:33:44:55, src 66:77:88:99:aa:bb, 802.1Q vid 100 pcp 5, then IPv4.
    static FRAME_BYTES: [u8; 20] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x81, 0x00, 0xa0,
        0x64, 0x08, 0x00, 0x45, 0x00,
    ];

    #[test]
    fn parses_header_and_tag() {
        let eth = EthernetFrame::new_checked(&FRAME_BYTES).unwrap();
        assert_eq!(eth.dst(), [0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(eth.src(), [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb]);
        assert_eq!(eth.ethertype(), EtherType::Vlan);
        let tag = VlanTag::new_checked(eth.payload()).unwrap();
        assert_eq!(tag.vid(), 100);
        assert_eq!(tag.pcp(), 5);
        assert_eq!(tag.inner_ethertype(), EtherType::Ipv4);
        assert_eq!(tag.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn short_frames_are_errors_not_panics() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&FRAME_BYTES[..n]).unwrap_err(),
                DecodeError::EthernetTruncated
            );
        }
        for n in 0..VLAN_TAG_LEN {
            assert_eq!(
                VlanTag::new_checked(&FRAME_BYTES[14..14 + n]).unwrap_err(),
                DecodeError::VlanTruncated
            );
        }
    }

    #[test]
    fn ethertype_round_trips_and_keeps_unknown() {
        for v in [
            0x0800u16, 0x86dd, 0x0806, 0x8100, 0x88a8, 0x9100, 0x88cc, 0x1234,
        ] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x88cc), EtherType::Unknown(0x88cc));
    }
}
