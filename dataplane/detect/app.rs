//! Rules on app-layer buffers: a condition chain per buffer (`http.uri;
//! content:…`), `bsize` and `urilen` on a buffer's length, and the
//! per-buffer prefilter databases. A transaction is matched at each point
//! it reaches: every buffer whole at that point is scanned once with the
//! fast patterns of the rules evaluated there; each hit's rule is then
//! confirmed with all its chains on the same transaction.

use super::content::{Base64Chain, Check, ContentMatch, Inspection};
use super::transform::{Room, Transform};
use super::{content, PacketView};
use crate::applayer::blocks::Blocks;
use crate::applayer::http::detect::{Buffer, TxBuffers};
use crate::applayer::Point;
use hyperscan::prelude::*;

/// A comparison of a buffer's length: `bsize`, `urilen` (Suricata's
/// unsigned-integer forms: `N`, `<N`, `>N`, `<=N`, `>=N`, `!N`, `A<>B`,
/// the range exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LenCheck {
    Eq(u64),
    Ne(u64),
    Lt(u64),
    Le(u64),
    Gt(u64),
    Ge(u64),
    Range(u64, u64),
}

impl LenCheck {
    pub fn parse(k: &str, v: &str) -> Result<LenCheck, String> {
        let v = v.trim();
        let bad = || format!("{k}: `{v}`");
        let n = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        if let Some((a, b)) = v.split_once("<>") {
            let (a, b) = (n(a)?, n(b)?);
            if a >= b {
                return Err(bad());
            }
            return Ok(LenCheck::Range(a, b));
        }
        if let Some((a, b)) = v.split_once('-') {
            // `bsize:A-B`, an older inclusive form.
            let (a, b) = (n(a)?, n(b)?);
            return Ok(LenCheck::Range(a.saturating_sub(1), b + 1));
        }
        for (p, f) in [
            ("<=", LenCheck::Le as fn(u64) -> LenCheck),
            (">=", LenCheck::Ge),
            ("<", LenCheck::Lt),
            (">", LenCheck::Gt),
            ("!", LenCheck::Ne),
            ("=", LenCheck::Eq),
        ] {
            if let Some(r) = v.strip_prefix(p) {
                return Ok(f(n(r)?));
            }
        }
        Ok(LenCheck::Eq(n(v)?))
    }

    pub fn holds(self, len: usize) -> bool {
        self.holds_n(len as u64)
    }

    /// The comparison on a number (a length, or a numeric buffer's value).
    pub fn holds_n(self, n: u64) -> bool {
        match self {
            LenCheck::Eq(a) => n == a,
            LenCheck::Ne(a) => n != a,
            LenCheck::Lt(a) => n < a,
            LenCheck::Le(a) => n <= a,
            LenCheck::Gt(a) => n > a,
            LenCheck::Ge(a) => n >= a,
            LenCheck::Range(a, b) => n > a && n < b,
        }
    }
}

/// A rule's conditions on one app-layer buffer.
#[derive(Debug, Clone)]
pub struct AppChain {
    pub buffer: Buffer,
    /// Applied to the buffer, in order, before anything looks at it.
    pub transforms: Vec<Transform>,
    pub contents: Vec<ContentMatch>,
    pub checks: Vec<(usize, Check)>,
    pub len: Vec<LenCheck>,
    /// `absent`: Some(false) the buffer must be absent; Some(true)
    /// (`absent: or_else`) absent, or else the chain holds on it.
    pub absent: Option<bool>,
    /// The `base64_data` chain its `base64_decode` hands over to.
    pub b64: Option<Base64Chain>,
    /// `dataset` lookups (and additions) of the buffer, once the rest of
    /// the chain holds on it.
    pub datasets: Vec<super::dataset::DatasetCond>,
}

