//! Labelled attack behaviours for `tollgate gen --attacks`, and benign
//! look-alikes that keep any one number from giving them away. Each
//! behaviour's parameters overlap the benign ranges: an exfiltration's
//! rate and size are an upload's, a beacon's period and jitter a polling
//! client's, a stolen model's size a model pull's. They draw from an RNG
//! of their own, after the benign flows are made, so a capture without
//! `--attacks` is byte for byte what it was, and the benign flows of one
//! with attacks are those of the same seed without.

use super::{
    client_hello, ip, safetensors, server_hello, some_words, store_get, store_put, tls_app_data,
    words, Truth, MS, MSS,
};
use crate::craft::{Capture, Route, Side, TcpConversation};
use crate::decode::tcp::{ACK_FLAG, RST, SYN};
use crate::sample::http_request;
use crate::sample::Rng;
use std::net::IpAddr;

/// The behaviours, by the label their flows carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// A dataset leaving slowly for a rare external destination.
    Exfiltration,
    /// Periodic check-ins with jitter to an external host.
    Beaconing,
    /// TCP SYN, TCP connect and UDP port scans: one flow per probe.
    Scan,
    /// Many short authenticated requests to the inference endpoint, most
    /// refused: credential stuffing and token brute force.
    CredentialStuffing,
    /// A large model download by a client that never pulls models.
    ModelTheft,
    /// Bulk uploads to the training store from an unusual source.
    DataPoisoning,
}

impl Attack {
    pub const ALL: [Attack; 6] = [
        Attack::Exfiltration,
        Attack::Beaconing,
        Attack::Scan,
        Attack::CredentialStuffing,
        Attack::ModelTheft,
        Attack::DataPoisoning,
    ];

    /// The label in the ground truth, and the name `--attacks` takes.
    pub fn name(self) -> &'static str {
        match self {
            Attack::Exfiltration => "exfiltration",
            Attack::Beaconing => "beaconing",
            Attack::Scan => "scan",
            Attack::CredentialStuffing => "credential_stuffing",
            Attack::ModelTheft => "model_theft",
            Attack::DataPoisoning => "data_poisoning",
        }
    }

    /// Instances per 1,000 benign flows in `--attacks all`.
    fn default_share(self) -> f64 {
        match self {
            Attack::Exfiltration => 0.004,
            Attack::Beaconing => 0.004,
            Attack::Scan => 0.002,
            Attack::CredentialStuffing => 0.003,
            Attack::ModelTheft => 0.004,
            Attack::DataPoisoning => 0.003,
        }
    }
}

/// How many instances of each behaviour, per benign flow.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackMix {
    pub shares: Vec<(Attack, f64)>,
}

impl AttackMix {
    /// `all`, or `NAME=SHARE,…` where SHARE is instances per benign flow
    /// (0.01: one instance per 100 benign flows; any share above 0 gives
    /// at least one).
    pub fn parse(spec: &str) -> Result<AttackMix, String> {
        if spec == "all" {
            return Ok(AttackMix {
                shares: Attack::ALL
                    .iter()
                    .map(|&a| (a, a.default_share()))
                    .collect(),
            });
        }
        let mut shares = Vec::new();
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (name, share) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected NAME=SHARE, such as scan=0.01"))?;
            let attack = Attack::ALL
                .iter()
                .copied()
                .find(|a| a.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = Attack::ALL.iter().map(|a| a.name()).collect();
                    format!(
                        "`{name}`: not a behaviour; expected one of {}",
                        names.join(", ")
                    )
                })?;
            let share: f64 = share
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && (0.0..=1.0).contains(s))
                .ok_or_else(|| format!("`{part}`: SHARE must be a number from 0 to 1"))?;
            shares.push((attack, share));
        }
        if shares.is_empty() {
            return Err("expected `all` or NAME=SHARE,…".into());
        }
        Ok(AttackMix { shares })
    }
}

/// What the attacks share with the benign flows.
pub(super) struct Setting {
    pub gateway: IpAddr,
    pub store: IpAddr,
    pub epoch_ns: u64,
    pub duration_ns: u64,
    pub benign_flows: usize,
}

/// One flow's tuple and label, for its truth line.
struct Made {
    kind: &'static str,
    client: String,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    proto: &'static str,
}

struct Builder<'a> {
    rng: Rng,
    cap: &'a mut Capture,
    truth: &'a mut Vec<Truth>,
    next_flow: usize,
    instance: u32,
    /// Where `port` is in the ephemeral range (0: not started).
    next_port: u16,
    /// The VLAN of the client the current instance uses: half the tenants
    /// are on VLANs, as the benign clients are, so a tag tells nothing.
    vlan: Option<u16>,
}

