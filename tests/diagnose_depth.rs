//! The diagnosis on deep networks: what vanishes, what is healthy, and which remedy comes first.

mod diagnose_support;

use diagnose_support::*;
use gradflow::diagnose::{Diagnosis, Remedy, Thresholds, Verdict, diagnose, diagnose_step};
use gradflow::hooks::{RecorderConfig, Recording};
use gradflow::init::GlorotUniform;
use gradflow::{Error, Sequential};

const DEPTH: usize = 30;
const WIDTH: usize = 128;

fn diagnosis_of(model: Sequential<f32>) -> (Diagnosis, Recording) {
    let recording = record_one_step(model, RecorderConfig::all(), 11);
    (diagnose(&recording, &Thresholds::default()).unwrap(), recording)
}

fn hidden(d: &Diagnosis) -> impl Iterator<Item = &gradflow::diagnose::LayerDiagnosis> {
    d.layers.iter().filter(|l| !l.layer.is_output)
}

#[test]
fn a_deep_sigmoid_network_with_glorot_init_vanishes_and_relu_comes_first() {
    let (d, _) = diagnosis_of(sigmoid_glorot(DEPTH, WIDTH, 1));
    assert_eq!(d.verdict, Verdict::Vanishing, "{:#?}", d.evidence);
    assert_eq!(hidden(&d).count(), DEPTH);
    // σ' ≤ 1/4 and Glorot keeps the weights' factor near 1: far below 1/2 per layer.
    let factor = d.per_layer_factor.unwrap();
    assert!(factor < 0.5, "{factor}");
    assert!(d.gradient_ratio.unwrap() < 1e-2);
    assert_eq!(d.remedies[0], Remedy::RectifierActivations);
    assert!(d.evidence[0].contains(&format!("from layer {DEPTH} to layer 1, about ×{factor:.2} per layer")));
    assert!(d.evidence.iter().any(|e| e.contains("at most 0.25")), "{:#?}", d.evidence);
    // The layers near the input are the vanishing ones; the top hidden layer is fine.
    assert_eq!(d.layers[0].verdict, Verdict::Vanishing);
    assert_eq!(d.layers[DEPTH - 1].verdict, Verdict::Healthy);
}

#[test]
fn the_first_remedy_works_relu_with_he_init_is_healthy_at_the_same_depth() {
    let (d, _) = diagnosis_of(relu_he(DEPTH, WIDTH, 1));
    assert_eq!(d.verdict, Verdict::Healthy, "{:#?}", d.evidence);
    assert!(d.remedies.is_empty());
    let ratio = d.gradient_ratio.unwrap();
    assert!((1e-2..1e2).contains(&ratio), "{ratio}");
    for l in hidden(&d) {
        assert_eq!(l.verdict, Verdict::Healthy, "layer {}: {:?}", l.layer.index + 1, l.evidence);
        assert!(l.layer.dead_fraction.unwrap() < 0.5);
    }
}

#[test]
fn residual_blocks_make_the_same_sigmoid_network_healthy() {
    let (d, recording) = diagnosis_of(residual_sigmoid(DEPTH, WIDTH, 1));
    assert_eq!(d.verdict, Verdict::Healthy, "{:#?}", d.evidence);
    // Linear(in→128), 30 residual blocks, the output Linear.
    assert_eq!(d.layers.len(), DEPTH + 2);
    assert!(d.layers[1..=DEPTH].iter().all(|l| l.layer.label == "Residual"));
    // The blocks' nested sigmoids are counted.
    assert!(d.layers[1].layer.saturated_fraction.is_some());
    assert_eq!(d.layers[1].layer.activation.as_deref(), Some("sigmoid"));
    assert!(recording.layer("5.branch.1").is_some());
}

#[test]
fn residual_blocks_that_drift_saturate_their_sigmoids() {
    // Each block adds sigmoid outputs (all positive), so the stream grows and the deeper
    // sigmoids saturate, even though the skip path still carries the gradient.
    let (d, _) = diagnosis_of(residual_sigmoid_drifting(DEPTH, WIDTH, 1));
    assert_eq!(d.verdict, Verdict::Saturated, "{:#?}", d.evidence);
    assert_eq!(d.remedies[0], Remedy::RectifierActivations);
    let last_block = &d.layers[DEPTH];
    assert_eq!(last_block.verdict, Verdict::Saturated);
    assert!(last_block.layer.saturated_fraction.unwrap() > 0.5);
    assert!(d.evidence.iter().any(|e| e.contains("of sigmoid units saturated")), "{:#?}", d.evidence);
}

#[test]
fn tanh_with_pytorch_default_init_vanishes_through_its_weights() {
    // U(±1/√n) gives Var(w)·n = 1/3: about ×√(1/3) = ×0.58 per layer while tanh' ≈ 1.
    let (d, _) = diagnosis_of(tanh_default(DEPTH, WIDTH, 1));
    assert_eq!(d.verdict, Verdict::Vanishing);
    let factor = d.per_layer_factor.unwrap();
    assert!((0.5..0.65).contains(&factor), "{factor}");
    assert_eq!(d.remedies[0], Remedy::Initialization);
    assert!(
        d.evidence.iter().any(|e| e.contains("tanh units scale the gradient by ×0.9")),
        "{:#?}",
        d.evidence
    );
}

