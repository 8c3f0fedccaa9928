//! Command-line flags.

use crate::payload::PayloadKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "fluxiondb-bench",
    about = "Load generator for FluxionDB: throughput, latency, server CPU and memory",
    long_about = "Load generator for FluxionDB. Drives a server over WebSocket with C connections, \
                  D requests in flight per connection and B records per `ins`; prints one JSON \
                  line per run and a table. `standard` runs the whole reference set against a \
                  server binary it starts itself and writes the results to a folder."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Timed `ins` load (B records per request).
    Insert(LoadArgs),
    /// Bulk load of a fixed number of records (`--records`), then RSS growth per record.
    Fill(FillArgs),
    /// Timed `qry` load (latest record of every document of the collection).
    Qry(QueryArgs),
    /// Timed `qdoc` load (`--limit` records of one document).
    Qdoc(QueryArgs),
    /// Writers (`ins`) and readers (`qry` or `qdoc`) at the same time.
    Mixed(MixedArgs),
    /// The `insert` shape against the built-in echo server: the transport ceiling.
    Echo(LoadArgs),
    /// Live subscriptions: push latency, throughput and fan-out beside runs without.
    Subscribe(SubscribeArgs),
    /// The standard set against a server binary started here; writes a results file.
    Standard(StandardArgs),
    /// Print N records of the seeded telemetry generator, one per line (the fixture).
    Telemetry {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
    },
    /// Run the built-in echo server (acknowledgements only) in the foreground (prints
    /// `echo listening on ADDR`).
    #[command(hide = true)]
    EchoServer(EchoServerArgs),
}

/// Where the server is: an address to connect to, or a binary to start.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Server to drive, e.g. ws://127.0.0.1:8080 (the API key is appended as `api-key`).
    #[arg(long, conflicts_with = "server")]
    pub url: Option<String>,
    /// Server binary to start for this run (`--port 0 --bind 127.0.0.1`), stopped afterwards.
    #[arg(long)]
    pub server: Option<PathBuf>,
    /// API key (with `--server`, also the master key given to the started server).
    #[arg(long, default_value = "bench-secret", env = "BENCH_API_KEY")]
    pub key: String,
    /// PID of an external server, to report its CPU time and RSS from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// The shape of a load: connections, depth, batch, duration, record contents.
#[derive(Args, Debug, Clone)]
pub struct Shape {
    /// Connections.
    #[arg(short = 'c', long = "connections", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub conns: u32,
    /// Requests in flight per connection.
    #[arg(short = 'd', long = "depth", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub depth: u32,
    /// Records per `ins`.
    #[arg(short = 'b', long = "batch", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch: u32,
    /// Measured seconds.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Documents the records are spread over.
    #[arg(long, default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub docs: u64,
    /// Bytes of `data` per record (`fixed` and `seq` payloads).
    #[arg(long = "data-size", default_value_t = 32)]
    pub data_size: usize,
    /// What the records' data is: `seq` (`{"seq":N,"pad":"…"}` of --data-size bytes, JSON
    /// with quotes like real clients send), `telemetry` (the seeded telemetry walk of issue 13,
    /// ~92 bytes), or `fixed` (alias `best-case`: --data-size bytes of `x`, nothing to escape).
    #[arg(long, value_enum, default_value_t = PayloadKind::Seq)]
    pub payload: PayloadKind,
    /// Collection name (letters, digits, `_`, `-`).
    #[arg(long, default_value = "bench", value_parser = plain_name)]
    pub col: String,
    /// Document names start with this (`<prefix><n>`; a connection's own documents under
    /// `insert`: `<prefix><conn>_<n>`).
    #[arg(long = "doc-prefix", default_value = "d", value_parser = plain_name)]
    pub doc_prefix: String,
}

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub shape: Shape,
}

#[derive(Args, Debug, Clone)]
pub struct FillArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub shape: Shape,
    /// Records to insert.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
}

