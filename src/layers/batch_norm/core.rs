//! The state and the passes shared by [`super::BatchNorm1d`] and [`super::BatchNorm2d`]: both
//! normalize each of `C` channels over the batch, a `(batch, C)` input for the first and
//! `(batch, C·H·W)` images (statistics over `N·H·W` entries per channel) for the second. A row
//! is `C` runs of `spatial` entries (`spatial = 1` for `BatchNorm1d`, `H·W` for `BatchNorm2d`).

use ndarray::{Array1, Array2, ArrayView2, Ix1};

use super::BatchNormConfig;
use crate::elementwise::contiguous;
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
    /// The batch size of the last forward pass. Backward recomputes the normalized input
    /// `x̂ = (x − μ)·istd` from the input it is given (bit for bit what forward computed) instead
    /// of keeping a copy: one write of the whole batch less per forward pass.
    forward_batch: usize,
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
        // Checked in the model's type: 1e-50 is positive in f64 but 0 in f32, where a constant
        // feature would then give 0/0.
        crate::checks::setting::<F>(component, "eps", config.eps, crate::checks::Needs::PositiveNormal)?;
        crate::alloc::check_len(component, "num_features", &[c])?;
        let full = |field, value: F| crate::alloc::try_full(component, field, c, value);
        let affine = match config.affine {
            true => Some(Affine {
                weight: Param::try_new(full("weight", F::one())?, component, "weight")?,
                bias: Param::try_new(full("bias", F::zero())?, component, "bias")?,
            }),
            false => None,
        };
        Ok(Core {
            config: *config,
            affine,
            running_mean: full("running_mean", F::zero())?,
            running_var: full("running_var", F::one())?,
            num_batches_tracked: 0,
            mean: full("num_features", F::zero())?,
            inv_std: full("num_features", F::zero())?,
            forward_batch: 0,
            sum_dy: full("num_features", F::zero())?,
            sum_dy_x_hat: full("num_features", F::zero())?,
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
        let count = batch * spatial;
        let mean = self.mean.as_slice_mut().expect("buffers are standard layout");
        let var = self.inv_std.as_slice_mut().expect("buffers are standard layout");
        F::batch_norm_moments(x, spatial, mean, var);
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
        let y = output.as_slice_mut().expect("buffers are standard layout");
        let mean = self.mean.as_slice().expect("buffers are standard layout");
        let inv_std = self.inv_std.as_slice().expect("buffers are standard layout");
        let affine = self.affine.as_ref().map(|a| (contiguous(&a.weight.value), contiguous(&a.bias.value)));
        let affine = affine.as_ref().map(|(w, b)| (&**w, &**b));
        F::batch_norm_normalize(x, spatial, (mean, inv_std), affine, y);
        self.forward_batch = batch;
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
        let (batch, width) = (self.forward_batch, self.config.num_features * spatial);
        check_shape(name, "input", &input, Some(batch), Some(width))?;
        check_shape(name, "grad_output", &grad_output, Some(batch), Some(width))?;
        let dy = grad_output.as_standard_layout();
        let dy = dy.as_slice().expect("standard layout");
        let x = input.as_standard_layout();
        let x = x.as_slice().expect("standard layout");
        let statistics = (
            self.mean.as_slice().expect("buffers are standard layout"),
            self.inv_std.as_slice().expect("buffers are standard layout"),
        );

        let sum_dy = self.sum_dy.as_slice_mut().expect("buffers are standard layout");
        let sum_dy_x_hat = self.sum_dy_x_hat.as_slice_mut().expect("buffers are standard layout");
        F::batch_norm_grad_sums(dy, x, spatial, statistics, sum_dy, sum_dy_x_hat);
        if let Some(a) = &mut self.affine {
            a.weight.grad += &self.sum_dy_x_hat;
            a.bias.grad += &self.sum_dy;
        }

        let Some(grad_input) = grad_input else { return Ok(()) };
        ensure_shape(grad_input, (batch, width));
        let dx = grad_input.as_slice_mut().expect("buffers are standard layout");
        let gamma = self.affine.as_ref().map(|a| contiguous(&a.weight.value));
        let sums = (
            self.sum_dy.as_slice().expect("buffers are standard layout"),
            self.sum_dy_x_hat.as_slice().expect("buffers are standard layout"),
        );
        F::batch_norm_input_grad(
            (dy, x),
            spatial,
            gamma.as_deref(),
            statistics,
            sums,
            mode == Mode::Train,
            dx,
        );
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

// The passes over the data, compiled inside gradflow for f32 and f64 (`crate::kernels`). Each
// takes a whole batch: rows of `C` runs of `spatial` entries, with `C` the length of the
// per-channel slices.

/// Lanes of the per-run sums: independent accumulators, so that the loops vectorize.
const LANES: usize = 16;

/// The mean and the biased variance of each channel over the batch, into `mean` and `var`
/// (two passes: Σ(x − μ)² is stable when |μ| ≫ σ).
pub(crate) fn batch_norm_moments<F: Float>(x: &[F], spatial: usize, mean: &mut [F], var: &mut [F]) {
    let c = mean.len();
    let inv_n = F::one() / F::lit((x.len() / c) as f64);
    if spatial == 1 {
        mean.fill(F::zero());
        var.fill(F::zero());
        vectorized(
            #[inline(always)]
            || {
                for row in x.chunks_exact(c) {
                    mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v);
                }
                mean.iter_mut().for_each(|m| *m *= inv_n);
                for row in x.chunks_exact(c) {
                    for ((s, &v), &m) in var.iter_mut().zip(row).zip(&*mean) {
                        *s += (v - m) * (v - m);
                    }
                }
                var.iter_mut().for_each(|s| *s *= inv_n);
            },
        );
        return;
    }
    let width = c * spatial;
    split_channels(parts(x.len()), 0, mean, var, &|first, mean, var| {
        vectorized(
            #[inline(always)]
            || {
                mean.fill(F::zero());
                var.fill(F::zero());
                for row in x.chunks_exact(width) {
                    let runs = row[first * spatial..].chunks_exact(spatial);
                    for (m, run) in mean.iter_mut().zip(runs) {
                        *m += lanes_sum(run, |v| v);
                    }
                }
                mean.iter_mut().for_each(|m| *m *= inv_n);
                for row in x.chunks_exact(width) {
                    let runs = row[first * spatial..].chunks_exact(spatial);
                    for ((s, &m), run) in var.iter_mut().zip(&*mean).zip(runs) {
                        *s += lanes_sum(run, |v| (v - m) * (v - m));
                    }
                }
                var.iter_mut().for_each(|s| *s *= inv_n);
            },
        )
    });
}

/// Into how many parts a pass over `len` entries of images is cut: one per thread from
/// [`crate::vectorize::PARALLEL_MIN_LEN`] entries on (the memory-bound passes of batch
/// normalization over a batch of feature maps), else one.
fn parts(len: usize) -> usize {
    let threads = rayon::current_num_threads();
    if threads >= 2 && len >= crate::vectorize::PARALLEL_MIN_LEN { threads } else { 1 }
}

/// A pass over a range of channels: `(first channel, first per-channel slice, second)`.
type ChannelPass<'a, F> = dyn Fn(usize, &mut [F], &mut [F]) + Sync + 'a;

/// A pass over a range of rows: `((read, read), (written, written))`.
type RowPass<'a, F> = dyn Fn((&[F], &[F]), (&mut [F], &mut [F])) + Sync + 'a;

/// Runs `f(first_channel, a_part, b_part)` on `parts` ranges of channels (of the per-channel
/// slices `a` and `b`, whose first channel is `first`), in parallel by rayon joins.
fn split_channels<F: Float>(parts: usize, first: usize, a: &mut [F], b: &mut [F], f: &ChannelPass<'_, F>) {
    if parts < 2 || a.len() < 2 {
        return f(first, a, b);
    }
    let left = parts / 2;
    let at = a.len() * left / parts;
    let ((a1, a2), (b1, b2)) = (a.split_at_mut(at), b.split_at_mut(at));
    crate::threads::note_split();
    rayon::join(
        || crate::threads::busy(|| split_channels(left, first, a1, b1, f)),
        || crate::threads::busy(|| split_channels(parts - left, first + at, a2, b2, f)),
    );
}

/// Runs `f(reads, writes)` on `parts` ranges of whole rows (of `width` entries) of the slices
/// read (`r1`, `r2`) and written (`w1`, `w2`; `w2` may be empty), in parallel by rayon joins.
fn split_rows<F: Float>(
    parts: usize,
    width: usize,
    (r1, r2): (&[F], &[F]),
    (w1, w2): (&mut [F], &mut [F]),
    f: &RowPass<'_, F>,
) {
    let rows = w1.len() / width;
    if parts < 2 || rows < 2 {
        return f((r1, r2), (w1, w2));
    }
    let left = parts / 2;
    let at = rows * left / parts * width;
    fn cut<F>(s: &[F], at: usize) -> (&[F], &[F]) {
        if s.is_empty() { (s, s) } else { s.split_at(at) }
    }
    let (r1a, r1b) = cut(r1, at);
    let (r2a, r2b) = cut(r2, at);
    let (w1a, w1b) = w1.split_at_mut(at);
    let (w2a, w2b) = if w2.is_empty() { w2.split_at_mut(0) } else { w2.split_at_mut(at) };
    crate::threads::note_split();
    rayon::join(
        || crate::threads::busy(|| split_rows(left, width, (r1a, r2a), (w1a, w2a), f)),
        || crate::threads::busy(|| split_rows(parts - left, width, (r1b, r2b), (w1b, w2b), f)),
    );
}

/// `y = x̂·γ + β` with `x̂ = (x − μ)·istd` per channel, `(mean, inv_std)` = `(μ, istd)` and
/// `affine` = `(γ, β)` (or `y = x̂`). Backward recomputes `x̂` by [`normalized`], the same
/// operations in the same order.
pub(crate) fn batch_norm_normalize<F: Float>(
    x: &[F],
    spatial: usize,
    (mean, inv_std): (&[F], &[F]),
    affine: Option<(&[F], &[F])>,
    y: &mut [F],
) {
    let (weight, bias) = (affine.map(|a| a.0), affine.map(|a| a.1));
    let width = mean.len() * spatial;
    let pass = |(x, _): (&[F], &[F]), (y, _): (&mut [F], &mut [F])| {
        vectorized(
            #[inline(always)]
            || {
                for (x, y) in x.chunks_exact(width).zip(y.chunks_exact_mut(width)) {
                    if spatial == 1 {
                        let rows = y.iter_mut().zip(x).zip(mean).zip(inv_std);
                        match (weight, bias) {
                            (Some(w), Some(b)) => {
                                for ((((out, &v), &m), &s), (&w, &b)) in rows.zip(w.iter().zip(b)) {
                                    *out = normalized(v, m, s) * w + b;
                                }
                            }
                            _ => rows.for_each(|(((out, &v), &m), &s)| *out = normalized(v, m, s)),
                        }
                    } else {
                        for (c, (x, y)) in
                            x.chunks_exact(spatial).zip(y.chunks_exact_mut(spatial)).enumerate()
                        {
                            let (m, s) = (mean[c], inv_std[c]);
                            let (w, b) =
                                (weight.map_or(F::one(), |w| w[c]), bias.map_or(F::zero(), |b| b[c]));
                            for (&v, out) in x.iter().zip(y.iter_mut()) {
                                *out = normalized(v, m, s) * w + b;
                            }
                        }
                    }
                }
            },
        )
    };
    let parts = if spatial > 1 { parts(x.len()) } else { 1 };
    split_rows(parts, width, (x, &[]), (y, &mut []), &pass);
}

/// `x̂ = (x − μ)·istd`: one normalized entry, computed the same way in forward and backward.
#[inline(always)]
fn normalized<F: Float>(x: F, mean: F, inv_std: F) -> F {
    (x - mean) * inv_std
}

/// Σ dy and Σ dy·x̂ of each channel over the batch, into `sum_dy` and `sum_dy_x_hat`, with x̂
/// recomputed from the input `x` and the forward pass's `(mean, inv_std)`.
pub(crate) fn batch_norm_grad_sums<F: Float>(
    dy: &[F],
    x: &[F],
    spatial: usize,
    (mean, inv_std): (&[F], &[F]),
    sum_dy: &mut [F],
    sum_dy_x_hat: &mut [F],
) {
    let width = sum_dy.len() * spatial;
    let pass = |first: usize, sum_dy: &mut [F], sum_dy_x_hat: &mut [F]| {
        sum_dy.fill(F::zero());
        sum_dy_x_hat.fill(F::zero());
        vectorized(
            #[inline(always)]
            || {
                for (dy, x) in dy.chunks_exact(width).zip(x.chunks_exact(width)) {
                    let sums = sum_dy.iter_mut().zip(sum_dy_x_hat.iter_mut());
                    if spatial == 1 {
                        let entries = dy.iter().zip(x).zip(mean.iter().zip(inv_std));
                        for ((s, sx), ((&g, &v), (&m, &istd))) in sums.zip(entries) {
                            *s += g;
                            *sx += g * normalized(v, m, istd);
                        }
                    } else {
                        let (dy, x) = (&dy[first * spatial..], &x[first * spatial..]);
                        let statistics = mean[first..].iter().zip(&inv_std[first..]);
                        let runs = dy.chunks_exact(spatial).zip(x.chunks_exact(spatial));
                        for (((s, sx), (g, v)), (&m, &istd)) in sums.zip(runs).zip(statistics) {
                            let (run_dy, run_dy_x_hat) = run_sums(g, v, m, istd);
                            *s += run_dy;
                            *sx += run_dy_x_hat;
                        }
                    }
                }
            },
        )
    };
    let parts = if spatial > 1 { parts(dy.len()) } else { 1 };
    split_channels(parts, 0, sum_dy, sum_dy_x_hat, &pass);
}

/// dL/dx: per channel `γ·istd·(dy − mean(dy) − x̂·mean(dy·x̂))` in training (the means over the
/// batch, from `sums` = `(Σ dy, Σ dy·x̂)`), `γ·istd·dy` in evaluation (a fixed affine map).
pub(crate) fn batch_norm_input_grad<F: Float>(
    (dy, x): (&[F], &[F]),
    spatial: usize,
    gamma: Option<&[F]>,
    (mean, inv_std): (&[F], &[F]),
    (sum_dy, sum_dy_x_hat): (&[F], &[F]),
    train: bool,
    dx: &mut [F],
) {
    let c = inv_std.len();
    let width = c * spatial;
    let inv_n = F::one() / F::lit((dy.len() / c) as f64);
    // Per channel: the scale γ·istd and the two means (zero in evaluation).
    let per_channel = |ch: usize| {
        let scale = gamma.map_or(F::one(), |g| g[ch]) * inv_std[ch];
        let means =
            if train { (sum_dy[ch] * inv_n, sum_dy_x_hat[ch] * inv_n) } else { (F::zero(), F::zero()) };
        (scale, means.0, means.1)
    };
    let pass = |(dy, x): (&[F], &[F]), (dx, _): (&mut [F], &mut [F])| {
        vectorized(
            #[inline(always)]
            || {
                let rows = dy.chunks_exact(width).zip(x.chunks_exact(width)).zip(dx.chunks_exact_mut(width));
                for ((dy, x), dx) in rows {
                    if spatial == 1 {
                        for (ch, ((d, &g), &v)) in dx.iter_mut().zip(dy).zip(x).enumerate() {
                            let (scale, mean_dy, mean_dy_x_hat) = per_channel(ch);
                            let h = normalized(v, mean[ch], inv_std[ch]);
                            *d = scale * (g - mean_dy - h * mean_dy_x_hat);
                        }
                    } else {
                        let runs = dy.chunks_exact(spatial).zip(x.chunks_exact(spatial));
                        for (ch, ((g, v), d)) in runs.zip(dx.chunks_exact_mut(spatial)).enumerate() {
                            let (scale, mean_dy, mean_dy_x_hat) = per_channel(ch);
                            let (m, istd) = (mean[ch], inv_std[ch]);
                            for ((d, &g), &v) in d.iter_mut().zip(g).zip(v) {
                                *d = scale * (g - mean_dy - normalized(v, m, istd) * mean_dy_x_hat);
                            }
                        }
                    }
                }
            },
        )
    };
    let parts = if spatial > 1 { parts(dy.len()) } else { 1 };
    split_rows(parts, width, (dy, x), (dx, &mut []), &pass);
}

/// Σ f(v) over a run, in [`LANES`] lanes.
#[inline(always)]
fn lanes_sum<F: Float>(run: &[F], f: impl Fn(F) -> F) -> F {
    let mut lanes = [F::zero(); LANES];
    let chunks = run.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    for (l, &v) in lanes.iter_mut().zip(rest) {
        *l += f(v);
    }
    lanes.iter().fold(F::zero(), |a, &b| a + b)
}

/// (Σ dy, Σ dy·x̂) over one run of a channel whose forward statistics are `(mean, inv_std)`,
/// in [`LANES`] lanes.
#[inline(always)]
fn run_sums<F: Float>(dy: &[F], x: &[F], mean: F, inv_std: F) -> (F, F) {
    let (mut s, mut sx) = ([F::zero(); LANES], [F::zero(); LANES]);
    let (chunks, inputs) = (dy.chunks_exact(LANES), x.chunks_exact(LANES));
    let (rest, input_rest) = (chunks.remainder(), inputs.remainder());
    for (chunk, input) in chunks.zip(inputs) {
        for lane in 0..LANES {
            s[lane] += chunk[lane];
            sx[lane] += chunk[lane] * normalized(input[lane], mean, inv_std);
        }
    }
    for (lane, (&g, &v)) in rest.iter().zip(input_rest).enumerate() {
        s[lane] += g;
        sx[lane] += g * normalized(v, mean, inv_std);
    }
    let total = |v: [F; LANES]| v.iter().fold(F::zero(), |a, &b| a + b);
    (total(s), total(sx))
}
