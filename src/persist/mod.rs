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

#[cfg(test)]
mod checkpoint_tests;
mod codec;
mod error;
mod framed;
mod fsutil;
mod image;
mod journal;
mod policies;
mod recovery;
#[cfg(test)]
mod recovery_tests;
mod replay;
mod seed;
#[cfg(test)]
mod test_disk;
mod wal;
mod wal_read;

pub use codec::WalOp;
pub use error::{Build, Error};
pub use fsutil::create_dir_durable;
pub use journal::{Gate, Journal, KEYS_FILE};
pub use recovery::{lock_folder, open, open_locked};
pub use seed::{import as import_seed, ImportError};
pub use wal::{now_ms, segment_name, segment_seq, Framed, FsyncPolicy, Lsn};
pub use wal_read::{prefix_until, read_segment_bytes};

/// Decodes one log entry copied from a primary (a replica's follower logs it with
/// [`Journal::log_replicated`], then applies it).
pub fn decode_copied(op: &[u8]) -> Result<WalOp<'_>, Error> {
    codec::borrow_decode(op).map_err(|e| Error::Corrupt {
        path: "copied log entry".into(),
        damage: error::Damage::Undecodable(e),
    })
}

/// Decodes a key file's bytes (one downloaded from object storage); `name` names it in errors.
pub fn decode_keys(bytes: Vec<u8>, name: &str) -> Result<Vec<(String, crate::auth::Scope)>, Error> {
    let path = std::path::Path::new(name);
    let payload = framed::parse(bytes, path, framed::KEYS_MAGIC)?;
    codec::decode::<codec::KeysImage>(&payload)
        .map_err(error::Damage::Undecodable)
        .and_then(image::keys_from_image)
        .map_err(|damage| Error::Corrupt {
            path: path.to_owned(),
            damage,
        })
}
