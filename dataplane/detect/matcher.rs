//! Rule matching for one worker: the shared engine with the worker's own
//! scratch and inspection state, packet and stream matching, and turning
//! confirmed candidates into actions and alerts in Suricata's order.

use super::app::TxViews;
use super::content::Inspection;
use super::stream::{Pending, StreamScanner};
use super::threshold::{Seen, ThresholdTable};
use super::{Confirm, Engine, PacketView, TagSpec};
use crate::applayer::blocks::Blocks;
use crate::applayer::http::detect::TxBuffers;
use crate::applayer::Point;
use crate::flow::bits::FlowBits;
use crate::io::Mode;
use crate::reassembly::Delivery;
use crate::rules::Action;
use hyperscan::prelude::{Matching, Scratch};
use std::sync::Arc;
/// Keys a worker's threshold table counts at once (about 1 MB); past
/// them, expired windows make room, else the match alerts and is counted.
pub const THRESHOLD_KEYS: usize = 16_384;

/// A stream hit that does not confirm is retried on the next bytes only
/// if it ended this close to the end of what has arrived.
pub const PENDING_TAIL: u64 = 1024;

/// The shared rule engine and this worker's own state for matching it.
pub struct Matcher {
    pub engine: Arc<Engine>,
    pub scratch: Option<Scratch>,
    /// This worker's copies of the rules' pcre expressions, its step
    /// budget and what ran into limits.
    pub inspection: Inspection,
    /// Match counts for rules with a threshold or detection_filter.
    pub thresholds: ThresholdTable,
    /// Hyperscan stream state of every reassembled direction.
    pub scanner: Option<StreamScanner>,
    /// One packet's (or one delivery's) matching rules, every one of them
    /// (sized to the rule count at start: pushing never allocates).
    pub cands: Vec<u32>,
    /// Those that alert, before the log cap.
    pub hits: Vec<u32>,
    /// Stream hits to confirm: the rule and where its fast pattern ended.
    pub tries: Vec<(u32, u64)>,
    /// `seen[rule] == epoch`: the rule is in `tries` already.
    pub seen: Vec<u32>,
    pub epoch: u32,
    /// Alerts past `packet-alert-max` on one packet: evaluated and acted
    /// on, not logged.
    pub alerts_discarded: u64,
    /// Alerts logged so far for the packet being inspected, over all its
    /// `decide`s (packet rules, stream deliveries, each transaction
    /// point): Suricata's packet alert queue is one per packet. The
    /// worker zeroes it per packet (`start_packet`).
    pub packet_alerts: usize,
    /// A rule with `tag:session` matched: the flow's next packets are to
    /// be tagged (taken by the packet's inspection).
    pub tag_request: Option<TagSpec>,
    /// A rule with `bypass` matched: the caller takes the flow out of
    /// inspection.
    pub bypass_request: bool,
    /// A pass rule matched on a transaction: the rest of the flow passes
    /// (Suricata's flow scope for app-layer pass rules); the caller takes
    /// it, and the packet's own rules are not matched either.
    pub pass_flow_request: bool,
    /// The last `decide` had a pass rule match.
    pub passed: bool,
    /// Room for buffer transforms.
    pub room: super::transform::Room,
    /// Packet rules whose fast pattern the stream scans of this packet's
    /// bytes found (`groups::PACKET_HIT`), each once, and those scans:
    /// how many and how many new bytes. When they were one scan of
    /// exactly the packet's payload (`packet_hits_whole`), the packet's
    /// own scan is not needed.
    pub packet_hits: Vec<u32>,
    pub stream_scans: u32,
    pub stream_scanned: usize,
    /// Set by the worker: this packet's bytes went to the stream whole, in
    /// order, in `stream_scans` == 1 scan of `stream_scanned` bytes.
    pub packet_hits_whole: bool,
}

impl Matcher {
    /// A worker's matcher for `engine`, with stream state for `sessions`
    /// reassembled directions when some rule matches the stream
    /// (everything allocated here, once).
    pub fn new(engine: Arc<Engine>, sessions: Option<usize>) -> Result<Self, String> {
        let keys = if engine.has_thresholds() {
            THRESHOLD_KEYS
        } else {
            0
        };
        let scanner = match sessions {
            Some(n) => StreamScanner::new(&engine, n)?,
            None => None,
        };
        let n = engine.rules.len();
        Ok(Matcher {
            scratch: engine.scratch()?,
            inspection: engine.inspection(),
            thresholds: ThresholdTable::new(keys),
            scanner,
            cands: Vec::with_capacity(n),
            hits: Vec::with_capacity(n),
            tries: Vec::with_capacity(n),
            seen: vec![0; n],
            epoch: 0,
            alerts_discarded: 0,
            packet_alerts: 0,
            tag_request: None,
            bypass_request: false,
            pass_flow_request: false,
            passed: false,
            room: Default::default(),
            packet_hits: Vec::with_capacity(n),
            stream_scans: 0,
            stream_scanned: 0,
            packet_hits_whole: false,
            engine,
        })
    }

