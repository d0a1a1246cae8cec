//! `tollgate`: the command-line front door. Parses flags, runs the job,
//! prints the summary; any problem with the input is one line on stderr and
//! exit code 2, never a panic or a backtrace.

use clap::error::ErrorKind;
use clap::Parser;
use serde_json::{Map, Value};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;
use tollgate::cli::{
    Cli, Command, GenArgs, PipelineArgs, ReplayArgs, RulesCheckArgs, RulesCommand, RunArgs,
};
use tollgate::replay::{replay, Progress};
use tollgate::stats::{si, stats_json, stats_line, summary_table, Latency, WorkerCounters};

/// Bad input: flags, files, captures, EAL arguments, ports.
const EXIT_INPUT: u8 = 2;
/// The run itself failed (an output could not be written).
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let args = match tollgate::cli::apply_config(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tollgate: error: {e}");
            return ExitCode::from(EXIT_INPUT);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => return clap_error(&e),
    };
    match cli.command {
        Command::Replay(args) => run_replay(&args),
        Command::Run(args) => run_ports(&args),
        Command::Gen(args) => run_gen(&args),
        Command::Rules(RulesCommand::Check(args)) => rules_check(&args),
        Command::Policy(tollgate::cli::PolicyCommand::Check(args)) => {
            match tollgate::policy::Policy::load(&args.file) {
                Ok(p) => {
                    let (out, notes) = p.report();
                    print!("{out}");
                    for n in &notes {
                        println!("{n}");
                    }
                    if notes.is_empty() {
                        println!("no overlaps, no unreachable rules");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(EXIT_INPUT, e),
            }
        }
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(args.shell, &mut cmd, "tollgate", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man(args) => man(&args),
        Command::Reload(args) => {
            let wait = tollgate::control::RELOAD_WAIT + std::time::Duration::from_secs(10);
            match tollgate::control::request(&args.control_socket, "reload", wait) {
                Ok(answer) if answer.starts_with("ok") => {
                    println!("{answer}");
                    ExitCode::SUCCESS
                }
                Ok(answer) => fail(EXIT_FAILURE, answer),
                Err(e) => fail(EXIT_FAILURE, e),
            }
        }
        Command::Features(args) => {
            use tollgate::scoring::features::FEATURES;
            for f in FEATURES {
                if args.names {
                    println!("{}", f.name);
                } else {
                    println!("{:<22} {:<10} {}", f.name, f.unit, f.how);
                }
            }
            ExitCode::SUCCESS
        }
    }
}

/// `tollgate man`: a page on standard output, or all into a folder.
fn man(args: &tollgate::cli::ManArgs) -> ExitCode {
    use clap::CommandFactory;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let written = match (&args.dir, &args.command) {
        (Some(dir), _) => {
            clap_mangen::generate_to(cmd, dir).map_err(|e| format!("--dir {}: {e}", dir.display()))
        }
        (None, Some(name)) => match cmd.find_subcommand(name) {
            Some(sub) => clap_mangen::Man::new(sub.clone())
                .render(&mut std::io::stdout())
                .map_err(|e| e.to_string()),
            None => {
                let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                eprintln!(
                    "tollgate: error: man: no command `{name}` (expected one of {})",
                    names.join(", ")
                );
                return ExitCode::from(EXIT_INPUT);
            }
        },
        (None, None) => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .map_err(|e| e.to_string()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate: error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Rule variables and classes for a set of rule paths: Suricata's default
/// variables with the `--set-var` overrides, and the classes of the
/// classification files given, or else of those found beside each rules
/// path, merged (the first definition of a class wins), with the files
/// read.
type RuleContext = (
    tollgate::rules::vars::Vars,
    std::collections::BTreeMap<String, tollgate::rules::classification::Class>,
    Vec<std::path::PathBuf>,
);

fn rule_context(
    paths: &[std::path::PathBuf],
    vars_file: &Option<std::path::PathBuf>,
    set_var: &[String],
    classification: &[std::path::PathBuf],
) -> Result<RuleContext, String> {
    use tollgate::rules::{classification, vars::Vars};
    let mut vars = Vars::suricata_defaults();
    if let Some(f) = vars_file {
        std::fs::read_to_string(f)
            .map_err(|e| e.to_string())
            .and_then(|t| vars.load_file_text(&t))
            .map_err(|e| format!("{}: {e}", f.display()))?;
    }
    for a in set_var {
        vars.set(a).map_err(|e| format!("--set-var: {e}"))?;
    }
    for p in paths {
        if !p.exists() {
            return Err(format!("{}: no such file or folder", p.display()));
        }
    }
    let mut class_files: Vec<std::path::PathBuf> = classification.to_vec();
    if class_files.is_empty() {
        for p in paths {
            let dir = if p.is_dir() {
                Some(p.as_path())
            } else {
                p.parent()
            };
            let Some(f) = dir.map(|d| d.join("classification.config")) else {
                continue;
            };
            if f.is_file() && !class_files.contains(&f) {
                class_files.push(f);
            }
        }
    }
    let mut classes = std::collections::BTreeMap::new();
    for f in &class_files {
        let these = std::fs::read_to_string(f)
            .map_err(|e| e.to_string())
            .and_then(|t| classification::parse(&t))
            .map_err(|e| format!("{}: {e}", f.display()))?;
        for (name, class) in these {
            classes.entry(name).or_insert(class);
        }
    }
    Ok((vars, classes, class_files))
}

/// Where the shipped rules are when `--rules` is not given: beside an
/// installed binary (`PREFIX/share/tollgate/signatures`), the system path
/// `/usr/share/tollgate/signatures`, or the source tree the binary was
/// built in (`target/{debug,release}/tollgate`). Never the current
/// directory, so a run gives the same rules wherever it starts.
fn shipped_rules() -> Result<std::path::PathBuf, Vec<std::path::PathBuf>> {
    use std::path::PathBuf;
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("../share/tollgate/signatures"));
        // target/debug/tollgate (or target/release, or deps/ in tests).
        for up in dir.ancestors().skip(1).take(3) {
            if up.join("Cargo.toml").is_file() {
                candidates.push(up.join("signatures"));
            }
        }
    }
    candidates.push(PathBuf::from("/usr/share/tollgate/signatures"));
    match candidates
        .iter()
        .find(|c| c.join("tollgate.rules").is_file())
    {
        Some(c) => Ok(c.canonicalize().unwrap_or_else(|_| c.clone())),
        None => Err(candidates),
    }
}

/// Warnings from loading rules on stderr: each one (Suricata's habit), up
/// to a screenful, then how many more.
fn print_warnings(warnings: &[String]) {
    const SHOWN: usize = 20;
    for w in warnings.iter().take(SHOWN) {
        eprintln!("tollgate: warning: {w}");
    }
    if warnings.len() > SHOWN {
        eprintln!(
            "tollgate: warning: … and {} more like these (`tollgate rules check` lists them all)",
            warnings.len() - SHOWN
        );
    }
}

/// Loads the pipeline's rules (`--rules`, else the shipped rules). A
/// malformed rule stops the start with its file, line and keyword; rules
/// the engine cannot evaluate yet are skipped and summed up on stderr.
/// The engine, and the line the summary prints about what loaded from
/// where (there is one even when nothing loaded).
type LoadedRules = (Option<std::sync::Arc<tollgate::detect::Engine>>, String);

fn load_rules(p: &PipelineArgs) -> Result<LoadedRules, String> {
    let (engine, line) = load_engine(p)?;
    Ok((engine.map(std::sync::Arc::new), line))
}

/// `load_rules`, the engine not yet shared (a reload loads with this).
fn load_engine(p: &PipelineArgs) -> Result<(Option<tollgate::detect::Engine>, String), String> {
    let paths = if p.rules.is_empty() {
        match shipped_rules() {
            Ok(dir) => vec![dir],
            Err(looked) => {
                let line = format!(
                    "rules: none loaded: no --rules given and no shipped rules at {}",
                    looked
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                eprintln!("tollgate: warning: {line}");
                return Ok((None, line));
            }
        }
    } else {
        p.rules.clone()
    };
    let (vars, classes, _) = rule_context(&paths, &p.vars, &p.set_var, &p.classification)?;
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let (engine, report) =
        tollgate::detect::Engine::load_with(&refs, &vars, &classes, &p.detect())?;
    print_warnings(&report.warnings);
    if !report.errors.is_empty() {
        for e in &report.errors {
            eprintln!("tollgate: error: {e}");
        }
        return Err(format!(
            "{} malformed rule(s): fix them, or check with `tollgate rules check`",
            report.errors.len()
        ));
    }
    let skipped: usize = report.skipped.values().sum();
    if skipped > 0 && p.rules_unsupported == tollgate::cli::Unsupported::Error {
        for s in &report.skipped_at {
            eprintln!("tollgate: error: not evaluated yet: {s}");
        }
        return Err(format!(
            "{skipped} rule(s) the engine cannot evaluate yet (--rules-unsupported error)"
        ));
    }
    // The commonest reasons, so the start line says why as well as how many.
    let mut reasons: Vec<(&String, &usize)> = report.skipped.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let why = reasons
        .iter()
        .take(4)
        .map(|(r, n)| format!("{n} {r}"))
        .collect::<Vec<_>>()
        .join("; ");
    let line = format!(
        "rules: {} loaded from {}, {} skipped as not yet evaluated{} (`tollgate rules check` counts why; --rules-unsupported error names them){}",
        report.loaded,
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        skipped,
        if why.is_empty() { String::new() } else { format!(": {why}{}", if reasons.len() > 4 { "; …" } else { "" }) },
        if report.duplicates > 0 { format!("; {} duplicate sid(s) dropped", report.duplicates) } else { String::new() }
    );
    Ok((Some(engine), line))
}

fn rules_check(args: &RulesCheckArgs) -> ExitCode {
    use tollgate::detect::Engine;
    let (vars, classes, class_files) =
        match rule_context(&args.paths, &args.vars, &args.set_var, &args.classification) {
            Ok(x) => x,
            Err(e) => return fail(EXIT_INPUT, e),
        };
    let paths: Vec<&Path> = args.paths.iter().map(|p| p.as_path()).collect();
    let (engine, r) = match Engine::load(&paths, &vars, &classes) {
        Ok(x) => x,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    let mut out = std::io::stdout().lock();
    for e in &r.errors {
        let _ = writeln!(out, "error: {e}");
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let skipped: usize = r.skipped.values().sum();
    let _ = writeln!(
        out,
        "rules read {}, parse errors {}, duplicates dropped {}, loaded {}, skipped {}",
        r.read,
        r.errors.len(),
        r.duplicates,
        r.loaded,
        skipped
    );
    let mut reasons: Vec<_> = r.skipped.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let _ = writeln!(out, "skipped by reason:");
    for (reason, n) in reasons {
        let _ = writeln!(out, "  {n:>7}  {reason}");
    }
    let list = |m: &std::collections::BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "loaded by action: {}", list(&r.by_action));
    let _ = writeln!(out, "loaded by protocol: {}", list(&r.by_proto));
    let _ = writeln!(out, "loaded by buffer: {}", list(&r.by_buffer));
    let _ = writeln!(
        out,
        "prefilter: {} patterns ({} of stream rules, also in Hyperscan stream databases: {} bytes of stream state per reassembled direction), {} rules found by address, {} rules checked on every packet",
        r.patterns, r.stream_rules, r.stream_state_bytes, r.address_indexed, r.without_prefilter
    );
    let _ = writeln!(
        out,
        "rule groups: {} (by protocol, direction, $HOME_NET sides and server port), {} databases, {} fast patterns in them",
        r.groups, r.group_databases, r.group_patterns
    );
    let _ = writeln!(
        out,
        "flowbits: {} names; {} loaded rules test a bit no loaded rule sets",
        r.flowbit_names, r.flowbits_never_set
    );
    let scratch = engine
        .scratch()
        .ok()
        .flatten()
        .and_then(|s| s.size().ok())
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "Hyperscan compile {:.1} ms, databases {} bytes, scratch {} bytes per worker; classification: {}",
        r.compile_ms,
        r.database_bytes,
        scratch,
        if class_files.is_empty() {
            "none".to_string()
        } else {
            class_files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if r.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INPUT)
    }
}

fn run_gen(args: &GenArgs) -> ExitCode {
    use tollgate::gen::{generate_with, GenConfig};
    let cfg = GenConfig {
        seed: args.seed,
        flows: args.flows,
        packets: args.packets,
        duration_ns: u64::try_from(args.duration.as_nanos()).unwrap_or(u64::MAX),
    };
    let (cap, truth) = generate_with(&cfg, args.attacks.as_ref());
    let truth_path = args.truth.clone().unwrap_or_else(|| {
        let mut p = args.out.clone().into_os_string();
        p.push(".truth.jsonl");
        p.into()
    });
    if let Err(e) = cap.write_pcap(&args.out) {
        return fail(
            EXIT_INPUT,
            format!("{}: cannot write the capture: {e}", args.out.display()),
        );
    }
    let mut lines = String::new();
    for t in &truth {
        lines.push_str(&serde_json::to_string(t).unwrap_or_default());
        lines.push('\n');
    }
    if let Err(e) = std::fs::write(&truth_path, lines) {
        return fail(
            EXIT_INPUT,
            format!(
                "{}: cannot write the ground truth: {e}",
                truth_path.display()
            ),
        );
    }
    let bytes: u64 = truth.iter().map(|t| t.bytes).sum();
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}: {} packets, {} flows, {:.1} MB; ground truth in {}",
        args.out.display(),
        cap.packets.len(),
        truth.len(),
        bytes as f64 / 1e6,
        truth_path.display()
    );
    ExitCode::SUCCESS
}

/// Help and version print as clap prints them; every real error becomes one
/// line naming the problem.
fn clap_error(e: &clap::Error) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.render().to_string();
    let head = text
        .split("\n\nUsage:")
        .next()
        .unwrap_or(&text)
        .split("\n\nFor more information")
        .next()
        .unwrap_or(&text);
    let one_line = head.split_whitespace().collect::<Vec<_>>().join(" ");
    let one_line = one_line.strip_prefix("error: ").unwrap_or(&one_line);
    eprintln!("tollgate: error: {one_line} (see tollgate --help)");
    ExitCode::from(EXIT_INPUT)
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("tollgate: error: {msg}");
    ExitCode::from(code)
}

/// Prints a stats line every `--stats-interval` from the snapshots a run
/// hands its tick callback.
/// The same snapshots go to the `--metrics` endpoint at every tick.
struct StatsLines {
    interval: f64,
    last: Instant,
    prev: WorkerCounters,
    metrics: Option<tollgate::metrics::Metrics>,
}

impl StatsLines {
    fn new(p: &PipelineArgs) -> Result<Self, String> {
        let metrics = match &p.metrics {
            Some(addr) => {
                let m = tollgate::metrics::Metrics::start(addr)?;
                eprintln!("metrics: http://{}/metrics", m.addr());
                Some(m)
            }
            None => None,
        };
        Ok(StatsLines {
            interval: p.stats_interval.as_secs_f64(),
            last: Instant::now(),
            prev: WorkerCounters::default(),
            metrics,
        })
    }

    /// The metrics endpoint serves the policy's counters too.
    fn watch_policy(&self, p: Option<&tollgate::policy::enforce::PolicySetup>) {
        if let (Some(m), Some(p)) = (&self.metrics, p) {
            m.watch_policy(std::sync::Arc::clone(&p.stats));
        }
    }

    /// Returns the line when one is due.
    fn due(&mut self, snaps: &[WorkerCounters], elapsed: f64) -> Option<String> {
        if let Some(m) = &self.metrics {
            m.update(snaps, elapsed);
        }
        let since = self.last.elapsed().as_secs_f64();
        if self.interval <= 0.0 || since < self.interval {
            return None;
        }
        let total = WorkerCounters::sum(snaps);
        let line = stats_line(elapsed, &total, &self.prev, since);
        self.prev = total;
        self.last = Instant::now();
        Some(line)
    }
}

/// What a finished replay or run hands to `finish_outputs`.
struct Outputs<'a> {
    header: &'a str,
    workers: &'a [WorkerCounters],
    latency: &'a [Latency],
    seconds: f64,
    extra: Map<String, Value>,
    eve_error: Option<&'a String>,
    rules_line: Option<&'a str>,
    /// The scorer's report, when the scoring stage ran.
    scoring: Option<&'a tollgate::scoring::ScorerReport>,
    /// The rules' datasets, to save.
    datasets: Option<&'a tollgate::detect::dataset::DatasetTable>,
}

