//! The command line: flags as ARCHITECTURE.md's contract names them, parsed
//! with clap, and value parsers that say what they expected. Every problem
//! becomes one line and exit code 2 in `main`.

use crate::defrag::DefragConfig;
use crate::flow::{Timeouts, MAX_WORKERS};
use crate::reassembly::{ChecksumMode, StreamConfig};
use crate::replay::{ReplayConfig, Speed};
use crate::scoring::{ScoreAction, ScoringConfig};
use crate::worker::{ExceptionPolicy, MalformedPolicy, Mode};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// The version line: ours, and the system libraries found at build time.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (DPDK ",
    env!("TOLLGATE_DPDK_VERSION"),
    ", Hyperscan ",
    env!("TOLLGATE_HYPERSCAN_VERSION"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version = VERSION,
    about = "Inline inspection for the ingress of AI factories",
    long_about = "Tollgate inspects the traffic going into and out of AI workloads: \
                  it decodes, tracks flows and writes EVE JSON that Suricata-aware SIEMs read."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay pcap/pcapng captures through the worker pipeline.
    Replay(ReplayArgs),
    /// Run on NIC ports through DPDK: one port IDS, two ports IPS (bump in the
    /// wire). EAL arguments (lcores, PCI allow-list, vdevs) go after `--`.
    Run(RunArgs),
    /// Generate AI-ingestion traffic: a capture and its ground truth.
    Gen(GenArgs),
    /// Work with rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Work with segmentation policy files (`--policy`).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The flow features models score: name, unit and how each is computed.
    Features(FeaturesArgs),
    /// Shell completions on standard output (bash, zsh, fish, elvish,
    /// powershell): `tollgate completions bash > /etc/bash_completion.d/tollgate`.
    Completions(CompletionsArgs),
    /// Ask a running tollgate to reload its rules and model (what SIGUSR2
    /// does) over its control socket, and print the outcome: exit 0 when
    /// the new rules are in, 1 when they were refused (the old ones stay).
    Reload(ReloadArgs),
    /// Man pages (roff): tollgate's, or one command's, on standard output
    /// (`tollgate man replay > tollgate-replay.1`), or every page into a
    /// folder (`tollgate man --dir /usr/local/share/man/man1`).
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (replay, run, gen, rules …).
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Option<String>,
    /// Write tollgate.1 and a page per command into this folder.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// The socket the running tollgate was started with
    /// (`--control-socket`).
    #[arg(long, value_name = "PATH")]
    pub control_socket: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Names only, one per line, in record order (what a model's
    /// feature_names must use).
    #[arg(long)]
    pub names: bool,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Parse and compile rules; report what loads, what is skipped and why.
    Check(RulesCheckArgs),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy: print its zones and rules, the zones that lie
    /// inside others (and which wins), and rules no flow can reach. Exit 2
    /// with file:line when it would be refused.
    Check(PolicyCheckArgs),
}

#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// The policy file (YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RulesCheckArgs {
    /// Rule files, or folders of .rules files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// A vars file: NAME=VALUE lines, or suricata.yaml's address-groups /
    /// port-groups lines (--set-var overrides it).
    #[arg(long, value_name = "FILE")]
    pub vars: Option<PathBuf>,

    /// Set a rule variable, e.g. HOME_NET=[10.0.0.0/8] (repeatable).
    #[arg(long = "set-var", value_name = "NAME=VALUE")]
    pub set_var: Vec<String>,

    /// A classification file (repeatable, merged; default: the
    /// classification.config beside each rules path, merged).
    #[arg(long, value_name = "FILE")]
    pub classification: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// The capture to write (pcap).
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,

    /// The ground truth, one JSON line per flow (default: OUT.truth.jsonl).
    #[arg(long, value_name = "PATH")]
    pub truth: Option<PathBuf>,

    /// Same seed, same bytes.
    #[arg(long, default_value = "1")]
    pub seed: u64,

    /// Flows to generate.
    #[arg(long, value_name = "N", default_value = "1000", value_parser = parse_flows)]
    pub flows: usize,

    /// Keep adding flows until the capture holds at least N packets.
    #[arg(long, value_name = "N", value_parser = parse_flows)]
    pub packets: Option<usize>,

    /// Spread flow starts over this much capture time.
    #[arg(long, value_name = "D", default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Add labelled attack behaviours: `all`, or NAME=SHARE,… (instances
    /// per benign flow) of exfiltration, beaconing, scan,
    /// credential_stuffing, model_theft, data_poisoning. The benign flows
    /// stay those of the same seed without.
    #[arg(long, value_name = "SPEC", value_parser = crate::gen::attacks::AttackMix::parse)]
    pub attacks: Option<crate::gen::attacks::AttackMix>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Observe only: every packet passes.
    Ids,
    /// Inline: forward, and drop by policy and verdict.
    Ips,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MalformedArg {
    /// Count undecodable packets and pass them.
    Pass,
    /// Count and drop them (needs --mode ips).
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// What a flow the segmentation policy denies meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyActionArg {
    /// An alert, and inline (`--mode ips`) its packets dropped.
    Drop,
    /// An alert only.
    Alert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XffArg {
    Off,
    ExtraData,
    Overwrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XffDeploymentArg {
    Reverse,
    Forward,
}

/// A list of core ids, like `0,2,4-7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreList(pub Vec<usize>);

/// Flags of the worker pipeline, the same under `replay` and `run`.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// A YAML file of flags: each key a long flag of this command without
    /// its dashes (`eve: /var/log/tollgate/eve.json`, `mode: ips`), a list
    /// for a flag given several times, true for a switch. A flag on the
    /// command line overrides the file's.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Enforce a segmentation policy: zones by VLAN, VNI and prefix and
    /// rules between them (YAML; the README's "Segmentation policy";
    /// check one with `tollgate policy check FILE`). Flows between zones
    /// are denied unless a rule allows them; SIGUSR2 reloads the file.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// What a flow the policy denies meets: drop (an alert, and inline its
    /// packets dropped, counted as `policy`) or alert (an alert only).
    #[arg(long, value_enum, default_value = "drop")]
    pub policy_action: PolicyActionArg,

    /// Listen for commands on a Unix socket at PATH (mode 0600):
    /// `tollgate reload --control-socket PATH` reloads the rules and model
    /// as SIGUSR2 does and prints the outcome.
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,

    /// Serve Prometheus metrics (the stats JSON's counters, per worker
    /// labelled) at http://ADDR:PORT/metrics; `127.0.0.1:0` picks a port,
    /// said on stderr.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,

    /// Observe only (ids) or forward and drop (ips).
    #[arg(long, value_enum, default_value = "ids")]
    pub mode: ModeArg,

    /// Write EVE JSON (one event per line) to TARGET: a file, appended to
    /// (SIGHUP reopens it, for logrotate); `-`, standard output;
    /// `unix:PATH` or `unix-dgram:PATH`, a datagram per event to a Unix
    /// socket; `unix-stream:PATH`, lines on a Unix stream socket;
    /// `redis://HOST[:PORT][/KEY][?mode=lpush|rpush|publish]`, each event
    /// pushed onto the list KEY (default `tollgate`, LPUSH) or published on
    /// the channel KEY. A socket or Redis that is slow or gone loses events,
    /// counted under `eve.sink` in the stats, and is retried every second;
    /// it never stalls a worker.
    #[arg(long, value_name = "TARGET", value_parser = parse_eve_target)]
    pub eve: Option<PathBuf>,

    /// EVE events reach the output within this, and whenever the rings
    /// run dry.
    #[arg(long, value_name = "D", default_value = "1s", value_parser = parse_eve_flush)]
    pub eve_flush: Duration,

    /// The EVE event types to write: `all`, or a comma-separated list of
    /// alert, anomaly, flow, http, dns, tls, fileinfo, stats (as the
    /// `types:` of Suricata's eve-log). Events of other types are never
    /// built; an `engine` event (alerts lost) is always written.
    #[arg(long, value_name = "LIST", default_value = "all")]
    pub eve_types: crate::events::EveTypes,

    /// Write Tollgate's own fields (the `tollgate` object); off, every
    /// event is Suricata's EVE schema alone.
    #[arg(long, value_enum, default_value = "on", value_name = "on|off")]
    pub eve_extensions: OnOff,

    /// Add the Community ID (v1) of each event's flow, as Suricata's
    /// `community-id: yes`.
    #[arg(long)]
    pub community_id: bool,

    /// The Community ID seed (0 unless every sensor uses another).
    #[arg(long, value_name = "N", default_value = "0")]
    pub community_id_seed: u16,

    /// Where datasets' `save` and `state` files are written (and `state`
    /// files read): a rule may name files in it only, by relative paths.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub data_dir: PathBuf,

    /// The client behind a proxy, from the X-Forwarded-For header of an
    /// HTTP transaction: added to its alerts and `http` events as `xff`
    /// (extra-data), or written in place of the client's address
    /// (overwrite), as Suricata's `xff` option.
    #[arg(long, value_enum, default_value = "off")]
    pub xff: XffArg,

    /// Which address of the header's list is the client's: the last
    /// (reverse: a reverse proxy in front of the servers) or the first
    /// (forward: clients behind a forward proxy).
    #[arg(long, value_enum, default_value = "reverse")]
    pub xff_deployment: XffDeploymentArg,

    /// The header that names the client (`X-Real-IP`,
    /// `True-Client-IP` …).
    #[arg(long, value_name = "NAME", default_value = "X-Forwarded-For")]
    pub xff_header: String,

    /// Write the final counters as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,

    /// Print a stats line to stderr, and write an EVE `stats` event, this
    /// often (0 = off); with EVE, a last stats event at the end.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = parse_duration)]
    pub stats_interval: Duration,

    /// Flows each worker can track at once (preallocated).
    #[arg(long, value_name = "N", default_value = "65536", value_parser = parse_flow_capacity)]
    pub flow_capacity: usize,

    /// Idle timeout for flows not yet established.
    #[arg(long, value_name = "D", default_value = "30s", value_parser = parse_duration)]
    pub new_timeout: Duration,

    /// Idle timeout for established flows.
    #[arg(long, value_name = "D", default_value = "300s", value_parser = parse_duration)]
    pub established_timeout: Duration,

    /// How long a closed TCP flow is kept for late packets.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = parse_duration)]
    pub closed_timeout: Duration,

    /// What to do with packets that do not decode.
    #[arg(long, value_enum, default_value = "pass")]
    pub malformed: MalformedArg,

    /// Memory for IP fragment reassembly per worker (`16MiB`, `1gb`, bytes):
    /// trackers, fragment entries and the fragments' bytes in 256-byte
    /// chunks; the oldest incomplete datagrams give way when it runs out.
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_bytes)]
    pub defrag_memcap: usize,

    /// Drop a datagram still incomplete this long after its first fragment.
    #[arg(long, value_name = "D", default_value = "30s", value_parser = parse_duration)]
    pub defrag_timeout: Duration,

    /// Which copy of overlapping IPv4 fragments the receiving hosts keep:
    /// linux (since 4.19: a duplicate is ignored, any other overlap
    /// discards the datagram; IPv6 always does this), or one of
    /// Suricata's: old-linux, bsd, bsd-right, windows, solaris, first,
    /// last. Inline, the first copy wins and a changing one is dropped.
    #[arg(long, value_name = "POLICY", default_value = "linux", value_parser = parse_defrag_policy)]
    pub defrag_policy: crate::defrag::DefragPolicy,

    /// Memory per worker for TCP stream sessions and their Hyperscan stream
    /// state (one session per reassembled flow direction).
    #[arg(long, value_name = "BYTES", default_value = "32MiB", value_parser = parse_bytes)]
    pub stream_memcap: usize,

    /// Memory per worker for reassembly buffers: each direction's retained
    /// window and the out-of-order segments it holds.
    #[arg(long, value_name = "BYTES", default_value = "128MiB", value_parser = parse_bytes)]
    pub reassembly_memcap: usize,

    /// Bytes per flow direction reassembled and matched as a stream (0: no
    /// limit); past it, stream rules see nothing more of that direction.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_bytes)]
    pub stream_depth: usize,

    /// Bytes of each direction kept for confirming stream rules (their
    /// other contents, positions, pcre), at least 64.
    #[arg(long, value_name = "BYTES", default_value = "4KiB", value_parser = parse_stream_window)]
    pub stream_window: usize,

    /// VLAN ids are part of a flow's key (on, Suricata's default) or not
    /// (off: one flow whatever tags its packets carry, for taps that see
    /// the two directions tagged differently; vlan.use-for-tracking).
    #[arg(long, value_enum, default_value = "on", value_name = "on|off")]
    pub vlan_tracking: OnOff,

    /// Parse application protocols (HTTP/1.x, TLS handshakes, DNS over
    /// TCP and UDP): off leaves every flow to stream and packet rules, and
    /// rules on app-layer buffers never match.
    #[arg(long, value_enum, default_value = "on", value_name = "on|off")]
    pub app_layer: OnOff,

    /// JA3, JA3S and JA4 of TLS handshakes in EVE `tls` objects (rules on
    /// ja3.hash, ja4.hash … match either way), as Suricata 8's
    /// app-layer.protocols.tls.ja3-fingerprints and ja4-fingerprints.
    #[arg(long, value_enum, default_value = "on", value_name = "on|off")]
    pub tls_fingerprints: OnOff,

    /// Read LLM-API JSON (prompts, completions, model, tools) and model
    /// files (pickles, PyTorch zips, safetensors …) in HTTP bodies: the
    /// llm.* and pickle.* buffers, and the `llm` and `artifact` objects
    /// under `tollgate` in EVE. On keeps every HTTP body up to
    /// --http-body-limit; off leaves those buffers absent.
    #[arg(long, value_enum, default_value = "on", value_name = "on|off")]
    pub ai_inspect: OnOff,

    /// Write prompt and completion text (up to 8 KiB each) into the EVE
    /// `llm` object. Off by default: prompts are customer data.
    #[arg(long)]
    pub eve_llm_text: bool,

    /// Memory per worker for app-layer parser state and the heads and
    /// bodies of transactions; a flow that cannot get a parser slot is
    /// left to stream rules and counted.
    #[arg(long, value_name = "BYTES", default_value = "64MiB", value_parser = parse_bytes)]
    pub applayer_memcap: usize,

    /// Body bytes inspected per HTTP transaction and direction, after
    /// de-chunking and decompression (Suricata's request-body-limit and
    /// response-body-limit); past it the body is counted as cut.
    #[arg(long, value_name = "BYTES", default_value = "100KiB", value_parser = parse_bytes)]
    pub http_body_limit: usize,

    /// File hashes to compute and log in fileinfo events, beside those a
    /// loaded rule tests (`filemd5` …): a list of md5, sha1, sha256.
    #[arg(long, value_name = "LIST", value_parser = parse_file_hashes, default_value = "")]
    pub file_hashes: u8,

    /// Decoded bytes per compressed byte past which an HTTP body's
    /// decompression stops (a decompression bomb), checked once 16 KiB
    /// are decoded.
    #[arg(long, value_name = "N", default_value = "512", value_parser = clap::value_parser!(u32).range(1..))]
    pub http_decompress_ratio: u32,

    /// Reassemble TCP flows whose handshake was not seen, from the first
    /// byte seen (off: their stream rules match packet by packet).
    #[arg(long, value_enum, default_value = "off", value_name = "on|off")]
    pub midstream: OnOff,

    /// Verify IPv4 header and TCP checksums before a packet is believed:
    /// auto stops verifying when a capture shows offloaded (unfilled)
    /// checksums.
    #[arg(long, value_enum, default_value = "auto", value_name = "auto|on|off")]
    pub checksum: ChecksumArg,

    /// Which copy of overlapping TCP data a receiving host keeps (Suricata's
    /// host-os-policy): POLICY for every host, or PREFIX=POLICY for some
    /// (repeatable, longest prefix wins), e.g. `10.20.0.0/16=windows`.
    /// Policies: first, last, linux (the default), old-linux, bsd,
    /// bsd-right, windows, windows2k3, vista, solaris, old-solaris, hpux10,
    /// hpux11, irix, macos. Inline, the first copy always wins.
    #[arg(long, value_name = "[PREFIX=]POLICY")]
    pub stream_policy: Vec<String>,

    /// TCP urgent data: taken out of the stream as Linux does (oob), kept
    /// (inline), taken out with matching restarted after it (gap), or
    /// dropped with its packet inline (drop).
    #[arg(long, value_name = "inline|oob|gap|drop", default_value = "oob", value_parser = parse_urgent)]
    pub stream_urgent: crate::reassembly::policy::UrgentPolicy,

    /// What happens to traffic that cannot be inspected whole (a stream or
    /// a datagram lost to memory pressure): auto drops its flow inline and
    /// lets it pass observing (Suricata's exception-policy auto).
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        value_name = "auto|drop-flow|drop-packet|pass"
    )]
    pub exception_policy: ExceptionArg,

    /// A flow model that scores every flow's feature record: an XGBoost
    /// model (`Booster.save_model("model.json")`; the shipped one is
    /// signatures/flow-model.json) or an anomaly detector's saved state
    /// (--anomaly-state), told apart by content; SIGUSR2 reloads it.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// A score at or above this raises an EVE alert (default: the
    /// threshold the model file was trained for, else 0.9).
    #[arg(long, value_name = "X", value_parser = parse_threshold)]
    pub score_threshold: Option<f32>,

    /// Run the anomaly detector (Half-Space Trees) with its state in FILE:
    /// loaded when FILE exists, else learnt from the traffic; saved at
    /// exit and at each SIGUSR2.
    #[arg(long, value_name = "FILE")]
    pub anomaly_state: Option<PathBuf>,

    /// Records in one anomaly detector window: it learns over the first,
    /// sets its threshold over the second, then alerts.
    #[arg(long, value_name = "RECORDS", default_value = "10000")]
    pub learn_window: u64,

    /// An anomaly score at or above this raises an alert (default: the
    /// threshold the detector set while learning).
    #[arg(long, value_name = "X", value_parser = parse_probability)]
    pub anomaly_threshold: Option<f32>,

    /// Clients the scorer's per-host table holds, for the host features
    /// (each takes about 0.9 KiB; 0: none).
    #[arg(long, value_name = "N", default_value = "16384")]
    pub host_table: usize,

    /// What a high score does besides the alert: with `--mode ips`, drop
    /// drops the flow's later packets.
    #[arg(long, value_enum, default_value = "alert", value_name = "alert|drop")]
    pub score_action: ScoreActionArg,

    /// Core to pin the scorer thread to.
    #[arg(long, value_name = "N")]
    pub scorer_core: Option<usize>,

    /// Send a flow's feature record each time it carries this many more
    /// bytes (a long upload is scored while it runs).
    #[arg(long, value_name = "BYTES", default_value = "10MiB", value_parser = parse_bytes)]
    pub feature_bytes: usize,

    /// Send a flow's feature record when this long has passed since its
    /// last one.
    #[arg(long, value_name = "D", default_value = "60s", value_parser = parse_duration)]
    pub feature_interval: Duration,

    /// Send an early feature record after a flow's first N packets (0:
    /// none), so that an inline verdict (--score-action drop) still finds
    /// the flow running.
    #[arg(long, value_name = "N", default_value = "0")]
    pub feature_packets: u32,

    /// Write every feature record as a JSON line (flow id, tuple, features
    /// by name), for training.
    #[arg(long, value_name = "FILE.jsonl")]
    pub features_out: Option<PathBuf>,

    /// A prompt classifier (`scripts/train_prompt_model.py`; the shipped
    /// one is signatures/prompt-model.json) that scores every LLM
    /// request's prompt; SIGUSR2 reloads it.
    #[arg(long, value_name = "FILE")]
    pub prompt_model: Option<PathBuf>,

    /// A prompt scoring at or above this raises an EVE alert (default: the
    /// threshold the model file was trained for).
    #[arg(long, value_name = "X", value_parser = parse_probability)]
    pub prompt_threshold: Option<f32>,

    /// Score up to this many bytes of a prompt's head; a longer prompt
    /// also sends its last quarter of this.
    #[arg(long, value_name = "BYTES", default_value = "8KiB", value_parser = parse_bytes)]
    pub prompt_bytes: usize,

    /// Prompt records each worker has for the scorer (each holds
    /// --prompt-bytes and a quarter more, allocated at start): how big a
    /// burst of prompts waits for the scorer before prompts are dropped.
    #[arg(long, value_name = "N", default_value = "256")]
    pub prompt_ring: usize,

    /// Rule files or folders (repeatable; default: the shipped rules, found
    /// beside the binary, in /usr/share/tollgate/signatures, or in the
    /// source tree it was built from).
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,

    /// A vars file: NAME=VALUE lines, or suricata.yaml's address-groups /
    /// port-groups lines (--set-var overrides it).
    #[arg(long, value_name = "FILE")]
    pub vars: Option<PathBuf>,

    /// Set a rule variable, e.g. HOME_NET=[10.0.0.0/8] (repeatable).
    #[arg(long = "set-var", value_name = "NAME=VALUE")]
    pub set_var: Vec<String>,

    /// A classification file (repeatable, merged; default: the
    /// classification.config beside each rules path, merged).
    #[arg(long, value_name = "FILE")]
    pub classification: Vec<PathBuf>,

    /// A rule the engine cannot evaluate yet: skip it (summed up at start)
    /// or refuse to start, naming each such rule.
    #[arg(long, value_enum, default_value = "skip", value_name = "skip|error")]
    pub rules_unsupported: Unsupported,

    /// Keyword evaluations one rule may take on one packet or stream window
    /// (Suricata's detect.inspection-recursion-limit); past it the rule does
    /// not match and `rules.recursion_limit` counts it.
    #[arg(long, value_name = "N", default_value = "3000", value_parser = parse_limit)]
    pub inspection_recursion_limit: u32,

    /// PCRE2 backtracking steps one pcre match may take (Suricata's
    /// pcre.match-limit); past it, no match, counted in `rules.pcre_limit`.
    #[arg(long, value_name = "N", default_value = "3500", value_parser = parse_limit)]
    pub pcre_match_limit: u32,

    /// How deep one pcre match may backtrack (Suricata's
    /// pcre.match-limit-recursion, PCRE2's depth limit).
    #[arg(long, value_name = "N", default_value = "1500", value_parser = parse_limit)]
    pub pcre_match_limit_recursion: u32,

    /// Alerts logged per packet at most (Suricata's packet-alert-max); every
    /// rule is still evaluated and a drop still drops.
    #[arg(long, value_name = "N", default_value = "15", value_parser = parse_alert_max)]
    pub packet_alert_max: usize,
}

