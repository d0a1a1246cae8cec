//! The Suricata rule language: parsing. A rule is a header (action,
//! protocol, source and destination addresses and ports, direction) and a
//! list of options. Options are split as Suricata splits them: at every `;`
//! not escaped by a backslash (quotes do not protect a `;`). Every keyword
//! is checked against Suricata's table (`keywords`), and the values the
//! engine depends on are checked now: content (quoted, `|hex|`, escapes,
//! negation), pcre (delimiters and flags), numbers, flow, flowbits,
//! threshold. Anything wrong is a `RuleError` naming the keyword. Matching
//! comes with the engine; this is what it will be built on.

pub mod classification;
pub mod keywords;
pub mod vars;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Alert,
    Drop,
    Pass,
    /// Rejected: dropped, with a warning that no reset is sent.
    Reject,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Alert => "alert",
            Action::Drop => "drop",
            Action::Pass => "pass",
            Action::Reject => "reject",
        }
    }
}

/// An address expression: `any`, `$VAR`, an address or CIDR, a list, a
/// negation of any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrExpr {
    Any,
    Var(String),
    Net(IpAddr, u8),
    Not(Box<AddrExpr>),
    List(Vec<AddrExpr>),
}

/// A port expression: `any`, `$VAR`, a port, a range (`1024:`, `:1023`,
/// `80:90`), a list, a negation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortExpr {
    Any,
    Var(String),
    Range(u16, u16),
    Not(Box<PortExpr>),
    List(Vec<PortExpr>),
}

/// One option as written: keyword and raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOption {
    pub keyword: String,
    pub value: Option<String>,
}

/// A parsed `content` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub negated: bool,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub proto: String,
    pub src: AddrExpr,
    pub src_ports: PortExpr,
    /// `<>`: both directions.
    pub bidirectional: bool,
    /// `=>`: a transactional rule (Suricata 8): its request and response
    /// conditions hold on one transaction, the header naming the client
    /// then the server.
    pub transactional: bool,
    pub dst: AddrExpr,
    pub dst_ports: PortExpr,
    pub options: Vec<RuleOption>,
    pub msg: String,
    pub sid: u32,
    pub rev: u32,
    pub gid: u32,
}

/// Why a rule did not parse, naming the keyword when one is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub keyword: Option<String>,
    pub message: String,
}

impl RuleError {
    fn header(msg: impl Into<String>) -> Self {
        RuleError {
            keyword: None,
            message: msg.into(),
        }
    }

    fn at(keyword: &str, msg: impl Into<String>) -> Self {
        RuleError {
            keyword: Some(keyword.to_string()),
            message: msg.into(),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.keyword {
            Some(k) => write!(f, "keyword `{k}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Splits the header into whitespace-separated fields, keeping bracketed
/// lists (which may hold spaces) whole.
fn header_fields(h: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for c in h.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            c if c.is_whitespace() && depth <= 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c if c.is_whitespace() => {}
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits `a,b,[c,d],e` at top-level commas.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

pub fn parse_addr(s: &str) -> Result<AddrExpr, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty address".into());
    }
    if let Some(rest) = s.strip_prefix('!') {
        return Ok(AddrExpr::Not(Box::new(parse_addr(rest)?)));
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("unclosed address list `{s}`"))?;
        let items = split_top(inner)
            .into_iter()
            .map(parse_addr)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(AddrExpr::List(items));
    }
    if s == "any" {
        return Ok(AddrExpr::Any);
    }
    if let Some(v) = s.strip_prefix('$') {
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad variable `{s}`"));
        }
        return Ok(AddrExpr::Var(v.to_string()));
    }
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| format!("bad address `{s}`"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(b) if b <= max => b,
            // A dotted netmask (`/255.255.255.0`) as Suricata also takes it.
            _ => match p.parse::<std::net::Ipv4Addr>() {
                Ok(m) if ip.is_ipv4() => u32::from(m).count_ones() as u8,
                _ => return Err(format!("bad prefix in `{s}`")),
            },
        },
    };
    Ok(AddrExpr::Net(ip, bits))
}

pub fn parse_ports(s: &str) -> Result<PortExpr, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty port".into());
    }
    if let Some(rest) = s.strip_prefix('!') {
        return Ok(PortExpr::Not(Box::new(parse_ports(rest)?)));
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("unclosed port list `{s}`"))?;
        let items = split_top(inner)
            .into_iter()
            .map(parse_ports)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(PortExpr::List(items));
    }
    if s == "any" {
        return Ok(PortExpr::Any);
    }
    if let Some(v) = s.strip_prefix('$') {
        return Ok(PortExpr::Var(v.to_string()));
    }
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .map_err(|_| format!("bad port `{s}`"))
    };
    match s.split_once(':') {
        Some((a, b)) => {
            let lo = if a.is_empty() { 0 } else { port(a)? };
            let hi = if b.is_empty() { u16::MAX } else { port(b)? };
            if lo > hi {
                return Err(format!("empty port range `{s}`"));
            }
            Ok(PortExpr::Range(lo, hi))
        }
        None => {
            let p = port(s)?;
            Ok(PortExpr::Range(p, p))
        }
    }
}

