//! Where EVE goes besides a file: a Unix socket, datagram or stream (as
//! Suricata's `unix_dgram` / `unix_stream` filetypes), or Redis, pushing
//! onto a list or publishing on a channel (as Suricata's `redis` output).
//!
//! These sinks live on the EVE writer's thread, never a worker's: the
//! writer hands them whole lines, and they send them in batches (one Redis
//! pipeline per flush, whose replies are read after the next is sent, so
//! Redis works on one batch while the writer formats the next). A sink
//! that is slow blocks the writer for at most `IO_TIMEOUT` per batch; one that is gone or refuses costs nothing but
//! the events, which are counted as dropped, and the connection is retried
//! every `RETRY`. Meanwhile the workers' rings fill and drop (counted
//! there too): no worker ever waits on an output.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long one send or one reply may take before the sink counts the
/// connection lost.
pub const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a lost sink is tried again.
pub const RETRY: Duration = Duration::from_secs(1);
/// Lines kept before a send even without a flush.
const BATCH_BYTES: usize = 256 << 10;

/// What `--eve` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file, opened for append.
    File(PathBuf),
    /// `-`.
    Stdout,
    /// `unix:PATH` or `unix-dgram:PATH` (one event per datagram),
    /// `unix-stream:PATH` (lines on a stream).
    Unix { path: PathBuf, stream: bool },
    /// `redis://HOST[:PORT][/KEY][?mode=lpush|rpush|publish]`.
    Redis {
        host: String,
        port: u16,
        key: String,
        mode: RedisMode,
    },
}

/// What a Redis sink does with an event (Suricata's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    /// `LPUSH` onto the list KEY (Suricata's default, `list`).
    Lpush,
    /// `RPUSH` onto the list KEY.
    Rpush,
    /// `PUBLISH` on the channel KEY (`channel`).
    Publish,
}

impl RedisMode {
    fn command(self) -> &'static str {
        match self {
            RedisMode::Lpush => "LPUSH",
            RedisMode::Rpush => "RPUSH",
            RedisMode::Publish => "PUBLISH",
        }
    }
}

/// What `--eve` expects, for error messages.
pub const EXPECTED: &str = "a file path, `-` (standard output), unix:PATH, unix-dgram:PATH, \
     unix-stream:PATH or redis://HOST[:PORT][/KEY][?mode=lpush|rpush|publish]";

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        if s.is_empty() {
            return Err(format!("an empty EVE output: expected {EXPECTED}"));
        }
        if s == "-" {
            return Ok(Target::Stdout);
        }
        for (prefix, stream) in [
            ("unix:", false),
            ("unix-dgram:", false),
            ("unix-stream:", true),
        ] {
            if let Some(path) = s.strip_prefix(prefix) {
                if path.is_empty() {
                    return Err(format!("`{s}`: no socket path after `{prefix}`"));
                }
                return Ok(Target::Unix {
                    path: PathBuf::from(path),
                    stream,
                });
            }
        }
        if let Some(rest) = s.strip_prefix("redis://") {
            return parse_redis(s, rest);
        }
        if s.contains("://") {
            return Err(format!(
                "`{s}`: unknown EVE output scheme: expected {EXPECTED}"
            ));
        }
        Ok(Target::File(PathBuf::from(s)))
    }

    /// True for the sinks this module sends to.
    pub fn is_network(&self) -> bool {
        matches!(self, Target::Unix { .. } | Target::Redis { .. })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::File(p) => write!(f, "{}", p.display()),
            Target::Stdout => f.write_str("-"),
            Target::Unix { path, stream } => write!(
                f,
                "unix-{}:{}",
                if *stream { "stream" } else { "dgram" },
                path.display()
            ),
            Target::Redis {
                host,
                port,
                key,
                mode,
            } => write!(
                f,
                "redis://{host}:{port}/{key}?mode={}",
                mode.command().to_ascii_lowercase()
            ),
        }
    }
}

