//! `export`: collections to `DIR/<collection>/<document>.jsonl` + `key_value.json`, API keys to
//! `DIR/apikeys.json`. Documents are read in pages (`qdoc` with `limit`, resuming after the last
//! timestamp) and written as they arrive, so memory stays bounded whatever the size; each
//! connection keeps `--depth` documents in flight, and `--parallel` connections share the
//! documents out.

use super::archive::{collection_dir, KEYS_FILE, KV_FILE};
use super::conn::{Client, Target};
use super::durable::{self, Batches, Pending};
use super::files_ahead::{with_files_ahead, FilesAhead};
use super::output::{pretty, print_json, print_table, push_json_str, Format};
use super::page;
use super::progress::{Counters, Progress, Unit};
use super::Error;
use super::{chosen_collection, ExportArgs};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::Ordering;

const DEFAULT_PAGE: u32 = 10_000;
/// Pages in flight per connection. Two keep the server and the writer busy; more only hold
/// more ~700 KB answers in memory at once, and measured slower (0.41–0.43 s against
/// 0.44–0.49 s for 10 M records with four, `benches/results/2026-12-06-cli-vm-8.md`).
const DEFAULT_DEPTH: u32 = 2;
/// Buffer of each document's file: small pages are gathered, a large page's lines (a whole
/// answer's) go to the file in one write.
const FILE_BUFFER: usize = 256 * 1024;

#[derive(Serialize)]
pub struct ColSummary {
    collection: String,
    documents: usize,
    records: u64,
    #[serde(rename = "outputDir")]
    output_dir: String,
}

#[derive(Serialize)]
pub struct KeysSummary {
    keys: usize,
    #[serde(rename = "outputFile")]
    output_file: String,
}

#[derive(Serialize)]
pub struct ExportResult {
    #[serde(rename = "outputDir")]
    output_dir: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    collections: Vec<ColSummary>,
    #[serde(rename = "apiKeys", skip_serializing_if = "Option::is_none")]
    api_keys: Option<KeysSummary>,
}

/// One API key as `apikeys.json` holds it.
#[derive(Serialize, Deserialize)]
pub struct KeyInfo {
    pub key: String,
    pub scope: String,
    pub deletable: bool,
}

pub fn run(a: &ExportArgs) -> Result<(), Error> {
    let col = chosen_collection(&a.out_dir, "--out-dir", a.col.as_deref(), a.api_keys, a.all)?;
    let target = a.conn.target()?;
    let mut main = Client::connect(&target)?;
    let collections = if a.all {
        let mut cols: Vec<String> =
            serde_json::from_value(main.call("cols", &json!({}))?["collections"].take())
                .map_err(|e| Error::Server(format!("fetch collections: invalid answer: {e}")))?;
        cols.sort();
        cols
    } else {
        col.into_iter().collect()
    };
    for c in &collections {
        collection_dir(&a.out_dir, c)?;
    }
    let mut result = ExportResult {
        output_dir: a.out_dir.display().to_string(),
        collections: Vec::new(),
        api_keys: None,
    };
    let page = a.transfer.batch.unwrap_or(DEFAULT_PAGE).max(1) as usize;
    let depth = a.transfer.depth.unwrap_or(DEFAULT_DEPTH) as usize;
    let progress = Progress::start("export", Unit::Documents, a.transfer.quiet);
    let mut workers: Vec<Client> = Vec::new();
    for col in &collections {
        let summary = export_collection(
            &target,
            &mut main,
            &mut workers,
            a,
            col,
            page,
            depth,
            &progress.counters,
        )
        .map_err(|e| e.context(format!("export collection {col}")))?;
        result.collections.push(summary);
    }
    if a.api_keys || a.all {
        result.api_keys = Some(export_keys(&mut main, &a.out_dir, a.sync())?);
    }
    progress.finish();
    Client::close_all(main, workers);
    match a.conn.output {
        Format::Json => print_json(&result),
        Format::Table => {
            let mut rows: Vec<Vec<String>> = result
                .collections
                .iter()
                .map(|c| {
                    vec![
                        c.collection.clone(),
                        c.documents.to_string(),
                        c.records.to_string(),
                        c.output_dir.clone(),
                    ]
                })
                .collect();
            if let Some(k) = &result.api_keys {
                rows.push(vec![
                    "(API keys)".into(),
                    String::new(),
                    k.keys.to_string(),
                    k.output_file.clone(),
                ]);
            }
            print_table(&["COLLECTION", "DOCUMENTS", "RECORDS", "WRITTEN TO"], &rows)
        }
    }
}

