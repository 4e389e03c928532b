//! The non-finite detector: the first NaN or ∞ is reported where it appeared.

mod diagnose_support;

use diagnose_support::{INPUTS, OUTPUTS, mse_grad, normal, rng, sigmoid_glorot};
use gradflow::hooks::{Direction, Event, NonFiniteDetector, Recorder};
use gradflow::{Error, Mode, Network};
use ndarray::Array2;

fn network_with_nan_weight(path: &str) -> Network<f32> {
    let mut net = Network::new(sigmoid_glorot(6, 16, 1));
    let layer = net.model_mut().layer_at_mut(path).unwrap();
    layer.visit_parameters_mut(&mut |mut p| {
        if p.name == "weight" {
            p.value[[3, 5].as_slice()] = f32::NAN;
        }
    });
    net
}

fn batch() -> (Array2<f32>, Array2<f32>) {
    let mut rng = rng(2);
    (normal(&mut rng, 8, INPUTS), normal(&mut rng, 8, OUTPUTS))
}

#[test]
fn a_nan_weight_is_reported_at_its_layer_in_the_forward_pass() {
    let mut net = network_with_nan_weight("4");
    let detector = net.attach_hook(NonFiniteDetector::new());
    let (x, t) = batch();
    // Without fail-fast the pass goes on (and NaN spreads), but the first place is on record.
    let y = net.forward(x.view(), Mode::Train).unwrap().to_owned();
    assert!(y.iter().any(|v| v.is_nan()));
    net.backward(mse_grad(y.view(), t.view()).view()).unwrap();
    let report = net.hook(detector).unwrap().report().unwrap().clone();
    assert_eq!((report.path.as_str(), report.kind.as_str()), ("4", "Linear"));
    assert_eq!((report.direction, report.step, report.what.as_str()), (Direction::Forward, 0, "output"));
    // One NaN weight in row 3 poisons output unit 3 for every sample of the batch.
    assert_eq!((report.count, report.len), (8, 8 * 16));
    assert!(report.detail.contains("weight holds 1 non-finite value"), "{}", report.detail);
    let text = report.to_string();
    assert!(text.starts_with("layer 3 (path 4, Linear), forward, step 0"), "{text}");
    assert_eq!(report.layer_number, Some(3), "Linear+sigmoid, Linear+sigmoid, then this Linear");
}

#[test]
fn fail_fast_stops_the_pass_with_an_error_naming_the_layer() {
    let mut net = network_with_nan_weight("6");
    net.attach_hook(NonFiniteDetector::fail_fast());
    let (x, _) = batch();
    let err = net.forward(x.view(), Mode::Train).unwrap_err();
    match &err {
        Error::NonFinite { location, .. } => {
            assert_eq!(location, "layer 4 (path 6, Linear), forward, step 0")
        }
        other => panic!("expected a non-finite error, got {other}"),
    }
    // It keeps refusing: the next pass fails the same way instead of spreading NaN.
    assert!(matches!(net.forward(x.view(), Mode::Train), Err(Error::NonFinite { .. })));
}

#[test]
fn a_gradient_made_non_finite_in_backward_is_reported_at_that_layer() {
    let mut net = Network::new(sigmoid_glorot(6, 16, 1));
    // A faulty hook writes ∞ into the gradient that layer 7 (a sigmoid) sends below.
    net.attach_hook(|event: &mut Event<'_, f32>| {
        if let Event::Backward(e) = event
            && e.path == "7"
        {
            e.grad_input_mut().unwrap()[[0, 0]] = f32::INFINITY;
        }
    });
    let detector = net.attach_hook(NonFiniteDetector::new());
    let (x, t) = batch();
    let y = net.forward(x.view(), Mode::Train).unwrap().to_owned();
    net.backward(mse_grad(y.view(), t.view()).view()).unwrap();
    let report = net.hook(detector).unwrap().report().unwrap();
    assert_eq!(
        (report.path.as_str(), report.direction, report.what.as_str()),
        ("7", Direction::Backward, "grad_input")
    );
    assert_eq!(report.count, 1);
}

#[test]
fn a_non_finite_loss_gradient_is_reported_at_the_last_layer() {
    let mut net = Network::new(sigmoid_glorot(3, 8, 1));
    let detector = net.attach_hook(NonFiniteDetector::fail_fast());
    let (x, _) = batch();
    net.forward(x.view(), Mode::Train).unwrap();
    let mut g = Array2::<f32>::zeros((8, OUTPUTS));
    g[[2, 1]] = f32::NAN;
    let err = net.backward(g.view()).unwrap_err();
    assert!(err.to_string().contains("layer 4 (path 6, Linear), backward, step 0"), "{err}");
    let report = net.hook(detector).unwrap().report().unwrap();
    assert_eq!(report.what, "grad_output");
    assert_eq!(net.step_count(), 0);
}

#[test]
fn the_detector_stays_quiet_after_its_first_report_until_reset() {
    let mut net = network_with_nan_weight("2");
    let detector = net.attach_hook(NonFiniteDetector::new());
    let recorder = net.attach_hook(Recorder::default());
    let (x, t) = batch();
    for _ in 0..2 {
        let y = net.forward(x.view(), Mode::Train).unwrap().to_owned();
        net.backward(mse_grad(y.view(), t.view()).view()).unwrap();
    }
    assert_eq!(net.hook(detector).unwrap().report().unwrap().step, 0, "the first report is kept");
    net.hook_mut(detector).unwrap().reset();
    net.forward(x.view(), Mode::Train).unwrap();
    let report = net.hook(detector).unwrap().report().unwrap();
    assert_eq!((report.path.as_str(), report.step), ("2", 2));
    // The recorder counts the NaN values instead of letting them into its statistics.
    let recording = net.hook(recorder).unwrap().recording();
    let output = recording.layer("2").unwrap().at_step(0).unwrap().activation.unwrap().output;
    assert_eq!(output.non_finite_count, 8);
    assert!(output.l2_norm.is_finite());
}

#[test]
fn a_clean_network_gives_no_report() {
    let mut net = Network::new(sigmoid_glorot(3, 8, 1));
    let detector = net.attach_hook(NonFiniteDetector::fail_fast());
    let (x, t) = batch();
    let y = net.forward(x.view(), Mode::Train).unwrap().to_owned();
    net.backward(mse_grad(y.view(), t.view()).view()).unwrap();
    assert!(net.hook(detector).unwrap().report().is_none());
}
