//! Buffers: the non-trainable state of a layer (BatchNorm's running statistics), as visitors
//! see it for saving, loading and reporting.

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::Float;

/// A buffer as seen by a read-only visitor, under PyTorch's name (`"running_mean"`,
/// `"running_var"`, `"num_batches_tracked"`).
///
/// Buffers are state that is saved with a model but not trained: optimizers never see them.
#[derive(Debug)]
pub enum BufferView<'a, F: Float> {
    /// A floating-point tensor, such as `running_mean`.
    Tensor {
        /// The buffer's local name within its layer.
        name: &'static str,
        /// The values.
        value: ArrayViewD<'a, F>,
    },
    /// A counter, such as `num_batches_tracked` (a 0-d `int64` tensor in PyTorch).
    Count {
        /// The buffer's local name within its layer.
        name: &'static str,
        /// The count.
        value: u64,
    },
}

impl<F: Float> BufferView<'_, F> {
    /// The buffer's local name, e.g. `"running_var"`.
    pub fn name(&self) -> &'static str {
        match self {
            BufferView::Tensor { name, .. } | BufferView::Count { name, .. } => name,
        }
    }
}

/// A buffer as seen by a mutating visitor (loaders).
#[derive(Debug)]
pub enum BufferViewMut<'a, F: Float> {
    /// A floating-point tensor, such as `running_mean`.
    Tensor {
        /// The buffer's local name within its layer.
        name: &'static str,
        /// The values.
        value: ArrayViewMutD<'a, F>,
    },
    /// A counter, such as `num_batches_tracked`.
    Count {
        /// The buffer's local name within its layer.
        name: &'static str,
        /// The count.
        value: &'a mut u64,
    },
}

impl<F: Float> BufferViewMut<'_, F> {
    /// The buffer's local name, e.g. `"running_var"`.
    pub fn name(&self) -> &'static str {
        match self {
            BufferViewMut::Tensor { name, .. } | BufferViewMut::Count { name, .. } => name,
        }
    }
}
