//! Counters and their reports. Each worker owns a `WorkerCounters` of plain
//! `u64`s and publishes a copy every few bursts; this module sums them, and
//! renders the stats JSON (the shape ARCHITECTURE.md fixes), the periodic
//! stats line and the end-of-run summary table.

use crate::decode::{DecodeError, Decoded, Network};
use crate::defrag::FragCounters;
use crate::flow::FlowCounters;
use crate::io::DropReason;
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

/// Packets per layer that decoded cleanly (Suricata's `decoder.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodedCounters {
    pub vlan_tagged: u64,
    /// Tenant frames decoded from inside VXLAN.
    pub vxlan: u64,
    pub arp: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmpv4: u64,
    pub icmpv6: u64,
    pub other_ip: u64,
    /// Fragments pass uninspected until the reassembly stage lands.
    pub ipv4_fragments: u64,
    pub ipv6_fragments: u64,
}

impl DecodedCounters {
    /// Counts what layers a packet that decoded has.
    pub fn count(&mut self, d: &Decoded) {
        let c = self;
        if d.vlan_count > 0 {
            c.vlan_tagged += 1;
        }
        if d.vni.is_some() {
            c.vxlan += 1;
        }
        match d.network {
            Network::Arp => c.arp += 1,
            Network::Ipv4 => c.ipv4 += 1,
            Network::Ipv6 => c.ipv6 += 1,
        }
        if !d.is_ip() {
            return;
        }
        if d.fragment {
            match d.network {
                Network::Ipv6 => c.ipv6_fragments += 1,
                _ => c.ipv4_fragments += 1,
            }
            return;
        }
        match d.proto {
            6 => c.tcp += 1,
            17 => c.udp += 1,
            1 if d.network == Network::Ipv4 => c.icmpv4 += 1,
            58 if d.network == Network::Ipv6 => c.icmpv6 += 1,
            _ => c.other_ip += 1,
        }
    }
}

impl DecodedCounters {
    fn add(&mut self, o: &DecodedCounters) {
        self.vlan_tagged += o.vlan_tagged;
        self.vxlan += o.vxlan;
        self.arp += o.arp;
        self.ipv4 += o.ipv4;
        self.ipv6 += o.ipv6;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.icmpv4 += o.icmpv4;
        self.icmpv6 += o.icmpv6;
        self.other_ip += o.other_ip;
        self.ipv4_fragments += o.ipv4_fragments;
        self.ipv6_fragments += o.ipv6_fragments;
    }

    fn to_json(self) -> Value {
        json!({
            "vlan_tagged": self.vlan_tagged, "vxlan": self.vxlan, "arp": self.arp,
            "ipv4": self.ipv4, "ipv6": self.ipv6,
            "tcp": self.tcp, "udp": self.udp,
            "icmpv4": self.icmpv4, "icmpv6": self.icmpv6, "other_ip": self.other_ip,
            "ipv4_fragments": self.ipv4_fragments, "ipv6_fragments": self.ipv6_fragments,
        })
    }
}

/// Everything one worker counts. Plain integers, owned by the worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub dropped: [u64; DropReason::COUNT],
    pub decode_errors: [u64; DecodeError::COUNT],
    /// Packets that decoded with something odd about them (inspected all
    /// the same), by what.
    pub decode_anomalies: [u64; crate::decode::DecodeAnomaly::COUNT],
    pub decoded: DecodedCounters,
    pub flows: FlowCounters,
    pub flows_active: u64,
    /// Events handed to the rings to the EVE writer, and those lost to a
    /// full ring (alerts among them).
    pub emit: crate::events::EmitCounters,
    /// Packets the worker's sink says it was handed.
    pub sink_packets: u64,
    /// Rule matches that became alerts.
    pub alerts: u64,
    /// Rule matches a threshold or detection_filter kept from alerting.
    pub alerts_thresholded: u64,
    /// Matches that alerted unthresholded: the threshold table was full.
    pub threshold_table_full: u64,
    /// Flowbit sets refused: the flow carried all the bits it can.
    pub flowbits_full: u64,
    /// IPv4 headers whose checksum failed (not used), and whether
    /// `--checksum auto` stopped verifying them.
    pub ipv4_checksum_bad: u64,
    pub ipv4_checksum_off: u64,
    /// Packets of streams that could not be inspected whole, met by the
    /// exception policy.
    pub exception_stream: u64,
    /// Alerts past `--packet-alert-max` on one packet (acted on, not
    /// logged).
    pub alerts_discarded: u64,
    /// Rule evaluations stopped by the inspection step budget or PCRE2's
    /// limits (each no match).
    pub inspection: crate::detect::content::InspectionCounters,
    pub frag: FragCounters,
    pub stream: crate::reassembly::StreamCounters,
    pub stream_match: crate::detect::stream::StreamMatchCounters,
    pub scoring: crate::scoring::LinkCounters,
    pub app: crate::applayer::AppCounters,
    /// Rule reloads this worker swapped to.
    pub rules_swap: crate::detect::reload::SwapCounters,
}

