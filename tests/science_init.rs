//! The science behind the initializers: what He, Glorot and orthogonal initialization do to the
//! signal and the gradient of a deep network, asserted on networks built with the library.
//!
//! - He et al. (2015, "Delving Deep into Rectifiers", §2.2): with Var(W) = 2/fan_in, a ReLU
//!   layer keeps the second moment of the signal in expectation, E[h_{l+1}²] = E[h_l²]; with
//!   Glorot's Var(W) = 2/(fan_in + fan_out) = 1/fan_in (square layers) it halves it, because a
//!   ReLU zeroes half of its inputs.
//! - With orthogonal weights (all singular values 1) the backward pass through a Linear layer
//!   keeps the norm of every gradient vector exactly, so through L sigmoid layers the gradient
//!   is at most (max σ')^L = 4^−L of the gradient at the top.

use approx::abs_diff_eq;
use gradflow::activation::{Identity, Relu, Sigmoid};
use gradflow::hooks::{Recorder, RecorderConfig};
use gradflow::init::{GlorotUniform, Initializer, KaimingNormal, Orthogonal};
use gradflow::{Activation, Mode, Network, Sequential};
use ndarray::{Array2, Axis};
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

const WIDTH: usize = 128;
const LAYERS: usize = 30;
const BATCH: usize = 64;
const SEEDS: u64 = 10;

/// A `(rows, cols)` array of standard normal draws.
fn normal(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    Array2::random_using((rows, cols), StandardNormal, &mut StdRng::seed_from_u64(seed))
}

/// E[h²] (over the batch and the units) of the output of each of `LAYERS` bias-free
/// `Linear(WIDTH→WIDTH) + ReLU` layers with weights drawn by `init`, for a standard normal batch,
/// read from the recorder's activation statistics.
fn relu_second_moments(init: impl Initializer + 'static, seed: u64) -> Vec<f64> {
    let model = Sequential::<f64>::builder(WIDTH)
        .init(init)
        .bias(false)
        .repeat(LAYERS, WIDTH, Relu)
        .build(&mut StdRng::seed_from_u64(seed))
        .unwrap();
    let mut net = Network::new(model);
    let x = normal(BATCH, WIDTH, 1000 + seed);
    let config = RecorderConfig { activations: true, ..RecorderConfig::gradients() };
    let (result, recorder) =
        net.with_hook(Recorder::new(config).unwrap(), |net| net.forward(x.view(), Mode::Eval).map(|_| ()));
    result.unwrap();
    let moments: Vec<f64> = recorder
        .recording()
        .layers
        .iter()
        .filter(|l| l.activation.is_some())
        .map(|l| l.steps[0].activation.expect("activations are recorded").rms().powi(2))
        .collect();
    assert_eq!(moments.len(), LAYERS);
    moments
}

/// log10(E[h_L²] / E[h_1²]) for seeds 0..SEEDS, and their mean.
fn log_ratios(init: impl Initializer + Clone + 'static) -> (Vec<f64>, f64) {
    let logs: Vec<f64> = (0..SEEDS)
        .map(|seed| {
            let m = relu_second_moments(init.clone(), seed);
            (m[LAYERS - 1] / m[0]).log10()
        })
        .collect();
    let mean = logs.iter().sum::<f64>() / logs.len() as f64;
    (logs, mean)
}

#[test]
fn relu_with_he_init_keeps_the_forward_second_moment_over_30_layers() {
    // He normal, fan_in, gain √2 (the ReLU's, passed by the builder): Var(W) = 2/128.
    let (logs, mean) = log_ratios(KaimingNormal::fan_in());
    // Each layer multiplies E[h²] by 1 in expectation; a single 128-wide network drifts by a
    // random factor (across seeds the log ratio spreads over about a decade), so the bound is on
    // the mean over seeds. That mean sits a little below 0 (by Jensen's inequality the log of a
    // product of random factors of mean 1 has a negative mean, about −0.02 per layer at width
    // 128 by a second-order estimate), which ±0.5 allows for.
    assert!(mean.abs() <= 0.5, "mean log10 ratio {mean:.3} over seeds, per seed {logs:.3?}");
}

