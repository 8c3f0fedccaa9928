//! Whole-file records (snapshots, the key file): `[magic 8][len u64][crc32 u32][payload]`,
//! written atomically. The magic names the kind of file and its format version.

use super::codec::{crc32, crc32_update};
use super::fsutil;
use std::fs;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"FLXSNAP1";
pub const KEYS_MAGIC: &[u8; 8] = b"FLXKEYS1";

const HEADER: usize = 20;

/// Writes `payload` to `dir/name` atomically, framed and checksummed.
pub fn write(dir: &Path, name: &str, magic: &[u8; 8], payload: &[u8]) -> io::Result<()> {
    write_streamed(dir, name, magic, |w| w.write_all(payload))
}

/// Counts and checksums what passes through to the file.
struct Tally<W> {
    inner: W,
    len: u64,
    crc: u32,
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.len += n as u64;
        self.crc = crc32_update(self.crc, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Like [`write`], with the payload produced by `fill` straight into the file (a large
/// snapshot is never held in memory twice); the header is written last.
pub fn write_streamed(
    dir: &Path,
    name: &str,
    magic: &[u8; 8],
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut total = 0;
    fsutil::write_atomic(dir, name, |file| {
        file.write_all(&[0; HEADER])?;
        let mut tally = Tally {
            inner: BufWriter::with_capacity(1 << 20, &mut *file),
            len: 0,
            crc: !0,
        };
        fill(&mut tally)?;
        tally.flush()?;
        let (len, crc) = (tally.len, !tally.crc);
        total = len + HEADER as u64;
        drop(tally);
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(magic);
        header[8..16].copy_from_slice(&len.to_le_bytes());
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)
    })?;
    if magic == SNAPSHOT_MAGIC {
        crate::metrics::snapshot_written(total);
    }
    Ok(())
}

/// Why a framed file could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// The file is damaged: wrong magic or version, wrong length, checksum mismatch.
    Corrupt(String),
}

/// Reads and verifies a framed file; returns its payload.
pub fn read(path: &Path, magic: &[u8; 8]) -> Result<Vec<u8>, ReadError> {
    let bytes = fs::read(path).map_err(ReadError::Io)?;
    if bytes.len() < HEADER {
        return Err(ReadError::Corrupt("file too short".into()));
    }
    if &bytes[..8] != magic {
        return Err(ReadError::Corrupt("unknown format or version".into()));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or([0xff; 8]));
    let crc = u32::from_le_bytes(bytes[16..20].try_into().unwrap_or([0; 4]));
    if len != (bytes.len() - HEADER) as u64 {
        return Err(ReadError::Corrupt(format!(
            "length {len} does not match the file size"
        )));
    }
    let mut bytes = bytes;
    let payload = bytes.split_off(HEADER);
    if crc32(&payload) != crc {
        return Err(ReadError::Corrupt("checksum mismatch".into()));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = std::env::temp_dir().join(format!("fluxiondb-framed-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write(&dir, "f.bin", KEYS_MAGIC, b"hello").unwrap();
        let path = dir.join("f.bin");
        assert_eq!(read(&path, KEYS_MAGIC).unwrap(), b"hello");
        assert!(matches!(
            read(&path, SNAPSHOT_MAGIC),
            Err(ReadError::Corrupt(_))
        ));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            read(&path, KEYS_MAGIC),
            Err(ReadError::Corrupt(_))
        ));
        fs::write(&path, &bytes[..10]).unwrap();
        assert!(matches!(
            read(&path, KEYS_MAGIC),
            Err(ReadError::Corrupt(_))
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