/// The stats JSON's sections replay and run share: `eve` when there is an
/// EVE output, `reload` when there are rules, `policy` when there is one.
fn operations_json(
    p: &PipelineArgs,
    eve: Option<&tollgate::eve::EveCounters>,
    rules_reload: Option<&tollgate::detect::reload::RulesReload>,
    policy: Option<&tollgate::policy::enforce::PolicySetup>,
    extra: &mut Map<String, Value>,
) {
    if let (Some(c), Some(target)) = (eve, p.eve.as_deref()) {
        let network = tollgate::eve::sink::Target::parse(&target.to_string_lossy())
            .is_ok_and(|t| t.is_network());
        extra.insert("eve".into(), c.to_json(network));
    }
    if let Some(r) = rules_reload {
        extra.insert("reload".into(), r.status.to_json());
    }
    if let Some(p) = policy {
        extra.insert("policy".into(), p.stats.to_json());
    }
}

/// Where the summary goes: stdout, unless EVE does (`--eve -`).
fn summary_out(p: &PipelineArgs) -> Box<dyn Write> {
    if p.eve.as_deref() == Some(Path::new("-")) {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(std::io::stdout().lock())
    }
}

/// The outputs every run ends with: the summary, the stats JSON, and an
/// EVE writer's failure.
fn finish_outputs(p: &PipelineArgs, o: Outputs<'_>) -> ExitCode {
    let Outputs {
        header,
        workers,
        latency,
        seconds,
        extra,
        eve_error,
        rules_line,
        scoring,
        datasets,
    } = o;
    // stdout may be a pipe that closed early (`| head`): that is no error.
    let mut out = summary_out(p);
    let _ = write!(out, "{}", summary_table(header, workers, seconds));
    let _ = writeln!(out, "{}", Latency::merged(latency).summary_line());
    if let Some(line) = rules_line {
        let _ = writeln!(out, "{line}");
    }
    drop(out);
    let mut code = ExitCode::SUCCESS;
    if let Some(path) = &p.stats_json {
        let mut json = stats_json(workers, latency, seconds);
        json.extend(extra);
        if let Some(sc) = scoring {
            let link = WorkerCounters::sum(workers).scoring;
            json.insert("scoring".into(), sc.to_json(&link));
        }
        let text = serde_json::to_string_pretty(&Value::Object(json)).unwrap_or_default() + "\n";
        if let Err(e) = std::fs::write(path, text) {
            code = fail(
                EXIT_FAILURE,
                format!("{}: cannot write stats JSON: {e}", path.display()),
            );
        }
    }
    if let Some(Err(e)) = datasets.map(|d| d.save()) {
        code = fail(EXIT_FAILURE, format!("saving datasets: {e}"));
    }
    if let Some(e) = eve_error {
        let path = p.eve.as_deref().unwrap_or(Path::new("EVE"));
        code = fail(
            EXIT_FAILURE,
            format!("{}: writing EVE failed: {e}", path.display()),
        );
    }
    code
}