impl Builder<'_> {
    /// Records the packets added since `before` as one flow of `m`.
    fn flow(&mut self, before: usize, m: Made, label: Option<Attack>) {
        let new = &self.cap.packets[before..];
        if new.is_empty() {
            return;
        }
        self.truth.push(Truth {
            flow: self.next_flow,
            start: crate::events::format_timestamp(new.iter().map(|(t, _)| *t).min().unwrap_or(0)),
            kind: m.kind,
            label: label.map_or("benign", |a| a.name()),
            src_ip: m.client,
            src_port: m.sport,
            dest_ip: m.dst.to_string(),
            dest_port: m.dport,
            proto: m.proto,
            vlan: self.vlan,
            packets: new.len() as u64,
            bytes: new.iter().map(|(_, f)| f.len() as u64).sum(),
            attack: label.map(|_| self.instance),
        });
        self.next_flow += 1;
    }

    /// A client port: ephemeral ports go up from a random start, a few at
    /// a time, so that no two flows of the capture's attacks and
    /// look-alikes share one (a host's hundred connections would, drawn
    /// at random).
    fn port(&mut self) -> u16 {
        if self.next_port == 0 {
            self.next_port = self.rng.below(28000) as u16;
        }
        self.next_port = (self.next_port + 1 + self.rng.below(3) as u16) % 28000;
        32768 + self.next_port
    }

    /// A tenant host, as the benign clients are (VLAN and all).
    fn tenant_host(&mut self) -> String {
        self.host_in(64, 8, 100)
    }

    /// A host of a subnet no benign client is in, one of 32 (on a VLAN as
    /// often).
    fn unusual_host(&mut self) -> String {
        self.host_in(96, 32, 200)
    }

    /// A host in one of the `nets` /16s from 10.`first`.0.0; the odd ones
    /// are on VLAN `vlan_base` + their number.
    fn host_in(&mut self, first: u64, nets: u64, vlan_base: u16) -> String {
        let net = self.rng.below(nets);
        self.vlan = (net % 2 == 1).then_some(vlan_base + net as u16);
        format!(
            "10.{}.{}.{}",
            first + net,
            self.rng.below(256),
            1 + self.rng.below(254)
        )
    }

    /// The route from the current client to `dst`, tagged as it is.
    fn route(&self, client: &str, dst: IpAddr) -> Route {
        let r = Route::new(ip(client), dst);
        match self.vlan {
            Some(v) => r.vlan(v),
            None => r,
        }
    }

    /// A rarely seen external destination.
    fn rare_external(&mut self) -> IpAddr {
        ip(&format!("198.51.100.{}", 1 + self.rng.below(254)))
    }
}

