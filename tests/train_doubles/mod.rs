//! TEST DOUBLES — minimal stand-ins for the crate's real loss and optimizer, which are written
//! on another branch. They exist only so that the training-loop tests can run; replace them
//! with `gradflow::loss::CrossEntropy`, `gradflow::loss::Mse` and `gradflow::optim::Sgd` once
//! those are merged. Formulas follow PyTorch (`nn.CrossEntropyLoss`, `nn.MSELoss`,
//! `optim.SGD` with momentum, dampening 0, no Nesterov, no weight decay), mean reduction.
#![allow(dead_code)]

use gradflow::loss::{Loss, Targets};
use gradflow::optim::Optimizer;
use gradflow::{Error, Float, Layer, Result};
use ndarray::{Array2, ArrayD, ArrayView2};
use std::sync::atomic::{AtomicUsize, Ordering};

/// TEST DOUBLE: softmax cross-entropy with mean reduction over the batch.
#[derive(Debug, Default)]
pub struct TestCrossEntropy;

impl<F: Float> Loss<F> for TestCrossEntropy {
    fn name(&self) -> &'static str {
        "test_cross_entropy"
    }

    fn compute(
        &self,
        prediction: ArrayView2<'_, F>,
        target: Targets<'_, F>,
        grad: &mut Array2<F>,
    ) -> Result<F> {
        let Targets::Classes(labels) = target else {
            return Err(Error::InvalidTarget {
                component: "TestCrossEntropy".into(),
                reason: "needs classes".into(),
            });
        };
        let (n, k) = prediction.dim();
        if labels.len() != n || labels.iter().any(|&l| l >= k) {
            return Err(Error::InvalidTarget {
                component: "TestCrossEntropy".into(),
                reason: "bad labels".into(),
            });
        }
        if grad.dim() != (n, k) {
            *grad = Array2::zeros((n, k));
        }
        let mut total = 0.0f64;
        for (i, row) in prediction.rows().into_iter().enumerate() {
            let max = row.iter().fold(f64::NEG_INFINITY, |m, v| m.max(v.as_f64()));
            let sum: f64 = row.iter().map(|v| (v.as_f64() - max).exp()).sum();
            let log_sum = max + sum.ln();
            total += log_sum - row[labels[i]].as_f64();
            for j in 0..k {
                let p = (row[j].as_f64() - log_sum).exp();
                let onehot = if j == labels[i] { 1.0 } else { 0.0 };
                grad[[i, j]] = F::lit((p - onehot) / n as f64);
            }
        }
        let value = total / n as f64;
        if !value.is_finite() {
            return Err(Error::NonFinite {
                location: "loss TestCrossEntropy".into(),
                detail: format!("{value}"),
            });
        }
        Ok(F::lit(value))
    }
}

/// TEST DOUBLE: mean squared error over all elements.
#[derive(Debug, Default)]
pub struct TestMse;

impl<F: Float> Loss<F> for TestMse {
    fn name(&self) -> &'static str {
        "test_mse"
    }

    fn compute(
        &self,
        prediction: ArrayView2<'_, F>,
        target: Targets<'_, F>,
        grad: &mut Array2<F>,
    ) -> Result<F> {
        let Targets::Values(target) = target else {
            return Err(Error::InvalidTarget { component: "TestMse".into(), reason: "needs values".into() });
        };
        let diff = &prediction - &target;
        let m = F::lit(prediction.len() as f64);
        *grad = diff.mapv(|d| F::lit(2.0) * d / m);
        Ok(diff.mapv(|d| d * d).sum() / m)
    }
}

/// TEST DOUBLE: returns NaN (as a value, not an error) from its `nan_at`-th call on (1-based),
/// and otherwise behaves as [`TestCrossEntropy`]; checks that the trainer itself stops.
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
        let value = TestCrossEntropy.compute(prediction, target, grad)?;
        Ok(if call >= self.nan_at { F::nan() } else { value })
    }
}

/// TEST DOUBLE: PyTorch's SGD with momentum (dampening 0): `b = μ b + g` (`b = g` on the first
/// step), `p -= lr · b`.
#[derive(Debug)]
pub struct TestSgd<F: Float> {
    pub lr: f64,
    pub momentum: f64,
    pub steps: usize,
    buffers: Vec<ArrayD<F>>,
}

impl<F: Float> TestSgd<F> {
    pub fn new(lr: f64, momentum: f64) -> Self {
        TestSgd { lr, momentum, steps: 0, buffers: Vec::new() }
    }
}

impl<F: Float> Optimizer<F> for TestSgd<F> {
    fn name(&self) -> &'static str {
        "test_sgd"
    }

    fn step(&mut self, model: &mut dyn Layer<F>) -> Result<()> {
        let mut finite = true;
        model.visit_parameters(&mut |p| finite &= p.grad.iter().all(|g| g.is_finite()));
        if !finite {
            return Err(Error::NonFinite { location: "TestSgd".into(), detail: "gradient".into() });
        }
        let first = self.buffers.is_empty();
        let (lr, momentum) = (F::lit(self.lr), F::lit(self.momentum));
        let mut i = 0;
        let buffers = &mut self.buffers;
        model.visit_parameters_mut(&mut |mut p| {
            if first {
                buffers.push(p.grad.to_owned());
            } else {
                let b = &mut buffers[i];
                b.zip_mut_with(&p.grad, |b, &g| *b = momentum * *b + g);
            }
            let b = &buffers[i];
            p.value.zip_mut_with(b, |v, &b| *v -= lr * b);
            i += 1;
        });
        self.steps += 1;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        self.lr = lr;
        Ok(())
    }
}

/// Every parameter value of `net`, in visiting order (for exact comparisons).
pub fn parameters<F: Float>(net: &gradflow::Network<F>) -> Vec<F> {
    let mut out = Vec::new();
    net.visit_parameters(&mut |p| out.extend(p.value.iter().copied()));
    out
}
