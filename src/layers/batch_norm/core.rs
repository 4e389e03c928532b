//! The state and the passes shared by [`super::BatchNorm1d`] and [`super::BatchNorm2d`]: both
//! normalize each of `C` channels over the batch, a `(batch, C)` input for the first and
//! `(batch, C·H·W)` images (statistics over `N·H·W` entries per channel) for the second. A row
//! is `C` runs of `spatial` entries (`spatial = 1` for `BatchNorm1d`, `H·W` for `BatchNorm2d`).

use ndarray::{Array1, Array2, ArrayView2, Ix1};

use super::BatchNormConfig;
use crate::layer::{Mode, check_shape, ensure_shape};
use crate::param::{BufferView, BufferViewMut, Param, ParamView, ParamViewMut};
use crate::vectorize::vectorized;
use crate::{Error, Float, Result};

#[derive(Debug, Clone)]
pub(super) struct Affine<F: Float> {
    pub weight: Param<F, Ix1>,
    pub bias: Param<F, Ix1>,
}

/// Running statistics, affine parameters and the buffers of the last pass.
#[derive(Debug, Clone)]
pub(super) struct Core<F: Float> {
    pub config: BatchNormConfig,
    pub affine: Option<Affine<F>>,
    pub running_mean: Array1<F>,
    pub running_var: Array1<F>,
    pub num_batches_tracked: u64,
    /// The mean used by the last forward pass (batch or running).
    mean: Array1<F>,
    /// 1/√(var + ε) used by the last forward pass.
    inv_std: Array1<F>,
    /// The normalized input of the last forward pass, `(batch, C·spatial)`.
    x_hat: Array2<F>,
    /// Backward scratch: Σ dy and Σ dy·x̂ per channel.
    sum_dy: Array1<F>,
    sum_dy_x_hat: Array1<F>,
    last_mode: Option<Mode>,
    /// What is normalized, in messages: `"feature"` or `"channel"`.
    unit: &'static str,
}

impl<F: Float> Core<F> {
    /// Checks `config` (errors name `component`, e.g. `"BatchNorm2d"`) and makes the initial
    /// state: γ = 1, β = 0, running mean 0, running variance 1.
    pub fn new(config: &BatchNormConfig, component: &str, unit: &'static str) -> Result<Self> {
        let c = config.num_features;
        if c == 0 {
            return Err(Error::config(component, "num_features", "must be at least 1, got 0"));
        }
        if !(config.eps.is_finite() && config.eps > 0.0) {
            return Err(Error::config(
                component,
                "eps",
                format!(
                    "must be positive and finite (it keeps 1/sqrt(var + eps) finite), got {}",
                    config.eps
                ),
            ));
        }
        if let Some(m) = config.momentum
            && !(0.0..=1.0).contains(&m)
        {
            return Err(Error::config(component, "momentum", format!("must be in [0, 1], got {m}")));
        }
        let affine = config
            .affine
            .then(|| Affine { weight: Param::new(Array1::ones(c)), bias: Param::new(Array1::zeros(c)) });
        Ok(Core {
            config: *config,
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
            unit,
        })
    }

    pub fn reset_running_stats(&mut self) {
        self.running_mean.fill(F::zero());
        self.running_var.fill(F::one());
        self.num_batches_tracked = 0;
    }