impl WorkerCounters {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    pub fn decode_errors_total(&self) -> u64 {
        self.decode_errors.iter().sum()
    }

    pub fn add(&mut self, o: &WorkerCounters) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        for (a, b) in self.dropped.iter_mut().zip(o.dropped) {
            *a += b;
        }
        for (a, b) in self.decode_errors.iter_mut().zip(o.decode_errors) {
            *a += b;
        }
        self.decoded.add(&o.decoded);
        self.flows.created += o.flows.created;
        self.flows.ended += o.flows.ended;
        self.flows.timed_out += o.flows.timed_out;
        self.flows.evicted += o.flows.evicted;
        self.flows.bypassed += o.flows.bypassed;
        self.flows.bypassed_packets += o.flows.bypassed_packets;
        // The sum of per-worker peaks: an upper bound on the flows held at
        // once across the box, which is what sizing needs.
        self.flows.active_peak += o.flows.active_peak;
        for (a, b) in self.flows.tcp_refused.iter_mut().zip(o.flows.tcp_refused) {
            *a += b;
        }
        for (a, b) in self.decode_anomalies.iter_mut().zip(o.decode_anomalies) {
            *a += b;
        }
        self.app.add(&o.app);
        self.flows_active += o.flows_active;
        self.emit.add(&o.emit);
        self.sink_packets += o.sink_packets;
        self.alerts += o.alerts;
        self.alerts_thresholded += o.alerts_thresholded;
        self.threshold_table_full += o.threshold_table_full;
        self.flowbits_full += o.flowbits_full;
        self.alerts_discarded += o.alerts_discarded;
        self.ipv4_checksum_bad += o.ipv4_checksum_bad;
        self.ipv4_checksum_off += o.ipv4_checksum_off;
        self.exception_stream += o.exception_stream;
        self.inspection.add(&o.inspection);
        self.frag.add(&o.frag);
        self.stream.add(&o.stream);
        self.stream_match.add(&o.stream_match);
        self.scoring.add(&o.scoring);
        self.rules_swap.add(&o.rules_swap);
    }

    pub fn sum<'a>(all: impl IntoIterator<Item = &'a WorkerCounters>) -> WorkerCounters {
        let mut t = WorkerCounters::default();
        for w in all {
            t.add(w);
        }
        t
    }

    /// The contract's per-worker object (also the top level, minus the
    /// extra sections).
    pub fn to_json(self, seconds: f64) -> Map<String, Value> {
        let mut dropped = Map::new();
        for r in DropReason::ALL {
            dropped.insert(r.name().into(), json!(self.dropped[r.index()]));
        }
        let mut errors = Map::new();
        for e in DecodeError::ALL {
            let n = self.decode_errors[e.index()];
            if n > 0 {
                errors.insert(e.name().into(), json!(n));
            }
        }
        let (pps, bps) = rates(self.rx_packets, self.rx_bytes, seconds);
        let mut m = Map::new();
        m.insert(
            "packets".into(),
            json!({"rx": self.rx_packets, "tx": self.tx_packets, "dropped": dropped}),
        );
        m.insert(
            "bytes".into(),
            json!({"rx": self.rx_bytes, "tx": self.tx_bytes}),
        );
        m.insert(
            "flows".into(),
            json!({
                "created": self.flows.created,
                "ended": self.flows.ended,
                "evicted": self.flows.evicted,
                "timed_out": self.flows.timed_out,
                "active_peak": self.flows.active_peak,
                "bypassed": self.flows.bypassed,
                "bypassed_packets": self.flows.bypassed_packets,
            }),
        );
        m.insert("decode_errors".into(), Value::Object(errors));
        m.insert(
            "throughput".into(),
            json!({"seconds": seconds, "pps": pps, "bps": bps}),
        );
        m.insert("decoded".into(), self.decoded.to_json());
        m.insert("fragments".into(), self.frag.to_json());
        m.insert(
            "rules".into(),
            json!({
                "alerts": self.alerts,
                "thresholded": self.alerts_thresholded,
                "threshold_table_full": self.threshold_table_full,
                "flowbits_full": self.flowbits_full,
                "alerts_discarded": self.alerts_discarded,
                "recursion_limit": self.inspection.recursion_limit,
                "pcre_limit": self.inspection.pcre_limit,
                "generation": self.rules_swap.generation,
                "swaps": self.rules_swap.swaps,
                "swap_ns_max": self.rules_swap.swap_ns_max,
                "swap_ns_last": self.rules_swap.swap_ns_last,
                "swap_wait_ns_max": self.rules_swap.wait_ns_max,
                "streams_restarted": self.rules_swap.streams_restarted,
                "swap_packets_delayed": self.rules_swap.packets_delayed,
            }),
        );
        let (st, sm) = (&self.stream, &self.stream_match);
        m.insert(
            "stream".into(),
            json!({
                "bytes_reassembled": st.bytes,
                "segments_out_of_order": st.out_of_order,
                "retransmissions": st.retransmissions,
                "overlaps": {
                    "same": st.overlaps_same,
                    "different": st.overlaps_different,
                    "new_won": st.overlaps_new_won,
                },
                "gaps": st.gaps,
                "over_limits": st.over_limits,
                "sessions_full": st.sessions_full,
                "midstream_skipped": st.midstream_skipped,
                "depth_reached": st.depth_reached,
                "ciphertext": st.ciphertext,
                "tls_resync": st.tls_resync,
                "suspect": {
                    "held": st.suspect_held,
                    "replaced": st.suspect_replaced,
                    "unacked": st.suspect_unacked,
                },
                "urgent_removed": st.urgent_removed,
                "evicted": {
                    "sessions": st.evicted_sessions,
                    "windows": st.evicted_windows,
                    "held": st.evicted_held,
                },
                "checksum_bad": st.checksum_bad,
                "checksum_validation_off": st.checksum_off,
                "state": {
                    "sessions": st.sessions,
                    "window_blocks": st.blocks,
                    "held_chunks": st.chunks,
                    "bytes": st.memuse,
                    "bytes_peak": st.memuse_peak,
                },
                "match": {
                    "scans": sm.scans,
                    "unconfirmable": sm.unconfirmable,
                    "pending_full": sm.pending_full,
                    "state_overflow": sm.state_overflow,
                },
            }),
        );
        m.insert("app_layer".into(), app_json(&self.app));
        // Segments the TCP tracker did not take (a host would not), by why.
        let mut tcp = Map::new();
        for w in crate::flow::tcp::Why::ALL {
            tcp.insert(w.name().into(), json!(self.flows.tcp_refused[w.index()]));
        }
        m.insert("tcp".into(), Value::Object(tcp));
        m.insert(
            "checksums".into(),
            json!({
                "ipv4_bad": self.ipv4_checksum_bad,
                "ipv4_validation_off": self.ipv4_checksum_off,
                "tcp_bad": st.checksum_bad,
                "tcp_validation_off": st.checksum_off,
            }),
        );
        m.insert(
            "exception_policy".into(),
            json!({"stream": self.exception_stream, "defrag": self.frag.exception}),
        );
        let mut anomalies = Map::new();
        for a in crate::decode::DecodeAnomaly::ALL {
            anomalies.insert(a.name().into(), json!(self.decode_anomalies[a.index()]));
        }
        m.insert("decode_anomalies".into(), Value::Object(anomalies));
        let sc = &self.scoring;
        if sc.records + sc.dropped + sc.prompts + sc.prompts_dropped > 0 {
            m.insert(
                "scoring".into(),
                json!({
                    "records": sc.records,
                    "dropped": sc.dropped,
                    "verdicts": {"applied": sc.verdicts_applied, "stale": sc.verdicts_stale},
                    "prompts": {
                        "records": sc.prompts,
                        "dropped": sc.prompts_dropped,
                        "cut": sc.prompts_cut,
                    },
                }),
            );
        }
        m.insert(
            "events".into(),
            json!({
                "flow": self.emit.sent,
                "dropped_ring_full": self.emit.dropped,
                "alerts_dropped_ring_full": self.emit.alerts_dropped,
                "text_lost": self.emit.text_lost,
            }),
        );
        m
    }
}