    /// A new packet (or a flow's end): its own `packet-alert-max`.
    pub fn start_packet(&mut self) {
        self.packet_alerts = 0;
        self.packet_hits.clear();
        self.stream_scans = 0;
        self.stream_scanned = 0;
        self.packet_hits_whole = false;
    }

    /// Whether the packet's stream scan found its packet rules' hits: one
    /// scan, in order, of exactly `payload_len` bytes.
    pub fn take_packet_hits(&mut self, in_order: bool, payload_len: usize) {
        self.packet_hits_whole =
            in_order && self.stream_scans == 1 && self.stream_scanned == payload_len;
    }

    /// Starts a new set of stream hits (`seen` marks reset in O(1)).
    pub fn next_epoch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.seen.fill(0);
            self.epoch = 1;
        }
    }

    /// Adds a stream hit to `tries` unless its rule is there already.
    pub fn try_hit(&mut self, rule: u32, end: u64) {
        if let Some(s) = self.seen.get_mut(rule as usize) {
            if *s != self.epoch {
                *s = self.epoch;
                self.tries.push((rule, end));
            }
        }
    }
}

impl Drop for Matcher {
    fn drop(&mut self) {
        if let (Some(sc), Some(s)) = (self.scanner.take(), self.scratch.as_ref()) {
            sc.close(s);
        }
    }
}

/// Matches one packet of flow `flow_id`, stamped `ts`, and reports each
/// alert to `alert(rule, blocked)`. Stream rules are tried on the packet
/// only when `with_stream_rules` (its direction is not reassembled).
/// Returns whether the packet is blocked, and how many bit sets found the
/// flow full.
pub fn match_rules(
    rules: &mut Matcher,
    view: &PacketView<'_>,
    mode: Mode,
    bits: &mut FlowBits,
    with_stream_rules: bool,
    ids: (u64, u64),
    alert: impl FnMut(Hit),
) -> (bool, u64) {
    let Matcher {
        engine,
        scratch,
        inspection,
        cands,
        packet_hits,
        packet_hits_whole,
        ..
    } = rules;
    cands.clear();
    // The stream scan of this packet's bytes found its packet rules' fast
    // patterns already.
    let found = (!with_stream_rules && *packet_hits_whole).then_some(&packet_hits[..]);
    engine.match_packet(
        scratch.as_ref(),
        inspection,
        view,
        with_stream_rules,
        found,
        |ri| cands.push(ri as u32),
    );
    decide(rules, view, mode, bits, ids, alert)
}

