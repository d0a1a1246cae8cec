//! The AI-ingestion traffic generator (`tollgate gen`, and a library for
//! tests and benchmarks). Deterministic from a seed, it builds a capture of
//! many concurrent flows interleaved in time, shaped like the ingress of an
//! AI factory: OpenAI- and Anthropic-style API calls to an inference gateway
//! (chat completions plain and streamed as server-sent events, responses,
//! messages, embeddings), dataset uploads (JSONL and CSV, megabytes), model
//! pulls (safetensors, and pickled state dicts that `python3 -m pickletools`
//! reads), TLS sessions to public LLM APIs (ClientHello with SNI and ALPN,
//! then records), DNS, and background traffic in an IMIX-like size mix. It
//! writes a ground-truth line per flow (5-tuple, kind, label). Shapes
//! (endpoints, body sizes, streaming) follow recorded LLM API traffic; the
//! texts are our own.

pub mod attacks;

use crate::craft::{Capture, Route, Side, TcpConversation};
use crate::sample::{dns_answer, dns_query, http_request, http_response, Rng, PROMPTS};
use serde::Serialize;
use std::net::IpAddr;

const MS: u64 = 1_000_000;
const MSS: usize = 1448;
/// 2026-11-01T09:00:00Z, like the sample.
const EPOCH_NS: u64 = 1_793_523_600_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenConfig {
    pub seed: u64,
    /// Flows to generate (at least).
    pub flows: usize,
    /// Keep adding flows until the capture holds this many packets.
    pub packets: Option<usize>,
    /// Flow starts spread over this much capture time.
    pub duration_ns: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 1,
            flows: 1000,
            packets: None,
            duration_ns: 60_000_000_000,
        }
    }
}

/// One generated flow, as the ground truth file has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Truth {
    pub flow: usize,
    /// The flow's first packet's time, as `--features-out` writes a
    /// record's `flow_start`: with the tuple, the join key between the two
    /// (Tollgate's flow ids are its workers', which the generator cannot
    /// know).
    pub start: String,
    pub kind: &'static str,
    pub label: &'static str,
    pub src_ip: String,
    pub src_port: u16,
    pub dest_ip: String,
    pub dest_port: u16,
    pub proto: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    pub packets: u64,
    pub bytes: u64,
    /// Which attack instance the flow belongs to (`--attacks`): a scan's
    /// probes, a beacon's check-ins share one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack: Option<u32>,
}

/// Flow kinds and their weights (out of 100).
const KINDS: [(&str, u64); 11] = [
    ("openai_chat", 20),
    ("openai_chat_stream", 10),
    ("anthropic_messages", 10),
    ("openai_responses", 8),
    ("embeddings", 10),
    ("dataset_upload", 3),
    ("model_download_safetensors", 2),
    ("model_download_pickle", 2),
    ("tls_llm_api", 15),
    ("dns", 10),
    ("background", 10),
];

const TLS_HOSTS: [&str; 5] = [
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "bedrock-runtime.us-east-1.amazonaws.com",
    "api.groq.com",
];

fn ip(s: &str) -> IpAddr {
    s.parse().expect("generated address")
}

fn pick_kind(rng: &mut Rng) -> &'static str {
    let mut r = rng.below(100);
    for (k, w) in KINDS {
        if r < w {
            return k;
        }
        r -= w;
    }
    "background"
}

