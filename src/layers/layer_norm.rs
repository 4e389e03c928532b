//! [`LayerNorm`]: normalization over the features of each sample, as PyTorch's `nn.LayerNorm`.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut1, Ix1};

use crate::elementwise::contiguous;
use crate::hooks::Context;
use crate::layer::{Layer, Mode, check_input_features, check_shape, ensure_shape};
use crate::param::{Param, ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// How to build a [`LayerNorm`]. Defaults are PyTorch's: `eps = 1e-5`,
/// `elementwise_affine = true`, `bias = true`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormConfig {
    /// Number of features normalized together, `D` (PyTorch's `normalized_shape`, here the last
    /// and only feature dimension).
    pub normalized_shape: usize,
    /// Added to the variance before the square root (default 1e-5, PyTorch's default).
    pub eps: f64,
    /// Whether the layer has a learnable per-feature scale `weight` (γ, init 1) (default `true`).
    pub elementwise_affine: bool,
    /// Whether it also has a learnable per-feature shift `bias` (β, init 0); only with
    /// `elementwise_affine` (default `true`).
    pub bias: bool,
}

impl LayerNormConfig {
    /// PyTorch's defaults for `nn.LayerNorm(normalized_shape)`.
    pub fn new(normalized_shape: usize) -> Self {
        LayerNormConfig { normalized_shape, eps: 1e-5, elementwise_affine: true, bias: true }
    }

    /// Sets `eps`.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets whether there is a learnable `weight` (and `bias`).
    pub fn elementwise_affine(mut self, affine: bool) -> Self {
        self.elementwise_affine = affine;
        self
    }

    /// Sets whether there is a learnable `bias` (when `elementwise_affine`).
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Builds the layer.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field when `normalized_shape` is 0 or `eps` is not a
    /// positive finite number.
    pub fn build<F: Float>(&self) -> Result<LayerNorm<F>> {
        let d = self.normalized_shape;
        if d == 0 {
            return Err(Error::config("LayerNorm", "normalized_shape", "must be at least 1, got 0"));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::config(
                "LayerNorm",
                "eps",
                format!("must be positive and finite (it keeps 1/sqrt(var + eps) finite), got {}", self.eps),
            ));
        }
        // In the model's type: 1e-50 is positive in f64 but 0 in f32.
        crate::checks::setting::<F>("LayerNorm", "eps", self.eps, crate::checks::Needs::PositiveNormal)?;
        crate::alloc::check_len("LayerNorm", "normalized_shape", &[d])?;
        let param = |field, value: F| -> Result<Param<F, Ix1>> {
            Param::try_new(crate::alloc::try_full("LayerNorm", field, d, value)?, "LayerNorm", field)
        };
        let weight = match self.elementwise_affine {
            true => Some(param("weight", F::one())?),
            false => None,
        };
        let bias = match self.elementwise_affine && self.bias {
            true => Some(param("bias", F::zero())?),
            false => None,
        };
        Ok(LayerNorm {
            config: *self,
            weight,
            bias,
            x_hat: Array2::zeros((0, 0)),
            inv_std: Array1::zeros(0),
            seen_forward: false,
        })
    }
}