fn rates(packets: u64, bytes: u64, seconds: f64) -> (f64, f64) {
    if seconds > 0.0 {
        (packets as f64 / seconds, bytes as f64 * 8.0 / seconds)
    } else {
        (0.0, 0.0)
    }
}

/// Processing time in the worker, in nanoseconds: per packet (a packet
/// leaves with its burst, so it waits the whole burst's time) and per burst.
/// Allocated once at start; recording never allocates.
#[derive(Debug, Clone)]
pub struct Latency {
    packet: Histogram<u64>,
    burst: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// From 1 ns to a minute, three significant figures.
    pub fn new() -> Self {
        let h =
            || Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static bounds are valid");
        Latency {
            packet: h(),
            burst: h(),
        }
    }

    /// One burst of `packets` took `ns`.
    pub fn record_burst(&mut self, ns: u64, packets: u64) {
        let ns = ns.max(1);
        self.packet.saturating_record_n(ns, packets);
        self.burst.saturating_record(ns);
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.packet.add(&other.packet);
        let _ = self.burst.add(&other.burst);
    }

    pub fn merged<'a>(all: impl IntoIterator<Item = &'a Latency>) -> Latency {
        let mut m = Latency::new();
        for l in all {
            m.merge(l);
        }
        m
    }

    fn quantiles(h: &Histogram<u64>) -> Value {
        if h.is_empty() {
            return json!({"p50": 0, "p99": 0, "p999": 0, "max": 0});
        }
        json!({
            "p50": h.value_at_quantile(0.50),
            "p99": h.value_at_quantile(0.99),
            "p999": h.value_at_quantile(0.999),
            "max": h.max(),
        })
    }

    /// The contract's `latency_ns` (per packet).
    pub fn packet_json(&self) -> Value {
        Self::quantiles(&self.packet)
    }

    pub fn burst_json(&self) -> Value {
        Self::quantiles(&self.burst)
    }

    pub fn summary_line(&self) -> String {
        let q = |h: &Histogram<u64>, x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        format!(
            "latency per packet (ns): p50 {} p99 {} p99.9 {} max {}; per burst p50 {} p99 {}",
            q(&self.packet, 0.5),
            q(&self.packet, 0.99),
            q(&self.packet, 0.999),
            self.packet.max(),
            q(&self.burst, 0.5),
            q(&self.burst, 0.99),
        )
    }
}