fn parse_limit(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=100_000_000).contains(&n) => Ok(n),
        _ => Err("expected a whole number from 1 to 100000000".into()),
    }
}

fn parse_alert_max(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err("expected a whole number of alerts from 1 to 1000".into()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScoreActionArg {
    Alert,
    Drop,
}

fn parse_threshold(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("`{s}`: expected a number such as 0.9")),
    }
}

fn parse_probability(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
        _ => Err(format!(
            "`{s}`: expected a probability above 0 and at most 1, such as 0.8"
        )),
    }
}

fn parse_defrag_policy(s: &str) -> Result<crate::defrag::DefragPolicy, String> {
    crate::defrag::DefragPolicy::parse(s).ok_or_else(|| {
        let names: Vec<&str> = crate::defrag::DefragPolicy::ALL
            .iter()
            .map(|p| p.name())
            .collect();
        format!("expected one of {}", names.join(", "))
    })
}

fn parse_urgent(s: &str) -> Result<crate::reassembly::policy::UrgentPolicy, String> {
    crate::reassembly::policy::UrgentPolicy::parse(s)
        .ok_or_else(|| "expected inline, oob, gap or drop".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExceptionArg {
    Auto,
    DropFlow,
    DropPacket,
    Pass,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChecksumArg {
    Auto,
    On,
    Off,
}

fn parse_stream_window(s: &str) -> Result<usize, String> {
    let n = parse_bytes(s)?;
    if !(64..=1 << 24).contains(&n) {
        return Err(format!("`{s}`: expected 64 bytes to 16MiB"));
    }
    Ok(n)
}

/// What an unsupported rule does at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Unsupported {
    Skip,
    Error,
}

/// The pipeline settings every worker gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineSettings {
    pub app: crate::applayer::AppConfig,
    pub vlan_tracking: bool,
    pub mode: Mode,
    pub malformed: MalformedPolicy,
    pub timeouts: Timeouts,
    pub defrag: DefragConfig,
    pub stream: StreamConfig,
    pub checksum: ChecksumMode,
    pub exception: ExceptionPolicy,
}

fn parse_file_hashes(s: &str) -> Result<u8, String> {
    use crate::applayer::http::hash;
    let mut bits = 0;
    for h in s.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        bits |= match h {
            "md5" => hash::MD5,
            "sha1" => hash::SHA1,
            "sha256" => hash::SHA256,
            other => return Err(format!("`{other}`: expected md5, sha1 or sha256")),
        };
    }
    Ok(bits)
}