    /// Computes mean and biased variance (into `inv_std`, as scratch) of each channel over the
    /// batch and updates the running statistics; leaves `inv_std = 1/√(σ² + ε)`.
    fn batch_statistics(&mut self, x: &[F], batch: usize, spatial: usize) {
        let c = self.config.num_features;
        let count = batch * spatial;
        let inv_n = F::one() / F::lit(count as f64);
        let mean = self.mean.as_slice_mut().expect("buffers are standard layout");
        let var = self.inv_std.as_slice_mut().expect("buffers are standard layout");
        if spatial == 1 {
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
                },
            );
        } else {
            mean.fill(F::zero());
            var.fill(F::zero());
            for row in x.chunks_exact(c * spatial) {
                for (m, run) in mean.iter_mut().zip(row.chunks_exact(spatial)) {
                    *m += run_sum(run);
                }
            }
            mean.iter_mut().for_each(|m| *m *= inv_n);
            // Two-pass variance, as above.
            for row in x.chunks_exact(c * spatial) {
                for ((s, &m), run) in var.iter_mut().zip(&*mean).zip(row.chunks_exact(spatial)) {
                    *s += run_squared_deviation(run, m);
                }
            }
        }
        var.iter_mut().for_each(|s| *s *= inv_n);
        let var = &mut self.inv_std;

        self.num_batches_tracked += 1;
        let factor = F::lit(self.config.momentum.unwrap_or(1.0 / self.num_batches_tracked as f64));
        let keep = F::one() - factor;
        let unbias = F::lit(count as f64 / (count as f64 - 1.0));
        let rows = self.running_mean.iter_mut().zip(self.running_var.iter_mut());
        for ((rm, rv), (&m, &v)) in rows.zip(self.mean.iter().zip(var.iter())) {
            *rm = keep * *rm + factor * m;
            *rv = keep * *rv + factor * v * unbias;
        }
        let eps = F::lit(self.config.eps);
        var.mapv_inplace(|v| F::one() / (v + eps).sqrt());
    }

    /// Copies the running statistics into `mean` and `inv_std`, refusing corrupt ones (a negative
    /// or non-finite running variance would otherwise put NaN in the output).
    fn running_statistics(&mut self, name: &dyn Fn() -> String) -> Result<()> {
        let eps = F::lit(self.config.eps);
        for (c, (&m, &v)) in self.running_mean.iter().zip(&self.running_var).enumerate() {
            if !(m.is_finite() && v.is_finite() && v + eps > F::zero()) {
                return Err(Error::NonFinite {
                    location: format!("{} in Eval mode", name()),
                    detail: format!(
                        "running statistics of feature {c} are invalid (running_mean {m}, \
                         running_var {v}); call reset_running_stats or load valid ones"
                    ),
                });
            }
        }
        self.mean.assign(&self.running_mean);
        self.inv_std.zip_mut_with(&self.running_var, |s, &v| *s = F::one() / (v + eps).sqrt());
        Ok(())
    }

    /// The forward pass over rows of `C` runs of `spatial` entries; `name` describes the layer
    /// in errors.
    pub fn forward(
        &mut self,
        name: &dyn Fn() -> String,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        spatial: usize,
    ) -> Result<()> {
        let c = self.config.num_features;
        let width = c * spatial;
        self.last_mode = None;
        check_shape(name, "input", &input, None, Some(width))?;
        let batch = input.nrows();
        if mode == Mode::Train && batch * spatial < 2 {
            return Err(Error::ShapeMismatch {
                layer: name(),
                what: "input",
                expected: format!(
                    "(batch ≥ 2, {width}) in Train mode (expected more than 1 value per {} to \
                     compute batch statistics; use Mode::Eval for single samples)",
                    self.unit
                ),
                actual: crate::error::format_shape(input.shape()),
            });
        }
        let x = input.as_standard_layout();
        let x = x.as_slice().expect("standard layout");
        match mode {
            Mode::Train => self.batch_statistics(x, batch, spatial),
            Mode::Eval => self.running_statistics(name)?,
        }
        ensure_shape(output, (batch, width));
        ensure_shape(&mut self.x_hat, (batch, width));
        let x_hat = self.x_hat.as_slice_mut().expect("buffers are standard layout");
        let y = output.as_slice_mut().expect("buffers are standard layout");
        let mean = self.mean.as_slice().expect("buffers are standard layout");
        let inv_std = self.inv_std.as_slice().expect("buffers are standard layout");
        let affine = self.affine.as_ref().map(|a| (contiguous(&a.weight.value), contiguous(&a.bias.value)));
        let rows = x.chunks_exact(width).zip(x_hat.chunks_exact_mut(width)).zip(y.chunks_exact_mut(width));
        if spatial == 1 {
            vectorized(
                #[inline(always)]
                || {
                    for ((x_row, x_hat_row), y_row) in rows {
                        for (((h, &v), &m), &s) in x_hat_row.iter_mut().zip(x_row).zip(mean).zip(inv_std) {
                            *h = (v - m) * s;
                        }
                        match &affine {
                            Some((weight, bias)) => {
                                for (((out, &h), &w), &b) in
                                    y_row.iter_mut().zip(&*x_hat_row).zip(&**weight).zip(&**bias)
                                {
                                    *out = h * w + b;
                                }
                            }
                            None => y_row.copy_from_slice(x_hat_row),
                        }
                    }
                },
            );
        } else {
            for ((x_row, x_hat_row), y_row) in rows {
                let runs = x_row.chunks_exact(spatial).zip(x_hat_row.chunks_exact_mut(spatial));
                for (ch, ((x, h), y)) in runs.zip(y_row.chunks_exact_mut(spatial)).enumerate() {
                    let (w, b) = affine.as_ref().map_or((F::one(), F::zero()), |(w, b)| (w[ch], b[ch]));
                    normalize_run(x, h, y, mean[ch], inv_std[ch], w, b);
                }
            }
        }
        self.last_mode = Some(mode);
        Ok(())
    }

    /// The backward pass matching [`Core::forward`].
    pub fn backward(
        &mut self,
        name: &dyn Fn() -> String,
        input: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        spatial: usize,
    ) -> Result<()> {
        let Some(mode) = self.last_mode else {
            return Err(Error::BackwardBeforeForward { layer: name() });
        };
        let (batch, width) = self.x_hat.dim();
        let c = self.config.num_features;
        check_shape(name, "input", &input, Some(batch), Some(width))?;
        check_shape(name, "grad_output", &grad_output, Some(batch), Some(width))?;
        let dy = grad_output.as_standard_layout();
        let dy = dy.as_slice().expect("standard layout");
        let x_hat = self.x_hat.as_slice().expect("buffers are standard layout");

        let sum_dy = self.sum_dy.as_slice_mut().expect("buffers are standard layout");
        let sum_dy_x_hat = self.sum_dy_x_hat.as_slice_mut().expect("buffers are standard layout");
        sum_dy.fill(F::zero());
        sum_dy_x_hat.fill(F::zero());
        if spatial == 1 {
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
        } else {
            for (dy_row, x_hat_row) in dy.chunks_exact(width).zip(x_hat.chunks_exact(width)) {
                let runs = dy_row.chunks_exact(spatial).zip(x_hat_row.chunks_exact(spatial));
                for ((s, sx), (g, h)) in sum_dy.iter_mut().zip(sum_dy_x_hat.iter_mut()).zip(runs) {
                    let (run_dy, run_dy_x_hat) = run_sums(g, h);
                    *s += run_dy;
                    *sx += run_dy_x_hat;
                }
            }
        }
        if let Some(a) = &mut self.affine {
            a.weight.grad += &self.sum_dy_x_hat;
            a.bias.grad += &self.sum_dy;
        }

        let Some(grad_input) = grad_input else { return Ok(()) };
        ensure_shape(grad_input, (batch, width));
        let dx = grad_input.as_slice_mut().expect("buffers are standard layout");
        // Per channel: scale = γ·istd; in training also the batch means of dy and dy·x̂.
        let gamma = self.affine.as_ref().map(|a| contiguous(&a.weight.value));
        let stats = FeatureStats {
            inv_std: self.inv_std.as_slice().expect("buffers are standard layout"),
            sum_dy: self.sum_dy.as_slice().expect("buffers are standard layout"),
            sum_dy_x_hat: self.sum_dy_x_hat.as_slice().expect("buffers are standard layout"),
            inv_n: F::one() / F::lit((batch * spatial) as f64),
            train: mode == Mode::Train,
        };
        let rows = dy.chunks_exact(width).zip(x_hat.chunks_exact(width)).zip(dx.chunks_exact_mut(width));
        if spatial == 1 {
            vectorized(
                #[inline(always)]
                || {
                    for ((dy_row, x_hat_row), dx_row) in rows {
                        match &gamma {
                            Some(w) => stats.input_grad_row(dx_row, dy_row, x_hat_row, w.iter().copied()),
                            None => {
                                stats.input_grad_row(dx_row, dy_row, x_hat_row, std::iter::repeat(F::one()))
                            }
                        }
                    }
                },
            );
        } else {
            for ((dy_row, x_hat_row), dx_row) in rows {
                let runs = dy_row.chunks_exact(spatial).zip(x_hat_row.chunks_exact(spatial));
                for (ch, ((g, h), d)) in runs.zip(dx_row.chunks_exact_mut(spatial)).enumerate() {
                    let w = gamma.as_ref().map_or(F::one(), |w| w[ch]);
                    stats.input_grad_run(d, g, h, ch, w);
                }
            }
        }
        Ok(())
    }

    pub fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        if let Some(a) = &self.affine {
            visitor(a.weight.view("weight"));
            visitor(a.bias.view("bias"));
        }
    }

    pub fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        if let Some(a) = &mut self.affine {
            visitor(a.weight.view_mut("weight"));
            visitor(a.bias.view_mut("bias"));
        }
    }

    /// Buffers in the order `running_mean`, `running_var`, `num_batches_tracked` (PyTorch's).
    pub fn visit_buffers<'a>(&'a self, visitor: &mut dyn FnMut(BufferView<'a, F>)) {
        visitor(BufferView::Tensor { name: "running_mean", value: self.running_mean.view().into_dyn() });
        visitor(BufferView::Tensor { name: "running_var", value: self.running_var.view().into_dyn() });
        visitor(BufferView::Count { name: "num_batches_tracked", value: self.num_batches_tracked });
    }

    pub fn visit_buffers_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(BufferViewMut<'a, F>)) {
        visitor(BufferViewMut::Tensor {
            name: "running_mean",
            value: self.running_mean.view_mut().into_dyn(),
        });
        visitor(BufferViewMut::Tensor { name: "running_var", value: self.running_var.view_mut().into_dyn() });
        visitor(BufferViewMut::Count { name: "num_batches_tracked", value: &mut self.num_batches_tracked });
    }
}

