//! `make fuzz` (`cargo run --release --manifest-path fuzz/Cargo.toml -- SECONDS`): a seeded,
//! structure-aware mutation fuzzer for the request decoder (envelope → typed request, plus
//! pattern compilation), runnable on the stable toolchain. See README.md.
//!
//! Arguments: `SECONDS [--seed N] [--save]`. Every input runs under `catch_unwind` on a thread
//! with the server's connection stack size, and its peak heap use is measured by a counting
//! allocator. A panic, an oracle mismatch, an invariant failure or an allocation over the
//! bound is written to `fuzz/crashes/` and makes the run exit 1.

use fluxiondb_fuzz::counting::{alloc_bound, measured};
use fluxiondb_fuzz::gen::{self, Rng};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The release server's connection-thread stack (src/server/listener.rs), so a deep recursion
/// that would crash the server overflows here too. (Meant for optimized builds, as `make fuzz`
/// runs it: an unoptimized build needs larger frames.)
const STACK_SIZE: usize = 256 << 10;
/// Largest generated input.
const MAX_LEN: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------

struct Stats {
    execs: u64,
    structured: u64,
    mutated: u64,
    max_peak: usize,
    max_ratio: f64,
    max_ratio_len: usize,
}

/// FNV-1a of `bytes`.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Writes `bytes` to `dir/<name>`, or to `dir/<name>-<hash>` when that name is taken.
fn save(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    let mut path = dir.join(name);
    if path.exists() {
        path = dir.join(format!("{name}-{:016x}", hash(bytes)));
    }
    let _ = std::fs::write(&path, bytes);
    path
}

/// The file name of a corpus entry: the outcome it was the first to reach, from its
/// `signature`, e.g. `qdoc-from-must-not-be-greater-than-to`, `dmrec-item-ts-must-be-a-positive-integer`,
/// `envelope-type-must-be-a-non-empty-string`, `drec-ok` (decodes), `unknown-type`.
fn corpus_name(signature: &str) -> String {
    let s = signature
        .strip_prefix("env:")
        .map(|rest| {
            format!(
                "envelope:{}",
                rest.trim_end_matches(":true").trim_end_matches(":false")
            )
        })
        .unwrap_or_else(|| signature.to_string())
        .replace("invalid payload: ", "")
        .replace("invalid message: ", "")
        .replace("[]", "item");
    let mut name = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    name.trim_matches('-').to_string()
}

fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = gen::builtin_corpus();
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_file() {
                if let Ok(b) = std::fs::read(&p) {
                    out.push(b);
                }
            }
        }
    }
    out
}

/// A coarse outcome signature: new signatures enter the in-memory corpus (cheap feedback in
/// place of coverage instrumentation).
fn signature(bytes: &[u8]) -> String {
    use fluxiondb::wire::envelope;
    use fluxiondb::wire::{decode, MsgType};
    let text = String::from_utf8_lossy(bytes);
    match envelope::parse(&text) {
        Err(e) => format!("env:{}:{}", e.message, e.id.is_some()),
        Ok(env) => match MsgType::parse(&env.kind) {
            None => "unknown-type".into(),
            Some(k) => match decode(k, &env.data) {
                Ok(_) => format!("{k:?}:ok"),
                Err(e) => {
                    let e = e.to_string();
                    // Drop array indices so `[3].ts` and `[4].ts` are one signature.
                    let e: String = e.chars().filter(|c| !c.is_ascii_digit()).collect();
                    format!("{k:?}:{e}")
                }
            },
        },
    }
}

