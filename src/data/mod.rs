//! Data sets held in memory.

use ndarray::Array2;

use crate::Float;
use crate::loss::Targets;

mod mnist;

pub use mnist::{
    IdxImages, MNIST_DIR_ENV, mnist, mnist_dir_from_env, mnist_split, read_idx_images, read_idx_labels,
};

/// Targets owned by a [`Dataset`].
#[derive(Debug, Clone, PartialEq)]
pub enum TargetData<F: Float> {
    /// One class index per sample.
    Classes(Vec<usize>),
    /// One target row per sample.
    Values(Array2<F>),
}

/// Inputs `(samples, features)` with their targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset<F: Float> {
    /// The inputs, one row per sample.
    pub inputs: Array2<F>,
    /// The targets, one per sample.
    pub targets: TargetData<F>,
}

impl<F: Float> Dataset<F> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inputs.nrows()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.inputs.nrows() == 0
    }

    /// The targets as a loss sees them.
    pub fn targets(&self) -> Targets<'_, F> {
        match &self.targets {
            TargetData::Classes(c) => Targets::Classes(c),
            TargetData::Values(v) => Targets::Values(v.view()),
        }
    }
}
