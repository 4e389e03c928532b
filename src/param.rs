//! Trainable parameters: a value and the gradient accumulated for it.

use ndarray::{Array, ArrayViewD, ArrayViewMutD, Dimension};

use crate::Float;

/// A trainable tensor together with its gradient buffer (same shape).
///
/// Layers own their parameters as `Param`s and hand them to visitors as [`ParamView`] /
/// [`ParamViewMut`] under PyTorch's names (`"weight"`, `"bias"`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Param<F: Float, D: Dimension> {
    /// The current value.
    pub value: Array<F, D>,
    /// The gradient accumulated by `backward` since the last `zero_grad`.
    pub grad: Array<F, D>,
}

impl<F: Float, D: Dimension> Param<F, D> {
    /// Wraps a value, with a zero gradient of the same shape.
    pub fn new(value: Array<F, D>) -> Self {
        let grad = Array::zeros(value.raw_dim());
        Param { value, grad }
    }

    /// Wraps a value, with a zero gradient of the same shape allocated fallibly: an allocation
    /// the system refuses is an [`crate::Error::InvalidConfig`] naming `component` and `field`.
    pub(crate) fn try_new(value: Array<F, D>, component: &str, field: &'static str) -> crate::Result<Self> {
        let grad = crate::alloc::try_zeros(component, field, value.raw_dim())?;
        Ok(Param { value, grad })
    }

    /// A read-only view under `name`.
    pub fn view<'a>(&'a self, name: &'static str) -> ParamView<'a, F> {
        ParamView { name, value: self.value.view().into_dyn(), grad: self.grad.view().into_dyn() }
    }

    /// A mutable view under `name`.
    pub fn view_mut<'a>(&'a mut self, name: &'static str) -> ParamViewMut<'a, F> {
        ParamViewMut { name, value: self.value.view_mut().into_dyn(), grad: self.grad.view_mut().into_dyn() }
    }

    /// Number of scalar entries.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// True when the parameter has no entries.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

/// A parameter as seen by a read-only visitor.
#[derive(Debug)]
pub struct ParamView<'a, F: Float> {
    /// The parameter's local name within its layer, as in PyTorch (`"weight"`, `"bias"`).
    pub name: &'static str,
    /// The value.
    pub value: ArrayViewD<'a, F>,
    /// The accumulated gradient.
    pub grad: ArrayViewD<'a, F>,
}

/// A parameter as seen by a mutating visitor (optimizers, clipping, loaders).
#[derive(Debug)]
pub struct ParamViewMut<'a, F: Float> {
    /// The parameter's local name within its layer, as in PyTorch (`"weight"`, `"bias"`).
    pub name: &'static str,
    /// The value.
    pub value: ArrayViewMutD<'a, F>,
    /// The accumulated gradient.
    pub grad: ArrayViewMutD<'a, F>,
}

/// A non-trainable buffer saved with a model (PyTorch's `register_buffer`), e.g. BatchNorm's
/// running statistics.
#[derive(Debug)]
pub enum BufferView<'a, F: Float> {
    /// A floating-point tensor such as `running_mean`.
    Tensor {
        /// The buffer's local name, as in PyTorch.
        name: &'static str,
        /// Its value.
        value: ArrayViewD<'a, F>,
    },
    /// A counter such as `num_batches_tracked` (an `int64` tensor of shape `()` in PyTorch).
    Count {
        /// The buffer's local name, as in PyTorch.
        name: &'static str,
        /// Its value.
        value: u64,
    },
}

/// A buffer as seen by a mutating visitor (loaders).
#[derive(Debug)]
pub enum BufferViewMut<'a, F: Float> {
    /// A floating-point tensor such as `running_mean`.
    Tensor {
        /// The buffer's local name, as in PyTorch.
        name: &'static str,
        /// Its value.
        value: ArrayViewMutD<'a, F>,
    },
    /// A counter such as `num_batches_tracked`.
    Count {
        /// The buffer's local name, as in PyTorch.
        name: &'static str,
        /// Its value.
        value: &'a mut u64,
    },
}

impl<F: Float> BufferView<'_, F> {
    /// The buffer's local name.
    pub fn name(&self) -> &'static str {
        match self {
            BufferView::Tensor { name, .. } | BufferView::Count { name, .. } => name,
        }
    }
}

impl<F: Float> BufferViewMut<'_, F> {
    /// The buffer's local name.
    pub fn name(&self) -> &'static str {
        match self {
            BufferViewMut::Tensor { name, .. } | BufferViewMut::Count { name, .. } => name,
        }
    }
}