/// Layer normalization (Ba, Kiros & Hinton 2016) over the features of each sample, with
/// PyTorch's `nn.LayerNorm` definitions, names and defaults.
///
/// For each row: `y = γ ⊙ (x − μ) / √(σ² + ε) + β`, with μ and the *biased* variance σ² taken
/// over the row's `D` features. Unlike [`crate::BatchNorm1d`] it does not depend on the other
/// samples, so it behaves the same in [`Mode::Train`] and [`Mode::Eval`] and accepts a batch of
/// one.
///
/// Parameters: `weight` (γ, init 1) and `bias` (β, init 0), both `(D)`.
///
/// # Shapes
/// input `(batch, D)` → output `(batch, D)`.
///
/// # Gradients
/// With x̂ the normalized row, `istd = 1/√(σ² + ε)` and `g = dy ⊙ γ`:
/// `dγ += Σ_batch dy ⊙ x̂`, `dβ += Σ_batch dy`, and per row
/// `dx = istd · (g − mean(g) − x̂ · mean(g ⊙ x̂))`.
///
/// A row whose features are all equal has σ² = 0 and x̂ ≈ 0: its output is β, finite.
///
/// ```
/// use gradflow::{LayerNorm, Layer, Mode, hooks::Context};
/// use ndarray::{array, Array2};
///
/// let mut ln = LayerNorm::<f64>::new(3).unwrap();
/// let mut y = Array2::zeros((0, 0));
/// ln.forward(array![[1.0, 2.0, 3.0]].view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
/// // Mean 2, biased variance 2/3.
/// let s = (2.0f64 / 3.0 + 1e-5).sqrt();
/// assert!((y[[0, 0]] + 1.0 / s).abs() < 1e-12 && y[[0, 1]].abs() < 1e-12);
/// ```
#[derive(Debug, Clone)]
pub struct LayerNorm<F: Float> {
    config: LayerNormConfig,
    weight: Option<Param<F, Ix1>>,
    bias: Option<Param<F, Ix1>>,
    /// The normalized input of the last forward pass, `(batch, D)`.
    x_hat: Array2<F>,
    /// 1/√(σ² + ε) of each row of the last forward pass.
    inv_std: Array1<F>,
    seen_forward: bool,
}

impl<F: Float> LayerNorm<F> {
    /// `nn.LayerNorm(normalized_shape)` with PyTorch's defaults.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `normalized_shape` is 0.
    pub fn new(normalized_shape: usize) -> Result<Self> {
        LayerNormConfig::new(normalized_shape).build()
    }

    /// The configuration the layer was built with.
    pub fn config(&self) -> &LayerNormConfig {
        &self.config
    }

    /// γ, `(D)`, if any.
    pub fn weight(&self) -> Option<&Array1<F>> {
        self.weight.as_ref().map(|p| &p.value)
    }

    /// γ, as a mutable view (its shape cannot change).
    pub fn weight_mut(&mut self) -> Option<ArrayViewMut1<'_, F>> {
        self.weight.as_mut().map(|p| p.value.view_mut())
    }

    /// β, `(D)`, if any.
    pub fn bias(&self) -> Option<&Array1<F>> {
        self.bias.as_ref().map(|p| &p.value)
    }

    /// β, as a mutable view (its shape cannot change).
    pub fn bias_mut(&mut self) -> Option<ArrayViewMut1<'_, F>> {
        self.bias.as_mut().map(|p| p.value.view_mut())
    }

    /// The accumulated gradient of γ, if any.
    pub fn weight_grad(&self) -> Option<&Array1<F>> {
        self.weight.as_ref().map(|p| &p.grad)
    }

    /// The accumulated gradient of β, if any.
    pub fn bias_grad(&self) -> Option<&Array1<F>> {
        self.bias.as_ref().map(|p| &p.grad)
    }
}