/// What the capture reader saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureCounters {
    pub files: u64,
    pub records: u64,
    pub bytes: u64,
    /// Files that ended in a truncated or corrupt record.
    pub truncated_files: u64,
}

impl CaptureCounters {
    pub fn to_json(&self) -> Value {
        json!({
            "files": self.files,
            "records": self.records,
            "bytes": self.bytes,
            "truncated_files": self.truncated_files,
        })
    }
}

/// The final stats JSON: totals, the sink and every worker. Callers add the
/// objects of their source (`capture` for replay, `ports` for run).
/// `latency` holds one entry per worker (or none, when not measured).
pub fn stats_json(
    workers: &[WorkerCounters],
    latency: &[Latency],
    seconds: f64,
) -> Map<String, Value> {
    let total = WorkerCounters::sum(workers);
    let mut top = total.to_json(seconds);
    if !latency.is_empty() {
        let all = Latency::merged(latency);
        top.insert("latency_ns".into(), all.packet_json());
        top.insert("burst_latency_ns".into(), all.burst_json());
    }
    top.insert("sink".into(), json!({"packets": total.sink_packets}));
    let per_worker: Vec<Value> = workers
        .iter()
        .enumerate()
        .map(|(k, w)| {
            let mut m = w.to_json(seconds);
            if let Some(l) = latency.get(k) {
                m.insert("latency_ns".into(), l.packet_json());
                m.insert("burst_latency_ns".into(), l.burst_json());
            }
            m.insert("worker".into(), json!(k));
            Value::Object(m)
        })
        .collect();
    top.insert("workers".into(), Value::Array(per_worker));
    top
}

/// What the capture ports counted (`run`): the EVE stats event's
/// `capture` section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Packets the ports received.
    pub packets: u64,
    /// Packets the ports dropped for want of room (`imissed`, `rx_nombuf`).
    pub drops: u64,
    /// Packets the ports received in error.
    pub errors: u64,
}

