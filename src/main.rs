use clap::Parser;
use fluxiondb::{signals, storage, Args, Command, CommandLine, Config};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let first = std::env::args_os().nth(1);
    if first.is_some_and(|a| CommandLine::starts_with_command(&a)) {
        return run_command(CommandLine::parse().command);
    }
    let mut args = Args::parse();
    if let Some(command) = args.command.take() {
        return run_command(command);
    }
    let config = match Config::from_args(args) {
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
    fluxiondb::configure_metrics(config.slow_request, config.large_response_bytes);
    if let Some(dir) = config.data_dir.as_deref() {
        if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
            eprintln!("fluxiondb: {} is not a directory", dir.display());
            return ExitCode::FAILURE;
        }
    }
    let server = match fluxiondb::start(config, storage::real()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fluxiondb: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("fluxiondb listening on {}", server.local_addr());
    let _ = std::io::stdout().flush();
    log::info!("listening on {}", server.local_addr());
    loop {
        match signals::wait() {
            Ok(signals::PROMOTE) => {
                log::info!("SIGUSR1 received: promoting");
                server.promote();
            }
            Ok(sig) => {
                log::info!("signal {sig} received: shutting down");
                break;
            }
            Err(e) => {
                log::error!("waiting for signals failed: {e}; shutting down");
                break;
            }
        }
    }
    server.shutdown();
    if !server.join() {
        // Logged where it failed; a supervisor sees that the stop was not clean.
        return ExitCode::FAILURE;
    }
    log::info!("stopped");
    ExitCode::SUCCESS
}

/// A subcommand instead of the server.
fn run_command(command: Command) -> ExitCode {
    match command {
        Command::Client(cmd) => fluxiondb::run_client(cmd),
        Command::Healthcheck(hc) => fluxiondb::run_healthcheck(&hc),
        Command::Restore(args) => fluxiondb::run_restore(&args),
    }
}