/// Document names of a collection (from the latest record of each, as the upstream does),
/// with the timestamp of that latest record.
pub fn list_documents(client: &mut Client, col: &str) -> Result<Vec<(String, i64)>, Error> {
    #[derive(Deserialize)]
    struct Answer {
        records: BTreeMap<String, Latest>,
    }
    #[derive(Deserialize)]
    struct Latest {
        ts: i64,
    }
    client.send("qry", &json!({"col": col, "ts": i64::MAX}).to_string())?;
    let text = client.recv()?;
    let answer: Answer = serde_json::from_str(text)
        .map_err(|e| Error::Server(format!("invalid answer to qry: {e}")))?;
    Ok(answer
        .records
        .into_iter()
        .map(|(doc, latest)| (doc, latest.ts))
        .collect())
}

#[allow(clippy::too_many_arguments)]
fn export_collection(
    target: &Target,
    main: &mut Client,
    workers: &mut Vec<Client>,
    a: &ExportArgs,
    col: &str,
    page: usize,
    depth: usize,
    counters: &Counters,
) -> Result<ColSummary, Error> {
    let dir = collection_dir(&a.out_dir, col)?;
    durable::create_dir(&dir, a.sync())?;
    // The upstream skips a document named "" (it cannot be imported back under that name).
    let (docs, latest): (Vec<String>, Vec<i64>) = list_documents(main, col)?
        .into_iter()
        .filter(|(d, _)| !d.is_empty())
        .unzip();
    counters
        .total
        .fetch_add(docs.len() as u64, Ordering::Relaxed);
    let parallel = (a.transfer.parallel as usize)
        .min(docs.len().div_ceil(depth))
        .max(1);
    while workers.len() < parallel {
        workers.push(Client::connect(target)?);
    }
    let mut col_json = String::new();
    push_json_str(&mut col_json, col);
    let complete = Batches::new(&dir, a.sync());
    let results: Vec<Result<u64, Error>> = with_files_ahead(&dir, &docs, |files| {
        std::thread::scope(|s| {
            let handles: Vec<_> = workers
                .iter_mut()
                .take(parallel)
                .map(|client| {
                    let docs = Docs {
                        names: &docs,
                        latest: &latest,
                        col_json: &col_json,
                        files,
                        complete: &complete,
                    };
                    s.spawn(move || export_docs(client, docs, page, depth, counters))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or(Err(Error::Internal("export worker panicked")))
                })
                .collect()
        })
    });
    let mut records = 0;
    for r in results {
        records += r?;
    }
    complete.finish()?;
    let values: BTreeMap<String, String> =
        serde_json::from_value(main.call("gvals", &json!({"col": col}))?["values"].take())
            .map_err(|e| Error::Server(format!("invalid answer to gvals: {e}")))?;
    // Last in the folder: its fsync of the folder also makes the documents' renames durable.
    durable::write_file(&dir.join(KV_FILE), &pretty(&values)?, a.sync())?;
    Ok(ColSummary {
        collection: col.to_string(),
        documents: docs.len(),
        records,
        output_dir: dir.display().to_string(),
    })
}

/// A document being written: its file (under its temporary name until complete), the `doc`
/// part of its lines, and where the next page starts.
struct Active {
    doc: String,
    doc_json: String,
    doc_part: Vec<u8>,
    file: BufWriter<File>,
    pending: Pending,
    from: i64,
    /// The timestamp of the document's latest record when the export started: a full page
    /// that reaches it is the last one (no request for an empty page after it).
    latest: i64,
}

