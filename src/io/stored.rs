//! [`StoredTensor`]: any tensor of a safetensors file, with its dtype, read by
//! [`read_any_tensors`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use ::safetensors::tensor::{Dtype as FileDtype, TensorView};
use ndarray::{ArrayD, IxDyn};

use crate::io::Mismatch;
use crate::{Error, Result};

/// The element type of a tensor in a safetensors file, named as safetensors names it
/// (`Display` gives `"F32"`, `"BF16"`, `"I64"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Dtype {
    /// Boolean, one byte (0 or 1).
    Bool,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 16-bit integer.
    U16,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 32-bit integer.
    U32,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 64-bit integer.
    U64,
    /// Signed 64-bit integer (PyTorch's `long`, e.g. `num_batches_tracked`).
    I64,
    /// IEEE half precision (PyTorch's `float16`).
    F16,
    /// bfloat16 (PyTorch's `bfloat16`).
    BF16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
}

impl Dtype {
    /// Whether the elements are floating-point numbers.
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
    }

    /// The dtype as the `safetensors` crate names it, or `None` for those gradflow cannot read
    /// (8-bit and smaller floats, complex numbers).
    fn from_file(dtype: FileDtype) -> Option<Dtype> {
        Some(match dtype {
            FileDtype::BOOL => Dtype::Bool,
            FileDtype::U8 => Dtype::U8,
            FileDtype::I8 => Dtype::I8,
            FileDtype::U16 => Dtype::U16,
            FileDtype::I16 => Dtype::I16,
            FileDtype::U32 => Dtype::U32,
            FileDtype::I32 => Dtype::I32,
            FileDtype::U64 => Dtype::U64,
            FileDtype::I64 => Dtype::I64,
            FileDtype::F16 => Dtype::F16,
            FileDtype::BF16 => Dtype::BF16,
            FileDtype::F32 => Dtype::F32,
            FileDtype::F64 => Dtype::F64,
            _ => return None,
        })
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dtype::Bool => "BOOL",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::U16 => "U16",
            Dtype::I16 => "I16",
            Dtype::U32 => "U32",
            Dtype::I32 => "I32",
            Dtype::U64 => "U64",
            Dtype::I64 => "I64",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
        })
    }
}

/// The values of a [`StoredTensor`]: floating-point dtypes widened exactly to `f64`, integers
/// and booleans (as 0 and 1) exactly to `i64`.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// The values of an `F16`, `BF16`, `F32` or `F64` tensor, each exactly as stored (NaN and
    /// infinities included: count them with [`StoredTensor::non_finite`]).
    Float(ArrayD<f64>),
    /// The values of an integer or boolean tensor.
    Int(ArrayD<i64>),
}

/// One tensor of a safetensors file as it is stored: dtype, shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    /// The dtype in the file.
    pub dtype: Dtype,
    /// The shape in the file (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// The values, in row-major order, with the same shape.
    pub data: TensorData,
}

impl StoredTensor {
    /// The values as `f64` when the tensor holds floats.
    pub fn floats(&self) -> Option<&ArrayD<f64>> {
        match &self.data {
            TensorData::Float(a) => Some(a),
            TensorData::Int(_) => None,
        }
    }

    /// The values as `i64` when the tensor holds integers or booleans.
    pub fn ints(&self) -> Option<&ArrayD<i64>> {
        match &self.data {
            TensorData::Int(a) => Some(a),
            TensorData::Float(_) => None,
        }
    }

    /// The number of NaN or infinite values (0 for integers).
    pub fn non_finite(&self) -> usize {
        self.floats().map_or(0, |a| a.iter().filter(|v| !v.is_finite()).count())
    }
}

/// Reads every tensor of the safetensors file at `path`, whatever its dtype: floats (`F16`,
/// `BF16`, `F32`, `F64`) widened exactly to `f64`, integers and booleans to `i64`, each with
/// its dtype and shape. Any file gradflow writes reads back this way, as does any file
/// `safetensors.torch.save_file` writes with those dtypes.
///
/// ```
/// use gradflow::io::{Dtype, read_any_tensors, save_safetensors};
/// use gradflow::rand::{SeedableRng, rngs::StdRng};
/// use gradflow::Sequential;
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let model = Sequential::<f32>::builder(3).linear(4).batch_norm().build(&mut rng)?;
/// let path = std::env::temp_dir().join(format!("gradflow-any-{}.safetensors", std::process::id()));
/// save_safetensors(&model, &path)?;
/// let tensors = read_any_tensors(&path)?;
/// assert_eq!(tensors["0.weight"].dtype, Dtype::F32);
/// assert_eq!(tensors["1.num_batches_tracked"].dtype, Dtype::I64);
/// assert_eq!(tensors["1.num_batches_tracked"].ints().unwrap().first(), Some(&0));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Data`] naming the file when it is not
/// valid safetensors (naming the tensor for a name given twice in the header, a byte range
/// outside the data, overlapping ranges or a range of the wrong length), or naming every tensor
/// of a dtype gradflow cannot read (8-bit and smaller floats, complex) or a `U64` value above
/// `i64::MAX`.
pub fn read_any_tensors(path: impl AsRef<Path>) -> Result<BTreeMap<String, StoredTensor>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_any_tensors_bytes(&bytes, &path.display().to_string())
}

