//! [`BatchNorm`] and [`BatchNorm1d`]: normalization with batch statistics in training and
//! running statistics in evaluation, exactly as PyTorch's `nn.BatchNorm1d`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Ix1};

use crate::elementwise::{add_assign_array, contiguous};
use crate::hooks::Context;
use crate::layer::{Layer, Mode, check_input_features, check_shape, ensure_shape};
use crate::param::{BufferView, BufferViewMut, Param, ParamView, ParamViewMut};
use crate::vectorize::vectorized;
use crate::{Error, Float, Result};

/// A batch-normalization layer: its running statistics, its settings, and its buffers.
///
/// Implemented by [`BatchNorm1d`]. The running statistics are what [`Mode::Eval`] normalizes
/// with; they are *buffers* (saved with the model, never trained), visited by
/// [`Layer::visit_buffers`] under PyTorch's names
/// `"running_mean"`, `"running_var"` and `"num_batches_tracked"`.
pub trait BatchNorm<F: Float>: Layer<F> {
    /// The number of features `C` normalized independently.
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

    /// Builds the layer.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field when `num_features` is 0, `eps` is not a
    /// positive finite number, or `momentum` is outside `[0, 1]`.
    pub fn build<F: Float>(&self) -> Result<BatchNorm1d<F>> {
        let c = self.num_features;
        if c == 0 {
            return Err(Error::config("BatchNorm1d", "num_features", "must be at least 1, got 0"));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::config(
                "BatchNorm1d",
                "eps",
                format!("must be positive and finite (it keeps 1/sqrt(var + eps) finite), got {}", self.eps),
            ));
        }
        if let Some(m) = self.momentum
            && !(0.0..=1.0).contains(&m)
        {
            return Err(Error::config("BatchNorm1d", "momentum", format!("must be in [0, 1], got {m}")));
        }
        let affine = self
            .affine
            .then(|| Affine { weight: Param::new(Array1::ones(c)), bias: Param::new(Array1::zeros(c)) });
        Ok(BatchNorm1d {
            config: *self,
            affine,
            running_mean: Array1::zeros(c),
            running_var: Array1::ones(c),
            num_batches_tracked: 0,
            mean: Array1::zeros(c),
            inv_std: Array1::zeros(c),
            x_hat: Array2::zeros((0, 0)),
            sum_dy: Array1::zeros(c),
            sum_dy_x_hat: Array1::zeros(c),
            last_mode: None,
        })
    }
}

#[derive(Debug, Clone)]
struct Affine<F: Float> {
    weight: Param<F, Ix1>,
    bias: Param<F, Ix1>,
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
/// - A batch of one in [`Mode::Train`] is refused with [`Error::ShapeMismatch`] (PyTorch raises
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
    config: BatchNormConfig,
    affine: Option<Affine<F>>,
    running_mean: Array1<F>,
    running_var: Array1<F>,
    num_batches_tracked: u64,
    /// The mean used by the last forward pass (batch or running).
    mean: Array1<F>,
    /// 1/√(var + ε) used by the last forward pass.
    inv_std: Array1<F>,
    /// The normalized input of the last forward pass, `(batch, C)`.
    x_hat: Array2<F>,
    /// Backward scratch: Σ dy and Σ dy·x̂ per feature.
    sum_dy: Array1<F>,
    sum_dy_x_hat: Array1<F>,
    last_mode: Option<Mode>,
}

impl<F: Float> BatchNorm1d<F> {
    /// `nn.BatchNorm1d(num_features)` with PyTorch's defaults.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `num_features` is 0.
    pub fn new(num_features: usize) -> Result<Self> {
        BatchNormConfig::new(num_features).build()
    }

    /// The configuration the layer was built with.
    pub fn config(&self) -> &BatchNormConfig {
        &self.config
    }

    /// γ, `(C)`, if the layer is affine.
    pub fn weight(&self) -> Option<&Array1<F>> {
        self.affine.as_ref().map(|a| &a.weight.value)
    }

    /// γ, mutably.
    pub fn weight_mut(&mut self) -> Option<&mut Array1<F>> {
        self.affine.as_mut().map(|a| &mut a.weight.value)
    }

    /// β, `(C)`, if the layer is affine.
    pub fn bias(&self) -> Option<&Array1<F>> {
        self.affine.as_ref().map(|a| &a.bias.value)
    }

