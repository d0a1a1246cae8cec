//! `asn1`: BER-encoded objects in the payload, decoded from an offset and
//! checked for the malformations Suricata's keyword names: a length over a
//! bound (`oversize_length`), a BIT STRING that claims to ignore more bits
//! than it has (`bitstring_overflow`), and an ASCII-encoded REAL longer
//! than 256 bytes (`double_overflow`, the MSASN1 overflow). As in
//! Suricata, only objects that decode whole are checked (one cut short by
//! the end of the buffer stops the decoding), at most `max_frames` of them
//! in sequence and as deep.

/// An `asn1` keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asn1Check {
    pub oversize_length: Option<u32>,
    pub bitstring_overflow: bool,
    pub double_overflow: bool,
    pub absolute_offset: Option<u16>,
    pub relative_offset: Option<i32>,
    pub max_frames: u16,
}

/// Suricata's default bound on objects decoded in sequence and in depth.
const MAX_FRAMES: u16 = 30;

impl Asn1Check {
    pub fn parse(v: &str) -> Result<Asn1Check, String> {
        let bad = |what: &str| format!("asn1: {what}");
        let mut c = Asn1Check {
            oversize_length: None,
            bitstring_overflow: false,
            double_overflow: false,
            absolute_offset: None,
            relative_offset: None,
            max_frames: MAX_FRAMES,
        };
        for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (word, arg) = item
                .split_once(char::is_whitespace)
                .map_or((item, None), |(a, b)| (a, Some(b.trim())));
            let n = |a: Option<&str>| a.and_then(|a| a.parse::<i64>().ok());
            match word {
                "bitstring_overflow" => c.bitstring_overflow = true,
                "double_overflow" => c.double_overflow = true,
                "oversize_length" => {
                    c.oversize_length = Some(
                        n(arg)
                            .and_then(|v| u32::try_from(v).ok())
                            .ok_or_else(|| bad("oversize_length"))?,
                    )
                }
                "absolute_offset" => {
                    c.absolute_offset = Some(
                        n(arg)
                            .and_then(|v| u16::try_from(v).ok())
                            .ok_or_else(|| bad("absolute_offset"))?,
                    )
                }
                "relative_offset" => {
                    c.relative_offset = Some(
                        n(arg)
                            .and_then(|v| i32::try_from(v).ok())
                            .filter(|v| v.unsigned_abs() <= 65535)
                            .ok_or_else(|| bad("relative_offset"))?,
                    )
                }
                "max_frames" => {
                    c.max_frames = n(arg)
                        .and_then(|v| u16::try_from(v).ok())
                        .filter(|&v| v > 0)
                        .ok_or_else(|| bad("max_frames"))?
                }
                other => return Err(bad(&format!("`{other}`"))),
            }
        }
        if c.absolute_offset.is_some() && c.relative_offset.is_some() {
            return Err(bad("absolute_offset with relative_offset"));
        }
        if c.oversize_length.is_none() && !c.bitstring_overflow && !c.double_overflow {
            return Err(bad("no check named"));
        }
        Ok(c)
    }

    pub fn relative(&self) -> bool {
        self.relative_offset.is_some()
    }

    /// Whether any named check finds a malformed object in `buf`, decoding
    /// from the offset (relative ones from the pointer at `prev_end`).
    pub fn matches(&self, buf: &[u8], prev_end: usize) -> bool {
        let offset = match (self.absolute_offset, self.relative_offset) {
            (Some(a), _) => i64::from(a),
            (None, Some(r)) => prev_end as i64 + i64::from(r),
            (None, None) => 0,
        };
        let Some(mut rest) = usize::try_from(offset)
            .ok()
            .filter(|&o| o < buf.len())
            .map(|o| &buf[o..])
        else {
            return false;
        };
        let frames = usize::from(self.max_frames);
        let mut seen = 0;
        while !rest.is_empty() && seen < frames {
            match self.object(rest, frames) {
                Some((hit, used)) => {
                    if hit {
                        return true;
                    }
                    rest = &rest[used..];
                    seen += 1;
                }
                None => break,
            }
        }
        false
    }

    /// Decodes one object at the start of `b` and checks it and what it
    /// contains: (a check hit, bytes it took). None when it does not
    /// decode whole (or nests deeper than `depth`).
    fn object(&self, b: &[u8], depth: usize) -> Option<(bool, usize)> {
        if depth == 0 {
            return None;
        }
        let first = *b.first()?;
        let constructed = first & 0x20 != 0;
        let universal = first & 0xc0 == 0;
        let mut at = 1;
        let mut tag = u32::from(first & 0x1f);
        if tag == 0x1f {
            // High tag number: base-128, at most 4 bytes of it.
            tag = 0;
            loop {
                let t = *b.get(at)?;
                at += 1;
                tag = (tag << 7) | u32::from(t & 0x7f);
                if t & 0x80 == 0 {
                    break;
                }
                if at > 5 {
                    return None;
                }
            }
        }
        let l = *b.get(at)?;
        at += 1;
        let (len, indefinite) = if l & 0x80 == 0 {
            (u64::from(l), false)
        } else if l == 0x80 {
            (0, true)
        } else {
            let n = usize::from(l & 0x7f);
            if n > 8 {
                return None;
            }
            let mut v: u64 = 0;
            for _ in 0..n {
                v = (v << 8) | u64::from(*b.get(at)?);
                at += 1;
            }
            (v, false)
        };
        if indefinite {
            // Children up to the end-of-contents marker (constructed only).
            if !constructed {
                return None;
            }
            let mut inner = &b[at..];
            let mut took = at;
            loop {
                if inner.starts_with(&[0, 0]) {
                    return Some((false, took + 2));
                }
                let (hit, used) = self.object(inner, depth - 1)?;
                if hit {
                    return Some((true, took + used));
                }
                inner = &inner[used..];
                took += used;
            }
        }
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        let content = b.get(at..end)?;
        if let Some(max) = self.oversize_length {
            if len > u64::from(max) {
                return Some((true, end));
            }
        }
        if universal && !constructed {
            // BIT STRING: its first byte counts the unused bits.
            if self.bitstring_overflow
                && tag == 3
                && len > 0
                && u64::from(content[0]) > len.saturating_mul(8)
            {
                return Some((true, end));
            }
            // REAL in a decimal (ASCII) encoding, over 256 bytes.
            if self.double_overflow && tag == 9 && len > 0 && content[0] & 0xc0 == 0 && len > 256 {
                return Some((true, end));
            }
        }
        if constructed {
            let mut inner = content;
            while !inner.is_empty() {
                let (hit, used) = self.object(inner, depth - 1)?;
                if hit {
                    return Some((true, end));
                }
                inner = &inner[used..];
            }
        }
        Some((false, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(rule: &str, buf: &[u8]) -> bool {
        Asn1Check::parse(rule).unwrap().matches(buf, 0)
    }

    /// X.690 Appendix A.3's example record (133 bytes of content).
    fn x690() -> Vec<u8> {
        let mut v = b"\x60\x81\x85\x61\x10\x1A\x04John\x1A\x01P\x1A\x05Smith".to_vec();
        v.extend_from_slice(b"\xA0\x0A\x1A\x08Director\x42\x01\x33\xA1\x0A\x43\x0819710917");
        v.extend_from_slice(b"\xA2\x12\x61\x10\x1A\x04Mary\x1A\x01T\x1A\x05Smith");
        v.extend_from_slice(b"\xA3\x42\x31\x1F\x61\x11\x1A\x05Ralph\x1A\x01T\x1A\x05Smith");
        v.extend_from_slice(b"\xA0\x0A\x43\x0819571111");
        v.extend_from_slice(b"\x31\x1F\x61\x11\x1A\x05Susan\x1A\x01B\x1A\x05Jones");
        v.extend_from_slice(b"\xA0\x0A\x43\x0819590717");
        v
    }

    #[test]
    fn the_checks_suricata_names() {
        let rec = x690();
        assert!(hit("oversize_length 132, absolute_offset 0", &rec));
        assert!(!hit("oversize_length 133, absolute_offset 0", &rec));
        assert!(hit(
            "bitstring_overflow, absolute_offset 0",
            b"\x03\x01\xFF"
        ));
        assert!(!hit(
            "bitstring_overflow, absolute_offset 0",
            b"\x03\x01\x07"
        ));
        let mut real = vec![0x05u8; 261];
        real[..4].copy_from_slice(&[0x09, 0x82, 0x01, 0x01]);
        assert!(hit("double_overflow", &real));
        real[3] = 0x00;
        assert!(!hit("double_overflow", &real), "256 is not over");
    }

    #[test]
    fn only_whole_objects_are_checked_and_offsets_apply() {
        // Declares 3000 bytes, has 2: cut short, so not checked.
        assert!(!hit("oversize_length 100", b"\x04\x82\x0b\xb8ab"));
        // Relative to the pointer; past the buffer is no match.
        let c = Asn1Check::parse("bitstring_overflow, relative_offset 2").unwrap();
        assert!(c.matches(b"xx--\x03\x01\xff", 2));
        assert!(!c.matches(b"xx\x03\x01\xff", 2));
        assert!(!c.matches(b"xx", 0));
        assert!(Asn1Check::parse("relative_offset 1").is_err(), "no check");
        assert!(Asn1Check::parse("bitstring_overflow, sideways").is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        // 40 nested SEQUENCEs around a bad BIT STRING: deeper than 30.
        let mut b = b"\x03\x01\xff".to_vec();
        for _ in 0..40 {
            let mut outer = vec![0x30, b.len() as u8];
            outer.extend_from_slice(&b);
            b = outer;
        }
        assert!(!hit("bitstring_overflow", &b));
        assert!(hit("bitstring_overflow", &b[2 * 35..]), "5 deep is fine");
    }
}