fn parse_eve_target(s: &str) -> Result<PathBuf, String> {
    crate::eve::sink::Target::parse(s).map(|_| PathBuf::from(s))
}

fn parse_eve_flush(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(3600) {
        return Err("expected a flush interval from 1ms to 1h".into());
    }
    Ok(d)
}

impl PipelineArgs {
    /// The EVE writer's settings; `reopen` is the flag SIGHUP sets.
    pub fn eve_settings(
        &self,
        reopen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> crate::eve::EveSettings {
        crate::eve::EveSettings {
            types: self.eve_types,
            flush: self.eve_flush,
            extensions: self.eve_extensions == OnOff::On,
            community_id: self.community_id.then_some(self.community_id_seed),
            xff: match self.xff {
                XffArg::Off => crate::eve::XffMode::Off,
                XffArg::ExtraData => crate::eve::XffMode::ExtraData,
                XffArg::Overwrite => crate::eve::XffMode::Overwrite,
            },
            stats: (!self.stats_interval.is_zero()).then_some(self.stats_interval),
            reopen,
        }
    }

    /// The scoring stage's settings, checked.
    pub fn scoring(&self, available_cores: &[usize]) -> Result<ScoringConfig, String> {
        let action = match self.score_action {
            ScoreActionArg::Alert => ScoreAction::Alert,
            ScoreActionArg::Drop if self.mode == ModeArg::Ips => ScoreAction::Drop,
            ScoreActionArg::Drop => {
                return Err("--score-action drop needs --mode ips: an IDS never drops".into())
            }
        };
        if action == ScoreAction::Drop
            && self.model.is_none()
            && self.prompt_model.is_none()
            && self.anomaly_state.is_none()
        {
            return Err(
                "--score-action drop needs a --model, an --anomaly-state or a --prompt-model"
                    .into(),
            );
        }
        if self.prompt_model.is_some() && self.ai_inspect != OnOff::On {
            return Err(
                "--prompt-model needs --ai-inspect on: prompts come from its LLM-API parser".into(),
            );
        }
        if !(1..=100_000_000).contains(&self.learn_window) {
            return Err(format!(
                "--learn-window: {} is out of range: expected 1 to 100000000 records",
                self.learn_window
            ));
        }
        if self.host_table > 1 << 22 {
            return Err(format!(
                "--host-table: {} is out of range: expected 0 to 4194304 clients",
                self.host_table
            ));
        }
        if !(1..=65_536).contains(&self.prompt_ring) {
            return Err(format!(
                "--prompt-ring: {} is out of range: expected 1 to 65536 records",
                self.prompt_ring
            ));
        }
        if !(64..=1 << 20).contains(&self.prompt_bytes) {
            return Err(format!(
                "--prompt-bytes: {} is out of range: expected 64 bytes to 1MiB",
                self.prompt_bytes
            ));
        }
        if let Some(c) = self.scorer_core {
            if !available_cores.is_empty() && !available_cores.contains(&c) {
                return Err(format!(
                    "--scorer-core: core {c} is not available here (available: {})",
                    format_core_list(available_cores)
                ));
            }
        }
        Ok(ScoringConfig {
            model: self.model.clone(),
            threshold: self.score_threshold,
            anomaly_state: self.anomaly_state.clone(),
            learn_window: self.learn_window,
            anomaly_threshold: self.anomaly_threshold,
            host_table: self.host_table,
            action,
            core: self.scorer_core,
            feature_bytes: (self.feature_bytes as u64).max(1),
            feature_interval_ns: u64::try_from(self.feature_interval.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
            feature_packets: self.feature_packets,
            features_out: self.features_out.clone(),
            prompt_model: self.prompt_model.clone(),
            prompt_threshold: self.prompt_threshold,
            prompt_bytes: self.prompt_bytes,
            prompt_ring: self.prompt_ring,
        })
    }

    /// The rule engine's limits.
    pub fn detect(&self) -> crate::detect::DetectConfig {
        crate::detect::DetectConfig {
            pcre: crate::detect::PcreLimits {
                match_limit: self.pcre_match_limit,
                depth_limit: self.pcre_match_limit_recursion,
            },
            recursion_limit: self.inspection_recursion_limit,
            packet_alert_max: self.packet_alert_max,
            data_dir: self.data_dir.clone(),
        }
    }

    pub fn settings(&self) -> Result<PipelineSettings, String> {
        let mode = match self.mode {
            ModeArg::Ids => Mode::Ids,
            ModeArg::Ips => Mode::Ips,
        };
        let malformed = match self.malformed {
            MalformedArg::Pass => MalformedPolicy::Pass,
            MalformedArg::Drop if mode == Mode::Ips => MalformedPolicy::Drop,
            MalformedArg::Drop => {
                return Err("--malformed drop needs --mode ips: an IDS never drops".into())
            }
        };
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let xff = match self.xff {
            XffArg::Off => None,
            _ => Some(
                crate::applayer::http::xff::Xff::new(
                    &self.xff_header,
                    self.xff_deployment == XffDeploymentArg::Forward,
                )
                .map_err(|e| format!("--xff-header: {e}"))?,
            ),
        };
        let policies = crate::reassembly::policy::HostPolicies::parse(&self.stream_policy)
            .map_err(|e| format!("--stream-policy: {e}"))?;
        let exception = match (self.exception_policy, mode) {
            (ExceptionArg::Auto, Mode::Ips) | (ExceptionArg::DropFlow, _) => {
                ExceptionPolicy::DropFlow
            }
            (ExceptionArg::DropPacket, _) => ExceptionPolicy::DropPacket,
            (ExceptionArg::Auto, Mode::Ids) | (ExceptionArg::Pass, _) => ExceptionPolicy::Pass,
        };
        Ok(PipelineSettings {
            vlan_tracking: self.vlan_tracking == OnOff::On,
            app: crate::applayer::AppConfig {
                enabled: self.app_layer == OnOff::On,
                memcap: self.applayer_memcap,
                tls_fingerprints: self.tls_fingerprints == OnOff::On,
                tls: true,
                dns: true,
                http: crate::applayer::http::HttpConfig {
                    body_limit: self.http_body_limit,
                    ratio_cap: self.http_decompress_ratio,
                    hashes: self.file_hashes,
                    xff,
                    ai: self.ai_inspect == OnOff::On,
                    llm_text: self.eve_llm_text,
                    ..Default::default()
                },
            },
            stream: StreamConfig {
                enabled: true,
                memcap: self.stream_memcap,
                reassembly_memcap: self.reassembly_memcap,
                depth: self.stream_depth as u64,
                window: self.stream_window,
                midstream: self.midstream == OnOff::On,
                policies,
                urgent: self.stream_urgent,
                inline: mode == Mode::Ips,
            },
            exception,
            checksum: match self.checksum {
                ChecksumArg::Auto => ChecksumMode::Auto,
                ChecksumArg::On => ChecksumMode::On,
                ChecksumArg::Off => ChecksumMode::Off,
            },
            defrag: DefragConfig {
                memcap: self.defrag_memcap,
                timeout_ns: ns(self.defrag_timeout),
                policy: self.defrag_policy,
                inline: mode == Mode::Ips,
            },
            mode,
            malformed,
            timeouts: Timeouts {
                new_ns: ns(self.new_timeout),
                established_ns: ns(self.established_timeout),
                closed_ns: ns(self.closed_timeout),
            },
        })
    }
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng, Ethernet), replayed one after another.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Worker threads (default: one per --cores entry, else 1).
    #[arg(long, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,

    /// Cores to pin the workers to, one per worker: `0,2,4-7`.
    #[arg(long, value_name = "LIST", value_parser = parse_core_list)]
    pub cores: Option<CoreList>,

    #[command(flatten)]
    pub pipeline: PipelineArgs,

    /// `max`, or a multiple of the capture's own timing (1 = real time).
    #[arg(long, value_name = "max|X", default_value = "max", value_parser = parse_speed)]
    pub speed: Speed,

    /// Replay the files K times, shifting timestamps and addresses each pass.
    #[arg(long = "loop", value_name = "K", default_value = "1", value_parser = parse_loops)]
    pub loops: u16,
}

impl ReplayArgs {
    /// Checks the flags against each other and the machine, and builds the
    /// replay configuration.
    pub fn to_config(&self, available_cores: &[usize]) -> Result<ReplayConfig, String> {
        let cores = self.cores.as_ref().map(|c| c.0.clone()).unwrap_or_default();
        let workers = match (self.workers, cores.len()) {
            (Some(w), 0) => w,
            (None, 0) => 1,
            (None, n) => n,
            (Some(w), n) if w == n => w,
            (Some(w), n) => {
                return Err(format!(
                    "--cores names {n} core(s) for --workers {w}: give one core per worker"
                ))
            }
        };
        if workers > MAX_WORKERS {
            return Err(format!(
                "--cores names {workers} cores; at most {MAX_WORKERS} workers"
            ));
        }
        for c in &cores {
            if !available_cores.contains(c) {
                return Err(format!(
                    "--cores: core {c} is not available here (available: {})",
                    format_core_list(available_cores)
                ));
            }
        }
        let p = self.pipeline.settings()?;
        let scoring = self.pipeline.scoring(available_cores)?;
        Ok(ReplayConfig {
            scoring,
            reload: crate::scoring::reload_flag(),
            rules_reload: None,
            policy: None,
            eve_settings: self.pipeline.eve_settings(Default::default()),
            stop: Default::default(),
            files: self.files.clone(),
            workers,
            cores,
            mode: p.mode,
            eve: self.pipeline.eve.clone(),
            flow_capacity: self.pipeline.flow_capacity,
            timeouts: p.timeouts,
            defrag: p.defrag,
            stream: p.stream,
            app: p.app,
            vlan_tracking: p.vlan_tracking,
            checksum: p.checksum,
            exception: p.exception,
            speed: self.speed,
            loops: self.loops,
            malformed: p.malformed,
            engine: None,
            chunk_bytes: crate::replay::CHUNK_BYTES,
            inspect: true,
        })
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,

    /// Worker count; under `run` it comes from the EAL lcores (-l), one
    /// worker per lcore besides the main one. Given, it must agree.
    #[arg(long, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,

    /// `off` forwards without decoding or tracking: the baseline for
    /// measuring what inspection costs.
    #[arg(long, value_enum, default_value = "on")]
    pub inspect: OnOff,

    /// Mbufs in the pool (default: enough for every descriptor and ring).
    /// A net_pcap vdev with infinite_rx=1 holds its whole capture in mbufs.
    #[arg(long, value_name = "N", value_parser = parse_mbufs)]
    pub mbufs: Option<u32>,

    /// Stop after this long (default: run until SIGINT or SIGTERM).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Stop once no port has received a packet for this long (for replaying
    /// a pcap vdev to its end).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub idle_exit: Option<Duration>,

    /// EAL arguments, after `--`: `-l 0-2 -a 0000:3b:00.0` or `--no-huge -m 512
    /// --no-pci --vdev net_pcap0,rx_pcap=IN.pcap`.
    #[arg(last = true, required = true, value_name = "EAL ARGS")]
    pub eal: Vec<String>,
}

/// `30s`, `5m`, `1h`, `500ms`, `1.5s`, or `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration with a unit, like 30s, 5m, 1h, 500ms or 1m30s";
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(EXPECTED.into());
    }
    // One or more number-and-unit parts: 1h30m, 1m30s, 2.5s.
    let mut rest = s;
    let mut secs = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| EXPECTED.to_string())?;
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let v: f64 = num.parse().map_err(|_| EXPECTED.to_string())?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(EXPECTED.into()),
        };
        secs += v * scale;
        rest = next;
    }
    if !secs.is_finite() || secs > 100.0 * 365.0 * 86_400.0 {
        return Err("duration out of range (at most 100 years)".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `0,2,4-7`: ids and inclusive ranges, each core once.
pub fn parse_core_list(s: &str) -> Result<CoreList, String> {
    const EXPECTED: &str = "expected core ids and ranges, like 0,2,4-7";
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: usize = a.trim().parse().map_err(|_| EXPECTED.to_string())?;
        let b: usize = b.trim().parse().map_err(|_| EXPECTED.to_string())?;
        if a > b || b - a >= MAX_WORKERS {
            return Err(format!("{EXPECTED} (bad range {part})"));
        }
        for c in a..=b {
            if out.contains(&c) {
                return Err(format!("core {c} is listed twice"));
            }
            out.push(c);
        }
    }
    Ok(CoreList(out))
}

pub fn format_core_list(cores: &[usize]) -> String {
    let mut sorted = cores.to_vec();
    sorted.sort_unstable();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            sorted[i].to_string()
        } else {
            format!("{}-{}", sorted[i], sorted[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

fn parse_workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {MAX_WORKERS}")),
    }
}

fn parse_flow_capacity(s: &str) -> Result<usize, String> {
    const MAX: usize = 1 << 30;
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number of flows from 1 to {MAX}")),
    }
}

pub use crate::rules::parse_bytes;

fn parse_flows(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=100_000_000).contains(&n) => Ok(n),
        _ => Err("expected a whole number from 1 to 100000000".into()),
    }
}

