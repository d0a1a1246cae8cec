//! What the app layer costs: the same generated capture (at least 1M
//! packets unless told) through one worker from memory, with an empty
//! rule set, the app layer off, on for HTTP alone (TLS only recognised,
//! DNS not parsed), on for all (TLS handshakes and DNS parsed too), and
//! on for all with the AI parsers (LLM-API JSON requests and responses,
//! SSE streams, model files: every HTTP body kept and read, as
//! `--ai-inspect on`), taking turns; the best of several runs each, and
//! their ratios. With the app layer on, TCP is reassembled for the
//! parsers (no rule needs it here); without the AI parsers, bodies no
//! rule reads are counted, not kept.
//!
//!     cargo bench --bench applayer [-- PACKETS]

mod common;

use std::sync::Arc;
use std::time::Instant;
use tollgate::detect::Engine;
use tollgate::flow::EndReason;
use tollgate::io::RawPacket;
use tollgate::rules::vars::Vars;
use tollgate::stats::WorkerCounters;
use tollgate::worker::Worker;

const RUNS: usize = 5;

/// Which parsers run.
#[derive(Clone, Copy)]
enum Parsers {
    Off,
    HttpOnly,
    All,
    AllAi,
}

fn run(frames: &[(u64, Vec<u8>)], engine: &Arc<Engine>, p: Parsers) -> (f64, WorkerCounters) {
    let mut cfg = common::one_worker();
    cfg.app.enabled = !matches!(p, Parsers::Off);
    cfg.app.tls = matches!(p, Parsers::All | Parsers::AllAi);
    cfg.app.dns = matches!(p, Parsers::All | Parsers::AllAi);
    cfg.app.http.ai = matches!(p, Parsers::AllAi);
    // Built before the clock starts: what is measured is the packets.
    let mut w = Worker::new(cfg, None)
        .with_engine(Arc::clone(engine))
        .expect("scratch");
    let t = Instant::now();
    common::feed(&mut w, frames.iter().map(|(ts, f)| RawPacket::new(f, *ts)));
    let c = w.finish(EndReason::Shutdown).0;
    (t.elapsed().as_secs_f64(), c)
}

fn main() {
    let target = common::target_packets();
    let frames = common::generated(1, target).sorted();
    let packets = frames.len() as f64;
    let dir = std::env::temp_dir().join(format!("tollgate-applayer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    let rules = dir.join("empty.rules");
    std::fs::write(&rules, "").expect("write");
    let (engine, _) = Engine::load(
        &[rules.as_path()],
        &Vars::suricata_defaults(),
        &Default::default(),
    )
    .expect("an empty rule set loads");
    let engine = Arc::new(engine);
    let (mut off, mut http, mut on, mut ai) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let mut counters = WorkerCounters::default();
    let mut ai_counters = WorkerCounters::default();
    for _ in 0..RUNS {
        off = off.min(run(&frames, &engine, Parsers::Off).0);
        http = http.min(run(&frames, &engine, Parsers::HttpOnly).0);
        let (s, c) = run(&frames, &engine, Parsers::All);
        on = on.min(s);
        counters = c;
        let (s, c) = run(&frames, &engine, Parsers::AllAi);
        ai = ai.min(s);
        ai_counters = c;
    }
    let a = &counters.app;
    let x = &ai_counters.app.ai;
    let calls: u64 = x.llm_calls.iter().sum();
    let artifacts: u64 = x.artifacts.iter().sum();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "{packets} packets, {cores} cores, 1 worker thread, best of {RUNS}, empty rule set\n\
         app layer off:        {:.2} Mpps ({:.0} ns/packet)\n\
         on, HTTP only:        {:.2} Mpps ({:.0} ns/packet)\n\
         on, HTTP + TLS + DNS: {:.2} Mpps ({:.0} ns/packet), {} http flows, {} transactions, \
         {} tls flows ({} client hellos, {} certificates), {} dns flows ({} messages), {} bytes reassembled\n\
         on, all + AI parsers: {:.2} Mpps ({:.0} ns/packet), {calls} LLM calls ({} streamed), \
         {artifacts} model files ({} pickle, {} safetensors)\n\
         throughput, HTTP only / off: {:.2}; all / off: {:.2}; all / HTTP only (TLS and DNS parsing): {:.2}; \
         all + AI / all (LLM and model parsing): {:.2}",
        packets / off / 1e6,
        off * 1e9 / packets,
        packets / http / 1e6,
        http * 1e9 / packets,
        packets / on / 1e6,
        on * 1e9 / packets,
        a.flows[tollgate::applayer::AppProto::Http as usize],
        a.http.txs,
        a.flows[tollgate::applayer::AppProto::Tls as usize],
        a.tls.client_hellos,
        a.tls.certificates,
        a.flows[tollgate::applayer::AppProto::Dns as usize],
        a.dns.requests + a.dns.responses,
        counters.stream.bytes,
        packets / ai / 1e6,
        ai * 1e9 / packets,
        x.llm_streamed,
        x.artifacts[tollgate::applayer::model::Format::Pickle as usize],
        x.artifacts[tollgate::applayer::model::Format::Safetensors as usize],
        off / http,
        off / on,
        http / on,
        on / ai
    );
}
