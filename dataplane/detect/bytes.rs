//! `isdataat`, `byte_test`, `byte_jump`, `byte_extract` and `byte_math`:
//! checks on a buffer at a position, absolute or relative to where the
//! previous keyword left the detection pointer, as Suricata's content
//! inspection runs them. A check sits in the rule's content chain after
//! the contents before it, so backtracking retries it at every later place
//! an earlier content matches. `byte_jump`, `byte_extract` and `byte_math`
//! move the pointer; the others leave it where it is.
//!
//! `byte_extract` and `byte_math` store a number in one of the rule's
//! variables, by name; later keywords of the rule may use the name where
//! they take a number (`byte_test` value and offset, `byte_jump` bytes and
//! offset, `isdataat`, `byte_math` rvalue, and a content's offset, depth,
//! distance and within). Variables live for one evaluation of the rule.

/// Variables one rule may define.
pub const MAX_VARS: usize = 16;

/// The values of a rule's variables during one evaluation.
pub type ByteVars = [u64; MAX_VARS];

/// A number a keyword takes: written in the rule, or a variable an
/// earlier `byte_extract` or `byte_math` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Num {
    Lit(i64),
    Var(u8),
}

impl Num {
    pub fn get(self, vars: &ByteVars) -> i64 {
        match self {
            Num::Lit(v) => v,
            // Offsets and lengths take the low 32 bits, signed, as
            // Suricata casts them.
            Num::Var(i) => i64::from(vars[usize::from(i)] as i32),
        }
    }

    /// The value unsigned (a byte_test value, a byte_math rvalue).
    pub fn get_u64(self, vars: &ByteVars) -> u64 {
        match self {
            Num::Lit(v) => v as u64,
            Num::Var(i) => vars[usize::from(i)],
        }
    }
}

/// The names of a rule's variables, in the order they are defined; a
/// name is in scope from its definition on.
#[derive(Debug, Clone, Default)]
pub struct VarNames(Vec<String>);

impl VarNames {
    fn define(&mut self, keyword: &str, name: &str) -> Result<u8, String> {
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return Err(format!("{keyword}: a variable name, not `{name}`"));
        }
        if let Some(i) = self.0.iter().position(|n| n == name) {
            // Suricata lets byte_math reuse a name; the later value wins.
            return Ok(i as u8);
        }
        if self.0.len() == MAX_VARS {
            return Err(format!("{keyword}: more than {MAX_VARS} variables"));
        }
        self.0.push(name.to_string());
        Ok((self.0.len() - 1) as u8)
    }

    /// A number, or the variable of that name.
    pub fn num(&self, keyword: &str, s: &str) -> Result<Num, String> {
        let s = s.trim();
        if let Some(v) = parse_int(s) {
            return Ok(Num::Lit(v));
        }
        match self.0.iter().position(|n| n == s) {
            Some(i) => Ok(Num::Var(i as u8)),
            None => Err(format!(
                "{keyword}: `{s}` is no number and no variable defined before it"
            )),
        }
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(h) => i64::from_str_radix(h, 16).ok()?,
        None => digits.parse::<i64>().ok()?,
    };
    Some(if neg { -v } else { v })
}

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

/// `byte_math` operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathOp {
    Add,
    Sub,
    Div,
    Mul,
    Shl,
    Shr,
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

/// Digits in `base` at the start of `b` (after blanks, with an optional
/// `+`, and `0x` in hex), as C's `strtoull` reads them: the value and how
/// many bytes it took. None without a digit or past 64 bits.
fn string_number(b: &[u8], base: u32) -> Option<(u64, usize)> {
    let mut i = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    if b.get(i) == Some(&b'+') {
        i += 1;
    }
    if base == 16
        && b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
    {
        i += 2;
    }
    let start = i;
    let mut v: u64 = 0;
    while let Some(d) = b.get(i).and_then(|c| (*c as char).to_digit(base)) {
        v = v.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
        i += 1;
    }
    (i > start).then_some((v, i))
}

