//! The command-line client: `fluxiondb <command> …` talks to a running server over WebSocket.
//! The commands, flags, JSON output and archive layout are those of the upstream Go CLI; each
//! command also prints a table for people with `--output table`.
//!
//! Files: `conn` (the connection), `commands` (the one-request commands), `export` (with
//! `files_ahead`, its files created ahead), `import`,
//! `legacy` (the old per-record JSON folders), `archive` (file layout and names), `page` (a
//! `qdoc` answer turned into archive lines), `scan` (token readers), `progress`, `output`
//! (JSON and tables).

mod archive;
mod avx2;
mod commands;
mod conn;
mod durable;
mod error;
mod export;
mod files_ahead;
mod frames;
mod handshake;
mod import;
mod legacy;
mod output;
mod page;
mod progress;
pub mod restore;
mod scan;

pub use error::Error;

use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use output::Format;

/// The connection flags every command takes.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    /// Server URL, e.g. ws://localhost:8080
    #[arg(long, env = "FLUXIONDB_URL")]
    pub url: Option<String>,
    /// API key
    #[arg(long, env = "FLUXIONDB_APIKEY", hide_env_values = true)]
    pub apikey: Option<String>,
    /// Optional connection name, shown by `connections`
    #[arg(long)]
    pub name: Option<String>,
    /// Output: json (as the upstream CLI prints it) or table
    #[arg(long, value_enum, default_value = "json")]
    pub output: Format,
}

impl Conn {
    fn target(&self) -> Result<conn::Target, Error> {
        let url = self.url.clone().filter(|s| !s.is_empty());
        let url =
            url.ok_or_else(|| Error::Usage("missing required --url or FLUXIONDB_URL".into()))?;
        let apikey = self.apikey.clone().filter(|s| !s.is_empty());
        let apikey = apikey
            .ok_or_else(|| Error::Usage("missing required --apikey or FLUXIONDB_APIKEY".into()))?;
        Ok(conn::Target {
            url,
            apikey,
            name: self.name.clone().filter(|s| !s.is_empty()),
        })
    }
}

/// How an export or import runs (not in the upstream CLI, which sends one request at a time).
#[derive(Args, Debug, Clone)]
pub struct Transfer {
    /// Connections used in parallel (documents are shared out among them)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel: u32,
    /// Requests in flight on each connection [default: export 2, import 4]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub depth: Option<u32>,
    /// Records per request (import: records per insert; export: records per page)
    #[arg(long)]
    pub batch: Option<u32>,
    /// No progress output on stderr
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// The client commands (`fluxiondb <command> --help` for each one's flags).
#[derive(Subcommand, Debug, Clone)]
pub enum ClientCommand {
    /// List all collections
    FetchCollections {
        #[command(flatten)]
        conn: Conn,
    },
    /// Fetch latest records per document for a collection
    FetchLatest(commands::FetchLatest),
    /// Fetch records for a document within a time range
    FetchDocument(commands::FetchDocument),
    /// Insert a single record into a document
    InsertRecord(commands::InsertRecord),
    /// Set a key/value entry
    SetValue(commands::SetValue),
    /// Fetch key/value entries, optionally filtered by literal or /regex/ key
    GetValues(commands::GetValues),
    /// Delete a key/value entry
    DeleteValue(commands::ColKey),
    /// List all keys within a key/value collection
    ListKeys(commands::ColOnly),
    /// Delete an entire document
    DeleteDocument(commands::DeleteDocument),
    /// Delete an entire collection
    DeleteCollection(commands::ColOnly),
    /// List active FluxionDB connections
    Connections {
        #[command(flatten)]
        conn: Conn,
    },
    /// Create a scoped API key (requires master key)
    AddKey(commands::AddKey),
    /// Remove a previously created API key (requires master key)
    RemoveKey(commands::RemoveKey),
    /// Export collections, key/value pairs, and/or API keys to DIR/<collection>/<document>.jsonl
    Export(ExportArgs),
    /// Import collections and/or API keys from exported files (or --legacy folders)
    Import(ImportArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// Directory where the export files will be written (required)
    #[arg(long = "out-dir")]
    pub out_dir: PathBuf,
    /// Collection to export
    #[arg(long)]
    pub col: Option<String>,
    /// Export API keys to apikeys.json (master key required)
    #[arg(long = "api-keys")]
    pub api_keys: bool,
    /// Export all collections and API keys
    #[arg(long)]
    pub all: bool,
    /// Do not wait for the files to reach the disk (faster on a slow disk; a crash or power cut
    /// soon after may leave files empty or missing)
    #[arg(long = "no-sync")]
    pub no_sync: bool,
    #[command(flatten)]
    pub transfer: Transfer,
}

impl ExportArgs {
    /// Whether the files are made durable before the export reports success.
    pub fn sync(&self) -> bool {
        !self.no_sync
    }
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// Directory that holds the exported collection (required)
    #[arg(long = "in-dir")]
    pub in_dir: PathBuf,
    /// Collection to import
    #[arg(long)]
    pub col: Option<String>,
    /// Import API keys from apikeys.json (master key required)
    #[arg(long = "api-keys")]
    pub api_keys: bool,
    /// Import every collection and API keys from the directory
    #[arg(long)]
    pub all: bool,
    /// Import legacy layout: <in-dir>/<collection>/<document>/*.json
    #[arg(long)]
    pub legacy: bool,
    #[command(flatten)]
    pub transfer: Transfer,
}

/// What `export` and `import` check before connecting: the folder flag (`dir_flag`) was
/// given, and at least one of `--col`, `--api-keys`, `--all` was. Returns the collection of
/// `--col` (an empty one counts as not given).
fn chosen_collection(
    dir: &Path,
    dir_flag: &str,
    col: Option<&str>,
    api_keys: bool,
    all: bool,
) -> Result<Option<String>, Error> {
    if dir.as_os_str().is_empty() {
        return Err(Error::Usage(format!("missing required {dir_flag}")));
    }
    let col = col.filter(|c| !c.is_empty()).map(str::to_owned);
    if !all && col.is_none() && !api_keys {
        return Err(Error::Usage(
            "specify at least one of --col, --api-keys, or --all".into(),
        ));
    }
    Ok(col)
}

/// Runs one client command; errors are printed as the upstream prints them (`Error: …`).
pub fn run(cmd: ClientCommand) -> ExitCode {
    match dispatch(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cmd: ClientCommand) -> Result<(), Error> {
    use ClientCommand as C;
    match cmd {
        C::FetchCollections { conn } => commands::fetch_collections(&conn),
        C::FetchLatest(a) => commands::fetch_latest(&a),
        C::FetchDocument(a) => commands::fetch_document(&a),
        C::InsertRecord(a) => commands::insert_record(&a),
        C::SetValue(a) => commands::set_value(&a),
        C::GetValues(a) => commands::get_values(&a),
        C::DeleteValue(a) => commands::delete_value(&a),
        C::ListKeys(a) => commands::list_keys(&a),
        C::DeleteDocument(a) => commands::delete_document(&a),
        C::DeleteCollection(a) => commands::delete_collection(&a),
        C::Connections { conn } => commands::connections(&conn),
        C::AddKey(a) => commands::add_key(&a),
        C::RemoveKey(a) => commands::remove_key(&a),
        C::Export(a) => export::run(&a),
        C::Import(a) => import::run(&a),
    }
}
