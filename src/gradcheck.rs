//! Finite-difference gradient checking: the test every backward in gradflow passes.
//!
//! The check uses the scalar loss `L = Σᵢⱼ outputᵢⱼ · Rᵢⱼ` with a fixed random `R`, so that every
//! output entry contributes with a different weight, and compares the analytic gradients (one
//! backward pass with `grad_output = R`) against central differences
//! `(L(θ + ε) − L(θ − ε)) / 2ε` for every entry of the input and of every parameter, in f64.

use ndarray::{Array2, ArrayView2};
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand_distr::StandardNormal;

use crate::hooks::Context;
use crate::layer::{Layer, Mode};
use crate::{Error, Result};

/// Settings of a gradient check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradCheckConfig {
    /// Step of the central difference (default 1e-5).
    pub epsilon: f64,
    /// Mode of the forward passes (default [`Mode::Train`]).
    pub mode: Mode,
    /// Seed of the random output weighting `R` (default 0).
    pub seed: u64,
    /// Floor of the denominator of the relative error, so that gradients that are nearly zero
    /// are compared in absolute terms (default 1e-3): `|a − n| / max(|a|, |n|, floor)`.
    pub floor: f64,
}

impl Default for GradCheckConfig {
    fn default() -> Self {
        GradCheckConfig { epsilon: 1e-5, mode: Mode::Train, seed: 0, floor: 1e-3 }
    }
}

/// The result for one tensor (the input, or one parameter).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorCheck {
    /// `"input"` or the parameter's dotted name, e.g. `"0.weight"`.
    pub name: String,
    /// Number of entries checked.
    pub len: usize,
    /// Worst relative error over the entries.
    pub max_relative_error: f64,
    /// Worst absolute error over the entries.
    pub max_absolute_error: f64,
    /// Flat index of the entry with the worst relative error.
    pub worst_index: usize,
    /// Analytic and numeric gradient at that entry.
    pub worst_pair: (f64, f64),
}

/// The result of a gradient check: one row per tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct GradCheckReport {
    /// The layer checked.
    pub layer: String,
    /// One entry per tensor: the input first, then the parameters in visiting order.
    pub tensors: Vec<TensorCheck>,
}

impl GradCheckReport {
    /// The largest relative error over all tensors.
    pub fn max_relative_error(&self) -> f64 {
        self.tensors.iter().map(|t| t.max_relative_error).fold(0.0, f64::max)
    }

    /// `Ok` when every tensor's worst relative error is at most `tolerance`; otherwise an error
    /// listing the tensors that fail.
    pub fn within(&self, tolerance: f64) -> Result<()> {
        let failing: Vec<String> = self
            .tensors
            .iter()
            .filter(|t| t.max_relative_error.is_nan() || t.max_relative_error > tolerance)
            .map(|t| {
                format!(
                    "{}: relative error {:.3e} at entry {} (analytic {:.6e}, numeric {:.6e})",
                    t.name, t.max_relative_error, t.worst_index, t.worst_pair.0, t.worst_pair.1
                )
            })
            .collect();
        if failing.is_empty() {
            Ok(())
        } else {
            Err(Error::NonFinite {
                location: format!("gradient check of {}", self.layer),
                detail: format!("above tolerance {tolerance:e}: {}", failing.join("; ")),
            })
        }
    }
}

impl std::fmt::Display for GradCheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "gradient check of {}", self.layer)?;
        for t in &self.tensors {
            writeln!(
                f,
                "  {:<24} {:>7} entries  max rel {:.2e}  max abs {:.2e}",
                t.name, t.len, t.max_relative_error, t.max_absolute_error
            )?;
        }
        Ok(())
    }
}

fn weighted_sum(
    layer: &mut dyn Layer<f64>,
    input: ArrayView2<'_, f64>,
    weights: &Array2<f64>,
    mode: Mode,
) -> Result<f64> {
    let mut output = Array2::zeros((0, 0));
    layer.forward(input, &mut output, mode, &mut Context::new())?;
    Ok((&output * weights).sum())
}

struct Accumulator {
    check: TensorCheck,
    floor: f64,
}

impl Accumulator {
    fn new(name: String, len: usize, floor: f64) -> Self {
        Accumulator {
            check: TensorCheck {
                name,
                len,
                max_relative_error: 0.0,
                max_absolute_error: 0.0,
                worst_index: 0,
                worst_pair: (0.0, 0.0),
            },
            floor,
        }
    }

