//! Whole-file records (snapshots, the key file): `[magic 8][len u64][crc32 u32][payload]`,
//! written atomically. The magic names the kind of file and its format version.

use super::codec::crc32;
use super::error::{Damage, Error};
use super::fsutil;
use crate::storage::{Backend, Io, Op};
use std::io::{self, BufWriter, Write};
use std::path::Path;

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"FLXSNAP1";
pub const KEYS_MAGIC: &[u8; 8] = b"FLXKEYS1";

const HEADER: usize = 20;

/// Writes `payload` to `dir/name` atomically, framed and checksummed.
pub fn write(
    fs: &dyn Backend,
    dir: &Path,
    name: &str,
    magic: &[u8; 8],
    payload: &[u8],
) -> Result<(), Error> {
    write_streamed(fs, dir, name, magic, |w| w.write_all(payload))
}

/// Counts and checksums what passes through to the file.
struct Tally<W> {
    inner: W,
    len: u64,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.len += n as u64;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Like [`write`], with the payload produced by `fill` straight into the file (a large
/// snapshot is never held in memory twice); the header is written last.
pub fn write_streamed(
    fs: &dyn Backend,
    dir: &Path,
    name: &str,
    magic: &[u8; 8],
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), Error> {
    let mut total = 0;
    fsutil::write_atomic(fs, dir, name, |file| {
        file.write_all(&[0; HEADER])?;
        let mut tally = Tally {
            inner: BufWriter::with_capacity(1 << 20, Io(file)),
            len: 0,
            crc: crc32fast::Hasher::new(),
        };
        fill(&mut tally)?;
        tally.flush()?;
        let (len, crc) = (tally.len, tally.crc.clone().finalize());
        total = len + HEADER as u64;
        drop(tally);
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(magic);
        header[8..16].copy_from_slice(&len.to_le_bytes());
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        file.seek(0)?;
        file.write_all(&header)
    })?;
    if magic == SNAPSHOT_MAGIC {
        crate::metrics::snapshot_written(total);
    }
    Ok(())
}

/// Reads and verifies a framed file; returns its payload.
pub fn read(fs: &dyn Backend, path: &Path, magic: &[u8; 8]) -> Result<Vec<u8>, Error> {
    let bytes = fs.read(path).map_err(Error::io(Op::Read, path))?;
    parse(bytes, path, magic)
}

/// Verifies the bytes of a framed file (`path` names it in errors); returns its payload.
pub fn parse(bytes: Vec<u8>, path: &Path, magic: &[u8; 8]) -> Result<Vec<u8>, Error> {
    let corrupt = |damage| Error::Corrupt {
        path: path.to_owned(),
        damage,
    };
    if bytes.len() < HEADER {
        return Err(corrupt(Damage::TooShort));
    }
    if &bytes[..8] != magic {
        return Err(corrupt(Damage::UnknownFormat));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or([0xff; 8]));
    let crc = u32::from_le_bytes(bytes[16..20].try_into().unwrap_or([0; 4]));
    let actual = (bytes.len() - HEADER) as u64;
    if len != actual {
        return Err(corrupt(Damage::LengthMismatch {
            stated: len,
            actual,
        }));
    }
    let mut bytes = bytes;
    let payload = bytes.split_off(HEADER);
    if crc32(&payload) != crc {
        return Err(corrupt(Damage::ChecksumMismatch));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::test_disk::{disk, overwrite};

    fn damage(r: Result<Vec<u8>, Error>) -> Damage {
        match r {
            Err(Error::Corrupt { damage, .. }) => damage,
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn round_trip_and_damage() {
        let (fs, dir) = disk();
        let (fs, dir) = (&*fs, dir.as_path());
        write(fs, dir, "f.bin", KEYS_MAGIC, b"hello").unwrap();
        let path = dir.join("f.bin");
        assert_eq!(read(fs, &path, KEYS_MAGIC).unwrap(), b"hello");
        assert!(matches!(
            damage(read(fs, &path, SNAPSHOT_MAGIC)),
            Damage::UnknownFormat
        ));
        let mut bytes = fs.read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        overwrite(fs, &path, &bytes);
        assert!(matches!(
            damage(read(fs, &path, KEYS_MAGIC)),
            Damage::ChecksumMismatch
        ));
        overwrite(fs, &path, &bytes[..10]);
        assert!(matches!(
            damage(read(fs, &path, KEYS_MAGIC)),
            Damage::TooShort
        ));
        assert_eq!(fs.list(dir), vec!["f.bin".to_string()], "no temp file left");
    }
}
