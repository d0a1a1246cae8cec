//! `isdataat`, `byte_test` and `byte_jump`: checks on the payload at a
//! position, absolute or relative to where the previous content (or jump)
//! left the detection pointer, as Suricata's content inspection runs them.
//! A check sits in the rule's content chain after the contents before it, so
//! backtracking retries it at every later place an earlier content matches.
//! `byte_jump` moves the pointer; the others leave it where it is.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Gt,
    Eq,
    Le,
    Ge,
    /// `&`: any bit in common.
    And,
    /// `^`: differs.
    Xor,
}

/// How the bytes read become a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub nbytes: u8,
    pub little: bool,
    /// `string,dec|hex|oct`: ASCII digits in this base.
    pub base: Option<u32>,
    pub bitmask: Option<u64>,
}

impl Read {
    /// The number at `at`, if the bytes are there (and are digits).
    fn at(&self, buf: &[u8], at: usize) -> Option<u64> {
        let b = buf.get(at..at.checked_add(usize::from(self.nbytes))?)?;
        let mut v = match self.base {
            Some(base) => u64::from_str_radix(std::str::from_utf8(b).ok()?.trim(), base).ok()?,
            None => {
                let fold = |acc: u64, &x: &u8| (acc << 8) | u64::from(x);
                if self.little {
                    b.iter().rev().fold(0, fold)
                } else {
                    b.iter().fold(0, fold)
                }
            }
        };
        if let Some(m) = self.bitmask {
            v &= m;
            if m != 0 {
                v >>= m.trailing_zeros();
            }
        }
        Some(v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteCheck {
    IsDataAt {
        n: u32,
        relative: bool,
        negated: bool,
    },
    Test {
        read: Read,
        op: Op,
        negated: bool,
        value: u64,
        offset: i32,
        relative: bool,
    },
    Jump {
        read: Read,
        offset: i32,
        relative: bool,
        multiplier: u32,
        align: bool,
        from_beginning: bool,
        from_end: bool,
        post_offset: i32,
    },
}

fn start(buf: &[u8], prev_end: usize, relative: bool, offset: i32) -> Option<usize> {
    let base = if relative { prev_end as i64 } else { 0 };
    let at = base + i64::from(offset);
    usize::try_from(at).ok().filter(|&a| a <= buf.len())
}

impl ByteCheck {
    pub fn relative(&self) -> bool {
        match *self {
            ByteCheck::IsDataAt { relative, .. }
            | ByteCheck::Test { relative, .. }
            | ByteCheck::Jump { relative, .. } => relative,
        }
    }

    /// Runs the check with the pointer at `prev_end`; the pointer after it
    /// if it holds.
    pub fn apply(&self, buf: &[u8], prev_end: usize) -> Option<usize> {
        match *self {
            ByteCheck::IsDataAt {
                n,
                relative,
                negated,
            } => {
                let n = n as usize;
                let present = if relative {
                    prev_end.saturating_add(n) <= buf.len()
                } else {
                    n < buf.len()
                };
                (present != negated).then_some(prev_end)
            }
            ByteCheck::Test {
                read,
                op,
                negated,
                value,
                offset,
                relative,
            } => {
                let v = read.at(buf, start(buf, prev_end, relative, offset)?)?;
                let hit = match op {
                    Op::Lt => v < value,
                    Op::Gt => v > value,
                    Op::Eq => v == value,
                    Op::Le => v <= value,
                    Op::Ge => v >= value,
                    Op::And => v & value != 0,
                    Op::Xor => v ^ value != 0,
                };
                (hit != negated).then_some(prev_end)
            }
            ByteCheck::Jump {
                read,
                offset,
                relative,
                multiplier,
                align,
                from_beginning,
                from_end,
                post_offset,
            } => {
                let at = start(buf, prev_end, relative, offset)?;
                let mut jump = read.at(buf, at)?.checked_mul(u64::from(multiplier))?;
                if align {
                    jump = jump.checked_add(3)? & !3;
                }
                let from = if from_beginning {
                    0
                } else if from_end {
                    buf.len()
                } else {
                    at + usize::from(read.nbytes)
                };
                let to = i64::try_from(from as u64 + jump).ok()? + i64::from(post_offset);
                usize::try_from(to).ok().filter(|&t| t <= buf.len())
            }
        }
    }

    /// Reads `isdataat`, `byte_test` or `byte_jump` and its value.
    pub fn parse(keyword: &str, v: &str) -> Result<ByteCheck, String> {
        let items: Vec<&str> = v.split(',').map(str::trim).collect();
        // Reasons stay general (no values): `rules check` counts skips by them.
        let bad = |what: &str| format!("{keyword}: {what}");
        let int = |s: &str| -> Result<i64, String> {
            let s = s.trim();
            let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(h) => i64::from_str_radix(h, 16),
                None => s.parse::<i64>(),
            };
            // A name: a byte_extract variable.
            r.map_err(|_| format!("{keyword}: byte_extract variables are not evaluated yet"))
        };
        match keyword {
            "isdataat" => {
                let first = items.first().copied().unwrap_or("");
                let (negated, n) = match first.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, first),
                };
                let n = u32::try_from(int(n)?).map_err(|_| bad("a negative position"))?;
                let mut relative = false;
                for it in &items[1..] {
                    match *it {
                        "relative" => relative = true,
                        "rawbytes" => {}
                        other => return Err(bad(&format!("`{other}`"))),
                    }
                }
                Ok(ByteCheck::IsDataAt {
                    n,
                    relative,
                    negated,
                })
            }
            "byte_test" | "byte_jump" => {
                let nbytes = items
                    .first()
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|n| (1..=10).contains(n))
                    .ok_or_else(|| bad("bytes to read (1-10)"))?;
                let mut read = Read {
                    nbytes,
                    little: false,
                    base: None,
                    bitmask: None,
                };
                let (mut relative, mut align, mut from_beginning, mut from_end) =
                    (false, false, false, false);
                let (mut multiplier, mut post_offset) = (1u32, 0i32);
                let (op, negated, value, offset, rest) = if keyword == "byte_test" {
                    let (opstr, value, offset) = match items.as_slice() {
                        [_, o, v, off, ..] => (*o, *v, *off),
                        _ => return Err(bad("expected bytes, operator, value, offset")),
                    };
                    let (negated, opstr) = match opstr.strip_prefix('!') {
                        Some(r) if !r.is_empty() => (true, r),
                        Some(_) => (true, "="),
                        None => (false, opstr),
                    };
                    let op = match opstr {
                        "<" => Op::Lt,
                        ">" => Op::Gt,
                        "=" => Op::Eq,
                        "<=" => Op::Le,
                        ">=" => Op::Ge,
                        "&" => Op::And,
                        "^" => Op::Xor,
                        other => return Err(bad(&format!("operator `{other}`"))),
                    };
                    let value = u64::try_from(int(value)?).map_err(|_| bad("a negative value"))?;
                    (op, negated, value, int(offset)?, &items[4..])
                } else {
                    let offset = items.get(1).ok_or_else(|| bad("expected bytes, offset"))?;
                    (Op::Eq, false, 0, int(offset)?, &items[2..])
                };
                let offset = i32::try_from(offset).map_err(|_| bad("offset out of range"))?;
                let mut it = rest.iter().copied();
                while let Some(opt) = it.next() {
                    let (word, arg) = opt
                        .split_once(char::is_whitespace)
                        .map_or((opt, None), |(a, b)| (a, Some(b.trim())));
                    match (word, arg) {
                        ("relative", None) => relative = true,
                        ("big", None) => read.little = false,
                        ("little", None) => read.little = true,
                        ("dce", None) => return Err(format!("{keyword}: dce")),
                        ("string", None) => {
                            let base = match it.next() {
                                Some("dec") => 10,
                                Some("hex") => 16,
                                Some("oct") => 8,
                                other => return Err(bad(&format!("string base {other:?}"))),
                            };
                            read.base = Some(base);
                        }
                        ("bitmask", Some(m)) => {
                            read.bitmask =
                                Some(u64::try_from(int(m)?).map_err(|_| bad("a negative mask"))?);
                        }
                        ("multiplier", Some(m)) if keyword == "byte_jump" => {
                            multiplier = u32::try_from(int(m)?).map_err(|_| bad("multiplier"))?;
                        }
                        ("post_offset", Some(m)) if keyword == "byte_jump" => {
                            post_offset = i32::try_from(int(m)?).map_err(|_| bad("post_offset"))?;
                        }
                        ("align", None) if keyword == "byte_jump" => align = true,
                        ("from_beginning", None) if keyword == "byte_jump" => {
                            from_beginning = true;
                        }
                        ("from_end", None) if keyword == "byte_jump" => from_end = true,
                        _ => return Err(bad(&format!("`{opt}`"))),
                    }
                }
                if read.base.is_none() && nbytes > 8 {
                    return Err(bad("more than 8 bytes without `string`"));
                }
                if keyword == "byte_test" {
                    Ok(ByteCheck::Test {
                        read,
                        op,
                        negated,
                        value,
                        offset,
                        relative,
                    })
                } else {
                    Ok(ByteCheck::Jump {
                        read,
                        offset,
                        relative,
                        multiplier,
                        align,
                        from_beginning,
                        from_end,
                        post_offset,
                    })
                }
            }
            other => Err(format!("{other} is not a byte check")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kw: &str, v: &str, buf: &[u8], prev_end: usize) -> Option<usize> {
        ByteCheck::parse(kw, v).unwrap().apply(buf, prev_end)
    }

    #[test]
    fn isdataat_absolute_relative_negated() {
        assert_eq!(check("isdataat", "3", b"abcd", 0), Some(0));
        assert_eq!(check("isdataat", "4", b"abcd", 0), None, "one past");
        assert_eq!(check("isdataat", "2,relative", b"abcd", 2), Some(2));
        assert_eq!(check("isdataat", "3,relative", b"abcd", 2), None);
        assert_eq!(check("isdataat", "!3,relative", b"abcd", 2), Some(2));
    }

    #[test]
    fn byte_test_reads_binary_and_strings() {
        let buf = b"\x00\x10\x01\x00len=0042";
        assert_eq!(check("byte_test", "2,=,16,0", buf, 0), Some(0));
        assert_eq!(check("byte_test", "2,=,17,0", buf, 0), None, "one off");
        assert_eq!(
            check("byte_test", "2,=,16,1", buf, 0),
            None,
            "one position off"
        );
        assert_eq!(check("byte_test", "2,=,1,2,little", buf, 0), Some(0));
        assert_eq!(check("byte_test", "2,>,255,1", buf, 0), Some(0));
        assert_eq!(check("byte_test", "1,&,0x10,1", buf, 0), Some(0));
        assert_eq!(check("byte_test", "1,!&,0x10,1", buf, 0), None);
        assert_eq!(
            check("byte_test", "4,=,42,0,relative,string,dec", buf, 8),
            Some(8)
        );
        assert_eq!(
            check("byte_test", "4,=,42,0,string,dec", buf, 0),
            None,
            "not digits"
        );
        assert_eq!(
            check("byte_test", "1,=,1,0,bitmask 0xf0", b"\x1f", 0),
            Some(0)
        );
        assert_eq!(check("byte_test", "4,=,0,10", buf, 0), None, "past the end");
    }

    #[test]
    fn byte_jump_moves_the_pointer() {
        // A length-prefixed field, then what follows it.
        let buf = b"\x00\x03abcXYZ";
        assert_eq!(check("byte_jump", "2,0", buf, 0), Some(5));
        assert_eq!(
            check("byte_jump", "1,1,relative,post_offset -1", buf, 0),
            Some(4)
        );
        assert_eq!(check("byte_jump", "2,0,multiplier 2", buf, 0), Some(8));
        assert_eq!(check("byte_jump", "2,0,align", buf, 0), Some(6));
        assert_eq!(check("byte_jump", "1,1,from_beginning", buf, 0), Some(3));
        assert_eq!(
            check("byte_jump", "2,0,multiplier 3", buf, 0),
            None,
            "past the end"
        );
    }

    #[test]
    fn bad_values_are_named() {
        assert!(ByteCheck::parse("byte_test", "2,~,1,0")
            .unwrap_err()
            .contains("operator"));
        assert!(ByteCheck::parse("byte_test", "2,=,len,0")
            .unwrap_err()
            .contains("byte_extract"));
        assert!(ByteCheck::parse("byte_jump", "12,0")
            .unwrap_err()
            .contains("1-10"));
        assert!(ByteCheck::parse("isdataat", "1,sideways")
            .unwrap_err()
            .contains("sideways"));
    }
}
