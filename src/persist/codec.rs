//! The one place that knows the on-disk encodings: bincode 2 (fixed-width integers, little
//! endian) for payloads, framed with lengths and CRC-32 checksums.

use bincode::{BorrowDecode, Decode, Encode};

const CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
> = bincode::config::standard().with_fixed_int_encoding();

/// Why bytes could not be turned back into a value.
#[derive(Debug)]
pub struct CodecError(pub String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn encode_into<T: Encode>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::encode_into_std_write(value, out, CONFIG)
        .map(|_| ())
        .map_err(|e| CodecError(e.to_string()))
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
    let (value, used) =
        bincode::decode_from_slice(bytes, CONFIG).map_err(|e| CodecError(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError(format!("{} trailing bytes", bytes.len() - used)));
    }
    Ok(value)
}

pub fn borrow_decode<'a, T: BorrowDecode<'a, ()>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    let (value, used) =
        bincode::borrow_decode_from_slice(bytes, CONFIG).map_err(|e| CodecError(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError(format!("{} trailing bytes", bytes.len() - used)));
    }
    Ok(value)
}

/// CRC-32 (IEEE 802.3, reflected), table driven.
pub fn crc32(bytes: &[u8]) -> u32 {
    !crc32_update(!0, bytes)
}

/// Continues a CRC-32 over more bytes; start from `!0` and invert the final value.
pub fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    for &b in bytes {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
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

    #[test]
    fn crc_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            !crc32_update(crc32_update(!0, b"1234"), b"56789"),
            0xCBF4_3926
        );
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
