//! TensorBoard event files: written, read back record by record with their CRCs checked, and
//! decoded field by field. `scripts/check_tensorboard.py` reads the same run with TensorBoard's
//! own reader (set GRADFLOW_TB_OUT=DIR to keep a copy of the run for it).
#![cfg(feature = "tensorboard")]

use approx::assert_abs_diff_eq;
use std::path::PathBuf;

use gradflow::Error;
use gradflow::export::{Histogram, TensorBoardWriter, read_tfrecords};

/// A decoded protobuf field: (field number, value).
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(Vec<u8>),
    Fixed32([u8; 4]),
}

/// A minimal protobuf decoder, enough to read back what the writer encodes.
fn decode(mut bytes: &[u8]) -> Vec<(u32, Field)> {
    fn varint(bytes: &mut &[u8]) -> u64 {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let b = bytes[0];
            *bytes = &bytes[1..];
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return value;
            }
            shift += 7;
        }
    }
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes);
        let field = (key >> 3) as u32;
        let value = match key & 7 {
            0 => Field::Varint(varint(&mut bytes)),
            1 => {
                let v = bytes[..8].try_into().unwrap();
                bytes = &bytes[8..];
                Field::Fixed64(v)
            }
            2 => {
                let len = varint(&mut bytes) as usize;
                let v = bytes[..len].to_vec();
                bytes = &bytes[len..];
                Field::Bytes(v)
            }
            5 => {
                let v = bytes[..4].try_into().unwrap();
                bytes = &bytes[4..];
                Field::Fixed32(v)
            }
            other => panic!("unexpected wire type {other}"),
        };
        fields.push((field, value));
    }
    fields
}

fn get(fields: &[(u32, Field)], number: u32) -> Option<&Field> {
    fields.iter().find(|(n, _)| *n == number).map(|(_, f)| f)
}

fn f64_of(fields: &[(u32, Field)], number: u32) -> f64 {
    match get(fields, number) {
        Some(Field::Fixed64(b)) => f64::from_le_bytes(*b),
        None => 0.0, // protobuf 3 leaves zeros out
        other => panic!("field {number}: {other:?}"),
    }
}

fn bytes_of(fields: &[(u32, Field)], number: u32) -> &[u8] {
    match get(fields, number) {
        Some(Field::Bytes(b)) => b,
        other => panic!("field {number}: {other:?}"),
    }
}