/// Matches a direction's newly reassembled bytes: the stream database
/// finds fast patterns ending in them (also across segment boundaries),
/// and each hit's rule is confirmed on the retained window. A hit that
/// does not confirm yet is tried again on the next bytes while it is in
/// the window; one whose rule reaches before the window is counted.
pub fn match_stream(
    rules: &mut Matcher,
    d: &Delivery<'_>,
    view: &PacketView<'_>,
    mode: Mode,
    bits: &mut FlowBits,
    ids: (u64, u64),
    alert: impl FnMut(Hit),
) -> (bool, u64) {
    if rules.scanner.is_none() || rules.scratch.is_none() {
        return (false, 0);
    }
    rules.next_epoch();
    rules.tries.clear();
    rules.cands.clear();
    let restart = d.gap || d.fresh;
    // Hits still waiting for more bytes (a restart forgets them all), then
    // the new ones, each rule once.
    if let Some(sc) = rules.scanner.as_mut() {
        sc.forget_pending_before(d.session, d.base);
    }
    if !restart {
        let mut pending = [(0u32, 0u64); super::stream::PENDING];
        let mut np = 0;
        if let Some(sc) = rules.scanner.as_ref() {
            for p in sc.pending(d.session) {
                pending[np] = (p.rule, p.end);
                np += 1;
            }
        }
        for &(rule, end) in &pending[..np] {
            rules.try_hit(rule, end);
        }
    }
    let at = d.base + d.new_from as u64;
    {
        let Matcher {
            engine,
            scanner,
            scratch,
            tries,
            seen,
            epoch,
            packet_hits,
            stream_scans,
            stream_scanned,
            ..
        } = rules;
        let (Some(sc), Some(scratch)) = (scanner.as_mut(), scratch.as_ref()) else {
            return (false, 0);
        };
        // A group without stream rules: nothing in this direction can hit.
        let Some(db) = engine.prefilter.stream_index(engine.group_of(view)) else {
            return (false, 0);
        };
        let new = &d.window[d.new_from..];
        let scanned = sc.scan(scratch, d.session, db, restart, new, at, |id, end| {
            let rule = id & !super::groups::PACKET_HIT;
            if let Some(s) = seen.get_mut(rule as usize) {
                if *s != *epoch {
                    *s = *epoch;
                    if id & super::groups::PACKET_HIT != 0 {
                        packet_hits.push(rule);
                    } else {
                        tries.push((rule, end));
                    }
                }
            }
        });
        if scanned {
            *stream_scans += 1;
            *stream_scanned += new.len();
        }
    }
    let Matcher {
        engine,
        inspection,
        scanner,
        tries,
        cands,
        ..
    } = rules;
    let Some(sc) = scanner.as_mut() else {
        return (false, 0);
    };
    for &(rule, end) in tries.iter() {
        let Some(r) = engine.rules.get(rule as usize) else {
            continue;
        };
        match r.holds_stream(view, inspection, d.base) {
            Confirm::Yes => {
                sc.drop_pending(d.session, rule);
                cands.push(rule);
            }
            Confirm::No => {
                // Only a hit near the end of what has arrived can be waiting
                // for bytes still to come (a pcre or content after it).
                let arrived = d.base + d.window.len() as u64;
                if arrived - end.min(arrived) < PENDING_TAIL {
                    sc.add_pending(d.session, Pending { rule, end });
                } else {
                    sc.drop_pending(d.session, rule);
                }
            }
            Confirm::OutsideWindow => {
                sc.counters.unconfirmable += 1;
                sc.drop_pending(d.session, rule);
            }
        }
    }
    decide(rules, view, mode, bits, ids, alert)
}

/// Matches the transaction in `bufs` at `point`: each buffer whole there
/// is scanned once with the fast patterns of the rules evaluated at this
/// point, and each hit's rule (and every rule without a fast pattern) is
/// confirmed with all its buffers on this transaction.
#[allow(clippy::too_many_arguments)]
pub fn match_tx(
    rules: &mut Matcher,
    point: Point,
    bufs: &mut TxBuffers,
    blocks: &Blocks,
    views: &TxViews<'_>,
    mode: Mode,
    bits: &mut FlowBits,
    ids: (u64, u64),
    alert: impl FnMut(Hit),
) -> (bool, u64) {
    rules.cands.clear();
    let Matcher {
        engine,
        scratch,
        inspection,
        cands,
        tries,
        room,
        ..
    } = rules;
    // Which sides of $HOME_NET the client and the server are on, once: a
    // rule whose address sides cannot hold is passed over on two bits.
    let (client, server) = engine
        .prefilter
        .groups
        .home
        .sides_of(views.to_server.src, views.to_server.dst);
    let confirm = |i: u32,
                   inspection: &mut Inspection,
                   room: &mut super::transform::Room,
                   bufs: &mut TxBuffers| {
        engine.rules[i as usize].holds_tx(
            views,
            point,
            inspection,
            room,
            bufs,
            blocks,
            &engine.datasets,
            (client, server),
        )
    };
    for &i in &engine.tx_always[point as usize] {
        if confirm(i, inspection, room, bufs) {
            cands.push(i);
        }
    }
    if let Some(s) = scratch.as_ref() {
        for t in engine.tx_dbs.iter().filter(|t| t.point == point) {
            tries.clear();
            let mut scan = |data: &[u8]| {
                let _ = t.db.scan(data, s, |id, _, _, _| {
                    tries.push((id, 0));
                    Matching::Continue
                });
            };
            if !t.transforms.is_empty() && t.buffer.kind.multi() {
                // Each instance transformed on its own (`dotprefix` puts a
                // dot before each query); a rule hit in several is one.
                bufs.each_instance(blocks, t.buffer, |b| {
                    scan(room.apply(&t.transforms, b));
                    true
                });
                tries.sort_unstable();
                tries.dedup();
            } else {
                let Some(buf) = bufs.get(blocks, t.buffer) else {
                    continue;
                };
                if t.transforms.is_empty() {
                    scan(buf);
                } else {
                    scan(room.apply(&t.transforms, buf));
                }
            }
            for &(i, _) in tries.iter() {
                if confirm(i, inspection, room, bufs) {
                    cands.push(i);
                }
            }
        }
    }
    let out = decide(rules, views.for_rule(None, point), mode, bits, ids, alert);
    rules.pass_flow_request |= rules.passed;
    out
}