impl AppChain {
    /// Whether the chain holds on the transaction in `bufs`. A buffer the
    /// transaction lacks holds nothing (unless the chain asks for it to be
    /// absent); a buffer with instances (`http.request_header`) holds
    /// when one instance does.
    pub fn holds(
        &self,
        cx: &mut Inspection,
        room: &mut Room,
        bufs: &mut TxBuffers,
        blocks: &Blocks,
        sets: &super::dataset::DatasetTable,
    ) -> bool {
        if self.buffer.kind.multi() {
            let mut any = false;
            let present = bufs.each_instance(blocks, self.buffer, |b| {
                any = any || self.holds_on(cx, room, b, sets);
                !any
            });
            return match (present, self.absent) {
                (false, Some(_)) => true,
                (false, None) | (true, Some(false)) => false,
                (true, _) => any,
            };
        }
        match (bufs.get(blocks, self.buffer), self.absent) {
            (None, Some(_)) => true,
            (None, None) | (Some(_), Some(false)) => false,
            (Some(b), _) => self.holds_on(cx, room, b, sets),
        }
    }

    fn holds_on(
        &self,
        cx: &mut Inspection,
        room: &mut Room,
        b: &[u8],
        sets: &super::dataset::DatasetTable,
    ) -> bool {
        let b = if self.transforms.is_empty() {
            b
        } else {
            room.apply(&self.transforms, b)
        };
        // A numeric buffer's instance is its number (big-endian).
        let n = if self.buffer.kind.numeric() {
            b.iter().take(8).fold(0u64, |n, &c| n << 8 | u64::from(c))
        } else {
            b.len() as u64
        };
        self.len.iter().all(|l| l.holds_n(n))
            && content::matches_rule(&self.contents, &self.checks, self.b64.as_ref(), cx, b, 0)
            && self
                .datasets
                .iter()
                .all(|d| sets.get(d.id).is_some_and(|s| s.apply(d.cmd, b)))
    }

    /// Whether its fast pattern can go in a prefilter database: a buffer
    /// that must be present, as is or through parameter-free transforms
    /// (the database then scans what they make of the buffer, or of each
    /// of its instances, as Suricata's prefilter does: `dns.query;
    /// dotprefix; content:".example.com"`).
    pub fn prefilters(&self) -> bool {
        self.absent.is_none() && self.transform_codes().is_some()
    }

    /// The codes of its transforms, if every one has one.
    pub fn transform_codes(&self) -> Option<Vec<u8>> {
        self.transforms.iter().map(Transform::code).collect()
    }
}

/// Hash lists read while a rule set loads, by file and hash kind.
pub type HashLists = std::collections::BTreeMap<
    (std::path::PathBuf, u8),
    std::sync::Arc<std::collections::BTreeSet<Vec<u8>>>,
>;

/// `filemd5`, `filesha1`, `filesha256`: a file of the transaction whose
/// hash is in (or, negated, not in) a list read from a file.
#[derive(Debug, Clone)]
pub struct FileHashCond {
    /// Which hash (`applayer::http::hash::MD5` …).
    pub kind: u8,
    pub negated: bool,
    /// The list file as the rule names it (read when the rule set loads,
    /// relative to the rule file's folder).
    pub path: String,
    pub set: std::sync::Arc<std::collections::BTreeSet<Vec<u8>>>,
}

impl FileHashCond {
    pub fn parse(k: &str, v: &str) -> Result<FileHashCond, String> {
        use crate::applayer::http::hash;
        let kind = match k {
            "filemd5" => hash::MD5,
            "filesha1" => hash::SHA1,
            _ => hash::SHA256,
        };
        let (negated, path) = match v.trim().strip_prefix('!') {
            Some(p) => (true, p.trim()),
            None => (false, v.trim()),
        };
        if path.is_empty() {
            return Err(format!("{k}: a list file"));
        }
        Ok(FileHashCond {
            kind,
            negated,
            path: path.to_string(),
            set: Default::default(),
        })
    }

