//! The IDX reader on small files written here: plain and gzip, and every error path.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use gradflow::Error;
use gradflow::data::{TargetData, mnist, mnist_split, read_idx_images, read_idx_labels};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gradflow-mnist-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An IDX images file: magic 00 00 08 03, count, rows, cols (big-endian), then the pixels.
fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 3];
    for v in [count, rows, cols] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// An IDX labels file: magic 00 00 08 01, count (big-endian), then the labels.
fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 1];
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

/// Three 2×3 images whose pixels are 0, 1, …, 17 (in the last one scaled up to reach 255).
fn three_images() -> Vec<u8> {
    let mut pixels: Vec<u8> = (0..18).collect();
    pixels[17] = 255;
    idx_images(3, 2, 3, &pixels)
}

fn data_reason(err: Error, path: &Path) -> String {
    match err {
        Error::Data { source_name, reason } => {
            assert!(source_name.contains(&path.display().to_string()), "{source_name}");
            reason
        }
        other => panic!("expected Error::Data, got {other:?}"),
    }
}

#[test]
fn reads_plain_and_gzip_files_the_same() {
    let dir = TempDir::new("plain-gzip");
    // The gzip one has a misleading name: compression is detected from the contents.
    let plain = dir.write("images.idx", &three_images());
    let gz = dir.write("images-plain-name.idx", &gzip(&three_images()));
    let a = read_idx_images(&plain).unwrap();
    let b = read_idx_images(&gz).unwrap();
    assert_eq!(a, b);
    assert_eq!((a.count, a.rows, a.cols), (3, 2, 3));
    assert_eq!(a.image(1).unwrap(), &[6, 7, 8, 9, 10, 11]);
    assert_eq!(a.image(3), None);

    let labels_plain = dir.write("labels", &idx_labels(&[7, 0, 9]));
    let labels_gz = dir.write("labels.gz", &gzip(&idx_labels(&[7, 0, 9])));
    assert_eq!(read_idx_labels(&labels_plain).unwrap(), vec![7, 0, 9]);
    assert_eq!(read_idx_labels(&labels_gz).unwrap(), vec![7, 0, 9]);
}

#[test]
fn a_split_scales_pixels_to_the_unit_interval() {
    let dir = TempDir::new("split");
    let images = dir.write("i", &gzip(&three_images()));
    let labels = dir.write("l", &idx_labels(&[7, 0, 9]));
    let data = mnist_split::<f64>(&images, &labels).unwrap();
    assert_eq!(data.inputs.dim(), (3, 6));
    assert_eq!(data.inputs[[0, 0]], 0.0);
    assert_eq!(data.inputs[[1, 2]], 8.0 / 255.0);
    assert_eq!(data.inputs[[2, 5]], 1.0);
    assert_eq!(data.targets, TargetData::Classes(vec![7, 0, 9]));
    let data32 = mnist_split::<f32>(&images, &labels).unwrap();
    assert_eq!(data32.inputs[[1, 2]], 8.0f32 / 255.0);
}