/// Splits the option text at every `;` not escaped by a backslash.
fn split_options(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            ';' if !escaped => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    let tail = body[start..].trim();
    if !tail.is_empty() {
        out.push(&body[start..]);
    }
    out
}

/// Strips the surrounding double quotes of a value.
fn unquote<'a>(keyword: &str, v: &'a str) -> Result<&'a str, RuleError> {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .filter(|_| v.len() >= 2)
        .ok_or_else(|| RuleError::at(keyword, format!("expected a quoted value, got `{v}`")))
}

/// Parses a content value: `"text|0d 0a|more"`, `!"..."`, with `\"`, `\;`,
/// `\\` and `\:` escapes.
pub fn parse_content(keyword: &str, v: &str) -> Result<Content, RuleError> {
    let v = v.trim();
    let (negated, v) = match v.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, v),
    };
    let inner = unquote(keyword, v)?;
    let mut bytes = Vec::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    let mut in_hex = false;
    let mut nibble: Option<u8> = None;
    while let Some(c) = chars.next() {
        if in_hex {
            match c {
                '|' => {
                    if nibble.is_some() {
                        return Err(RuleError::at(keyword, "odd number of hex digits"));
                    }
                    in_hex = false;
                }
                c if c.is_whitespace() => {}
                c => {
                    let d = c.to_digit(16).ok_or_else(|| {
                        RuleError::at(keyword, format!("`{c}` is not a hex digit"))
                    })? as u8;
                    match nibble.take() {
                        Some(hi) => bytes.push(hi << 4 | d),
                        None => nibble = Some(d),
                    }
                }
            }
            continue;
        }
        match c {
            '|' => in_hex = true,
            '\\' => match chars.next() {
                Some(e @ ('"' | ';' | '\\' | ':' | '|')) => bytes.push(e as u8),
                Some(e) => return Err(RuleError::at(keyword, format!("unknown escape `\\{e}`"))),
                None => return Err(RuleError::at(keyword, "trailing backslash")),
            },
            '"' => return Err(RuleError::at(keyword, "unescaped `\"` inside the value")),
            c => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    if in_hex {
        return Err(RuleError::at(keyword, "unclosed `|` hex section"));
    }
    if bytes.is_empty() {
        return Err(RuleError::at(keyword, "empty content"));
    }
    Ok(Content { negated, bytes })
}

/// Checks a pcre value: optional `!`, quoted `/regex/flags`.
fn check_pcre(v: &str) -> Result<(), RuleError> {
    let v = v.trim();
    let v = v.strip_prefix('!').unwrap_or(v).trim();
    let inner = unquote("pcre", v)?;
    let body = inner
        .strip_prefix('/')
        .ok_or_else(|| RuleError::at("pcre", "the regex must start with `/`"))?;
    let end = body
        .rfind('/')
        .ok_or_else(|| RuleError::at("pcre", "the regex must end with `/` and its flags"))?;
    if end == 0 {
        return Err(RuleError::at("pcre", "empty regex"));
    }
    // Flags, then optionally where captures go: `, pkt:name, flow:name`.
    let (flags, captures) = body[end + 1..]
        .split_once(',')
        .map_or((&body[end + 1..], None), |(f, c)| (f, Some(c)));
    if let Some(c) = captures {
        for cap in c.split(',').map(str::trim) {
            match cap.split_once(':') {
                Some(("pkt" | "flow" | "tx", name)) if !name.trim().is_empty() => {}
                _ => {
                    return Err(RuleError::at(
                        "pcre",
                        format!("capture `{cap}`: expected pkt:NAME, flow:NAME or tx:NAME"),
                    ))
                }
            }
        }
    }
    if let Some(bad) = flags
        .chars()
        .find(|c| !"ismxAEGRUIPQHDMCSYBOVWTJLjln".contains(*c))
    {
        return Err(RuleError::at("pcre", format!("unknown flag `{bad}`")));
    }
    Ok(())
}

fn check_number(keyword: &str, v: &str) -> Result<(), RuleError> {
    let v = v.trim();
    // Offsets may name a byte_extract variable.
    let ok = v.parse::<i64>().is_ok()
        || (v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && v.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && matches!(keyword, "depth" | "offset" | "distance" | "within"));
    if ok {
        Ok(())
    } else {
        Err(RuleError::at(
            keyword,
            format!("expected a number, got `{v}`"),
        ))
    }
}

fn check_flow(v: &str) -> Result<(), RuleError> {
    const OK: [&str; 11] = [
        "to_server",
        "to_client",
        "from_server",
        "from_client",
        "established",
        "not_established",
        "stateless",
        "only_stream",
        "no_stream",
        "only_frag",
        "no_frag",
    ];
    for item in v.split(',').map(str::trim) {
        if !OK.contains(&item) {
            return Err(RuleError::at(
                "flow",
                format!("unknown flow option `{item}`"),
            ));
        }
    }
    Ok(())
}

fn check_flowbits(v: &str) -> Result<(), RuleError> {
    let mut parts = v.splitn(2, ',').map(str::trim);
    let cmd = parts.next().unwrap_or("");
    let name = parts.next();
    match (cmd, name) {
        ("noalert", None) => Ok(()),
        ("set" | "isset" | "isnotset" | "toggle" | "unset", Some(n)) if !n.is_empty() => Ok(()),
        _ => Err(RuleError::at(
            "flowbits",
            format!("expected set|isset|isnotset|toggle|unset,NAME or noalert, got `{v}`"),
        )),
    }
}

fn check_threshold(keyword: &str, v: &str) -> Result<(), RuleError> {
    let mut seen = Vec::new();
    for item in v.split(',').map(str::trim) {
        let (k, val) = item
            .split_once(char::is_whitespace)
            .map(|(a, b)| (a.trim(), b.trim()))
            .ok_or_else(|| {
                RuleError::at(keyword, format!("expected `name value`, got `{item}`"))
            })?;
        let ok = match k {
            "type" => {
                matches!(val, "limit" | "threshold" | "both" | "backoff") && keyword == "threshold"
            }
            "track" => matches!(val, "by_src" | "by_dst" | "by_rule" | "by_both" | "by_flow"),
            "count" | "seconds" | "multiplier" => val.parse::<u64>().is_ok(),
            _ => false,
        };
        if !ok {
            return Err(RuleError::at(keyword, format!("bad `{item}`")));
        }
        seen.push(k);
    }
    // Suricata 8's backoff takes a multiplier where the others take seconds.
    let period = if v.contains("backoff") {
        "multiplier"
    } else {
        "seconds"
    };
    for need in ["track", "count", period] {
        if !seen.contains(&need) {
            return Err(RuleError::at(keyword, format!("missing `{need}`")));
        }
    }
    Ok(())
}

fn check_option(o: &RuleOption) -> Result<(), RuleError> {
    let kw = o.keyword.as_str();
    let Some(spec) = keywords::lookup(kw) else {
        return Err(RuleError::at(kw, "unknown keyword"));
    };
    match (spec.takes, &o.value) {
        (keywords::Takes::Nothing, Some(v)) => {
            return Err(RuleError::at(kw, format!("takes no value, got `{v}`")))
        }
        (keywords::Takes::Value, None) => return Err(RuleError::at(kw, "needs a value")),
        _ => {}
    }
    let v = o.value.as_deref().unwrap_or("");
    match kw {
        "content" => parse_content(kw, v).map(|_| ()),
        "pcre" => check_pcre(v),
        "msg" => unquote(kw, v).map(|_| ()),
        "sid" | "rev" | "gid" | "priority" => {
            v.trim().parse::<u32>().map(|_| ()).map_err(|_| {
                RuleError::at(kw, format!("expected a whole number, got `{}`", v.trim()))
            })
        }
        "depth" | "offset" | "distance" | "within" => check_number(kw, v),
        "flow" => check_flow(v),
        "flowbits" => check_flowbits(v),
        "threshold" | "detection_filter" => check_threshold(kw, v),
        _ => Ok(()),
    }
}

/// Parses one rule (one logical line).
pub fn parse_rule(text: &str) -> Result<Rule, RuleError> {
    let text = text.trim();
    let open = text
        .find('(')
        .ok_or_else(|| RuleError::header("no option list: expected `(...)` after the header"))?;
    let close = text
        .rfind(')')
        .filter(|&c| c > open)
        .ok_or_else(|| RuleError::header("the option list is not closed with `)`"))?;
    if !text[close + 1..].trim().is_empty() {
        return Err(RuleError::header("text after the closing `)`"));
    }
    let fields = header_fields(&text[..open]);
    if fields.len() != 7 {
        return Err(RuleError::header(format!(
            "expected `action proto src sport -> dst dport`, got {} fields",
            fields.len()
        )));
    }
    let action = match fields[0].as_str() {
        "alert" => Action::Alert,
        "drop" => Action::Drop,
        "pass" => Action::Pass,
        "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => Action::Reject,
        a => return Err(RuleError::header(format!("unknown action `{a}`"))),
    };
    let proto = fields[1].to_ascii_lowercase();
    if proto.is_empty()
        || !proto
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(RuleError::header(format!("bad protocol `{proto}`")));
    }
    let (bidirectional, transactional) = match fields[4].as_str() {
        "->" => (false, false),
        "<>" => (true, false),
        "=>" => (false, true),
        d => {
            return Err(RuleError::header(format!(
                "direction must be ->, <> or =>, got `{d}`"
            )))
        }
    };
    let src = parse_addr(&fields[2]).map_err(RuleError::header)?;
    let src_ports = parse_ports(&fields[3]).map_err(RuleError::header)?;
    let dst = parse_addr(&fields[5]).map_err(RuleError::header)?;
    let dst_ports = parse_ports(&fields[6]).map_err(RuleError::header)?;

    let mut options = Vec::new();
    for raw in split_options(&text[open + 1..close]) {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let (keyword, value) = match raw.split_once(':') {
            Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
            None => (raw.to_string(), None),
        };
        let o = RuleOption { keyword, value };
        check_option(&o)?;
        options.push(o);
    }
    let get = |k: &str| {
        options
            .iter()
            .find(|o| o.keyword == k)
            .and_then(|o| o.value.clone())
    };
    let msg = match get("msg") {
        Some(m) => unquote("msg", &m)?.to_string(),
        None => String::new(),
    };
    let sid = get("sid")
        .ok_or_else(|| RuleError::at("sid", "every rule needs a sid"))?
        .trim()
        .parse()
        .unwrap_or(0);
    let num = |k: &str, d: u32| get(k).and_then(|v| v.trim().parse().ok()).unwrap_or(d);
    Ok(Rule {
        action,
        proto,
        src,
        src_ports,
        bidirectional,
        transactional,
        dst,
        dst_ports,
        msg,
        sid,
        rev: num("rev", 0),
        gid: num("gid", 1),
        options,
    })
}