    /// Reads the list: a hex digest first on each line (`#` comments and
    /// blank lines skipped). A list several rules name is read once
    /// (`lists` keeps what was read, by file and hash kind).
    pub fn load(&mut self, dir: &std::path::Path, lists: &mut HashLists) -> Result<(), String> {
        let p = dir.join(&self.path);
        if let Some(set) = lists.get(&(p.clone(), self.kind)) {
            self.set = std::sync::Arc::clone(set);
            return Ok(());
        }
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let want = match self.kind {
            crate::applayer::http::hash::MD5 => 16,
            crate::applayer::http::hash::SHA1 => 20,
            _ => 32,
        };
        let mut set = std::collections::BTreeSet::new();
        for (n, line) in text.lines().enumerate() {
            let tok = line.split_whitespace().next().unwrap_or("");
            if tok.is_empty() || tok.starts_with('#') {
                continue;
            }
            let bytes = super::hex_bytes(tok).filter(|b| b.len() == want);
            let b =
                bytes.ok_or_else(|| format!("{}:{}: not a hash: `{tok}`", p.display(), n + 1))?;
            set.insert(b);
        }
        self.set = std::sync::Arc::new(set);
        lists.insert((p, self.kind), std::sync::Arc::clone(&self.set));
        Ok(())
    }

    /// Whether a file of the transaction in `bufs` has the hash (or,
    /// negated, a hash of that kind not in the list). A multipart
    /// upload's files are its parts, each hashed whole when asked (the
    /// body's own hash is of no file).
    pub fn holds(&self, bufs: &mut TxBuffers, blocks: &Blocks) -> bool {
        use crate::applayer::http::{hash, state::FileHashes};
        let check = |h: &FileHashes| {
            let d: Option<&[u8]> = match self.kind {
                hash::MD5 => h.md5.as_ref().map(|d| &d[..]),
                hash::SHA1 => h.sha1.as_ref().map(|d| &d[..]),
                _ => h.sha256.as_ref().map(|d| &d[..]),
            };
            d.is_some_and(|d| self.set.contains(d) != self.negated)
        };
        let t = *bufs.tx();
        if check(&t.resp_hash) {
            return true;
        }
        if !bufs.multipart_request(blocks) {
            return check(&t.req_hash);
        }
        let mut any = false;
        bufs.each_file(blocks, true, |v| {
            any = v.closed && check(&FileHashes::of(self.kind, v.data));
            !any
        });
        any
    }
}

/// The fast patterns of the rules evaluated at one point that sit in one
/// buffer.
pub struct TxDb {
    pub buffer: Buffer,
    /// Applied to the buffer before it is scanned (parameter-free ones).
    pub transforms: Vec<Transform>,
    pub point: Point,
    pub db: BlockDatabase,
    pub rules: usize,
}

impl std::fmt::Debug for TxDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TxDb({:?} at {:?}, {} rules)",
            self.buffer, self.point, self.rules
        )
    }
}

/// The views a transaction's rules are confirmed with: its flow toward the
/// server and toward the client.
#[derive(Debug, Clone, Copy)]
pub struct TxViews<'a> {
    pub to_server: PacketView<'a>,
    pub to_client: PacketView<'a>,
}

impl<'a> TxViews<'a> {
    /// The view for a rule with direction `dir` evaluated at `point`
    /// (unsaid: the direction the point belongs to).
    pub fn for_rule(&self, dir: Option<bool>, point: Point) -> &PacketView<'a> {
        let to_server = dir.unwrap_or(point <= Point::RequestBody);
        if to_server {
            &self.to_server
        } else {
            &self.to_client
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_checks_read_as_suricata_writes_them() {
        let c = |v| LenCheck::parse("bsize", v).unwrap();
        assert!(c("10").holds(10) && !c("10").holds(11));
        assert!(c("<10").holds(9) && !c("<10").holds(10));
        assert!(c(">=3").holds(3) && !c(">=3").holds(2));
        assert!(c("5<>8").holds(6) && !c("5<>8").holds(5) && !c("5<>8").holds(8));
        assert!(c("!4").holds(5) && !c("!4").holds(4));
        assert!(LenCheck::parse("bsize", "8<>5").is_err());
        assert!(LenCheck::parse("bsize", "x").is_err());
    }
}
