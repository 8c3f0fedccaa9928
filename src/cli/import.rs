//! `import`: the export layout back into a server (or, with `--legacy`, the old per-record
//! folders). A document's name comes from its file name; a line whose `doc` names another
//! document is an error. Files are read line by line and sent in `ins` batches as they are
//! read, so memory stays bounded whatever the size; each connection keeps `--depth` batches in
//! flight and `--parallel` connections share the documents out (one document stays on one
//! connection, so its lines apply in file order). Inserting a record whose timestamp already
//! exists replaces it, so an interrupted import can simply be run again.

use super::archive::{collection_dir, doc_from_file_name, DOC_EXT, KEYS_FILE, KV_FILE};
use super::conn::{escape_token, Client};
use super::legacy;
use super::output::{go_escape, print_json, print_table, push_json_str, Format};
use super::progress::{Counters, Progress, Unit};
use super::scan::fast_line;
use super::Error;
use super::{chosen_collection, ImportArgs};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const DEFAULT_BATCH: u32 = 1000;
/// Batches in flight per connection.
const DEFAULT_DEPTH: u32 = 4;
/// A batch is sent early once its payload reaches this size (the server's default message limit
/// is 16 MiB, and the payload is escaped once more inside the envelope).
const MAX_PAYLOAD: usize = 4 * 1024 * 1024;

#[derive(Serialize)]
struct ColSummary {
    collection: String,
    documents: usize,
    records: u64,
    #[serde(rename = "keyValues")]
    key_values: usize,
    #[serde(rename = "inputDir")]
    input_dir: String,
}

#[derive(Serialize)]
struct KeysSummary {
    keys: usize,
    #[serde(rename = "inputFile")]
    input_file: String,
}

#[derive(Serialize)]
struct ImportResult {
    #[serde(rename = "inputDir")]
    input_dir: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    collections: Vec<ColSummary>,
    #[serde(rename = "apiKeys", skip_serializing_if = "Option::is_none")]
    api_keys: Option<KeysSummary>,
}

/// One document to import and where its records are.
enum Source {
    Jsonl(PathBuf),
    Legacy(Vec<PathBuf>),
}

struct Job {
    doc: String,
    source: Source,
}