fn run(seconds: u64, seed: u64, save_new: bool, root: &Path) -> Result<Stats, String> {
    let corpus_dir = root.join("corpus");
    let crash_dir = root.join("crashes");
    let mut corpus = load_corpus(&corpus_dir);
    let mut seen: HashSet<String> = corpus.iter().map(|b| signature(b)).collect();
    let initial = corpus.len();
    let mut rng = Rng::new(seed);
    let mut st = Stats {
        execs: 0,
        structured: 0,
        mutated: 0,
        max_peak: 0,
        max_ratio: 0.0,
        max_ratio_len: 0,
    };
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut next_report = start + Duration::from_secs(10);
    let mut failure: Option<String> = None;
    while Instant::now() < end && failure.is_none() {
        for _ in 0..64 {
            let structured = rng.chance(1, 2);
            let (bytes, case) = if structured {
                let case = gen::structured(&mut rng);
                (case.frame.clone().into_bytes(), Some(case))
            } else {
                let base = rng.pick(&corpus).clone();
                let base = if rng.chance(1, 3) {
                    gen::structured(&mut rng).frame.into_bytes()
                } else {
                    base
                };
                (gen::mutate(&mut rng, &base, MAX_LEN), None)
            };
            let outcome = std::panic::catch_unwind(|| {
                measured(|| match &case {
                    Some(c) => gen::check_case(c).and_then(|_| gen::check_bytes(&bytes)),
                    None => gen::check_bytes(&bytes),
                })
            });
            st.execs += 1;
            if structured {
                st.structured += 1;
            } else {
                st.mutated += 1;
            }
            let problem = match outcome {
                Err(p) => Some(format!(
                    "panic: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                )),
                Ok((Err(e), _)) => Some(e),
                Ok((Ok(()), peak)) => {
                    st.max_peak = st.max_peak.max(peak);
                    if bytes.len() >= 4096 {
                        let ratio = peak as f64 / bytes.len() as f64;
                        if ratio > st.max_ratio {
                            st.max_ratio = ratio;
                            st.max_ratio_len = bytes.len();
                        }
                    }
                    (peak > alloc_bound(bytes.len())).then(|| {
                        format!(
                            "allocation: {} bytes for an input of {} bytes (bound {})",
                            peak,
                            bytes.len(),
                            alloc_bound(bytes.len())
                        )
                    })
                }
            };
            if let Some(p) = problem {
                let path = save(&crash_dir, &format!("crash-{:016x}", hash(&bytes)), &bytes);
                failure = Some(format!("{p}\n  input saved to {}", path.display()));
                break;
            }
            if !structured && bytes.len() <= 4096 {
                let sig = signature(&bytes);
                if seen.insert(sig) {
                    corpus.push(bytes);
                }
            }
        }
        if Instant::now() >= next_report {
            let s = start.elapsed().as_secs_f64();
            println!(
                "{:>6.0} s  {:>10} execs  {:>8.0}/s  corpus {}  peak alloc {} KiB  max alloc/byte {:.1} (len {})",
                s,
                st.execs,
                st.execs as f64 / s,
                corpus.len(),
                st.max_peak >> 10,
                st.max_ratio,
                st.max_ratio_len
            );
            next_report += Duration::from_secs(10);
        }
    }
    if save_new {
        for b in &corpus[initial..] {
            save(&corpus_dir, &corpus_name(&signature(b)), b);
        }
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(st),
    }
}

fn main() {
    let mut seconds = 60u64;
    let mut seed = 0u64;
    let mut save_new = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(0),
            "--save" => save_new = true,
            s => match s.parse() {
                Ok(n) => seconds = n,
                Err(_) => {
                    eprintln!("usage: fluxiondb-fuzz [SECONDS] [--seed N] [--save]");
                    std::process::exit(2);
                }
            },
        }
    }
    if seed == 0 {
        seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    println!("fuzzing the request decoder for {seconds} s, seed {seed}, stack {STACK_SIZE} bytes");
    // Panics are caught and reported per input; keep the default hook quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let worker = std::thread::Builder::new()
        .name("fuzz".into())
        .stack_size(STACK_SIZE)
        .spawn(move || run(seconds, seed, save_new, &root))
        .expect("spawn the fuzz thread");
    match worker.join() {
        Ok(Ok(st)) => {
            println!(
                "done: {} executions ({} structured with oracle, {} mutated), {:.0}/s; \
                 peak allocation per input {} KiB; max allocation per input byte {:.1} \
                 (input of {} bytes); no failure (seed {seed})",
                st.execs,
                st.structured,
                st.mutated,
                st.execs as f64 / seconds.max(1) as f64,
                st.max_peak >> 10,
                st.max_ratio,
                st.max_ratio_len
            );
        }
        Ok(Err(f)) => {
            println!("FAILURE (seed {seed}): {f}");
            std::process::exit(1);
        }
        Err(_) => {
            println!("FAILURE (seed {seed}): the fuzz thread died");
            std::process::exit(1);
        }
    }
}