/// The documents of a collection, shared by its workers.
#[derive(Clone, Copy)]
struct Docs<'a> {
    names: &'a [String],
    /// The timestamp of each document's latest record when the export started.
    latest: &'a [i64],
    col_json: &'a str,
    /// Where each worker takes its next document, with its file.
    files: &'a FilesAhead,
    /// Documents written in full, renamed into place a batch at a time.
    complete: &'a Batches,
}

/// Writes documents (taken with their files from `docs.files`, shared with the other
/// connections) to their files, `depth` of them in flight on `client`: a document's next page
/// is asked for as soon as its previous one is written, unless it reached the document's latest
/// record. Returns the records written.
fn export_docs(
    client: &mut Client,
    docs: Docs<'_>,
    page: usize,
    depth: usize,
    counters: &Counters,
) -> Result<u64, Error> {
    let col_json = docs.col_json;
    let request = |client: &mut Client, a: &Active| {
        client.send(
            "qdoc",
            &format!(
                "{{\"col\":{col_json},\"doc\":{},\"from\":{},\"to\":{},\"limit\":{page}}}",
                a.doc_json,
                a.from,
                i64::MAX
            ),
        )
    };
    let mut active: VecDeque<Active> = VecDeque::new();
    let mut total = 0u64;
    // The lines of one answer, written to the file at once; reused from answer to answer.
    let mut lines = Vec::new();
    loop {
        while active.len() < depth {
            let Some(opened) = docs.files.next() else {
                break;
            };
            let (i, file, pending) = opened?;
            let (Some(doc), Some(&latest)) = (docs.names.get(i), docs.latest.get(i)) else {
                return Err(Error::Internal("a file for no document"));
            };
            let mut doc_json = String::new();
            push_json_str(&mut doc_json, doc);
            let a = Active {
                doc: doc.clone(),
                doc_json,
                doc_part: page::doc_part(doc),
                file: BufWriter::with_capacity(FILE_BUFFER, file),
                pending,
                from: 0,
                latest,
            };
            request(client, &a)?;
            active.push_back(a);
        }
        let Some(mut a) = active.pop_front() else {
            break;
        };
        let fail = |doc: &str, e: Error| e.context(format!("export document {doc}"));
        let text = client.recv_bytes().map_err(|e| fail(&a.doc, e))?;
        lines.clear();
        let got = page::append_lines(text, &a.doc_part, &mut lines).map_err(|e| fail(&a.doc, e))?;
        a.file
            .write_all(&lines)
            .map_err(|e| fail(&a.doc, Error::Write(e)))?;
        let mut more = got.records >= page;
        if let Some(last) = got.last_ts {
            match last.checked_add(1) {
                Some(f) if last < a.latest => a.from = a.from.max(f),
                _ => more = false,
            }
        }
        total += got.records as u64;
        counters
            .records
            .fetch_add(got.records as u64, Ordering::Relaxed);
        if more {
            request(client, &a)?;
            active.push_back(a);
        } else {
            a.file.flush().map_err(|e| fail(&a.doc, Error::Write(e)))?;
            drop(a.file);
            docs.complete.add(a.pending).map_err(|e| fail(&a.doc, e))?;
            counters.done.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(total)
}

fn export_keys(client: &mut Client, out_dir: &Path, sync: bool) -> Result<KeysSummary, Error> {
    durable::create_dir(out_dir, sync)?;
    let mut answer: Value = client.call("keys", &json!({"action": "list"}))?;
    let keys: Vec<KeyInfo> = match answer["keys"].take() {
        Value::Null => Vec::new(),
        v => serde_json::from_value(v)
            .map_err(|e| Error::Server(format!("invalid answer to keys list: {e}")))?,
    };
    let path = out_dir.join(KEYS_FILE);
    // The keys (the master among them) are secrets: readable by their user alone.
    durable::write_private_file(&path, &pretty(&keys)?, sync)?;
    Ok(KeysSummary {
        keys: keys.len(),
        output_file: path.display().to_string(),
    })
}