/// An EVE `stats` event in Suricata's layout (`uptime`, `capture` under
/// `run`, `decoder`, `defrag`, `flow`, `stream`, `tcp`, `detect`, `ips`,
/// where Tollgate has the counter), with Tollgate's whole stats object in
/// `tollgate` when `extensions`. One line of JSON, without its newline.
pub fn eve_stats_line(
    workers: &[WorkerCounters],
    capture: Option<&PortCounters>,
    uptime_s: u64,
    ts_ns: u64,
    ips: bool,
    extensions: bool,
) -> String {
    let ours = WorkerCounters::sum(workers).to_json(uptime_s as f64);
    let n = |path: &[&str]| -> u64 {
        let mut v = ours.get(path[0]);
        for p in &path[1..] {
            v = v.and_then(|x| x.get(*p));
        }
        v.and_then(Value::as_u64).unwrap_or(0)
    };
    let sum = |path: &[&str]| -> u64 {
        let mut v = ours.get(path[0]);
        for p in &path[1..] {
            v = v.and_then(|x| x.get(*p));
        }
        v.and_then(Value::as_object)
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
    };
    let rx = n(&["packets", "rx"]);
    let mut stats = json!({
        "uptime": uptime_s,
        "decoder": {
            "pkts": rx,
            "bytes": n(&["bytes", "rx"]),
            "avg_pkt_size": n(&["bytes", "rx"]).checked_div(rx).unwrap_or(0),
            "invalid": sum(&["decode_errors"]),
            "ethernet": rx,
            "ipv4": n(&["decoded", "ipv4"]),
            "ipv6": n(&["decoded", "ipv6"]),
            "tcp": n(&["decoded", "tcp"]),
            "udp": n(&["decoded", "udp"]),
            "icmpv4": n(&["decoded", "icmpv4"]),
            "icmpv6": n(&["decoded", "icmpv6"]),
            "arp": n(&["decoded", "arp"]),
            "vlan": n(&["decoded", "vlan_tagged"]),
            "vxlan": n(&["decoded", "vxlan"]),
            "unknown_ethertype": n(&["decode_errors", "ethernet.unknown_ethertype"]),
        },
        "flow": {
            "total": n(&["flows", "created"]),
            "active": n(&["flows", "created"]).saturating_sub(n(&["flows", "ended"])),
        },
        "defrag": {
            "ipv4": { "fragments": n(&["decoded", "ipv4_fragments"]) },
            "ipv6": { "fragments": n(&["decoded", "ipv6_fragments"]) },
        },
        "stream": {
            "reassembly_overlap_different_data": n(&["stream", "overlaps", "different"]),
            "reassembly_depth_reached": n(&["stream", "depth_reached"]),
            "pkt_retransmission": n(&["stream", "retransmissions"]),
        },
        "tcp": {
            "invalid_checksum": n(&["checksums", "tcp_bad"]),
            "overlap": n(&["stream", "overlaps", "same"]) + n(&["stream", "overlaps", "different"]),
            "overlap_diff_data": n(&["stream", "overlaps", "different"]),
            "reassembly_gap": n(&["stream", "gaps"]),
            "stream_depth_reached": n(&["stream", "depth_reached"]),
        },
        "detect": {
            "alert": n(&["rules", "alerts"]),
            "alert_queue_overflow": n(&["rules", "alerts_discarded"]),
            "alerts_suppressed": n(&["rules", "thresholded"]),
        },
    });
    if ips {
        stats["ips"] = json!({
            "accepted": n(&["packets", "tx"]),
            "blocked": sum(&["packets", "dropped"]),
            "drop_reason": {
                "rules": n(&["packets", "dropped", "rule"]),
                "decode_error": n(&["packets", "dropped", "malformed"]),
                "defrag_error": n(&["packets", "dropped", "fragment"]),
                "flow_drop": n(&["packets", "dropped", "score"]),
            },
        });
    }
    if let Some(c) = capture {
        stats["capture"] = json!({
            "kernel_packets": c.packets,
            "kernel_drops": c.drops,
            "errors": c.errors,
        });
    }
    let mut ev = json!({
        "timestamp": crate::eve::format_timestamp(ts_ns),
        "event_type": "stats",
        "stats": stats,
    });
    if extensions {
        ev["tollgate"] = json!({ "stats": Value::Object(ours) });
    }
    ev.to_string()
}

/// When the next EVE `stats` event is due, and writing it.
pub struct EveStats {
    every: Option<std::time::Duration>,
    started: std::time::Instant,
    last: std::time::Instant,
    ips: bool,
    extensions: bool,
}

impl EveStats {
    pub fn new(settings: &crate::eve::EveSettings, ips: bool) -> Self {
        let now = std::time::Instant::now();
        EveStats {
            every: settings
                .stats
                .filter(|_| settings.types.has(crate::events::EveTypes::STATS)),
            started: now,
            last: now,
            ips,
            extensions: settings.extensions,
        }
    }

    /// Sends a stats event from `workers` if one is due (or `last`, at the
    /// end); a full channel skips it rather than wait.
    pub fn tick(
        &mut self,
        workers: &[WorkerCounters],
        capture: Option<&PortCounters>,
        to: Option<&crossbeam_channel::Sender<String>>,
        last: bool,
    ) {
        let (Some(every), Some(to)) = (self.every, to) else {
            return;
        };
        if !last && self.last.elapsed() < every {
            return;
        }
        self.last = std::time::Instant::now();
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let line = eve_stats_line(
            workers,
            capture,
            self.started.elapsed().as_secs(),
            now_ns,
            self.ips,
            self.extensions,
        );
        let _ = to.try_send(line);
    }
}

