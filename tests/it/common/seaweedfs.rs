//! A real S3-compatible server for tests: SeaweedFS (`weed server -s3`: master, volume server,
//! filer and S3 gateway in one process) on free loopback ports and a temporary folder, with
//! SigV4 credentials from its S3 config file and one bucket, [`BUCKET`]. Killed when dropped.
//!
//! The binary is `FLUXIONDB_WEED`, or else the one `make seaweedfs` (`.ci/seaweedfs.sh`)
//! builds into its cache. Tests that need it are `#[ignore]`d in a plain `cargo test`, are
//! named `…s3::…` (their module's name ends in `s3`) and run with `make test-s3`, which builds
//! the binary first and is part of `make test`.
//!
//! ```ignore
//! let s3 = SeaweedFs::start();
//! let store = s3.store("my-test");            // an S3Store on s3://BUCKET/my-test
//! let location = s3.location("my-test");      // for --backup / --replica-of
//! Command::new(bin).envs(s3.env())            // AWS_ENDPOINT_URL, credentials, path style
//! ```

use fluxiondb::objstore::{Credentials, Location, ObjectStore, S3Config, S3Store};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::{wait_until, Server};

/// The bucket every instance creates at start.
pub const BUCKET: &str = "fluxiondb-test";
/// The identity the instance accepts (any other signature is refused).
pub const ACCESS_KEY: &str = "fluxiondb-test-key";
pub const SECRET_KEY: &str = "fluxiondb-test-secret";
/// How long a start (or restart) may take before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The version `.ci/seaweedfs.sh` pins, read from the script so both agree.
fn pinned_version() -> &'static str {
    include_str!("../../../.ci/seaweedfs.sh")
        .lines()
        .find_map(|l| l.strip_prefix("VERSION="))
        .expect(".ci/seaweedfs.sh has a VERSION= line")
}

