//! Handing reloaded state to workers: a mailbox that holds the newest
//! value a worker has not taken yet (it takes it at a burst boundary), and
//! the thread that reloads when SIGUSR2 or the control socket asks. The
//! rules and the segmentation policy reload through both.

use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The reloader's side of one worker's mailbox.
pub struct Mailbox<T> {
    tx: Sender<T>,
    /// The same channel's receiver: a value the worker has not taken yet
    /// is taken back when a newer one comes.
    stale: Receiver<T>,
}

/// A mailbox and the worker's end of it (`try_recv` between bursts).
pub fn mailbox<T>() -> (Mailbox<T>, Receiver<T>) {
    let (tx, rx) = bounded(1);
    (
        Mailbox {
            tx,
            stale: rx.clone(),
        },
        rx,
    )
}

impl<T> Mailbox<T> {
    /// Leaves `v` for the worker, in place of what it has not taken (an
    /// idle worker gets only the newest).
    pub fn post(&self, v: T) {
        while self.stale.try_recv().is_ok() {}
        let _ = self.tx.try_send(v);
    }
}

/// A reloader's thread, stopped when the pipeline ends.
pub struct ReloadThread {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<()>,
}

impl ReloadThread {
    /// Calls `step(true)` whenever `trigger` is set, else `step(false)`
    /// about every 20 ms, until stopped.
    pub fn start(
        name: &str,
        trigger: Arc<AtomicBool>,
        mut step: impl FnMut(bool) + Send + 'static,
    ) -> std::io::Result<ReloadThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
                let asked = trigger.swap(false, Ordering::AcqRel);
                step(asked);
                if asked {
                    continue;
                }
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            })?;
        Ok(ReloadThread { stop, handle })
    }

    /// Stops it (a reload under way finishes first) and waits.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_did_not_take_a_value_gets_only_the_newest() {
        let (m, rx) = mailbox();
        m.post(1);
        m.post(2);
        assert_eq!(rx.try_recv(), Ok(2));
        assert!(rx.try_recv().is_err());
    }
}