    /// β, mutably.
    pub fn bias_mut(&mut self) -> Option<&mut Array1<F>> {
        self.affine.as_mut().map(|a| &mut a.bias.value)
    }

    /// The accumulated gradient of γ, if the layer is affine.
    pub fn weight_grad(&self) -> Option<&Array1<F>> {
        self.affine.as_ref().map(|a| &a.weight.grad)
    }

    /// The accumulated gradient of β, if the layer is affine.
    pub fn bias_grad(&self) -> Option<&Array1<F>> {
        self.affine.as_ref().map(|a| &a.bias.grad)
    }

    /// Computes mean, biased variance (into `inv_std`, as scratch) of the batch and updates the
    /// running statistics; leaves `inv_std = 1/√(σ² + ε)`.
    fn batch_statistics(&mut self, x: &[F], batch: usize) {
        let c = self.config.num_features;
        let inv_n = F::one() / F::lit(batch as f64);
        let mean = self.mean.as_slice_mut().expect("buffers are standard layout");
        let var = self.inv_std.as_slice_mut().expect("buffers are standard layout");
        F::batch_norm_statistics(x, c, inv_n, mean, var);

        self.num_batches_tracked += 1;
        let factor = F::lit(self.config.momentum.unwrap_or(1.0 / self.num_batches_tracked as f64));
        let update = RunningUpdate {
            factor,
            keep: F::one() - factor,
            unbias: F::lit(batch as f64 / (batch as f64 - 1.0)),
            eps: F::lit(self.config.eps),
        };
        F::batch_norm_update_running(
            self.running_mean.as_slice_mut().expect("buffers are standard layout"),
            self.running_var.as_slice_mut().expect("buffers are standard layout"),
            self.mean.as_slice().expect("buffers are standard layout"),
            self.inv_std.as_slice_mut().expect("buffers are standard layout"),
            &update,
        );
    }

    /// Copies the running statistics into `mean` and `inv_std`, refusing corrupt ones (a negative
    /// or non-finite running variance would otherwise put NaN in the output).
    fn running_statistics(&mut self) -> Result<()> {
        let eps = F::lit(self.config.eps);
        let running_mean = self.running_mean.as_slice().expect("buffers are standard layout");
        let running_var = self.running_var.as_slice().expect("buffers are standard layout");
        if let Some(c) = F::batch_norm_first_invalid_running(running_mean, running_var, eps) {
            let (m, v) = (running_mean[c], running_var[c]);
            return Err(Error::NonFinite {
                location: format!("{} in Eval mode", self.describe()),
                detail: format!(
                    "running statistics of feature {c} are invalid (running_mean {m}, \
                     running_var {v}); call reset_running_stats or load valid ones"
                ),
            });
        }
        self.mean.as_slice_mut().expect("buffers are standard layout").copy_from_slice(running_mean);
        F::batch_norm_inv_std(
            running_var,
            eps,
            self.inv_std.as_slice_mut().expect("buffers are standard layout"),
        );
        Ok(())
    }
}

impl<F: Float> BatchNorm<F> for BatchNorm1d<F> {
    fn num_features(&self) -> usize {
        self.config.num_features
    }

    fn running_mean(&self) -> ArrayView1<'_, F> {
        self.running_mean.view()
    }

    fn running_var(&self) -> ArrayView1<'_, F> {
        self.running_var.view()
    }

    fn num_batches_tracked(&self) -> u64 {
        self.num_batches_tracked
    }

    fn reset_running_stats(&mut self) {
        self.running_mean.fill(F::zero());
        self.running_var.fill(F::one());
        self.num_batches_tracked = 0;
    }

    fn momentum(&self) -> Option<f64> {
        self.config.momentum
    }

    fn eps(&self) -> f64 {
        self.config.eps
    }
}

impl<F: Float> Layer<F> for BatchNorm1d<F> {
    /// Buffers in the order `running_mean`, `running_var`, `num_batches_tracked` (PyTorch's).
    fn visit_buffers<'a>(&'a self, visitor: &mut dyn FnMut(BufferView<'a, F>)) {
        visitor(BufferView::Tensor { name: "running_mean", value: self.running_mean.view().into_dyn() });
        visitor(BufferView::Tensor { name: "running_var", value: self.running_var.view().into_dyn() });
        visitor(BufferView::Count { name: "num_batches_tracked", value: self.num_batches_tracked });
    }

