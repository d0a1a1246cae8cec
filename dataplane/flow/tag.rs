//! `tag:session`: what a rule that alerted has the flow's next packets
//! logged as.

/// What `tag:session[,count,metric]` tags after its rule alerted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagSpec {
    pub count: u32,
    pub metric: TagMetric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagMetric {
    Packets,
    Bytes,
    Seconds,
}

impl TagSpec {
    /// Suricata's default: the session's next 256 packets.
    const DEFAULT_PACKETS: u32 = 256;

    /// Parses `tag`'s value; `tag:host` is not evaluated.
    pub fn parse(v: &str) -> Result<TagSpec, String> {
        let bad = || format!("tag: `{v}`");
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        match parts.as_slice() {
            ["session"] => Ok(TagSpec {
                count: Self::DEFAULT_PACKETS,
                metric: TagMetric::Packets,
            }),
            ["session", count, metric] => Ok(TagSpec {
                count: count.parse().map_err(|_| bad())?,
                metric: match *metric {
                    "packets" => TagMetric::Packets,
                    "bytes" => TagMetric::Bytes,
                    "seconds" => TagMetric::Seconds,
                    _ => return Err(bad()),
                },
            }),
            ["host", ..] => Err("tag:host".into()),
            _ => Err(bad()),
        }
    }
}