impl<F: Float> Layer<F> for LayerNorm<F> {
    fn kind(&self) -> &'static str {
        "LayerNorm"
    }

    fn describe(&self) -> String {
        let c = &self.config;
        let mut s = format!("LayerNorm({}", c.normalized_shape);
        if c.eps != 1e-5 {
            s += &format!(", eps={:e}", c.eps);
        }
        if !c.elementwise_affine {
            s += ", elementwise_affine=false";
        } else if !c.bias {
            s += ", bias=false";
        }
        s + ")"
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        check_input_features(&|| self.describe(), self.config.normalized_shape, input_features)?;
        Ok(input_features)
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        _mode: Mode,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let d = self.config.normalized_shape;
        self.seen_forward = false;
        check_shape(&|| self.describe(), "input", &input, None, Some(d))?;
        let batch = input.nrows();
        ensure_shape(output, (batch, d));
        ensure_shape(&mut self.x_hat, (batch, d));
        if self.inv_std.len() != batch {
            self.inv_std = Array1::zeros(batch);
        }
        let x = input.as_standard_layout();
        let x = x.as_slice().expect("standard layout");
        let x_hat = self.x_hat.as_slice_mut().expect("buffers are standard layout");
        let y = output.as_slice_mut().expect("buffers are standard layout");
        let inv_std = self.inv_std.as_slice_mut().expect("buffers are standard layout");
        let weight = self.weight.as_ref().map(|w| contiguous(&w.value));
        let bias = self.bias.as_ref().map(|b| contiguous(&b.value));
        let affine = Affine { weight: weight.as_deref(), bias: bias.as_deref() };
        F::layer_norm_forward(x, d, F::lit(self.config.eps), &affine, x_hat, y, inv_std);
        self.seen_forward = true;
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
        if !self.seen_forward {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        }
        let (batch, d) = self.x_hat.dim();
        let name = || self.describe();
        check_shape(&name, "input", &input, Some(batch), Some(d))?;
        check_shape(&name, "grad_output", &grad_output, Some(batch), Some(d))?;
        let dy = grad_output.as_standard_layout();
        let dy = dy.as_slice().expect("standard layout");
        let x_hat = self.x_hat.as_slice().expect("buffers are standard layout");

        let weight_grad =
            self.weight.as_mut().map(|w| w.grad.as_slice_mut().expect("gradients are standard layout"));
        let bias_grad =
            self.bias.as_mut().map(|b| b.grad.as_slice_mut().expect("gradients are standard layout"));
        F::layer_norm_param_grads(dy, x_hat, d, weight_grad, bias_grad);

        let Some(grad_input) = grad_input else { return Ok(()) };
        ensure_shape(grad_input, (batch, d));
        let dx = grad_input.as_slice_mut().expect("buffers are standard layout");
        let gamma = self.weight.as_ref().map(|w| contiguous(&w.value));
        let inv_std = self.inv_std.as_slice().expect("buffers are standard layout");
        F::layer_norm_input_grad(dy, x_hat, d, inv_std, gamma.as_deref(), dx);
        Ok(())
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        if let Some(w) = &self.weight {
            visitor(w.view("weight"));
        }
        if let Some(b) = &self.bias {
            visitor(b.view("bias"));
        }
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        if let Some(w) = &mut self.weight {
            visitor(w.view_mut("weight"));
        }
        if let Some(b) = &mut self.bias {
            visitor(b.view_mut("bias"));
        }
    }
}

/// γ and β of a forward pass (`None` where the layer has none).
pub struct Affine<'a, F> {
    weight: Option<&'a [F]>,
    bias: Option<&'a [F]>,
}

/// Normalizes every row of `x` (rows of `d` features): `x̂` and
/// `inv_std = 1/√(var + ε)` per row, and `y = x̂·γ + β`. A kernel ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(
    x: &[F],
    d: usize,
    eps: F,
    affine: &Affine<'_, F>,
    x_hat: &mut [F],
    y: &mut [F],
    inv_std: &mut [F],
) {
    let inv_d = F::one() / F::lit(d as f64);
    let rows = x.chunks_exact(d).zip(x_hat.chunks_exact_mut(d)).zip(y.chunks_exact_mut(d));
    for (((x_row, x_hat_row), y_row), inv_std) in rows.zip(inv_std.iter_mut()) {
        let mean = x_row.iter().fold(F::zero(), |s, &v| s + v) * inv_d;
        let var = x_row.iter().fold(F::zero(), |s, &v| s + (v - mean) * (v - mean)) * inv_d;
        if (mean.is_finite() && var.is_finite()) || x_row.iter().any(|v| !v.is_finite()) {
            *inv_std = F::one() / (var + eps).sqrt();
            for (h, &v) in x_hat_row.iter_mut().zip(x_row) {
                *h = (v - mean) * *inv_std;
            }
        } else {
            *inv_std = normalize_scaled(x_row, eps, x_hat_row);
        }
        match (affine.weight, affine.bias) {
            (Some(w), Some(b)) => {
                for (((out, &h), &g), &b) in y_row.iter_mut().zip(&*x_hat_row).zip(w).zip(b) {
                    *out = h * g + b;
                }
            }
            (Some(w), None) => {
                for ((out, &h), &g) in y_row.iter_mut().zip(&*x_hat_row).zip(w) {
                    *out = h * g;
                }
            }
            _ => y_row.copy_from_slice(x_hat_row),
        }
    }
}