/// Per-channel quantities of a backward pass.
struct FeatureStats<'a, F: Float> {
    inv_std: &'a [F],
    sum_dy: &'a [F],
    sum_dy_x_hat: &'a [F],
    inv_n: F,
    train: bool,
}

impl<F: Float> FeatureStats<'_, F> {
    /// One row of dL/dx (one entry per feature): `γ·istd·(dy − mean(dy) − x̂·mean(dy·x̂))` in
    /// training, `γ·istd·dy` in evaluation.
    #[inline(always)]
    fn input_grad_row(&self, dx: &mut [F], dy: &[F], x_hat: &[F], gamma: impl Iterator<Item = F>) {
        let per_feature = gamma.zip(self.inv_std).zip(self.sum_dy).zip(self.sum_dy_x_hat);
        let inv_n = self.inv_n;
        for (((d, &g), &h), (((w, &s), &sd), &sdx)) in dx.iter_mut().zip(dy).zip(x_hat).zip(per_feature) {
            let scale = w * s;
            *d = if self.train { scale * (g - sd * inv_n - h * sdx * inv_n) } else { scale * g };
        }
    }

    /// The same for one run of channel `ch` (whose γ is `gamma`).
    fn input_grad_run(&self, dx: &mut [F], dy: &[F], x_hat: &[F], ch: usize, gamma: F) {
        let scale = gamma * self.inv_std[ch];
        let (mean_dy, mean_dy_x_hat) = if self.train {
            (self.sum_dy[ch] * self.inv_n, self.sum_dy_x_hat[ch] * self.inv_n)
        } else {
            (F::zero(), F::zero())
        };
        vectorized(
            #[inline(always)]
            || {
                for ((d, &g), &h) in dx.iter_mut().zip(dy).zip(x_hat) {
                    *d = scale * (g - mean_dy - h * mean_dy_x_hat);
                }
            },
        )
    }
}

