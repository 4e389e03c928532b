//! The 8x8 handwritten digits (UCI "Optical Recognition of Handwritten Digits"), embedded in
//! the library: 1797 samples, 64 pixel features, 10 classes.
//!
//! Attribution (CC BY 4.0): Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of
//! Handwritten Digits. UCI Machine Learning Repository. The file and its provenance are
//! described in `data/README.md` at the root of the repository.

use std::io::{BufRead, BufReader, Read};

use flate2::read::GzDecoder;
use ndarray::Array2;

use super::{Dataset, TargetData};
use crate::{Error, Float, Result};

/// The name under which errors in the embedded digits file are reported.
pub const DIGITS_SOURCE_NAME: &str = "digits.csv.gz";

/// The gzip-compressed CSV (see `data/README.md`).
static DIGITS_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

const PIXELS: usize = 64;
const MAX_PIXEL: u8 = 16;
const CLASSES: usize = 10;

/// The 1797 8x8 handwritten digits, with pixels scaled by 1/16 into `[0, 1]` (64 features,
/// row-major: feature `8r + c` is row `r`, column `c`) and class targets 0..9, in the order of
/// scikit-learn's `load_digits`.
///
/// The data is embedded in the library (53 kB compressed) and decoded on each call (a few
/// milliseconds in a release build): keep the result rather than calling this in a loop. Class counts for digits 0..9: 178, 182, 177, 183, 181, 182, 181, 179, 174, 180.
///
/// Source (CC BY 4.0): Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten
/// Digits. UCI Machine Learning Repository — the 1797-sample test split, as bundled with
/// scikit-learn.
///
/// ```
/// let data = gradflow::data::digits::<f32>()?;
/// assert_eq!(data.inputs.dim(), (1797, 64));
/// assert!(data.inputs.iter().all(|&p| (0.0..=1.0).contains(&p)));
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::Data`] if the embedded file cannot be decoded (which would be a packaging defect).
pub fn digits<F: Float>() -> Result<Dataset<F>> {
    parse_digits_csv(GzDecoder::new(DIGITS_GZ), DIGITS_SOURCE_NAME)
}

/// [`digits`] split into `(train, test)` with [`Dataset::split_stratified`]: each digit keeps
/// its share in both parts, and the same `seed` always gives the same split.
///
/// ```
/// let (train, test) = gradflow::data::digits_split::<f32>(0.2, 0)?;
/// assert_eq!((train.len(), test.len()), (1438, 359));
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] naming `test_fraction` when it is not strictly between 0 and 1.
pub fn digits_split<F: Float>(test_fraction: f64, seed: u64) -> Result<(Dataset<F>, Dataset<F>)> {
    digits()?.split_stratified(test_fraction, seed)
}

/// Parses the digits CSV format from any reader (uncompressed): a header
/// `p0,p1,…,p63,label`, then one line per sample with 64 integers 0..=16 and a label 0..=9.
/// Pixels are scaled by 1/16. `source_name` is used in error messages.
///
/// ```
/// use gradflow::data::parse_digits_csv;
///
/// let mut csv = (0..64).map(|i| format!("p{i},")).collect::<String>() + "label\n";
/// csv += &(["16"; 64].join(",") + ",7\n");
/// let data = parse_digits_csv::<f32>(csv.as_bytes(), "mine.csv")?;
/// assert_eq!(data.inputs[[0, 0]], 1.0);
/// assert_eq!(data.targets.classes(), Some(&[7][..]));
///
/// let err = parse_digits_csv::<f32>("p0,label\n".as_bytes(), "mine.csv").unwrap_err();
/// assert!(err.to_string().starts_with("mine.csv: line 1:"));
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::Data`] naming `source_name` and the line (1-based, the header is line 1) for a
/// missing or wrong header, a wrong number of fields, a value that is not an integer in range,
/// an unreadable line, or a file with no samples.
pub fn parse_digits_csv<F: Float>(reader: impl Read, source_name: &str) -> Result<Dataset<F>> {
    let (pixels, labels) = parse_digits_fields(&mut BufReader::new(reader), source_name)?;
    let mut inputs = Array2::zeros((labels.len(), PIXELS));
    let scale = F::lit(1.0 / f64::from(MAX_PIXEL));
    F::from_bytes_scaled(&pixels, scale, inputs.as_slice_mut().expect("standard layout"));
    Dataset::new(inputs, TargetData::Classes(labels))
}

/// The pixels (row after row) and labels of a digits CSV, checked. Not generic, so compiled
/// inside gradflow (see [`crate::kernels`]).
#[inline(never)]
fn parse_digits_fields(reader: &mut dyn BufRead, source_name: &str) -> Result<(Vec<u8>, Vec<usize>)> {
    let error = |line: usize, reason: String| Error::Data {
        source_name: source_name.to_string(),
        reason: format!("line {line}: {reason}"),
    };
    let mut line = String::new();
    let mut read_line = |line: &mut String, number: usize| -> Result<bool> {
        line.clear();
        let bytes = reader.read_line(line).map_err(|e| error(number, format!("cannot read: {e}")))?;
        let trimmed = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(trimmed);
        Ok(bytes > 0)
    };

    let header: String = (0..PIXELS).map(|i| format!("p{i},")).collect::<String>() + "label";
    if !read_line(&mut line, 1)? {
        return Err(error(1, "empty input, expected the header `p0,p1,…,p63,label`".into()));
    }
    if line != header {
        return Err(error(1, format!("expected the header `p0,p1,…,p63,label`, found `{}`", shorten(&line))));
    }

    let mut pixels: Vec<u8> = Vec::new();
    let mut labels: Vec<usize> = Vec::new();
    let mut number = 1;
    loop {
        number += 1;
        if !read_line(&mut line, number)? {
            break;
        }
        let fields = line.split(',').count();
        if fields != PIXELS + 1 {
            return Err(error(
                number,
                format!("expected {} comma-separated fields (p0..p63, label), found {fields}", PIXELS + 1),
            ));
        }
        for (i, field) in line.split(',').enumerate() {
            if i < PIXELS {
                match field.parse::<u8>() {
                    Ok(v) if v <= MAX_PIXEL => pixels.push(v),
                    _ => {
                        return Err(error(
                            number,
                            format!("p{i}: expected an integer 0..=16, found `{}`", shorten(field)),
                        ));
                    }
                }
            } else {
                match field.parse::<usize>() {
                    Ok(label) if label < CLASSES => labels.push(label),
                    _ => {
                        return Err(error(
                            number,
                            format!("label: expected an integer 0..=9, found `{}`", shorten(field)),
                        ));
                    }
                }
            }
        }
    }
    if labels.is_empty() {
        return Err(error(number, "no samples after the header".into()));
    }
    if pixels.len() != labels.len() * PIXELS {
        return Err(error(number, "internal: inconsistent row lengths".into()));
    }
    Ok((pixels, labels))
}

/// At most 40 characters of `text`, for error messages.
fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        text.chars().take(MAX).collect::<String>() + "…"
    }
}