#[derive(Args, Debug, Clone)]
pub struct QueryArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub shape: Shape,
    /// Records per document inserted before the timed run (0: use what the server holds).
    #[arg(long, default_value_t = 1000)]
    pub prefill: u64,
    /// `qdoc` limit.
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// `qdoc`: the newest records (`reverse`) instead of the oldest.
    #[arg(long)]
    pub newest: bool,
    /// `qry`: only the documents this literal name or `/pattern/flags` selects, e.g.
    /// `--docs 1000 --doc-prefix doc --doc '/^doc[0-9]{1,2}$/'` (100 of 1,000 match).
    #[arg(long)]
    pub doc: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReadKind {
    Qry,
    /// The oldest `--limit` records of a document.
    Qdoc,
    /// The newest `--limit` records of a document (`reverse`).
    QdocNewest,
}

#[derive(Args, Debug, Clone)]
pub struct MixedArgs {
    #[command(flatten)]
    pub target: Target,
    /// Writer connections, depth, batch, and the shared settings.
    #[command(flatten)]
    pub shape: Shape,
    /// Reader connections.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub readers: u32,
    /// Requests in flight per reader connection.
    #[arg(long = "reader-depth", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub reader_depth: u32,
    /// What the readers send.
    #[arg(long = "read", value_enum, default_value_t = ReadKind::Qry)]
    pub read: ReadKind,
    /// Records per document inserted before the timed run.
    #[arg(long, default_value_t = 100)]
    pub prefill: u64,
    /// `qdoc` limit.
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
}

#[derive(Args, Debug, Clone)]
pub struct StandardArgs {
    /// Server binary (started afresh for each shape).
    #[arg(long, default_value = "./target/release/fluxiondb")]
    pub server: PathBuf,
    /// Folder for the results (`<date>-<host>.json` and `.md`).
    #[arg(long, default_value = "benches/results")]
    pub out: PathBuf,
    /// Measured seconds per timed shape.
    #[arg(long, default_value_t = 2.0)]
    pub duration: f64,
    /// Warm-up seconds per timed shape.
    #[arg(long, default_value_t = 0.5)]
    pub warmup: f64,
    /// Records of the bulk-load / memory shape.
    #[arg(long = "fill-records", default_value_t = 10_000_000)]
    pub fill_records: u64,
    /// Rounds of the timed shapes (the bulk load runs once). Each round runs every timed shape,
    /// the echo ceiling right before the server; the summary takes the median of the rounds,
    /// and of the per-round ratios to echo, so that one slow minute of the machine does not
    /// decide a figure (five, as a slow phase of the development VM can outlast a round).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Run only the shapes whose name contains one of these (comma-separated); no results file.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct EchoServerArgs {
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
}

fn plain_name(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(s.to_string())
    } else {
        Err("use 1 to 64 letters, digits, `_` or `-`".into())
    }
}

impl Shape {
    pub fn check(&self) -> Result<(), String> {
        if !(self.duration > 0.0 && self.duration.is_finite()) {
            return Err("--duration must be a positive number of seconds".into());
        }
        if !(self.warmup >= 0.0 && self.warmup.is_finite()) {
            return Err("--warmup must be zero or more seconds".into());
        }
        Ok(())
    }
}

/// `subscribe`: each run starts its own server (in memory, then with `--data`).
#[derive(Args, Debug, Clone)]
pub struct SubscribeArgs {
    /// Server binary to start for each run.
    #[arg(long)]
    pub server: PathBuf,
    /// API key (also the master key given to the started servers).
    #[arg(long, default_value = "bench-secret", env = "BENCH_API_KEY")]
    pub key: String,
    /// Subscriber connections (one subscription each) in the latency and throughput runs.
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    /// Writes per second of the latency run's writer.
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
    /// Only these targets (comma-separated: latency, throughput, fanout, stalled); all when
    /// absent.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Only this mode (`memory` or `data`); both when absent.
    #[arg(long)]
    pub mode: Option<String>,
}

impl SubscribeArgs {
    /// Whether target `name` is to be run.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}