impl Read {
    /// The number at `at` reading `nbytes` bytes: its value (before the
    /// bitmask) and how many bytes it took (a string may stop early).
    fn raw(&self, buf: &[u8], at: usize, nbytes: usize) -> Option<(u64, usize)> {
        let b = buf.get(at..at.checked_add(nbytes)?)?;
        match self.base {
            Some(base) => string_number(b, base),
            None => {
                let fold = |acc: u64, &x: &u8| (acc << 8) | u64::from(x);
                let v = if self.little {
                    b.iter().rev().fold(0, fold)
                } else {
                    b.iter().fold(0, fold)
                };
                Some((v, nbytes))
            }
        }
    }

    fn mask(&self, mut v: u64) -> u64 {
        if let Some(m) = self.bitmask {
            v &= m;
            if v != 0 && m != 0 {
                v >>= m.trailing_zeros();
            }
        }
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteCheck {
    IsDataAt {
        n: Num,
        relative: bool,
        negated: bool,
    },
    Test {
        read: Read,
        op: Op,
        negated: bool,
        value: Num,
        offset: Num,
        relative: bool,
        /// The number of bytes from a variable instead of `read.nbytes`.
        nbytes_var: Option<u8>,
    },
    Jump {
        read: Read,
        nbytes_var: Option<u8>,
        offset: Num,
        relative: bool,
        multiplier: u32,
        align: bool,
        from_beginning: bool,
        from_end: bool,
        post_offset: i32,
    },
    Extract {
        read: Read,
        offset: i32,
        relative: bool,
        multiplier: u32,
        /// Round up to a multiple of 2 or 4 (0: no).
        align: u8,
        var: u8,
    },
    Math {
        /// Its bitmask applies after the operation.
        read: Read,
        offset: Num,
        relative: bool,
        op: MathOp,
        rvalue: Num,
        var: u8,
    },
}

/// Where a check reads: `offset` from the buffer's start, or from the
/// pointer when relative. None before the start; past the end is for
/// the read to find out.
fn start(prev_end: usize, relative: bool, offset: i64) -> Option<usize> {
    let base = if relative { prev_end as i64 } else { 0 };
    usize::try_from(base + offset).ok()
}

impl ByteCheck {
    pub fn relative(&self) -> bool {
        match *self {
            ByteCheck::IsDataAt { relative, .. }
            | ByteCheck::Test { relative, .. }
            | ByteCheck::Jump { relative, .. }
            | ByteCheck::Extract { relative, .. }
            | ByteCheck::Math { relative, .. } => relative,
        }
    }

    /// Runs the check with the pointer at `prev_end`, reading and setting
    /// the rule's variables; the pointer after it if it holds.
    pub fn apply(&self, buf: &[u8], prev_end: usize, vars: &mut ByteVars) -> Option<usize> {
        match *self {
            ByteCheck::IsDataAt {
                n,
                relative,
                negated,
            } => {
                let n = n.get(vars);
                let present = if relative {
                    prev_end as i64 + n <= buf.len() as i64
                } else {
                    n < buf.len() as i64
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
                nbytes_var,
            } => {
                let nbytes = match nbytes_var {
                    Some(i) => valid_nbytes(&read, vars[usize::from(i)])?,
                    None => usize::from(read.nbytes),
                };
                if relative && prev_end >= buf.len() {
                    return None;
                }
                let at = start(prev_end, relative, offset.get(vars))?;
                let v = read.mask(read.raw(buf, at, nbytes)?.0);
                let value = value.get_u64(vars);
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
                nbytes_var,
                offset,
                relative,
                multiplier,
                align,
                from_beginning,
                from_end,
                post_offset,
            } => {
                let nbytes = match nbytes_var {
                    Some(i) => valid_nbytes(&read, vars[usize::from(i)])?,
                    None => usize::from(read.nbytes),
                };
                if relative && nbytes > 0 && prev_end >= buf.len() {
                    return None;
                }
                let at = start(prev_end, relative, offset.get(vars))?;
                let (v, took) = if nbytes == 0 && read.base.is_none() {
                    (0, 0)
                } else {
                    read.raw(buf, at, nbytes)?
                };
                let mut jump = v.wrapping_mul(u64::from(multiplier)) as i64;
                if align && jump % 4 != 0 {
                    jump += 4 - jump % 4;
                }
                jump += i64::from(post_offset);
                let from = if from_beginning {
                    0
                } else if from_end {
                    buf.len() as i64
                } else {
                    (at + took) as i64
                };
                // Before the buffer is its start (Suricata); past the end
                // is no match.
                let to = from.saturating_add(jump).max(0);
                usize::try_from(to).ok().filter(|&t| t <= buf.len())
            }
            ByteCheck::Extract {
                read,
                offset,
                relative,
                multiplier,
                align,
                var,
            } => {
                if relative && prev_end as i64 + i64::from(offset) >= buf.len() as i64 {
                    return None;
                }
                let at = start(prev_end, relative, i64::from(offset))?;
                let (v, took) = read.raw(buf, at, usize::from(read.nbytes))?;
                let mut v = read.mask(v).wrapping_mul(u64::from(multiplier));
                if align > 0 && v % u64::from(align) != 0 {
                    v += u64::from(align) - v % u64::from(align);
                }
                vars[usize::from(var)] = v;
                Some(at + took)
            }
            ByteCheck::Math {
                read,
                offset,
                relative,
                op,
                rvalue,
                var,
            } => {
                let offset = offset.get(vars);
                if relative && prev_end as i64 + offset >= buf.len() as i64 {
                    return None;
                }
                let at = start(prev_end, relative, offset)?;
                let (v, took) = read.raw(buf, at, usize::from(read.nbytes))?;
                let r = rvalue.get_u64(vars);
                let v = match op {
                    MathOp::Add => v.wrapping_add(r),
                    MathOp::Sub => v.wrapping_sub(r),
                    // A division by zero is no match.
                    MathOp::Div => v.checked_div(r)?,
                    MathOp::Mul => v.wrapping_mul(r),
                    MathOp::Shl => v.checked_shl(u32::try_from(r).ok()?).unwrap_or(0),
                    MathOp::Shr => v.checked_shr(u32::try_from(r).ok()?).unwrap_or(0),
                };
                vars[usize::from(var)] = read.mask(v);
                Some(at + took)
            }
        }
    }

    /// Reads `isdataat`, `byte_test`, `byte_jump`, `byte_extract` or
    /// `byte_math` and its value; variables are looked up in, and defined
    /// into, `names`.
    pub fn parse(keyword: &str, v: &str, names: &mut VarNames) -> Result<ByteCheck, String> {
        let items: Vec<&str> = v.split(',').map(str::trim).collect();
        // Reasons stay general (no values): `rules check` counts skips by them.
        let bad = |what: &str| format!("{keyword}: {what}");
        let int = |s: &str| parse_int(s).ok_or_else(|| bad(&format!("`{s}` is no number")));
        match keyword {
            "isdataat" => {
                let first = items.first().copied().unwrap_or("");
                let (negated, n) = match first.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, first),
                };
                let n = names.num(keyword, n)?;
                if matches!(n, Num::Lit(x) if x < 0) {
                    return Err(bad("a negative position"));
                }
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
            "byte_test" | "byte_jump" => parse_test_or_jump(keyword, &items, names),
            "byte_extract" => {
                let [nbytes, offset, name, rest @ ..] = items.as_slice() else {
                    return Err(bad("expected bytes, offset, name"));
                };
                let nbytes = nbytes
                    .parse::<u8>()
                    .ok()
                    .filter(|n| (1..=23).contains(n))
                    .ok_or_else(|| bad("bytes to read (1-23)"))?;
                let offset = i32::try_from(int(offset)?).map_err(|_| bad("offset out of range"))?;
                let mut read = Read {
                    nbytes,
                    little: false,
                    base: None,
                    bitmask: None,
                };
                let (mut relative, mut multiplier, mut align, mut string) =
                    (false, 1u32, 0u8, false);
                for opt in rest {
                    let (word, arg) = split_word(opt);
                    match (word, arg) {
                        ("relative", None) => relative = true,
                        ("big", None) => read.little = false,
                        ("little", None) => read.little = true,
                        ("dce", None) => return Err(bad("dce")),
                        ("string", None) => string = true,
                        ("dec", None) if string => read.base = Some(10),
                        ("hex", None) if string => read.base = Some(16),
                        ("oct", None) if string => read.base = Some(8),
                        ("multiplier", Some(m)) => {
                            multiplier = m
                                .parse::<u32>()
                                .ok()
                                .filter(|m| (1..=65535).contains(m))
                                .ok_or_else(|| bad("multiplier"))?;
                        }
                        ("align", Some(a)) => {
                            align = a
                                .parse::<u8>()
                                .ok()
                                .filter(|a| [2, 4].contains(a))
                                .ok_or_else(|| bad("align (2 or 4)"))?;
                        }
                        ("bitmask", Some(m)) => {
                            read.bitmask =
                                Some(u64::try_from(int(m)?).map_err(|_| bad("a negative mask"))?);
                        }
                        _ => return Err(bad(&format!("`{opt}`"))),
                    }
                }
                if string && read.base.is_none() {
                    read.base = Some(10);
                }
                check_nbytes(keyword, &read)?;
                let var = names.define(keyword, name)?;
                Ok(ByteCheck::Extract {
                    read,
                    offset,
                    relative,
                    multiplier,
                    align,
                    var,
                })
            }
            "byte_math" => {
                let mut read = Read {
                    nbytes: 0,
                    little: false,
                    base: None,
                    bitmask: None,
                };
                let (mut offset, mut op, mut rvalue, mut result) = (None, None, None, None);
                let (mut relative, mut string) = (false, false);
                for opt in &items {
                    let (word, arg) = split_word(opt);
                    match (word, arg) {
                        ("bytes", Some(n)) => {
                            read.nbytes = n
                                .parse::<u8>()
                                .ok()
                                .filter(|n| (1..=10).contains(n))
                                .ok_or_else(|| bad("bytes (1-10)"))?;
                        }
                        ("offset", Some(o)) => offset = Some(names.num(keyword, o)?),
                        ("oper", Some(o)) => {
                            op = Some(match o {
                                "+" => MathOp::Add,
                                "-" => MathOp::Sub,
                                "/" => MathOp::Div,
                                "*" => MathOp::Mul,
                                "<<" => MathOp::Shl,
                                ">>" => MathOp::Shr,
                                other => return Err(bad(&format!("oper `{other}`"))),
                            })
                        }
                        ("rvalue", Some(r)) => rvalue = Some(names.num(keyword, r)?),
                        ("result", Some(r)) => result = Some(r.to_string()),
                        ("relative", None) => relative = true,
                        ("endian", Some("big")) => read.little = false,
                        ("endian", Some("little")) => read.little = true,
                        ("endian", Some("dce")) | ("dce", None) => return Err(bad("dce")),
                        ("string", Some(b)) => {
                            string = true;
                            read.base = Some(match b {
                                "dec" => 10,
                                "hex" => 16,
                                "oct" => 8,
                                other => return Err(bad(&format!("string base `{other}`"))),
                            });
                        }
                        ("bitmask", Some(m)) => {
                            read.bitmask =
                                Some(u64::try_from(int(m)?).map_err(|_| bad("a negative mask"))?);
                        }
                        _ => return Err(bad(&format!("`{opt}`"))),
                    }
                }
                let (Some(offset), Some(op), Some(rvalue), Some(result)) =
                    (offset, op, rvalue, result)
                else {
                    return Err(bad("needs bytes, offset, oper, rvalue and result"));
                };
                if read.nbytes == 0 {
                    return Err(bad("needs bytes, offset, oper, rvalue and result"));
                }
                if string && read.nbytes > 10 {
                    return Err(bad("bytes (1-10)"));
                }
                let var = names.define(keyword, &result)?;
                Ok(ByteCheck::Math {
                    read,
                    offset,
                    relative,
                    op,
                    rvalue,
                    var,
                })
            }
            other => Err(format!("{other} is not a byte check")),
        }
    }
}

/// `word` or `word arg`.
fn split_word(opt: &str) -> (&str, Option<&str>) {
    opt.split_once(char::is_whitespace)
        .map_or((opt, None), |(a, b)| (a, Some(b.trim())))
}

/// How many bytes a read may take: 8 in binary, 23/20/14 as octal,
/// decimal or hex digits (what fits in 64 bits).
fn max_nbytes(read: &Read) -> usize {
    match read.base {
        None => 8,
        Some(8) => 23,
        Some(10) => 20,
        _ => 14,
    }
}

fn check_nbytes(keyword: &str, read: &Read) -> Result<(), String> {
    if usize::from(read.nbytes) > max_nbytes(read) {
        return Err(format!(
            "{keyword}: more than {} bytes {}",
            max_nbytes(read),
            if read.base.is_some() {
                "of digits"
            } else {
                "without `string`"
            }
        ));
    }
    Ok(())
}

/// A byte count from a variable, if a read may take that many.
fn valid_nbytes(read: &Read, n: u64) -> Option<usize> {
    usize::try_from(n).ok().filter(|&n| n <= max_nbytes(read))
}

fn parse_test_or_jump(
    keyword: &str,
    items: &[&str],
    names: &mut VarNames,
) -> Result<ByteCheck, String> {
    let bad = |what: &str| format!("{keyword}: {what}");
    let first = items.first().copied().unwrap_or("");
    let (nbytes, nbytes_var) = match first.parse::<u8>() {
        Ok(n) => (n, None),
        Err(_) => match names.num(keyword, first)? {
            Num::Var(i) => (0, Some(i)),
            Num::Lit(_) => return Err(bad("bytes to read")),
        },
    };
    // byte_jump may read nothing (a jump by its post_offset alone).
    let min = if keyword == "byte_jump" { 0 } else { 1 };
    if nbytes_var.is_none() && !(min..=23).contains(&nbytes) {
        return Err(bad(&format!("bytes to read ({min}-23)")));
    }
    let mut read = Read {
        nbytes,
        little: false,
        base: None,
        bitmask: None,
    };
    let (mut relative, mut align, mut from_beginning, mut from_end) = (false, false, false, false);
    let (mut multiplier, mut post_offset) = (1u32, 0i32);
    let (op, negated, value, offset, rest) = if keyword == "byte_test" {
        let (opstr, value, offset) = match items {
            [_, o, v, off, ..] => (*o, *v, *off),
            _ => return Err(bad("expected bytes, operator, value, offset")),
        };
        let (negated, opstr) = match opstr.strip_prefix('!') {
            Some(r) if !r.trim().is_empty() => (true, r.trim()),
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
        let value = names.num(keyword, value)?;
        if matches!(value, Num::Lit(x) if x < 0) {
            return Err(bad("a negative value"));
        }
        (op, negated, value, names.num(keyword, offset)?, &items[4..])
    } else {
        let offset = items.get(1).ok_or_else(|| bad("expected bytes, offset"))?;
        (
            Op::Eq,
            false,
            Num::Lit(0),
            names.num(keyword, offset)?,
            &items[2..],
        )
    };
    for &opt in rest {
        let (word, arg) = split_word(opt);
        match (word, arg) {
            ("relative", None) => relative = true,
            ("big", None) => read.little = false,
            ("little", None) => read.little = true,
            ("dce", None) => return Err(format!("{keyword}: dce")),
            ("string", None) => {
                // The base may follow as its own item; decimal otherwise.
                read.base = Some(10);
            }
            ("dec", None) if read.base.is_some() => read.base = Some(10),
            ("hex", None) if read.base.is_some() => read.base = Some(16),
            ("oct", None) if read.base.is_some() => read.base = Some(8),
            ("bitmask", Some(m)) => {
                read.bitmask = Some(
                    parse_int(m)
                        .and_then(|m| u64::try_from(m).ok())
                        .ok_or_else(|| bad("bitmask"))?,
                );
            }
            ("multiplier", Some(m)) if keyword == "byte_jump" => {
                multiplier = m.parse::<u32>().map_err(|_| bad("multiplier"))?;
            }
            ("post_offset", Some(m)) if keyword == "byte_jump" => {
                post_offset = parse_int(m)
                    .and_then(|m| i32::try_from(m).ok())
                    .ok_or_else(|| bad("post_offset"))?;
            }
            ("align", None) if keyword == "byte_jump" => align = true,
            ("from_beginning", None) if keyword == "byte_jump" => from_beginning = true,
            ("from_end", None) if keyword == "byte_jump" => from_end = true,
            _ => return Err(bad(&format!("`{opt}`"))),
        }
    }
    if from_beginning && from_end {
        return Err(bad("from_beginning with from_end"));
    }
    check_nbytes(keyword, &read)?;
    if keyword == "byte_test" {
        Ok(ByteCheck::Test {
            read,
            op,
            negated,
            value,
            offset,
            relative,
            nbytes_var,
        })
    } else {
        Ok(ByteCheck::Jump {
            read,
            nbytes_var,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kw: &str, v: &str, buf: &[u8], prev_end: usize) -> Option<usize> {
        ByteCheck::parse(kw, v, &mut VarNames::default())
            .unwrap()
            .apply(buf, prev_end, &mut [0; MAX_VARS])
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
    fn strings_are_read_as_strtoull_reads_them() {
        // Leading digits count; the rest of the field does not.
        assert_eq!(
            check("byte_test", "4,=,12,0,string,dec", b"12ab", 0),
            Some(0)
        );
        assert_eq!(
            check("byte_test", "4,=,26,0,string,hex", b"0x1a", 0),
            Some(0)
        );
        assert_eq!(check("byte_test", "3,=,7,0,string,oct", b" 07", 0), Some(0));
        assert_eq!(check("byte_test", "2,=,0,0,string,dec", b"ab", 0), None);
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
        // Reading nothing jumps by the post_offset alone; before the
        // start is the start (Suricata 7).
        assert_eq!(
            check("byte_jump", "0,0,relative,post_offset -2", buf, 5),
            Some(3)
        );
        assert_eq!(
            check("byte_jump", "0,0,relative,post_offset -9", buf, 5),
            Some(0)
        );
        assert_eq!(
            check(
                "byte_jump",
                "1,0,string,from_end,post_offset -4",
                b"2xxxxxx",
                0
            ),
            Some(5),
            "from the end: 7 + 2 - 4"
        );
    }

    #[test]
    fn byte_extract_sets_a_variable_later_keywords_read() {
        let mut names = VarNames::default();
        let ex = ByteCheck::parse("byte_extract", "1,0,len,relative", &mut names).unwrap();
        let test = ByteCheck::parse("byte_test", "1,=,len,len,relative", &mut names).unwrap();
        let jump = ByteCheck::parse("byte_jump", "len,0,relative", &mut names).unwrap();
        let mut vars = [0; MAX_VARS];
        // len = 2: the pointer moves past the length byte, then the byte 2
        // further on must equal 2, then a jump reading 2 bytes (= 1).
        let buf = b"L\x02\x00\x01\x02ZZ";
        let p = ex.apply(buf, 1, &mut vars).unwrap();
        assert_eq!((p, vars[0]), (2, 2));
        assert_eq!(test.apply(buf, p, &mut vars), Some(p));
        assert_eq!(jump.apply(buf, p, &mut vars), Some(5), "2 + 2 read + 1");
        let m = ByteCheck::parse(
            "byte_math",
            "bytes 1, offset 0, oper *, rvalue len, result twice, relative",
            &mut names,
        )
        .unwrap();
        assert_eq!(m.apply(buf, 1, &mut vars), Some(2));
        assert_eq!(vars[1], 4);
        assert!(ByteCheck::parse("byte_test", "1,=,nope,0", &mut names)
            .unwrap_err()
            .contains("no variable"));
    }

    #[test]
    fn bad_values_are_named() {
        let mut n = VarNames::default();
        assert!(ByteCheck::parse("byte_test", "2,~,1,0", &mut n)
            .unwrap_err()
            .contains("operator"));
        assert!(ByteCheck::parse("byte_test", "2,=,len,0", &mut n)
            .unwrap_err()
            .contains("len"));
        assert!(ByteCheck::parse("byte_jump", "24,0", &mut n)
            .unwrap_err()
            .contains("0-23"));
        assert!(ByteCheck::parse("byte_jump", "9,0", &mut n)
            .unwrap_err()
            .contains("without `string`"));
        assert!(ByteCheck::parse("isdataat", "1,sideways", &mut n)
            .unwrap_err()
            .contains("sideways"));
        assert!(ByteCheck::parse(
            "byte_math",
            "bytes 1, offset 0, oper &, rvalue 1, result r",
            &mut n
        )
        .unwrap_err()
        .contains("oper"));
    }
}