fn packed_f64(bytes: &[u8]) -> Vec<f64> {
    bytes.chunks(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("gradflow-tb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    TempDir(dir)
}

/// The values of the gradient histogram at `step` (also in scripts/check_tensorboard.py).
fn grad_values(step: u64) -> Vec<f64> {
    [-1.0, -0.55, -0.05, 0.05, 0.3, 1.0].iter().map(|v| v * 0.5f64.powi(step as i32)).collect()
}

/// The run that scripts/check_tensorboard.py expects: five steps of a loss, two per-layer
/// gradient norms (the first layer's vanishing) and a gradient histogram.
fn write_run(dir: &std::path::Path) -> PathBuf {
    let mut tb = TensorBoardWriter::create(dir).unwrap().histogram_bins(4).unwrap();
    for step in 0..5u64 {
        let s = step as f64;
        tb.add_scalars(
            step,
            &[("loss", 1.0 / (s + 1.0)), ("grad_norm/0", 0.5f64.powf(s)), ("grad_norm/2", 1.0)],
        )
        .unwrap();
        tb.add_histogram("grad/0.weight", step, grad_values(step)).unwrap();
    }
    tb.flush().unwrap();
    tb.path().to_path_buf()
}

#[test]
fn scalars_and_histograms_read_back_field_by_field() {
    let dir = temp_dir("run");
    let path = write_run(&dir.0);
    assert!(path.file_name().unwrap().to_str().unwrap().starts_with("events.out.tfevents."));
    let records = read_tfrecords(&path).unwrap();
    assert_eq!(records.len(), 1 + 5 * 2);

    // First record: Event { wall_time, file_version = "brain.Event:2" }.
    let first = decode(&records[0]);
    assert_eq!(bytes_of(&first, 3), b"brain.Event:2");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((now - f64_of(&first, 1)).abs() < 600.0);

    for step in 0..5u64 {
        // Scalars: Event { step, summary: Summary { value: [Value { tag, simple_value }, …] } }.
        let event = decode(&records[1 + 2 * step as usize]);
        let expected_step = if step == 0 { None } else { Some(&Field::Varint(step)) };
        assert_eq!(get(&event, 2), expected_step);
        let summary = decode(bytes_of(&event, 5));
        let values: Vec<(String, f32)> = summary
            .iter()
            .map(|(n, f)| {
                assert_eq!(*n, 1);
                let Field::Bytes(b) = f else { panic!() };
                let v = decode(b);
                let Some(Field::Fixed32(x)) = get(&v, 2) else { panic!("simple_value") };
                (String::from_utf8(bytes_of(&v, 1).to_vec()).unwrap(), f32::from_le_bytes(*x))
            })
            .collect();
        let s = step as f32;
        assert_eq!(
            values,
            [
                ("loss".to_string(), 1.0 / (s + 1.0)),
                ("grad_norm/0".to_string(), 0.5f32.powi(step as i32)),
                ("grad_norm/2".to_string(), 1.0)
            ]
        );

        // Histogram: Value { tag, histo: HistogramProto { min, max, num, sum, sum_squares, … } }.
        let event = decode(&records[2 + 2 * step as usize]);
        let summary = decode(bytes_of(&event, 5));
        let value = decode(bytes_of(&summary, 1));
        assert_eq!(bytes_of(&value, 1), b"grad/0.weight");
        let histo = decode(bytes_of(&value, 5));
        let scale = 0.5f64.powi(step as i32);
        assert_eq!((f64_of(&histo, 1), f64_of(&histo, 2)), (-scale, scale));
        assert_eq!(f64_of(&histo, 3), 6.0);
        // -1 - 0.55 - 0.05 + 0.05 + 0.3 + 1 = -0.25; 1 + 0.3025 + 0.0025 + 0.0025 + 0.09 + 1 = 2.3975.
        assert_abs_diff_eq!(f64_of(&histo, 4), -0.25 * scale, epsilon = 1e-15);
        assert_abs_diff_eq!(f64_of(&histo, 5), 2.3975 * scale * scale, epsilon = 1e-14);
        // Four buckets of width 0.5 · scale over [-scale, scale], after the leading empty one:
        // [-1, -0.5) holds -1 and -0.55, [-0.5, 0) holds -0.05, [0, 0.5) holds 0.05 and 0.3,
        // [0.5, 1] holds 1.
        let limits = packed_f64(bytes_of(&histo, 6));
        let counts = packed_f64(bytes_of(&histo, 7));
        assert_eq!(limits, [-1.0, -0.5, 0.0, 0.5, 1.0].map(|v| v * scale));
        assert_eq!(counts, [0.0, 2.0, 1.0, 2.0, 1.0]);
    }

    if let Some(out) = std::env::var_os("GRADFLOW_TB_OUT") {
        let out = PathBuf::from(out);
        std::fs::create_dir_all(&out).unwrap();
        std::fs::copy(&path, out.join(path.file_name().unwrap())).unwrap();
    }
}

#[test]
fn two_writers_in_one_directory_get_two_files() {
    let dir = temp_dir("two");
    let a = TensorBoardWriter::create(&dir.0).unwrap();
    let b = TensorBoardWriter::create(&dir.0).unwrap();
    assert_ne!(a.path(), b.path());
}

#[test]
fn bad_input_is_an_error_naming_what_was_wrong() {
    let dir = temp_dir("bad");
    let mut tb = TensorBoardWriter::create(&dir.0).unwrap();
    match tb.add_histogram("grad/3.weight", 12, [1.0, f64::NAN]).unwrap_err() {
        Error::NonFinite { location, detail } => {
            assert_eq!(location, "histogram `grad/3.weight` at step 12");
            assert!(detail.contains("NaN at index 1"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(tb.add_histogram("h", 0, []), Err(Error::InvalidConfig { field: "values", .. })));
    assert!(matches!(tb.add_scalar("", 0, 1.0), Err(Error::InvalidConfig { field: "tag", .. })));
    assert!(matches!(tb.add_scalar("x", u64::MAX, 1.0), Err(Error::InvalidConfig { field: "step", .. })));
    assert!(matches!(
        TensorBoardWriter::create(&dir.0).unwrap().histogram_bins(0),
        Err(Error::InvalidConfig { field: "bins", .. })
    ));
    // A NaN scalar is a legitimate observation (a diverged loss): it is written as is.
    tb.add_scalar("loss", 3, f64::NAN).unwrap();
    tb.flush().unwrap();
    let records = read_tfrecords(tb.path()).unwrap();
    assert_eq!(records.len(), 2, "only the file version and the NaN scalar were written");

    // A path that is a file, not a directory.
    let file = dir.0.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(TensorBoardWriter::create(&file), Err(Error::Io { .. })));
}

#[test]
fn a_histogram_of_equal_values_spans_the_value_plus_minus_half() {
    let h = Histogram::from_values([2.0; 3], 2).unwrap();
    assert_eq!(h.bucket_limit, [1.5, 2.0, 2.5]);
    assert_eq!(h.bucket, [0.0, 0.0, 3.0]);
    assert_eq!((h.min, h.max, h.num, h.sum, h.sum_squares), (2.0, 2.0, 3.0, 6.0, 12.0));
}

#[test]
fn a_value_on_a_bucket_edge_goes_to_the_bucket_it_starts() {
    // 0, 0.1, …, 1.0 in ten buckets of width 0.1: every value is exactly an edge (computed the
    // same way), so each bucket holds one value and the last also holds the maximum.
    let values: Vec<f64> = (0..=10).map(|i| 0.1 * i as f64).collect();
    let h = Histogram::from_values(values, 10).unwrap();
    assert_eq!(h.bucket, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0]);
}
