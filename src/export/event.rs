//! The few protobuf messages of a TensorBoard event file, encoded by hand.
//!
//! Field numbers and types from TensorFlow's `tensorflow/core/util/event.proto` (`Event`:
//! `wall_time = 1` double, `step = 2` int64, `file_version = 3` string, `summary = 5`),
//! `tensorflow/core/framework/summary.proto` (`Summary`: `repeated Value value = 1`;
//! `Value`: `tag = 1` string, `simple_value = 2` float, `histo = 5`; `HistogramProto`: `min = 1`,
//! `max = 2`, `num = 3`, `sum = 4`, `sum_squares = 5` doubles, `bucket_limit = 6` and
//! `bucket = 7` packed repeated doubles). Protobuf wire types: 0 varint, 1 64-bit,
//! 2 length-delimited, 5 32-bit.
//!
//! As protobuf 3 does, fields with implicit presence are left out when they hold their default
//! (zero), while members of a `oneof` (`file_version`, `summary`, `simple_value`, `histo`) are
//! always written, so the bytes are those TensorBoard's own Python writer produces.

use crate::export::Histogram;

/// One value of a summary.
pub(crate) enum SummaryValue<'a> {
    /// A scalar (stored as a 32-bit float, as TensorBoard's `simple_value`).
    Scalar { tag: &'a str, value: f32 },
    /// A histogram.
    Histogram { tag: &'a str, histogram: &'a Histogram },
}

/// The first event of every file: `file_version = "brain.Event:2"`.
pub(crate) fn file_version_event(wall_time: f64) -> Vec<u8> {
    let mut event = Proto::default();
    event.double(1, wall_time);
    event.bytes(3, b"brain.Event:2");
    event.0
}

/// An event carrying a summary of `values` at `step`.
pub(crate) fn summary_event(wall_time: f64, step: i64, values: &[SummaryValue<'_>]) -> Vec<u8> {
    let mut summary = Proto::default();
    for value in values {
        let mut v = Proto::default();
        match value {
            SummaryValue::Scalar { tag, value } => {
                v.bytes(1, tag.as_bytes());
                v.float_in_oneof(2, *value);
            }
            SummaryValue::Histogram { tag, histogram } => {
                v.bytes(1, tag.as_bytes());
                v.bytes(5, &histogram_proto(histogram));
            }
        }
        summary.bytes(1, &v.0);
    }
    let mut event = Proto::default();
    event.double(1, wall_time);
    event.int64(2, step);
    event.bytes(5, &summary.0);
    event.0
}

fn histogram_proto(h: &Histogram) -> Vec<u8> {
    let mut p = Proto::default();
    p.double(1, h.min);
    p.double(2, h.max);
    p.double(3, h.num);
    p.double(4, h.sum);
    p.double(5, h.sum_squares);
    p.packed_doubles(6, &h.bucket_limit);
    p.packed_doubles(7, &h.bucket);
    p.0
}

/// A protobuf message being encoded.
#[derive(Default)]
struct Proto(Vec<u8>);

impl Proto {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    /// A `double` with implicit presence: left out when it is +0.0.
    fn double(&mut self, field: u32, v: f64) {
        if v.to_bits() != 0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A `float` member of a `oneof`: always written.
    fn float_in_oneof(&mut self, field: u32, v: f32) {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// An `int64` with implicit presence: left out when it is 0.
    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64); // two's complement, as protobuf encodes int64
        }
    }

    /// A string, bytes or embedded message: always written (callers skip empty optional ones).
    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.key(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    /// A packed `repeated double`: left out when empty.
    fn packed_doubles(&mut self, field: u32, values: &[f64]) {
        if !values.is_empty() {
            let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.bytes(field, &data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The expected bytes below were produced by TensorBoard's own protobuf classes
    // (tensorboard 2.21.0, `tensorboard.compat.proto.event_pb2` / `summary_pb2`), e.g.
    // `event_pb2.Event(wall_time=1.5, step=7, summary=summary_pb2.Summary(value=[
    //  summary_pb2.Summary.Value(tag="loss", simple_value=0.25)])).SerializeToString()`.

    #[test]
    fn the_file_version_event_matches_tensorboards_encoding() {
        let expected =
            [9, 0, 0, 0, 0, 0, 0, 240, 63, 26, 13, 98, 114, 97, 105, 110, 46, 69, 118, 101, 110, 116, 58, 50];
        assert_eq!(file_version_event(1.0), expected);
    }

    #[test]
    fn a_scalar_event_matches_tensorboards_encoding() {
        let expected = [
            9, 0, 0, 0, 0, 0, 0, 248, 63, 16, 7, 42, 13, 10, 11, 10, 4, 108, 111, 115, 115, 21, 0, 0, 128, 62,
        ];
        let values = [SummaryValue::Scalar { tag: "loss", value: 0.25 }];
        assert_eq!(summary_event(1.5, 7, &values), expected);
        // A zero scalar is still written (it is a oneof member), a zero step is not
        // (same source, with step=0 and simple_value=0.0).
        let zero = summary_event(1.5, 0, &[SummaryValue::Scalar { tag: "loss", value: 0.0 }]);
        assert_eq!(
            zero,
            [9, 0, 0, 0, 0, 0, 0, 248, 63, 42, 13, 10, 11, 10, 4, 108, 111, 115, 115, 21, 0, 0, 0, 0]
        );
    }

    #[test]
    fn a_histogram_event_matches_tensorboards_encoding() {
        // HistogramProto(min=0, max=4, num=4, sum=6, sum_squares=18,
        //                bucket_limit=[0, 1, 2, 3, 4], bucket=[0, 1, 2, 0, 1]), tag "grad/0.weight",
        // wall_time 2, step 3.
        let expected: Vec<u8> = vec![
            9, 0, 0, 0, 0, 0, 0, 0, 64, 16, 3, 42, 140, 1, 10, 137, 1, 10, 13, 103, 114, 97, 100, 47, 48, 46,
            119, 101, 105, 103, 104, 116, 42, 120, 17, 0, 0, 0, 0, 0, 0, 16, 64, 25, 0, 0, 0, 0, 0, 0, 16,
            64, 33, 0, 0, 0, 0, 0, 0, 24, 64, 41, 0, 0, 0, 0, 0, 0, 50, 64, 50, 40, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 240, 63, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 8, 64, 0, 0, 0, 0, 0, 0,
            16, 64, 58, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 240, 63, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 240, 63,
        ];
        let histogram = Histogram::from_values([0.0, 1.0, 1.0, 4.0], 4).unwrap();
        let values = [SummaryValue::Histogram { tag: "grad/0.weight", histogram: &histogram }];
        assert_eq!(summary_event(2.0, 3, &values), expected);
    }
}
