//! `export`: collections to `DIR/<collection>/<document>.jsonl` + `key_value.json`, API keys to
//! `DIR/apikeys.json`. Documents are read in pages (`qdoc` with `limit`, resuming after the last
//! timestamp) and written as they arrive, so memory stays bounded whatever the size; each
//! connection keeps `--depth` documents in flight, and `--parallel` connections share the
//! documents out.
//!
//! A name that cannot be stored (a collection that cannot be a folder, a file name over the
//! file system's limit) does not stop the export: everything else is written, then each name
//! left out is named on stderr and the command fails with a summary ([`Error::Incomplete`]), so
//! a backup job notices while the archive holds all that could be written.

use super::archive::{collection_dir, Unstorable, KEYS_FILE, KV_FILE};
use super::conn::{Client, Target};
use super::durable::{self, Batches, Pending};
use super::files_ahead::{with_files_ahead, FilesAhead, Taken};
use super::output::{pretty, print_json, print_table, push_json_str, Format};
use super::page;
use super::progress::{Counters, Progress, Unit};
use super::Error;
use super::{chosen_collection, ExportArgs};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
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
    /// Names that could not be stored (not in the upstream's summary: only when there are).
    #[serde(rename = "leftOut", skip_serializing_if = "Vec::is_empty")]
    left_out: Vec<LeftOut>,
}

/// A name left out of the export, and why.
#[derive(Serialize)]
pub struct LeftOut {
    collection: String,
    /// The document, when one document was left out (none: the whole collection, or its
    /// key/values).
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<String>,
    /// The collection's `key_value.json` was left out.
    #[serde(rename = "keyValues", skip_serializing_if = "std::ops::Not::not")]
    key_values: bool,
    reason: String,
    #[serde(skip)]
    why: Unstorable,
}

impl LeftOut {
    fn new(collection: &str, document: Option<&str>, key_values: bool, why: Unstorable) -> Self {
        LeftOut {
            collection: collection.to_owned(),
            document: document.map(str::to_owned),
            key_values,
            reason: why.to_string(),
            why,
        }
    }

    /// The line naming it on stderr.
    fn line(&self) -> String {
        let what = match (&self.document, self.key_values) {
            (Some(d), _) => format!("document {d:?} of collection {:?}", self.collection),
            (None, true) => format!("the key/values of collection {:?}", self.collection),
            (None, false) => format!("collection {:?}", self.collection),
        };
        format!("warning: left out of the export: {what}: {}", self.reason)
    }
}

/// The summary of the names left out: how many, of what, and why.
fn left_out_summary(left_out: &[LeftOut]) -> String {
    let count = |f: &dyn Fn(&LeftOut) -> bool| left_out.iter().filter(|l| f(l)).count();
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let mut parts = Vec::new();
    let folders = count(&|l| l.why == Unstorable::NotAFolder);
    if folders > 0 {
        parts.push(plural(
            folders,
            "collection that cannot be stored as a folder",
            "collections that cannot be stored as folders",
        ));
    }
    let cols = count(&|l| l.why.too_long() && l.document.is_none() && !l.key_values);
    if cols > 0 {
        parts.push(plural(
            cols,
            "collection whose folder name or path is too long for the file system",
            "collections whose folder names or paths are too long for the file system",
        ));
    }
    let docs = count(&|l| l.why.too_long() && l.document.is_some());
    if docs > 0 {
        parts.push(plural(
            docs,
            "document whose file name or path is too long for the file system",
            "documents whose file names or paths are too long for the file system",
        ));
    }
    let kvs = count(&|l| l.why.too_long() && l.key_values);
    if kvs > 0 {
        parts.push(plural(
            kvs,
            "key/value file whose path is too long for the file system",
            "key/value files whose paths are too long for the file system",
        ));
    }
    format!(
        "export incomplete: {} left out ({}), each named above; everything else was written",
        plural(left_out.len(), "name", "names"),
        parts.join(", ")
    )
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
    if !a.all {
        // The one collection asked for by name: refused before anything is written.
        for c in &collections {
            collection_dir(&a.out_dir, c)?;
        }
    }
    let mut result = ExportResult {
        output_dir: a.out_dir.display().to_string(),
        collections: Vec::new(),
        api_keys: None,
        left_out: Vec::new(),
    };
    let page = a.transfer.batch.unwrap_or(DEFAULT_PAGE).max(1) as usize;
    let depth = a.transfer.depth.unwrap_or(DEFAULT_DEPTH) as usize;
    let progress = Progress::start("export", Unit::Documents, a.transfer.quiet);
    let mut workers: Vec<Client> = Vec::new();
    for col in &collections {
        let Ok(dir) = collection_dir(&a.out_dir, col) else {
            result
                .left_out
                .push(LeftOut::new(col, None, false, Unstorable::NotAFolder));
            continue;
        };
        let summary = export_collection(
            &target,
            &mut main,
            &mut workers,
            a,
            Col { name: col, dir },
            page,
            depth,
            &progress.counters,
            &mut result.left_out,
        )
        .map_err(|e| e.context(format!("export collection {col}")))?;
        result.collections.extend(summary);
    }
    if a.api_keys || a.all {
        result.api_keys = Some(export_keys(&mut main, &a.out_dir, a.sync())?);
    }
    progress.finish();
    Client::close_all(main, workers);
    print_summary(a, &result)?;
    if result.left_out.is_empty() {
        return Ok(());
    }
    for l in &result.left_out {
        eprintln!("{}", l.line());
    }
    Err(Error::Incomplete(left_out_summary(&result.left_out)))
}

