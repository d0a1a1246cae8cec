//! Prompt classifier benchmark:
//! - the model alone, one thread: prompts of 512 B, 2 KiB and 8 KiB
//!   (real text: the jailbreak and recorded LLM-API prompts of
//!   ../shared/corpora, read in place, else the generator's chat prompts),
//!   scored as the scorer scores them (every segment), with the shipped
//!   model; the baseline is a raw Hyperscan block scan of the same bytes
//!   for the shipped prompt rules' patterns, in the same process;
//! - end to end: `replay` of a generated capture whose chat calls carry
//!   prompts, one worker, prompt model off (baseline) and on.
//!
//!     cargo bench --bench prompt [-- PACKETS]

mod common;

use hyperscan::prelude::*;
use serde_json::json;
use std::io::Read;
use std::path::Path;
use tollgate::replay::{replay, ReplayConfig};
use tollgate::scoring::prompt::{PromptModel, PromptScratch};
use tollgate::scoring::ScoringConfig;

const RUNS: usize = 3;

/// Real prompt text to cut prompts from.
fn corpus(root: &Path) -> String {
    let mut text = String::new();
    let shared = root.join("../shared/corpora");
    if let Ok(s) = std::fs::read_to_string(shared.join("prompts/inthewild_jailbreak_llms.json")) {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(&s) {
            text.extend(v.iter().map(|p| format!("{p}\n")));
        }
    }
    if let Ok(f) = std::fs::File::open(shared.join("llm-api/recordings.jsonl.gz")) {
        let mut s = String::new();
        if flate2::read::GzDecoder::new(f)
            .read_to_string(&mut s)
            .is_ok()
        {
            for line in s.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                for m in v["request_body"]["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if let Some(c) = m["content"].as_str() {
                        text.push_str(c);
                        text.push('\n');
                    }
                }
            }
        }
    }
    if text.len() < 1 << 20 {
        eprintln!("../shared/corpora not found or small: using generated chat prompts");
        let chat = "Summarise the attached incident report in three bullet points for the \
                    on-call channel. Explain the difference between data parallel and tensor \
                    parallel training in one paragraph.\n";
        while text.len() < 1 << 20 {
            text.push_str(chat);
        }
    }
    text
}