    fn add(&mut self, index: usize, analytic: f64, numeric: f64) {
        let abs = (analytic - numeric).abs();
        let rel = abs / analytic.abs().max(numeric.abs()).max(self.floor);
        self.check.max_absolute_error = self.check.max_absolute_error.max(abs);
        if rel > self.check.max_relative_error || rel.is_nan() {
            self.check.max_relative_error = rel;
            self.check.worst_index = index;
            self.check.worst_pair = (analytic, numeric);
        }
    }
}

/// Checks the input gradient and every parameter gradient of `layer` at `input`.
///
/// The layer's parameter gradients are zeroed, then left holding the analytic gradient.
///
/// ```
/// use gradflow::{Linear, gradcheck::{check_layer, GradCheckConfig}};
/// use ndarray::Array2;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(3);
/// let mut layer = Linear::<f64>::new(5, 4, &mut rng).unwrap();
/// let x = Array2::from_shape_fn((3, 5), |(i, j)| (i as f64 - j as f64) * 0.3);
/// let report = check_layer(&mut layer, &x, GradCheckConfig::default()).unwrap();
/// report.within(1e-6).unwrap();
/// ```
///
/// # Errors
/// Whatever the layer's forward or backward returns (a shape mismatch, for instance).
pub fn check_layer(
    layer: &mut dyn Layer<f64>,
    input: &Array2<f64>,
    config: GradCheckConfig,
) -> Result<GradCheckReport> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let mut output = Array2::zeros((0, 0));
    layer.forward(input.view(), &mut output, config.mode, &mut Context::new())?;
    let weights: Array2<f64> = Array2::random_using(output.dim(), StandardNormal, &mut rng);
    layer.zero_grad();
    let mut grad_input = Array2::zeros((0, 0));
    layer.backward(
        input.view(),
        output.view(),
        weights.view(),
        Some(&mut grad_input),
        &mut Context::new(),
    )?;

    let eps = config.epsilon;
    let mut tensors = Vec::new();

    // Input.
    let mut acc = Accumulator::new("input".into(), input.len(), config.floor);
    let mut x = input.clone();
    for index in 0..x.len() {
        let original = x.as_slice().expect("owned clone is contiguous")[index];
        x.as_slice_mut().expect("contiguous")[index] = original + eps;
        let plus = weighted_sum(layer, x.view(), &weights, config.mode)?;
        x.as_slice_mut().expect("contiguous")[index] = original - eps;
        let minus = weighted_sum(layer, x.view(), &weights, config.mode)?;
        x.as_slice_mut().expect("contiguous")[index] = original;
        let analytic = grad_input.as_slice().expect("buffers are contiguous")[index];
        acc.add(index, analytic, (plus - minus) / (2.0 * eps));
    }
    tensors.push(acc.check);

    // Parameters, by visiting index.
    let mut shapes = Vec::new();
    let mut analytic_grads = Vec::new();
    for (name, p) in crate::named_parameters(layer) {
        shapes.push((name, p.value.len()));
        analytic_grads.push(p.grad.iter().copied().collect::<Vec<f64>>());
    }
    for (param_index, (name, len)) in shapes.into_iter().enumerate() {
        let mut acc = Accumulator::new(name, len, config.floor);
        for (entry, &analytic) in analytic_grads[param_index].iter().enumerate().take(len) {
            let mut original = 0.0;
            nudge(layer, param_index, entry, |v| {
                original = *v;
                *v += eps
            });
            let plus = weighted_sum(layer, input.view(), &weights, config.mode)?;
            nudge(layer, param_index, entry, |v| *v = original - eps);
            let minus = weighted_sum(layer, input.view(), &weights, config.mode)?;
            nudge(layer, param_index, entry, |v| *v = original);
            acc.add(entry, analytic, (plus - minus) / (2.0 * eps));
        }
        tensors.push(acc.check);
    }
    Ok(GradCheckReport { layer: layer.describe(), tensors })
}

/// Applies `f` to entry `entry` (in logical order) of the `param_index`-th parameter.
fn nudge(layer: &mut dyn Layer<f64>, param_index: usize, entry: usize, mut f: impl FnMut(&mut f64)) {
    let mut i = 0;
    layer.visit_parameters_mut(&mut |mut p| {
        if i == param_index
            && let Some(v) = p.value.iter_mut().nth(entry)
        {
            f(v);
        }
        i += 1;
    });
}
