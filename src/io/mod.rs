//! Moving a model in and out of gradflow: its state as safetensors files with PyTorch's names,
//! and its architecture as a [`ModelSpec`] (JSON or any serde format).
//!
//! # Names, layouts and dtypes
//! A model's *state* is its parameters and buffers under the dotted names PyTorch's
//! `state_dict()` uses: the child's path, a dot, and the local name — `0.weight`, `0.bias` for
//! the first layer of a [`crate::Sequential`], `1.running_mean`, `1.running_var`,
//! `1.num_batches_tracked` for a BatchNorm at index 1, `weight_ih_l0` for a recurrent layer.
//! Layouts are PyTorch's too (`Linear.weight` is `(out, in)`), so nothing is transposed or
//! renamed on the way. Float tensors are stored as `F32` for an `f32` model and `F64` for an
//! `f64` model; counters (`num_batches_tracked`) as an `I64` scalar of shape `[]`, as
//! `safetensors.torch.save_file(model.state_dict(), path)` writes them.
//!
//! On loading, an `F32` tensor goes exactly into an `f64` model; an `F64` tensor goes into an
//! `f32` model only when [`LoadOptions::narrow_f64_to_f32`] allows the rounding. Any other
//! dtype is refused for a float tensor.
//!
//! # Nothing half-loaded
//! [`load_safetensors`] parses and checks the whole file against the model before writing a
//! single value. If anything does not fit — a missing or unexpected name, a wrong shape, a
//! refused dtype, a NaN — the error lists every [`Mismatch`] at once, names the file, and the
//! model is left exactly as it was.
//!
//! ```text
//! model.safetensors: does not fit Sequential(3 layers): 2 problems, nothing was loaded:
//!   - wrong shape for `2.weight`: the model expects (3, 5), the file has (2, 5)
//!   - unexpected `4.weight` (F64, shape (1, 2)): the model has no such parameter or buffer
//! ```
//!
//! # From and to PyTorch
//! ```python
//! from safetensors.torch import save_file, load_file
//! save_file(model.state_dict(), "model.safetensors")      # → gradflow::io::load_safetensors
//! model.load_state_dict(load_file("model.safetensors"))   # ← gradflow::io::save_safetensors
//! ```

mod file;
mod header_names;
mod mismatch;
pub(crate) mod safetensors;
mod spec;

pub(crate) use file::write_atomically;
pub use mismatch::Mismatch;
pub use safetensors::{
    LoadOptions, LoadReport, check_safetensors, load_safetensors, load_safetensors_bytes,
    load_safetensors_with, read_tensors, safetensors_bytes, save_safetensors,
};
pub use spec::{LayerSpec, ModelSpec};