/// Where `.ci/seaweedfs.sh` puts the binary (or `FLUXIONDB_WEED`); panics with what to run
/// when it is not there.
pub fn weed_binary() -> PathBuf {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let path = match env("FLUXIONDB_WEED") {
        Some(path) => PathBuf::from(path),
        None => {
            let cache = env("FLUXIONDB_WEED_CACHE")
                .map(PathBuf::from)
                .or_else(|| env("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("fluxiondb")))
                .or_else(|| env("HOME").map(|d| PathBuf::from(d).join(".cache/fluxiondb")))
                .expect("HOME is set");
            cache
                .join(format!("seaweedfs-{}", pinned_version()))
                .join("weed")
        }
    };
    assert!(
        path.is_file(),
        "the SeaweedFS binary {} is missing: build it with `make seaweedfs` (or run these tests \
         with `make test-s3`, which does), or set FLUXIONDB_WEED to a weed binary",
        path.display()
    );
    path
}

/// Every port [`free_ports`] has handed out in this test process. The ports are free when
/// chosen but only bound when weed starts, seconds later; two instances starting at once must
/// not both pick one, or the loser exits (`bind: address already in use`) after its probe was
/// already answered by the winner, and its test then talks to another test's store.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// `n` distinct free loopback ports below the kernel's ephemeral range (so outgoing
/// connections do not take them between a stop and a restart), none handed out before in this
/// process.
fn free_ports<const N: usize>() -> [u16; N] {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut held = Vec::new();
    let mut ports = [0; N];
    let mut i = 0;
    for _ in 0..10_000 {
        if i == N {
            break;
        }
        let port = fastrand::u16(20_000..32_000);
        if handed_out.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            handed_out.insert(port);
            held.push(l);
            ports[i] = port;
            i += 1;
        }
    }
    assert_eq!(i, N, "no {N} free ports found");
    ports
}

/// A running SeaweedFS; see the module documentation.
pub struct SeaweedFs {
    binary: PathBuf,
    dir: tempfile::TempDir,
    /// master, master gRPC, volume, volume gRPC, filer, filer gRPC, S3, S3 gRPC.
    ports: [u16; 8],
    child: Option<Child>,
}

impl SeaweedFs {
    /// Starts an instance and waits until its bucket takes writes.
    pub fn start() -> SeaweedFs {
        let dir = tempfile::Builder::new()
            .prefix("fluxiondb-weed-")
            .tempdir()
            .expect("temporary folder");
        let config = serde_json::json!({
            "identities": [{
                "name": "fluxiondb-test",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]
        });
        std::fs::write(dir.path().join("s3.json"), config.to_string()).expect("s3.json");
        std::fs::create_dir(dir.path().join("data")).expect("data folder");
        let mut weed = SeaweedFs {
            binary: weed_binary(),
            dir,
            ports: free_ports(),
            child: None,
        };
        weed.spawn();
        weed
    }

    fn spawn(&mut self) {
        let [master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc] = self.ports;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("weed log");
        let mut cmd = Command::new(&self.binary);
        cmd.current_dir(self.dir.path())
            .args([
                "server",
                "-dir=data",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                &format!("-master.port={master}"),
                &format!("-master.port.grpc={master_grpc}"),
                "-master.volumeSizeLimitMB=64",
                &format!("-volume.port={volume}"),
                &format!("-volume.port.grpc={volume_grpc}"),
                "-volume.max=32",
                "-volume.preStopSeconds=0",
                "-filer",
                &format!("-filer.port={filer}"),
                &format!("-filer.port.grpc={filer_grpc}"),
                "-s3",
                &format!("-s3.port={s3}"),
                &format!("-s3.port.grpc={s3_grpc}"),
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-s3.config=s3.json",
                // Like AWS: a write to a missing bucket is refused, not a way to create it.
                "-s3.autoCreateBucket=false",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("weed log"))
            .stderr(log);
        // SAFETY: the closure only calls prctl, which is async-signal-safe.
        unsafe {
            // Killed with the test thread that started it, even if the test process is killed
            // before the guard's Drop runs.
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().expect("start weed"));
        self.await_ready();
    }

    /// Waits until the bucket exists and takes a write.
    fn await_ready(&mut self) {
        let store = self.store("");
        let mut last = String::new();
        let ready = wait_until(READY_TIMEOUT, || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("weed exited ({status}); its log:\n{}", self.log_tail());
            }
            let probe = store.create_bucket().and_then(|()| {
                store.put(".ready-probe", b"", &fluxiondb::objstore::Condition::Always)?;
                store.delete(".ready-probe")
            });
            match probe {
                Ok(()) => true,
                Err(e) => {
                    last = e.to_string();
                    false
                }
            }
        });
        assert!(
            ready,
            "SeaweedFS not ready within {READY_TIMEOUT:?} (last error: {last}); its log:\n{}",
            self.log_tail()
        );
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("weed.log")
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// What `ss` reports listening on the S3 gateway's port, for failure messages.
    pub fn listeners(&self) -> String {
        let filter = format!("sport = :{}", self.ports[6]);
        match Command::new("ss").args(["-ltnpH", &filter]).output() {
            Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
            Err(e) => format!("(ss: {e})"),
        }
    }

    /// `http://127.0.0.1:PORT` of the S3 gateway.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[6])
    }

    /// The variables that point a `fluxiondb` process (or [`S3Config::from_env`]) here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_S3_FORCE_PATH_STYLE", "true".into()),
        ]
    }

    /// A `fluxiondb` server with the default test flags plus `args` (a `--backup` or
    /// `--replica-of` location here, its data folder…), pointed at this store by
    /// [`SeaweedFs::env`].
    pub fn server(&self, args: &[&str]) -> Server {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start_with_env(args, &env)
    }

    /// The client configuration [`SeaweedFs::env`] gives.
    pub fn config(&self) -> S3Config {
        let env = self.env();
        S3Config::from_vars(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
            .expect("test S3 configuration")
    }

    /// The same, signing with other credentials.
    pub fn config_with_credentials(&self, access_key: &str, secret_key: &str) -> S3Config {
        let mut config = self.config();
        config.credentials = Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            session_token: None,
        };
        config
    }

    /// `s3://BUCKET/prefix`.
    pub fn location(&self, prefix: &str) -> Location {
        Location::S3 {
            bucket: BUCKET.into(),
            prefix: prefix.into(),
        }
    }

    /// A client for `s3://BUCKET/prefix`.
    pub fn store(&self, prefix: &str) -> S3Store {
        S3Store::new(self.config(), BUCKET, prefix).expect("S3 store")
    }

    /// Kills the server (SIGKILL) and waits for it to be gone; its data stay.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports and data (after [`SeaweedFs::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel, never answered.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Undoes [`SeaweedFs::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        let child = self.child.as_ref().expect("weed is running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on the pid of a child this guard owns and has not reaped.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig})");
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: as in `signal`; a paused server must be woken to die promptly.
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }
        }
        self.stop();
        // A killed weed leaves its local gRPC sockets (/tmp/seaweedfs-*-PORT.sock) behind.
        if let Ok(entries) = std::fs::read_dir("/tmp") {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = name.starts_with("seaweedfs-")
                    && self
                        .ports
                        .iter()
                        .any(|p| name.ends_with(&format!("-{p}.sock")));
                if ours {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}
