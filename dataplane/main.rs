//! `tollgate`: the command-line front door. Parses flags, runs the job,
//! prints the summary; any problem with the input is one line on stderr and
//! exit code 2, never a panic or a backtrace.

use clap::error::ErrorKind;
use clap::Parser;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;
use tollgate::cli::{Cli, Command, ReplayArgs};
use tollgate::replay::{replay, Progress};
use tollgate::stats::{si, stats_json, stats_line, summary_table, WorkerCounters};

/// Bad input: flags, files, captures.
const EXIT_INPUT: u8 = 2;
/// The run itself failed (an output could not be written).
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return clap_error(&e),
    };
    match cli.command {
        Command::Replay(args) => run_replay(&args),
    }
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

fn run_replay(args: &ReplayArgs) -> ExitCode {
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let cfg = match args.to_config(&available) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    let interval = args.stats_interval.as_secs_f64();
    let show_progress = std::io::stderr().is_terminal();
    let mut last_line = Instant::now();
    let mut prev = WorkerCounters::default();
    let mut drew_progress = false;
    let on_tick = |snaps: &[WorkerCounters], progress: &Progress, elapsed: f64| {
        let total = WorkerCounters::sum(snaps);
        let mut err = std::io::stderr().lock();
        if interval > 0.0 && last_line.elapsed().as_secs_f64() >= interval {
            let since = last_line.elapsed().as_secs_f64();
            if drew_progress {
                let _ = write!(err, "\r\x1b[2K");
            }
            let _ = writeln!(err, "{}", stats_line(elapsed, &total, &prev, since));
            prev = total;
            last_line = Instant::now();
        }
        if show_progress && elapsed >= 2.0 {
            let _ = write!(err, "\r\x1b[2K{}", progress_bar(progress, &total, elapsed));
            drew_progress = true;
        }
    };
    let report = match replay(&cfg, on_tick) {
        Ok(r) => r,
        Err(e) => return fail(EXIT_INPUT, e),
    };
    if show_progress {
        eprint!("\r\x1b[2K");
    }

    print!(
        "{}",
        summary_table(&report.capture, &report.workers, report.seconds)
    );
    let mut code = ExitCode::SUCCESS;
    if let Some(path) = &args.stats_json {
        let json = stats_json(&report.capture, &report.workers, report.seconds);
        let text = serde_json::to_string_pretty(&json).unwrap_or_default() + "\n";
        if let Err(e) = std::fs::write(path, text) {
            code = fail(
                EXIT_FAILURE,
                format!("{}: cannot write stats JSON: {e}", path.display()),
            );
        }
    }
    if let Some(e) = &report.eve_error {
        let path = args.eve.as_deref().unwrap_or(std::path::Path::new("EVE"));
        code = fail(
            EXIT_FAILURE,
            format!("{}: writing EVE failed: {e}", path.display()),
        );
    }
    // A capture that ended early was processed up to its last whole record;
    // report it last so it is the line a script sees.
    for e in &report.capture_errors {
        code = fail(EXIT_INPUT, e);
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
