//! [`BatchNorm`], [`BatchNorm1d`] and [`BatchNorm2d`]: normalization with batch statistics in
//! training and running statistics in evaluation, exactly as PyTorch's `nn.BatchNorm1d` and
//! `nn.BatchNorm2d`. Both share their state and passes ([`core`]): a `BatchNorm2d` over `C`
//! channels of `H×W` images is a `BatchNorm1d` over `C` features whose statistics run over
//! `N·H·W` entries instead of `N`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1};

use crate::hooks::Context;
use crate::layer::{Layer, Mode, check_input_features};
use crate::param::{BufferView, BufferViewMut, ParamView, ParamViewMut};
use crate::{Float, Result};

mod batch_norm_2d;
mod core;

pub use batch_norm_2d::BatchNorm2d;
use core::Core;
pub(crate) use core::{
    batch_norm_grad_sums, batch_norm_input_grad, batch_norm_moments, batch_norm_normalize,
};

/// A batch-normalization layer: its running statistics, its settings, and its buffers.
///
/// Implemented by [`BatchNorm1d`] and [`BatchNorm2d`]. The running statistics are what [`Mode::Eval`] normalizes
/// with; they are *buffers* (saved with the model, never trained), visited by
/// [`Layer::visit_buffers`] under PyTorch's names
/// `"running_mean"`, `"running_var"` and `"num_batches_tracked"`.
pub trait BatchNorm<F: Float>: Layer<F> {
    /// The number of features (channels) `C` normalized independently.
    fn num_features(&self) -> usize;

    /// The running mean of each feature, `(C)`; starts at 0.
    fn running_mean(&self) -> ArrayView1<'_, F>;

    /// The running (unbiased) variance of each feature, `(C)`; starts at 1.
    fn running_var(&self) -> ArrayView1<'_, F>;

    /// The number of training batches seen since the last reset.
    fn num_batches_tracked(&self) -> u64;

    /// Sets the running mean to 0, the running variance to 1 and the batch counter to 0
    /// (PyTorch's `reset_running_stats`). The affine parameters are left as they are.
    fn reset_running_stats(&mut self);

    /// The weight of the new batch statistic in the running average, or `None` for a
    /// cumulative (equal-weight) average over all batches seen.
    fn momentum(&self) -> Option<f64>;

    /// The constant added to the variance before the square root.
    fn eps(&self) -> f64;
}

/// How to build a [`BatchNorm1d`]. Defaults are PyTorch's: `eps = 1e-5`, `momentum = 0.1`,
/// `affine = true`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// Number of features `C` (PyTorch's `num_features`).
    pub num_features: usize,
    /// Added to the variance before the square root (default 1e-5, PyTorch's default).
    pub eps: f64,
    /// Weight of the new batch statistic in the running average (default `Some(0.1)`, PyTorch's
    /// default); `None` gives the cumulative average `1/num_batches_tracked`, as PyTorch's
    /// `momentum=None`.
    pub momentum: Option<f64>,
    /// Whether the layer has the learnable per-feature scale `weight` (γ, init 1) and shift
    /// `bias` (β, init 0) (default `true`).
    pub affine: bool,
}

impl BatchNormConfig {
    /// PyTorch's defaults for `nn.BatchNorm1d(num_features)`.
    pub fn new(num_features: usize) -> Self {
        BatchNormConfig { num_features, eps: 1e-5, momentum: Some(0.1), affine: true }
    }

    /// Sets `eps`.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the momentum (`None`: cumulative average).
    pub fn momentum(mut self, momentum: Option<f64>) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets whether there are learnable `weight` and `bias`.
    pub fn affine(mut self, affine: bool) -> Self {
        self.affine = affine;
        self
    }

    /// The settings that differ from PyTorch's defaults, as a description lists them after the
    /// channel count: `", eps=…, momentum=…"`.
    fn describe_settings(&self) -> String {
        let mut s = String::new();
        if self.eps != 1e-5 {
            s += &format!(", eps={:e}", self.eps);
        }
        match self.momentum {
            Some(0.1) => {}
            Some(m) => s += &format!(", momentum={m}"),
            None => s += ", momentum=None",
        }
        if !self.affine {
            s += ", affine=false";
        }
        s
    }