#[test]
fn relu_with_glorot_init_halves_the_forward_second_moment_at_every_layer() {
    // Glorot uniform, gain 1, fan_in = fan_out = 128: Var(W) = 1/128, half of He's.
    let (logs, mean) = log_ratios(GlorotUniform::default());
    // 29 layers from the first to the last, each multiplying E[h²] by ½ in expectation.
    let expected = (LAYERS - 1) as f64 * 0.5f64.log10(); // ≈ −8.73
    assert!(
        abs_diff_eq!(mean, expected, epsilon = 1.0),
        "mean log10 ratio {mean:.3}, expected {expected:.3}; per seed {logs:.3?}"
    );
    // And it is far from He's: the two are distinguished by the test, not by the tolerance.
    let (_, he) = log_ratios(KaimingNormal::fan_in());
    assert!(he - mean > 6.0, "He {he:.2} vs Glorot {mean:.2}");
}

/// ‖dL/dx‖ / ‖dL/dy‖ per sample through `layers` bias-free `Linear(64→64)` layers with
/// orthogonal weights (gain 1) each followed by `activation`, for a standard normal batch and a
/// standard normal gradient at the top.
fn orthogonal_gradient_ratios(activation: impl Activation<f64> + Clone + 'static, layers: usize) -> Vec<f64> {
    const N: usize = 64;
    let model = Sequential::<f64>::builder(N)
        .init(Orthogonal::default())
        .bias(false)
        .repeat(layers, N, activation)
        .build(&mut StdRng::seed_from_u64(layers as u64))
        .unwrap();
    let mut net = Network::new(model);
    let x = normal(16, N, 1);
    net.forward(x.view(), Mode::Train).unwrap();
    let grad_y = normal(16, N, 2);
    let grad_x = net.backward_with_input_grad(grad_y.view()).unwrap().to_owned();
    let norms = |a: &Array2<f64>| a.map_axis(Axis(1), |row| row.dot(&row).sqrt()).to_vec();
    norms(&grad_x).iter().zip(norms(&grad_y)).map(|(gx, gy)| gx / gy).collect()
}

#[test]
fn orthogonal_linear_layers_keep_every_gradient_norm_exactly() {
    // Without the activation (identity), every singular value of every layer is 1, so each
    // sample's gradient keeps its norm: the 4^−L below is the sigmoid's doing.
    for layers in [5, 10, 20] {
        for (i, r) in orthogonal_gradient_ratios(Identity, layers).into_iter().enumerate() {
            assert!(abs_diff_eq!(r, 1.0, epsilon = 1e-12), "L = {layers}, sample {i}: ratio {r}");
        }
    }
}

#[test]
fn gradient_through_l_orthogonal_sigmoid_layers_is_at_most_four_to_the_minus_l() {
    for layers in [5, 10, 20] {
        let bound = 0.25f64.powi(layers as i32);
        for (i, r) in orthogonal_gradient_ratios(Sigmoid, layers).into_iter().enumerate() {
            // Exact bound: ‖Wᵀ diag(σ') g‖ ≤ ‖W‖₂ · max σ' · ‖g‖ = ¼‖g‖ per layer; 1e-9 for rounding.
            assert!(r <= bound * (1.0 + 1e-9), "L = {layers}, sample {i}: ratio {r:e} > 4^-L = {bound:e}");
            // Not vacuous: the pre-activations stay within about ±1 of 0, where σ' is near its
            // maximum, so the gradient stays within 0.8^L of the bound (a zero or broken gradient
            // would fail here).
            assert!(
                r >= bound * 0.8f64.powi(layers as i32),
                "L = {layers}, sample {i}: ratio {r:e} far below {bound:e}"
            );
        }
    }
}