    fn visit_buffers_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(BufferViewMut<'a, F>)) {
        visitor(BufferViewMut::Tensor {
            name: "running_mean",
            value: self.running_mean.view_mut().into_dyn(),
        });
        visitor(BufferViewMut::Tensor { name: "running_var", value: self.running_var.view_mut().into_dyn() });
        visitor(BufferViewMut::Count { name: "num_batches_tracked", value: &mut self.num_batches_tracked });
    }

    fn kind(&self) -> &'static str {
        "BatchNorm1d"
    }

    fn describe(&self) -> String {
        let c = &self.config;
        let mut s = format!("BatchNorm1d({}", c.num_features);
        if c.eps != 1e-5 {
            s += &format!(", eps={:e}", c.eps);
        }
        match c.momentum {
            Some(0.1) => {}
            Some(m) => s += &format!(", momentum={m}"),
            None => s += ", momentum=None",
        }
        if !c.affine {
            s += ", affine=false";
        }
        s + ")"
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        check_input_features(&|| self.describe(), self.config.num_features, input_features)?;
        Ok(input_features)
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let c = self.config.num_features;
        self.last_mode = None;
        check_shape(&|| self.describe(), "input", &input, None, Some(c))?;
        let batch = input.nrows();
        if mode == Mode::Train && batch < 2 {
            return Err(Error::ShapeMismatch {
                layer: self.describe(),
                what: "input",
                expected: format!(
                    "(batch ≥ 2, {c}) in Train mode (expected more than 1 value per feature to \
                     compute batch statistics; use Mode::Eval for single samples)"
                ),
                actual: crate::error::format_shape(input.shape()),
            });
        }
        let x = input.as_standard_layout();
        let x = x.as_slice().expect("standard layout");
        match mode {
            Mode::Train => self.batch_statistics(x, batch),
            Mode::Eval => self.running_statistics()?,
        }
        ensure_shape(output, (batch, c));
        ensure_shape(&mut self.x_hat, (batch, c));
        let x_hat = self.x_hat.as_slice_mut().expect("buffers are standard layout");
        let y = output.as_slice_mut().expect("buffers are standard layout");
        let mean = self.mean.as_slice().expect("buffers are standard layout");
        let inv_std = self.inv_std.as_slice().expect("buffers are standard layout");
        let affine = self.affine.as_ref().map(|a| (contiguous(&a.weight.value), contiguous(&a.bias.value)));
        let affine = affine.as_ref().map(|(w, b)| (&**w, &**b));
        F::batch_norm_normalize(x, mean, inv_std, affine, x_hat, y);
        self.last_mode = Some(mode);
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        _output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let Some(mode) = self.last_mode else {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        };
        let (batch, c) = self.x_hat.dim();
        let name = || self.describe();
        check_shape(&name, "input", &input, Some(batch), Some(c))?;
        check_shape(&name, "grad_output", &grad_output, Some(batch), Some(c))?;
        let dy = grad_output.as_standard_layout();
        let dy = dy.as_slice().expect("standard layout");
        let x_hat = self.x_hat.as_slice().expect("buffers are standard layout");

        let sum_dy = self.sum_dy.as_slice_mut().expect("buffers are standard layout");
        let sum_dy_x_hat = self.sum_dy_x_hat.as_slice_mut().expect("buffers are standard layout");
        F::batch_norm_grad_sums(dy, x_hat, sum_dy, sum_dy_x_hat);
        if let Some(a) = &mut self.affine {
            add_assign_array(&mut a.weight.grad, &self.sum_dy_x_hat.view());
            add_assign_array(&mut a.bias.grad, &self.sum_dy.view());
        }

        let Some(grad_input) = grad_input else { return Ok(()) };
        ensure_shape(grad_input, (batch, c));
        let dx = grad_input.as_slice_mut().expect("buffers are standard layout");
        // Per feature: scale = γ·istd; in training also the batch means of dy and dy·x̂.
        let gamma = self.affine.as_ref().map(|a| contiguous(&a.weight.value));
        let stats = FeatureStats {
            inv_std: self.inv_std.as_slice().expect("buffers are standard layout"),
            sum_dy: self.sum_dy.as_slice().expect("buffers are standard layout"),
            sum_dy_x_hat: self.sum_dy_x_hat.as_slice().expect("buffers are standard layout"),
            inv_n: F::one() / F::lit(batch as f64),
            train: mode == Mode::Train,
        };
        F::batch_norm_input_grad(dy, x_hat, gamma.as_deref(), &stats, dx);
        Ok(())
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        if let Some(a) = &self.affine {
            visitor(a.weight.view("weight"));
            visitor(a.bias.view("bias"));
        }
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        if let Some(a) = &mut self.affine {
            visitor(a.weight.view_mut("weight"));
            visitor(a.bias.view_mut("bias"));
        }
    }
}