/// Lanes of the per-run sums: independent accumulators, so that the loops vectorize.
const LANES: usize = 16;

/// Σ run.
fn run_sum<F: Float>(run: &[F]) -> F {
    vectorized(
        #[inline(always)]
        || {
            let mut lanes = [F::zero(); LANES];
            let chunks = run.chunks_exact(LANES);
            let rest = chunks.remainder();
            for chunk in chunks {
                for (l, &v) in lanes.iter_mut().zip(chunk) {
                    *l += v;
                }
            }
            for (l, &v) in lanes.iter_mut().zip(rest) {
                *l += v;
            }
            lanes.iter().fold(F::zero(), |a, &b| a + b)
        },
    )
}

/// Σ (run − m)².
fn run_squared_deviation<F: Float>(run: &[F], m: F) -> F {
    vectorized(
        #[inline(always)]
        || {
            let mut lanes = [F::zero(); LANES];
            let chunks = run.chunks_exact(LANES);
            let rest = chunks.remainder();
            for chunk in chunks {
                for (l, &v) in lanes.iter_mut().zip(chunk) {
                    *l += (v - m) * (v - m);
                }
            }
            for (l, &v) in lanes.iter_mut().zip(rest) {
                *l += (v - m) * (v - m);
            }
            lanes.iter().fold(F::zero(), |a, &b| a + b)
        },
    )
}

