//! Everything that touches the data folder: the write-ahead log, snapshots (bincode behind the
//! `codec` module, framed with a versioned header and a checksum), the key file, and start-up
//! recovery. The store never calls in here; operations log through the [`Journal`]. Every
//! file-system operation goes through the [`crate::storage::Backend`] the folder was opened
//! with (no `std::fs` here), and every failure is a typed [`Error`].
//!
//! Folder layout (no file name comes from a client string):
//! `LOCK` (held while the server runs), `keys.bin` (scoped API keys), `snap-<n>.bin` (one per
//! collection, its name inside), `retention.bin` (retention policies by
//! collection name), `wal-<n>.log` (log segments not yet covered by snapshots),
//! `imported-seed` (present once `--import-seed` has imported a seed folder), `importing-seed`
//! (present while an import is under way; a restart that finds it imports again).
//!
//! Every name is made durable: at start-up every folder above the data folder is fsynced (up
//! to the root), whether the server created it or found it; every file the server creates,
//! renames or removes is followed by an fsync of its folder.

mod codec;
mod error;
mod framed;
mod fsutil;
mod image;
mod journal;
mod policies;
mod recovery;
mod replay;
mod seed;
mod wal;

pub use codec::WalOp;
pub use error::Error;
pub use journal::Journal;
pub use recovery::open;
pub use seed::{import as import_seed, ImportError};
pub use wal::{FsyncPolicy, Lsn};
