//! MNIST and the IDX file format it is distributed in.
//!
//! IDX (LeCun et al.) is a tiny binary format: a 4-byte magic number `00 00 TT DD` where `TT`
//! is the element type (`08` = unsigned byte) and `DD` the number of dimensions, then `DD`
//! big-endian `u32` sizes, then the elements in row-major order. MNIST's images are
//! `00 00 08 03` (count × rows × cols bytes) and its labels `00 00 08 01` (one byte per image).
//! Files may be gzip-compressed; this is detected from the gzip magic `1f 8b`, not from the
//! file name.
//!
//! The MNIST files are not part of this crate (they are CC BY-SA 3.0): pass their directory to
//! [`mnist`], for example from the `GRADFLOW_MNIST_DIR` environment variable
//! ([`mnist_dir_from_env`]).
//!
//! ```no_run
//! use gradflow::data::{mnist, mnist_dir_from_env};
//!
//! let dir = mnist_dir_from_env().expect("set GRADFLOW_MNIST_DIR to the MNIST directory");
//! let (train, test) = mnist::<f32>(&dir)?;
//! assert_eq!((train.len(), test.len()), (60_000, 10_000));
//! assert_eq!(train.inputs.ncols(), 28 * 28);
//! # Ok::<(), gradflow::Error>(())
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use ndarray::Array2;

use crate::data::{Dataset, TargetData};
use crate::{Error, Float, Result};

/// The environment variable naming the directory that holds the four MNIST files.
pub const MNIST_DIR_ENV: &str = "GRADFLOW_MNIST_DIR";

/// Number of MNIST classes (digits 0–9).
const MNIST_CLASSES: u8 = 10;

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Images read from an IDX file: `count` images of `rows × cols` bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image (28 for MNIST).
    pub rows: usize,
    /// Columns per image (28 for MNIST).
    pub cols: usize,
    /// `count × rows × cols` pixel bytes (0 = background, 255 = full ink), image after image.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// The pixels of image `index` (`rows × cols` bytes), or `None` past the end (or when the
    /// fields, edited by hand, do not describe `pixels`).
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        let size = self.rows.checked_mul(self.cols)?;
        if index >= self.count {
            return None;
        }
        self.pixels.get(index.checked_mul(size)?..index.checked_add(1)?.checked_mul(size)?)
    }
}

/// Reads an IDX images file (magic `0x00000803`), plain or gzip-compressed.
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened; [`Error::Data`] naming the file when the magic
/// number is wrong, a dimension is zero, or the file is truncated or has bytes after the last
/// image (saying how many bytes were expected and found), or the gzip stream is corrupt.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    let mut reader = open_idx(path)?;
    let err = |reason: String| Error::Data { source_name: path.display().to_string(), reason };
    let header = read_header(&mut reader, path, IDX_IMAGES_MAGIC, 3)?;
    let [count, rows, cols] = [header[0], header[1], header[2]];
    if rows == 0 || cols == 0 {
        return Err(err(format!("IDX images header has an empty image size {rows}×{cols}")));
    }
    // Each image and the whole file within the limits, however few images there are: a header
    // of 0 images of 2³²×2³² pixels describes rows no array can hold.
    let total = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .filter(|_| rows.checked_mul(cols).is_some_and(|n| n <= crate::limits::MAX_TENSOR_ELEMENTS))
        .filter(|&n| n <= crate::limits::MAX_TENSOR_ELEMENTS)
        .ok_or_else(|| {
            err(format!(
                "IDX images header size {count}×{rows}×{cols} overflows or exceeds the limit of {} \
                 entries (gradflow::limits::MAX_TENSOR_ELEMENTS)",
                crate::limits::MAX_TENSOR_ELEMENTS
            ))
        })?;
    let pixels = read_body(&mut reader, path, total, 16, &format!("{count} images of {rows}×{cols} pixels"))?;
    Ok(IdxImages { count, rows, cols, pixels })
}

/// Reads an IDX labels file (magic `0x00000801`), plain or gzip-compressed, returning one byte
/// per label (any value; [`mnist`] checks that they are digits).
///
/// # Errors
/// As [`read_idx_images`].
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let mut reader = open_idx(path)?;
    let header = read_header(&mut reader, path, IDX_LABELS_MAGIC, 1)?;
    let count = header[0];
    read_body(&mut reader, path, count, 8, &format!("{count} labels"))
}

