//! `--metrics ADDR:PORT`: a Prometheus scrape endpoint (`GET /metrics`)
//! with the stats JSON's per-worker counters, each numeric leaf of a
//! worker's object a metric family labelled by `worker`
//! (`packets.dropped.rule` → `tollgate_packets_dropped_rule_total{worker="0"}`),
//! written in the OpenMetrics text format by `prometheus-client`.
//!
//! The monitor (the thread that prints stats lines, about every 100 ms)
//! hands the latest snapshots to `Metrics::update`; a scrape renders them.
//! Nothing here touches a worker: the snapshots are the ones the workers
//! already publish for stats lines.

use crate::stats::WorkerCounters;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde_json::{Map, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The OpenMetrics text format's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The latest snapshots and the seconds since the run started.
#[derive(Debug, Default)]
struct Latest {
    workers: Vec<WorkerCounters>,
    seconds: f64,
}

/// A running endpoint.
#[derive(Debug)]
pub struct Metrics {
    latest: Arc<Mutex<Latest>>,
    policy: PolicySlot,
    addr: SocketAddr,
}

/// The segmentation policy's counters, once there is a policy.
type PolicySlot = Arc<Mutex<Option<Arc<crate::policy::enforce::PolicyStats>>>>;

impl Metrics {
    /// Binds `addr` and serves scrapes from a thread of its own.
    pub fn start(addr: &str) -> Result<Metrics, String> {
        let listener = TcpListener::bind(addr).map_err(|e| format!("--metrics {addr}: {e}"))?;
        let bound = listener
            .local_addr()
            .map_err(|e| format!("--metrics {addr}: {e}"))?;
        let latest = Arc::new(Mutex::new(Latest::default()));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Snapshots(Arc::clone(&latest))));
        let policy = PolicySlot::default();
        registry.register_collector(Box::new(PolicyPairs(Arc::clone(&policy))));
        let registry = Arc::new(registry);
        std::thread::Builder::new()
            .name("tollgate-metrics".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    // One scrape at a time: a scraper is one client.
                    let _ = serve(conn, &registry);
                }
            })
            .map_err(|e| format!("--metrics: {e}"))?;
        Ok(Metrics {
            latest,
            policy,
            addr: bound,
        })
    }

    /// The address it listens on (the port chosen, for `:0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves the segmentation policy's counters per zone pair too
    /// (`tollgate_policy_*_total{from, to}`), read at each scrape.
    pub fn watch_policy(&self, stats: Arc<crate::policy::enforce::PolicyStats>) {
        if let Ok(mut p) = self.policy.lock() {
            *p = Some(stats);
        }
    }

    /// The latest per-worker snapshots.
    pub fn update(&self, workers: &[WorkerCounters], seconds: f64) {
        if let Ok(mut l) = self.latest.lock() {
            l.workers.clear();
            l.workers.extend_from_slice(workers);
            l.seconds = seconds;
        }
    }
}

/// Answers one request: the metrics for `GET /metrics`, 404 otherwise.
fn serve(conn: TcpStream, registry: &Registry) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // The rest of the head, read and let go.
    let mut h = String::new();
    while reader.read_line(&mut h)? > 2 {
        h.clear();
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next(), parts.next());
    let path = path.map(|p| p.split('?').next().unwrap_or(p));
    let mut out = conn;
    if method != Some("GET") || path != Some("/metrics") {
        let body = "not found: GET /metrics\n";
        return write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, registry)
        .map_err(|_| std::io::Error::other("encoding the metrics"))?;
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[derive(Debug)]
struct Snapshots(Arc<Mutex<Latest>>);

/// A metric's name, its stats key, and each worker's value.
type Family = (String, String, Vec<(usize, Leaf)>);

/// A numeric leaf of a worker's stats object: its metric name, and its
/// value as a counter (whole and monotonic) or a gauge.
#[derive(Debug, Clone, PartialEq)]
enum Leaf {
    Counter(u64),
    Gauge(f64),
}

/// Parts of the stats object that go up and down (or are rates, sizes
/// now, or per-packet times): gauges; every other number only grows.
fn gauge_path(path: &[&str]) -> bool {
    path.iter().any(|p| {
        matches!(
            *p,
            "throughput" | "latency_ns" | "burst_latency_ns" | "store" | "state" | "active"
        ) || p.ends_with("_peak")
            || p.starts_with("active")
            // The rules generation and what the last and longest swap took.
            || *p == "generation"
            || p.starts_with("swap_")
    })
}

/// `a.b.c` of `m`'s numeric leaves as `tollgate_a_b_c`, in order.
fn leaves(m: &Map<String, Value>, path: &mut Vec<String>, out: &mut Vec<(String, String, Leaf)>) {
    for (k, v) in m {
        path.push(k.clone());
        match v {
            Value::Object(o) => leaves(o, path, out),
            Value::Number(n) => {
                let parts: Vec<&str> = path.iter().map(String::as_str).collect();
                let name: String = std::iter::once("tollgate")
                    .chain(parts.iter().copied())
                    .collect::<Vec<_>>()
                    .join("_")
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                let leaf = match n.as_u64() {
                    Some(u) if !gauge_path(&parts) => Leaf::Counter(u),
                    _ => Leaf::Gauge(n.as_f64().unwrap_or(0.0)),
                };
                out.push((name, parts.join("."), leaf));
            }
            _ => {}
        }
        path.pop();
    }
}

