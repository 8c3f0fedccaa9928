use clap::Parser;
use fluxiondb::config::{Args, Config};
use fluxiondb::persist;
use fluxiondb::server::{signals, Boot, Server};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Recovers the data folder, then imports a seed folder into it if asked.
fn open_data(config: &Config, dir: &Path) -> Result<Boot, Box<dyn std::error::Error>> {
    let mut r = persist::open(dir, config.fsync, config.repair)?;
    let rep = &r.report;
    let secs = rep.elapsed.as_secs_f64().max(1e-9);
    log::info!(
        "recovered {} collections, {} records, {} API keys, {} log entries from {} in {:.2} s ({:.0} records/s, {:.1} MB/s)",
        rep.collections,
        rep.records,
        rep.keys,
        rep.log_entries,
        dir.display(),
        secs,
        rep.records as f64 / secs,
        rep.bytes_read as f64 / secs / 1e6
    );
    if let Some(seed) = &config.import_seed {
        let imported =
            persist::import_seed(&r.journal, &r.store, &mut r.keys, &config.secret_key, seed)?;
        match imported {
            Some(s) => log::info!(
                "imported the seed folder {}: {} collections, {} documents, {} records, {} values, {} API keys ({} records without a positive timestamp skipped)",
                seed.display(),
                s.collections,
                s.documents,
                s.records,
                s.values,
                s.keys,
                s.skipped
            ),
            None => log::info!(
                "{} was imported into this data folder before; not importing it again",
                seed.display()
            ),
        }
    }
    Ok(Boot {
        store: r.store,
        keys: r.keys,
        journal: Some(r.journal),
    })
}

fn main() -> ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fluxiondb: {e}");
            return ExitCode::from(2);
        }
    };
    let log_config = simplelog::ConfigBuilder::new()
        .set_thread_level(log::LevelFilter::Off)
        .build();
    let _ = simplelog::WriteLogger::init(config.log_level, log_config, std::io::stderr());
    if let Err(e) = signals::block() {
        eprintln!("fluxiondb: cannot set up signal handling: {e}");
        return ExitCode::FAILURE;
    }
    let boot = match &config.data_dir {
        None => Boot::default(),
        Some(dir) => match open_data(&config, dir) {
            Ok(boot) => boot,
            Err(e) => {
                log::error!("{e}");
                eprintln!("fluxiondb: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    boot.store.set_memory_limit(config.max_memory);
    if config.max_memory > 0 {
        let (held, limit) = (boot.store.held_bytes(), config.max_memory);
        log::info!(
            "memory limit {} MiB; the store holds {} MiB",
            limit >> 20,
            held >> 20
        );
        if let Err(full) = boot.store.check_memory() {
            log::warn!("{full}: writes are refused until records are deleted");
        }
    }
    let mut server = match Server::start(config, boot) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fluxiondb: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("fluxiondb listening on {}", server.local_addr());
    let _ = std::io::stdout().flush();
    log::info!("listening on {}", server.local_addr());
    match signals::wait() {
        Ok(sig) => log::info!("signal {sig} received: shutting down"),
        Err(e) => log::error!("waiting for signals failed: {e}; shutting down"),
    }
    server.shutdown();
    log::info!("stopped");
    ExitCode::SUCCESS
}