#[test]
fn weight_gradient_norms_hide_the_vanishing_that_dl_dh_shows() {
    // Without biases the forward signal shrinks as fast as the backward one grows, and the two
    // cancel in dL/dW = (dL/dz)ᵀ h: every layer's weight gradient is about the same size.
    let (d, _) = diagnosis_of(tanh_default_with_bias(DEPTH, WIDTH, 1, false));
    assert_eq!(d.verdict, Verdict::Vanishing);
    assert!(d.gradient_ratio.unwrap() < 1e-5);
    let norms: Vec<f64> = hidden(&d).map(|l| l.layer.weight_grad_norm.unwrap()).collect();
    let (min, max) = norms.iter().fold((f64::MAX, 0.0f64), |(a, b), &n| (a.min(n), b.max(n)));
    assert!(max / min < 10.0, "weight-gradient norms span ×{}", max / min);
    assert!(
        d.evidence.iter().any(|e| e.contains("weight-gradient norms alone would hide")),
        "{:#?}",
        d.evidence
    );
    assert!(d.evidence.iter().any(|e| e.contains("the forward signal shrinks")), "{:#?}", d.evidence);
    assert_eq!(d.remedies[0], Remedy::Initialization);
}

#[test]
fn relu_with_twice_the_glorot_scale_explodes_and_clipping_comes_first() {
    // Var(w)·n = 4·2/256·128 = 4, halved by ReLU: ×√2 per layer on the way down.
    let (d, _) = diagnosis_of(relu_with(DEPTH, WIDTH, 1, GlorotUniform::new(2.0).unwrap()));
    assert_eq!(d.verdict, Verdict::Exploding, "{:#?}", d.evidence);
    assert!(d.gradient_ratio.unwrap() > 1e2);
    assert_eq!(d.remedies[0], Remedy::ClipGradients);
    assert!(d.evidence[0].contains("grows"), "{}", d.evidence[0]);
}

/// A ReLU network whose Linear `path` has bias −100 on its first `dead_units` units.
fn with_dead_units(path: &str, dead_units: usize) -> Sequential<f32> {
    let mut model = relu_he(6, 32, 2);
    model.layer_at_mut(path).unwrap().visit_parameters_mut(&mut |mut p| {
        if p.name == "bias" {
            p.value.iter_mut().take(dead_units).for_each(|b| *b = -100.0);
        }
    });
    model
}

#[test]
fn a_layer_with_most_units_dead_is_dead_and_leaky_relu_comes_first() {
    let (d, _) = diagnosis_of(with_dead_units("4", 24));
    assert_eq!(d.verdict, Verdict::Dead, "{:#?}", d.evidence);
    assert_eq!(d.layers[2].verdict, Verdict::Dead);
    assert_eq!(d.layers[2].layer.dead_fraction, Some(0.75));
    assert_eq!(d.remedies[0], Remedy::LeakyRelu);
    assert!(d.evidence.iter().any(|e| e.contains("layer 3: 75% of relu units dead")), "{:#?}", d.evidence);
}

#[test]
fn a_completely_dead_layer_stops_the_gradient_and_names_the_cause() {
    let (d, _) = diagnosis_of(with_dead_units("4", 32));
    assert_eq!(d.verdict, Verdict::Vanishing, "{:#?}", d.evidence);
    assert_eq!(d.gradient_ratio, Some(0.0));
    assert_eq!(d.layers[1].layer.grad_norm, Some(0.0));
    assert!(d.evidence[0].contains("falls to 0 from layer 6 to layer 1"), "{}", d.evidence[0]);
    assert_eq!(d.remedies[0], Remedy::LeakyRelu);
}

#[test]
fn nan_values_make_the_verdict_non_finite() {
    let mut model = sigmoid_glorot(4, 16, 1);
    model.layer_at_mut("2").unwrap().visit_parameters_mut(&mut |mut p| {
        if p.name == "weight" {
            p.value[[0, 0].as_slice()] = f32::NAN;
        }
    });
    let (d, _) = diagnosis_of(model);
    assert_eq!(d.verdict, Verdict::NonFinite);
    assert_eq!(d.layers[0].verdict, Verdict::NonFinite, "layer 1 gets NaN gradients from above");
    assert!(d.evidence[0].contains("NonFiniteDetector"), "{}", d.evidence[0]);
    assert_eq!(d.remedies[0], Remedy::LowerLearningRate);
}

#[test]
fn a_step_without_backward_or_bad_thresholds_are_errors_naming_the_problem() {
    let recording = record_one_step(sigmoid_glorot(2, 8, 1), RecorderConfig::all(), 1);
    let err = diagnose_step(&recording, 5, &Thresholds::default()).unwrap_err();
    assert!(err.to_string().contains("step 5") && err.to_string().contains("[0]"), "{err}");
    let err = diagnose(&Recording::default(), &Thresholds::default()).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    let bad = Thresholds { exploding_ratio: 0.5, ..Thresholds::default() };
    let err = diagnose(&recording, &bad).unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { field: "exploding_ratio", .. }), "{err}");
    let bad = Thresholds { vanishing_ratio: 0.0, ..Thresholds::default() };
    assert!(matches!(bad.validate(), Err(Error::InvalidConfig { field: "vanishing_ratio", .. })));
}

#[test]
fn stricter_thresholds_change_the_verdict() {
    let recording = record_one_step(relu_he(DEPTH, WIDTH, 1), RecorderConfig::all(), 11);
    let d = diagnose(&recording, &Thresholds::default()).unwrap();
    let worst = hidden(&d).map(|l| l.layer.dead_fraction.unwrap()).fold(0.0, f64::max);
    assert!(worst > 0.05);
    let strict = Thresholds { dead_fraction: worst / 2.0, ..Thresholds::default() };
    assert_eq!(diagnose(&recording, &strict).unwrap().verdict, Verdict::Dead);
}