/// Reads a pair of IDX files (images and labels) into a [`Dataset`] with one row of
/// `rows × cols` inputs scaled to `[0, 1]` (pixel / 255, as torchvision's `ToTensor`) and one
/// class per sample.
///
/// # Errors
/// Those of [`read_idx_images`] and [`read_idx_labels`], and [`Error::Data`] when the two
/// files hold different numbers of samples or a label is not a digit 0–9 (naming the file
/// and the index of the first bad label).
pub fn mnist_split<F: Float>(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Dataset<F>> {
    let (images_path, labels_path) = (images.as_ref(), labels.as_ref());
    let images = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    if images.count != labels.len() {
        return Err(Error::Data {
            source_name: format!("{} and {}", images_path.display(), labels_path.display()),
            reason: format!("{} images but {} labels", images.count, labels.len()),
        });
    }
    if let Some(index) = labels.iter().position(|&l| l >= MNIST_CLASSES) {
        return Err(Error::Data {
            source_name: labels_path.display().to_string(),
            reason: format!(
                "label {} at index {index} (byte offset {}) is not a digit 0–9",
                labels[index],
                8 + index
            ),
        });
    }
    let source = images_path.display().to_string();
    let features = crate::alloc::mul(&source, "images", images.rows, images.cols)?;
    let mut inputs: Array2<F> = crate::alloc::try_zeros(&source, "images", (images.count, features))?;
    let Some(pixels) = images.pixels.get(..inputs.len()) else {
        return Err(Error::Data {
            source_name: source,
            reason: "fewer pixels than the header announces".into(),
        });
    };
    F::from_bytes_scaled(pixels, F::lit(1.0 / 255.0), inputs.as_slice_mut().expect("standard layout"));
    let classes = labels.into_iter().map(usize::from).collect();
    Ok(Dataset { inputs, targets: TargetData::Classes(classes) })
}

/// Loads MNIST from `dir`: `(train, test)` with 60 000 and 10 000 samples of 784 inputs
/// (pixel / 255, row-major 28×28) and class targets 0–9.
///
/// `dir` holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
/// and `t10k-labels-idx1-ubyte`, each either as is or with a `.gz` suffix (the `.gz` name is
/// tried first; compression is detected from the contents).
///
/// # Errors
/// [`Error::Io`] naming the missing file, or the errors of [`mnist_split`].
pub fn mnist<F: Float>(dir: &Path) -> Result<(Dataset<F>, Dataset<F>)> {
    let train =
        mnist_split(find_file(dir, "train-images-idx3-ubyte")?, find_file(dir, "train-labels-idx1-ubyte")?)?;
    let test =
        mnist_split(find_file(dir, "t10k-images-idx3-ubyte")?, find_file(dir, "t10k-labels-idx1-ubyte")?)?;
    Ok((train, test))
}

/// The MNIST directory named by the `GRADFLOW_MNIST_DIR` environment variable, if it is set
/// and not empty.
pub fn mnist_dir_from_env() -> Option<PathBuf> {
    std::env::var_os(MNIST_DIR_ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// `dir/name.gz` if it exists, else `dir/name` if it exists, else an error naming both.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    Err(Error::Io {
        path: plain,
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("MNIST file not found (neither {name} nor {name}.gz is in {})", dir.display()),
        ),
    })
}

/// Opens `path` for reading, decompressing on the fly when it starts with the gzip magic.
fn open_idx(path: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let mut reader = BufReader::new(file);
    let start = reader.fill_buf().map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    if start.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Reads until `buf` is full or the stream ends; returns the number of bytes read.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A read error as an [`Error::Data`] naming the file (a corrupt gzip stream surfaces here).
fn read_error(path: &Path, e: std::io::Error) -> Error {
    Error::Data { source_name: path.display().to_string(), reason: format!("read failed: {e}") }
}

/// Reads and checks the magic number and the `dims` sizes of an IDX header.
fn read_header(reader: &mut dyn Read, path: &Path, magic: u32, dims: usize) -> Result<Vec<usize>> {
    let err = |reason: String| Error::Data { source_name: path.display().to_string(), reason };
    let header_len = 4 + 4 * dims;
    let mut header = vec![0u8; header_len];
    let got = read_up_to(reader, &mut header).map_err(|e| read_error(path, e))?;
    let what = if dims == 3 { "images" } else { "labels" };
    if got >= 4 {
        let found = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if found != magic {
            let hint = match found {
                IDX_IMAGES_MAGIC => " (this is an IDX images file)",
                IDX_LABELS_MAGIC => " (this is an IDX labels file)",
                _ => "",
            };
            return Err(err(format!(
                "wrong magic number 0x{found:08x}{hint}: expected 0x{magic:08x} \
                 (IDX {what}: unsigned bytes, {dims} dimension{})",
                if dims == 1 { "" } else { "s" }
            )));
        }
    }
    if got < header_len {
        return Err(err(format!(
            "truncated header: an IDX {what} header is {header_len} bytes, the file has {got}"
        )));
    }
    Ok(header[4..].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect())
}

/// Reads exactly `len` body bytes and checks that nothing follows them.
fn read_body(
    reader: &mut dyn Read,
    path: &Path,
    len: usize,
    header_len: usize,
    what: &str,
) -> Result<Vec<u8>> {
    let err = |reason: String| Error::Data { source_name: path.display().to_string(), reason };
    // Read through `take` so that the buffer grows with the data actually present: a corrupt
    // header announcing billions of items cannot make us allocate them up front.
    let mut body = Vec::new();
    reader.take(len as u64).read_to_end(&mut body).map_err(|e| read_error(path, e))?;
    if body.len() < len {
        return Err(err(format!(
            "truncated: the header announces {what} ({len} bytes after the {header_len}-byte header), \
             the data ends after {} bytes (at byte offset {})",
            body.len(),
            header_len + body.len()
        )));
    }
    let mut extra = [0u8; 1];
    if read_up_to(reader, &mut extra).map_err(|e| read_error(path, e))? > 0 {
        return Err(err(format!(
            "unexpected data after the {what} announced by the header (at byte offset {})",
            header_len + len
        )));
    }
    Ok(body)
}
