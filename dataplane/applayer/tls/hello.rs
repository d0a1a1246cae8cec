//! The hellos (RFC 8446 §4.1.2–3, and the TLS 1.0–1.2 forms): what a
//! ClientHello offers and a ServerHello chooses, and the fingerprints
//! made of them: JA3 and JA3S (Salesforce's, MD5 of the decimal string)
//! and JA4 (FoxIO's `t13d1516h2_…` form), GREASE values left out as the
//! fingerprints specify. Parsing reads a message body the record walk
//! kept whole; a body that does not parse gives None, never a panic.

use md5::Digest;

/// Extension numbers read here.
pub const EXT_SNI: u16 = 0;
pub const EXT_GROUPS: u16 = 10;
pub const EXT_POINT_FORMATS: u16 = 11;
pub const EXT_SIG_ALGS: u16 = 13;
pub const EXT_ALPN: u16 = 16;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// GREASE (RFC 8701): 0x0a0a, 0x1a1a … 0xfafa.
pub fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// A hello's fields: numbers in the order sent, GREASE included (the
/// fingerprints leave it out), byte fields as spans of the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hello {
    pub version: u16,
    pub ciphers: Vec<u16>,
    pub extensions: Vec<u16>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub sig_algs: Vec<u16>,
    pub versions: Vec<u16>,
    /// The server name (host_name entry), as sent.
    pub sni: Option<(usize, usize)>,
    /// ALPN protocol names, in order.
    pub alpn: Vec<(usize, usize)>,
    /// What was wrong with its server_name extension, a bit per
    /// `super::TlsEvent` (more than one, a name type other than
    /// host_name, a length past the extension).
    pub sni_events: u32,
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    /// A vector with a one- or two-byte length.
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

impl Hello {
    /// A ClientHello's body.
    pub fn client(body: &[u8]) -> Option<Hello> {
        let mut r = Reader { b: body, at: 0 };
        let mut h = Hello {
            version: r.u16()?,
            ..Hello::default()
        };
        r.take(32)?;
        r.vec8()?;
        h.ciphers = u16s(r.vec16()?);
        r.vec8()?;
        h.extensions(&mut r, true)?;
        Some(h)
    }

    /// A ServerHello's body (its one cipher in `ciphers`).
    pub fn server(body: &[u8]) -> Option<Hello> {
        let mut r = Reader { b: body, at: 0 };
        let mut h = Hello {
            version: r.u16()?,
            ..Hello::default()
        };
        r.take(32)?;
        r.vec8()?;
        h.ciphers = vec![r.u16()?];
        r.u8()?;
        h.extensions(&mut r, false)?;
        Some(h)
    }

    /// The extensions block, if any (TLS 1.0 hellos may have none).
    fn extensions(&mut self, r: &mut Reader<'_>, client: bool) -> Option<()> {
        if r.at == r.b.len() {
            return Some(());
        }
        let block = r.vec16()?;
        let base = r.at - block.len();
        let mut e = Reader { b: block, at: 0 };
        while e.at < block.len() {
            let t = e.u16()?;
            let data = e.vec16()?;
            let off = base + e.at - data.len();
            self.extensions.push(t);
            let mut d = Reader { b: data, at: 0 };
            match t {
                EXT_SNI if client && !data.is_empty() => {
                    use super::TlsEvent as E;
                    if self.extensions.iter().filter(|&&x| x == EXT_SNI).count() > 1 {
                        self.sni_events |= E::MultipleSniExtensions.bit();
                    }
                    let Some(list) = d.vec16() else {
                        self.sni_events |= E::InvalidSniLength.bit();
                        continue;
                    };
                    let mut l = Reader { b: list, at: 0 };
                    while l.at < list.len() {
                        let kind = l.u8()?;
                        let Some(name) = l.vec16() else {
                            self.sni_events |= E::InvalidSniLength.bit();
                            break;
                        };
                        if kind != 0 {
                            self.sni_events |= E::InvalidSniType.bit();
                        } else if self.sni.is_none() {
                            let start = off + 2 + l.at - name.len();
                            self.sni = Some((start, start + name.len()));
                        }
                    }
                }
                EXT_GROUPS if client => self.groups = u16s(d.vec16()?),
                EXT_POINT_FORMATS if client => self.point_formats = d.vec8()?.to_vec(),
                EXT_SIG_ALGS if client => self.sig_algs = u16s(d.vec16()?),
                EXT_ALPN => {
                    let list = d.vec16()?;
                    let mut l = Reader { b: list, at: 0 };
                    while l.at < list.len() {
                        let p = l.vec8()?;
                        let start = off + 2 + l.at - p.len();
                        self.alpn.push((start, start + p.len()));
                    }
                }
                EXT_SUPPORTED_VERSIONS if client => self.versions = u16s(d.vec8()?),
                EXT_SUPPORTED_VERSIONS => self.versions = vec![d.u16()?],
                _ => {}
            }
        }
        Some(())
    }

