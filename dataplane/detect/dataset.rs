//! `dataset`: named sets of values a rule looks a buffer up in, or adds it
//! to (`set`, `unset`, `isset`, `isnotset`), as Suricata's datasets: lists
//! of known-bad model hashes, hosts an agent must not reach, user agents
//! already seen. A set is loaded at start (`load`, `state`) and written at
//! exit (`save`, `state`) in Suricata's format: a value per line, strings
//! in base64, md5 and sha256 in hex, addresses as text.
//!
//! `datarep` looks a value's reputation up instead (`datarep:name, >, 200,
//! load file, type string`): each line of a reputation file is a value
//! then its reputation (0–65,535), and the rule holds when the value is
//! in the set with a reputation that compares as it says.
//!
//! Every worker shares one table per set, preallocated at load and
//! lock-free, as the xbits table is: a value's 128-bit digest claims a slot
//! with a compare-and-swap, and its bytes go to the set's arena (for the
//! save file). Nothing is allocated or locked per packet; a set that is full
//! counts what it could not add.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a dataset command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// Add the value; holds when it was not there.
    Set,
    /// Remove it; holds when it was there.
    Unset,
    IsSet,
    IsNotSet,
    /// `datarep`: in the set, with a reputation that compares so.
    Rep(RepOp, u16),
}

/// A `datarep` comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepOp {
    Gt,
    Lt,
    Eq,
}

/// What a set holds, and how its file writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    String,
    /// 16 raw bytes (a buffer after `to_md5`); hex in the file.
    Md5,
    /// 32 raw bytes (after `to_sha256`); hex in the file.
    Sha256,
    /// 4 raw bytes; dotted in the file.
    Ipv4,
    /// 16 raw bytes (IPv4 mapped); text in the file.
    Ip,
}

impl DataType {
    fn of(s: &str) -> Option<DataType> {
        Some(match s {
            "string" => DataType::String,
            "md5" => DataType::Md5,
            "sha256" => DataType::Sha256,
            "ipv4" => DataType::Ipv4,
            "ip" => DataType::Ip,
            _ => return None,
        })
    }

    /// The length every value must have (None: any, up to `STRING_MAX`).
    fn fixed_len(self) -> Option<usize> {
        match self {
            DataType::String => None,
            DataType::Md5 => Some(16),
            DataType::Sha256 => Some(32),
            DataType::Ipv4 => Some(4),
            DataType::Ip => Some(16),
        }
    }
}

/// Longest string value kept.
pub const STRING_MAX: usize = 4096;
/// A set's memory when the rule does not say (values and slots).
pub const DEFAULT_MEMCAP: usize = 16 << 20;

/// A set as a rule declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub kind: DataType,
    pub load: Option<String>,
    pub save: Option<String>,
    pub memcap: usize,
}

/// One `dataset` option of a rule: on the buffer it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetCond {
    pub cmd: Cmd,
    pub spec: Spec,
    /// The set's number in the engine's table, given at load.
    pub id: u16,
    /// The directory of the rule file that names it (its `load` file is
    /// looked for there first).
    pub rule_dir: PathBuf,
}

impl DatasetCond {
    /// `cmd,name[,type T][,load F][,save F][,state F][,memcap N][,hashsize N]`.
    pub fn parse(v: &str) -> Result<DatasetCond, String> {
        let bad = |what: String| format!("dataset: {what}");
        let mut parts = v.split(',').map(str::trim);
        let cmd = match parts.next().unwrap_or("") {
            "set" => Cmd::Set,
            "unset" => Cmd::Unset,
            "isset" => Cmd::IsSet,
            "isnotset" => Cmd::IsNotSet,
            other => {
                return Err(bad(format!(
                    "`{other}` is no command (set, unset, isset, isnotset)"
                )))
            }
        };
        let name = parts.next().unwrap_or("");
        if name.is_empty()
            || !name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
        {
            return Err(bad(format!("`{name}` is no set name")));
        }
        let mut spec = Spec {
            name: name.to_string(),
            kind: DataType::String,
            load: None,
            save: None,
            memcap: DEFAULT_MEMCAP,
        };
        for item in parts {
            let (k, arg) = item
                .split_once(char::is_whitespace)
                .map(|(a, b)| (a, b.trim()))
                .ok_or_else(|| bad(format!("`{item}` has no value")))?;
            match k {
                "type" => {
                    spec.kind = DataType::of(arg).ok_or_else(|| bad(format!("type `{arg}`")))?
                }
                "load" | "save" | "state" => {
                    // Checked here, so a bad name is the rule's error.
                    inside(Path::new("."), arg).map_err(bad)?;
                    if k != "save" {
                        spec.load = Some(arg.to_string());
                    }
                    if k != "load" {
                        spec.save = Some(arg.to_string());
                    }
                }
                "memcap" => {
                    spec.memcap =
                        crate::rules::parse_bytes(arg).map_err(|e| bad(format!("memcap: {e}")))?
                }
                // Sizes its hash; ours follows from the memcap.
                "hashsize" => {
                    arg.parse::<u32>()
                        .map_err(|_| bad(format!("hashsize `{arg}`")))?;
                }
                other => return Err(bad(format!("`{other}`"))),
            }
        }
        Ok(DatasetCond {
            cmd,
            spec,
            id: 0,
            rule_dir: PathBuf::new(),
        })
    }