pub fn run(a: &ImportArgs) -> Result<(), Error> {
    let col = chosen_collection(&a.in_dir, "--in-dir", a.col.as_deref(), a.api_keys, a.all)?;
    let collections = if a.all {
        discover(&a.in_dir, a.legacy)?
    } else {
        col.into_iter().collect()
    };
    // The keys are read (and checked) before anything is imported: a missing or bad file never
    // fails the command after data went in. `--api-keys` needs the file; `--all` takes what the
    // archive holds (none from an archive made with `--col`, or a legacy one).
    let keys = if a.api_keys || a.all {
        read_keys(&a.in_dir, a.api_keys)?
    } else {
        None
    };
    if collections.is_empty() && keys.is_none() {
        return Err(Error::Usage(if a.all {
            format!(
                "nothing to import: {} holds no collection and no {KEYS_FILE}",
                a.in_dir.display()
            )
        } else {
            "nothing to import".into()
        }));
    }
    // Every collection's documents are listed first: the progress bar knows the total size.
    let mut plans = Vec::new();
    let mut total_bytes = 0;
    for col in &collections {
        let dir = collection_dir(&a.in_dir, col)?;
        let jobs = if a.legacy {
            legacy_jobs(&dir)?
        } else {
            jsonl_jobs(&dir)?
        };
        for job in &jobs {
            total_bytes += source_bytes(&job.source);
        }
        plans.push((col.clone(), dir, jobs));
    }
    let target = a.conn.target()?;
    let mut main = Client::connect(&target)?;
    let mut workers: Vec<Client> = Vec::new();
    let progress = Progress::start("import", Unit::Bytes, a.transfer.quiet);
    progress
        .counters
        .total
        .store(total_bytes, Ordering::Relaxed);
    let batch = a.transfer.batch.unwrap_or(DEFAULT_BATCH).max(1) as usize;
    let depth = a.transfer.depth.unwrap_or(DEFAULT_DEPTH) as usize;
    let skipped = AtomicU64::new(0);
    let mut result = ImportResult {
        input_dir: a.in_dir.display().to_string(),
        collections: Vec::new(),
        api_keys: None,
    };
    for (col, dir, jobs) in &plans {
        let parallel = (a.transfer.parallel as usize).min(jobs.len()).max(1);
        while workers.len() < parallel {
            workers.push(Client::connect(&target)?);
        }
        let records = import_jobs(
            &mut workers[..parallel],
            col,
            jobs,
            batch,
            depth,
            &progress.counters,
            &skipped,
        )?;
        let key_values = import_key_values(&mut main, col, dir, depth)?;
        result.collections.push(ColSummary {
            collection: col.clone(),
            documents: jobs.len(),
            records,
            key_values,
            input_dir: dir.display().to_string(),
        });
    }
    if let Some(keys) = &keys {
        result.api_keys = Some(import_keys(&mut main, keys)?);
    }
    progress.finish();
    Client::close_all(main, workers);
    let skipped = skipped.load(Ordering::Relaxed);
    if skipped > 0 {
        eprintln!("warning: {skipped} records without a positive timestamp were skipped (the server stores positive timestamps only)");
    }
    if a.all && keys.is_none() {
        eprintln!(
            "note: the archive holds no API keys ({} not found): none were imported",
            a.in_dir.join(KEYS_FILE).display()
        );
    }
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
                        c.key_values.to_string(),
                        c.input_dir.clone(),
                    ]
                })
                .collect();
            if let Some(k) = &result.api_keys {
                rows.push(vec![
                    "(API keys)".into(),
                    String::new(),
                    k.keys.to_string(),
                    String::new(),
                    k.input_file.clone(),
                ]);
            }
            print_table(
                &[
                    "COLLECTION",
                    "DOCUMENTS",
                    "RECORDS",
                    "KEY/VALUES",
                    "READ FROM",
                ],
                &rows,
            )
        }
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<std::fs::DirEntry>, Error> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Usage(format!("collection path {} not found", dir.display()))
        } else {
            Error::io("cannot read", dir, e)
        }
    })?;
    let mut entries: Vec<_> = rd
        .collect::<Result<_, _>>()
        .map_err(|e| Error::io("cannot read", dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

fn is_dir(e: &std::fs::DirEntry) -> bool {
    e.file_type().map(|t| t.is_dir()).unwrap_or(false)
}

/// The documents of an exported collection folder, by document name.
fn jsonl_jobs(dir: &Path) -> Result<Vec<Job>, Error> {
    let mut jobs = Vec::new();
    for e in read_dir_sorted(dir)? {
        if is_dir(&e) {
            continue;
        }
        let Some(doc) = e.file_name().to_str().and_then(doc_from_file_name) else {
            continue;
        };
        jobs.push(Job {
            doc,
            source: Source::Jsonl(e.path()),
        });
    }
    jobs.sort_by(|a, b| a.doc.cmp(&b.doc));
    Ok(jobs)
}

/// The documents of a legacy collection folder: its sub-folders that hold `*.json` files.
fn legacy_jobs(dir: &Path) -> Result<Vec<Job>, Error> {
    let mut jobs = Vec::new();
    for e in read_dir_sorted(dir)? {
        if !is_dir(&e) {
            continue;
        }
        let doc = e
            .file_name()
            .to_str()
            .ok_or_else(|| {
                Error::Archive(format!(
                    "{}: the folder name is not UTF-8",
                    e.path().display()
                ))
            })?
            .to_string();
        let files = legacy::json_files(&e.path())?;
        if !files.is_empty() {
            jobs.push(Job {
                doc,
                source: Source::Legacy(files),
            });
        }
    }
    jobs.sort_by(|a, b| a.doc.cmp(&b.doc));
    Ok(jobs)
}

fn source_bytes(s: &Source) -> u64 {
    let size = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    match s {
        Source::Jsonl(p) => size(p),
        Source::Legacy(files) => files.iter().map(size).sum(),
    }
}

/// `--all`: every folder under DIR that holds a collection, by its path relative to DIR with `/`
/// separators, sorted. In the export layout a collection may be nested (`a/b`: a name with `/`)
/// and is found at any depth; in the legacy layout only DIR's own folders are collections (the
/// folders inside them are their documents, with their sub-folders).
fn discover(root: &Path, legacy: bool) -> Result<Vec<String>, Error> {
    if legacy {
        return discover_legacy(root);
    }
    let mut cols = Vec::new();
    let mut stack: Vec<PathBuf> = Vec::new();
    for e in read_dir_sorted(root)? {
        if is_dir(&e) {
            stack.push(e.path());
        }
    }
    while let Some(dir) = stack.pop() {
        let entries = read_dir_sorted(&dir)?;
        let mut holds = false;
        for e in &entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_dir(e) {
                stack.push(e.path());
            } else if name == KV_FILE || name.ends_with(DOC_EXT) {
                holds = true;
            }
        }
        if !holds {
            continue;
        }
        let rel = dir
            .strip_prefix(root)
            .map_err(|e| Error::Archive(e.to_string()))?;
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        match parts {
            Some(p) if !p.is_empty() => cols.push(p.join("/")),
            _ => eprintln!("warning: {} skipped: its name is not UTF-8", dir.display()),
        }
    }
    cols.sort();
    cols.dedup();
    Ok(cols)
}

/// `--legacy --all`: DIR's folders that hold a `key_value.json` or a document (a folder with
/// `*.json` files, in it or in its sub-folders), by name, sorted.
fn discover_legacy(root: &Path) -> Result<Vec<String>, Error> {
    let mut cols = Vec::new();
    for e in read_dir_sorted(root)? {
        if !is_dir(&e) {
            continue;
        }
        let dir = e.path();
        let mut holds = dir.join(KV_FILE).is_file();
        if !holds {
            for doc in read_dir_sorted(&dir)? {
                if is_dir(&doc) && !legacy::json_files(&doc.path())?.is_empty() {
                    holds = true;
                    break;
                }
            }
        }
        if !holds {
            continue;
        }
        match e.file_name().to_str() {
            Some(name) => cols.push(name.to_owned()),
            None => eprintln!("warning: {} skipped: its name is not UTF-8", dir.display()),
        }
    }
    Ok(cols)
}

/// Sends `ins` batches, keeping up to `depth` in flight.
struct Batcher<'a> {
    client: &'a mut Client,
    col_esc: String,
    payload: String,
    in_batch: usize,
    batch: usize,
    depth: usize,
    pending: VecDeque<usize>,
    counters: &'a Counters,
    skipped: &'a AtomicU64,
    sent: u64,
}

