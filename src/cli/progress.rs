//! Progress of export and import on stderr: a bar with records/s and an ETA on a terminal
//! (indicatif), a plain line every few seconds otherwise, nothing with `--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Counters the workers bump; `total` and `done` are in the unit of the bar (documents for an
/// export, bytes for an import), `records` is what is reported per second.
#[derive(Default)]
pub struct Counters {
    pub total: AtomicU64,
    pub done: AtomicU64,
    pub records: AtomicU64,
}

pub struct Progress {
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

#[derive(Clone, Copy)]
pub enum Unit {
    Documents,
    Bytes,
}

impl Progress {
    pub fn start(label: &'static str, unit: Unit, quiet: bool) -> Progress {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = if quiet {
            None
        } else {
            let (c, s) = (counters.clone(), stop.clone());
            let tty = std::io::stderr().is_terminal();
            Some(thread::spawn(move || report(label, unit, tty, &c, &s)))
        };
        Progress {
            counters,
            stop,
            thread,
        }
    }

    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn report(label: &str, unit: Unit, tty: bool, c: &Counters, stop: &AtomicBool) {
    let started = Instant::now();
    let rate = |records: u64| records as f64 / started.elapsed().as_secs_f64().max(1e-3);
    if tty {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let unit_tpl = match unit {
            Unit::Documents => "{pos}/{len} docs",
            Unit::Bytes => "{bytes}/{total_bytes}",
        };
        let template = format!("{label} {{wide_bar}} {unit_tpl} · {{msg}} · ETA {{eta}}");
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        loop {
            let stopping = stop.load(Ordering::Acquire);
            let records = c.records.load(Ordering::Relaxed);
            bar.set_length(c.total.load(Ordering::Relaxed));
            bar.set_position(c.done.load(Ordering::Relaxed));
            bar.set_message(format!("{records} records, {:.0}/s", rate(records)));
            if stopping {
                bar.finish();
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
    let mut last = Instant::now();
    loop {
        let stopping = stop.load(Ordering::Acquire);
        if stopping || last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            let records = c.records.load(Ordering::Relaxed);
            let (done, total) = (
                c.done.load(Ordering::Relaxed),
                c.total.load(Ordering::Relaxed),
            );
            let pct = if total > 0 {
                done as f64 * 100.0 / total as f64
            } else {
                0.0
            };
            let eta = if done > 0 && total > done {
                let secs = started.elapsed().as_secs_f64() * (total - done) as f64 / done as f64;
                format!(", ETA {secs:.0} s")
            } else {
                String::new()
            };
            let what = match unit {
                Unit::Documents => format!("{done}/{total} documents"),
                Unit::Bytes => format!("{:.1}/{:.1} MB", done as f64 / 1e6, total as f64 / 1e6),
            };
            eprintln!(
                "{label}: {pct:.1}% ({what}), {records} records, {:.0} records/s, {:.1} s elapsed{eta}",
                rate(records),
                started.elapsed().as_secs_f64()
            );
            if stopping {
                return;
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
}