    /// The version the hello speaks for: the highest supported_versions
    /// entry (GREASE aside), else its legacy version.
    pub fn effective_version(&self) -> u16 {
        self.versions
            .iter()
            .copied()
            .filter(|&v| !grease(v))
            .max()
            .unwrap_or(self.version)
    }
}

fn join(out: &mut String, vals: impl Iterator<Item = u64>) {
    for (i, v) in vals.enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.push_str(&v.to_string());
    }
}

/// JA3's string: `version,ciphers,extensions,groups,point formats` (JA3S's
/// fields, then the client's groups and point formats).
pub fn ja3(h: &Hello) -> String {
    let mut s = ja3s(h);
    let keep = |v: &&u16| !grease(**v);
    s.push(',');
    join(&mut s, h.groups.iter().filter(keep).map(|&v| u64::from(v)));
    s.push(',');
    join(&mut s, h.point_formats.iter().map(|&v| u64::from(v)));
    s
}

/// JA3S's string: `version,cipher,extensions`.
pub fn ja3s(h: &Hello) -> String {
    let mut s = h.version.to_string();
    let keep = |v: &&u16| !grease(**v);
    s.push(',');
    join(&mut s, h.ciphers.iter().filter(keep).map(|&v| u64::from(v)));
    s.push(',');
    join(
        &mut s,
        h.extensions.iter().filter(keep).map(|&v| u64::from(v)),
    );
    s
}

/// The MD5 of a JA3 or JA3S string, in lower-case hex.
pub fn md5_hex(s: &str) -> String {
    hex(&md5::Md5::digest(s.as_bytes()))
}

pub fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * b.len());
    for &x in b {
        s.push(char::from(H[usize::from(x >> 4)]));
        s.push(char::from(H[usize::from(x & 15)]));
    }
    s
}

/// The first 12 hex digits of the SHA-256 of `s` (`000000000000` for an
/// empty list, as JA4 writes it).
fn sha12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let d = sha2::Sha256::digest(s.as_bytes());
    hex(&d[..6])
}

fn hex4_list(vals: &[u16]) -> String {
    let mut s = String::new();
    for (i, v) in vals.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{v:04x}"));
    }
    s
}

/// JA4 of a ClientHello over TCP (`body`: the hello's body, for its ALPN).
pub fn ja4(h: &Hello, body: &[u8]) -> String {
    let version = match h.effective_version() {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        _ => "00",
    };
    let ciphers: Vec<u16> = h.ciphers.iter().copied().filter(|&v| !grease(v)).collect();
    let exts: Vec<u16> = h
        .extensions
        .iter()
        .copied()
        .filter(|&v| !grease(v))
        .collect();
    let alpn = match h.alpn.first().and_then(|&(s, e)| body.get(s..e)) {
        Some(p) if !p.is_empty() => {
            let (f, l) = (p[0], p[p.len() - 1]);
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                format!("{}{}", char::from(f), char::from(l))
            } else {
                // Not alphanumeric: the first and last hex digits.
                let x = hex(p);
                let c: Vec<char> = x.chars().collect();
                format!("{}{}", c[0], c[c.len() - 1])
            }
        }
        _ => "00".into(),
    };
    let a = format!(
        "t{version}{}{:02}{:02}{alpn}",
        if h.sni.is_some() { 'd' } else { 'i' },
        ciphers.len().min(99),
        exts.len().min(99),
    );
    let mut sorted = ciphers.clone();
    sorted.sort_unstable();
    let b = sha12(&hex4_list(&sorted));
    let mut sorted: Vec<u16> = exts
        .iter()
        .copied()
        .filter(|&v| v != EXT_SNI && v != EXT_ALPN)
        .collect();
    sorted.sort_unstable();
    let mut c_in = hex4_list(&sorted);
    let sigs: Vec<u16> = h.sig_algs.iter().copied().filter(|&v| !grease(v)).collect();
    if !sigs.is_empty() {
        c_in.push('_');
        c_in.push_str(&hex4_list(&sigs));
    }
    let c = if sorted.is_empty() {
        "000000000000".into()
    } else {
        sha12(&c_in)
    };
    format!("{a}_{b}_{c}")
}

