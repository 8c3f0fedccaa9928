//! The one-request commands. Each prints what the upstream CLI prints: the answer's content as
//! indented JSON (`{"status":"ok"}` for the commands that change something), or a table.

use super::conn::Client;
use super::output::{print_json, print_table, Format};
use super::Conn;
use super::Error;
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Connects, runs `f`, closes.
fn with_client<T>(
    conn: &Conn,
    f: impl FnOnce(&mut Client) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut client = Client::connect(&conn.target()?)?;
    let out = f(&mut client);
    client.close();
    out
}

fn call(conn: &Conn, kind: &str, payload: Value) -> Result<Value, Error> {
    with_client(conn, |c| c.call(kind, &payload))
}

/// A member of an answer, decoded into the shape the upstream prints.
fn member<T: for<'de> Deserialize<'de>>(answer: &mut Value, name: &str) -> Result<T, Error> {
    serde_json::from_value(answer[name].take())
        .map_err(|e| Error::Server(format!("invalid answer from the server ({name}): {e}")))
}

/// Sends one request whose answer carries nothing to show, then prints `ok`.
fn call_ok(conn: &Conn, kind: &str, data: Value) -> Result<(), Error> {
    call(conn, kind, data)?;
    match conn.output {
        Format::Json => print_json(&json!({"status": "ok"})),
        Format::Table => print_table(&["STATUS"], &[vec!["ok".into()]]),
    }
}

#[derive(Serialize, Deserialize)]
struct Record {
    ts: i64,
    data: String,
}

pub fn fetch_collections(conn: &Conn) -> Result<(), Error> {
    let cols: Vec<String> = member(&mut call(conn, "cols", json!({}))?, "collections")?;
    match conn.output {
        Format::Json => print_json(&cols),
        Format::Table => print_table(
            &["COLLECTION"],
            &cols.into_iter().map(|c| vec![c]).collect::<Vec<_>>(),
        ),
    }
}

#[derive(Args, Debug, Clone)]
pub struct FetchLatest {
    #[command(flatten)]
    pub conn: Conn,
    /// Collection name (required)
    #[arg(long)]
    pub col: String,
    /// Document literal or /regex/ filter
    #[arg(long, default_value = "")]
    pub doc: String,
    /// Timestamp (seconds) to anchor the query [default: now]
    #[arg(long, allow_negative_numbers = true)]
    pub ts: Option<i64>,
    /// Optional lower bound timestamp (seconds)
    #[arg(long, allow_negative_numbers = true)]
    pub from: Option<i64>,
}

pub fn fetch_latest(a: &FetchLatest) -> Result<(), Error> {
    let mut p = json!({"col": a.col, "ts": a.ts.unwrap_or_else(now)});
    if !a.doc.is_empty() {
        p["doc"] = json!(a.doc);
    }
    if let Some(from) = a.from {
        p["from"] = json!(from);
    }
    let records: BTreeMap<String, Record> = member(&mut call(&a.conn, "qry", p)?, "records")?;
    match a.conn.output {
        Format::Json => print_json(&records),
        Format::Table => print_table(
            &["DOC", "TS", "DATA"],
            &records
                .into_iter()
                .map(|(d, r)| vec![d, r.ts.to_string(), r.data])
                .collect::<Vec<_>>(),
        ),
    }
}

#[derive(Args, Debug, Clone)]
pub struct FetchDocument {
    #[command(flatten)]
    pub conn: Conn,
    /// Collection name (required)
    #[arg(long)]
    pub col: String,
    /// Document name (required)
    #[arg(long)]
    pub doc: String,
    /// Start timestamp (seconds, inclusive)
    #[arg(long, allow_negative_numbers = true)]
    pub from: i64,
    /// End timestamp (seconds, inclusive)
    #[arg(long, allow_negative_numbers = true)]
    pub to: i64,
    /// Optional maximum number of records to return
    #[arg(long, allow_negative_numbers = true)]
    pub limit: Option<i64>,
    /// Reverse order (newest first)
    #[arg(long)]
    pub reverse: bool,
}

pub fn fetch_document(a: &FetchDocument) -> Result<(), Error> {
    let mut p = json!({"col": a.col, "doc": a.doc, "from": a.from, "to": a.to});
    if let Some(limit) = a.limit {
        p["limit"] = json!(limit);
    }
    if a.reverse {
        p["reverse"] = json!(true);
    }
    let records: Vec<Record> = member(&mut call(&a.conn, "qdoc", p)?, "records")?;
    match a.conn.output {
        Format::Json => print_json(&records),
        Format::Table => print_table(
            &["TS", "DATA"],
            &records
                .into_iter()
                .map(|r| vec![r.ts.to_string(), r.data])
                .collect::<Vec<_>>(),
        ),
    }
}

#[derive(Args, Debug, Clone)]
pub struct InsertRecord {
    #[command(flatten)]
    pub conn: Conn,
    /// Collection name (required)
    #[arg(long)]
    pub col: String,
    /// Document name (required)
    #[arg(long)]
    pub doc: String,
    /// Raw JSON string payload (required)
    #[arg(long)]
    pub data: String,
    /// Record timestamp in seconds [default: now]
    #[arg(long, allow_negative_numbers = true)]
    pub ts: Option<i64>,
}

pub fn insert_record(a: &InsertRecord) -> Result<(), Error> {
    let rec = json!([{"ts": a.ts.unwrap_or_else(now), "doc": a.doc, "data": a.data, "col": a.col}]);
    call_ok(&a.conn, "ins", rec)
}

#[derive(Args, Debug, Clone)]
pub struct SetValue {
    #[command(flatten)]
    pub conn: Conn,
    /// Collection name (required)
    #[arg(long)]
    pub col: String,
    /// Key name (required)
    #[arg(long)]
    pub key: String,
    /// Value string (required)
    #[arg(long)]
    pub value: String,
}