    /// Builds the layer.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the field when `num_features` is 0, `eps` is not a
    /// positive finite number, or `momentum` is outside `[0, 1]`.
    pub fn build<F: Float>(&self) -> Result<BatchNorm1d<F>> {
        Ok(BatchNorm1d { core: Core::new(self, "BatchNorm1d", "feature")? })
    }

    /// Builds a [`BatchNorm2d`] over `num_features` channels of images of `(height, width)`.
    ///
    /// # Errors
    /// As [`BatchNormConfig::build`], and [`crate::Error::InvalidConfig`] when the image size is 0.
    pub fn build_2d<F: Float>(&self, image_size: (usize, usize)) -> Result<BatchNorm2d<F>> {
        BatchNorm2d::with_config(self, image_size)
    }
}

/// Batch normalization over the batch axis of a `(batch, C)` input (Ioffe & Szegedy 2015),
/// with PyTorch's `nn.BatchNorm1d` definitions, names and defaults.
///
/// For each feature `c`:
/// `y = γ · (x − μ) / √(σ² + ε) + β`, where in [`Mode::Train`] μ and σ² are the mean and the
/// *biased* variance (divided by `N`) of the batch, and in [`Mode::Eval`] they are the running
/// statistics. Each training pass updates
/// `running_mean ← (1 − m)·running_mean + m·μ` and
/// `running_var ← (1 − m)·running_var + m·σ²·N/(N − 1)` (the *unbiased* variance), with
/// momentum `m = 0.1` weighting the new statistic (or `m = 1/num_batches_tracked` when the
/// momentum is `None`).
///
/// Parameters: `weight` (γ, init 1) and `bias` (β, init 0), both `(C)`, when `affine`.
/// Buffers: `running_mean` (init 0), `running_var` (init 1), `num_batches_tracked`.
///
/// Normalizing keeps each layer's pre-activations near zero mean and unit variance whatever the
/// scale of the weights below, so saturating activations stay in their steep region and the
/// gradient is not shrunk by the layers' scale.
///
/// # Shapes
/// input `(batch, C)` → output `(batch, C)`; [`Mode::Train`] needs `batch ≥ 2`.
///
/// # Gradients
/// With x̂ the normalized input and `istd = 1/√(σ² + ε)`: `dγ += Σ dy·x̂`, `dβ += Σ dy`, and in
/// training `dx = (1/N)·γ·istd·(N·dy − Σdy − x̂·Σ(dy·x̂))` (sums over the batch); in evaluation
/// the layer is a fixed per-feature affine map and `dx = γ·istd·dy`.
///
/// # Edge cases
/// - A batch of one in [`Mode::Train`] is refused with [`crate::Error::ShapeMismatch`] (PyTorch raises
///   "Expected more than 1 value per channel when training"): its variance is zero and its
///   normalized value meaningless. [`Mode::Eval`] accepts any batch.
/// - A feature that is constant over the batch has σ² = 0: x̂ ≈ 0 (exactly 0 up to the rounding
///   of the mean), so the output is β; `eps` keeps `istd = 1/√ε` finite, and so the gradient.
///
/// ```
/// use gradflow::{BatchNorm, BatchNorm1d, Layer, Mode, hooks::Context};
/// use ndarray::{array, Array2};
///
/// let mut bn = BatchNorm1d::<f64>::new(2).unwrap();
/// let mut y = Array2::zeros((0, 0));
/// let x = array![[1.0, 2.0], [3.0, 2.0], [5.0, 8.0]];
/// bn.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
/// // Feature 0: mean 3, unbiased variance 4, so the running statistics moved by 0.1 of the way.
/// assert!((bn.running_mean()[0] - 0.3).abs() < 1e-12);
/// assert!((bn.running_var()[0] - (0.9 + 0.1 * 4.0)).abs() < 1e-12);
/// assert_eq!(bn.num_batches_tracked(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct BatchNorm1d<F: Float> {
    core: Core<F>,
}

