//! [`Mismatch`]: one way in which a saved state does not fit a model.

use std::fmt;

use crate::error::format_shape;

/// One difference between the tensors in a file and the parameters and buffers of the model
/// they are loaded into. Loading collects all of them before refusing, so a single error lists
/// everything that is wrong (see [`crate::io::load_safetensors`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// The model has this parameter or buffer, the file does not.
    Missing {
        /// The dotted name, e.g. `"2.bias"`.
        name: String,
        /// The shape the model expects.
        shape: Vec<usize>,
    },
    /// The file has a tensor the model does not.
    Unexpected {
        /// The tensor's name in the file.
        name: String,
        /// Its shape in the file.
        shape: Vec<usize>,
        /// Its dtype in the file, e.g. `"F32"`.
        dtype: String,
    },
    /// Both have the name, with different shapes.
    WrongShape {
        /// The dotted name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// Both have the name; the file's dtype cannot be loaded into the model (under the
    /// [`crate::io::LoadOptions`] in force).
    WrongDtype {
        /// The dotted name.
        name: String,
        /// What the model accepts, e.g. `"F32"` or `"F64 or F32"`.
        expected: String,
        /// The dtype in the file.
        found: String,
        /// Why it was refused, when there is more to say (e.g. how to allow narrowing).
        note: String,
    },
    /// The tensor holds NaN or infinite values, which gradflow never loads silently.
    NonFinite {
        /// The dotted name.
        name: String,
        /// How many entries are not finite.
        count: usize,
        /// The flat (row-major) index of the first one.
        first_index: usize,
    },
    /// Several names of the file become one name of the model under the key map
    /// ([`crate::io::LoadOptions::remap`]).
    SameName {
        /// The model's name they all become.
        name: String,
        /// The file's names, sorted.
        keys: Vec<String>,
    },
    /// A counter (such as `num_batches_tracked`) is negative.
    NegativeCount {
        /// The dotted name.
        name: String,
        /// The value in the file.
        value: i64,
    },
}

impl Mismatch {
    /// The dotted name the mismatch is about.
    pub fn name(&self) -> &str {
        match self {
            Mismatch::Missing { name, .. }
            | Mismatch::Unexpected { name, .. }
            | Mismatch::WrongShape { name, .. }
            | Mismatch::WrongDtype { name, .. }
            | Mismatch::NonFinite { name, .. }
            | Mismatch::SameName { name, .. }
            | Mismatch::NegativeCount { name, .. } => name,
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Missing { name, shape } => {
                write!(f, "missing `{name}` (the model expects shape {})", format_shape(shape))
            }
            Mismatch::Unexpected { name, shape, dtype } => write!(
                f,
                "unexpected `{name}` ({dtype}, shape {}): the model has no such parameter or buffer",
                format_shape(shape)
            ),
            Mismatch::WrongShape { name, expected, found } => write!(
                f,
                "wrong shape for `{name}`: the model expects {}, the file has {}",
                format_shape(expected),
                format_shape(found)
            ),
            Mismatch::WrongDtype { name, expected, found, note } => {
                write!(f, "wrong dtype for `{name}`: the model expects {expected}, the file has {found}")?;
                if !note.is_empty() {
                    write!(f, " ({note})")?;
                }
                Ok(())
            }
            Mismatch::NonFinite { name, count, first_index } => write!(
                f,
                "`{name}` has {count} non-finite value{} (the first at flat index {first_index})",
                if *count == 1 { "" } else { "s" }
            ),
            Mismatch::SameName { name, keys } => {
                let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
                write!(f, "the key map renames {} all to `{name}`", keys.join(" and "))
            }
            Mismatch::NegativeCount { name, value } => {
                write!(f, "`{name}` is a counter but the file holds {value}")
            }
        }
    }
}