impl Collector for Snapshots {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let latest = match self.0.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        // Name → its stats key and (worker, value), in the stats object's
        // order.
        let mut families: Vec<Family> = Vec::new();
        for (k, w) in latest.workers.iter().enumerate() {
            let mut flat = Vec::new();
            leaves(&w.to_json(latest.seconds), &mut Vec::new(), &mut flat);
            for (name, key, leaf) in flat {
                match families.iter_mut().find(|(n, _, _)| *n == name) {
                    Some((_, _, v)) => v.push((k, leaf)),
                    None => families.push((name, key, vec![(k, leaf)])),
                }
            }
        }
        drop(latest);
        for (name, key, values) in &families {
            let gauge = values.iter().any(|(_, l)| matches!(l, Leaf::Gauge(_)));
            let kind = if gauge {
                MetricType::Gauge
            } else {
                MetricType::Counter
            };
            let help = format!("stats JSON, per worker: {key}");
            let mut family = encoder.encode_descriptor(name, &help, None, kind)?;
            for (k, leaf) in values {
                let labels = [("worker", k.to_string())];
                let mut m = family.encode_family(&labels)?;
                match (gauge, leaf) {
                    (false, Leaf::Counter(v)) => {
                        m.encode_counter::<NoLabelSet, u64, u64>(v, None)?
                    }
                    (_, Leaf::Counter(v)) => m.encode_gauge(&(*v as f64))?,
                    (_, Leaf::Gauge(v)) => m.encode_gauge(v)?,
                }
            }
        }
        Ok(())
    }
}

/// The policy's counters per zone pair, summed over workers.
#[derive(Debug)]
struct PolicyPairs(PolicySlot);

impl Collector for PolicyPairs {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = match self.0.lock() {
            Ok(p) => p.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let Some(stats) = stats else {
            return Ok(());
        };
        let s = stats.summary();
        for (i, what) in ["flows_allowed", "flows_denied", "packets", "bytes"]
            .iter()
            .enumerate()
        {
            let name = format!("tollgate_policy_{what}");
            let help = format!("stats JSON policy.pairs[].{what}, by zone pair (all workers)");
            let mut family = encoder.encode_descriptor(&name, &help, None, MetricType::Counter)?;
            for ((from, to), c) in &s.pairs {
                let labels = [("from", from.as_str()), ("to", to.as_str())];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, u64, u64>(&c[i], None)?;
            }
        }
        for (i, what) in ["passed", "dropped"].iter().enumerate() {
            let name = format!("tollgate_policy_non_ip_{what}");
            let help = format!("stats JSON policy.non_ip.{what} (all workers)");
            encoder
                .encode_descriptor(&name, &help, None, MetricType::Counter)?
                .encode_counter::<NoLabelSet, u64, u64>(&s.non_ip[i], None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(addr: SocketAddr, path: &str) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut c, &mut s).unwrap();
        s
    }

    #[test]
    fn a_scrape_has_the_policys_counters_by_zone_pair() {
        use crate::policy::enforce::{
            Mark, PacketFacts, PolicyAction, PolicyReloader, PolicySetup,
        };
        let text = "zones:\n  a:\n    prefix: 10.1.0.0/16\n  b:\n    prefix: 10.2.0.0/16\n";
        let setup = PolicySetup {
            path: "p.yaml".into(),
            policy: Arc::new(crate::policy::Policy::parse(text, "p.yaml").unwrap()),
            action: PolicyAction::Drop,
            trigger: Arc::default(),
            stats: Arc::default(),
        };
        let stats = Arc::clone(&setup.stats);
        let w = PolicyReloader::new(setup, None).worker();
        let facts = PacketFacts {
            segment: Default::default(),
            src: "10.1.0.1".parse().unwrap(),
            dst: "10.2.0.1".parse().unwrap(),
            src_port: 40000,
            dst_port: 22,
            proto: 6,
            syn: true,
            len: 74,
            data: false,
            app: crate::applayer::AppProto::Unknown,
            to_server: true,
        };
        w.packet(Mark::default(), &facts, true);
        let m = Metrics::start("127.0.0.1:0").unwrap();
        m.watch_policy(stats);
        let s = scrape(m.addr(), "/metrics");
        assert!(
            s.contains("# TYPE tollgate_policy_flows_denied counter"),
            "{s}"
        );
        assert!(
            s.contains("tollgate_policy_flows_denied_total{from=\"a\",to=\"b\"} 1"),
            "{s}"
        );
        assert!(
            s.contains("tollgate_policy_bytes_total{from=\"a\",to=\"b\"} 74"),
            "{s}"
        );
        assert!(s.contains("tollgate_policy_non_ip_passed_total 0"), "{s}");
    }

    #[test]
    fn a_scrape_has_each_workers_counters_labelled() {
        let m = Metrics::start("127.0.0.1:0").unwrap();
        let a = WorkerCounters {
            rx_packets: 7,
            ..Default::default()
        };
        let b = WorkerCounters {
            rx_packets: 5,
            ..Default::default()
        };
        m.update(&[a, b], 2.0);
        let s = scrape(m.addr(), "/metrics");
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"), "{s}");
        assert!(s.contains(CONTENT_TYPE));
        assert!(s.contains("# TYPE tollgate_packets_rx counter"), "{s}");
        assert!(
            s.contains("tollgate_packets_rx_total{worker=\"0\"} 7"),
            "{s}"
        );
        assert!(
            s.contains("tollgate_packets_rx_total{worker=\"1\"} 5"),
            "{s}"
        );
        assert!(s.contains("# TYPE tollgate_throughput_pps gauge"), "{s}");
        assert!(s.trim_end().ends_with("# EOF"));
        assert!(scrape(m.addr(), "/").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn a_taken_port_is_an_error_naming_the_flag() {
        let m = Metrics::start("127.0.0.1:0").unwrap();
        let e = Metrics::start(&m.addr().to_string()).unwrap_err();
        assert!(e.starts_with("--metrics 127.0.0.1:"), "{e}");
    }
}