/// Numbers with SI suffixes for the human-facing lines.
pub fn si(v: f64) -> String {
    let (d, s) = match v.abs() {
        x if x >= 1e9 => (1e9, "G"),
        x if x >= 1e6 => (1e6, "M"),
        x if x >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    if s.is_empty() {
        format!("{v:.0}")
    } else {
        format!("{:.2}{s}", v / d)
    }
}

/// The periodic stats line (stderr).
pub fn stats_line(
    elapsed: f64,
    total: &WorkerCounters,
    prev: &WorkerCounters,
    interval: f64,
) -> String {
    let pps =
        (total.rx_packets - prev.rx_packets.min(total.rx_packets)) as f64 / interval.max(1e-9);
    let bps =
        (total.rx_bytes - prev.rx_bytes.min(total.rx_bytes)) as f64 * 8.0 / interval.max(1e-9);
    format!(
        "tollgate: {elapsed:7.1}s rx {} pkts ({}pps, {}bit/s) tx {} dropped {} decode_errors {} flows active {} created {}",
        total.rx_packets,
        si(pps),
        si(bps),
        total.tx_packets,
        total.dropped_total(),
        total.decode_errors_total(),
        total.flows_active,
        total.flows.created,
    )
}

/// The end-of-run summary: `header`, throughput, then a table of totals
/// and one column per worker.
pub fn summary_table(header: &str, workers: &[WorkerCounters], seconds: f64) -> String {
    let total = WorkerCounters::sum(workers);
    let mut rows: Vec<(String, Vec<u64>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&WorkerCounters) -> u64| {
        let mut v = vec![f(&total)];
        v.extend(workers.iter().map(f));
        rows.push((name.to_string(), v));
    };
    row("packets rx", &|w| w.rx_packets);
    row("packets tx", &|w| w.tx_packets);
    for r in DropReason::ALL {
        row(&format!("dropped {}", r.name()), &|w| w.dropped[r.index()]);
    }
    row("bytes rx", &|w| w.rx_bytes);
    row("alerts", &|w| w.alerts);
    row("  thresholded", &|w| w.alerts_thresholded);
    if total.alerts_discarded > 0 {
        row("  not logged (packet-alert-max)", &|w| w.alerts_discarded);
    }
    if total.inspection.recursion_limit + total.inspection.pcre_limit > 0 {
        row("rules stopped by recursion limit", &|w| {
            w.inspection.recursion_limit
        });
        row("pcre stopped by match limit", &|w| w.inspection.pcre_limit);
    }
    row("flows created", &|w| w.flows.created);
    row("flows ended", &|w| w.flows.ended);
    row("  timed out", &|w| w.flows.timed_out);
    row("  evicted", &|w| w.flows.evicted);
    row("flows active peak", &|w| w.flows.active_peak);
    row("decode errors", &|w| w.decode_errors_total());
    for e in DecodeError::ALL {
        if total.decode_errors[e.index()] > 0 {
            row(&format!("  {}", e.name()), &|w| w.decode_errors[e.index()]);
        }
    }
    if total.frag.fragments > 0 {
        row("fragments", &|w| w.frag.fragments);
        row("  datagrams reassembled", &|w| w.frag.reassembled);
        row("  handed to flow's worker", &|w| w.frag.handoffs);
        row("  timed out", &|w| w.frag.timeouts);
        row("  overlaps", &|w| w.frag.overlaps);
    }
    if total.stream.bytes + total.stream.checksum_bad + total.stream.midstream_skipped > 0 {
        row("stream bytes reassembled", &|w| w.stream.bytes);
        row("  segments out of order", &|w| w.stream.out_of_order);
        row("  overlaps same", &|w| w.stream.overlaps_same);
        row("  overlaps different", &|w| w.stream.overlaps_different);
        row("  gaps", &|w| w.stream.gaps);
        row("  over limits", &|w| {
            w.stream.over_limits + w.stream.sessions_full
        });
        row("  midstream skipped", &|w| w.stream.midstream_skipped);
        row("  bad checksums", &|w| w.stream.checksum_bad);
        row("  state bytes peak", &|w| w.stream.memuse_peak);
        row("  unconfirmable hits", &|w| w.stream_match.unconfirmable);
    }
    let app = &total.app;
    if app.flows.iter().sum::<u64>() + app.no_slot > 0 {
        use crate::applayer::http::HttpAnomaly;
        use crate::applayer::AppProto;
        row("app layer flows http", &|w| {
            w.app.flows[AppProto::Http as usize]
        });
        row("  tls", &|w| w.app.flows[AppProto::Tls as usize]);
        row("  dns", &|w| w.app.flows[AppProto::Dns as usize]);
        row("  failed", &|w| w.app.flows[AppProto::Failed as usize]);
        row("  no parser slot", &|w| w.app.no_slot);
        row("http transactions", &|w| w.app.http.txs);
        row("  parse errors", &|w| w.app.http.errors());
        for e in HttpAnomaly::ALL {
            if app.http.anomalies[e as usize] > 0 {
                row(&format!("    {}", e.name()), &|w| {
                    w.app.http.anomalies[e as usize]
                });
            }
        }
        row("  bytes decompressed", &|w| w.app.http.bytes_decompressed);
        row("  body limit hit", &|w| w.app.http.body_limit);
        row("  ratio cap hit", &|w| w.app.http.ratio_cap);
        row("  memcap refusals", &|w| {
            w.app.http.memcap + w.app.http.decoders_busy
        });
    }
    for why in crate::flow::tcp::Why::ALL {
        if total.flows.tcp_refused[why.index()] > 0 {
            row(&format!("tcp refused {}", why.name()), &|w| {
                w.flows.tcp_refused[why.index()]
            });
        }
    }
    for a in crate::decode::DecodeAnomaly::ALL {
        if total.decode_anomalies[a.index()] > 0 {
            row(&format!("decode anomaly {}", a.name()), &|w| {
                w.decode_anomalies[a.index()]
            });
        }
    }
    if total.scoring.records + total.scoring.dropped > 0 {
        row("feature records", &|w| w.scoring.records);
        row("  lost (ring full)", &|w| w.scoring.dropped);
        row("  verdicts applied", &|w| w.scoring.verdicts_applied);
        row("  verdicts stale", &|w| w.scoring.verdicts_stale);
    }
    if total.scoring.prompts + total.scoring.prompts_dropped > 0 {
        row("prompts to the scorer", &|w| w.scoring.prompts);
        row("  lost (ring full)", &|w| w.scoring.prompts_dropped);
        row("  cut to head and tail", &|w| w.scoring.prompts_cut);
    }
    if total.emit.sent + total.emit.dropped > 0 {
        row("flow events", &|w| w.emit.sent);
        row("  lost (ring full)", &|w| w.emit.dropped);
    }

    let mut out = String::new();
    let (pps, bps) = rates(total.rx_packets, total.rx_bytes, seconds);
    let _ = writeln!(
        out,
        "{header}, {} worker(s), {:.3} s, {}pps, {}bit/s",
        workers.len(),
        seconds,
        si(pps),
        si(bps)
    );
    let name_width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0) + 2;
    let _ = write!(out, "{:<name_width$}{:>14}", "", "total");
    for k in 0..workers.len() {
        let _ = write!(out, "{:>14}", format!("worker {k}"));
    }
    out.push('\n');
    for (name, vals) in rows {
        let _ = write!(out, "{name:<name_width$}");
        for v in vals {
            let _ = write!(out, "{v:>14}");
        }
        out.push('\n');
    }
    out
}

