//! `fluxiondb-bench`: a load generator for FluxionDB. See `benches/README.md`.
//!
//! One file per concern: `args` (flags), `wire` (WebSocket framing), `client` (one pipelined
//! connection), `requests` (request templates), `load` (threads, timing, /proc around a run),
//! `scenarios` (what each subcommand runs), `standard` (the `make bench` set and its summary),
//! `echo` (the answer-size ceiling: a captured answer replayed),
//! `subscribe` (live subscriptions), `subscribe_conn`, `push_scan` and `delivery` (its
//! subscribers' reading and checking), `stats` (histogram, counters), `procfs` (/proc and the
//! machine), `spawn` (child processes), `report` (JSON lines, tables, results files).

mod args;
mod client;
mod delivery;
mod echo;
mod load;
mod payload;
mod procfs;
mod push_scan;
mod report;
mod requests;
mod scenarios;
mod spawn;
mod standard;
mod stats;
mod subscribe;
mod subscribe_conn;
mod wire;

use args::{Cli, Command, ReadKind};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Insert(a) => scenarios::cmd_insert(a),
        Command::Fill(a) => scenarios::cmd_fill(a),
        Command::Qry(a) => scenarios::cmd_query(a, ReadKind::Qry),
        Command::Qdoc(a) if a.newest => scenarios::cmd_query(a, ReadKind::QdocNewest),
        Command::Qdoc(a) => scenarios::cmd_query(a, ReadKind::Qdoc),
        Command::Mixed(a) => scenarios::cmd_mixed(a),
        Command::Echo(a) => scenarios::cmd_echo(a),
        Command::Standard(a) => standard::run(a),
        Command::Telemetry { count } => {
            for r in payload::telemetry(payload::SEED, *count) {
                println!("{r}");
            }
            Ok(())
        }
        Command::Subscribe(a) => subscribe::cmd_subscribe(a),
        Command::EchoServer(a) => {
            echo::EchoServer::bind(&a.bind, a.port, echo::Reply::ack()).map(|e| {
                println!("echo listening on {}", e.addr());
                e.wait()
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fluxiondb-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
