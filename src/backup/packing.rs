//! Objects compressed before upload (bucket format 2): a log segment or snapshot that LZ4
//! shrinks is stored as
//!
//! `[PACKED_MAGIC 8 bytes][raw length u64 LE][LZ4 block of the raw bytes]`
//!
//! and any other object as its raw bytes, so a reader tells them apart by the first bytes: a
//! raw segment starts with its own magic (v2) or with an entry length followed by that length's
//! CRC-32 (v1), which [`PACKED_MAGIC`] is not; snapshots, key and retention files start with
//! their own magics. Fewer bytes cross to the store (whose CPU shares the machine) and back at
//! restore. The size and CRC-32 in an object's key or reference stay those of its raw bytes:
//! they name the content whatever its encoding (an unchanged snapshot keeps its key), and a
//! reader checks them on what unpacking gave, which catches damage to the packed bytes too.

use std::borrow::Cow;

pub const PACKED_MAGIC: &[u8; 8] = b"FLXPAK01";
const HEADER: usize = 8 + 8;
/// Smaller bodies are not worth packing.
const MIN_PACKED: usize = 4096;
/// Packing is kept only when it saves at least this share of the bytes (a snapshot of series
/// that are LZ4 blocks already hardly shrinks, and unpacking it would be wasted work).
const MIN_SAVING_PERCENT: usize = 10;
/// LZ4 cannot expand a block by more than this factor (a run of one byte is the best case).
const MAX_RATIO: u64 = 256;

/// The bytes to upload for `raw`: packed when that saves enough, otherwise `raw` itself.
pub fn pack(raw: &[u8]) -> Cow<'_, [u8]> {
    if raw.len() < MIN_PACKED {
        return Cow::Borrowed(raw);
    }
    let mut out = vec![0u8; HEADER + lz4_flex::block::get_maximum_output_size(raw.len())];
    out[..8].copy_from_slice(PACKED_MAGIC);
    out[8..HEADER].copy_from_slice(&(raw.len() as u64).to_le_bytes());
    let Ok(n) = lz4_flex::block::compress_into(raw, &mut out[HEADER..]) else {
        return Cow::Borrowed(raw);
    };
    let packed = HEADER + n;
    if packed * 100 > raw.len() * (100 - MIN_SAVING_PERCENT) {
        return Cow::Borrowed(raw);
    }
    out.truncate(packed);
    out.shrink_to_fit();
    Cow::Owned(out)
}

/// The raw bytes of a stored object; the error says what is wrong with a packed one. The
/// caller checks the result against the object's size and CRC-32.
pub fn unpack(stored: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    let Some(rest) = stored.strip_prefix(PACKED_MAGIC.as_slice()) else {
        return Ok(Cow::Borrowed(stored));
    };
    let (Some(len), Some(block)) = (
        rest.get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes),
        rest.get(8..),
    ) else {
        return Err("packed object shorter than its header".into());
    };
    if len > (block.len() as u64).saturating_mul(MAX_RATIO) {
        return Err(format!(
            "packed object claims {len} bytes from a block of {}",
            block.len()
        ));
    }
    let len = usize::try_from(len).map_err(|_| format!("packed object of {len} bytes"))?;
    let mut raw = vec![0u8; len];
    let n = lz4_flex::block::decompress_into(block, &mut raw)
        .map_err(|e| format!("does not decompress: {e}"))?;
    if n != len {
        return Err(format!("decompresses to {n} bytes where {len} were packed"));
    }
    Ok(Cow::Owned(raw))
}

/// [`unpack`] for a body the caller owns: a raw one is handed back without a copy.
pub fn unpack_owned(stored: Vec<u8>) -> Result<Vec<u8>, String> {
    if stored.starts_with(PACKED_MAGIC) {
        unpack(&stored).map(Cow::into_owned)
    } else {
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_bytes_round_trip_packed_and_others_stay_raw() {
        let raw: Vec<u8> = (0..100_000u32)
            .flat_map(|i| format!("{{\"seq\":{i},\"pad\":\"abcdefgh\"}}").into_bytes())
            .collect();
        let packed = pack(&raw);
        assert!(packed.starts_with(PACKED_MAGIC));
        assert!(
            packed.len() * 3 < raw.len(),
            "{} of {}",
            packed.len(),
            raw.len()
        );
        assert_eq!(unpack(&packed).as_deref(), Ok(raw.as_slice()));
        assert_eq!(unpack_owned(packed.to_vec()), Ok(raw.clone()));
        // Small or incompressible bodies are uploaded as they are, and read back as they are.
        let mut noise = vec![0u8; 50_000];
        let mut x = 0x1234_5678u32;
        for b in &mut noise {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        assert!(matches!(pack(&noise), Cow::Borrowed(_)));
        assert!(matches!(pack(b"FLXWAL02 short"), Cow::Borrowed(_)));
        assert_eq!(unpack(&noise).as_deref(), Ok(noise.as_slice()));
    }

    #[test]
    fn a_damaged_header_is_reported() {
        let raw = vec![7u8; 20_000];
        let mut packed = pack(&raw).into_owned();
        assert_eq!(
            unpack(&packed[..10]),
            Err("packed object shorter than its header".into())
        );
        packed[8] = packed[8].wrapping_add(1);
        assert_eq!(
            unpack(&packed),
            Err("decompresses to 20000 bytes where 20001 were packed".into())
        );
        packed[15] = 0x7f;
        assert!(unpack(&packed).is_err_and(|e| e.starts_with("packed object claims")));
    }

    #[test]
    fn the_magic_is_no_segment_or_file_start() {
        // A v1 segment starts with an entry's length and the CRC-32 of those four bytes.
        let len_crc = crc32fast::hash(&PACKED_MAGIC[..4]).to_le_bytes();
        assert_ne!(&PACKED_MAGIC[4..], &len_crc);
        for other in [b"FLXWAL02", b"FLXSNAP1", b"FLXKEYS1", b"FLXRETN1"] {
            assert_ne!(PACKED_MAGIC, other);
        }
    }
}