/// Normalizes a row of finite values whose sum or squared deviations overflow `F` (entries
/// near `F::MAX`, such as `[3e38, -3e38]` in `f32`): the statistics are taken of the row divided
/// by its largest magnitude `s`, which are the same x̂ (`(x − μ)/σ` does not depend on the
/// scale, ε being scaled by `1/s²`); returns `1/√(σ² + ε)` of the unscaled row.
#[cold]
fn normalize_scaled<F: Float>(x_row: &[F], eps: F, x_hat_row: &mut [F]) -> F {
    let inv_d = F::one() / F::lit(x_row.len() as f64);
    let scale = x_row.iter().fold(F::zero(), |m, &v| m.max(v.abs()));
    let mean = x_row.iter().fold(F::zero(), |s, &v| s + v / scale) * inv_d;
    let var = x_row.iter().fold(F::zero(), |s, &v| s + (v / scale - mean) * (v / scale - mean)) * inv_d;
    if var == F::zero() {
        // A constant row (ε/s² may underflow to 0 here): x̂ = 0, exactly as unscaled.
        x_hat_row.fill(F::zero());
        return F::one() / eps.sqrt();
    }
    let inv_std_scaled = F::one() / (var + eps / scale / scale).sqrt();
    for (h, &v) in x_hat_row.iter_mut().zip(x_row) {
        *h = (v / scale - mean) * inv_std_scaled;
    }
    inv_std_scaled / scale
}

/// `dγ += Σ dy·x̂` and `dβ += Σ dy` over the rows (of `d` features). A kernel
/// ([`crate::kernels`]).
pub(crate) fn param_grads<F: Float>(
    dy: &[F],
    x_hat: &[F],
    d: usize,
    mut weight_grad: Option<&mut [F]>,
    mut bias_grad: Option<&mut [F]>,
) {
    for (dy_row, x_hat_row) in dy.chunks_exact(d).zip(x_hat.chunks_exact(d)) {
        if let Some(w) = weight_grad.as_deref_mut() {
            for ((g, &dy), &h) in w.iter_mut().zip(dy_row).zip(x_hat_row) {
                *g += dy * h;
            }
        }
        if let Some(b) = bias_grad.as_deref_mut() {
            for (g, &dy) in b.iter_mut().zip(dy_row) {
                *g += dy;
            }
        }
    }
}

