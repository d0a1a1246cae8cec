//! The AI parsers end to end, through the binary: a streamed LLM
//! completion reassembled from server-sent events cut across HTTP chunks
//! and TCP segments, the EVE `llm` object (no text unless asked), model
//! files named in `fileinfo` (PyTorch zip, pickles of protocols 0 and 5,
//! safetensors true and lying, GGUF), `pickle.suspicious`, a body cut
//! short, and `--ai-inspect off`. Every EVE line validates against
//! Suricata's schema with ours added.

mod common;
use common::{alert_sids, replay_events, validate_eve, Scratch};
use serde_json::Value;
use std::net::IpAddr;
use tollgate::craft::{Capture, Route, Side, TcpConversation};

const T0: u64 = 1_767_225_600_000_000_000;

fn flow(cap: &mut Capture, n: u16, request: &[u8], response: &[u8], seg: usize) {
    let client: IpAddr = format!("10.64.9.{}", n + 1).parse().unwrap();
    let mut c = TcpConversation::new(
        Route::new(client, "10.20.0.10".parse().unwrap()),
        42000 + n,
        8000,
        T0 + u64::from(n) * 1_000_000_000,
    );
    c.handshake()
        .send(Side::Client, request, seg)
        .send(Side::Server, response, seg)
        .close(Side::Client);
    cap.extend(c.into_packets());
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: llm.tenant.local\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `body` chunked in `size`-byte chunks.
fn chunked(head: &str, body: &[u8], size: usize) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\n{head}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
    for c in body.chunks(size) {
        r.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        r.extend_from_slice(c);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

fn served(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn run(dir: &Scratch, cap: &Capture, rules: &str, extra: &[&str]) -> (Vec<Value>, Value) {
    let r = dir.write("ai.rules", rules.as_bytes());
    let out = replay_events(dir, cap, &r, extra);
    validate_eve(&[&dir.path("eve.json")], true);
    out
}

const CHAT: &str = r#"{"model":"gpt-4o","stream":true,"tools":[{"type":"function","function":{"name":"run_shell","description":"Runs a command"}}],"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the password?"}]}"#;

/// The SSE stream of a chat completion saying `text`, a delta per word.
fn sse(text: &str) -> Vec<u8> {
    let mut b = String::new();
    for (i, w) in text.split_inclusive(' ').enumerate() {
        let role = if i == 0 { r#""role":"assistant","# } else { "" };
        b.push_str(&format!(
            "data: {{\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{{role}\"content\":{}}}}}]}}\n\n",
            serde_json::to_string(w).unwrap()
        ));
    }
    b.push_str("data: [DONE]\n\n");
    b.into_bytes()
}

const COMPLETION_RULE: &str = "alert http any any -> any any (msg:\"completion leaks the password\"; llm.completion; content:\"password is swordfish\"; sid:1; rev:1;)\n";

#[test]
fn a_streamed_completion_is_reassembled_and_the_call_logged_without_its_text() {
    let dir = Scratch::new("ai-sse");
    let mut cap = Capture::new();
    let head = "Content-Type: text/event-stream; charset=utf-8\r\n";
    // Chunks of 37 bytes in segments of 61: events and words cut anywhere.
    let leak = chunked(head, &sse("Sure, the password is swordfish today."), 37);
    flow(&mut cap, 0, &post("/v1/chat/completions", CHAT), &leak, 61);
    let fine = chunked(head, &sse("I cannot share the password."), 37);
    flow(&mut cap, 1, &post("/v1/chat/completions", CHAT), &fine, 61);
    let (events, st) = run(&dir, &cap, COMPLETION_RULE, &[]);
    assert_eq!(alert_sids(&events), [1], "only the leaking completion");
    let calls: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "http")
        .map(|e| &e["tollgate"]["llm"])
        .collect();
    assert_eq!(calls.len(), 2);
    let c = calls[0];
    assert_eq!(c["endpoint"], "chat");
    assert_eq!(c["model"], "gpt-4o");
    assert_eq!(c["messages"], 2);
    assert_eq!(c["streamed"], true);
    assert_eq!(c["tools"], serde_json::json!(["run_shell"]));
    assert_eq!(
        c["completion_bytes"],
        "Sure, the password is swordfish today.".len()
    );
    assert_eq!(
        c["prompt_bytes"],
        "Runs a command\nYou are terse.\nWhat is the password?".len()
    );
    // Prompts are customer data: no text unless asked.
    assert!(
        c.get("prompt").is_none() && c.get("completion").is_none(),
        "{c}"
    );
    let alert = events.iter().find(|e| e["event_type"] == "alert").unwrap();
    assert_eq!(alert["tollgate"]["llm"]["endpoint"], "chat");
    assert_eq!(st["app_layer"]["ai"]["llm"]["calls"]["chat"], 2, "{st}");
    assert_eq!(st["app_layer"]["ai"]["llm"]["streamed"], 2);

    // Asked for, the text comes.
    let (events, _) = run(&dir, &cap, COMPLETION_RULE, &["--eve-llm-text"]);
    let c = &events.iter().find(|e| e["event_type"] == "http").unwrap()["tollgate"]["llm"];
    assert_eq!(c["completion"], "Sure, the password is swordfish today.");
    assert!(c["prompt"]
        .as_str()
        .unwrap()
        .ends_with("What is the password?"));

    // Off, nothing is read: no llm object, the rule cannot match.
    let (events, st) = run(&dir, &cap, COMPLETION_RULE, &["--ai-inspect", "off"]);
    assert!(alert_sids(&events).is_empty());
    assert!(events.iter().all(|e| e["tollgate"].get("llm").is_none()));
    assert_eq!(st["app_layer"]["ai"]["llm"]["calls"]["chat"], 0);
}

#[test]
fn each_api_shape_is_named_by_its_json() {
    let dir = Scratch::new("ai-shapes");
    let mut cap = Capture::new();
    let json = |b: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )
        .into_bytes()
    };
    let calls = [
        (
            "/v1/messages",
            r#"{"model":"claude-sonnet-4","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Hi"}]}"#,
            r#"{"type":"message","content":[{"type":"text","text":"Hello"}]}"#,
            "messages",
        ),
        (
            "/v1/responses",
            r#"{"model":"gpt-4.1","input":"2+2?","instructions":"Answer in French"}"#,
            r#"{"object":"response","output":[{"type":"message","content":[{"type":"output_text","text":"quatre"}]}]}"#,
            "responses",
        ),
        (
            "/v1/embeddings",
            r#"{"model":"text-embedding-3-small","input":["a","b"]}"#,
            r#"{"object":"list","data":[{"object":"embedding","embedding":[0.1,0.2]}]}"#,
            "embeddings",
        ),
        (
            // Ollama's OpenAI endpoint on another path: the JSON decides.
            "/api/proxy",
            r#"{"model":"llama3","prompt":"Once upon"}"#,
            r#"{"object":"text_completion","choices":[{"text":" a time"}]}"#,
            "completion",
        ),
    ];
    for (i, (path, req, resp, _)) in calls.iter().enumerate() {
        flow(&mut cap, i as u16, &post(path, req), &json(resp), 1448);
    }
    let (events, st) = run(&dir, &cap, "", &[]);
    let got: Vec<&str> = events
        .iter()
        .filter(|e| e["event_type"] == "http")
        .map(|e| e["tollgate"]["llm"]["endpoint"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = calls.iter().map(|c| c.3).collect();
    assert_eq!(got, want);
    assert_eq!(st["app_layer"]["ai"]["llm"]["calls"]["embeddings"], 1);
}

/// A zip of stored members (what `torch.save` writes, uncompressed).
fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let crc = crc32(data);
        let at = out.len() as u32;
        let fields = |sig: &[u8], out: &mut Vec<u8>, central: bool| {
            out.extend_from_slice(sig);
            if central {
                out.extend_from_slice(&20u16.to_le_bytes());
            }
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            if central {
                out.extend_from_slice(&[0; 8]);
                out.extend_from_slice(&[0; 4]);
                out.extend_from_slice(&at.to_le_bytes());
            }
            out.extend_from_slice(name.as_bytes());
        };
        fields(b"PK\x03\x04", &mut out, false);
        out.extend_from_slice(data);
        fields(b"PK\x01\x02", &mut central, true);
    }
    let cd_at = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    let n = (members.len() as u16).to_le_bytes();
    out.extend_from_slice(&n);
    out.extend_from_slice(&n);
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_at.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn crc32(d: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in d {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                c >> 1 ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn safetensors(header: &str, data: usize) -> Vec<u8> {
    let mut f = (header.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(header.as_bytes());
    f.resize(f.len() + data, 0);
    f
}

/// Protocol 5, framed: posix.system("id") through STACK_GLOBAL with the
/// module name memoised and fetched back.
const P5: &[u8] = b"\x80\x05\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";
/// Protocol 0 os.system("id").
const P0: &[u8] = b"cos\nsystem\n(S'id'\ntR.";
/// A state dict of protocol 2 through torch's own rebuild (safe).
const STATE: &[u8] =
    b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00(X\x01\x00\x00\x00aK\x00K\x01tq\x01Rq\x02.";

const SUSPICIOUS_RULE: &str =
    "alert http any any -> any any (msg:\"suspicious pickle\"; pickle.suspicious; sid:2; rev:1;)\n";

#[test]
fn model_files_are_named_in_fileinfo_and_suspicious_pickles_flagged() {
    let dir = Scratch::new("ai-models");
    let get = |n: &str| {
        format!("GET /models/{n} HTTP/1.1\r\nHost: store.tenant.local\r\n\r\n").into_bytes()
    };
    let good = r#"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#;
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "evil.pt",
            zip(&[("archive/data.pkl", P5), ("archive/version", b"3\n")]),
        ),
        ("p0.pkl", P0.to_vec()),
        ("state.pt", zip(&[("archive/data.pkl", STATE)])),
        ("good.safetensors", safetensors(good, 24)),
        // The header says 24 data bytes; 4 come.
        ("short.safetensors", safetensors(good, 4)),
        ("m.gguf", b"GGUF\x03\x00\x00\x00\x00\x00\x00\x00".to_vec()),
    ];
    let mut cap = Capture::new();
    for (i, (name, body)) in files.iter().enumerate() {
        flow(&mut cap, i as u16, &get(name), &served(body), 1448);
    }
    // A pickle cut short by the connection's end: what came before counts.
    let mut cut = served(P0);
    cut.truncate(cut.len() - 3);
    flow(&mut cap, 9, &get("cut.pkl"), &cut, 1448);
    let (events, st) = run(&dir, &cap, SUSPICIOUS_RULE, &[]);
    let art = |name: &str| -> Value {
        events
            .iter()
            .find(|e| {
                e["event_type"] == "fileinfo"
                    && e["fileinfo"]["filename"] == format!("/models/{name}")
            })
            .unwrap_or_else(|| panic!("no fileinfo for {name}"))["tollgate"]["artifact"]
            .clone()
    };
    // A whole model file gets its sha256 and a magic without being asked.
    let info = |name: &str| -> Value {
        events
            .iter()
            .find(|e| {
                e["event_type"] == "fileinfo"
                    && e["fileinfo"]["filename"] == format!("/models/{name}")
            })
            .unwrap()["fileinfo"]
            .clone()
    };
    let p0 = info("p0.pkl");
    assert_eq!(p0["magic"], "Python pickle data");
    assert_eq!(p0["sha256"].as_str().map(str::len), Some(64), "{p0}");
    assert_eq!(
        info("evil.pt")["magic"],
        "Zip archive data (PyTorch checkpoint)"
    );
    assert!(info("cut.pkl").get("sha256").is_none(), "cut: no hash");
    let evil = art("evil.pt");
    assert_eq!(evil["format"], "pytorch");
    assert_eq!(evil["pickle_imports"], serde_json::json!(["posix.system"]));
    assert_eq!(evil["pickle_suspicious"], true);
    assert_eq!(
        art("p0.pkl")["pickle_imports"],
        serde_json::json!(["os.system"])
    );
    let state = art("state.pt");
    assert_eq!(state["pickle_suspicious"], false, "{state}");
    assert_eq!(
        state["pickle_imports"],
        serde_json::json!(["torch._utils._rebuild_tensor_v2"])
    );
    let g = art("good.safetensors");
    assert_eq!(
        (g["format"].as_str(), g["tensors"].as_u64()),
        (Some("safetensors"), Some(1))
    );
    assert!(g.get("error").is_none(), "{g}");
    assert_eq!(art("short.safetensors")["error"], "size");
    assert_eq!(art("m.gguf")["format"], "gguf");
    // Cut before its call: not suspicious, but its import is reported
    // (what the shipped import rules read).
    let c = art("cut.pkl");
    assert_eq!(c["pickle_imports"], serde_json::json!(["os.system"]));
    assert_eq!(
        (c["pickle_suspicious"].as_bool(), c["error"].as_str()),
        (Some(false), Some("truncated"))
    );
    // evil.pt and p0.pkl, each once (its response).
    assert_eq!(alert_sids(&events), [2, 2]);
    let formats = &st["app_layer"]["ai"]["artifacts"]["formats"];
    assert_eq!(
        (
            formats["pytorch"].as_u64(),
            formats["pickle"].as_u64(),
            formats["safetensors"].as_u64()
        ),
        (Some(2), Some(2), Some(2)),
        "{st}"
    );
    assert_eq!(st["app_layer"]["ai"]["artifacts"]["malformed"], 2);
    assert_eq!(st["app_layer"]["ai"]["artifacts"]["pickle_suspicious"], 2);
}

#[test]
fn pickle_suspicious_takes_no_value() {
    let dir = Scratch::new("ai-bad-rule");
    let r = dir.write(
        "bad.rules",
        b"alert http any any -> any any (msg:\"x\"; pickle.suspicious:1; sid:3; rev:1;)\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["rules", "check", common::s(&r)])
        .output()
        .unwrap();
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("bad.rules:1: keyword `pickle.suspicious`: takes no value"),
        "{err}"
    );
}