/// `count` prompts of `size` bytes cut from `text` on char boundaries.
fn prompts(text: &str, size: usize, count: usize) -> Vec<Vec<u8>> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(count);
    let mut at = 0;
    while out.len() < count {
        if at + size > b.len() {
            at = 0;
        }
        let mut s = at;
        while !text.is_char_boundary(s) {
            s += 1;
        }
        let mut e = (s + size).min(b.len());
        while !text.is_char_boundary(e) {
            e -= 1;
        }
        out.push(b[s..e].to_vec());
        at = e;
    }
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = PromptModel::load(&root.join("signatures/prompt-model.json")).expect("model");
    let text = corpus(root);
    // The shipped prompt rules' fast patterns, as one block database.
    let pats: Patterns = [
        "previous instructions",
        "do anything now",
        "developer mode",
        "in character",
        "system\\s+prompt",
    ]
    .iter()
    .enumerate()
    .map(|(i, p)| {
        let mut p = Pattern::with_flags(*p, CompileFlags::CASELESS).expect("pattern");
        p.id = Some(i);
        p
    })
    .collect();
    let db: BlockDatabase = pats.build().expect("hyperscan");
    let hs = db.alloc_scratch().expect("scratch");

    let mut rows = Vec::new();
    let mut s = PromptScratch::default();
    for size in [512usize, 2048, 8192] {
        let count = (4 << 20) / size;
        let ps = prompts(&text, size, count);
        let bytes: usize = ps.iter().map(Vec::len).sum();
        let (scan_s, hits) = common::best(RUNS, || {
            let mut hits = 0u64;
            for p in &ps {
                let _ = db.scan(p, &hs, |_, _, _, _| {
                    hits += 1;
                    Matching::Continue
                });
            }
            hits
        });
        let (model_s, alerts) = common::best(RUNS, || {
            ps.iter()
                .filter(|p| model.score_prompt(p, &mut s).0.probability >= model.threshold)
                .count()
        });
        rows.push(json!({
            "prompt_bytes": size,
            "prompts": count,
            "model_prompts_per_second": count as f64 / model_s,
            "model_mb_per_second": bytes as f64 / model_s / 1e6,
            "model_us_per_prompt": model_s * 1e6 / count as f64,
            "alerts": alerts,
            "hyperscan_prompts_per_second": count as f64 / scan_s,
            "hyperscan_hits": hits,
            "model_time_vs_hyperscan_scan": model_s / scan_s,
        }));
    }

    // End to end: the generated capture (its chat calls carry prompts),
    // replayed with one worker, the prompt model off and on.
    let target = common::target_packets();
    let cap = common::generated(5, target);
    let packets = cap.sorted().len();
    let dir = std::env::temp_dir().join(format!("tollgate-bench-prompt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // The shipped rules: the app layer (and so the LLM-API parser) runs
    // behind the rule engine.
    let base = ReplayConfig {
        engine: Some(common::load_rules(&root.join("signatures"))),
        ..common::one_worker_replay(&dir, &cap)
    };
    let (off_s, _) = common::best(RUNS, || replay(&base, |_, _, _| {}).expect("replay"));
    let on = ReplayConfig {
        scoring: ScoringConfig {
            prompt_model: Some(root.join("signatures/prompt-model.json")),
            core: Some(1),
            ..ScoringConfig::default()
        },
        ..base.clone()
    };
    let (on_s, rep) = common::best(RUNS, || replay(&on, |_, _, _| {}).expect("replay"));
    let _ = std::fs::remove_dir_all(&dir);
    let lost: u64 = rep.workers.iter().map(|w| w.scoring.prompts_dropped).sum();
    let p = rep.scoring.and_then(|s| s.prompts).expect("prompt report");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let out = json!({
        "machine": {"cores": cores},
        "model": {"file": model.name, "analyzers": model.describe(), "coefficients": model.coefficients},
        "runs_per_figure": RUNS,
        "model_alone": rows,
        "end_to_end": {
            "packets": packets,
            "prompt_model_off_pps": packets as f64 / off_s,
            "prompt_model_on_pps": packets as f64 / on_s,
            "ratio_on_to_off": off_s / on_s,
            "prompts_scored": p.tally.scored,
            "prompts_lost_ring_full": lost,
            "prompt_alerts": p.tally.alerts,
            "scorer_ns_per_prompt": {"p50": p.ns_p50, "p99": p.ns_p99},
        },
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    println!();
    println!("{cores} cores, best of {RUNS}; model {}", model.describe());
    println!();
    println!("| prompt | prompts/s (one core) | MB/s | µs/prompt | time vs Hyperscan scan of the same bytes |");
    println!("|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} B | {:.0} | {:.1} | {:.1} | {:.1}x |",
            r["prompt_bytes"],
            r["model_prompts_per_second"].as_f64().unwrap_or(0.0),
            r["model_mb_per_second"].as_f64().unwrap_or(0.0),
            r["model_us_per_prompt"].as_f64().unwrap_or(0.0),
            r["model_time_vs_hyperscan_scan"].as_f64().unwrap_or(0.0),
        );
    }
    println!();
    println!("| replay, 1 worker, {packets} packets | Mpps | vs prompt model off |");
    println!("|---|---:|---:|");
    println!(
        "| prompt model off (baseline) | {:.3} | 1.00 |",
        packets as f64 / off_s / 1e6
    );
    println!(
        "| prompt model on (scorer on core 1; {} prompts scored, {lost} lost) | {:.3} | {:.2} |",
        p.tally.scored,
        packets as f64 / on_s / 1e6,
        off_s / on_s
    );
}
