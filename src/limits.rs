//! The size limits gradflow enforces, in one place.
//!
//! Every public constructor, builder, loader and data generator computes the sizes it is asked
//! for with checked arithmetic and refuses, *before allocating anything*, a size that cannot be
//! represented or exceeds one of these limits, with an [`Error`](crate::Error) naming the layer,
//! field or file and the size asked for. Allocations that pass the check are made fallibly
//! (`Vec::try_reserve_exact`): if the system cannot provide the memory, the result is an
//! [`Error::InvalidConfig`](crate::Error::InvalidConfig) (or [`Error::Data`](crate::Error::Data)
//! for a file) naming what was being allocated and how many bytes, not an abort of the process.
//!
//! On systems that overcommit memory (Linux by default) an allocation the kernel accepts may
//! still be refused later, when the memory is first written: no library can turn that into an
//! error. The limits below keep a single request within what one machine can hold.
//!
//! ```
//! use gradflow::{Linear, limits};
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! // 10⁶ × 10⁶ weights are 10¹² entries, over the per-tensor limit: refused before allocating.
//! let err = Linear::<f32>::new(1_000_000, 1_000_000, &mut rng).unwrap_err();
//! assert!(err.to_string().contains("entries"), "{err}");
//! assert_eq!(limits::MAX_TENSOR_ELEMENTS, 1 << 31);
//! ```

/// The largest number of entries in one tensor gradflow allocates: a parameter, a buffer, a data
/// set's array, a histogram. 2³¹ entries (8 GiB in `f32`, 16 GiB in `f64`); PyTorch's own
/// kernels index with 32-bit integers up to this size.
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 31;

/// The largest number of layers a builder adds (a [`SequentialBuilder`](crate::SequentialBuilder)'s
/// `repeat` counts, a model spec's `repeat`, a [`CifarResNet`](crate::layers::CifarResNet)'s
/// depth): 2²⁰.
pub const MAX_LAYERS: usize = 1 << 20;

/// The largest number of parameters (entries over all parameter tensors) a
/// [`SequentialBuilder`](crate::SequentialBuilder) builds into one model: 2³⁴ (64 GiB in `f32`).
pub const MAX_MODEL_PARAMETERS: usize = 1 << 34;

/// The largest number of classes a data set or a classification loss accepts, so that a label
/// read from a file (e.g. `u64::MAX`) cannot ask for a table of that size: 2²⁴. Labels are
/// `0 ..= MAX_CLASSES - 1`.
pub const MAX_CLASSES: usize = 1 << 24;

/// The largest number of buckets of a histogram ([`crate::export::Histogram`]): 2²⁰.
pub const MAX_HISTOGRAM_BUCKETS: usize = 1 << 20;
