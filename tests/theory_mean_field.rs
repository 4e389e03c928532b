//! Mean-field theory against simulation: wide random networks (width 1000–1500, several seeds)
//! built from gradflow's own layers, their pre-activation variances, correlations, per-layer
//! gradient factors and Jacobians compared with what [`MeanField`] predicts.
//!
//! Every comparison allows 5 standard errors of the mean over the seeds, estimated from the
//! seeds themselves, and checks that this tolerance is tight (a few per cent of the value), so
//! that a wrong theory cannot pass. The seeds are fixed: the tests are deterministic.

use gradflow::activation::{Activation, Relu, Tanh};
use gradflow::hooks::Context;
use gradflow::init::{Normal, Zeros};
use gradflow::theory::{FixedPoint, MeanField, Spectrum, jacobian};
use gradflow::{Act, Layer, LinearConfig, Mode, Sequential};
use ndarray::{Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const SEEDS: u64 = 8;
/// The correlation of the two inputs in the correlation test: below the chaotic fixed point,
/// so that the map visibly climbs to it.
const C0: f64 = 0.1;
/// Pairs of inputs per seed in the correlation test.
const PAIRS: usize = 8;

/// Mean and standard error of the mean of per-seed values.
fn mean_and_error(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// `measured` (one value per seed) agrees with `theory` within 5 standard errors, and that
/// tolerance is below `tight` of the value.
fn agrees(measured: &[f64], theory: f64, tight: f64, what: &str) {
    agrees_within(measured, theory, tight * theory.abs(), what)
}

/// `measured` agrees with `theory` within 5 standard errors, and that tolerance is at most
/// `largest` (absolute).
fn agrees_within(measured: &[f64], theory: f64, largest: f64, what: &str) {
    let (mean, error) = mean_and_error(measured);
    assert!(5.0 * error <= largest, "{what}: tolerance 5·{error:.2e} is not tight for {theory}");
    assert!(
        (mean - theory).abs() <= 5.0 * error,
        "{what}: simulated {mean} ± {error:.2e} (standard error over {SEEDS} seeds), theory {theory}"
    );
}

/// `depth` × (Linear(n→n) + activation) with W ~ N(0, σ_w²/n), b ~ N(0, σ_b²).
fn network(
    activation: impl Activation<f64> + Copy + 'static,
    n: usize,
    depth: usize,
    sw: f64,
    sb: f64,
    seed: u64,
) -> Vec<Box<dyn Layer<f64>>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let weights = Normal::new(0.0, (sw / n as f64).sqrt()).unwrap();
    let mut layers: Vec<Box<dyn Layer<f64>>> = Vec::new();
    for _ in 0..depth {
        let config = LinearConfig::new(n, n).weight_init(weights);
        let config = if sb > 0.0 {
            config.bias_init(Normal::new(0.0, sb.sqrt()).unwrap())
        } else {
            config.bias_init(Zeros)
        };
        layers.push(Box::new(config.build::<f64>(&mut rng).unwrap()));
        layers.push(Box::new(Act::new(activation)));
    }
    layers
}

/// Inputs of second moment `q0` per feature: `rows` standard normal vectors scaled.
fn inputs(rows: usize, n: usize, q0: f64, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    Array2::from_shape_simple_fn((rows, n), || q0.sqrt() * rng.sample::<f64, _>(StandardNormal))
}

/// Forward through `layers`, keeping every output; then backward from a random gradient,
/// keeping ∂L/∂(output of every layer).
fn passes(
    layers: &mut [Box<dyn Layer<f64>>],
    x: Array2<f64>,
    seed: u64,
) -> (Vec<Array2<f64>>, Vec<Array2<f64>>) {
    let mut outputs = vec![x];
    let mut ctx = Context::new();
    for layer in layers.iter_mut() {
        let mut y = Array2::zeros((0, 0));
        layer.forward(outputs.last().unwrap().view(), &mut y, Mode::Eval, &mut ctx).unwrap();
        outputs.push(y);
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9a9);
    let last = outputs.last().unwrap().dim();
    let mut grads = vec![Array2::from_shape_simple_fn(last, || rng.sample::<f64, _>(StandardNormal))];
    for (i, layer) in layers.iter_mut().enumerate().rev() {
        let mut g = Array2::zeros((0, 0));
        layer
            .backward(
                outputs[i].view(),
                outputs[i + 1].view(),
                grads.last().unwrap().view(),
                Some(&mut g),
                &mut ctx,
            )
            .unwrap();
        grads.push(g);
    }
    grads.reverse(); // grads[i] = ∂L/∂outputs[i]
    (outputs, grads)
}

fn mean_square(a: &Array2<f64>) -> f64 {
    a.iter().map(|v| v * v).sum::<f64>() / a.len() as f64
}

/// The theory's per-layer variances q¹ … q^L from an input second moment `q0`.
fn theory_variances(field: &MeanField<'_>, depth: usize, q0: f64, sw: f64, sb: f64) -> Vec<f64> {
    let mut q = vec![sw * q0 + sb];
    for _ in 1..depth {
        q.push(field.variance_map(*q.last().unwrap()).unwrap());
    }
    q
}

#[test]
fn pre_activation_variances_and_gradient_factors_of_width_1000_tanh_networks_match_the_theory() {
    let (n, depth, sw, sb, q0) = (1000, 6, 1.8, 0.3, 2.0);
    let field = MeanField::new(&Tanh, sw, sb).unwrap();
    let q = theory_variances(&field, depth, q0, sw, sb);
    let mut measured_q = vec![Vec::new(); depth];
    let mut measured_chi = vec![Vec::new(); depth];
    for seed in 0..SEEDS {
        let mut layers = network(Tanh, n, depth, sw, sb, seed);
        let (outputs, grads) = passes(&mut layers, inputs(16, n, q0, seed), seed);
        for l in 0..depth {
            // outputs[2l + 1] is layer l's pre-activation; grads[2l] is ∂L/∂(its input).
            measured_q[l].push(mean_square(&outputs[2 * l + 1]));
            if l > 0 {
                // ‖∂L/∂h_{l−1}‖² / ‖∂L/∂h_l‖²: through Linear l and its activation.
                measured_chi[l].push(mean_square(&grads[2 * l]) / mean_square(&grads[2 * l + 2]));
            }
        }
    }
    for l in 0..depth {
        // 5 standard errors are 1–7% of q here (the units' fluctuations compound with depth).
        agrees(&measured_q[l], q[l], 0.1, &format!("q at layer {l}"));
        if l > 0 {
            agrees(&measured_chi[l], field.gradient_factor(q[l]).unwrap(), 0.05, &format!("χ at layer {l}"));
        }
    }
}

#[test]
fn relu_at_he_variance_keeps_the_gradient_and_above_it_the_variance_grows_as_predicted() {
    let (n, depth, sb) = (1000, 5, 0.1);
    for sw in [2.0, 2.6] {
        let field = MeanField::new(&Relu, sw, sb).unwrap();
        let q = theory_variances(&field, depth, 1.0, sw, sb);
        if sw > 2.0 {
            assert!(matches!(field.fixed_point().unwrap(), FixedPoint::Unbounded { .. }));
        }
        let mut measured_q = Vec::new();
        let mut measured_chi = Vec::new();
        for seed in 0..SEEDS {
            let mut layers = network(Relu, n, depth, sw, sb, 100 + seed);
            let (outputs, grads) = passes(&mut layers, inputs(16, n, 1.0, seed), seed);
            measured_q.push(mean_square(&outputs[2 * depth - 1]));
            let ratios: Vec<f64> =
                (1..depth).map(|l| mean_square(&grads[2 * l]) / mean_square(&grads[2 * l + 2])).collect();
            measured_chi.push(ratios.iter().sum::<f64>() / ratios.len() as f64);
        }
        // 5 standard errors are ~13% of q at the 5th layer: a ReLU network's inputs become
        // correlated, so the batch does not average the units' fluctuations away.
        agrees(&measured_q, q[depth - 1], 0.15, &format!("ReLU σ_w² = {sw}: q at the last layer"));
        agrees(&measured_chi, sw / 2.0, 0.05, &format!("ReLU σ_w² = {sw}: χ₁ = σ_w²/2"));
    }
}

#[test]
fn the_correlation_of_two_inputs_follows_the_correlation_map_to_its_chaotic_fixed_point() {
    let (n, depth, sw, sb) = (1500, 8, 3.0, 0.1);
    let field = MeanField::new(&Tanh, sw, sb).unwrap();
    let FixedPoint::Finite { q: q_star, .. } = field.fixed_point().unwrap() else { panic!("finite") };
    let p = field.propagation().unwrap().unwrap();
    assert!(p.c_star < 0.9, "{p:?}");
    // Two inputs with correlation C0 at the fixed-point variance (inputs of second moment
    // (q* − σ_b²)/σ_w² give q¹ = q*).
    let q0 = (q_star - sb) / sw;
    // The first layer sees the inputs themselves (no activation before it):
    // c¹ = (σ_w²·q0·C0 + σ_b²)/q*; then cˡ⁺¹ = C(cˡ).
    let mut c = vec![(sw * q0 * C0 + sb) / q_star];
    for _ in 1..depth {
        c.push(field.correlation_map(q_star, *c.last().unwrap()).unwrap());
    }
    let mut measured = vec![Vec::new(); depth];
    for seed in 0..SEEDS {
        let mut rng = StdRng::seed_from_u64(200 + seed);
        let mut rows = Vec::new();
        for _ in 0..PAIRS {
            // Exactly correlated inputs of mean square 1: b = C0·a + √(1 − C0²)·e, e ⟂ a.
            let a = Array1::from_shape_simple_fn(n, || rng.sample::<f64, _>(StandardNormal));
            let a = &a * ((n as f64) / a.dot(&a)).sqrt();
            let e = Array1::from_shape_simple_fn(n, || rng.sample::<f64, _>(StandardNormal));
            let e = &e - &(&a * (e.dot(&a) / a.dot(&a)));
            let e = &e * ((n as f64) / e.dot(&e)).sqrt();
            let b = &a * C0 + &e * (1.0f64 - C0 * C0).sqrt();
            rows.push(a);
            rows.push(b);
        }
        let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
        let x = ndarray::stack(Axis(0), &views).unwrap() * q0.sqrt();
        let mut layers = network(Tanh, n, depth, sw, sb, 300 + seed);
        let (outputs, _) = passes(&mut layers, x, seed);
        for l in 0..depth {
            let z = &outputs[2 * l + 1];
            let correlation = |k: usize| {
                let (u, v) = (z.row(2 * k), z.row(2 * k + 1));
                u.dot(&v) / (u.dot(&u) * v.dot(&v)).sqrt()
            };
            measured[l].push((0..PAIRS).map(correlation).sum::<f64>() / PAIRS as f64);
        }
    }
    // c[l] is the correlation of layer l's pre-activations.
    for l in 0..depth {
        // An empirical correlation over 1500 units spreads by about (1 − c²)/√1500 ≈ 0.03;
        // averaged over 8 pairs and 8 seeds, 5 standard errors stay below 0.04, against a climb
        // from 0.16 to c* ≈ 0.48 that the map predicts.
        agrees_within(&measured[l], c[l], 0.04, &format!("correlation at layer {l}"));
    }
    // The climb goes on towards c*, a stable fixed point of the map (slowly: C′(c*) ≈ 0.9).
    assert!(c.windows(2).all(|w| w[1] > w[0]) && c[depth - 1] < p.c_star, "{c:?}");
    assert!((field.correlation_map(q_star, p.c_star).unwrap() - p.c_star).abs() < 1e-10);
    assert!(p.chi_c < 1.0 && p.chi_c == field.correlation_slope(q_star, p.c_star).unwrap(), "{p:?}");
}

#[test]
fn the_mean_squared_singular_value_of_the_jacobian_is_the_product_of_the_layers_chi() {
    // Pennington et al. 2017: E[‖J‖²_F / n] = Π χ(qˡ) for J = ∂h_L/∂h_0.
    let (n, depth, sw, sb, q0) = (400, 5, 1.5, 0.05, 1.0);
    let field = MeanField::new(&Tanh, sw, sb).unwrap();
    let q = theory_variances(&field, depth, q0, sw, sb);
    let predicted: f64 = q.iter().map(|&q| field.gradient_factor(q).unwrap()).product();
    let mut measured = Vec::new();
    for seed in 0..SEEDS {
        let mut rng = StdRng::seed_from_u64(400 + seed);
        let init = Normal::new(0.0, (sw / n as f64).sqrt()).unwrap();
        let mut model = Sequential::<f64>::builder(n)
            .init(init)
            .bias_init(Normal::new(0.0, sb.sqrt()).unwrap())
            .repeat(depth, n, Tanh)
            .build(&mut rng)
            .unwrap();
        let x = inputs(1, n, q0, 500 + seed).row(0).to_owned();
        let j = jacobian(&mut model, x.view()).unwrap();
        measured.push(Spectrum::of(j.view()).unwrap().mean_squared);
    }
    // At width 400 ‖J‖²_F/n of one input spreads by ~14% from seed to seed (each of the 5
    // layers contributes ~√(2/400)·CV(φ′²)); 8 seeds pin the mean to ±5% (one standard error):
    // this checks the scale Π χ(qˡ), not digits (the per-layer factors are checked above).
    agrees(&measured, predicted, 0.25, "mean squared singular value");
}