#[test]
fn mnist_finds_plain_or_gzip_files_in_a_directory() {
    let dir = TempDir::new("dir");
    dir.write("train-images-idx3-ubyte.gz", &gzip(&three_images()));
    dir.write("train-labels-idx1-ubyte", &idx_labels(&[1, 2, 3]));
    dir.write("t10k-images-idx3-ubyte", &idx_images(1, 2, 3, &[255; 6]));
    dir.write("t10k-labels-idx1-ubyte.gz", &gzip(&idx_labels(&[4])));
    let (train, test) = mnist::<f32>(&dir.0).unwrap();
    assert_eq!((train.len(), test.len()), (3, 1));
    assert_eq!(test.targets, TargetData::Classes(vec![4]));
    assert!(test.inputs.iter().all(|&x| x == 1.0));

    std::fs::remove_file(dir.0.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let err = mnist::<f32>(&dir.0).unwrap_err().to_string();
    assert!(err.contains("t10k-labels-idx1-ubyte"), "{err}");
}

#[test]
fn a_truncated_header_is_reported_with_its_length() {
    let dir = TempDir::new("short-header");
    let full = three_images();
    let path = dir.write("i", &full[..10]);
    let reason = data_reason(read_idx_images(&path).unwrap_err(), &path);
    assert!(reason.contains("truncated header") && reason.contains("16 bytes") && reason.contains("has 10"));

    // Also when the truncated file is compressed, and for labels.
    let path = dir.write("i.gz", &gzip(&full[..10]));
    assert!(data_reason(read_idx_images(&path).unwrap_err(), &path).contains("truncated header"));
    let path = dir.write("l", &[0, 0, 8, 1, 0]);
    let reason = data_reason(read_idx_labels(&path).unwrap_err(), &path);
    assert!(reason.contains("8 bytes") && reason.contains("has 5"), "{reason}");
    let path = dir.write("empty", &[]);
    assert!(data_reason(read_idx_labels(&path).unwrap_err(), &path).contains("has 0"));
}

#[test]
fn a_truncated_body_says_how_much_was_expected_and_found() {
    let dir = TempDir::new("short-body");
    let full = three_images();
    let path = dir.write("i", &full[..full.len() - 4]);
    let reason = data_reason(read_idx_images(&path).unwrap_err(), &path);
    assert!(reason.contains("3 images of 2×3 pixels"), "{reason}");
    assert!(reason.contains("18 bytes") && reason.contains("after 14 bytes"), "{reason}");
    assert!(reason.contains("offset 30"), "{reason}");

    let path = dir.write("l.gz", &gzip(&idx_labels(&[1, 2, 3])[..10]));
    let reason = data_reason(read_idx_labels(&path).unwrap_err(), &path);
    assert!(reason.contains("3 labels") && reason.contains("after 2 bytes"), "{reason}");
}

#[test]
fn trailing_bytes_are_an_error() {
    let dir = TempDir::new("trailing");
    let mut bytes = idx_labels(&[1, 2]);
    bytes.push(3);
    let path = dir.write("l", &bytes);
    let reason = data_reason(read_idx_labels(&path).unwrap_err(), &path);
    assert!(reason.contains("after the 2 labels") && reason.contains("offset 10"), "{reason}");
}

#[test]
fn a_wrong_magic_number_says_what_the_file_is() {
    let dir = TempDir::new("magic");
    let labels = dir.write("labels", &idx_labels(&[1]));
    let reason = data_reason(read_idx_images(&labels).unwrap_err(), &labels);
    assert!(reason.contains("0x00000801") && reason.contains("expected 0x00000803"), "{reason}");
    assert!(reason.contains("labels file"), "{reason}");

    let images = dir.write("images", &three_images());
    let reason = data_reason(read_idx_labels(&images).unwrap_err(), &images);
    assert!(reason.contains("expected 0x00000801") && reason.contains("images file"), "{reason}");

    let text = dir.write("text", b"this is not an IDX file at all");
    let reason = data_reason(read_idx_images(&text).unwrap_err(), &text);
    assert!(reason.contains("wrong magic number 0x74686973"), "{reason}");
}

#[test]
fn a_corrupt_gzip_stream_is_an_error_naming_the_file() {
    let dir = TempDir::new("corrupt-gzip");
    let mut bytes = gzip(&three_images());
    // Keep the gzip header, garble the deflate data.
    for b in &mut bytes[10..20] {
        *b ^= 0xa5;
    }
    let path = dir.write("i.gz", &bytes);
    let err = read_idx_images(&path).unwrap_err();
    let _ = data_reason(err, &path);

    // A gzip stream cut short (its CRC and length trailer missing).
    let bytes = gzip(&three_images());
    let path = dir.write("cut.gz", &bytes[..bytes.len() - 6]);
    let _ = data_reason(read_idx_images(&path).unwrap_err(), &path);
}

#[test]
fn an_empty_image_size_is_refused() {
    let dir = TempDir::new("empty-size");
    let path = dir.write("i", &idx_images(2, 0, 28, &[]));
    let reason = data_reason(read_idx_images(&path).unwrap_err(), &path);
    assert!(reason.contains("0×28"), "{reason}");
}

#[test]
fn a_huge_announced_size_does_not_allocate_it() {
    let dir = TempDir::new("huge");
    // 4 billion images of 65536 × 65536 pixels, and 3 bytes of data: overflows or is truncated,
    // but is never allocated.
    let path = dir.write("i", &idx_images(u32::MAX, 65_536, 65_536, &[1, 2, 3]));
    let reason = data_reason(read_idx_images(&path).unwrap_err(), &path);
    assert!(reason.contains("overflows") || reason.contains("truncated"), "{reason}");
    let path = dir.write("j", &idx_images(1_000_000, 28, 28, &[1, 2, 3]));
    let reason = data_reason(read_idx_images(&path).unwrap_err(), &path);
    assert!(reason.contains("truncated") && reason.contains("after 3 bytes"), "{reason}");
}

#[test]
fn a_label_outside_0_to_9_is_reported_with_its_index() {
    let dir = TempDir::new("bad-label");
    let images = dir.write("i", &three_images());
    let labels = dir.write("l", &idx_labels(&[3, 10, 2]));
    let reason = data_reason(mnist_split::<f32>(&images, &labels).unwrap_err(), &labels);
    assert!(reason.contains("label 10 at index 1") && reason.contains("byte offset 9"), "{reason}");
}

#[test]
fn images_and_labels_must_have_the_same_count() {
    let dir = TempDir::new("count");
    let images = dir.write("images", &three_images());
    let labels = dir.write("labels", &idx_labels(&[3, 1]));
    match mnist_split::<f32>(&images, &labels).unwrap_err() {
        Error::Data { source_name, reason } => {
            assert!(source_name.contains("images") && source_name.contains("labels"), "{source_name}");
            assert_eq!(reason, "3 images but 2 labels");
        }
        other => panic!("expected Error::Data, got {other:?}"),
    }
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let dir = TempDir::new("missing");
    let path = dir.0.join("nope");
    match read_idx_labels(&path).unwrap_err() {
        Error::Io { path: p, .. } => assert_eq!(p, path),
        other => panic!("expected Error::Io, got {other:?}"),
    }
}