/// [`read_any_tensors`] from bytes in memory; `source_name` names them in errors.
///
/// # Errors
/// As [`read_any_tensors`], without the I/O.
pub fn read_any_tensors_bytes(bytes: &[u8], source_name: &str) -> Result<BTreeMap<String, StoredTensor>> {
    let file = super::safetensors::parse(bytes, source_name)?;
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, view) in file.tensors.iter() {
        match decode_any(name, &view) {
            Ok(t) => {
                out.insert(name.to_string(), t);
            }
            Err(m) => problems.push(m),
        }
    }
    if !problems.is_empty() {
        problems.sort_by(|a, b| a.name().cmp(b.name()));
        return Err(Error::Data {
            source_name: source_name.to_string(),
            reason: super::safetensors::describe_problems("cannot read", &problems),
        });
    }
    Ok(out)
}

/// Decodes one tensor of any supported dtype.
pub(super) fn decode_any(name: &str, view: &TensorView<'_>) -> std::result::Result<StoredTensor, Mismatch> {
    let Some(dtype) = Dtype::from_file(view.dtype()) else {
        return Err(Mismatch::WrongDtype {
            name: name.to_string(),
            expected: "BOOL, an integer, F16, BF16, F32 or F64".into(),
            found: view.dtype().to_string(),
            note: "gradflow reads no 8-bit or smaller floats and no complex numbers".into(),
        });
    };
    let shape = view.shape().to_vec();
    let bytes = view.data();
    let data = if dtype.is_float() {
        TensorData::Float(shaped(&shape, decode_floats_f64(dtype, bytes)))
    } else {
        let values = decode_ints(dtype, bytes).map_err(|index| Mismatch::WrongDtype {
            name: name.to_string(),
            expected: "integers that fit an i64".into(),
            found: dtype.to_string(),
            note: format!("the value at flat index {index} exceeds i64::MAX"),
        })?;
        TensorData::Int(shaped(&shape, values))
    };
    Ok(StoredTensor { dtype, shape, data })
}

fn shaped<T>(shape: &[usize], values: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), values).expect("the header was checked against the data's length")
}

/// Little-endian floats of a float `dtype`, each widened exactly to `f64`.
#[inline(never)]
pub(super) fn decode_floats_f64(dtype: Dtype, bytes: &[u8]) -> Vec<f64> {
    let two = |c: &[u8]| u16::from_le_bytes([c[0], c[1]]);
    match dtype {
        Dtype::F16 => bytes.chunks_exact(2).map(|c| f16_to_f64(two(c))).collect(),
        Dtype::BF16 => {
            bytes.chunks_exact(2).map(|c| f64::from(f32::from_bits(u32::from(two(c)) << 16))).collect()
        }
        Dtype::F32 => {
            bytes.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap()))).collect()
        }
        Dtype::F64 => bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect(),
        _ => unreachable!("decode_floats_f64 is called for float dtypes"),
    }
}

/// An IEEE half-precision number, exactly as an `f64`.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f64::from(bits & 0x3ff);
    match exponent {
        0 => sign * mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1024.0 + mantissa) * 2f64.powi(e - 25),
    }
}

/// Little-endian integers (or booleans) of an integer `dtype` as `i64`s; the flat index of the
/// first `U64` value above `i64::MAX` as the error.
#[inline(never)]
fn decode_ints(dtype: Dtype, bytes: &[u8]) -> std::result::Result<Vec<i64>, usize> {
    Ok(match dtype {
        Dtype::Bool | Dtype::U8 => bytes.iter().map(|&b| i64::from(b)).collect(),
        Dtype::I8 => bytes.iter().map(|&b| i64::from(b as i8)).collect(),
        Dtype::U16 => bytes.chunks_exact(2).map(|c| i64::from(u16::from_le_bytes([c[0], c[1]]))).collect(),
        Dtype::I16 => bytes.chunks_exact(2).map(|c| i64::from(i16::from_le_bytes([c[0], c[1]]))).collect(),
        Dtype::U32 => {
            bytes.chunks_exact(4).map(|c| i64::from(u32::from_le_bytes(c.try_into().unwrap()))).collect()
        }
        Dtype::I32 => {
            bytes.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap()))).collect()
        }
        Dtype::I64 => bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect(),
        Dtype::U64 => bytes
            .chunks_exact(8)
            .enumerate()
            .map(|(i, c)| i64::try_from(u64::from_le_bytes(c.try_into().unwrap())).map_err(|_| i))
            .collect::<std::result::Result<_, _>>()?,
        _ => unreachable!("decode_ints is called for integer dtypes"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_widens_exactly() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x7bff), 65504.0); // the largest f16
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24)); // the smallest subnormal
        assert_eq!(f16_to_f64(0x0400), 2f64.powi(-14)); // the smallest normal
        assert_eq!(f16_to_f64(0x3555), 0.333251953125);
        assert_eq!(f16_to_f64(0x7c00), f64::INFINITY);
        assert_eq!(f16_to_f64(0xfc00), f64::NEG_INFINITY);
        assert!(f16_to_f64(0x7e00).is_nan());
        assert_eq!(f16_to_f64(0x8000).to_bits(), (-0.0f64).to_bits());
        // bfloat16 is the top half of an f32.
        let bf = decode_floats_f64(Dtype::BF16, &[0x80, 0x3f, 0x49, 0x40]);
        assert_eq!(bf, [1.0, f64::from(f32::from_bits(0x4049_0000))]);
    }

    #[test]
    fn integers_widen_exactly_and_u64_above_i64_max_is_refused() {
        assert_eq!(decode_ints(Dtype::I8, &[0xff, 1]), Ok(vec![-1, 1]));
        assert_eq!(decode_ints(Dtype::U16, &[0xff, 0xff]), Ok(vec![65535]));
        assert_eq!(decode_ints(Dtype::I32, &(-7i32).to_le_bytes()), Ok(vec![-7]));
        let big = [1u64.to_le_bytes(), u64::MAX.to_le_bytes()].concat();
        assert_eq!(decode_ints(Dtype::U64, &big), Err(1));
    }
}
