//! TFRecord framing, the container of TensorBoard event files: each record is
//! `u64 length | u32 masked_crc32c(length) | data | u32 masked_crc32c(data)`, little-endian.
//!
//! Format as in TensorFlow's `tensorflow/core/lib/io/record_writer.cc` and the masking as in
//! `tensorflow/core/lib/hash/crc32c.h` (`Mask`: rotate right by 15 bits, add `0xa282ead8`).

use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// The constant TensorFlow adds to a rotated CRC (`kMaskDelta` in `crc32c.h`).
const MASK_DELTA: u32 = 0xa282_ead8;

/// The CRC-32C (Castagnoli) of `data`, masked as TFRecord stores it.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Writes `data` as one TFRecord.
pub(crate) fn write_record(out: &mut dyn Write, data: &[u8]) -> std::io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    out.write_all(&len)?;
    out.write_all(&masked_crc32c(&len).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc32c(data).to_le_bytes())
}

/// Reads every record of a TFRecord file (such as a TensorBoard event file), checking both
/// CRCs of each.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Data`] naming the file and the byte
/// offset of the first record that is truncated or fails its CRC.
pub fn read_tfrecords(path: impl AsRef<Path>) -> Result<Vec<Vec<u8>>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse_tfrecords(&bytes, &path.display().to_string())
}

/// [`read_tfrecords`] from bytes in memory; `source_name` names them in errors.
///
/// # Errors
/// As [`read_tfrecords`], without the I/O.
pub fn parse_tfrecords(bytes: &[u8], source_name: &str) -> Result<Vec<Vec<u8>>> {
    let err = |offset: usize, reason: String| Error::Data {
        source_name: source_name.to_string(),
        reason: format!("record at byte offset {offset}: {reason}"),
    };
    let mut records = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let start = pos;
        let Some(header) = bytes.get(pos..pos + 12) else {
            return Err(err(start, format!("truncated header ({} of 12 bytes)", bytes.len() - pos)));
        };
        let len_bytes = &header[..8];
        let len_crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if masked_crc32c(len_bytes) != len_crc {
            return Err(err(start, "length CRC mismatch (corrupt file)".into()));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        pos += 12;
        let available = (bytes.len() - pos) as u64;
        if len.saturating_add(4) > available {
            return Err(err(start, format!("truncated: {len} data bytes announced, {available} bytes left")));
        }
        let len = len as usize;
        let data = &bytes[pos..pos + len];
        let data_crc = u32::from_le_bytes(bytes[pos + len..pos + len + 4].try_into().expect("4 bytes"));
        if masked_crc32c(data) != data_crc {
            return Err(err(start, "data CRC mismatch (corrupt file)".into()));
        }
        records.push(data.to_vec());
        pos += len + 4;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_is_crc32c() {
        // The CRC-32C check value of "123456789" (RFC 3720, appendix B.4 / the CRC catalogue).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn a_record_matches_tensorboards_record_writer() {
        // Bytes written by TensorBoard 2.21.0's own
        // `tensorboard.summary.writer.record_writer.RecordWriter(buf).write(b"gradflow")`.
        let expected = [
            8, 0, 0, 0, 0, 0, 0, 0, 255, 134, 36, 15, 103, 114, 97, 100, 102, 108, 111, 119, 159, 91, 105, 96,
        ];
        let mut out = Vec::new();
        write_record(&mut out, b"gradflow").unwrap();
        assert_eq!(out, expected);
        assert_eq!(parse_tfrecords(&out, "mem").unwrap(), vec![b"gradflow".to_vec()]);
    }

    #[test]
    fn truncated_and_corrupt_records_are_reported_with_their_offset() {
        let mut out = Vec::new();
        write_record(&mut out, b"first").unwrap();
        write_record(&mut out, b"second record").unwrap();
        let second = 8 + 4 + 5 + 4;
        let reason = |bytes: &[u8]| match parse_tfrecords(bytes, "f").unwrap_err() {
            Error::Data { source_name, reason } => {
                assert_eq!(source_name, "f");
                reason
            }
            other => panic!("{other:?}"),
        };
        let r = reason(&out[..out.len() - 2]);
        assert!(r.contains(&format!("offset {second}")) && r.contains("truncated"), "{r}");
        let r = reason(&out[..second + 5]);
        assert!(r.contains("truncated header (5 of 12 bytes)"), "{r}");
        let mut bad = out.clone();
        bad[second + 14] ^= 1; // a data byte of the second record
        assert!(reason(&bad).contains("data CRC mismatch"));
        let mut bad = out.clone();
        bad[2] ^= 1; // the first record's length
        let r = reason(&bad);
        assert!(r.contains("offset 0") && r.contains("length CRC mismatch"), "{r}");
        assert_eq!(parse_tfrecords(&[], "empty").unwrap(), Vec::<Vec<u8>>::new());
    }
}
