//! The server's certificates (TLS ≤ 1.2, where they cross in clear): the
//! chain out of a Certificate message, and of its first certificate what
//! Suricata logs and matches, read with the x509-parser crate: subject
//! and issuer as RFC 4514-like strings, serial as colon-separated
//! upper-case hex, SHA-1 fingerprint as colon-separated lower-case hex,
//! validity dates, and the DNS names of subjectAltName.

use super::TlsEvent;
use sha1::Digest;
use x509_parser::error::X509Error;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

/// Certificates of a chain looked at, at most.
pub const MAX_CHAIN: usize = 16;

/// The certificates (DER) of a Certificate message's body, in order; a
/// list cut short ends there.
pub fn chain(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let list = body
        .get(..3)
        .map(|l| u32::from_be_bytes([0, l[0], l[1], l[2]]) as usize)
        .and_then(|n| body.get(3..3 + n.min(body.len() - 3)))
        .unwrap_or(&[]);
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let l = list.get(at..at + 3)?;
        let n = u32::from_be_bytes([0, l[0], l[1], l[2]]) as usize;
        let der = list.get(at + 3..at + 3 + n)?;
        at += 3 + n;
        Some(der)
    })
    .take(MAX_CHAIN)
}

/// What is logged and matched of one certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub fingerprint: String,
    pub not_before: String,
    pub not_after: String,
    pub sans: Vec<String>,
}

fn colon_hex(b: &[u8], upper: bool) -> String {
    let mut s = String::with_capacity(3 * b.len());
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        if upper {
            s.push_str(&format!("{x:02X}"));
        } else {
            s.push_str(&format!("{x:02x}"));
        }
    }
    s
}

fn date(t: &x509_parser::time::ASN1Time) -> String {
    let d = t.to_datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// Whether a certificate decodes; if not, the event Suricata raises for
/// the decoder's error (the same crate's, mapped as Suricata maps it: a
/// certificate cut short is `certificate_invalid_length`, an error in one
/// of its parts names the part, anything else `invalid_certificate`).
pub fn check(der: &[u8]) -> Result<(), TlsEvent> {
    use nom_err::Err;
    match X509Certificate::from_der(der) {
        Ok(_) => Ok(()),
        Err(Err::Incomplete(_)) => Err(TlsEvent::CertificateInvalidLength),
        Err(Err::Error(e) | Err::Failure(e)) => Err(match e {
            X509Error::InvalidVersion => TlsEvent::CertificateInvalidVersion,
            X509Error::InvalidSerial => TlsEvent::CertificateInvalidSerial,
            X509Error::InvalidAlgorithmIdentifier => {
                TlsEvent::CertificateInvalidAlgorithmidentifier
            }
            X509Error::InvalidX509Name => TlsEvent::CertificateInvalidX509name,
            X509Error::InvalidDate => TlsEvent::CertificateInvalidDate,
            X509Error::InvalidExtensions => TlsEvent::CertificateInvalidExtensions,
            X509Error::Der(_) => TlsEvent::CertificateInvalidDer,
            _ => TlsEvent::InvalidCertificate,
        }),
    }
}

/// nom's error type, as x509-parser re-exports it.
mod nom_err {
    pub use x509_parser::nom::Err;
}

impl CertInfo {
    /// A certificate's fields, None if it is not DER X.509.
    pub fn of(der: &[u8]) -> Option<CertInfo> {
        let (_, c) = X509Certificate::from_der(der).ok()?;
        let mut sans = Vec::new();
        for ext in c.extensions() {
            if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
                for n in &san.general_names {
                    if let GeneralName::DNSName(d) = n {
                        sans.push(d.to_string());
                    }
                }
            }
        }
        Some(CertInfo {
            subject: c.subject().to_string(),
            issuer: c.issuer().to_string(),
            serial: colon_hex(c.raw_serial(), true),
            fingerprint: colon_hex(&sha1::Sha1::digest(der), false),
            not_before: date(&c.validity().not_before),
            not_after: date(&c.validity().not_after),
            sans,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_is_read_and_a_cut_one_ends_where_it_is_cut() {
        let mut body = vec![0, 0, 10];
        body.extend_from_slice(&[0, 0, 2, 0xaa, 0xbb]);
        body.extend_from_slice(&[0, 0, 2, 0xcc, 0xdd]);
        let certs: Vec<&[u8]> = chain(&body).collect();
        assert_eq!(certs, vec![&[0xaa, 0xbb][..], &[0xcc, 0xdd][..]]);
        assert_eq!(chain(&body[..7]).count(), 0);
        assert_eq!(chain(&body[..9]).count(), 1);
        assert_eq!(chain(&[]).count(), 0);
        assert!(CertInfo::of(&[0x30, 0x03, 1, 2, 3]).is_none());
    }

    #[test]
    fn a_certificate_reads_as_openssl_reads_it() {
        // Made by scripts/make_tls_fixture.py; the values are openssl's
        // (`openssl x509 -inform DER -noout -fingerprint -sha1 -serial
        // -dates`).
        let der = include_bytes!("../../../tests/fixtures/tls/cert.der");
        let c = CertInfo::of(der).unwrap();
        assert_eq!(c.subject, "C=US, O=Tollgate Test, CN=api.example-llm.com");
        assert_eq!(c.issuer, c.subject);
        assert_eq!(c.serial, "55:A1");
        assert_eq!(
            c.fingerprint,
            "4f:6e:51:57:aa:cb:53:36:d6:ef:93:52:b4:9e:1b:62:3a:db:6f:ae"
        );
        assert_eq!(c.not_before, "2026-12-01T08:29:31");
        assert_eq!(c.not_after, "2036-11-28T08:29:31");
        assert_eq!(c.sans, vec!["api.example-llm.com", "*.example-llm.com"]);
        // Cut anywhere: None, never a panic; cut inside, the event
        // Suricata raises for a certificate cut short.
        for n in 0..der.len() {
            assert!(CertInfo::of(&der[..n]).is_none());
            assert!(check(&der[..n]).is_err());
        }
        assert_eq!(check(der), Ok(()));
        // Its outer header cut: too short; cut further in, the decoder
        // fails inside a part it does not name: invalid (bug-1450-04 and
        // -05 of suricata-verify are these two cases).
        assert_eq!(check(&der[..3]), Err(TlsEvent::CertificateInvalidLength));
        assert_eq!(
            check(&der[..der.len() / 2]),
            Err(TlsEvent::InvalidCertificate)
        );
        // Not a SEQUENCE at all: a DER error.
        assert_eq!(
            check(&[0x02, 0x01, 0x00]),
            Err(TlsEvent::CertificateInvalidDer)
        );
    }
}