/// Per-feature quantities of a backward pass.
pub struct FeatureStats<'a, F> {
    inv_std: &'a [F],
    sum_dy: &'a [F],
    sum_dy_x_hat: &'a [F],
    inv_n: F,
    train: bool,
}

/// The factors of the running statistics' update, in the layer's type.
pub struct RunningUpdate<F> {
    /// The weight of the new value: the momentum, or 1/n for the cumulative average.
    factor: F,
    /// `1 − factor`.
    keep: F,
    /// `n/(n − 1)`, which makes the batch's variance unbiased.
    unbias: F,
    eps: F,
}

impl<F: Float> FeatureStats<'_, F> {
    /// One row of dL/dx: `γ·istd·(dy − mean(dy) − x̂·mean(dy·x̂))` in training, `γ·istd·dy` in
    /// evaluation.
    #[inline(always)]
    fn input_grad_row(&self, dx: &mut [F], dy: &[F], x_hat: &[F], gamma: impl Iterator<Item = F>) {
        let per_feature = gamma.zip(self.inv_std).zip(self.sum_dy).zip(self.sum_dy_x_hat);
        let inv_n = self.inv_n;
        for (((d, &g), &h), (((w, &s), &sd), &sdx)) in dx.iter_mut().zip(dy).zip(x_hat).zip(per_feature) {
            let scale = w * s;
            *d = if self.train { scale * (g - sd * inv_n - h * sdx * inv_n) } else { scale * g };
        }
    }
}

/// The batch mean and biased variance of every feature of `x`, `(batch, c)` row-major, with
/// `inv_n = 1/batch`: two passes, Σ(x − μ)² for the variance (stable when |μ| ≫ σ). A kernel
/// ([`crate::kernels`]).
pub(crate) fn statistics<F: Float>(x: &[F], c: usize, inv_n: F, mean: &mut [F], var: &mut [F]) {
    vectorized(
        #[inline(always)]
        || {
            mean.fill(F::zero());
            for row in x.chunks_exact(c) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += v;
                }
            }
            for m in mean.iter_mut() {
                *m *= inv_n;
            }
            // Two-pass variance: Σ(x − μ)², stable when |μ| ≫ σ.
            var.fill(F::zero());
            for row in x.chunks_exact(c) {
                for ((s, &v), &m) in var.iter_mut().zip(row).zip(&*mean) {
                    let d = v - m;
                    *s += d * d;
                }
            }
            for s in var.iter_mut() {
                *s *= inv_n;
            }
        },
    )
}

/// Moves the running statistics towards the batch's (`var` holds the batch's biased variance)
/// and turns `var` into `1/√(var + ε)`. A kernel ([`crate::kernels`]).
pub(crate) fn update_running<F: Float>(
    running_mean: &mut [F],
    running_var: &mut [F],
    mean: &[F],
    var: &mut [F],
    u: &RunningUpdate<F>,
) {
    let rows = running_mean.iter_mut().zip(running_var.iter_mut());
    for ((rm, rv), (&m, &v)) in rows.zip(mean.iter().zip(var.iter())) {
        *rm = u.keep * *rm + u.factor * m;
        *rv = u.keep * *rv + u.factor * v * u.unbias;
    }
    var.iter_mut().for_each(|v| *v = F::one() / (*v + u.eps).sqrt());
}

/// The first feature whose running statistics cannot normalize (a non-finite mean or variance,
/// or `var + ε ≤ 0`). A kernel ([`crate::kernels`]).
pub(crate) fn first_invalid_running<F: Float>(
    running_mean: &[F],
    running_var: &[F],
    eps: F,
) -> Option<usize> {
    running_mean
        .iter()
        .zip(running_var)
        .position(|(&m, &v)| !(m.is_finite() && v.is_finite() && v + eps > F::zero()))
}

/// `inv_std = 1/√(var + ε)`. A kernel ([`crate::kernels`]).
pub(crate) fn inv_std<F: Float>(var: &[F], eps: F, inv_std: &mut [F]) {
    inv_std.iter_mut().zip(var).for_each(|(s, &v)| *s = F::one() / (v + eps).sqrt());
}