/// SIGHUP sets `reopen`: the EVE writer reopens its file (logrotate), as
/// Suricata does on SIGHUP. Registered always, so a SIGHUP never kills
/// the process.
fn catch_sighup_reopen(
    reopen: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), String> {
    signal_hook::flag::register(signal_hook::consts::SIGHUP, std::sync::Arc::clone(reopen))
        .map(|_| ())
        .map_err(|e| format!("cannot catch SIGHUP: {e}"))
}

/// SIGINT and SIGTERM set `stop`: the replay stops reading and finishes
/// as at the end of its captures. A second one ends the process at once.
fn catch_stop(stop: &std::sync::Arc<std::sync::atomic::AtomicBool>) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, std::sync::Arc::clone(stop))
            .and_then(|_| signal_hook::flag::register(sig, std::sync::Arc::clone(stop)))
            .map_err(|e| format!("cannot catch signal {sig}: {e}"))?;
    }
    Ok(())
}

/// What reloads (SIGUSR2 and the control socket): the rules when there
/// are some, and the scorer's models (`model_flag`) when there are some.
/// SIGUSR2 is caught even with nothing to reload, so it never kills the
/// process. The control socket, if asked for, is listening on return.
fn reloads(
    p: &PipelineArgs,
    engine: Option<&std::sync::Arc<tollgate::detect::Engine>>,
    scoring: &tollgate::scoring::ScoringConfig,
    model_flag: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    policy: Option<&tollgate::policy::enforce::PolicySetup>,
) -> Result<
    (
        Option<tollgate::detect::reload::RulesReload>,
        Option<tollgate::control::ControlServer>,
    ),
    String,