fn print_summary(a: &ExportArgs, result: &ExportResult) -> Result<(), Error> {
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

/// A collection to export and its folder.
struct Col<'a> {
    name: &'a str,
    dir: PathBuf,
}

/// Exports one collection; `None` when its folder cannot be created because the file system
/// refuses its name as too long (then it is in `left_out`, as are its documents and key/values
/// that cannot be stored).
#[allow(clippy::too_many_arguments)]
fn export_collection(
    target: &Target,
    main: &mut Client,
    workers: &mut Vec<Client>,
    a: &ExportArgs,
    Col { name: col, dir }: Col<'_>,
    page: usize,
    depth: usize,
    counters: &Counters,
    left_out: &mut Vec<LeftOut>,
) -> Result<Option<ColSummary>, Error> {
    match durable::create_dir(&dir, a.sync()) {
        Ok(()) => {}
        Err(e) if e.name_too_long() => {
            left_out.push(LeftOut::new(col, None, false, Unstorable::Refused));
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
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
    let unstorable = Mutex::new(Vec::new());
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
                        unstorable: &unstorable,
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
    let mut unstorable = unstorable.into_inner();
    unstorable.extend(
        complete
            .finish()?
            .into_iter()
            .map(|(doc, written)| (doc, Unstorable::Refused, written)),
    );
    unstorable.sort_by(|x, y| x.0.cmp(&y.0));
    let documents = docs.len().saturating_sub(unstorable.len());
    for (doc, why, written) in unstorable {
        records -= written;
        left_out.push(LeftOut::new(col, Some(&doc), false, why));
    }
    let values: BTreeMap<String, String> =
        serde_json::from_value(main.call("gvals", &json!({"col": col}))?["values"].take())
            .map_err(|e| Error::Server(format!("invalid answer to gvals: {e}")))?;
    // Last in the folder: its fsync of the folder also makes the documents' renames durable.
    match durable::write_file(&dir.join(KV_FILE), &pretty(&values)?, a.sync()) {
        Ok(()) => {}
        Err(e) if e.name_too_long() => {
            left_out.push(LeftOut::new(col, None, true, Unstorable::Refused))
        }
        Err(e) => return Err(e),
    }
    Ok(Some(ColSummary {
        collection: col.to_string(),
        documents,
        records,
        output_dir: dir.display().to_string(),
    }))
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
    /// Records written to the file so far.
    records: u64,
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
    /// Documents left out (their file names too long), why, and the records written of them.
    unstorable: &'a Mutex<Vec<(String, Unstorable, u64)>>,
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
            let (i, file, pending) = match opened? {
                Taken::File(i, file, pending) => (i, file, pending),
                Taken::LeftOut(i, why) => {
                    let doc = docs
                        .names
                        .get(i)
                        .ok_or(Error::Internal("no such document"))?;
                    docs.unstorable.lock().push((doc.clone(), why, 0));
                    counters.done.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
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
                records: 0,
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
        a.records += got.records as u64;
        counters
            .records
            .fetch_add(got.records as u64, Ordering::Relaxed);
        if more {
            request(client, &a)?;
            active.push_back(a);
        } else {
            a.file.flush().map_err(|e| fail(&a.doc, Error::Write(e)))?;
            drop(a.file);
            docs.complete
                .add(a.pending, &a.doc, a.records)
                .map_err(|e| fail(&a.doc, e))?;
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