/// `x̂ = (x − mean)·inv_std` and `y = x̂·γ + β` (or `y = x̂` without `affine`), row by row. A
/// kernel ([`crate::kernels`]).
pub(crate) fn normalize<F: Float>(
    x: &[F],
    mean: &[F],
    inv_std: &[F],
    affine: Option<(&[F], &[F])>,
    x_hat: &mut [F],
    y: &mut [F],
) {
    let c = mean.len();
    let rows = x.chunks_exact(c).zip(x_hat.chunks_exact_mut(c)).zip(y.chunks_exact_mut(c));
    vectorized(
        #[inline(always)]
        || {
            for ((x_row, x_hat_row), y_row) in rows {
                for (((h, &v), &m), &s) in x_hat_row.iter_mut().zip(x_row).zip(mean).zip(inv_std) {
                    *h = (v - m) * s;
                }
                match affine {
                    Some((weight, bias)) => {
                        for (((out, &h), &w), &b) in y_row.iter_mut().zip(&*x_hat_row).zip(weight).zip(bias) {
                            *out = h * w + b;
                        }
                    }
                    None => y_row.copy_from_slice(x_hat_row),
                }
            }
        },
    );
}

/// `sum_dy = Σ dy` and `sum_dy_x_hat = Σ dy·x̂` per feature, over the rows. A kernel
/// ([`crate::kernels`]).
pub(crate) fn grad_sums<F: Float>(dy: &[F], x_hat: &[F], sum_dy: &mut [F], sum_dy_x_hat: &mut [F]) {
    let c = sum_dy.len();
    sum_dy.fill(F::zero());
    sum_dy_x_hat.fill(F::zero());
    vectorized(
        #[inline(always)]
        || {
            for (dy_row, x_hat_row) in dy.chunks_exact(c).zip(x_hat.chunks_exact(c)) {
                let sums = sum_dy.iter_mut().zip(sum_dy_x_hat.iter_mut());
                for ((s, sx), (&g, &h)) in sums.zip(dy_row.iter().zip(x_hat_row)) {
                    *s += g;
                    *sx += g * h;
                }
            }
        },
    );
}

/// dL/dx, row by row ([`FeatureStats::input_grad_row`]); `gamma` is γ when the layer is
/// affine. A kernel ([`crate::kernels`]).
pub(crate) fn input_grad<F: Float>(
    dy: &[F],
    x_hat: &[F],
    gamma: Option<&[F]>,
    stats: &FeatureStats<'_, F>,
    dx: &mut [F],
) {
    let c = stats.inv_std.len();
    let rows = dy.chunks_exact(c).zip(x_hat.chunks_exact(c)).zip(dx.chunks_exact_mut(c));
    vectorized(
        #[inline(always)]
        || {
            for ((dy_row, x_hat_row), dx_row) in rows {
                match gamma {
                    Some(w) => stats.input_grad_row(dx_row, dy_row, x_hat_row, w.iter().copied()),
                    None => stats.input_grad_row(dx_row, dy_row, x_hat_row, std::iter::repeat(F::one())),
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use approx::assert_abs_diff_eq;

    use super::*;
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
        assert_abs_diff_eq!(y, expected, epsilon = 1e-12);
    }

    #[test]
    fn running_statistics_use_momentum_and_the_unbiased_variance() {
        let mut bn = BatchNorm1d::<f64>::new(2).unwrap();
        run(&mut bn, &hand_batch(), Mode::Train).unwrap();
        // running = 0.9·initial + 0.1·batch statistic; initial mean 0, initial var 1.
        assert_abs_diff_eq!(bn.running_mean(), array![0.3, 0.4], epsilon = 1e-12);
        assert_abs_diff_eq!(bn.running_var(), array![0.9 + 0.4, 0.9 + 1.2], epsilon = 1e-12);
        assert_eq!(bn.num_batches_tracked(), 1);
        run(&mut bn, &hand_batch(), Mode::Train).unwrap();
        assert_abs_diff_eq!(bn.running_mean(), array![0.9 * 0.3 + 0.3, 0.9 * 0.4 + 0.4], epsilon = 1e-12);
        assert_abs_diff_eq!(bn.running_var(), array![0.9 * 1.3 + 0.4, 0.9 * 2.1 + 1.2], epsilon = 1e-12);
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