/// Adds `mix`'s behaviours (and benign look-alikes) to `cap` and `truth`.
pub(super) fn add(
    seed: u64,
    mix: &AttackMix,
    s: &Setting,
    cap: &mut Capture,
    truth: &mut Vec<Truth>,
) {
    let mut b = Builder {
        rng: Rng((seed ^ 0xa77a_c4ed_5eed_0001).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        next_flow: truth.len(),
        cap,
        truth,
        instance: 0,
        next_port: 0,
        vlan: None,
    };
    // Instances of a behaviour: its share of the benign flows, at least
    // one when the share is above 0.
    let instances = |share: f64| {
        if share > 0.0 {
            ((share * s.benign_flows as f64).round() as usize).max(1)
        } else {
            0
        }
    };
    for &(attack, share) in &mix.shares {
        for _ in 0..instances(share) {
            b.instance += 1;
            let start = s.epoch_ns + b.rng.below(s.duration_ns.max(1) / 2);
            match attack {
                Attack::Exfiltration => exfiltration(&mut b, start),
                Attack::Beaconing => beacon(&mut b, s, start, Some(attack)),
                Attack::Scan => scan(&mut b, s, start),
                Attack::CredentialStuffing => stuffing(&mut b, s, start),
                Attack::ModelTheft => theft(&mut b, s, start),
                Attack::DataPoisoning => poisoning(&mut b, s, start),
            }
        }
    }
    // Benign look-alikes, as many as there are beacons: pollers with the
    // same periods and jitter, to the inference gateway.
    let beacons = mix
        .shares
        .iter()
        .find(|(a, _)| *a == Attack::Beaconing)
        .map_or(0, |&(_, share)| instances(share));
    for _ in 0..beacons.max(1) {
        let start = s.epoch_ns + b.rng.below(s.duration_ns.max(1) / 2);
        beacon(&mut b, s, start, None);
    }
    // And, in proportion to the benign flows, so that no one number of an
    // attack's stays under a 1 % false-positive budget: agents' bursts of
    // calls (credential stuffing's rhythm, answered), health monitors'
    // probes of several ports (a connect scan's fan-out, but completed and
    // closed), TLS backups (an exfiltration's size and rate, to a server
    // every tenant uses) and clients retrying a service that is down (a
    // closed-port probe, to one port).
    for (kind, share) in [(0, 0.003), (1, 0.001), (2, 0.015), (3, 0.005)] {
        for _ in 0..instances(share) {
            let start = s.epoch_ns + b.rng.below(s.duration_ns.max(1) / 2);
            match kind {
                0 => agent(&mut b, s, start),
                1 => monitor(&mut b, s, start),
                2 => backup(&mut b, start),
                _ => refused(&mut b, s, start),
            }
        }
    }
}

/// A benign client whose service is down: 3 to 10 connection attempts to
/// one port, each refused (SYN, RST/ACK), backing off 0.5 s, 1 s, 2 s… as
/// a scan's closed-port probe looks, but to one port.
fn refused(b: &mut Builder<'_>, s: &Setting, start: u64) {
    let client = b.tenant_host();
    let (dst, dport) = if b.rng.below(2) == 0 {
        (s.gateway, 8000)
    } else {
        (s.store, 9000)
    };
    let mut t = start;
    let mut wait = 500 * MS;
    for _ in 0..3 + b.rng.below(8) {
        let sport = b.port();
        let before = b.cap.packets.len();
        let mut c = TcpConversation::new(b.route(&client, dst), sport, dport, t).gap(150_000);
        let cs = c.client_seq();
        c.raw(Side::Client, cs, 0, SYN, &[]);
        c.raw(Side::Server, 0, cs.wrapping_add(1), RST | ACK_FLAG, &[]);
        b.cap.extend(c.into_packets());
        let m = Made {
            kind: "connection_refused",
            client: client.clone(),
            sport,
            dst,
            dport,
            proto: "TCP",
        };
        b.flow(before, m, None);
        t += wait + b.rng.below(100) * MS;
        wait = (wait * 2).min(8_000 * MS);
    }
}

/// A connection from `client` to the inference gateway at `t`, on the next
/// client port: the port, where its packets will start, the conversation.
fn gateway_connection(
    b: &mut Builder<'_>,
    s: &Setting,
    client: &str,
    t: u64,
) -> (u16, usize, TcpConversation) {
    let sport = b.port();
    let before = b.cap.packets.len();
    let c = TcpConversation::new(b.route(client, s.gateway), sport, 8000, t)
        .gap(100_000 + b.rng.below(300_000));
    (sport, before, c)
}

/// Records the packets since `before` as one flow to the gateway.
fn gateway_flow(
    b: &mut Builder<'_>,
    s: &Setting,
    before: usize,
    kind: &'static str,
    client: &str,
    sport: u16,
    label: Option<Attack>,
) {
    let m = Made {
        kind,
        client: client.to_string(),
        sport,
        dst: s.gateway,
        dport: 8000,
        proto: "TCP",
    };
    b.flow(before, m, label);
}

/// A chat completion request with bearer token `sk-TOKEN` and a user
/// message of `content`.
fn chat_call(token: &str, content: &str) -> Vec<u8> {
    let body = format!(
        "{{\"model\":\"llama-3.1-70b-instruct\",\"messages\":[{{\"role\":\"user\",\"content\":\"{content}\"}}]}}"
    );
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: inference.tenant.local\r\n\
         User-Agent: python-requests/2.31.0\r\nAuthorization: Bearer sk-{token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A bare JSON answer with `status` (no Date or Server header).
fn json_answer(status: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A benign agent: 10 to 60 chat calls, 50 to 500 ms apart, each its own
/// connection, with one token; answered, except the 401s of a token that
/// has expired (1 to 25 % of calls, by agent).
fn agent(b: &mut Builder<'_>, s: &Setting, start: u64) {
    let client = b.tenant_host();
    let calls = 10 + b.rng.below(50);
    // Percent of calls refused: most agents' tokens are fresh, some are
    // about to expire, a few run with a stale one.
    let stale = [1, 1, 3, 10, 25][b.rng.below(5) as usize];
    let mut t = start;
    for _ in 0..calls {
        let (sport, before, mut c) = gateway_connection(b, s, &client, t);
        let req = chat_call("agent-token", &some_words(&mut b.rng, 3, 40));
        let expired = b.rng.below(100) < stale;
        let resp = if expired {
            json_answer(
                "401 Unauthorized",
                b"{\"error\":{\"message\":\"Token expired\",\"type\":\"invalid_request_error\",\"code\":\"token_expired\"}}",
            )
        } else {
            let reply = format!(
                "{{\"id\":\"resp\",\"object\":\"chat.completion\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{}\"}}}}]}}",
                some_words(&mut b.rng, 5, 300)
            );
            crate::sample::http_response("application/json", reply.as_bytes())
        };
        c.handshake()
            .send(Side::Client, &req, MSS)
            .idle(20 * MS + b.rng.below(400) * MS)
            .send(Side::Server, &resp, MSS)
            .close(Side::Client);
        b.cap.extend(c.into_packets());
        gateway_flow(b, s, before, "agent_client", &client, sport, None);
        t += 50 * MS + b.rng.below(450) * MS;
    }
}

/// A benign health monitor: every 5 to 15 s, an HTTP health check of 3
/// to 12 ports of one service host, each its own connection, closed
/// with FIN.
fn monitor(b: &mut Builder<'_>, s: &Setting, start: u64) {
    let client = b.tenant_host();
    let target = ip(&format!("10.20.0.{}", 11 + b.rng.below(40)));
    let ports: Vec<u16> = (0..3 + b.rng.below(10))
        .map(|_| {
            [
                22, 80, 443, 8000, 8080, 8443, 9000, 9090, 9100, 6379, 5432, 2379,
            ][b.rng.below(12) as usize]
        })
        .collect();
    let period = (5_000 + b.rng.below(10_000)) * MS;
    let end = s.epoch_ns + s.duration_ns;
    let mut t = start;
    while t < end {
        for &dport in &ports {
            let sport = b.port();
            let before = b.cap.packets.len();
            let mut c = TcpConversation::new(b.route(&client, target), sport, dport, t)
                .gap(100_000 + b.rng.below(400_000));
            let req = http_request("GET", "/health", "service.tenant.local", "text/plain", b"");
            c.handshake()
                .send(Side::Client, &req, MSS)
                .send(
                    Side::Server,
                    &crate::sample::http_response("application/json", b"{\"status\":\"ok\"}"),
                    MSS,
                )
                .close(Side::Client);
            b.cap.extend(c.into_packets());
            let m = Made {
                kind: "health_monitor",
                client: client.clone(),
                sport,
                dst: target,
                dport,
                proto: "TCP",
            };
            b.flow(before, m, None);
            t += 2 * MS + b.rng.below(20) * MS;
        }
        t += period;
    }
}

/// A benign TLS backup of 1 to 4 MB to the backup service every tenant
/// uses, at an exfiltration's pace: the two differ in where they go.
fn backup(b: &mut Builder<'_>, start: u64) {
    let client = b.tenant_host();
    let dst = ip("203.0.113.60");
    let sni = "backup.tenant-cloud.example";
    let m = slow_tls_upload(b, "backup_tls", client, dst, sni, start);
    b.flow(m.0, m.1, None);
}

/// A dataset leaving over TLS for a rare destination, at an upload's
/// rate, slowly.
fn exfiltration(b: &mut Builder<'_>, start: u64) {
    let client = b.tenant_host();
    let dst = b.rare_external();
    let sni = [
        "cdn-sync.example.net",
        "backup.example.org",
        "files.example.com",
    ][b.rng.below(3) as usize];
    let m = slow_tls_upload(b, "exfiltration_tls", client, dst, sni, start);
    b.flow(m.0, m.1, Some(Attack::Exfiltration));
}

/// A TLS session from `client` to `dst`:443 that sends 1 to 4 MB (a
/// dataset upload's size) in records of 16 to 64 KiB, 50 to 450 ms apart:
/// tens of seconds. Returns where its packets start and its truth line.
fn slow_tls_upload(
    b: &mut Builder<'_>,
    kind: &'static str,
    client: String,
    dst: IpAddr,
    sni: &str,
    start: u64,
) -> (usize, Made) {
    let sport = b.port();
    let before = b.cap.packets.len();
    let mut c = TcpConversation::new(b.route(&client, dst), sport, 443, start)
        .gap(2 * MS + b.rng.below(20) * MS)
        .window_scale(7);
    c.handshake()
        .send(Side::Client, &client_hello(&mut b.rng, sni), MSS);
    let mut hello = server_hello(&mut b.rng);
    hello.extend(tls_app_data(&mut b.rng, 1500, 2000));
    c.send(Side::Server, &hello, MSS);
    let total = 1_000_000 + b.rng.below(3_000_000) as usize;
    let mut sent = 0;
    while sent < total {
        let chunk = tls_app_data(&mut b.rng, 16 << 10, 48 << 10);
        sent += chunk.len();
        c.send(Side::Client, &chunk, MSS);
        c.idle(50 * MS + b.rng.below(400) * MS);
    }
    c.close(Side::Client);
    b.cap.extend(c.into_packets());
    let m = Made {
        kind,
        client,
        sport,
        dst,
        dport: 443,
        proto: "TCP",
    };
    (before, m)
}

/// Check-ins every `period` (1 to 6 s) with up to 30 % jitter for the
/// rest of the capture: a short TLS exchange each. `label` None is the
/// benign poller: the same rhythm, to the inference gateway's models list.
fn beacon(b: &mut Builder<'_>, s: &Setting, start: u64, label: Option<Attack>) {
    let client = b.tenant_host();
    let (dst, dport) = match label {
        Some(_) => (b.rare_external(), 443),
        None => (s.gateway, 8000),
    };
    let period = (1_000 + b.rng.below(5_000)) * MS;
    let jitter = b.rng.below(30);
    let end = s.epoch_ns + s.duration_ns;
    let mut t = start;
    while t < end {
        let sport = b.port();
        let before = b.cap.packets.len();
        let mut c = TcpConversation::new(b.route(&client, dst), sport, dport, t)
            .gap(200_000 + b.rng.below(2_000_000));
        c.handshake();
        match label {
            Some(_) => {
                c.send(
                    Side::Client,
                    &client_hello(&mut b.rng, "updates.example.org"),
                    MSS,
                )
                .send(Side::Server, &server_hello(&mut b.rng), MSS)
                .send(Side::Server, &tls_app_data(&mut b.rng, 200, 1800), MSS)
                .send(Side::Client, &tls_app_data(&mut b.rng, 200, 400), MSS)
                .send(Side::Server, &tls_app_data(&mut b.rng, 100, 600), MSS);
            }
            None => {
                let req = http_request(
                    "GET",
                    "/v1/models",
                    "inference.tenant.local",
                    "application/json",
                    b"",
                );
                let body = b"{\"object\":\"list\",\"data\":[{\"id\":\"llama-3.1-70b-instruct\"}]}";
                c.send(Side::Client, &req, MSS).send(
                    Side::Server,
                    &crate::sample::http_response("application/json", body),
                    MSS,
                );
            }
        }
        c.close(Side::Client);
        b.cap.extend(c.into_packets());
        let m = Made {
            kind: if label.is_some() {
                "beacon_tls"
            } else {
                "polling_client"
            },
            client: client.clone(),
            sport,
            dst,
            dport,
            proto: "TCP",
        };
        b.flow(before, m, label);
        let j = period as i64 * (b.rng.below(2 * jitter + 1) as i64 - jitter as i64) / 100;
        t = (t as i64 + period as i64 + j) as u64;
    }
}

/// Probes of 20 to 200 ports of one host, 1 to 50 ms apart: a SYN scan
/// (SYN, then RST/ACK from a closed port or SYN/ACK and the scanner's
/// RST), a connect scan (the handshake completed, then RST) or a UDP scan
/// (an empty datagram, an ICMP port unreachable back).
fn scan(b: &mut Builder<'_>, s: &Setting, start: u64) {
    let client = b.tenant_host();
    let target = if b.rng.below(2) == 0 {
        s.gateway
    } else {
        ip(&format!("10.20.0.{}", 11 + b.rng.below(40)))
    };
    // SYN, connect and UDP in turn, so that any three scans hold all three.
    b.rng.below(3);
    let style = u64::from(b.instance % 3);
    let ports = 20 + b.rng.below(180) as u16;
    let first = 1 + b.rng.below(1000) as u16;
    let sport0 = b.port();
    let mut t = start;
    for k in 0..ports {
        let dport = first + k;
        let open = dport == 8000 || b.rng.below(20) == 0;
        let sport = if style == 0 { sport0 } else { b.port() };
        let before = b.cap.packets.len();
        let r = b.route(&client, target);
        let (kind, proto) = match style {
            0 | 1 => {
                let mut c = TcpConversation::new(r, sport, dport, t).gap(100_000);
                let (cs, _) = (c.client_seq(), c.server_seq());
                c.raw(Side::Client, cs, 0, SYN, &[]);
                c.advance_seq(Side::Client, 1);
                if open {
                    let ss = c.server_seq();
                    c.raw(Side::Server, ss, cs.wrapping_add(1), SYN | ACK_FLAG, &[]);
                    c.advance_seq(Side::Server, 1);
                    if style == 1 {
                        let (cs, ss) = (c.client_seq(), c.server_seq());
                        c.raw(Side::Client, cs, ss, ACK_FLAG, &[]);
                    }
                    let (cs, ss) = (c.client_seq(), c.server_seq());
                    c.raw(Side::Client, cs, ss, RST | ACK_FLAG, &[]);
                } else {
                    c.raw(Side::Server, 0, cs.wrapping_add(1), RST | ACK_FLAG, &[]);
                }
                b.cap.extend(c.into_packets());
                (
                    if style == 0 {
                        "scan_syn"
                    } else {
                        "scan_connect"
                    },
                    "TCP",
                )
            }
            _ => {
                let probe = r.udp(sport, dport, &[]);
                b.cap.push(t, probe.clone());
                if !open {
                    // ICMP port unreachable quoting the probe's IP header
                    // and 8 bytes (the frame past its Ethernet header and
                    // VLAN tag).
                    let l3 = 14 + 4 * usize::from(b.vlan.is_some());
                    let quote = &probe[l3..probe.len().min(l3 + 28)];
                    b.cap
                        .push(t + 200_000, r.reversed().icmp(3, 3, [0; 4], quote));
                }
                ("scan_udp", "UDP")
            }
        };
        let m = Made {
            kind,
            client: client.clone(),
            sport,
            dst: target,
            dport,
            proto,
        };
        b.flow(before, m, Some(Attack::Scan));
        t += MS + b.rng.below(50) * MS;
    }
}

/// 20 to 150 attempts, 50 to 500 ms apart, each its own connection: a
/// chat request with another bearer token, answered 401 (a few 200).
fn stuffing(b: &mut Builder<'_>, s: &Setting, start: u64) {
    let client = b.tenant_host();
    let attempts = 20 + b.rng.below(130);
    let mut t = start;
    for _ in 0..attempts {
        let (sport, before, mut c) = gateway_connection(b, s, &client, t);
        let token: String = (0..40)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[b.rng.below(36) as usize]))
            .collect();
        let req = chat_call(&token, &words(&mut b.rng, 3));
        let resp = if b.rng.below(50) == 0 {
            json_answer(
                "200 OK",
                b"{\"id\":\"resp\",\"object\":\"chat.completion\",\"choices\":[]}",
            )
        } else {
            json_answer(
                "401 Unauthorized",
                b"{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}",
            )
        };
        c.handshake()
            .send(Side::Client, &req, MSS)
            .send(Side::Server, &resp, MSS)
            .close(Side::Client);
        b.cap.extend(c.into_packets());
        let label = Some(Attack::CredentialStuffing);
        gateway_flow(b, s, before, "credential_stuffing", &client, sport, label);
        t += 50 * MS + b.rng.below(450) * MS;
    }
}

/// A 1 to 4 MB model pull, as a benign pull is, by a host of a subnet that
/// never pulls models: only who pulls tells it apart.
fn theft(b: &mut Builder<'_>, s: &Setting, start: u64) {
    let client = b.unusual_host();
    let sport = b.port();
    let before = b.cap.packets.len();
    let mut c = TcpConversation::new(b.route(&client, s.store), sport, 9000, start)
        .gap(15_000)
        .window_scale(9);
    let size = 1_000_000 + b.rng.below(3_000_000) as usize;
    let model = safetensors(&mut b.rng, size);
    store_get(&mut c, "/models/base.safetensors", &model);
    b.cap.extend(c.into_packets());
    let m = Made {
        kind: "model_theft",
        client,
        sport,
        dst: s.store,
        dport: 9000,
        proto: "TCP",
    };
    b.flow(before, m, Some(Attack::ModelTheft));
}

/// 3 to 8 uploads of 0.5 to 4 MB to the training store, back to back,
/// from a host of a subnet that never uploads.
fn poisoning(b: &mut Builder<'_>, s: &Setting, start: u64) {
    let client = b.unusual_host();
    let mut t = start;
    for _ in 0..3 + b.rng.below(6) {
        let sport = b.port();
        let before = b.cap.packets.len();
        let mut c = TcpConversation::new(b.route(&client, s.store), sport, 9000, t)
            .gap(20_000)
            .window_scale(9);
        let target = 500_000 + b.rng.below(3_500_000) as usize;
        let mut body = Vec::with_capacity(target + 200);
        let mut n = 0;
        while body.len() < target {
            let line = format!(
                "{{\"id\":{n},\"prompt\":\"{}\",\"completion\":\"{}\"}}\n",
                words(&mut b.rng, 10),
                words(&mut b.rng, 12)
            );
            body.extend_from_slice(line.as_bytes());
            n += 1;
        }
        store_put(&mut c, "/datasets/train.jsonl", "application/jsonl", &body);
        let end = c.now();
        b.cap.extend(c.into_packets());
        let m = Made {
            kind: "data_poisoning",
            client: client.clone(),
            sport,
            dst: s.store,
            dport: 9000,
            proto: "TCP",
        };
        b.flow(before, m, Some(Attack::DataPoisoning));
        t = end + 100 * MS + b.rng.below(500) * MS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{addr_to_ip, decode};
    use crate::gen::{generate, generate_with, GenConfig};
    use std::collections::BTreeMap;

    /// One flow's packets as the wire has them: (time, from the client,
    /// tcp flags, payload).
    type Pkts = Vec<(u64, bool, u8, Vec<u8>)>;

    fn cfg() -> GenConfig {
        GenConfig {
            seed: 3,
            flows: 300,
            packets: None,
            duration_ns: 30_000_000_000,
        }
    }

    /// Each truth line's packets, found by its tuple in either direction
    /// (an ICMP error goes with the UDP probe it quotes).
    fn flows(cap: &Capture, truth: &[Truth]) -> Vec<Pkts> {
        let mut index: BTreeMap<(IpAddr, u16, IpAddr, u16), usize> = BTreeMap::new();
        for (i, t) in truth.iter().enumerate() {
            let (c, s) = (ip(&t.src_ip), ip(&t.dest_ip));
            index.insert((c, t.src_port, s, t.dest_port), i);
        }
        let mut out = vec![Vec::new(); truth.len()];
        for (ts, f) in cap.sorted() {
            let d = decode(&f).expect("decodes");
            let (src, dst) = (addr_to_ip(d.network, &d.src), addr_to_ip(d.network, &d.dst));
            let payload =
                f[d.payload_offset as usize..(d.payload_offset + d.payload_len) as usize].to_vec();
            let (key, up) = if d.proto == 1 {
                // Port unreachable: the quoted probe's ports, after its
                // 20-byte IP header (wherever the decoder starts the
                // payload, the quote starts with 0x45).
                let at = [0, 4, 8]
                    .into_iter()
                    .find(|&k| payload.get(k) == Some(&0x45))
                    .unwrap();
                let q = &payload[at..];
                let (sp, dp) = (
                    u16::from_be_bytes([q[20], q[21]]),
                    u16::from_be_bytes([q[22], q[23]]),
                );
                ((dst, sp, src, dp), false)
            } else if index.contains_key(&(src, d.src_port, dst, d.dst_port)) {
                ((src, d.src_port, dst, d.dst_port), true)
            } else {
                ((dst, d.dst_port, src, d.src_port), false)
            };
            if let Some(&i) = index.get(&key) {
                out[i].push((ts, up, d.tcp.flags, payload));
            }
        }
        out
    }

    #[test]
    fn mixes_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!(AttackMix::parse("all").unwrap().shares.len(), 6);
        let m = AttackMix::parse("scan=0.01,model_theft=0.002").unwrap();
        assert_eq!(
            m.shares,
            [(Attack::Scan, 0.01), (Attack::ModelTheft, 0.002)]
        );
        for (bad, want) in [
            ("scan", "NAME=SHARE"),
            ("ddos=0.1", "not a behaviour"),
            ("scan=2", "0 to 1"),
            ("", "expected"),
        ] {
            let e = AttackMix::parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn attacks_leave_the_benign_flows_as_they_were() {
        let (plain, plain_truth) = generate(&cfg());
        let mix = AttackMix::parse("all").unwrap();
        let (with, truth) = generate_with(&cfg(), Some(&mix));
        assert_eq!(&truth[..plain_truth.len()], &plain_truth[..]);
        assert!(truth[plain_truth.len()..]
            .iter()
            .all(|t| t.flow >= plain_truth.len()));
        // Every benign frame is there, unchanged, at its time.
        let mut a = plain.packets.clone();
        let mut b: Vec<_> = with.packets[..plain.packets.len()].to_vec();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert!(with.packets.len() > plain.packets.len());
        // Same seed, same bytes, attacks too.
        assert_eq!(generate_with(&cfg(), Some(&mix)).0.packets, with.packets);
        let total: u64 = truth.iter().map(|t| t.packets).sum();
        assert_eq!(
            total,
            with.packets.len() as u64,
            "every packet is some flow's"
        );
    }

    #[test]
    fn each_label_is_the_behaviour_it_names() {
        let mix = AttackMix::parse(
            "exfiltration=0.01,beaconing=0.01,scan=0.01,credential_stuffing=0.01,model_theft=0.01,data_poisoning=0.01",
        )
        .unwrap();
        let (cap, truth) = generate_with(&cfg(), Some(&mix));
        let pk = flows(&cap, &truth);
        let up = |p: &Pkts| p.iter().filter(|x| x.1).map(|x| x.3.len()).sum::<usize>();
        let down = |p: &Pkts| p.iter().filter(|x| !x.1).map(|x| x.3.len()).sum::<usize>();
        let unusual = |t: &Truth| {
            let second: u8 = t.src_ip.split('.').nth(1).unwrap().parse().unwrap();
            (96..128).contains(&second)
        };
        let mut instances: BTreeMap<(&str, u32), Vec<usize>> = BTreeMap::new();
        for (i, t) in truth.iter().enumerate() {
            assert_eq!(t.packets, pk[i].len() as u64, "{t:?}");
            if let Some(a) = t.attack {
                instances.entry((t.label, a)).or_default().push(i);
            }
            let p = &pk[i];
            match t.label {
                "scan" => {
                    assert!(p.len() <= 4, "a probe is a few packets: {t:?}");
                    assert!(
                        p[0].3.is_empty() && p[0].1,
                        "a probe carries nothing: {t:?}"
                    );
                    if t.proto == "TCP" {
                        assert_eq!(p[0].2, SYN, "{t:?}");
                        assert!(
                            p.iter().any(|x| x.2 & RST != 0),
                            "it ends in a reset: {t:?}"
                        );
                    }
                }
                "exfiltration" => {
                    assert!(t.dest_ip.starts_with("198.51.100."), "a rare destination");
                    assert!(up(p) >= 1_000_000 && up(p) > 20 * down(p), "{t:?}");
                    let secs = (p.last().unwrap().0 - p[0].0) as f64 / 1e9;
                    assert!(secs > 2.0, "slowly: {secs} s");
                }
                "credential_stuffing" => {
                    let answer = p.iter().find(|x| !x.1 && !x.3.is_empty()).unwrap();
                    assert!(
                        answer.3.starts_with(b"HTTP/1.1 401")
                            || answer.3.starts_with(b"HTTP/1.1 200")
                    );
                    let req = p.iter().find(|x| x.1 && !x.3.is_empty()).unwrap();
                    assert!(String::from_utf8_lossy(&req.3).contains("Authorization: Bearer sk-"));
                }
                "model_theft" => {
                    assert!(unusual(t) && down(p) >= 1_000_000, "{t:?}");
                }
                "data_poisoning" => {
                    assert!(
                        unusual(t) && up(p) >= 500_000 && t.dest_port == 9000,
                        "{t:?}"
                    );
                }
                "beaconing" => assert!(t.dest_ip.starts_with("198.51.100.")),
                "benign" => {
                    assert!(!unusual(t), "benign clients are tenants: {t:?}");
                    // The look-alikes are what they say, too.
                    let first_up = p.iter().find(|x| x.1 && !x.3.is_empty());
                    let first_down = p.iter().find(|x| !x.1 && !x.3.is_empty());
                    match t.kind {
                        "connection_refused" => {
                            assert_eq!(p.len(), 2, "{t:?}");
                            assert_eq!((p[0].2, p[1].2), (SYN, RST | ACK_FLAG));
                        }
                        "agent_client" => {
                            let req = String::from_utf8_lossy(&first_up.unwrap().3);
                            assert!(req.contains("Bearer sk-agent-token"), "{req}");
                            let answer = &first_down.unwrap().3;
                            assert!(
                                answer.starts_with(b"HTTP/1.1 200")
                                    || answer.starts_with(b"HTTP/1.1 401")
                            );
                        }
                        "health_monitor" => {
                            assert!(first_up.unwrap().3.starts_with(b"GET /health "));
                            assert!(p.iter().any(|x| x.2 & crate::decode::tcp::FIN != 0));
                        }
                        "backup_tls" => {
                            assert_eq!((t.dest_ip.as_str(), t.dest_port), ("203.0.113.60", 443));
                            assert!(up(p) >= 1_000_000 && up(p) > 20 * down(p), "{t:?}");
                        }
                        _ => {}
                    }
                }
                other => panic!("label {other}"),
            }
        }
        for label in [
            "exfiltration",
            "beaconing",
            "scan",
            "credential_stuffing",
            "model_theft",
            "data_poisoning",
        ] {
            assert!(instances.keys().any(|k| k.0 == label), "{label} generated");
        }
        for ((label, _), flows) in &instances {
            match *label {
                "scan" => {
                    let ports: std::collections::BTreeSet<u16> =
                        flows.iter().map(|&i| truth[i].dest_port).collect();
                    assert!(
                        ports.len() >= 20 && ports.len() == flows.len(),
                        "one probe per port"
                    );
                }
                "credential_stuffing" => {
                    let refused = flows
                        .iter()
                        .filter(|&&i| {
                            pk[i]
                                .iter()
                                .any(|x| !x.1 && x.3.starts_with(b"HTTP/1.1 401"))
                        })
                        .count();
                    assert!(
                        flows.len() >= 20 && refused * 10 >= flows.len() * 8,
                        "{refused} of {}",
                        flows.len()
                    );
                }
                "beaconing" => {
                    // Check-ins on a period, with bounded jitter.
                    let starts: Vec<f64> = flows.iter().map(|&i| pk[i][0].0 as f64 / 1e9).collect();
                    let gaps: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
                    assert!(gaps.len() >= 2, "{starts:?}");
                    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
                    let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>()
                        / gaps.len() as f64)
                        .sqrt();
                    assert!(
                        (0.7..=7.0).contains(&mean) && sd / mean < 0.35,
                        "mean {mean} sd {sd}"
                    );
                }
                "data_poisoning" => assert!(flows.len() >= 3),
                _ => {}
            }
        }
        // Attackers are tenants on VLANs as often as benign clients are:
        // a tag says nothing.
        let attack_flows: Vec<&Truth> = truth.iter().filter(|t| t.label != "benign").collect();
        let tagged = attack_flows.iter().filter(|t| t.vlan.is_some()).count();
        assert!(
            tagged > 0 && tagged < attack_flows.len(),
            "{tagged} of {}",
            attack_flows.len()
        );
        for kind in [
            "polling_client",
            "agent_client",
            "health_monitor",
            "backup_tls",
            "connection_refused",
        ] {
            assert!(truth.iter().any(|t| t.kind == kind), "{kind} generated");
        }
        // The benign pollers look like beacons but are labelled benign.
        assert!(truth
            .iter()
            .any(|t| t.kind == "polling_client" && t.label == "benign" && t.attack.is_none()));
    }
}