fn parse_redis(whole: &str, rest: &str) -> Result<Target, String> {
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (hostport, key) = match rest.split_once('/') {
        Some((h, k)) => (h, k),
        None => (rest, ""),
    };
    let key = if key.is_empty() { "tollgate" } else { key };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{whole}`: an IPv6 host needs its closing `]`"))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(format!(
            "`{whole}`: no Redis host (redis://HOST[:PORT]/KEY)"
        ));
    }
    let port =
        match port {
            None => 6379,
            Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| {
                format!("`{whole}`: Redis port `{p}` is not a port number (1-65535)")
            })?,
        };
    let mut mode = RedisMode::Lpush;
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        match pair.split_once('=') {
            Some(("mode", m)) => {
                mode = match m {
                    "list" | "lpush" => RedisMode::Lpush,
                    "rpush" => RedisMode::Rpush,
                    "channel" | "publish" => RedisMode::Publish,
                    _ => {
                        return Err(format!(
                            "`{whole}`: Redis mode `{m}`: expected lpush (list), rpush or \
                             publish (channel)"
                        ))
                    }
                }
            }
            _ => {
                return Err(format!(
                    "`{whole}`: unknown option `{pair}`: the one option is mode=lpush|rpush|publish"
                ))
            }
        }
    }
    Ok(Target::Redis {
        host: host.to_string(),
        port,
        key: key.to_string(),
        mode,
    })
}

/// What a socket or Redis sink counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// Events the sink accepted (Redis: acknowledged).
    pub sent: u64,
    /// Events lost: the sink was gone, too slow, or refused them.
    pub dropped: u64,
    /// Failures: connects refused, sends or replies that failed or timed
    /// out, errors Redis answered.
    pub errors: u64,
    /// Connections made (the first, and each after a loss).
    pub connects: u64,
}

impl SinkCounters {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sent": self.sent,
            "dropped": self.dropped,
            "errors": self.errors,
            "connects": self.connects,
        })
    }
}

enum Conn {
    Dgram(UnixDatagram),
    Stream(UnixStream),
    Redis(TcpStream),
}

/// A Unix-socket or Redis output.
pub struct NetSink {
    target: Target,
    conn: Option<Conn>,
    /// Whole lines (and perhaps the start of one) waiting to go.
    lines: Vec<u8>,
    /// The Redis pipeline being built.
    cmd: Vec<u8>,
    /// Replies Redis owes for pipelines sent.
    owed: Owed,
    next_try: Instant,
    /// Whether the loss was already said on stderr.
    warned: bool,
    pub counters: SinkCounters,
}

impl NetSink {
    /// A sink for `target`, connected now if it can be (a sink not there
    /// yet is said on stderr and retried; it is no start-up failure, as a
    /// collector may come up after the sensor).
    pub fn new(target: Target) -> NetSink {
        let mut s = NetSink {
            target,
            conn: None,
            lines: Vec::with_capacity(BATCH_BYTES + 4096),
            cmd: Vec::new(),
            owed: Owed::default(),
            next_try: Instant::now(),
            warned: false,
            counters: SinkCounters::default(),
        };
        s.connect();
        s
    }

    fn connect(&mut self) -> bool {
        if self.conn.is_some() {
            return true;
        }
        let now = Instant::now();
        if now < self.next_try {
            return false;
        }
        match open(&self.target) {
            Ok(c) => {
                self.conn = Some(c);
                self.owed = Owed::default();
                self.counters.connects += 1;
                if self.warned {
                    eprintln!("EVE: {}: connected again", self.target);
                    self.warned = false;
                }
                true
            }
            Err(e) => {
                self.counters.errors += 1;
                self.lost(&e);
                false
            }
        }
    }

    /// The connection is gone (or never came): retried after `RETRY`.
    fn lost(&mut self, e: &io::Error) {
        self.conn = None;
        self.next_try = Instant::now() + RETRY;
        if !self.warned {
            eprintln!(
                "EVE: {}: {e}; events are dropped (counted) and the connection retried every {} s",
                self.target,
                RETRY.as_secs()
            );
            self.warned = true;
        }
    }

    /// Sends the whole lines waiting; what cannot be sent is counted.
    fn send(&mut self) {
        let Some(end) = self.lines.iter().rposition(|&b| b == b'\n').map(|i| i + 1) else {
            return;
        };
        let n = self.lines[..end].iter().filter(|&&b| b == b'\n').count() as u64;
        if !self.connect() {
            self.counters.dropped += n;
            self.lines.drain(..end);
            return;
        }
        let batch = &self.lines[..end];
        let result = match self.conn.as_mut() {
            Some(Conn::Dgram(s)) => send_datagrams(s, batch, &mut self.counters),
            // A write cut short by the timeout leaves half a line on the
            // stream: the connection is dropped with it, so the next
            // one starts on a line boundary.
            Some(Conn::Stream(s)) => s.write_all(batch).map(|_| n).map_err(|e| (e, n)),
            // Counted as the replies come.
            Some(Conn::Redis(s)) => match &self.target {
                Target::Redis { key, mode, .. } => send_redis(
                    s,
                    &mut self.cmd,
                    key,
                    *mode,
                    batch,
                    &mut self.owed,
                    &mut self.counters,
                )
                .map(|_| 0),
                _ => Ok(0),
            },
            None => Ok(0),
        };
        match result {
            Ok(sent) => self.counters.sent += sent,
            Err((e, unsent)) => {
                self.counters.errors += 1;
                self.counters.dropped += unsent;
                self.lost(&e);
            }
        }
        self.lines.drain(..end);
    }
}

impl NetSink {
    /// Waits for what Redis still owes (the end of a run), so every event
    /// is counted as sent or lost.
    pub fn finish(&mut self) {
        self.send();
        if let Some(Conn::Redis(s)) = self.conn.as_mut() {
            if let Err((e, lost)) = read_replies(s, &mut self.owed, 0, &mut self.counters) {
                self.counters.errors += 1;
                self.counters.dropped += lost;
                self.lost(&e);
            }
        }
    }
}

impl Write for NetSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.lines.extend_from_slice(b);
        if self.lines.len() >= BATCH_BYTES {
            self.send();
        }
        Ok(b.len())
    }

    /// Sends what is waiting. Never an error: a sink's failures are
    /// counted, and the writer goes on.
    fn flush(&mut self) -> io::Result<()> {
        self.send();
        Ok(())
    }
}

fn open(target: &Target) -> io::Result<Conn> {
    match target {
        Target::Unix {
            path,
            stream: false,
        } => {
            let s = UnixDatagram::unbound()?;
            s.connect(path)?;
            // A reader that falls behind loses datagrams, counted; the
            // writer does not wait for it.
            s.set_nonblocking(true)?;
            Ok(Conn::Dgram(s))
        }
        Target::Unix { path, stream: true } => {
            let s = UnixStream::connect(path)?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            Ok(Conn::Stream(s))
        }
        Target::Redis { host, port, .. } => {
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
            for addr in (host.as_str(), *port).to_socket_addrs()? {
                match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        s.set_write_timeout(Some(IO_TIMEOUT))?;
                        s.set_read_timeout(Some(IO_TIMEOUT))?;
                        return Ok(Conn::Redis(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
        Target::File(_) | Target::Stdout => Err(io::Error::other("not a socket output")),
    }
}

/// The lines of `batch`, without their newlines.
fn records(batch: &[u8]) -> impl Iterator<Item = &[u8]> {
    batch
        .split(|&b| b == b'\n')
        .take(batch.iter().filter(|&&b| b == b'\n').count())
}

/// One datagram per event. A full socket buffer (the reader is behind) or
/// an event too large for a datagram loses that event; a reader gone loses
/// the connection.
fn send_datagrams(
    s: &UnixDatagram,
    batch: &[u8],
    c: &mut SinkCounters,
) -> Result<u64, (io::Error, u64)> {
    let total = records(batch).count() as u64;
    let mut sent = 0;
    for (i, rec) in records(batch).enumerate() {
        match s.send(rec) {
            Ok(_) => sent += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.dropped += 1,
            Err(e) if e.raw_os_error() == Some(90) => {
                // EMSGSIZE: larger than the socket takes in one datagram.
                c.dropped += 1;
                c.errors += 1;
            }
            Err(e) => {
                c.sent += sent;
                return Err((e, total - i as u64));
            }
        }
    }
    Ok(sent)
}

/// Replies owed by Redis, and where the reply parser stands in a line.
#[derive(Debug, Default)]
struct Owed {
    n: u64,
    mid_line: bool,
    error: bool,
}

/// One Redis pipeline: a push (or publish) per event; then the replies
/// owed for the pipelines before it are read (this one's are read after
/// the next is sent). An error reply loses its event; a failed write or a
/// missing reply loses the connection and whatever was not acknowledged.
fn send_redis(
    s: &mut TcpStream,
    cmd: &mut Vec<u8>,
    key: &str,
    mode: RedisMode,
    batch: &[u8],
    owed: &mut Owed,
    c: &mut SinkCounters,
) -> Result<(), (io::Error, u64)> {
    cmd.clear();
    let verb = mode.command();
    let mut n = 0u64;
    for rec in records(batch) {
        let _ = write!(
            cmd,
            "*3\r\n${}\r\n{verb}\r\n${}\r\n{key}\r\n${}\r\n",
            verb.len(),
            key.len(),
            rec.len()
        );
        cmd.extend_from_slice(rec);
        cmd.extend_from_slice(b"\r\n");
        n += 1;
    }
    if let Err(e) = s.write_all(cmd) {
        let lost = n + std::mem::take(owed).n;
        return Err((e, lost));
    }
    owed.n += n;
    read_replies(s, owed, n, c)
}

/// Reads replies until at most `keep` are owed, counting each event sent
/// or (an error reply) dropped. Every reply to these commands is one line:
/// `:n` (the list's length, or how many subscribers heard), or `-ERR …`.
/// On failure, what was still owed is returned as lost.
fn read_replies(
    s: &mut TcpStream,
    owed: &mut Owed,
    keep: u64,
    c: &mut SinkCounters,
) -> Result<(), (io::Error, u64)> {
    let mut buf = [0u8; 8192];
    while owed.n > keep {
        let got = match s.read(&mut buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "Redis closed the connection",
            )),
            Ok(k) => Ok(k),
            Err(e) => Err(e),
        };
        let got = got.map_err(|e| (e, std::mem::take(owed).n))?;
        for &b in &buf[..got] {
            if !owed.mid_line {
                owed.error = b == b'-';
                owed.mid_line = true;
            }
            if b == b'\n' {
                owed.mid_line = false;
                owed.n = owed.n.saturating_sub(1);
                if owed.error {
                    c.errors += 1;
                    c.dropped += 1;
                } else {
                    c.sent += 1;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_as_suricatas_filetypes() {
        assert_eq!(Target::parse("-"), Ok(Target::Stdout));
        assert_eq!(
            Target::parse("/var/log/eve.json"),
            Ok(Target::File("/var/log/eve.json".into()))
        );
        assert_eq!(
            Target::parse("unix:/run/eve.sock"),
            Ok(Target::Unix {
                path: "/run/eve.sock".into(),
                stream: false
            })
        );
        assert_eq!(
            Target::parse("unix-stream:/run/eve.sock"),
            Ok(Target::Unix {
                path: "/run/eve.sock".into(),
                stream: true
            })
        );
        assert_eq!(
            Target::parse("redis://10.0.0.5/alerts?mode=publish"),
            Ok(Target::Redis {
                host: "10.0.0.5".into(),
                port: 6379,
                key: "alerts".into(),
                mode: RedisMode::Publish
            })
        );
        assert_eq!(
            Target::parse("redis://[::1]:6380"),
            Ok(Target::Redis {
                host: "::1".into(),
                port: 6380,
                key: "tollgate".into(),
                mode: RedisMode::Lpush
            })
        );
        assert_eq!(
            Target::parse("redis://h:1/k?mode=rpush").map(|t| t.to_string()),
            Ok("redis://h:1/k?mode=rpush".to_string())
        );
    }

    #[test]
    fn bad_targets_say_what_is_expected() {
        for (bad, says) in [
            ("", "empty"),
            ("unix:", "no socket path"),
            ("redis://:6379/k", "no Redis host"),
            ("redis://h:70000/k", "not a port number"),
            ("redis://h/k?mode=xadd", "expected lpush"),
            ("redis://h/k?db=2", "unknown option"),
            ("kafka://h/k", "unknown EVE output scheme"),
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_datagram_per_event_and_a_missing_reader_counted_then_found_again() {
        let dir = std::env::temp_dir().join(format!("tollgate-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dgram.sock");
        let _ = std::fs::remove_file(&path);
        let mut sink = NetSink::new(Target::Unix {
            path: path.clone(),
            stream: false,
        });
        // Nobody listens yet: both events are dropped, the connect counted.
        sink.write_all(b"{\"a\":1}\n{\"a\":2}\n").unwrap();
        sink.flush().unwrap();
        assert_eq!(sink.counters.dropped, 2);
        assert_eq!(sink.counters.connects, 0);
        assert!(sink.counters.errors >= 1);
        let reader = UnixDatagram::bind(&path).unwrap();
        sink.next_try = Instant::now();
        // A line split over two writes goes as one datagram, once whole.
        sink.write_all(b"{\"b\":").unwrap();
        sink.flush().unwrap();
        sink.write_all(b"3}\n{\"c\":4}\n").unwrap();
        sink.flush().unwrap();
        assert_eq!(sink.counters.sent, 2);
        assert_eq!(sink.counters.connects, 1);
        let mut buf = [0u8; 64];
        let n = reader.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"{\"b\":3}");
        let n = reader.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"{\"c\":4}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
