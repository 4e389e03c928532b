//! Shared helpers of the training-loop tests.
#![allow(dead_code)]

use gradflow::loss::{CrossEntropy, Loss, Reduction, Targets};
use gradflow::optim::{Sgd, SgdConfig};
use gradflow::{Float, Result};
use ndarray::{Array2, ArrayView2};
use std::sync::atomic::{AtomicUsize, Ordering};

/// PyTorch's SGD with momentum (dampening 0).
pub fn sgd<F: Float>(lr: f64, momentum: f64) -> Sgd<F> {
    SgdConfig::new(lr).momentum(momentum).build().unwrap()
}

/// Softmax cross-entropy, mean over the batch.
pub fn cross_entropy() -> CrossEntropy {
    CrossEntropy::new(Reduction::Mean)
}

/// A loss that returns NaN (as a value, not an error) from its `nan_at`-th call on (1-based),
/// and otherwise behaves as `CrossEntropy`; checks that the trainer itself stops.
#[derive(Debug)]
pub struct NanAfter {
    pub nan_at: usize,
    pub calls: AtomicUsize,
}

impl<F: Float> Loss<F> for NanAfter {
    fn name(&self) -> &'static str {
        "nan_after"
    }

    fn compute(
        &self,
        prediction: ArrayView2<'_, F>,
        target: Targets<'_, F>,
        grad: &mut Array2<F>,
    ) -> Result<F> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let value = CrossEntropy::new(Reduction::Mean).compute(prediction, target, grad)?;
        Ok(if call >= self.nan_at { F::nan() } else { value })
    }
}

/// Every parameter value of `net`, in visiting order (for exact comparisons).
pub fn parameters<F: Float>(net: &gradflow::Network<F>) -> Vec<F> {
    let mut out = Vec::new();
    net.visit_parameters(&mut |p| out.extend(p.value.iter().copied()));
    out
}