/// A TLS version as Suricata's EVE writes it.
pub fn version_name(v: u16) -> &'static str {
    match v {
        0x0002 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv1",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        _ => "UNDETERMINED",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ClientHello body: legacy version 0x0303, ciphers, then the
    /// extensions given as (type, data).
    pub(crate) fn client_hello(ciphers: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.push(0);
        b.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
        for c in ciphers {
            b.extend_from_slice(&c.to_be_bytes());
        }
        b.extend_from_slice(&[1, 0]);
        let mut e = Vec::new();
        for (t, d) in exts {
            e.extend_from_slice(&t.to_be_bytes());
            e.extend_from_slice(&(d.len() as u16).to_be_bytes());
            e.extend_from_slice(d);
        }
        b.extend_from_slice(&(e.len() as u16).to_be_bytes());
        b.extend_from_slice(&e);
        b
    }

    pub(crate) fn sni(name: &str) -> (u16, Vec<u8>) {
        let n = name.as_bytes();
        let mut d = ((n.len() + 3) as u16).to_be_bytes().to_vec();
        d.push(0);
        d.extend_from_slice(&(n.len() as u16).to_be_bytes());
        d.extend_from_slice(n);
        (EXT_SNI, d)
    }

    pub(crate) fn alpn(protos: &[&str]) -> (u16, Vec<u8>) {
        let mut l = Vec::new();
        for p in protos {
            l.push(p.len() as u8);
            l.extend_from_slice(p.as_bytes());
        }
        let mut d = (l.len() as u16).to_be_bytes().to_vec();
        d.extend_from_slice(&l);
        (EXT_ALPN, d)
    }

    #[test]
    fn a_client_hello_gives_its_name_alpn_and_ja3() {
        let body = client_hello(
            &[0x0a0a, 0x1301, 0xc02f],
            &[
                (0x2a2a, vec![]),
                sni("api.openai.com"),
                alpn(&["h2", "http/1.1"]),
                (EXT_GROUPS, vec![0, 4, 0x3a, 0x3a, 0, 29]),
                (EXT_POINT_FORMATS, vec![1, 0]),
                (EXT_SUPPORTED_VERSIONS, vec![4, 3, 4, 3, 3]),
            ],
        );
        let h = Hello::client(&body).unwrap();
        let (s, e) = h.sni.unwrap();
        assert_eq!(&body[s..e], b"api.openai.com");
        let names: Vec<&[u8]> = h.alpn.iter().map(|&(s, e)| &body[s..e]).collect();
        assert_eq!(names, vec![&b"h2"[..], b"http/1.1"]);
        // GREASE out of ciphers, extensions and groups.
        assert_eq!(ja3(&h), "771,4865-49199,0-16-10-11-43,29,0");
        assert_eq!(h.effective_version(), 0x0304);
        let j = ja4(&h, &body);
        assert!(j.starts_with("t13d0205h2_"), "{j}");
        // Truncated anywhere: None, never a panic.
        for n in 0..body.len() {
            let _ = Hello::client(&body[..n]);
        }
        assert!(Hello::client(&body[..40]).is_none());
    }

    #[test]
    fn server_name_oddities_are_events_not_failures() {
        use crate::applayer::tls::TlsEvent as E;
        let two = client_hello(&[0x1301], &[sni("a.example"), sni("b.example")]);
        let h = Hello::client(&two).unwrap();
        assert_eq!(h.sni_events, E::MultipleSniExtensions.bit());
        let (s, e) = h.sni.unwrap();
        assert_eq!(&two[s..e], b"a.example");
        let (t, mut d) = sni("c.example");
        d[2] = 1;
        let h = Hello::client(&client_hello(&[0x1301], &[(t, d.clone())])).unwrap();
        assert_eq!(h.sni_events, E::InvalidSniType.bit());
        assert!(h.sni.is_none());
        // A name longer than its list.
        d[2] = 0;
        d[4] = 0xff;
        let h = Hello::client(&client_hello(&[0x1301], &[(t, d)])).unwrap();
        assert_eq!(h.sni_events, E::InvalidSniLength.bit());
    }

    #[test]
    fn grease_is_the_rfc_8701_pattern() {
        assert!(grease(0x0a0a) && grease(0xfafa) && grease(0x3a3a));
        assert!(!grease(0x0a1a) && !grease(0x1301) && !grease(0));
    }
}