/// Where a rule came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

/// Reads a rule file: one rule per line, `\` at the end of a line continues
/// it, `#` starts a comment (a commented-out rule is not read). Returns every
/// rule with where it started, parsed or not.
pub fn read_rules(path: &Path) -> std::io::Result<Vec<(Location, Result<Rule, RuleError>)>> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse_rules_text(path, &text))
}

pub fn parse_rules_text(path: &Path, text: &str) -> Vec<(Location, Result<Rule, RuleError>)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if pending.is_empty() {
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            start = i + 1;
        }
        if let Some(cont) = t.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        pending.push_str(t);
        let rule = parse_rule(&pending);
        out.push((
            Location {
                file: path.to_path_buf(),
                line: start,
            },
            rule,
        ));
        pending.clear();
    }
    if !pending.is_empty() {
        out.push((
            Location {
                file: path.to_path_buf(),
                line: start,
            },
            Err(RuleError::header(
                "the file ends inside a rule continued with `\\`",
            )),
        ));
    }
    out
}

/// `16MiB`, `512KiB`, `1GiB`, `64mb`, `1gb` or plain bytes.
/// A size as suricata.yaml writes them too: a number (decimals allowed)
/// and a unit in any case, where `kb`, `mb`, `gb` count in 1024s as in
/// Suricata, and so do `KiB`, `MiB`, `GiB` (and `k`, `m`, `g`).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    const EXPECTED: &str = "expected a size like 16MiB, 64mb, 512KiB, 1gb or a number of bytes";
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| EXPECTED.to_string())?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(EXPECTED.into()),
    };
    let b = n * scale as f64;
    if !b.is_finite() || b < 0.0 || b > (1u64 << 40) as f64 {
        return Err("size out of range (at most 1 TiB)".into());
    }
    if scale == 1 && n.fract() != 0.0 {
        return Err(EXPECTED.into());
    }
    usize::try_from(b.round() as u64).map_err(|_| "size out of range (at most 1 TiB)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"alert tcp $EXTERNAL_NET $HTTP_PORTS -> $HOME_NET any (msg:"ET EXPLOIT libPNG overflow"; flow: established; content:"|89 50 4E 47 0D 0A 1A 0A|"; depth:8; content:"sPLT"; isdataat:80,relative; content:!"|00|"; distance: 0; reference:url,www.example.com/a.html; classtype:misc-activity; sid:2001195; rev:9; metadata:created_at 2010_07_30, updated_at 2019_07_26;)"#;

    #[test]
    fn parses_a_real_shaped_rule() {
        let r = parse_rule(RULE).unwrap();
        assert_eq!(r.action, Action::Alert);
        assert_eq!(r.proto, "tcp");
        assert_eq!(r.src, AddrExpr::Var("EXTERNAL_NET".into()));
        assert_eq!(r.src_ports, PortExpr::Var("HTTP_PORTS".into()));
        assert_eq!(r.dst_ports, PortExpr::Any);
        assert!(!r.bidirectional);
        assert_eq!((r.sid, r.rev, r.gid), (2001195, 9, 1));
        assert_eq!(r.msg, "ET EXPLOIT libPNG overflow");
        let contents: Vec<Content> = r
            .options
            .iter()
            .filter(|o| o.keyword == "content")
            .map(|o| parse_content("content", o.value.as_deref().unwrap()).unwrap())
            .collect();
        assert_eq!(contents[0].bytes, b"\x89PNG\r\n\x1a\n");
        assert_eq!(contents[1].bytes, b"sPLT");
        assert!(contents[2].negated && contents[2].bytes == [0]);
    }

    #[test]
    fn escaped_semicolons_stay_inside_values() {
        let r = parse_rule(
            r#"alert http any any -> any any (msg:"a\;b"; content:"x\;y\"z\\"; sid:1;)"#,
        )
        .unwrap();
        let c = parse_content("content", r.options[1].value.as_deref().unwrap()).unwrap();
        assert_eq!(c.bytes, b"x;y\"z\\");
        assert_eq!(r.msg, r"a\;b");
    }

    #[test]
    fn addresses_and_ports() {
        assert_eq!(
            parse_addr("[10.0.0.0/8,!10.1.0.0/16,$DNS_SERVERS]").unwrap(),
            AddrExpr::List(vec![
                AddrExpr::Net("10.0.0.0".parse().unwrap(), 8),
                AddrExpr::Not(Box::new(AddrExpr::Net("10.1.0.0".parse().unwrap(), 16))),
                AddrExpr::Var("DNS_SERVERS".into()),
            ])
        );
        assert_eq!(
            parse_addr("2001:db8::/32").unwrap(),
            AddrExpr::Net("2001:db8::".parse().unwrap(), 32)
        );
        assert_eq!(
            parse_addr("192.168.0.0/255.255.0.0").unwrap(),
            AddrExpr::Net("192.168.0.0".parse().unwrap(), 16)
        );
        assert_eq!(parse_ports("1024:").unwrap(), PortExpr::Range(1024, 65535));
        assert_eq!(parse_ports(":1023").unwrap(), PortExpr::Range(0, 1023));
        assert_eq!(
            parse_ports("[80,8000:8100,!8081]").unwrap(),
            PortExpr::List(vec![
                PortExpr::Range(80, 80),
                PortExpr::Range(8000, 8100),
                PortExpr::Not(Box::new(PortExpr::Range(8081, 8081)))
            ])
        );
        for bad in ["10.0.0.300", "10.0.0.0/33", "[1.1.1.1", "$", ""] {
            assert!(parse_addr(bad).is_err(), "{bad}");
        }
        for bad in ["70000", "90:80", "[80", "http"] {
            assert!(parse_ports(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_keyword() {
        let err = |s: &str| parse_rule(s).unwrap_err();
        let e = err("alert tcp any any -> any any (msg:\"x\"; contnet:\"a\"; sid:1;)");
        assert_eq!(e.keyword.as_deref(), Some("contnet"));
        assert!(e.to_string().contains("unknown keyword"));
        let e = err("alert tcp any any -> any any (content:\"|0g|\"; sid:1;)");
        assert_eq!(e.keyword.as_deref(), Some("content"));
        let e = err("alert tcp any any -> any any (content:\"|0a 0|\"; sid:1;)");
        assert!(e.message.contains("odd number"));
        let e = err("alert tcp any any -> any any (pcre:\"/a/Z\"; sid:1;)");
        assert_eq!(e.keyword.as_deref(), Some("pcre"));
        let e = err("alert tcp any any -> any any (flow:to_srv; sid:1;)");
        assert_eq!(e.keyword.as_deref(), Some("flow"));
        let e = err("alert tcp any any -> any any (nocase:1; sid:1;)");
        assert!(e.message.contains("takes no value"));
        let e = err("alert tcp any any -> any any (msg:\"x\";)");
        assert_eq!(e.keyword.as_deref(), Some("sid"));
        let e = err(
            "alert tcp any any -> any any (threshold:type limit, track by_src, count 1; sid:1;)",
        );
        assert!(e.message.contains("seconds"));
        assert!(err("alert tcp any any <- any any (sid:1;)")
            .message
            .contains("direction"));
        assert!(err("bogus tcp any any -> any any (sid:1;)")
            .message
            .contains("action"));
        assert!(err("alert tcp any any -> any any sid:1;")
            .message
            .contains("option list"));
    }

    #[test]
    fn files_continue_lines_and_skip_comments() {
        let text = "# a comment\n\n#alert tcp any any -> any any (sid:9;)\nalert tcp any any -> any any \\\n  (msg:\"two\\\n lines\"; sid:2;)\nalert tcp any any -> any any (sid:3; bogus;)\n";
        let rules = parse_rules_text(Path::new("t.rules"), text);
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].0.line, 4);
        assert_eq!(rules[0].1.as_ref().unwrap().sid, 2);
        assert_eq!(rules[1].0.line, 7);
        assert_eq!(
            rules[1].1.as_ref().unwrap_err().keyword.as_deref(),
            Some("bogus")
        );
    }

    #[test]
    fn arbitrary_text_never_panics() {
        let mut x: u32 = 7;
        let alphabet = b"alert tcp any -> <> ( ) ; : \" | \\ ! [ ] , $ 0 1 a f content sid pcre /";
        for n in 0..3000usize {
            let s: String = (0..n % 120)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    alphabet[x as usize % alphabet.len()] as char
                })
                .collect();
            let _ = parse_rule(&s);
        }
    }
}
