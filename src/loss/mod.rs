//! Loss functions. Each returns the loss value and writes its gradient with respect to the
//! prediction, which is where backpropagation starts.
//!
//! | loss | PyTorch | targets |
//! |------|---------|---------|
//! | [`Mse`] | `nn.MSELoss` | [`Targets::Values`], same shape as the prediction |
//! | [`CrossEntropy`] | `nn.CrossEntropyLoss` (from logits) | [`Targets::Classes`], one per row |
//! | [`BceWithLogits`] | `nn.BCEWithLogitsLoss` | [`Targets::Values`] in `[0, 1]` |
//!
//! Every loss checks its input before computing anything: an empty batch, a target of the wrong
//! kind or shape, or a class index out of range is an error naming the loss, and so is a NaN or
//! infinity in the prediction (reported at its first row and column) or in the resulting loss.
//! [`check_loss`] compares a loss's gradient with central differences; [`accuracy`] scores
//! logits against class indices.

pub(crate) mod bce_with_logits;
pub(crate) mod cross_entropy;
mod gradcheck;
pub(crate) mod metrics;
pub(crate) mod mse;
mod validate;

pub use bce_with_logits::BceWithLogits;
pub use cross_entropy::CrossEntropy;
pub use gradcheck::check_loss;
pub use metrics::accuracy;
pub(crate) use metrics::count_correct;
pub use mse::Mse;
pub(crate) use validate::first_class_out_of_range;

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

impl Reduction {
    /// The factor applied to the sum of `count` terms: `1/count` for [`Reduction::Mean`], `1`
    /// for [`Reduction::Sum`].
    ///
    /// ```
    /// use gradflow::loss::Reduction;
    /// assert_eq!(Reduction::Mean.factor(4), 0.25);
    /// assert_eq!(Reduction::Sum.factor(4), 1.0);
    /// ```
    pub fn factor(self, count: usize) -> f64 {
        match self {
            Reduction::Mean => 1.0 / count as f64,
            Reduction::Sum => 1.0,
        }
    }
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