    /// `datarep:name, OP, VALUE[, type T][, load F][, memcap N]…`: the
    /// options as `dataset`'s.
    pub fn parse_rep(v: &str) -> Result<DatasetCond, String> {
        let bad = |what: String| format!("datarep: {what}");
        let mut parts = v.splitn(4, ',').map(str::trim);
        let name = parts.next().unwrap_or("");
        let op = match parts.next().unwrap_or("") {
            ">" => RepOp::Gt,
            "<" => RepOp::Lt,
            "=" | "==" => RepOp::Eq,
            other => return Err(bad(format!("`{other}` is no operator (>, <, =)"))),
        };
        let value = parts.next().unwrap_or("");
        let value = value
            .parse::<u16>()
            .map_err(|_| bad(format!("`{value}` is no reputation (0-65535)")))?;
        let rest = parts.next().map(|r| format!(",{r}")).unwrap_or_default();
        let mut c = DatasetCond::parse(&format!("isset,{name}{rest}")).map_err(|e| {
            e.strip_prefix("dataset: ")
                .map_or(e.clone(), |s| bad(s.to_string()))
        })?;
        c.cmd = Cmd::Rep(op, value);
        Ok(c)
    }
}

/// A slot: the value's digest (high word 0: empty, 1: removed) and where
/// its bytes are in the arena (word offset << 16 | length).
#[derive(Debug, Default)]
struct Slot {
    hi: AtomicU64,
    lo: AtomicU64,
    at: AtomicU64,
    /// The value's reputation (`datarep`), from its file.
    rep: std::sync::atomic::AtomicU32,
}

const EMPTY: u64 = 0;
const REMOVED: u64 = 1;
/// Slots probed for a value before the set counts as full.
const PROBE: usize = 32;

/// One set, shared by every worker.
#[derive(Debug)]
pub struct Set {
    pub spec: Spec,
    slots: Box<[Slot]>,
    /// The values' bytes, 8 to a word; `used` words are taken.
    arena: Box<[AtomicU64]>,
    used: AtomicU64,
    /// Values it had no room for.
    pub full: AtomicU64,
}

fn digest(v: &[u8]) -> (u64, u64) {
    use std::hash::{Hash, Hasher};
    let half = |seed: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        v.hash(&mut h);
        h.finish()
    };
    // 0 and 1 mark empty and removed slots.
    (half(0).max(2), half(1))
}

impl Set {
    fn new(spec: Spec) -> Set {
        // Slots and arena share the memcap: a slot takes 24 bytes, and a
        // value its length rounded up to words (guessed at 64 bytes for
        // strings).
        let per_value = 24 + spec.kind.fixed_len().unwrap_or(64).next_multiple_of(8);
        let n = (spec.memcap / per_value)
            .clamp(64, 1 << 26)
            .next_power_of_two();
        let words = (spec.memcap.saturating_sub(n * 24) / 8).max(64);
        Set {
            spec,
            slots: (0..n).map(|_| Slot::default()).collect(),
            arena: (0..words).map(|_| AtomicU64::new(0)).collect(),
            used: AtomicU64::new(0),
            full: AtomicU64::new(0),
        }
    }

