//! X-Forwarded-For: behind a reverse proxy (an AI gateway, a load
//! balancer) every request comes from the proxy's address; the header
//! names the client. As Suricata's `xff` option, the address is taken from
//! the header the operator names: in a *reverse* deployment the last one
//! of the list (what the proxy in front of the servers saw), in a
//! *forward* deployment the first (the original client behind a forward
//! proxy). EVE then adds it (`extra-data`) or writes it in place of the
//! client's address (`overwrite`).

use super::parser::trim;
use std::net::IpAddr;

/// Longest header name taken.
pub const NAME_MAX: usize = 64;

/// Where the client's address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Xff {
    name: [u8; NAME_MAX],
    len: u8,
    /// Forward deployment: the first address; reverse: the last.
    pub first: bool,
}

impl Xff {
    pub fn new(header: &str, first: bool) -> Result<Xff, String> {
        let ok = !header.is_empty()
            && header.len() <= NAME_MAX
            && header.bytes().all(|c| c.is_ascii_graphic() && c != b':');
        if !ok {
            return Err(format!(
                "expected a header name of 1 to {NAME_MAX} visible characters without ':', got {header:?}"
            ));
        }
        let mut name = [0; NAME_MAX];
        name[..header.len()].copy_from_slice(header.as_bytes());
        Ok(Xff {
            name,
            len: header.len() as u8,
            first,
        })
    }

    fn name(&self) -> &[u8] {
        &self.name[..usize::from(self.len)]
    }

    /// The client's address in request headers given as `http.header`
    /// gives them ("Name: value\r\n" per field, repeats joined with ", "),
    /// as text: None when the header is absent or the address chosen is
    /// not one (a name, `unknown`, garbage).
    pub fn client<'a>(&self, headers: &'a [u8]) -> Option<&'a [u8]> {
        let name = self.name();
        let value = headers.split(|&c| c == b'\n').find_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let (n, v) = line.split_at(line.iter().position(|&c| c == b':')?);
            n.eq_ignore_ascii_case(name).then_some(&v[1..])
        })?;
        let mut parts = value.split(|&c| c == b',');
        let pick = if self.first {
            parts.next()?
        } else {
            parts.next_back()?
        };
        let addr = trim(pick);
        parse_addr(addr).map(|_| addr_text(addr))
    }
}

/// The address part of `1.2.3.4`, `1.2.3.4:8080`, `2001:db8::1` or
/// `[2001:db8::1]:8080`.
fn addr_text(b: &[u8]) -> &[u8] {
    if let Some(inner) = b.strip_prefix(b"[") {
        return &inner[..inner.iter().position(|&c| c == b']').unwrap_or(inner.len())];
    }
    match b.iter().filter(|&&c| c == b':').count() {
        1 => &b[..b.iter().position(|&c| c == b':').unwrap_or(b.len())],
        _ => b,
    }
}

fn parse_addr(b: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(addr_text(b)).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: &[u8] = b"Host: x\r\nX-Forwarded-For: 10.2.2.2, 10.3.3.3\r\nAccept: */*\r\n";

    #[test]
    fn the_deployment_picks_the_address() {
        let reverse = Xff::new("X-Forwarded-For", false).unwrap();
        let forward = Xff::new("x-forwarded-for", true).unwrap();
        assert_eq!(reverse.client(HEADERS), Some(&b"10.3.3.3"[..]));
        assert_eq!(forward.client(HEADERS), Some(&b"10.2.2.2"[..]));
        // Another header name, a port, IPv6 with and without brackets.
        let real = Xff::new("X-Real-IP", true).unwrap();
        assert_eq!(real.client(HEADERS), None);
        let h = b"X-Real-IP: 192.0.2.7:4431\r\n";
        assert_eq!(real.client(h), Some(&b"192.0.2.7"[..]));
        let h = b"X-Real-IP: [2001:db8::7]:443\r\n";
        assert_eq!(real.client(h), Some(&b"2001:db8::7"[..]));
        let h = b"X-Real-IP: 2001:db8::7\r\n";
        assert_eq!(real.client(h), Some(&b"2001:db8::7"[..]));
    }

    #[test]
    fn what_is_not_an_address_is_no_client() {
        let forward = Xff::new("X-Forwarded-For", true).unwrap();
        for h in [
            &b"X-Forwarded-For: unknown, 10.0.0.1\r\n"[..],
            b"X-Forwarded-For:\r\n",
            b"X-Forwarded-For: 999.1.1.1\r\n",
            b"X-Forwarded-For-Not: 10.0.0.1\r\n",
        ] {
            assert_eq!(forward.client(h), None, "{}", String::from_utf8_lossy(h));
        }
        assert!(Xff::new("", true).is_err());
        assert!(Xff::new("Bad:Name", true).is_err());
        assert!(Xff::new(&"x".repeat(NAME_MAX + 1), true).is_err());
    }
}