impl<F: Float> BatchNorm1d<F> {
    /// `nn.BatchNorm1d(num_features)` with PyTorch's defaults.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when `num_features` is 0.
    pub fn new(num_features: usize) -> Result<Self> {
        BatchNormConfig::new(num_features).build()
    }
}

/// The accessors and the [`BatchNorm`] implementation both batch-normalization layers share
/// (through their `core`).
macro_rules! batch_norm_common {
    ($layer:ident) => {
        impl<F: Float> $layer<F> {
            /// The configuration the layer was built with.
            pub fn config(&self) -> &BatchNormConfig {
                &self.core.config
            }

            /// γ, `(C)`, if the layer is affine.
            pub fn weight(&self) -> Option<&Array1<F>> {
                self.core.affine.as_ref().map(|a| &a.weight.value)
            }

            /// γ, as a mutable view (its length cannot change).
            pub fn weight_mut(&mut self) -> Option<ArrayViewMut1<'_, F>> {
                self.core.affine.as_mut().map(|a| a.weight.value.view_mut())
            }

            /// β, `(C)`, if the layer is affine.
            pub fn bias(&self) -> Option<&Array1<F>> {
                self.core.affine.as_ref().map(|a| &a.bias.value)
            }

            /// β, as a mutable view (its length cannot change).
            pub fn bias_mut(&mut self) -> Option<ArrayViewMut1<'_, F>> {
                self.core.affine.as_mut().map(|a| a.bias.value.view_mut())
            }

            /// The accumulated gradient of γ, if the layer is affine.
            pub fn weight_grad(&self) -> Option<&Array1<F>> {
                self.core.affine.as_ref().map(|a| &a.weight.grad)
            }

            /// The accumulated gradient of β, if the layer is affine.
            pub fn bias_grad(&self) -> Option<&Array1<F>> {
                self.core.affine.as_ref().map(|a| &a.bias.grad)
            }
        }

        impl<F: Float> BatchNorm<F> for $layer<F> {
            fn num_features(&self) -> usize {
                self.core.config.num_features
            }

            fn running_mean(&self) -> ArrayView1<'_, F> {
                self.core.running_mean.view()
            }

            fn running_var(&self) -> ArrayView1<'_, F> {
                self.core.running_var.view()
            }

            fn num_batches_tracked(&self) -> u64 {
                self.core.num_batches_tracked
            }

            fn reset_running_stats(&mut self) {
                self.core.reset_running_stats();
            }

            fn momentum(&self) -> Option<f64> {
                self.core.config.momentum
            }

            fn eps(&self) -> f64 {
                self.core.config.eps
            }
        }
    };
}

batch_norm_common!(BatchNorm1d);

/// `"BatchNorm1d(C, …)"`, with the settings that differ from PyTorch's defaults.
fn describe_1d(config: &BatchNormConfig) -> String {
    format!("BatchNorm1d({}{})", config.num_features, config.describe_settings())
}
batch_norm_common!(BatchNorm2d);

impl<F: Float> Layer<F> for BatchNorm1d<F> {
    /// Buffers in the order `running_mean`, `running_var`, `num_batches_tracked` (PyTorch's).
    fn visit_buffers<'a>(&'a self, visitor: &mut dyn FnMut(BufferView<'a, F>)) {
        self.core.visit_buffers(visitor);
    }

    fn visit_buffers_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(BufferViewMut<'a, F>)) {
        self.core.visit_buffers_mut(visitor);
    }