/// (Σ dy, Σ dy·x̂) over one run.
fn run_sums<F: Float>(dy: &[F], x_hat: &[F]) -> (F, F) {
    vectorized(
        #[inline(always)]
        || {
            let (mut s, mut sx) = ([F::zero(); LANES], [F::zero(); LANES]);
            let (chunks, hats) = (dy.chunks_exact(LANES), x_hat.chunks_exact(LANES));
            let (rest, hat_rest) = (chunks.remainder(), hats.remainder());
            for (chunk, hat) in chunks.zip(hats) {
                for lane in 0..LANES {
                    s[lane] += chunk[lane];
                    sx[lane] += chunk[lane] * hat[lane];
                }
            }
            for (lane, (&g, &h)) in rest.iter().zip(hat_rest).enumerate() {
                s[lane] += g;
                sx[lane] += g * h;
            }
            let total = |v: [F; LANES]| v.iter().fold(F::zero(), |a, &b| a + b);
            (total(s), total(sx))
        },
    )
}

/// `x̂ = (x − m)·s` and `y = x̂·w + b` over one run.
fn normalize_run<F: Float>(x: &[F], x_hat: &mut [F], y: &mut [F], m: F, s: F, w: F, b: F) {
    vectorized(
        #[inline(always)]
        || {
            for ((&v, h), out) in x.iter().zip(x_hat.iter_mut()).zip(y.iter_mut()) {
                *h = (v - m) * s;
                *out = *h * w + b;
            }
        },
    )
}

/// The entries of `values` as a slice: borrowed when it is contiguous (always, unless a caller
/// replaced a parameter by a strided array), copied otherwise.
pub(super) fn contiguous<F: Float>(values: &Array1<F>) -> std::borrow::Cow<'_, [F]> {
    match values.as_slice() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(values.to_vec()),
    }
}
