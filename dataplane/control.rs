//! The control socket (`--control-socket PATH`): a Unix stream socket that
//! takes one command per connection, a line, and answers with a line.
//!
//! - `reload`: what SIGUSR2 does (rules, model), and waits for the rules'
//!   outcome: `ok: rules generation N, M rules, loaded in T ms` or
//!   `error: … (rules generation N kept)`;
//! - `status`: the reload counters as one JSON line.
//!
//! `tollgate reload --control-socket PATH` is the client. The socket is
//! made mode 0600 (whoever may reload the rules is root or the service's
//! user) and removed when the process ends.

use crate::detect::reload::ReloadStatus;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long `reload` waits for the rules to load before it answers that
/// the reload is still under way.
pub const RELOAD_WAIT: Duration = Duration::from_secs(300);

/// What the commands act on.
#[derive(Clone, Default)]
pub struct Control {
    /// Set to reload the rules, with the reloader's outcome.
    pub rules: Option<(Arc<AtomicBool>, Arc<ReloadStatus>)>,
    /// Set to reload the scorer's model.
    pub model: Option<Arc<AtomicBool>>,
    /// Set to reload the segmentation policy.
    pub policy: Option<Arc<AtomicBool>>,
}

impl Control {
    /// Asks for a reload of whatever is configured; with rules, waits for
    /// their outcome (up to `wait`) and says it.
    pub fn reload(&self, wait: Duration) -> String {
        for f in self.model.iter().chain(&self.policy) {
            f.store(true, Ordering::Release);
        }
        let model = match (self.model.is_some(), self.policy.is_some()) {
            (true, true) => "; model and policy reload requested",
            (true, false) => "; model reload requested",
            (false, true) => "; policy reload requested",
            (false, false) => "",
        };
        let Some((trigger, status)) = &self.rules else {
            return if !model.is_empty() {
                format!("ok: no rules to reload{model}")
            } else {
                "error: nothing to reload: no rules and no model".into()
            };
        };
        let done =
            || status.reloads.load(Ordering::Acquire) + status.failures.load(Ordering::Acquire);
        let before = done();
        trigger.store(true, Ordering::Release);
        let start = Instant::now();
        while done() == before {
            if start.elapsed() >= wait {
                return format!("ok: reload under way{model}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        format!("{}{model}", status.line())
    }

    fn answer(&self, command: &str) -> String {
        match command.trim() {
            "reload" => self.reload(RELOAD_WAIT),
            "status" => match &self.rules {
                Some((_, s)) => s.to_json().to_string(),
                None => "{}".into(),
            },
            other => format!("error: unknown command `{other}`: expected reload or status"),
        }
    }
}

/// The listening socket; removed when dropped.
pub struct ControlServer {
    path: PathBuf,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `path` and answers on a thread of its own. A socket file
/// left by a process that is gone is replaced; one that answers is not
/// (another tollgate uses it).
pub fn serve(path: &Path, ctl: Control) -> Result<ControlServer, String> {
    let shown = path.display();
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "--control-socket {shown}: another process is listening there"
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("--control-socket {shown}: cannot replace it: {e}"))?;
    }
    let listener =
        UnixListener::bind(path).map_err(|e| format!("--control-socket {shown}: {e}"))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("--control-socket {shown}: {e}"))?;
    }
    std::thread::Builder::new()
        .name("tollgate-control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                // One at a time: commands are rare and a reload is serial.
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut line = String::new();
                let mut r = BufReader::new(&conn);
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut reply = ctl.answer(&line);
                reply.push('\n');
                let _ = (&conn).write_all(reply.as_bytes());
            }
        })
        .map_err(|e| format!("control socket thread: {e}"))?;
    Ok(ControlServer {
        path: path.to_path_buf(),
    })
}

/// Sends `command` to the socket at `path`; the answer line.
pub fn request(path: &Path, command: &str, wait: Duration) -> Result<String, String> {
    let shown = path.display();
    let mut s = UnixStream::connect(path).map_err(|e| {
        format!("{shown}: {e} (is tollgate running with --control-socket {shown}?)")
    })?;
    s.set_read_timeout(Some(wait))
        .and_then(|_| s.write_all(format!("{command}\n").as_bytes()))
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .map_err(|e| format!("{shown}: no answer: {e}"))?;
    Ok(line.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("tollgate-control-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.join("ctl.sock")
    }

    #[test]
    fn reload_waits_for_the_outcome_and_status_is_json() {
        let p = path("reload");
        let trigger = Arc::new(AtomicBool::new(false));
        let status = Arc::new(ReloadStatus::default());
        let model = Arc::new(AtomicBool::new(false));
        let server = serve(
            &p,
            Control {
                rules: Some((Arc::clone(&trigger), Arc::clone(&status))),
                model: Some(Arc::clone(&model)),
                policy: None,
            },
        )
        .unwrap();
        // A stand-in for the reloader thread: it sees the flag and reports.
        let (t, st) = (Arc::clone(&trigger), Arc::clone(&status));
        std::thread::spawn(move || {
            while !t.swap(false, Ordering::AcqRel) {
                std::thread::sleep(Duration::from_millis(5));
            }
            st.generation.store(1, Ordering::Release);
            st.rules.store(42, Ordering::Release);
            st.reloads.fetch_add(1, Ordering::AcqRel);
        });
        let answer = request(&p, "reload", Duration::from_secs(30)).unwrap();
        assert!(
            answer.starts_with("ok: rules generation 1, 42 rules"),
            "{answer}"
        );
        assert!(answer.ends_with("model reload requested"), "{answer}");
        assert!(model.load(Ordering::Acquire));
        let json: serde_json::Value =
            serde_json::from_str(&request(&p, "status", Duration::from_secs(5)).unwrap()).unwrap();
        assert_eq!(json["reloads"], 1);
        let bad = request(&p, "restart", Duration::from_secs(5)).unwrap();
        assert!(bad.contains("expected reload or status"), "{bad}");
        // A second server on a live socket is refused; the file goes with
        // the server.
        assert!(serve(&p, Control::default())
            .err()
            .unwrap()
            .contains("another process"));
        drop(server);
        assert!(!p.exists());
    }

    #[test]
    fn a_stale_socket_file_is_replaced_and_nothing_to_reload_is_said() {
        let p = path("stale");
        drop(UnixListener::bind(&p).unwrap()); // the file stays, nobody listens
        let _server = serve(&p, Control::default()).unwrap();
        let answer = request(&p, "reload", Duration::from_secs(5)).unwrap();
        assert_eq!(answer, "error: nothing to reload: no rules and no model");
        let e = request(
            &p.with_file_name("none.sock"),
            "reload",
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(e.contains("--control-socket"), "{e}");
    }
}