fn words(rng: &mut Rng, n: usize) -> String {
    const W: [&str; 16] = [
        "the", "model", "tenant", "request", "data", "and", "is", "of", "GPU", "report", "cluster",
        "latency", "token", "batch", "we", "training",
    ];
    (0..n)
        .map(|_| W[rng.below(16) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Between `min` and `min + span` words.
fn some_words(rng: &mut Rng, min: usize, span: u64) -> String {
    let n = min + rng.below(span) as usize;
    words(rng, n)
}

fn prompt(rng: &mut Rng) -> &'static str {
    PROMPTS[rng.below(PROMPTS.len() as u64) as usize]
}

/// The chat request body, OpenAI style.
fn chat_body(rng: &mut Rng, stream: bool) -> String {
    format!(
        "{{\"model\":\"llama-3.1-70b-instruct\",\"messages\":[{{\"role\":\"system\",\"content\":\
         \"You are a helpful assistant.\"}},{{\"role\":\"user\",\"content\":\"{} {}\"}}],\
         \"temperature\":0.{},\"max_tokens\":{},\"stream\":{stream}}}",
        prompt(rng),
        some_words(rng, 0, 200),
        rng.below(10),
        256 << rng.below(4)
    )
}

/// A chunked HTTP response carrying server-sent events, one chunk each.
fn sse_chunks(events: &[String]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    let mut chunks: Vec<Vec<u8>> = events
        .iter()
        .map(|e| {
            let mut c = format!("{:x}\r\n", e.len()).into_bytes();
            c.extend_from_slice(e.as_bytes());
            c.extend_from_slice(b"\r\n");
            c
        })
        .collect();
    chunks.push(b"0\r\n\r\n".to_vec());
    (head, chunks)
}

/// A pickled state dict (protocol 3: a dict of names to raw bytes; no
/// globals, nothing executable).
fn pickled_state_dict(rng: &mut Rng, tensors: usize, size: usize) -> Vec<u8> {
    let mut p = vec![0x80, 3, b'}', b'('];
    for t in 0..tensors {
        let name = format!("layers.{t}.weight");
        p.push(b'X');
        p.extend_from_slice(&(name.len() as u32).to_le_bytes());
        p.extend_from_slice(name.as_bytes());
        p.push(b'B');
        p.extend_from_slice(&(size as u32).to_le_bytes());
        p.extend_from_slice(&rng.bytes(size));
    }
    p.extend_from_slice(b"u.");
    p
}

fn safetensors(rng: &mut Rng, size: usize) -> Vec<u8> {
    let header = format!(
        "{{\"__metadata__\":{{\"format\":\"pt\"}},\"lm_head.weight\":{{\"dtype\":\"F16\",\
         \"shape\":[{},1],\"data_offsets\":[0,{size}]}}}}",
        size / 2
    );
    let mut m = (header.len() as u64).to_le_bytes().to_vec();
    m.extend_from_slice(header.as_bytes());
    m.extend_from_slice(&rng.bytes(size));
    m
}

fn client_hello(rng: &mut Rng, sni: &str) -> Vec<u8> {
    let mut ext = Vec::new();
    let push_ext = |ext: &mut Vec<u8>, kind: u16, data: &[u8]| {
        ext.extend_from_slice(&kind.to_be_bytes());
        ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
        ext.extend_from_slice(data);
    };
    let mut sn = ((sni.len() + 3) as u16).to_be_bytes().to_vec();
    sn.push(0);
    sn.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    sn.extend_from_slice(sni.as_bytes());
    push_ext(&mut ext, 0x0000, &sn);
    push_ext(&mut ext, 0x000a, &[0, 4, 0, 0x1d, 0, 0x17]);
    push_ext(&mut ext, 0x000b, &[1, 0]);
    push_ext(&mut ext, 0x000d, &[0, 6, 4, 3, 8, 4, 4, 1]);
    push_ext(&mut ext, 0x0010, b"\x00\x0c\x02h2\x08http/1.1");
    push_ext(&mut ext, 0x002b, &[4, 3, 4, 3, 3]);
    let mut ks = vec![0, 0x24, 0, 0x1d, 0, 0x20];
    ks.extend_from_slice(&rng.bytes(32));
    push_ext(&mut ext, 0x0033, &ks);
    let mut body = vec![3, 3];
    body.extend_from_slice(&rng.bytes(32));
    body.push(32);
    body.extend_from_slice(&rng.bytes(32));
    body.extend_from_slice(&[0, 10, 0x13, 1, 0x13, 2, 0x13, 3, 0xc0, 0x2b, 0xc0, 0x2f]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    tls_record(0x16, 0x0301, &handshake(1, &body))
}

fn server_hello(rng: &mut Rng) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&rng.bytes(32));
    body.push(32);
    body.extend_from_slice(&rng.bytes(32));
    body.extend_from_slice(&[0x13, 1, 0]);
    let mut ks = vec![0, 0x33, 0, 0x24, 0, 0x1d, 0, 0x20];
    ks.extend_from_slice(&rng.bytes(32));
    let mut ext = vec![0, 0x2b, 0, 2, 3, 4];
    ext.extend_from_slice(&ks);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut out = tls_record(0x16, 0x0303, &handshake(2, &body));
    out.extend_from_slice(&tls_record(0x14, 0x0303, &[1]));
    out
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![kind];
    h.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    h.extend_from_slice(body);
    h
}

fn tls_record(kind: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut r = vec![kind];
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// An upload to the training store on `c`: the handshake, `PUT path` with
/// `body`, the store's answer, the client's close.
fn store_put(c: &mut TcpConversation, path: &str, ctype: &str, body: &[u8]) {
    c.handshake()
        .send(
            Side::Client,
            &http_request("PUT", path, "store.tenant.local", ctype, body),
            MSS,
        )
        .send(
            Side::Server,
            &http_response("application/json", b"{\"status\":\"stored\"}"),
            MSS,
        )
        .close(Side::Client);
}

/// A pull from the model store on `c`: the handshake, `GET path`, `model`
/// back, the client's close.
fn store_get(c: &mut TcpConversation, path: &str, model: &[u8]) {
    c.handshake()
        .send(
            Side::Client,
            &http_request("GET", path, "store.tenant.local", "application/json", b""),
            MSS,
        )
        .send(
            Side::Server,
            &http_response("application/octet-stream", model),
            MSS,
        )
        .close(Side::Client);
}

/// Application-data records of random (encrypted-looking) bytes, between
/// `min` and `min + span` of them.
fn tls_app_data(rng: &mut Rng, min: usize, span: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut left = min + rng.below(span) as usize;
    while left > 0 {
        let n = left.min(16_384);
        out.extend_from_slice(&tls_record(0x17, 0x0303, &rng.bytes(n)));
        left -= n;
    }
    out
}

/// Generates the capture and its ground truth.
pub fn generate(cfg: &GenConfig) -> (Capture, Vec<Truth>) {
    generate_with(cfg, None)
}

/// Generates the capture and its ground truth, with `attacks` added (their
/// flows labelled) after the benign flows, from an RNG of their own: the
/// benign flows are those of `generate(cfg)`.
pub fn generate_with(
    cfg: &GenConfig,
    attacks: Option<&attacks::AttackMix>,
) -> (Capture, Vec<Truth>) {
    let mut rng = Rng(cfg.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut cap = Capture::new();
    let mut truth = Vec::new();
    let gateway = ip("10.20.0.10");
    let store = ip("10.30.0.5");
    let resolver = ip("10.0.0.53");
    let mut i = 0usize;
    while i < cfg.flows || cfg.packets.is_some_and(|p| cap.packets.len() < p) {
        let tenant = rng.below(8);
        let client_s = format!(
            "10.{}.{}.{}",
            64 + tenant,
            rng.below(256),
            1 + rng.below(254)
        );
        let client = ip(&client_s);
        let vlan = (tenant % 2 == 1).then_some(100 + tenant as u16);
        let with_vlan = |r: Route| match vlan {
            Some(v) => r.vlan(v),
            None => r,
        };
        let start = EPOCH_NS + rng.below(cfg.duration_ns.max(1));
        let sport = 32768 + rng.below(28000) as u16;
        let kind = pick_kind(&mut rng);
        let before = cap.packets.len();
        let (dst, dport, proto) = match kind {
            "openai_chat" | "openai_chat_stream" | "anthropic_messages" | "openai_responses"
            | "embeddings" => {
                let r = with_vlan(Route::new(client, gateway));
                let mut c = TcpConversation::new(r, sport, 8000, start)
                    .gap(50_000 + rng.below(400_000))
                    .window_scale(7);
                let stream = kind == "openai_chat_stream"
                    || (kind == "anthropic_messages" && rng.below(2) == 0);
                let (path, body) = match kind {
                    "anthropic_messages" => (
                        "/v1/messages",
                        format!(
                            "{{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"stream\":{stream},\
                             \"messages\":[{{\"role\":\"user\",\"content\":\"{} {}\"}}]}}",
                            prompt(&mut rng),
                            some_words(&mut rng, 0, 150)
                        ),
                    ),
                    "openai_responses" => (
                        "/v1/responses",
                        format!(
                            "{{\"model\":\"gpt-4.1\",\"input\":\"{} {}\",\"store\":false}}",
                            prompt(&mut rng),
                            some_words(&mut rng, 0, 150)
                        ),
                    ),
                    "embeddings" => {
                        let inputs: Vec<String> = (0..1 + rng.below(32))
                            .map(|_| format!("\"{}\"", some_words(&mut rng, 20, 60)))
                            .collect();
                        ("/v1/embeddings", format!("{{\"model\":\"bge-large-en-v1.5\",\"input\":[{}]}}", inputs.join(",")))
                    }
                    _ => ("/v1/chat/completions", chat_body(&mut rng, stream)),
                };
                c.handshake().send(
                    Side::Client,
                    &http_request(
                        "POST",
                        path,
                        "inference.tenant.local",
                        "application/json",
                        body.as_bytes(),
                    ),
                    MSS,
                );
                // Inference takes a while: time to first token.
                c.idle(80 * MS + rng.below(1500) * MS);
                if stream {
                    let n = 5 + rng.below(40) as usize;
                    let events: Vec<String> = (0..n)
                        .map(|k| {
                            if kind == "anthropic_messages" {
                                format!(
                                    "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\
                                     \"delta\":{{\"type\":\"text_delta\",\"text\":\"{} \"}}}}\n\n",
                                    words(&mut rng, 1 + k % 3)
                                )
                            } else {
                                format!(
                                    "data: {{\"id\":\"chatcmpl-{:08x}\",\"object\":\"chat.completion.chunk\",\
                                     \"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{} \"}}}}]}}\n\n",
                                    rng.below(1 << 32),
                                    words(&mut rng, 1 + k % 3)
                                )
                            }
                        })
                        .chain(std::iter::once(if kind == "anthropic_messages" {
                            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_string()
                        } else {
                            "data: [DONE]\n\n".to_string()
                        }))
                        .collect();
                    let (head, chunks) = sse_chunks(&events);
                    let parts: Vec<Vec<u8>> = std::iter::once(head).chain(chunks).collect();
                    c.send_parts(Side::Server, &parts, |_| 15 * MS + rng.below(40) * MS)
                        .close(Side::Client);
                    cap.extend(c.into_packets());
                } else {
                    let reply = format!(
                        "{{\"id\":\"resp-{:08x}\",\"object\":\"chat.completion\",\"choices\":[{{\"index\":0,\
                         \"message\":{{\"role\":\"assistant\",\"content\":\"{}\"}},\"finish_reason\":\"stop\"}}]}}",
                        rng.below(1 << 32),
                        some_words(&mut rng, 20, 400)
                    );
                    c.send(
                        Side::Server,
                        &http_response("application/json", reply.as_bytes()),
                        MSS,
                    )
                    .close(Side::Client);
                    cap.extend(c.into_packets());
                }
                (gateway, 8000, "TCP")
            }
            "dataset_upload" => {
                let r = with_vlan(Route::new(client, store));
                let mut c = TcpConversation::new(r, sport, 9000, start)
                    .gap(20_000)
                    .window_scale(9);
                let target = 1_000_000 + rng.below(3_000_000) as usize;
                let csv = rng.below(2) == 0;
                let mut body = Vec::with_capacity(target + 200);
                if csv {
                    body.extend_from_slice(b"id,prompt,completion,score\n");
                }
                let mut n = 0;
                while body.len() < target {
                    let line = if csv {
                        format!(
                            "{n},\"{}\",\"{}\",0.{}\n",
                            prompt(&mut rng),
                            words(&mut rng, 12),
                            rng.below(100)
                        )
                    } else {
                        format!(
                            "{{\"id\":{n},\"prompt\":\"{}\",\"completion\":\"{}\"}}\n",
                            prompt(&mut rng),
                            words(&mut rng, 12)
                        )
                    };
                    body.extend_from_slice(line.as_bytes());
                    n += 1;
                }
                let (path, ctype) = if csv {
                    ("/datasets/train.csv", "text/csv")
                } else {
                    ("/datasets/train.jsonl", "application/jsonl")
                };
                store_put(&mut c, path, ctype, &body);
                cap.extend(c.into_packets());
                (store, 9000, "TCP")
            }
            "model_download_safetensors" | "model_download_pickle" => {
                let r = with_vlan(Route::new(client, store));
                let mut c = TcpConversation::new(r, sport, 9000, start)
                    .gap(15_000)
                    .window_scale(9);
                let size = 1_000_000 + rng.below(3_000_000) as usize;
                let (path, model) = if kind == "model_download_pickle" {
                    (
                        "/models/adapter.pt",
                        pickled_state_dict(&mut rng, 4, size / 4),
                    )
                } else {
                    ("/models/adapter.safetensors", safetensors(&mut rng, size))
                };
                store_get(&mut c, path, &model);
                cap.extend(c.into_packets());
                (store, 9000, "TCP")
            }
            "tls_llm_api" => {
                let host = TLS_HOSTS[rng.below(TLS_HOSTS.len() as u64) as usize];
                let server = ip(&format!("203.0.113.{}", 10 + rng.below(5) * 10));
                let r = with_vlan(Route::new(client, server));
                let mut c = TcpConversation::new(r, sport, 443, start)
                    .gap(200_000)
                    .window_scale(7);
                c.handshake()
                    .send(Side::Client, &client_hello(&mut rng, host), MSS)
                    .send(Side::Server, &server_hello(&mut rng), MSS);
                let mut app = tls_app_data(&mut rng, 100, 3000);
                app.extend(tls_app_data(&mut rng, 500, 4000));
                c.send(Side::Server, &app, MSS).send(
                    Side::Client,
                    &tls_app_data(&mut rng, 600, 2500),
                    MSS,
                );
                c.idle(100 * MS + rng.below(2000) * MS);
                c.send(Side::Server, &tls_app_data(&mut rng, 200, 8000), MSS)
                    .close(Side::Client);
                cap.extend(c.into_packets());
                (server, 443, "TCP")
            }
            "dns" => {
                let r = with_vlan(Route::new(client, resolver));
                let name = TLS_HOSTS[rng.below(TLS_HOSTS.len() as u64) as usize];
                let id = rng.below(65536) as u16;
                cap.push(start, r.udp(sport, 53, &dns_query(id, name)));
                cap.push(
                    start + MS + rng.below(20) * MS,
                    r.reversed()
                        .udp(53, sport, &dns_answer(id, name, [203, 0, 113, 10])),
                );
                (resolver, 53, "UDP")
            }
            _ => {
                // Background: IMIX-like UDP bursts between hosts on high ports.
                let peer = ip(&format!(
                    "10.{}.0.{}",
                    64 + rng.below(8),
                    1 + rng.below(254)
                ));
                let r = with_vlan(Route::new(client, peer));
                let dport = 40000 + rng.below(20000) as u16;
                let mut t = start;
                for _ in 0..(2 + rng.below(20)) {
                    let size = [64usize, 64, 64, 64, 64, 64, 64, 576, 576, 576, 576, 1500]
                        [rng.below(12) as usize];
                    // Telemetry lines: text, which no heuristic dissector takes
                    // for its own protocol the way random bytes can be.
                    let want = size.saturating_sub(42 + vlan.map_or(0, |_| 4));
                    let mut payload = Vec::with_capacity(want + 64);
                    while payload.len() < want {
                        let line = format!("gpu.{}.util:{}|g\n", rng.below(8), rng.below(100));
                        payload.extend_from_slice(line.as_bytes());
                    }
                    payload.truncate(want);
                    cap.push(t, r.udp(sport, dport, &payload));
                    t += rng.below(5) * MS + 1000;
                }
                (peer, dport, "UDP")
            }
        };
        let new = &cap.packets[before..];
        truth.push(Truth {
            flow: i,
            start: crate::events::format_timestamp(
                new.iter().map(|(t, _)| *t).min().unwrap_or(start),
            ),
            kind,
            label: "benign",
            src_ip: client_s,
            src_port: sport,
            dest_ip: dst.to_string(),
            dest_port: dport,
            proto,
            vlan,
            packets: new.len() as u64,
            bytes: new.iter().map(|(_, f)| f.len() as u64).sum(),
            attack: None,
        });
        i += 1;
    }
    if let Some(mix) = attacks {
        let setting = attacks::Setting {
            gateway,
            store,
            epoch_ns: EPOCH_NS,
            duration_ns: cfg.duration_ns,
            benign_flows: truth.len(),
        };
        attacks::add(cfg.seed, mix, &setting, &mut cap, &mut truth);
    }
    (cap, truth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;

    fn small() -> GenConfig {
        GenConfig {
            seed: 7,
            flows: 200,
            packets: None,
            duration_ns: 10_000_000_000,
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, ta) = generate(&small());
        let (b, tb) = generate(&small());
        assert!(a.to_pcap() == b.to_pcap());
        assert_eq!(ta, tb);
        let (c, _) = generate(&GenConfig { seed: 8, ..small() });
        assert!(a.to_pcap() != c.to_pcap());
    }

    #[test]
    fn every_kind_appears_and_every_frame_decodes() {
        let (cap, truth) = generate(&GenConfig {
            flows: 600,
            ..small()
        });
        for (k, _) in KINDS {
            assert!(truth.iter().any(|t| t.kind == k), "{k}");
        }
        assert!(cap.packets.iter().all(|(_, f)| decode(f).is_ok()));
        let total: u64 = truth.iter().map(|t| t.packets).sum();
        assert_eq!(total, cap.packets.len() as u64);
    }

    #[test]
    fn packets_target_adds_flows() {
        let (cap, truth) = generate(&GenConfig {
            flows: 1,
            packets: Some(5000),
            ..small()
        });
        assert!(cap.packets.len() >= 5000);
        assert!(truth.len() > 1);
    }

    #[test]
    fn pickles_are_state_dicts_python_reads() {
        let p = pickled_state_dict(&mut Rng(3), 3, 64);
        assert_eq!(&p[..2], &[0x80, 3]);
        assert_eq!(&p[p.len() - 2..], b"u.");
        let Ok(out) = std::process::Command::new("python3")
            .arg("--version")
            .output()
        else {
            eprintln!("python3 not installed: skipping the pickletools check");
            return;
        };
        assert!(out.status.success());
        let path = std::env::temp_dir().join(format!("tollgate-pickle-{}.pt", std::process::id()));
        std::fs::write(&path, &p).unwrap();
        let script = [
            "import pickle, pickletools, sys",
            "raw = open(sys.argv[1], 'rb').read()",
            "pickletools.dis(raw, out=open('/dev/null', 'w'))",
            "ops = {op.name for op, _, _ in pickletools.genops(raw)}",
            "assert not ops & {'GLOBAL', 'STACK_GLOBAL', 'REDUCE', 'INST', 'OBJ'}, ops",
            "d = pickle.loads(raw)",
            "assert sorted(d) == ['layers.0.weight', 'layers.1.weight', 'layers.2.weight'], d.keys()",
            "assert all(len(v) == 64 for v in d.values())",
        ]
        .join("\n");
        let check = std::process::Command::new("python3")
            .args(["-c", &script])
            .arg(&path)
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}
