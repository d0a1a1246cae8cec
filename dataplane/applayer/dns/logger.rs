//! The EVE `dns` object, Suricata 8's version 3: one per message, made by
//! the EVE writer from the message as it came (the worker only copies its
//! bytes), with the detailed answers and the answers grouped by type.

use super::parser::{Message, Rdata, Record};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct EveDns {
    version: u8,
    #[serde(rename = "type")]
    kind: &'static str,
    id: u16,
    flags: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    qr: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aa: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tc: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rd: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ra: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    z: Option<bool>,
    opcode: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    rcode: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    queries: Vec<EveQuery>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    answers: Vec<EveRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorities: Vec<EveRecord>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    grouped: BTreeMap<String, Vec<serde_json::Value>>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
struct EveQuery {
    rrname: String,
    rrtype: String,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
struct EveRecord {
    rrname: String,
    rrtype: String,
    ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rdata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    soa: Option<EveSoa>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
struct EveSoa {
    mname: String,
    rname: String,
    serial: u32,
}

/// A record type's name as Suricata writes it (a number otherwise).
pub fn rrtype_name(t: u16) -> String {
    let n = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        10 => "NULL",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        41 => "OPT",
        43 => "DS",
        44 => "SSHFP",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        252 => "AXFR",
        255 => "ANY",
        257 => "CAA",
        _ => return t.to_string(),
    };
    n.to_string()
}

/// A response code's name as Suricata writes it.
pub fn rcode_name(r: u8) -> String {
    let n = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return r.to_string(),
    };
    n.to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn rdata(m: &Message, r: &Record) -> (Option<String>, Option<EveSoa>) {
    match r.data {
        Rdata::A(a) => (Some(std::net::Ipv4Addr::from(a).to_string()), None),
        Rdata::Aaaa(a) => (Some(std::net::Ipv6Addr::from(a).to_string()), None),
        Rdata::Name(n) | Rdata::Text(n) => (Some(text(m.name(n))), None),
        Rdata::Soa {
            mname,
            rname,
            serial,
        } => (
            None,
            Some(EveSoa {
                mname: text(m.name(mname)),
                rname: text(m.name(rname)),
                serial,
            }),
        ),
        Rdata::Other(_) => (None, None),
    }
}

impl EveDns {
    /// The object for one message (`to_server`: its direction), None if
    /// its header is not whole. A message that does not parse past its
    /// header is logged by its header.
    pub fn of(raw: &[u8], to_server: bool) -> Option<EveDns> {
        let h = raw.get(..12)?;
        let flags = u16::from_be_bytes([h[2], h[3]]);
        let mut m = Message::with_capacity(raw.len());
        let parsed = m.parse(raw).is_ok();
        let bit = |b: u16| (flags & b != 0).then_some(true);
        let response = flags & 0x8000 != 0;
        let mut ev = EveDns {
            version: 3,
            kind: if to_server { "request" } else { "response" },
            id: u16::from_be_bytes([h[0], h[1]]),
            flags: format!("{flags:x}"),
            qr: bit(0x8000),
            aa: bit(0x0400),
            tc: bit(0x0200),
            rd: bit(0x0100),
            ra: bit(0x0080),
            z: bit(0x0040),
            opcode: ((flags >> 11) & 0x0f) as u8,
            rcode: response.then(|| rcode_name((flags & 0x0f) as u8)),
            queries: Vec::new(),
            answers: Vec::new(),
            authorities: Vec::new(),
            grouped: BTreeMap::new(),
        };
        if !parsed {
            return Some(ev);
        }
        ev.queries = m
            .questions
            .iter()
            .map(|q| EveQuery {
                rrname: text(m.name(q.name)),
                rrtype: rrtype_name(q.rrtype),
            })
            .collect();
        let record = |r: &Record| {
            let (rdata, soa) = rdata(&m, r);
            EveRecord {
                rrname: text(m.name(r.name)),
                rrtype: rrtype_name(r.rrtype),
                ttl: r.ttl,
                rdata,
                soa,
            }
        };
        ev.answers = m.answers.iter().map(record).collect();
        ev.authorities = m.authorities.iter().map(record).collect();
        for r in &m.answers {
            let v = match rdata(&m, r) {
                (Some(s), _) => serde_json::Value::String(s),
                (None, Some(soa)) => serde_json::to_value(soa).unwrap_or_default(),
                (None, None) => continue,
            };
            ev.grouped.entry(rrtype_name(r.rrtype)).or_default().push(v);
        }
        Some(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_logs_its_queries_answers_and_groups() {
        // example.com A → 93.184.216.34, ttl 300, the answer's name a
        // pointer to the question's.
        let mut m = vec![0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 93, 184, 216, 34]);
        let ev = EveDns::of(&m, false).unwrap();
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["version"], 3);
        assert_eq!(v["type"], "response");
        assert_eq!(v["flags"], "8180");
        assert_eq!(v["qr"], true);
        assert_eq!(v["rcode"], "NOERROR");
        assert_eq!(v["queries"][0]["rrname"], "example.com");
        assert_eq!(v["answers"][0]["rdata"], "93.184.216.34");
        assert_eq!(v["answers"][0]["ttl"], 300);
        assert_eq!(v["grouped"]["A"][0], "93.184.216.34");
        assert!(v.get("aa").is_none());
        // A request has no rcode.
        m[2] = 0x01;
        m[3] = 0x00;
        let v = serde_json::to_value(EveDns::of(&m, true).unwrap()).unwrap();
        assert!(v.get("rcode").is_none());
        assert_eq!(v["type"], "request");
        assert!(EveDns::of(&m[..11], true).is_none());
    }
}