impl Batcher<'_> {
    /// Adds one record; `doc_esc` is the document's JSON string escaped once more (as it
    /// stands inside the envelope) and `data_token` the data's JSON string token.
    fn add(&mut self, doc_esc: &str, ts: i64, data_token: &str) -> Result<(), Error> {
        if ts <= 0 {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let p = &mut self.payload;
        p.push_str(if self.in_batch == 0 {
            "[{\\\"ts\\\":"
        } else {
            ",{\\\"ts\\\":"
        });
        let _ = write!(p, "{ts}");
        p.push_str(",\\\"doc\\\":");
        p.push_str(doc_esc);
        p.push_str(",\\\"data\\\":");
        escape_token(p, data_token);
        p.push_str(",\\\"col\\\":");
        p.push_str(&self.col_esc);
        p.push('}');
        self.in_batch += 1;
        if self.in_batch >= self.batch || self.payload.len() >= MAX_PAYLOAD {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), Error> {
        if self.in_batch == 0 {
            return Ok(());
        }
        self.payload.push(']');
        self.client.send_escaped("ins", &self.payload)?;
        self.payload.clear();
        self.pending.push_back(self.in_batch);
        self.sent += self.in_batch as u64;
        self.in_batch = 0;
        while self.client.in_flight() >= self.depth {
            self.ack()?;
        }
        Ok(())
    }

    fn ack(&mut self) -> Result<(), Error> {
        self.client.recv()?;
        let n = self.pending.pop_front().unwrap_or(0);
        self.counters.records.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }

    fn finish(mut self) -> Result<u64, Error> {
        self.send()?;
        while self.client.in_flight() > 0 {
            self.ack()?;
        }
        Ok(self.sent)
    }
}

fn import_jobs(
    workers: &mut [Client],
    col: &str,
    jobs: &[Job],
    batch: usize,
    depth: usize,
    counters: &Counters,
    skipped: &AtomicU64,
) -> Result<u64, Error> {
    let next = AtomicUsize::new(0);
    let mut col_json = String::new();
    push_json_str(&mut col_json, col);
    let mut col_esc = String::new();
    escape_token(&mut col_esc, &col_json);
    let results: Vec<Result<u64, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .iter_mut()
            .map(|client| {
                let (next, col_esc) = (&next, &col_esc);
                s.spawn(move || {
                    let mut b = Batcher {
                        client,
                        col_esc: col_esc.clone(),
                        payload: String::with_capacity(MAX_PAYLOAD / 4),
                        in_batch: 0,
                        batch,
                        depth,
                        pending: VecDeque::new(),
                        counters,
                        skipped,
                        sent: 0,
                    };
                    while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        import_doc(&mut b, job)?;
                    }
                    b.finish()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(Err(Error::Internal("import worker panicked")))
            })
            .collect()
    });
    let mut total = 0;
    for r in results {
        total += r?;
    }
    Ok(total)
}