    fn kind(&self) -> &'static str {
        "BatchNorm1d"
    }

    fn describe(&self) -> String {
        describe_1d(&self.core.config)
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        check_input_features(&|| self.describe(), self.core.config.num_features, input_features)?;
        Ok(input_features)
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let config = self.core.config;
        self.core.forward(&|| describe_1d(&config), input, output, mode, 1)
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        _output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let config = self.core.config;
        self.core.backward(&|| describe_1d(&config), input, grad_output, grad_input, 1)
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        self.core.visit_parameters(visitor);
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        self.core.visit_parameters_mut(visitor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use ndarray::array;

    fn run(bn: &mut BatchNorm1d<f64>, x: &Array2<f64>, mode: Mode) -> Result<Array2<f64>> {
        let mut y = Array2::zeros((0, 0));
        bn.forward(x.view(), &mut y, mode, &mut Context::new())?;
        Ok(y)
    }

    /// Feature 0: 1, 3, 5 (mean 3, biased var 8/3, unbiased var 4).
    /// Feature 1: 2, 2, 8 (mean 4, biased var 8, unbiased var 12).
    fn hand_batch() -> Array2<f64> {
        array![[1.0, 2.0], [3.0, 2.0], [5.0, 8.0]]
    }

    #[test]
    fn train_forward_normalizes_with_the_biased_batch_variance() {
        let mut bn = BatchNorm1d::<f64>::new(2).unwrap();
        bn.weight_mut().unwrap().assign(&array![2.0, 0.5]);
        bn.bias_mut().unwrap().assign(&array![1.0, -1.0]);
        let y = run(&mut bn, &hand_batch(), Mode::Train).unwrap();
        let s0 = (8.0f64 / 3.0 + 1e-5).sqrt();
        let s1 = (8.0f64 + 1e-5).sqrt();
        let expected = array![
            [2.0 * -2.0 / s0 + 1.0, 0.5 * -2.0 / s1 - 1.0],
            [2.0 * 0.0 / s0 + 1.0, 0.5 * -2.0 / s1 - 1.0],
            [2.0 * 2.0 / s0 + 1.0, 0.5 * 4.0 / s1 - 1.0],
        ];
        for (a, b) in y.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-12, "{y} vs {expected}");
        }
    }

    #[test]
    fn running_statistics_use_momentum_and_the_unbiased_variance() {
        let mut bn = BatchNorm1d::<f64>::new(2).unwrap();
        run(&mut bn, &hand_batch(), Mode::Train).unwrap();
        // running = 0.9·initial + 0.1·batch statistic; initial mean 0, initial var 1.
        let close =
            |a: ArrayView1<f64>, b: [f64; 2]| (a[0] - b[0]).abs() < 1e-12 && (a[1] - b[1]).abs() < 1e-12;
        assert!(close(bn.running_mean(), [0.3, 0.4]), "{}", bn.running_mean());
        assert!(close(bn.running_var(), [0.9 + 0.4, 0.9 + 1.2]), "{}", bn.running_var());
        assert_eq!(bn.num_batches_tracked(), 1);
        run(&mut bn, &hand_batch(), Mode::Train).unwrap();
        assert!(close(bn.running_mean(), [0.9 * 0.3 + 0.3, 0.9 * 0.4 + 0.4]));
        assert!(close(bn.running_var(), [0.9 * 1.3 + 0.4, 0.9 * 2.1 + 1.2]));
        assert_eq!(bn.num_batches_tracked(), 2);
        // Evaluation does not touch the statistics.
        run(&mut bn, &hand_batch(), Mode::Eval).unwrap();
        assert_eq!(bn.num_batches_tracked(), 2);
    }

    #[test]
    fn momentum_none_is_the_cumulative_average() {
        let mut bn = BatchNormConfig::new(2).momentum(None).build::<f64>().unwrap();
        run(&mut bn, &hand_batch(), Mode::Train).unwrap();
        // First batch: factor 1/1, the running statistics are the batch's.
        assert!((bn.running_mean()[0] - 3.0).abs() < 1e-12 && (bn.running_var()[1] - 12.0).abs() < 1e-12);
        run(&mut bn, &(hand_batch() + 10.0), Mode::Train).unwrap();
        // Second: factor 1/2, the mean of the two batch means (3 and 13); variances are equal.
        assert!((bn.running_mean()[0] - 8.0).abs() < 1e-12, "{}", bn.running_mean());
        assert!((bn.running_var()[0] - 4.0).abs() < 1e-12, "{}", bn.running_var());
    }

    #[test]
    fn eval_normalizes_with_the_running_statistics() {
        let mut bn = BatchNorm1d::<f64>::new(2).unwrap();
        run(&mut bn, &hand_batch(), Mode::Train).unwrap();
        bn.weight_mut().unwrap().assign(&array![2.0, 0.5]);
        bn.bias_mut().unwrap().assign(&array![1.0, -1.0]);
        // Running mean (0.3, 0.4), running var (1.3, 2.1); a single sample is fine in Eval.
        let y = run(&mut bn, &array![[1.0, 2.0]], Mode::Eval).unwrap();
        let expected = [2.0 * 0.7 / (1.3f64 + 1e-5).sqrt() + 1.0, 0.5 * 1.6 / (2.1f64 + 1e-5).sqrt() - 1.0];
        assert!((y[[0, 0]] - expected[0]).abs() < 1e-12 && (y[[0, 1]] - expected[1]).abs() < 1e-12, "{y}");
    }

    #[test]
    fn reset_restores_the_initial_statistics() {
        let mut bn = BatchNorm1d::<f32>::new(2).unwrap();
        let x = array![[1.0f32, 2.0], [3.0, 2.0], [5.0, 8.0]];
        let mut y = Array2::zeros((0, 0));
        bn.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        assert_ne!(bn.running_mean(), array![0.0f32, 0.0]);
        bn.reset_running_stats();
        assert_eq!(bn.running_mean(), array![0.0f32, 0.0]);
        assert_eq!(bn.running_var(), array![1.0f32, 1.0]);
        assert_eq!(bn.num_batches_tracked(), 0);
    }

    #[test]
    fn buffers_are_visited_under_pytorch_names() {
        let mut bn = BatchNorm1d::<f64>::new(3).unwrap();
        let mut names = Vec::new();
        bn.visit_buffers(&mut |b| names.push(b.name()));
        assert_eq!(names, ["running_mean", "running_var", "num_batches_tracked"]);
        bn.visit_buffers_mut(&mut |b| match b {
            BufferViewMut::Tensor { name: "running_mean", mut value } => value.fill(2.0),
            BufferViewMut::Count { value, .. } => *value = 7,
            _ => {}
        });
        assert_eq!(bn.running_mean(), array![2.0, 2.0, 2.0]);
        assert_eq!(bn.num_batches_tracked(), 7);
    }

    #[test]
    fn gradients_pass_finite_difference_check_in_train_mode() {
        for affine in [true, false] {
            let mut bn = BatchNormConfig::new(3).affine(affine).build::<f64>().unwrap();
            if affine {
                bn.weight_mut().unwrap().assign(&array![1.5, -0.7, 0.3]);
                bn.bias_mut().unwrap().assign(&array![0.2, 0.0, -1.0]);
            }
            let x =
                Array2::from_shape_fn((5, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 5.0 - 1.0 + j as f64);
            let report = check_layer(&mut bn, &x, GradCheckConfig::default()).unwrap();
            assert_eq!(report.tensors.len(), if affine { 3 } else { 1 });
            report.within(1e-6).unwrap();
        }
    }

    #[test]
    fn gradients_pass_finite_difference_check_in_eval_mode() {
        let mut bn = BatchNorm1d::<f64>::new(3).unwrap();
        let x = Array2::from_shape_fn((4, 3), |(i, j)| (i as f64 - 1.5) * (j as f64 + 1.0) + 0.1 * j as f64);
        run(&mut bn, &x, Mode::Train).unwrap();
        bn.weight_mut().unwrap().assign(&array![0.5, 2.0, -1.0]);
        let config = GradCheckConfig { mode: Mode::Eval, ..GradCheckConfig::default() };
        let report = check_layer(&mut bn, &x, config).unwrap();
        assert_eq!(report.tensors.len(), 3);
        report.within(1e-6).unwrap();
    }

    #[test]
    fn a_batch_of_one_in_train_mode_is_a_clear_error() {
        let mut bn = BatchNorm1d::<f64>::new(4).unwrap();
        let err = run(&mut bn, &Array2::ones((1, 4)), Mode::Train).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::ShapeMismatch { .. }), "{msg}");
        assert!(
            msg.contains("BatchNorm1d(4)") && msg.contains("more than 1 value") && msg.contains("(1, 4)"),
            "{msg}"
        );
        assert_eq!(bn.num_batches_tracked(), 0, "a refused batch must not update the statistics");
        // The same sample is fine in evaluation.
        assert!(run(&mut bn, &Array2::ones((1, 4)), Mode::Eval).is_ok());
    }

    #[test]
    fn a_constant_feature_gives_finite_output_and_gradients() {
        let mut bn = BatchNorm1d::<f64>::new(2).unwrap();
        bn.bias_mut().unwrap().assign(&array![0.0, 0.25]);
        let x = array![[1.0, 0.1], [2.0, 0.1], [4.0, 0.1]];
        let y = run(&mut bn, &x, Mode::Train).unwrap();
        assert!(y.iter().all(|v| v.is_finite()));
        // x̂ is (nearly) 0, so the output is β.
        assert!(y.column(1).iter().all(|&v| (v - 0.25).abs() < 1e-9), "{y}");
        let mut dx = Array2::zeros((0, 0));
        let dy = array![[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]];
        bn.backward(x.view(), y.view(), dy.view(), Some(&mut dx), &mut Context::new()).unwrap();
        assert!(dx.iter().all(|v| v.is_finite()), "{dx}");
        assert!(bn.weight_grad().unwrap().iter().all(|v| v.is_finite()));
        // In f32 as well.
        let mut bn = BatchNorm1d::<f32>::new(1).unwrap();
        let mut y = Array2::zeros((0, 0));
        bn.forward(Array2::from_elem((8, 1), 3.3f32).view(), &mut y, Mode::Train, &mut Context::new())
            .unwrap();
        assert!(y.iter().all(|v| v.is_finite() && v.abs() < 1e-3), "{y}");
    }

    #[test]
    fn without_affine_there_are_no_parameters() {
        let bn = BatchNormConfig::new(5).affine(false).build::<f32>().unwrap();
        assert_eq!(bn.num_parameters(), 0);
        assert!(bn.weight().is_none());
        let mut count = 0;
        bn.visit_parameters(&mut |_| count += 1);
        assert_eq!(count, 0);
        let affine = BatchNorm1d::<f32>::new(5).unwrap();
        let mut names = Vec::new();
        affine.visit_parameters(&mut |p| names.push(p.name));
        assert_eq!(names, ["weight", "bias"]);
    }

    #[test]
    fn invalid_configuration_names_the_field() {
        let err = BatchNormConfig::new(0).build::<f32>().unwrap_err();
        assert!(err.to_string().contains("num_features"), "{err}");
        let err = BatchNormConfig::new(3).eps(0.0).build::<f32>().unwrap_err();
        assert!(err.to_string().contains("eps"), "{err}");
        let err = BatchNormConfig::new(3).momentum(Some(1.5)).build::<f32>().unwrap_err();
        assert!(err.to_string().contains("momentum"), "{err}");
    }

    #[test]
    fn corrupt_running_variance_is_an_error_not_nan() {
        let mut bn = BatchNorm1d::<f64>::new(2).unwrap();
        bn.visit_buffers_mut(&mut |b| {
            if let BufferViewMut::Tensor { name: "running_var", mut value } = b {
                value[[1]] = -1.0;
            }
        });
        let err = run(&mut bn, &array![[1.0, 2.0]], Mode::Eval).unwrap_err();
        assert!(err.to_string().contains("feature 1"), "{err}");
    }

    #[test]
    fn wrong_width_and_backward_before_forward_are_errors() {
        let mut bn = BatchNorm1d::<f64>::new(3).unwrap();
        let err = run(&mut bn, &Array2::ones((4, 2)), Mode::Train).unwrap_err();
        assert!(err.to_string().contains("BatchNorm1d(3)") && err.to_string().contains("(4, 2)"), "{err}");
        let x = Array2::ones((4, 3));
        let err = bn.backward(x.view(), x.view(), x.view(), None, &mut Context::new()).unwrap_err();
        assert!(matches!(err, Error::BackwardBeforeForward { .. }));
    }
}