/// dL/dx row by row (rows of `d` features): `istd·(g − mean(g) − x̂·mean(g·x̂))` with `g = dy ⊙ γ` (γ = 1 without
/// `gamma`). A kernel ([`crate::kernels`]).
pub(crate) fn input_grad<F: Float>(
    dy: &[F],
    x_hat: &[F],
    d: usize,
    inv_std: &[F],
    gamma: Option<&[F]>,
    dx: &mut [F],
) {
    let inv_d = F::one() / F::lit(d as f64);
    let gamma = |k: usize| gamma.map_or(F::one(), |w| w[k]);
    let rows = dy.chunks_exact(d).zip(x_hat.chunks_exact(d)).zip(dx.chunks_exact_mut(d));
    for (((dy_row, x_hat_row), dx_row), &inv_std) in rows.zip(inv_std) {
        // g = dy ⊙ γ; its mean and the mean of g ⊙ x̂ over the row.
        let (mut mean_g, mut mean_g_x_hat) = (F::zero(), F::zero());
        for k in 0..d {
            let g = dy_row[k] * gamma(k);
            mean_g += g;
            mean_g_x_hat += g * x_hat_row[k];
        }
        mean_g *= inv_d;
        mean_g_x_hat *= inv_d;
        for k in 0..d {
            dx_row[k] = inv_std * (dy_row[k] * gamma(k) - mean_g - x_hat_row[k] * mean_g_x_hat);
        }
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_abs_diff_eq;

    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use ndarray::array;

    #[test]
    fn forward_matches_hand_computation() {
        let mut ln = LayerNorm::<f64>::new(4).unwrap();
        ln.weight_mut().unwrap().assign(&array![1.0, 2.0, -1.0, 0.5]);
        ln.bias_mut().unwrap().assign(&array![0.0, 1.0, 0.0, -1.0]);
        let mut y = Array2::zeros((0, 0));
        // Row 0: mean 2.5, biased var 1.25. Row 1: mean 0, biased var 10.
        let x = array![[1.0, 2.0, 3.0, 4.0], [-4.0, 2.0, -2.0, 4.0]];
        ln.forward(x.view(), &mut y, Mode::Eval, &mut Context::new()).unwrap();
        let s0 = (1.25f64 + 1e-5).sqrt();
        let s1 = (10.0f64 + 1e-5).sqrt();
        let expected = array![
            [-1.5 / s0, 2.0 * -0.5 / s0 + 1.0, -0.5 / s0, 0.5 * 1.5 / s0 - 1.0],
            [-4.0 / s1, 2.0 * 2.0 / s1 + 1.0, 2.0 / s1, 0.5 * 4.0 / s1 - 1.0],
        ];
        assert_abs_diff_eq!(y, expected, epsilon = 1e-12);
    }

    #[test]
    fn gradients_pass_finite_difference_check() {
        for (affine, bias) in [(true, true), (true, false), (false, false)] {
            let mut ln =
                LayerNormConfig::new(5).elementwise_affine(affine).bias(bias).build::<f64>().unwrap();
            if let Some(mut w) = ln.weight_mut() {
                w.assign(&array![1.5, -0.7, 0.3, 1.0, 2.0]);
            }
            if let Some(mut b) = ln.bias_mut() {
                b.assign(&array![0.1, 0.2, 0.3, -0.4, 0.0]);
            }
            let x = Array2::from_shape_fn((3, 5), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 5.0 - 1.0);
            let report = check_layer(&mut ln, &x, GradCheckConfig::default()).unwrap();
            assert_eq!(report.tensors.len(), 1 + affine as usize + bias as usize);
            report.within(1e-6).unwrap();
        }
    }

    #[test]
    fn a_constant_row_gives_the_bias_and_finite_gradients() {
        let mut ln = LayerNorm::<f32>::new(3).unwrap();
        ln.bias_mut().unwrap().assign(&array![0.5, -0.5, 1.0]);
        let x = array![[0.1f32, 0.1, 0.1]];
        let mut y = Array2::zeros((0, 0));
        ln.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        assert_abs_diff_eq!(y, array![[0.5f32, -0.5, 1.0]], epsilon = 1e-3);
        let mut dx = Array2::zeros((0, 0));
        let dy = array![[1.0f32, 2.0, -3.0]];
        ln.backward(x.view(), y.view(), dy.view(), Some(&mut dx), &mut Context::new()).unwrap();
        assert!(dx.iter().all(|v| v.is_finite()), "{dx}");
    }

    #[test]
    fn bad_width_and_bad_config_are_errors() {
        let mut ln = LayerNorm::<f64>::new(3).unwrap();
        let mut y = Array2::zeros((0, 0));
        let err =
            ln.forward(Array2::zeros((2, 4)).view(), &mut y, Mode::Train, &mut Context::new()).unwrap_err();
        assert!(err.to_string().contains("LayerNorm(3)") && err.to_string().contains("(2, 4)"), "{err}");
        let err = LayerNormConfig::new(0).build::<f64>().unwrap_err();
        assert!(err.to_string().contains("normalized_shape"), "{err}");
        let err = LayerNormConfig::new(2).eps(-1.0).build::<f64>().unwrap_err();
        assert!(err.to_string().contains("eps"), "{err}");
    }
}