fn parse_mbufs(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1024..=1 << 26).contains(&n) => Ok(n),
        _ => Err("expected a whole number of mbufs from 1024 to 67108864".into()),
    }
}

fn parse_speed(s: &str) -> Result<Speed, String> {
    if s == "max" {
        return Ok(Speed::Max);
    }
    match s.parse::<f64>() {
        Ok(f) if (1e-3..=1e6).contains(&f) => Ok(Speed::Multiplier(f)),
        _ => Err(
            "expected `max` or a multiple of capture timing from 0.001 to 1000000, like 1 or 2.5"
                .into(),
        ),
    }
}

fn parse_loops(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of passes from 1 to 65535".into()),
    }
}

/// The command line with a `--config FILE`'s flags added (for `replay`
/// and `run`): each key of the YAML file becomes its long flag, put before
/// the command line's own, and a flag the command line gives is not taken
/// from the file (so it overrides, lists too). A key that is not a flag of
/// the command, or a value of the wrong shape, is an error naming the file
/// and the key.
pub fn apply_config(args: Vec<std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>, String> {
    use clap::{ArgAction, CommandFactory};
    use yaml_rust2::Yaml;
    let text = |a: &std::ffi::OsString| a.to_string_lossy().into_owned();
    let Some(sub_at) = args.iter().skip(1).position(|a| !text(a).starts_with('-')) else {
        return Ok(args);
    };
    let sub_at = sub_at + 1;
    let sub_name = text(&args[sub_at]);
    // Flags end where the EAL's arguments begin.
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let ours = &args[sub_at + 1..end];
    let mut path = None;
    for (k, a) in ours.iter().enumerate() {
        let a = text(a);
        if a == "--config" {
            path = ours.get(k + 1).map(text);
        } else if let Some(v) = a.strip_prefix("--config=") {
            path = Some(v.to_string());
        }
    }
    let Some(path) = path else {
        return Ok(args);
    };
    let cmd = Cli::command();
    let Some(sub) = cmd.find_subcommand(&sub_name) else {
        return Ok(args);
    };
    let body = std::fs::read_to_string(&path).map_err(|e| format!("--config {path}: {e}"))?;
    let docs = yaml_rust2::YamlLoader::load_from_str(&body)
        .map_err(|e| format!("--config {path}: not YAML: {e}"))?;
    let map = match docs.first() {
        None | Some(Yaml::Null) => return Ok(args),
        Some(Yaml::Hash(h)) => h.clone(),
        Some(_) => {
            return Err(format!(
                "--config {path}: expected a map of flags to values"
            ))
        }
    };
    let given = |flag: &str| {
        ours.iter().any(|a| {
            let a = text(a);
            a == flag || a.starts_with(&format!("{flag}="))
        })
    };
    let mut added: Vec<std::ffi::OsString> = Vec::new();
    for (k, v) in &map {
        let Some(key) = k.as_str() else {
            return Err(format!("--config {path}: a key that is not a flag name"));
        };
        let key = key.replace('_', "-");
        let arg = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && key != "config")
            .ok_or_else(|| {
                format!("--config {path}: `{key}` is not a flag of `tollgate {sub_name}`")
            })?;
        let flag = format!("--{key}");
        if given(&flag) {
            continue;
        }
        let scalar = |v: &Yaml| -> Result<String, String> {
            match v {
                Yaml::String(s) => Ok(s.clone()),
                Yaml::Integer(n) => Ok(n.to_string()),
                Yaml::Real(r) => Ok(r.clone()),
                // An on|off flag written as YAML's true or false.
                Yaml::Boolean(b) => Ok(if *b { "on" } else { "off" }.into()),
                _ => Err(format!("--config {path}: `{key}` takes a single value")),
            }
        };
        match (arg.get_action(), v) {
            (ArgAction::SetTrue, Yaml::Boolean(b)) => {
                if *b {
                    added.push(flag.into());
                }
            }
            (ArgAction::SetTrue, _) => {
                return Err(format!(
                    "--config {path}: `{key}` is a switch: true or false"
                ))
            }
            (ArgAction::Append, Yaml::Array(items)) => {
                for item in items {
                    added.push(flag.clone().into());
                    added.push(scalar(item)?.into());
                }
            }
            (_, v) => {
                added.push(flag.into());
                added.push(scalar(v)?.into());
            }
        }
    }
    let mut out = args[..=sub_at].to_vec();
    out.extend(added);
    out.extend_from_slice(&args[sub_at + 1..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<ReplayArgs, clap::Error> {
        let mut v = vec!["tollgate", "replay", "a.pcap"];
        v.extend_from_slice(extra);
        Cli::try_parse_from(v).map(|c| match c.command {
            Command::Replay(a) => a,
            _ => unreachable!("parsed a replay command line"),
        })
    }

    /// `tollgate replay a.pcap` + `extra`, with `yaml` as its --config.
    fn with_config(yaml: &str, extra: &[&str]) -> Result<ReplayArgs, String> {
        let path = std::env::temp_dir().join(format!(
            "tollgate-config-{}-{}.yaml",
            std::process::id(),
            yaml.len()
        ));
        std::fs::write(&path, yaml).unwrap();
        let mut v: Vec<std::ffi::OsString> = ["tollgate", "replay", "a.pcap", "--config"]
            .iter()
            .map(Into::into)
            .collect();
        v.push(path.clone().into());
        v.extend(extra.iter().map(Into::into));
        let r = apply_config(v).and_then(|v| {
            Cli::try_parse_from(v)
                .map_err(|e| e.to_string())
                .map(|c| match c.command {
                    Command::Replay(a) => a,
                    _ => unreachable!("parsed a replay command line"),
                })
        });
        let _ = std::fs::remove_file(path);
        r
    }

    #[test]
    fn a_config_file_gives_flags_and_the_command_line_overrides_them() {
        let yaml = "mode: ips\neve: /var/log/e.json\nrules: [a.rules, b.rules]\n\
                    community_id: true\neve-llm-text: false\nai-inspect: off\n\
                    http-body-limit: 1MiB\nstats-interval: 10s\n";
        let a = with_config(yaml, &[]).unwrap();
        assert_eq!(a.pipeline.mode, ModeArg::Ips);
        assert_eq!(
            a.pipeline.eve.as_deref(),
            Some(std::path::Path::new("/var/log/e.json"))
        );
        assert_eq!(a.pipeline.rules.len(), 2);
        assert!(a.pipeline.community_id && !a.pipeline.eve_llm_text);
        assert_eq!(a.pipeline.ai_inspect, OnOff::Off);
        assert_eq!(a.pipeline.http_body_limit, 1 << 20);
        // The command line wins, a list too.
        let a = with_config(yaml, &["--mode", "ids", "--rules", "c.rules"]).unwrap();
        assert_eq!(a.pipeline.mode, ModeArg::Ids);
        assert_eq!(a.pipeline.rules, [PathBuf::from("c.rules")]);
        // YAML's true for an on|off flag.
        assert_eq!(
            with_config("ai-inspect: false\n", &[])
                .unwrap()
                .pipeline
                .ai_inspect,
            OnOff::Off
        );
        assert!(with_config("", &[]).is_ok());
    }

    #[test]
    fn a_bad_config_file_is_named_with_its_key() {
        let err = |yaml: &str| with_config(yaml, &[]).unwrap_err();
        assert!(err("bogus: 1\n").contains("`bogus` is not a flag of `tollgate replay`"));
        assert!(err("config: x.yaml\n").contains("`config` is not a flag"));
        assert!(err("community-id: yes\n").contains("`community-id` is a switch"));
        assert!(err("mode: [ips, ids]\n").contains("`mode` takes a single value"));
        assert!(err("- mode\n").contains("expected a map of flags"));
        assert!(err("mode: [\n").contains("not YAML"));
        assert!(err("mode: sideways\n").contains("sideways"));
        let missing = apply_config(
            [
                "tollgate",
                "replay",
                "a.pcap",
                "--config",
                "/nonexistent/t.yaml",
            ]
            .iter()
            .map(Into::into)
            .collect(),
        )
        .unwrap_err();
        assert!(
            missing.starts_with("--config /nonexistent/t.yaml: "),
            "{missing}"
        );
    }

    #[test]
    fn the_shipped_config_is_a_valid_one_for_run_and_replay() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tollgate.yaml");
        let yaml = std::fs::read_to_string(path).unwrap();
        let a = with_config(&yaml, &[]).unwrap();
        assert_eq!(a.pipeline.ai_inspect, OnOff::On);
        let v = ["tollgate", "run", "--config", path, "--", "-l", "0-1"]
            .iter()
            .map(Into::into)
            .collect();
        assert!(Cli::try_parse_from(apply_config(v).unwrap()).is_ok());
    }

    #[test]
    fn run_takes_eal_arguments_after_the_separator() {
        let c = Cli::try_parse_from([
            "tollgate",
            "run",
            "--mode",
            "ips",
            "--inspect",
            "off",
            "--idle-exit",
            "2s",
            "--",
            "-l",
            "0-2",
            "--vdev",
            "net_pcap0,rx_pcap=a.pcap",
        ])
        .unwrap();
        let Command::Run(r) = c.command else {
            panic!("not a run command");
        };
        assert_eq!(r.eal, ["-l", "0-2", "--vdev", "net_pcap0,rx_pcap=a.pcap"]);
        assert_eq!(r.inspect, OnOff::Off);
        assert_eq!(r.idle_exit, Some(Duration::from_secs(2)));
        assert_eq!(r.pipeline.settings().unwrap().mode, Mode::Ips);
        assert!(
            Cli::try_parse_from(["tollgate", "run"]).is_err(),
            "EAL arguments are required"
        );
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h1m1s").unwrap(), Duration::from_secs(3661));
        assert_eq!(
            parse_duration("2s500ms").unwrap(),
            Duration::from_millis(2500)
        );
        for bad in ["30", "s", "", "3x", "-1s", "1e9h", "1.2.3s", "1m30", "m30s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_bytes("16MiB").unwrap(), 16 << 20);
        // As suricata.yaml writes them: kb/mb/gb in 1024s, any case.
        assert_eq!(parse_bytes("64mb").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("64MB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("200kb").unwrap(), 200 << 10);
        assert_eq!(parse_bytes("16mib").unwrap(), 16 << 20);
        assert_eq!(parse_bytes("1.5gb").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        for bad in ["", "MiB", "9999999TiB", "2TB", "1.5", "-1mb", "3zb"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn core_lists() {
        assert_eq!(parse_core_list("0,2,4-6").unwrap().0, vec![0, 2, 4, 5, 6]);
        for bad in ["", "a", "3-1", "1,1", "0-9999", "1-"] {
            assert!(parse_core_list(bad).is_err(), "{bad}");
        }
        assert_eq!(format_core_list(&[3, 0, 1, 2, 7]), "0-3,7");
    }

    #[test]
    fn defaults() {
        let a = args(&[]).unwrap();
        let c = a.to_config(&[0, 1]).unwrap();
        assert_eq!(c.workers, 1);
        assert_eq!(c.mode, Mode::Ids);
        assert_eq!(c.speed, Speed::Max);
        assert_eq!(c.loops, 1);
        assert_eq!(c.timeouts, Timeouts::default());
        assert_eq!(c.flow_capacity, 65_536);
    }

    #[test]
    fn flag_values_are_checked() {
        for bad in [
            &["--workers", "0"][..],
            &["--workers", "x"],
            &["--mode", "tap"],
            &["--speed", "0"],
            &["--speed", "fast"],
            &["--speed", "1e-300"],
            &["--speed", "NaN"],
            &["--speed", "inf"],
            &["--pcre-match-limit", "0"],
            &["--inspection-recursion-limit", "-1"],
            &["--packet-alert-max", "0"],
            &["--loop", "0"],
            &["--flow-capacity", "0"],
            &["--new-timeout", "30"],
            &["--cores", "1-0"],
            &["--bogus"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_are_checked_against_each_other_and_the_machine() {
        let a = args(&["--cores", "0-1"]).unwrap();
        assert_eq!(a.to_config(&[0, 1]).unwrap().workers, 2);
        let a = args(&["--cores", "0-1", "--workers", "3"]).unwrap();
        assert!(a
            .to_config(&[0, 1])
            .unwrap_err()
            .contains("one core per worker"));
        let a = args(&["--cores", "5"]).unwrap();
        assert!(a.to_config(&[0, 1]).unwrap_err().contains("available: 0-1"));
        let a = args(&["--malformed", "drop"]).unwrap();
        assert!(a.to_config(&[0]).unwrap_err().contains("--mode ips"));
        let a = args(&["--malformed", "drop", "--mode", "ips"]).unwrap();
        assert_eq!(a.to_config(&[0]).unwrap().malformed, MalformedPolicy::Drop);
    }
}