/// One line of a `.jsonl` file. `ts` and `data` missing count as 0 and "" (as Go decodes them).
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(default)]
    ts: i64,
    #[serde(default, borrow)]
    doc: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

fn import_doc(b: &mut Batcher, job: &Job) -> Result<(), Error> {
    let mut doc_json = String::new();
    push_json_str(&mut doc_json, &job.doc);
    let mut doc_esc = String::new();
    escape_token(&mut doc_esc, &doc_json);
    let mut go_doc = doc_json.clone().into_bytes();
    go_escape(&mut go_doc);
    match &job.source {
        Source::Jsonl(path) => {
            let p = path.display();
            let file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
            let mut reader = BufReader::with_capacity(256 * 1024, file);
            let mut buf = Vec::with_capacity(4096);
            let mut lineno = 0u64;
            loop {
                buf.clear();
                let n = reader
                    .read_until(b'\n', &mut buf)
                    .map_err(|e| Error::io("cannot read", path, e))?;
                if n == 0 {
                    break;
                }
                lineno += 1;
                b.counters.done.fetch_add(n as u64, Ordering::Relaxed);
                let line = buf.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                let mismatch = |d: &str| {
                    Error::Archive(format!(
                        "document mismatch in {p}: got {d}, expected {}",
                        job.doc
                    ))
                };
                // The shape both CLIs write is read without a full JSON decoder.
                if let Some((ts, doc_token, data_token)) = fast_line(line) {
                    if doc_token != doc_json && doc_token.as_bytes() != go_doc.as_slice() {
                        let d: String = serde_json::from_str(doc_token).map_err(|e| {
                            Error::Archive(format!("decode {p}: line {lineno}: {e}"))
                        })?;
                        if !d.is_empty() && d != job.doc {
                            return Err(mismatch(&d));
                        }
                    }
                    b.add(&doc_esc, ts, data_token)?;
                    continue;
                }
                let rec: Line = serde_json::from_slice(line)
                    .map_err(|e| Error::Archive(format!("decode {p}: line {lineno}: {e}")))?;
                if let Some(d) = rec.doc.as_deref() {
                    if !d.is_empty() && d != job.doc {
                        return Err(mismatch(d));
                    }
                }
                let data = rec.data.map(RawValue::get).unwrap_or("\"\"");
                if !data.starts_with('"') {
                    return Err(Error::Archive(format!(
                        "decode {p}: line {lineno}: data must be a string"
                    )));
                }
                b.add(&doc_esc, rec.ts, data)?;
            }
        }
        Source::Legacy(files) => {
            let mut data_json = String::new();
            for path in files {
                for (ts, data) in legacy::parse_file(path)? {
                    data_json.clear();
                    push_json_str(&mut data_json, &data);
                    b.add(&doc_esc, ts, &data_json)?;
                }
                let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                b.counters.done.fetch_add(size, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// `key_value.json` (if present) into the collection; returns how many entries were set.
fn import_key_values(
    client: &mut Client,
    col: &str,
    dir: &Path,
    depth: usize,
) -> Result<usize, Error> {
    let path = dir.join(KV_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("cannot read", &path, e)),
    };
    let values: BTreeMap<String, String> = if text.trim().is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(&text)
            .map_err(|e| Error::Archive(format!("decode {}: {e}", path.display())))?
    };
    let mut count = 0;
    for (key, value) in &values {
        // An empty value cannot be stored (it reads back as "absent" anyway).
        if value.is_empty() {
            continue;
        }
        client.send(
            "sval",
            &json!({"col": col, "key": key, "value": value}).to_string(),
        )?;
        count += 1;
        while client.in_flight() >= depth {
            client
                .recv()
                .map_err(|e| e.context(format!("set key/value in {col}")))?;
        }
    }
    while client.in_flight() > 0 {
        client
            .recv()
            .map_err(|e| e.context(format!("set key/value in {col}")))?;
    }
    Ok(count)
}

/// The scope names the upstream accepts, normalised.
fn parse_scope(raw: &str) -> Result<&'static str, Error> {
    let n: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .collect();
    match n.as_str() {
        "readonly" => Ok("readonly"),
        "readwrite" => Ok("read_write"),
        "readwritedelete" => Ok("read_write_delete"),
        _ => Err(Error::Archive(format!("invalid scope {raw:?}"))),
    }
}

/// The keys of `apikeys.json` to add, read and checked before anything is imported.
struct KeysFile {
    path: PathBuf,
    /// Each key with its scope, the exporting server's master key left out.
    keys: Vec<(String, &'static str)>,
}

/// `apikeys.json` of `in_dir`, checked: every entry to add has a scope the server takes. A
/// missing file is an error when `required` (`--api-keys`), else `None`. The exporting
/// server's own master key (`deletable: false`) is not taken: on another server it would
/// become an ordinary full-access key.
fn read_keys(in_dir: &Path, required: bool) -> Result<Option<KeysFile>, Error> {
    let path = in_dir.join(KEYS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Usage(format!(
                "api keys file {} not found",
                path.display()
            )))
        }
        Err(e) => return Err(Error::io("cannot read", &path, e)),
    };
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        key: String,
        #[serde(default)]
        scope: String,
        #[serde(default = "yes")]
        deletable: bool,
    }
    fn yes() -> bool {
        true
    }
    let entries: Vec<Entry> = if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(&text)
            .map_err(|e| Error::Archive(format!("decode {}: {e}", path.display())))?
    };
    let mut keys = Vec::new();
    for k in entries
        .into_iter()
        .filter(|k| !k.key.is_empty() && k.deletable)
    {
        let scope = parse_scope(&k.scope).map_err(|e| e.context(format!("key {}", k.key)))?;
        keys.push((k.key, scope));
    }
    Ok(Some(KeysFile { path, keys }))
}

/// The keys of `apikeys.json` into the server.
fn import_keys(client: &mut Client, file: &KeysFile) -> Result<KeysSummary, Error> {
    for (key, scope) in &file.keys {
        client
            .call(
                "keys",
                &json!({"action": "add", "key": key, "scope": scope}),
            )
            .map_err(|e| e.context(format!("add key {key}")))?;
    }
    Ok(KeysSummary {
        keys: file.keys.len(),
        input_file: file.path.display().to_string(),
    })
}
