//! Loss functions. Each returns the loss value and writes its gradient with respect to the
//! prediction, which is where backpropagation starts.

use ndarray::{Array2, ArrayView2};

use crate::{Float, Result};

/// What a prediction is compared with.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a, F: Float> {
    /// One class index per row (for [`CrossEntropy`]-style losses).
    Classes(&'a [usize]),
    /// One target row per prediction row, same shape as the prediction (MSE, BCE).
    Values(ArrayView2<'a, F>),
}

/// How per-element losses are combined, as PyTorch's `reduction` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Reduction {
    /// The mean (PyTorch's default).
    #[default]
    Mean,
    /// The sum.
    Sum,
}

/// A differentiable loss.
pub trait Loss<F: Float>: Send + Sync + std::fmt::Debug {
    /// The loss's name, e.g. `"cross_entropy"`.
    fn name(&self) -> &'static str;

    /// Returns the loss of `prediction` against `target` and writes dL/d(prediction) into `grad`
    /// (resized to the prediction's shape if needed).
    ///
    /// # Errors
    /// [`crate::Error::InvalidTarget`] when the target kind or shape does not fit,
    /// [`crate::Error::NonFinite`] when the loss is NaN or infinite.
    fn compute(
        &self,
        prediction: ArrayView2<'_, F>,
        target: Targets<'_, F>,
        grad: &mut Array2<F>,
    ) -> Result<F>;

    /// The loss and its gradient, as owned values.
    fn value_and_grad(
        &self,
        prediction: ArrayView2<'_, F>,
        target: Targets<'_, F>,
    ) -> Result<(F, Array2<F>)> {
        let mut grad = Array2::zeros(prediction.dim());
        let value = self.compute(prediction, target, &mut grad)?;
        Ok((value, grad))
    }
}