/// Turns confirmed candidates (`rules.cands`) into actions and alerts, as
/// Suricata orders them: rules run in flowbit order (those that set bits
/// before those that test them) against the flow's `bits`, which they
/// update; a match its threshold holds back neither alerts nor acts,
/// though its flowbits are set; a matching pass rule silences the packet;
/// a drop or reject rule blocks it inline. Every candidate is evaluated;
/// only the alerts logged are capped (`packet-alert-max`), keeping drops
/// first, then by priority.
pub fn decide(
    rules: &mut Matcher,
    view: &PacketView<'_>,
    mode: Mode,
    bits: &mut FlowBits,
    (flow_id, ts): (u64, u64),
    mut alert: impl FnMut(Hit),
) -> (bool, u64) {
    let Matcher {
        engine,
        thresholds,
        cands,
        hits,
        alerts_discarded,
        packet_alerts,
        tag_request,
        bypass_request,
        passed,
        ..
    } = rules;
    *passed = false;
    cands.sort_unstable_by_key(|&ri| (engine.rules[ri as usize].bits_order, ri));
    hits.clear();
    let (mut pass, mut drop, mut lost) = (false, false, 0);
    for &ri in cands.iter() {
        let r = &engine.rules[ri as usize];
        if !r.bits_hold(bits)
            || !r
                .xbits
                .iter()
                .all(|x| engine.xbits.holds(x, view.src, view.dst, ts))
        {
            continue;
        }
        lost += r.apply_bits(bits);
        for x in r.xbits.iter().filter(|x| !x.reads()) {
            lost += u64::from(!engine.xbits.apply(x, view.src, view.dst, ts));
        }
        if let Some(t) = &r.threshold {
            let seen = Seen {
                rule: ri,
                src: view.src,
                dst: view.dst,
                flow_id,
                ts_ns: ts,
            };
            if !thresholds.allow(t, &seen) {
                continue;
            }
        }
        if r.tag.is_some() {
            *tag_request = r.tag;
        }
        *bypass_request |= r.bypass;
        match r.action {
            Action::Pass => pass = true,
            Action::Drop | Action::Reject => drop = true,
            Action::Alert => {}
        }
        // A pass rule alerts only when it says `alert`.
        if !r.noalert && (r.action != Action::Pass || r.pass_alerts) {
            hits.push(ri);
        }
    }
    if pass {
        *passed = true;
        // What passes is silent, but for pass rules that say `alert`.
        hits.retain(|&ri| engine.rules[ri as usize].action == Action::Pass);
        drop = false;
    }
    let blocked = drop && mode == Mode::Ips;
    // What this packet's earlier decides logged counts against its cap.
    let max = engine
        .config
        .packet_alert_max
        .saturating_sub(*packet_alerts);
    if hits.len() > max {
        // Keep what matters most: drops and rejects, then by priority.
        hits.sort_unstable_by_key(|&ri| {
            let r = &engine.rules[ri as usize];
            let acts = matches!(r.action, Action::Drop | Action::Reject);
            (!acts, r.priority, ri)
        });
        *alerts_discarded += (hits.len() - max) as u64;
        hits.truncate(max);
    }
    *packet_alerts += hits.len();
    // The flow's traffic tags as they stand after every rule's bits.
    let traffic = engine.traffic_mask(bits);
    for &ri in hits.iter() {
        alert(Hit {
            rule: ri,
            blocked,
            class: engine.hit_class(ri),
            traffic,
        });
    }
    (blocked, lost)
}

/// One alert as matching hands it out: the rule, whether the packet is
/// blocked, the signature class it counts toward, and the flow's traffic
/// tags (`traffic/id/…`, `traffic/label/…` flowbits) then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub rule: u32,
    pub blocked: bool,
    pub class: usize,
    pub traffic: u16,
}