> {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use tollgate::detect::reload::{ReloadStatus, RulesReload};
    let rules = engine.map(|_| {
        let args = p.clone();
        RulesReload {
            loader: Arc::new(move || match load_engine(&args)? {
                (Some(e), _) => Ok(e),
                (None, line) => Err(line),
            }),
            trigger: Arc::new(AtomicBool::new(false)),
            status: Arc::new(ReloadStatus::default()),
        }
    });
    // The scorer's flag: models to reload, or an anomaly state to save.
    let model = (scoring.model.is_some()
        || scoring.prompt_model.is_some()
        || scoring.anomaly_state.is_some())
    .then(|| Arc::clone(model_flag));
    let mut flags: Vec<Arc<AtomicBool>> = rules.iter().map(|r| Arc::clone(&r.trigger)).collect();
    flags.extend(model.clone());
    flags.extend(policy.map(|p| Arc::clone(&p.trigger)));
    if flags.is_empty() {
        flags.push(Arc::new(AtomicBool::new(false)));
    }
    for f in flags {
        signal_hook::flag::register(signal_hook::consts::SIGUSR2, f)
            .map_err(|e| format!("cannot catch SIGUSR2: {e}"))?;
    }
    let server = match &p.control_socket {
        Some(path) => Some(tollgate::control::serve(
            path,
            tollgate::control::Control {
                rules: rules
                    .as_ref()
                    .map(|r| (Arc::clone(&r.trigger), Arc::clone(&r.status))),
                model,
                policy: policy.map(|p| Arc::clone(&p.trigger)),
            },
        )?),
        None => None,
    };
    Ok((rules, server))
}