pub fn set_value(a: &SetValue) -> Result<(), Error> {
    call_ok(
        &a.conn,
        "sval",
        json!({"col": a.col, "key": a.key, "value": a.value}),
    )
}

#[derive(Args, Debug, Clone)]
pub struct GetValues {
    #[command(flatten)]
    pub conn: Conn,
    /// Collection name (required)
    #[arg(long)]
    pub col: String,
    /// Literal or /regex/ key filter
    #[arg(long)]
    pub key: Option<String>,
}

pub fn get_values(a: &GetValues) -> Result<(), Error> {
    let mut answer = match a.key.as_deref().filter(|k| !k.is_empty()) {
        Some(key) => call(&a.conn, "gvalues", json!({"col": a.col, "key": key}))?,
        None => call(&a.conn, "gvals", json!({"col": a.col}))?,
    };
    let values: BTreeMap<String, String> = member(&mut answer, "values")?;
    match a.conn.output {
        Format::Json => print_json(&values),
        Format::Table => print_table(
            &["KEY", "VALUE"],
            &values
                .into_iter()
                .map(|(k, v)| vec![k, v])
                .collect::<Vec<_>>(),
        ),
    }
}

#[derive(Args, Debug, Clone)]
pub struct ColKey {
    #[command(flatten)]
    pub conn: Conn,
    /// Collection name (required)
    #[arg(long)]
    pub col: String,
    /// Key name (required)
    #[arg(long)]
    pub key: String,
}

pub fn delete_value(a: &ColKey) -> Result<(), Error> {
    call_ok(&a.conn, "rval", json!({"col": a.col, "key": a.key}))
}

#[derive(Args, Debug, Clone)]
pub struct ColOnly {
    #[command(flatten)]
    pub conn: Conn,
    /// Collection name (required)
    #[arg(long)]
    pub col: String,
}

pub fn list_keys(a: &ColOnly) -> Result<(), Error> {
    let keys: Vec<String> = member(&mut call(&a.conn, "gkeys", json!({"col": a.col}))?, "keys")?;
    match a.conn.output {
        Format::Json => print_json(&keys),
        Format::Table => print_table(
            &["KEY"],
            &keys.into_iter().map(|k| vec![k]).collect::<Vec<_>>(),
        ),
    }
}

pub fn delete_collection(a: &ColOnly) -> Result<(), Error> {
    call_ok(&a.conn, "dcol", json!({"col": a.col}))
}

#[derive(Args, Debug, Clone)]
pub struct DeleteDocument {
    #[command(flatten)]
    pub conn: Conn,
    /// Collection name (required)
    #[arg(long)]
    pub col: String,
    /// Document name (required)
    #[arg(long)]
    pub doc: String,
}

pub fn delete_document(a: &DeleteDocument) -> Result<(), Error> {
    call_ok(&a.conn, "ddoc", json!({"doc": a.doc, "col": a.col}))
}

/// One connection as the upstream prints it (its field order).
#[derive(Serialize, Deserialize)]
struct Connection {
    ip: String,
    since: i64,
    #[serde(rename = "self")]
    is_self: bool,
    name: Option<String>,
}

pub fn connections(conn: &Conn) -> Result<(), Error> {
    let conns: Vec<Connection> = member(&mut call(conn, "conn", json!({}))?, "connections")?;
    match conn.output {
        Format::Json => print_json(&conns),
        Format::Table => print_table(
            &["IP", "SINCE_MS", "NAME", "SELF"],
            &conns
                .into_iter()
                .map(|c| {
                    vec![
                        c.ip,
                        c.since.to_string(),
                        c.name.unwrap_or_default(),
                        if c.is_self { "*".into() } else { String::new() },
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
}

/// The answer to `keys add` / `keys remove` as the upstream prints it.
#[derive(Serialize, Deserialize)]
struct KeyAnswer {
    id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    scope: String,
}

fn print_key_answer(answer: Value, format: Format) -> Result<(), Error> {
    let a: KeyAnswer = serde_json::from_value(answer)
        .map_err(|e| Error::Server(format!("invalid answer from the server: {e}")))?;
    match format {
        Format::Json => print_json(&a),
        Format::Table => print_table(&["STATUS", "SCOPE"], &[vec![a.status, a.scope]]),
    }
}

#[derive(Args, Debug, Clone)]
pub struct AddKey {
    #[command(flatten)]
    pub conn: Conn,
    /// Key identifier to create (required)
    #[arg(long)]
    pub key: String,
    /// Scope: readonly | read_write | read_write_delete
    #[arg(long, default_value = "readonly")]
    pub scope: String,
}

pub fn add_key(a: &AddKey) -> Result<(), Error> {
    let scope = a.scope.to_lowercase();
    if !matches!(
        scope.as_str(),
        "readonly" | "read_write" | "read_write_delete"
    ) {
        return Err(Error::Usage(format!(
            "invalid scope {:?} (valid: readonly, read_write, read_write_delete)",
            a.scope
        )));
    }
    let answer = call(
        &a.conn,
        "keys",
        json!({"action": "add", "key": a.key, "scope": scope}),
    )?;
    print_key_answer(answer, a.conn.output)
}

#[derive(Args, Debug, Clone)]
pub struct RemoveKey {
    #[command(flatten)]
    pub conn: Conn,
    /// Key identifier to remove (required)
    #[arg(long)]
    pub key: String,
}

pub fn remove_key(a: &RemoveKey) -> Result<(), Error> {
    let answer = call(&a.conn, "keys", json!({"action": "remove", "key": a.key}))?;
    print_key_answer(answer, a.conn.output)
}
