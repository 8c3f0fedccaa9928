//! The one place that knows the on-disk encodings: bincode 2 (fixed-width integers, little
//! endian) for payloads, framed with lengths and CRC-32 checksums.

use bincode::{BorrowDecode, Decode, Encode};
use std::sync::Arc;

const CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
> = bincode::config::standard().with_fixed_int_encoding();

/// Why a value could not be encoded, or bytes could not be turned back into a value.
#[derive(Debug, Clone)]
pub enum CodecError {
    Encode(Arc<bincode::error::EncodeError>),
    Decode(Arc<bincode::error::DecodeError>),
    /// The value ended before its bytes did.
    TrailingBytes(usize),
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::Encode(e) => write!(f, "{e}"),
            CodecError::Decode(e) => write!(f, "{e}"),
            CodecError::TrailingBytes(n) => write!(f, "{n} trailing bytes"),
        }
    }
}

fn decode_error(e: bincode::error::DecodeError) -> CodecError {
    CodecError::Decode(Arc::new(e))
}

pub fn encode_into<T: Encode>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::encode_into_std_write(value, out, CONFIG)
        .map(|_| ())
        .map_err(|e| CodecError::Encode(Arc::new(e)))
}

/// Encodes straight into a writer (snapshots are streamed to their file, not built in memory).
pub fn encode_to_writer<T: Encode>(
    value: &T,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    bincode::encode_into_std_write(value, out, CONFIG)
        .map(|_| ())
        .map_err(|e| match e {
            bincode::error::EncodeError::Io { inner, .. } => inner,
            other => std::io::Error::other(other.to_string()),
        })
}

pub fn decode<T: Decode<()>>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) = bincode::decode_from_slice(bytes, CONFIG).map_err(decode_error)?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

pub fn borrow_decode<'a, T: BorrowDecode<'a, ()>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    let (value, used) = bincode::borrow_decode_from_slice(bytes, CONFIG).map_err(decode_error)?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

/// CRC-32 (IEEE 802.3, reflected: polynomial 0xEDB88320, the zlib / PNG / Ethernet one), by
/// `crc32fast` (SIMD where the CPU has it).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// One logged mutation of one collection. Every variant assigns points (a record, a value, an
/// absence), so replaying a log suffix over a newer snapshot gives the same state.
#[derive(Debug, Clone, PartialEq, Encode, BorrowDecode)]
pub enum WalOp<'a> {
    Insert {
        col: &'a str,
        records: Vec<(&'a str, i64, &'a str)>,
    },
    DeleteRecords {
        col: &'a str,
        records: Vec<(&'a str, i64)>,
    },
    DeleteRange {
        col: &'a str,
        doc: &'a str,
        from: i64,
        to: i64,
    },
    DeleteDoc {
        col: &'a str,
        doc: &'a str,
    },
    DropCollection {
        col: &'a str,
    },
    SetValue {
        col: &'a str,
        key: &'a str,
        value: &'a str,
    },
    DeleteValue {
        col: &'a str,
        key: &'a str,
    },
    /// `sret`: the collection's own retention policy; a member `None` inherits the server
    /// default, both `None` removes the policy. Changes no record (the drop it causes is
    /// logged as a [`WalOp::Trim`]).
    SetRetention {
        col: &'a str,
        max_age: Option<u64>,
        max_records: Option<u64>,
    },
    /// Retention dropped, from each listed document, every record older than its cut-off.
    Trim {
        col: &'a str,
        cuts: Vec<(&'a str, i64)>,
    },
}

/// One document in a snapshot: the series' columns, data concatenated.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct DocImage {
    pub name: String,
    pub ts: Vec<i64>,
    pub lens: Vec<u32>,
    pub data: String,
}

/// One collection in a snapshot file.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct CollectionImage {
    pub name: String,
    pub docs: Vec<DocImage>,
    pub kv: Vec<(String, String)>,
}

/// The scoped API keys (never the master key): `(key, scope 0..=2)`.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct KeysImage {
    pub keys: Vec<(String, u8)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table-driven CRC-32 the files were checksummed with before `crc32fast`.
    fn crc32_bytewise(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            let mut c = (crc ^ b as u32) & 0xff;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            crc = c ^ (crc >> 8);
        }
        !crc
    }

    #[test]
    fn crc_known_value_and_same_polynomial_as_before() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let mut h = crc32fast::Hasher::new();
        h.update(b"1234");
        h.update(b"56789");
        assert_eq!(h.finalize(), 0xCBF4_3926);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in [0usize, 1, 3, 15, 16, 17, 63, 64, 65, 1000, 4099] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            assert_eq!(crc32(&bytes), crc32_bytewise(&bytes), "length {len}");
        }
    }

    #[test]
    fn wal_op_round_trip() {
        let op = WalOp::Insert {
            col: "a/b",
            records: vec![("../x", 5, "d\u{0}ata"), ("é", i64::MAX, "")],
        };
        let mut buf = Vec::new();
        encode_into(&op, &mut buf).unwrap();
        assert_eq!(borrow_decode::<WalOp>(&buf).unwrap(), op);
        assert!(borrow_decode::<WalOp>(&buf[..buf.len() - 1]).is_err());
    }
}