/// The segmentation policy (`--policy`), refused at start with file:line
/// when it does not load.
fn load_policy(p: &PipelineArgs) -> Result<Option<tollgate::policy::enforce::PolicySetup>, String> {
    use tollgate::policy::enforce::{PolicyAction, PolicySetup};
    let Some(path) = &p.policy else {
        return Ok(None);
    };
    let policy = tollgate::policy::Policy::load(path)?;
    Ok(Some(PolicySetup {
        path: path.clone(),
        policy: std::sync::Arc::new(policy),
        action: match p.policy_action {
            tollgate::cli::PolicyActionArg::Drop => PolicyAction::Drop,
            tollgate::cli::PolicyActionArg::Alert => PolicyAction::Alert,
        },
        trigger: Default::default(),
        stats: Default::default(),
    }))
}

fn run_replay(args: &ReplayArgs) -> ExitCode {
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut cfg = match args.to_config(&available) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    let rules = match load_rules(&args.pipeline) {
        Ok(r) => r,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    cfg.engine = rules.0.clone();
    let policy = match load_policy(&args.pipeline) {
        Ok(p) => p,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    let show_progress = std::io::stderr().is_terminal();
    let mut lines = match StatsLines::new(&args.pipeline) {
        Ok(l) => l,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    lines.watch_policy(policy.as_ref());
    let mut drew_progress = false;
    let on_tick = |snaps: &[WorkerCounters], progress: &Progress, elapsed: f64| {
        let mut err = std::io::stderr().lock();
        if let Some(line) = lines.due(snaps, elapsed) {
            if drew_progress {
                let _ = write!(err, "\r\x1b[2K");
            }
            let _ = writeln!(err, "{line}");
        }
        if show_progress && elapsed >= 2.0 {
            let total = WorkerCounters::sum(snaps);
            let _ = write!(err, "\r\x1b[2K{}", progress_bar(progress, &total, elapsed));
            drew_progress = true;
        }
    };
    if let Err(e) =
        catch_sighup_reopen(&cfg.eve_settings.reopen).and_then(|_| catch_stop(&cfg.stop))
    {
        return fail(EXIT_FAILURE, e);
    }
    let (rules_reload, _control) = match reloads(
        &args.pipeline,
        rules.0.as_ref(),
        &cfg.scoring,
        &cfg.reload,
        policy.as_ref(),
    ) {
        Ok(r) => r,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    cfg.rules_reload = rules_reload.clone();
    cfg.policy = policy.clone();
    let report = match replay(&cfg, on_tick) {
        Ok(r) => r,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    if show_progress {
        eprint!("\r\x1b[2K");
    }
    let header = format!(
        "Tollgate replay: {} file(s), {} records",
        report.capture.files, report.capture.records
    );
    let mut extra = Map::new();
    extra.insert("capture".into(), report.capture.to_json());
    operations_json(
        &args.pipeline,
        report.eve.as_ref(),
        rules_reload.as_ref(),
        policy.as_ref(),
        &mut extra,
    );
    let mut code = finish_outputs(
        &args.pipeline,
        Outputs {
            header: &header,
            workers: &report.workers,
            latency: &report.latency,
            seconds: report.seconds,
            extra,
            eve_error: report.eve_error.as_ref(),
            rules_line: Some(rules.1.as_str()),
            scoring: report.scoring.as_ref(),
            datasets: rules.0.as_deref().map(|e| &e.datasets),
        },
    );
    // A capture that ended early was processed up to its last whole record;
    // report it last so it is the line a script sees.
    for e in &report.capture_errors {
        code = fail(EXIT_INPUT, e);
    }
    code
}

#[cfg(not(feature = "dpdk"))]
fn run_ports(_args: &RunArgs) -> ExitCode {
    fail(
        EXIT_INPUT,
        "this tollgate was built without DPDK (cargo feature `dpdk`): install libdpdk-dev and \
         build with default features to use `run`",
    )
}

#[cfg(feature = "dpdk")]
fn run_ports(args: &RunArgs) -> ExitCode {
    use serde_json::json;
    use tollgate::cli::OnOff;
    use tollgate::run::{run, RunConfig, RunError};

    let settings = match args.pipeline.settings() {
        Ok(s) => s,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    let rules = match load_rules(&args.pipeline) {
        Ok(r) => r,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    let scoring = match args.pipeline.scoring(&[]) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    let reload = tollgate::scoring::reload_flag();
    let policy = match load_policy(&args.pipeline) {
        Ok(p) => p,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    let (rules_reload, _control) = match reloads(
        &args.pipeline,
        rules.0.as_ref(),
        &scoring,
        &reload,
        policy.as_ref(),
    ) {
        Ok(r) => r,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    let reopen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Err(e) = catch_sighup_reopen(&reopen) {
        return fail(EXIT_FAILURE, e);
    }
    let cfg = RunConfig {
        scoring,
        reload,
        rules_reload: rules_reload.clone(),
        policy: policy.clone(),
        eve_settings: args.pipeline.eve_settings(reopen),
        eal_args: args.eal.clone(),
        workers: args.workers,
        settings,
        flow_capacity: args.pipeline.flow_capacity,
        eve: args.pipeline.eve.clone(),
        inspect: args.inspect == OnOff::On,
        mbufs: args.mbufs,
        engine: rules.0.clone(),
        duration: args.duration,
        idle_exit: args.idle_exit,
    };
    let mut lines = match StatsLines::new(&args.pipeline) {
        Ok(l) => l,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    lines.watch_policy(policy.as_ref());
    let on_tick = |snaps: &[WorkerCounters], elapsed: f64| {
        if let Some(line) = lines.due(snaps, elapsed) {
            eprintln!("{line}");
        }
    };
    let report = match run(&cfg, on_tick) {
        Ok(r) => r,
        Err(RunError::Input(e)) => return fail(EXIT_INPUT, e),
        Err(RunError::Failure(e)) => return fail(EXIT_FAILURE, e),
    };
    let header = format!(
        "Tollgate run: {} on {} port(s){}, stopped by {}",
        if report.mode == tollgate::worker::Mode::Ips {
            "IPS"
        } else {
            "IDS"
        },
        report.ports.len(),
        if report.software_dispatch {
            " (software dispatch)"
        } else {
            ""
        },
        report.stopped_by
    );
    let ports: Vec<Value> = report
        .ports
        .iter()
        .map(|p| {
            let xstats: Map<String, Value> = p
                .xstats
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            json!({
                "name": p.report.info.name,
                "driver": p.report.info.driver,
                "rx_queues": p.report.rx_queues,
                "tx_queues": p.report.tx_queues,
                "rss_hash_types": p.report.rss_hf,
                "rss_key_accepted": p.report.key_accepted,
                "ipackets": p.stats.ipackets,
                "opackets": p.stats.opackets,
                "ibytes": p.stats.ibytes,
                "obytes": p.stats.obytes,
                "imissed": p.stats.imissed,
                "ierrors": p.stats.ierrors,
                "oerrors": p.stats.oerrors,
                "rx_nombuf": p.stats.rx_nombuf,
                "xstats": xstats,
            })
        })
        .collect();
    let mut extra = Map::new();
    extra.insert("ports".into(), Value::Array(ports));
    operations_json(
        &args.pipeline,
        report.eve.as_ref(),
        rules_reload.as_ref(),
        policy.as_ref(),
        &mut extra,
    );
    let code = finish_outputs(
        &args.pipeline,
        Outputs {
            header: &header,
            workers: &report.workers,
            latency: &report.latency,
            seconds: report.seconds,
            extra,
            eve_error: report.eve_error.as_ref(),
            rules_line: Some(rules.1.as_str()),
            scoring: report.scoring.as_ref(),
            datasets: rules.0.as_deref().map(|e| &e.datasets),
        },
    );
    let mut out = summary_out(&args.pipeline);
    let _ = writeln!(
        out,
        "{:<12}{:>14}{:>14}{:>10}{:>10}{:>11}",
        "port", "ipackets", "opackets", "imissed", "ierrors", "rx_nombuf"
    );
    for p in &report.ports {
        let s = &p.stats;
        let _ = writeln!(
            out,
            "{:<12}{:>14}{:>14}{:>10}{:>10}{:>11}",
            p.report.info.name, s.ipackets, s.opackets, s.imissed, s.ierrors, s.rx_nombuf
        );
    }
    code
}

fn progress_bar(p: &Progress, total: &WorkerCounters, elapsed: f64) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let done = p.bytes_read.load(Relaxed);
    let all = p.bytes_total.load(Relaxed).max(1);
    let frac = (done as f64 / all as f64).clamp(0.0, 1.0);
    let width = 30;
    let filled = (frac * width as f64) as usize;
    format!(
        "[{}{}] {:5.1}%  {}B of {}B  {} pkts  {}pps",
        "=".repeat(filled),
        " ".repeat(width - filled),
        frac * 100.0,
        si(done as f64),
        si(all as f64),
        total.rx_packets,
        si(total.rx_packets as f64 / elapsed.max(1e-9)),
    )
}