    fn find(&self, hi: u64, lo: u64) -> Option<&Slot> {
        let mask = self.slots.len() - 1;
        (0..PROBE)
            .map(|i| &self.slots[(hi as usize).wrapping_add(i) & mask])
            .find(|s| s.hi.load(Ordering::Acquire) == hi && s.lo.load(Ordering::Acquire) == lo)
    }

    pub fn contains(&self, v: &[u8]) -> bool {
        let (hi, lo) = digest(v);
        self.find(hi, lo).is_some()
    }

    /// Adds `v`; true if it was not there (false if it was, or no room).
    pub fn add(&self, v: &[u8]) -> bool {
        let ok_len = match self.spec.kind.fixed_len() {
            Some(n) => v.len() == n,
            None => v.len() <= STRING_MAX,
        };
        if !ok_len {
            self.full.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let (hi, lo) = digest(v);
        if self.find(hi, lo).is_some() {
            return false;
        }
        let mask = self.slots.len() - 1;
        for i in 0..PROBE {
            let s = &self.slots[(hi as usize).wrapping_add(i) & mask];
            let cur = s.hi.load(Ordering::Acquire);
            if cur != EMPTY && cur != REMOVED {
                continue;
            }
            // The bytes first, then the claim: a reader that sees the
            // digest sees a value.
            let words = v.len().div_ceil(8) as u64;
            let start = self.used.fetch_add(words, Ordering::Relaxed);
            if start + words > self.arena.len() as u64 {
                self.full.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            for (k, chunk) in v.chunks(8).enumerate() {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                self.arena[start as usize + k].store(u64::from_le_bytes(w), Ordering::Relaxed);
            }
            s.at.store(start << 16 | v.len() as u64, Ordering::Release);
            s.lo.store(lo, Ordering::Release);
            if s.hi
                .compare_exchange(cur, hi, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // Another worker may have claimed an earlier slot for the
                // same value meanwhile: the earlier one stands.
                let earlier = (0..i).any(|j| {
                    let e = &self.slots[(hi as usize).wrapping_add(j) & mask];
                    e.hi.load(Ordering::Acquire) == hi && e.lo.load(Ordering::Acquire) == lo
                });
                if earlier {
                    s.hi.store(REMOVED, Ordering::Release);
                    return false;
                }
                return true;
            }
            // Another worker took the slot: its value, or this one.
            if self.find(hi, lo).is_some() {
                return false;
            }
        }
        self.full.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Removes `v`; true if it was there.
    pub fn remove(&self, v: &[u8]) -> bool {
        let (hi, lo) = digest(v);
        match self.find(hi, lo) {
            Some(s) => {
                s.hi.compare_exchange(hi, REMOVED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            }
            None => false,
        }
    }

    /// Runs the command on `v`.
    pub fn apply(&self, cmd: Cmd, v: &[u8]) -> bool {
        match cmd {
            Cmd::Set => self.add(v),
            Cmd::Unset => self.remove(v),
            Cmd::IsSet => self.contains(v),
            Cmd::IsNotSet => !self.contains(v),
            Cmd::Rep(op, want) => {
                let (hi, lo) = digest(v);
                self.find(hi, lo).is_some_and(|s| {
                    let rep = s.rep.load(Ordering::Acquire) as u16;
                    match op {
                        RepOp::Gt => rep > want,
                        RepOp::Lt => rep < want,
                        RepOp::Eq => rep == want,
                    }
                })
            }
        }
    }

    /// Adds `v` with its reputation (a reputation file's line).
    fn add_rep(&self, v: &[u8], rep: u16) {
        self.add(v);
        let (hi, lo) = digest(v);
        if let Some(s) = self.find(hi, lo) {
            s.rep.store(u32::from(rep), Ordering::Release);
        }
    }

    /// The values it holds (once no worker adds any more).
    pub fn values(&self) -> Vec<Vec<u8>> {
        self.slots
            .iter()
            .filter(|s| s.hi.load(Ordering::Acquire) > REMOVED)
            .map(|s| {
                let at = s.at.load(Ordering::Acquire);
                let (start, len) = ((at >> 16) as usize, (at & 0xffff) as usize);
                let mut v: Vec<u8> = self.arena[start..start + len.div_ceil(8)]
                    .iter()
                    .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
                    .collect();
                v.truncate(len);
                v
            })
            .collect()
    }

    /// One line of its file.
    fn format(&self, v: &[u8]) -> String {
        match self.spec.kind {
            DataType::String => super::content::base64_encode(v),
            DataType::Md5 | DataType::Sha256 => v.iter().map(|b| format!("{b:02x}")).collect(),
            DataType::Ipv4 => IpAddr::from(<[u8; 4]>::try_from(v).unwrap_or_default()).to_string(),
            DataType::Ip => {
                let a = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(v).unwrap_or_default());
                a.to_ipv4_mapped()
                    .map_or(IpAddr::V6(a), IpAddr::V4)
                    .to_string()
            }
        }
    }

    /// A line of its file as a value (anything after a comma is a
    /// reputation or a comment, as Suricata's format allows).
    fn parse(&self, line: &str) -> Option<Vec<u8>> {
        let text = line.split(',').next()?.trim();
        match self.spec.kind {
            DataType::String => {
                let mut out = Vec::new();
                super::content::base64_into(text.as_bytes(), false, STRING_MAX, &mut out);
                (!out.is_empty()).then_some(out)
            }
            DataType::Md5 | DataType::Sha256 => super::hex_bytes(text),
            DataType::Ipv4 => match text.parse::<IpAddr>().ok()? {
                IpAddr::V4(a) => Some(a.octets().to_vec()),
                IpAddr::V6(_) => None,
            },
            DataType::Ip => Some(match text.parse::<IpAddr>().ok()? {
                IpAddr::V4(a) => a.to_ipv6_mapped().octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            }),
        }
    }
}

/// Every set the rules declare, by number.
#[derive(Debug, Default)]
pub struct DatasetTable {
    pub sets: Vec<Set>,
    /// Where `save` and `state` files go.
    pub data_dir: PathBuf,
}

/// A file a rule names: relative, and inside its directory (rules must not
/// write elsewhere, as Suricata's default `security.datasets` says).
fn inside(dir: &Path, file: &str) -> Result<PathBuf, String> {
    let p = Path::new(file);
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!(
            "dataset file `{file}`: expected a relative path without `..`"
        ));
    }
    Ok(dir.join(p))
}

impl DatasetTable {
    /// The sets `conds` name (each numbered), loaded from their files: a
    /// `load` file beside the rule file (`rule_dirs[i]` for `conds[i]`), a
    /// `state` file in `data_dir`. Two declarations of a name that
    /// disagree, a bad file name or an unreadable line are errors.
    pub fn build(conds: &mut [&mut DatasetCond], data_dir: &Path) -> Result<DatasetTable, String> {
        let mut by_name: BTreeMap<String, u16> = BTreeMap::new();
        let mut table = DatasetTable {
            sets: Vec::new(),
            data_dir: data_dir.to_path_buf(),
        };
        for c in conds.iter_mut() {
            let rule_dir = c.rule_dir.clone();
            if let Some(&id) = by_name.get(&c.spec.name) {
                let have = &mut table.sets[usize::from(id)].spec;
                if have.kind != c.spec.kind {
                    return Err(format!("dataset {}: declared as two types", c.spec.name));
                }
                // Files said once are for every rule that names the set.
                have.load = have.load.take().or(c.spec.load.clone());
                have.save = have.save.take().or(c.spec.save.clone());
                c.id = id;
                continue;
            }
            let id = u16::try_from(table.sets.len()).map_err(|_| "more than 65,536 datasets")?;
            by_name.insert(c.spec.name.clone(), id);
            c.id = id;
            let set = Set::new(c.spec.clone());
            if let Some(f) = &c.spec.load {
                // A state file lives in the data directory; a load file
                // beside the rules (then there).
                let beside = inside(&rule_dir, f)?;
                let path = if c.spec.save.as_deref() == Some(f.as_str()) || !beside.exists() {
                    inside(data_dir, f)?
                } else {
                    beside
                };
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        for (n, line) in text.lines().enumerate() {
                            if line.trim().is_empty() || line.starts_with('#') {
                                continue;
                            }
                            let v = set.parse(line).ok_or_else(|| {
                                format!(
                                    "{}:{}: not a {:?} value",
                                    path.display(),
                                    n + 1,
                                    c.spec.kind
                                )
                            })?;
                            if matches!(c.cmd, Cmd::Rep(..)) {
                                // A reputation file: `value,reputation`.
                                let rep = line
                                    .split(',')
                                    .nth(1)
                                    .and_then(|r| r.trim().parse::<u16>().ok())
                                    .ok_or_else(|| {
                                        format!(
                                            "{}:{}: expected `value,reputation` (0-65535)",
                                            path.display(),
                                            n + 1
                                        )
                                    })?;
                                set.add_rep(&v, rep);
                            } else {
                                set.add(&v);
                            }
                        }
                    }
                    // A state file that is not there yet starts empty.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && c.spec.save.is_some() => {
                    }
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                }
            }
            table.sets.push(set);
        }
        Ok(table)
    }

    pub fn get(&self, id: u16) -> Option<&Set> {
        self.sets.get(usize::from(id))
    }

    /// Writes every set that has a `save` (or `state`) file, as the
    /// process ends; the paths written.
    pub fn save(&self) -> Result<Vec<PathBuf>, String> {
        let mut written = Vec::new();
        for s in &self.sets {
            let Some(f) = &s.spec.save else { continue };
            let path = inside(&self.data_dir, f)?;
            let mut text = String::new();
            for v in s.values() {
                text.push_str(&s.format(&v));
                text.push('\n');
            }
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(kind: DataType) -> Set {
        Set::new(Spec {
            name: "s".into(),
            kind,
            load: None,
            save: None,
            memcap: 64 * 1024,
        })
    }

    #[test]
    fn commands_hold_as_suricatas_do() {
        let s = set(DataType::String);
        assert!(s.apply(Cmd::IsNotSet, b"ua1"));
        assert!(s.apply(Cmd::Set, b"ua1"), "new: holds");
        assert!(!s.apply(Cmd::Set, b"ua1"), "there already: does not");
        assert!(s.apply(Cmd::IsSet, b"ua1") && !s.apply(Cmd::IsNotSet, b"ua1"));
        assert!(s.apply(Cmd::Unset, b"ua1"));
        assert!(!s.apply(Cmd::Unset, b"ua1"));
        assert!(s.apply(Cmd::Set, b"ua1"), "set again after unset");
        s.add(b"ua2");
        let mut v = s.values();
        v.sort();
        assert_eq!(v, [b"ua1".to_vec(), b"ua2".to_vec()]);
    }

    #[test]
    fn reputations_load_from_their_file_and_compare() {
        let dir = std::env::temp_dir().join(format!("tollgate-datarep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // google.com at 255, example.com at 10.
        std::fs::write(
            dir.join("r.rep"),
            "Z29vZ2xlLmNvbQ==,255\nZXhhbXBsZS5jb20=,10\n",
        )
        .unwrap();
        let mut c = DatasetCond::parse_rep("rep, >, 200, load r.rep, type string").unwrap();
        assert_eq!(c.cmd, Cmd::Rep(RepOp::Gt, 200));
        c.rule_dir = dir.clone();
        let t = DatasetTable::build(&mut [&mut c], &dir).unwrap();
        let s = t.get(c.id).unwrap();
        assert!(s.apply(c.cmd, b"google.com"));
        assert!(!s.apply(c.cmd, b"example.com"));
        assert!(!s.apply(c.cmd, b"unknown.org"));
        assert!(s.apply(Cmd::Rep(RepOp::Lt, 11), b"example.com"));
        assert!(s.apply(Cmd::Rep(RepOp::Eq, 255), b"google.com"));
        // A line without its reputation is the file's error.
        std::fs::write(dir.join("bad.rep"), "Z29vZ2xlLmNvbQ==\n").unwrap();
        let mut c = DatasetCond::parse_rep("bad, <, 3, load bad.rep").unwrap();
        c.rule_dir = dir.clone();
        let e = DatasetTable::build(&mut [&mut c], &dir).unwrap_err();
        assert!(e.contains("bad.rep:1"), "{e}");
        assert!(DatasetCond::parse_rep("x, >=, 3").is_err());
        assert!(DatasetCond::parse_rep("x, >, 70000").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_set_counts_what_it_could_not_add() {
        let s = set(DataType::Sha256);
        assert!(!s.add(b"short"), "a sha256 is 32 bytes");
        let mut added = 0;
        for i in 0..100_000u32 {
            let mut v = [0u8; 32];
            v[..4].copy_from_slice(&i.to_le_bytes());
            added += usize::from(s.add(&v));
        }
        assert!(added > 100 && added < 100_000, "{added}");
        assert_eq!(s.full.load(Ordering::Relaxed) as usize, 100_000 - added + 1);
    }

    #[test]
    fn workers_adding_the_same_values_keep_one_of_each() {
        let s = std::sync::Arc::new(set(DataType::String));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let s = std::sync::Arc::clone(&s);
                std::thread::spawn(move || {
                    (0..500u32)
                        .filter(|i| s.add(format!("v{i}").as_bytes()))
                        .count()
                })
            })
            .collect();
        let total: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 500, "each value added once");
        assert_eq!(s.values().len(), 500);
    }

    #[test]
    fn options_parse_and_bad_ones_say_what_is_expected() {
        let c = DatasetCond::parse("set,ua-seen, type string, save after.csv").unwrap();
        assert_eq!((c.cmd, c.spec.name.as_str()), (Cmd::Set, "ua-seen"));
        assert_eq!(c.spec.save.as_deref(), Some("after.csv"));
        let c =
            DatasetCond::parse("isset,bad-models,type sha256,state models.lst,memcap 1mb").unwrap();
        assert_eq!(c.spec.load, c.spec.save);
        assert_eq!(c.spec.memcap, 1 << 20);
        for bad in [
            "add,x",
            "set,",
            "set,x,type float",
            "set,x,save",
            "set,x,color red",
            "set,a b",
        ] {
            assert!(DatasetCond::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn files_are_read_and_written_in_suricatas_format() {
        let dir = std::env::temp_dir().join(format!("tollgate-dataset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sha = "a".repeat(64);
        std::fs::write(dir.join("models.lst"), format!("# known bad\n{sha},100\n")).unwrap();
        let mut a = DatasetCond::parse("isset,models,type sha256,load models.lst").unwrap();
        let mut b = DatasetCond::parse("set,ua,type string,state ua.lst").unwrap();
        let mut ip = DatasetCond::parse("set,hosts,type ip,save hosts.lst").unwrap();
        let t = DatasetTable::build(&mut [&mut a, &mut b, &mut ip], &dir).unwrap();
        assert_eq!((a.id, b.id, ip.id), (0, 1, 2));
        assert!(t.get(0).unwrap().contains(&[0xaa; 32]));
        t.get(1).unwrap().add(b"curl/8.0");
        t.get(2).unwrap().add(
            &std::net::Ipv4Addr::new(10, 0, 0, 1)
                .to_ipv6_mapped()
                .octets(),
        );
        assert_eq!(t.save().unwrap().len(), 2);
        assert_eq!(
            std::fs::read_to_string(dir.join("ua.lst")).unwrap(),
            "Y3VybC84LjA=\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("hosts.lst")).unwrap(),
            "10.0.0.1\n"
        );
        // The state file is read back next time.
        let mut b2 = DatasetCond::parse("isset,ua,type string,state ua.lst").unwrap();
        let t = DatasetTable::build(&mut [&mut b2], &dir).unwrap();
        assert!(t.get(0).unwrap().contains(b"curl/8.0"));
        // A path out of the directory, a bad line, two types: refused.
        for esc in [
            "set,x,save ../x",
            "set,x,state /etc/x",
            "isset,x,load a/../../x",
        ] {
            assert!(DatasetCond::parse(esc)
                .unwrap_err()
                .contains("without `..`"));
        }
        std::fs::write(dir.join("bad.lst"), "not hex\n").unwrap();
        let mut bad = DatasetCond::parse("isset,y,type md5,load bad.lst").unwrap();
        let e = DatasetTable::build(&mut [&mut bad], &dir).unwrap_err();
        assert!(e.contains("bad.lst:1"), "{e}");
        let mut t1 = DatasetCond::parse("set,z,type md5").unwrap();
        let mut t2 = DatasetCond::parse("set,z,type string").unwrap();
        assert!(DatasetTable::build(&mut [&mut t1, &mut t2], &dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
