//! The science of skip connections and normalization, pinned with a fixed seed: adding residual
//! shortcuts or BatchNorm to a network whose gradient vanishes brings the ratio of ‖dL/dh‖ at the
//! first hidden layer to the last one back within two orders of magnitude.
//!
//! The plain network is 20 × (Linear(64→64) → sigmoid) with PyTorch's default U(±1/√fan_in)
//! initialization: each layer multiplies ‖dL/dh‖ by about √(1/3)·σ′ with σ′ ≤ 1/4, so the first
//! layer gets far less than 1% of the last one's gradient. The remedies keep the depth, width,
//! activation, initialization, data and seed:
//! - residual: 20 × (x + Linear(σ(Linear(x)))) — the shortcut adds the incoming gradient to
//!   the branch's, so it reaches layer 1 undiminished;
//! - BatchNorm: 20 × (Linear → BatchNorm1d → sigmoid) — normalization divides each
//!   pre-activation by its batch standard deviation, which is proportional to the scale of W, and
//!   its backward divides the gradient by the same number.

use approx::assert_relative_eq;
use gradflow::activation::Sigmoid;
use gradflow::data::digits;
use gradflow::diagnose::{Diagnosis, Thresholds, Verdict, diagnose};
use gradflow::hooks::{Recorder, RecorderConfig};
use gradflow::loss::{CrossEntropy, Loss, Reduction, Targets};
use gradflow::{Mode, Network, Sequential, SequentialBuilder};
use ndarray::{Array2, s};
use rand::SeedableRng;
use rand::rngs::StdRng;

const DEPTH: usize = 20;
const WIDTH: usize = 64;
const INPUTS: usize = 64; // 8×8 pixels
const CLASSES: usize = 10;
const BATCH: usize = 128;
const SEED: u64 = 7;

/// Within two orders of magnitude, the bounds of the default thresholds.
const WITHIN: std::ops::RangeInclusive<f64> = 1e-2..=1e2;

/// The first `BATCH` of the embedded 8×8 digits (pixels in [0, 1]) and their labels.
fn batch() -> (Array2<f32>, Vec<usize>) {
    let digits = digits::<f32>().unwrap();
    let x = digits.inputs.slice(s![..BATCH, ..]).to_owned();
    let labels = digits.targets.classes().unwrap()[..BATCH].to_vec();
    (x, labels)
}

/// One forward and backward pass of cross-entropy in training mode, recorded and diagnosed.
fn diagnosis_of(builder: SequentialBuilder<f32>) -> Diagnosis {
    let model = builder.linear(CLASSES).build(&mut StdRng::seed_from_u64(SEED)).unwrap();
    let mut net = Network::new(model);
    let (x, labels) = batch();
    let handle = net.attach_hook(Recorder::new(RecorderConfig::all()).unwrap());
    let output = net.forward(x.view(), Mode::Train).unwrap();
    let (_, grad) =
        CrossEntropy::new(Reduction::Mean).value_and_grad(output, Targets::Classes(&labels)).unwrap();
    net.backward(grad.view()).unwrap();
    let recording = net.detach_hook(handle).unwrap().into_recording();
    diagnose(&recording, &Thresholds::default()).unwrap()
}

/// ‖dL/dh‖ at the first hidden layer over the last hidden layer's, computed from
/// `Recording::hidden_layers` (through the diagnosis's layers) and checked against the ratio the
/// diagnosis reports.
fn first_to_last(d: &Diagnosis, expected_hidden: usize, label: &str) -> f64 {
    let hidden: Vec<_> = d.layers.iter().map(|l| &l.layer).filter(|l| !l.is_output).collect();
    assert_eq!(hidden.len(), expected_hidden, "hidden layers");
    assert!(
        hidden.iter().all(|l| l.label == label),
        "{:?}",
        hidden.iter().map(|l| &l.label).collect::<Vec<_>>()
    );
    let first = hidden[0].grad_norm.unwrap();
    let last = hidden[expected_hidden - 1].grad_norm.unwrap();
    assert!(first.is_finite() && last.is_finite() && last > 0.0, "{first} {last}");
    let ratio = first / last;
    let reported = d.gradient_ratio.unwrap();
    assert_relative_eq!(ratio, reported, epsilon = 0.0, max_relative = 1e-9);
    ratio
}

fn plain() -> SequentialBuilder<f32> {
    Sequential::builder(INPUTS).repeat(DEPTH, WIDTH, Sigmoid)
}

fn residual() -> SequentialBuilder<f32> {
    Sequential::builder(INPUTS).repeat_residual(DEPTH, WIDTH, Sigmoid)
}

fn batch_norm() -> SequentialBuilder<f32> {
    (0..DEPTH).fold(Sequential::builder(INPUTS), |b, _| b.linear(WIDTH).batch_norm().activation(Sigmoid))
}

#[test]
fn the_plain_deep_sigmoid_network_vanishes() {
    let d = diagnosis_of(plain());
    let ratio = first_to_last(&d, DEPTH, "Linear+sigmoid");
    assert!(ratio < 1e-2, "first/last ‖dL/dh‖ = {ratio:e}");
    // Not merely below the threshold: at most √(1/3)·¼ ≈ 0.14 per layer, give or take the draw.
    assert!(ratio < 1e-10, "first/last ‖dL/dh‖ = {ratio:e}");
    assert_eq!(d.verdict, Verdict::Vanishing, "{:#?}", d.evidence);
}

#[test]
fn residual_shortcuts_bring_the_ratio_within_two_orders_of_magnitude() {
    let d = diagnosis_of(residual());
    let ratio = first_to_last(&d, DEPTH, "Residual");
    assert!(WITHIN.contains(&ratio), "first/last ‖dL/dh‖ = {ratio:e}");
    assert!(!matches!(d.verdict, Verdict::Vanishing | Verdict::Exploding), "{:#?}", d.evidence);
}

#[test]
fn batch_norm_brings_the_ratio_within_two_orders_of_magnitude() {
    let d = diagnosis_of(batch_norm());
    let ratio = first_to_last(&d, DEPTH, "Linear+BatchNorm1d+sigmoid");
    assert!(WITHIN.contains(&ratio), "first/last ‖dL/dh‖ = {ratio:e}");
    assert!(!matches!(d.verdict, Verdict::Vanishing | Verdict::Exploding), "{:#?}", d.evidence);
}

#[test]
fn batch_norm_changes_nothing_but_the_normalization() {
    // BatchNorm1d draws nothing from the generator: with the same seed both networks get the
    // same Linear weights, so the difference above is the normalization's alone.
    let mut rng = StdRng::seed_from_u64(SEED);
    let a = plain().linear(CLASSES).build(&mut rng).unwrap();
    let mut rng = StdRng::seed_from_u64(SEED);
    let b = batch_norm().linear(CLASSES).build(&mut rng).unwrap();
    let weights = |m: &Sequential<f32>, path: &str| {
        let mut w = Vec::new();
        m.layer_at(path).unwrap().visit_parameters(&mut |p| {
            if p.name == "weight" {
                w.extend(p.value.iter().copied());
            }
        });
        w
    };
    // Linear k is child 2k in the plain network and 3k in the normalized one.
    for k in [0, DEPTH / 2, DEPTH] {
        let (pa, pb) = ((2 * k).to_string(), (3 * k).to_string());
        assert_eq!(weights(&a, &pa), weights(&b, &pb), "Linear {k}");
    }
}
