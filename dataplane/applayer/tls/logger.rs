//! The EVE `tls` object, Suricata's fields, made by the EVE writer from
//! the hellos and the first certificate the worker packed
//! (`TlsState::pack`): the worker copies bytes, the writer parses.

use super::cert::CertInfo;
use super::hello::{self, Hello};
use serde::Serialize;

#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct EveTls {
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuerdn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<String>,
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    notbefore: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notafter: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subjectaltname: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3: Option<Ja3>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3s: Option<Ja3>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja4: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    client_alpns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    server_alpns: Vec<String>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
struct Ja3 {
    hash: String,
    string: String,
}

fn parts(rec: &[u8]) -> Option<(bool, [&[u8]; 3])> {
    let (&flags, mut rest) = rec.split_first()?;
    let mut out: [&[u8]; 3] = [&[]; 3];
    for p in &mut out {
        let n = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        *p = rest.get(4..4 + n)?;
        rest = &rest[4 + n..];
    }
    Some((flags & 1 != 0, out))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl EveTls {
    /// The object of a packed handshake, None if the record is cut.
    pub fn of(rec: &[u8]) -> Option<EveTls> {
        let (fingerprints, [ch, sh, cert]) = parts(rec)?;
        let mut ev = EveTls {
            version: "UNDETERMINED",
            ..EveTls::default()
        };
        if let Some(h) = Hello::client(ch) {
            ev.sni = h.sni.map(|(s, e)| text(&ch[s..e]));
            ev.client_alpns = h.alpn.iter().map(|&(s, e)| text(&ch[s..e])).collect();
            ev.version = hello::version_name(h.effective_version());
            if fingerprints {
                let s = hello::ja3(&h);
                ev.ja3 = Some(Ja3 {
                    hash: hello::md5_hex(&s),
                    string: s,
                });
                ev.ja4 = Some(hello::ja4(&h, ch));
            }
        }
        if let Some(h) = Hello::server(sh) {
            // The version the server chose is the connection's.
            ev.version = hello::version_name(h.effective_version());
            ev.server_alpns = h.alpn.iter().map(|&(s, e)| text(&sh[s..e])).collect();
            if fingerprints {
                let s = hello::ja3s(&h);
                ev.ja3s = Some(Ja3 {
                    hash: hello::md5_hex(&s),
                    string: s,
                });
            }
        }
        if let Some(c) = CertInfo::of(cert) {
            ev.subject = Some(c.subject);
            ev.issuerdn = Some(c.issuer);
            ev.serial = Some(c.serial);
            ev.fingerprint = Some(c.fingerprint);
            ev.notbefore = Some(c.not_before);
            ev.notafter = Some(c.not_after);
            ev.subjectaltname = c.sans;
        }
        Some(ev)
    }
}