/// The app layer's counters: flows by protocol, per-protocol
/// transactions, parse errors by reason, decompression and limits.
fn app_json(a: &crate::applayer::AppCounters) -> Value {
    use crate::applayer::http::HttpAnomaly;
    use crate::applayer::AppProto;
    let h = &a.http;
    let mut errors = Map::new();
    for e in HttpAnomaly::ALL {
        errors.insert(e.name().into(), json!(h.anomalies[e as usize]));
    }
    let mut flows = Map::new();
    for p in [
        AppProto::Http,
        AppProto::Tls,
        AppProto::Dns,
        AppProto::Failed,
    ] {
        flows.insert(p.name().into(), json!(a.flows[p as usize]));
    }
    let ai = &a.ai;
    let mut calls = Map::new();
    for e in crate::applayer::llm::Endpoint::ALL {
        calls.insert(e.name().into(), json!(ai.llm_calls[e as usize]));
    }
    let mut llm_errors = Map::new();
    for e in crate::applayer::json::JsonError::ALL {
        llm_errors.insert(e.name().into(), json!(ai.llm_errors[e as usize]));
    }
    let mut formats = Map::new();
    for f in crate::applayer::model::Format::ALL {
        formats.insert(f.name().into(), json!(ai.artifacts[f as usize]));
    }
    let mut dns_errors = Map::new();
    for e in crate::applayer::dns::parser::DnsError::ALL {
        dns_errors.insert(e.name().into(), json!(a.dns.errors[e as usize]));
    }
    json!({
        "flows": flows,
        "no_slot": a.no_slot,
        "tls": {
            "client_hellos": a.tls.client_hellos,
            "server_hellos": a.tls.server_hellos,
            "certificates": a.tls.certificates,
            "bad_hellos": a.tls.bad_hellos,
            "not_tls": a.tls.not_tls,
            "too_long": a.tls.too_long,
        },
        "dns": {
            "requests": a.dns.requests,
            "responses": a.dns.responses,
            "errors": dns_errors,
            "skipped": a.dns.skipped,
        },
        "store": {"bytes": a.store_bytes, "bytes_peak": a.store_peak},
        "ai": {
            "llm": {"calls": calls, "streamed": ai.llm_streamed, "errors": llm_errors},
            "artifacts": {
                "formats": formats,
                "malformed": ai.artifacts_malformed,
                "pickle_suspicious": ai.pickle_suspicious,
            },
        },
        "http": {
            "transactions": h.txs,
            "requests": h.requests,
            "responses": h.responses,
            "errors": errors,
            "bytes_decompressed": h.bytes_decompressed,
            "body_limit": h.body_limit,
            "decompress_ratio_cap": h.ratio_cap,
            "decoders_busy": h.decoders_busy,
            "memcap": h.memcap,
            "gaps": h.gaps,
            "resyncs": h.resyncs,
            "tunnels": h.tunnels,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<WorkerCounters> {
        let mut a = WorkerCounters {
            rx_packets: 10,
            rx_bytes: 1000,
            tx_packets: 9,
            tx_bytes: 900,
            ..Default::default()
        };
        a.dropped[DropReason::Malformed.index()] = 1;
        a.decode_errors[DecodeError::TcpTruncated.index()] = 1;
        a.flows.created = 3;
        a.flows.active_peak = 2;
        let b = WorkerCounters {
            rx_packets: 5,
            rx_bytes: 500,
            tx_packets: 5,
            tx_bytes: 500,
            ..Default::default()
        };
        vec![a, b]
    }

    #[test]
    fn eve_stats_event_is_suricatas_layout_with_ours_beside() {
        let mut w = sample();
        w[0].alerts = 4;
        let ports = PortCounters {
            packets: 16,
            drops: 1,
            errors: 0,
        };
        let line = eve_stats_line(&w, Some(&ports), 7, 1_259_098_029_534_255_000, true, true);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event_type"], "stats");
        assert_eq!(v["timestamp"], "2009-11-24T21:27:09.534255+0000");
        let s = &v["stats"];
        assert_eq!(s["uptime"], 7);
        assert_eq!(s["decoder"]["pkts"], 15);
        assert_eq!(s["decoder"]["bytes"], 1500);
        assert_eq!(s["decoder"]["avg_pkt_size"], 100);
        assert_eq!(s["decoder"]["invalid"], 1);
        assert_eq!(s["flow"]["total"], 3);
        assert_eq!(s["detect"]["alert"], 4);
        assert_eq!(s["ips"]["accepted"], 14);
        assert_eq!(s["ips"]["blocked"], 1);
        assert_eq!(s["ips"]["drop_reason"]["decode_error"], 1);
        assert_eq!(s["capture"]["kernel_packets"], 16);
        assert_eq!(s["capture"]["kernel_drops"], 1);
        assert_eq!(v["tollgate"]["stats"]["packets"]["rx"], 15);

        // Observing, from a capture file, Suricata's schema alone.
        let v: Value = serde_json::from_str(&eve_stats_line(&w, None, 7, 0, false, false)).unwrap();
        assert!(v["stats"].get("ips").is_none());
        assert!(v["stats"].get("capture").is_none());
        assert!(v.get("tollgate").is_none());
    }

    #[test]
    fn json_has_the_contract_shape() {
        let cap = CaptureCounters {
            files: 1,
            records: 15,
            bytes: 1500,
            truncated_files: 0,
        };
        let mut lat = vec![Latency::new(), Latency::new()];
        lat[0].record_burst(1000, 32);
        lat[1].record_burst(3000, 1);
        let mut v = stats_json(&sample(), &lat, 2.0);
        v.insert("capture".into(), cap.to_json());
        let v = Value::Object(v);
        assert_eq!(v["packets"]["rx"], 15);
        assert_eq!(v["packets"]["tx"], 14);
        assert_eq!(v["packets"]["dropped"]["malformed"], 1);
        assert_eq!(v["bytes"]["rx"], 1500);
        assert_eq!(v["bytes"]["tx"], 1400);
        for k in ["created", "ended", "evicted", "timed_out", "active_peak"] {
            assert!(v["flows"][k].is_u64(), "flows.{k}");
        }
        assert_eq!(v["flows"]["active_peak"], 2);
        assert_eq!(v["decode_errors"]["tcp.truncated"], 1);
        assert_eq!(v["throughput"]["seconds"], 2.0);
        assert_eq!(v["throughput"]["pps"], 7.5);
        assert_eq!(v["throughput"]["bps"], 6000.0);
        assert_eq!(v["workers"].as_array().unwrap().len(), 2);
        assert_eq!(v["workers"][1]["packets"]["rx"], 5);
        assert_eq!(v["workers"][1]["worker"], 1);
        assert_eq!(v["capture"]["records"], 15);
        assert_eq!(v["stream"]["overlaps"]["different"], 0);
        assert!(v["stream"]["state"]["bytes_peak"].is_u64());
        assert_eq!(v["packets"]["dropped"]["stream_overlap"], 0);
        // 32 packets waited ~1000 ns, 1 waited ~3000 ns.
        let l = &v["latency_ns"];
        assert!((999..=1001).contains(&l["p50"].as_u64().unwrap()), "{l}");
        assert!((2997..=3003).contains(&l["max"].as_u64().unwrap()), "{l}");
        assert!(l["p99"].as_u64().unwrap() >= l["p50"].as_u64().unwrap());
        assert_eq!(v["burst_latency_ns"]["max"], l["max"]);
        assert_eq!(v["workers"][1]["latency_ns"]["p50"], l["max"]);
    }

    #[test]
    fn summary_lists_each_worker() {
        let s = summary_table("Tollgate replay: 1 file(s)", &sample(), 1.0);
        assert!(s.starts_with("Tollgate replay: 1 file(s), 2 worker(s)"));
        assert!(s.contains("worker 1"));
        let rx = s.lines().find(|l| l.starts_with("packets rx")).unwrap();
        let cols: Vec<&str> = rx.split_whitespace().collect();
        assert_eq!(&cols[2..], ["15", "10", "5"]);
        assert!(s.contains("tcp.truncated"));
    }

    #[test]
    fn si_suffixes() {
        assert_eq!(si(999.0), "999");
        assert_eq!(si(1500.0), "1.50k");
        assert_eq!(si(2.5e9), "2.50G");
    }
}
