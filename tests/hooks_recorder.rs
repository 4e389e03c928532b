//! The built-in recorder: what it records, and that recording changes nothing.

mod diagnose_support;

use approx::assert_relative_eq;
use diagnose_support::{BATCH, INPUTS, OUTPUTS, mse_grad, normal, residual_sigmoid, rng};
use gradflow::activation::{Relu, Tanh};
use gradflow::hooks::{NonFiniteDetector, Recorder, RecorderConfig, TensorStats};
use gradflow::{Act, Linear, Mode, Network, Sequential};
use ndarray::{Array2, array};

fn sgd<F: gradflow::Float>(net: &mut Network<F>, lr: f64) {
    net.visit_parameters_mut(&mut |mut p| {
        let step = p.grad.mapv(|g| F::lit(-lr) * g);
        p.value += &step;
    });
    net.zero_grad();
}

/// Three training steps; returns every output, input gradient and parameter (value and
/// gradient) as they were after each step.
fn train(net: &mut Network<f32>) -> Vec<Vec<f32>> {
    let mut seen = Vec::new();
    for s in 0..3 {
        let mut rng = rng(40 + s);
        let x = normal(&mut rng, BATCH, INPUTS);
        let t = normal(&mut rng, BATCH, OUTPUTS);
        let y = net.forward(x.view(), Mode::Train).unwrap().to_owned();
        seen.push(y.iter().copied().collect());
        let dx = net.backward_with_input_grad(mse_grad(y.view(), t.view()).view()).unwrap();
        seen.push(dx.iter().copied().collect());
        for (_, p) in net.named_parameters() {
            seen.push(p.grad.iter().copied().collect());
        }
        sgd(net, 0.5);
        for (_, p) in net.named_parameters() {
            seen.push(p.value.iter().copied().collect());
        }
    }
    seen
}

#[test]
fn recorders_and_detectors_leave_every_number_bit_identical() {
    let plain = train(&mut Network::new(residual_sigmoid(4, 16, 7)));
    let mut observed = Network::new(residual_sigmoid(4, 16, 7));
    let all = observed.attach_hook(Recorder::default());
    let cheap = observed.attach_hook(Recorder::new(RecorderConfig::gradients().every_n_steps(2)).unwrap());
    observed.attach_hook(NonFiniteDetector::fail_fast());
    let with_hooks = train(&mut observed);
    assert_eq!(plain.len(), with_hooks.len());
    for (a, b) in plain.iter().zip(&with_hooks) {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(a), bits(b));
    }
    assert_eq!(observed.hook(all).unwrap().recording().steps(), [0, 1, 2]);
    assert_eq!(observed.hook(cheap).unwrap().recording().steps(), [0, 2]);
}

/// Linear(2→2) with W = [[1, 2], [0, −1]], b = [0.5, −0.5].
fn one_linear() -> Network<f64> {
    let linear = Linear::from_weights(array![[1.0, 2.0], [0.0, -1.0]], Some(array![0.5, -0.5])).unwrap();
    let mut model = Sequential::new();
    model.push(linear);
    Network::new(model)
}

#[test]
fn statistics_match_a_hand_computed_linear_layer() {
    let mut net = one_linear();
    let handle = net.attach_hook(Recorder::default());
    // y = x Wᵀ + b = [1 + 2 + 0.5, 0 − 1 − 0.5] = [3.5, −1.5].
    net.forward(array![[1.0, 1.0]].view(), Mode::Train).unwrap();
    // dL/dy = [1, −2]: dL/dx = g W = [1, 4]; dW = gᵀx = [[1, 1], [−2, −2]]; db = [1, −2].
    net.backward_with_input_grad(array![[1.0, -2.0]].view()).unwrap();
    let recording = net.detach_hook(handle).unwrap().into_recording();
    assert_eq!(recording.float, "f64");
    let r = recording.layer("0").unwrap().at_step(0).unwrap();

    let g = r.grad_output.unwrap();
    assert_eq!((g.count, g.non_finite_count), (2, 0));
    assert_relative_eq!(g.l2_norm, 5f64.sqrt(), max_relative = 1e-15);
    assert_relative_eq!(g.mean, -0.5);
    assert_relative_eq!(g.std, 1.5);
    assert_relative_eq!(g.max_abs, 2.0);

    let gi = r.grad_input.unwrap();
    assert_relative_eq!(gi.l2_norm, 17f64.sqrt(), max_relative = 1e-15);
    assert_relative_eq!(gi.mean, 2.5);
    assert_relative_eq!(gi.std, 1.5);
    assert_relative_eq!(gi.max_abs, 4.0);

    let a = r.activation.unwrap();
    assert_relative_eq!(a.output.mean, 1.0);
    assert_relative_eq!(a.output.std, 2.5);
    assert_relative_eq!(a.rms(), 7.25f64.sqrt(), max_relative = 1e-15);
    assert_eq!((a.saturated_fraction, a.dead_fraction, a.mean_derivative), (None, None, None));

    let names: Vec<&str> = r.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["weight", "bias"]);
    let (w, b) = (&r.params[0], &r.params[1]);
    assert_relative_eq!(w.grad.l2_norm, 10f64.sqrt(), max_relative = 1e-15);
    assert_relative_eq!(w.value_norm, 6f64.sqrt(), max_relative = 1e-15);
    assert_relative_eq!(w.grad_to_value_ratio.unwrap(), (10.0f64 / 6.0).sqrt(), max_relative = 1e-15);
    assert_relative_eq!(b.grad.l2_norm, 5f64.sqrt(), max_relative = 1e-15);
    assert_relative_eq!(b.grad_to_value_ratio.unwrap(), 10f64.sqrt(), max_relative = 1e-15);
    assert_eq!(w.update_to_value_ratio, None, "no update has happened yet");
}

#[test]
fn the_update_ratio_is_measured_at_the_next_forward_and_filed_under_the_previous_step() {
    let mut net = one_linear();
    let handle = net.attach_hook(Recorder::default());
    let x = array![[1.0, 1.0]];
    net.forward(x.view(), Mode::Train).unwrap();
    net.backward(array![[1.0, -2.0]].view()).unwrap();
    // The "optimizer": W[0][0] += 0.1, bias untouched.
    net.visit_parameters_mut(&mut |mut p| {
        if p.name == "weight" {
            p.value[[0, 0].as_slice()] += 0.1;
        }
    });
    net.forward(x.view(), Mode::Train).unwrap();
    net.backward(array![[1.0, -2.0]].view()).unwrap();
    let recording = net.detach_hook(handle).unwrap().into_recording();
    let layer = recording.layer("0").unwrap();
    let step0 = &layer.at_step(0).unwrap().params;
    assert_relative_eq!(step0[0].update_to_value_ratio.unwrap(), 0.1 / 6f64.sqrt(), max_relative = 1e-12);
    assert_eq!(step0[1].update_to_value_ratio, Some(0.0));
    let step1 = &layer.at_step(1).unwrap().params;
    assert_eq!(step1[0].update_to_value_ratio, None, "step 1's update is not known before step 2");
    assert_relative_eq!(step1[0].value_norm, (1.1f64 * 1.1 + 4.0 + 1.0).sqrt(), max_relative = 1e-12);
}

#[test]
fn with_plain_sgd_the_update_ratio_is_the_learning_rate_times_the_gradient_ratio() {
    // W_new − W_old = −lr·g, so ‖ΔW‖/‖W‖ = lr·‖g‖/‖W‖.
    let mut net = Network::new(residual_sigmoid(2, 12, 8));
    let handle = net.attach_hook(Recorder::default());
    for s in 0..3 {
        let mut rng = rng(s);
        let x = normal(&mut rng, 5, INPUTS);
        let y = net.forward(x.view(), Mode::Train).unwrap().to_owned();
        net.backward(mse_grad(y.view(), normal(&mut rng, 5, OUTPUTS).view()).view()).unwrap();
        sgd(&mut net, 0.25);
    }
    net.forward(normal(&mut rng(9), 5, INPUTS).view(), Mode::Train).unwrap();
    let recording = net.detach_hook(handle).unwrap().into_recording();
    let mut checked = 0;
    for layer in &recording.layers {
        for step in &layer.steps {
            for p in &step.params {
                let expected = 0.25 * p.grad_to_value_ratio.unwrap();
                assert_relative_eq!(p.update_to_value_ratio.unwrap(), expected, max_relative = 1e-5);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 6 * 2);
}

#[test]
fn every_n_steps_skips_steps_but_still_measures_updates() {
    let mut net = one_linear();
    let config = RecorderConfig::all().every_n_steps(2);
    let handle = net.attach_hook(Recorder::new(config).unwrap());
    for _ in 0..5 {
        net.forward(array![[1.0, -1.0], [0.5, 2.0]].view(), Mode::Train).unwrap();
        net.backward(array![[1.0, -2.0], [0.5, 0.5]].view()).unwrap();
        sgd(&mut net, 0.1);
    }
    let recording = net.detach_hook(handle).unwrap().into_recording();
    assert_eq!(recording.steps(), [0, 2, 4]);
    assert_eq!(recording.config.every_n_steps, 2);
    let layer = recording.layer("0").unwrap();
    assert!(layer.at_step(2).unwrap().params[0].update_to_value_ratio.unwrap() > 0.0);
    assert!(layer.at_step(4).unwrap().params[0].update_to_value_ratio.is_none());
}

#[test]
fn weight_norms_are_the_same_with_and_without_update_tracking() {
    // With updates on, ‖W‖ comes from the snapshot pass; it must equal the direct computation.
    let mut recordings = Vec::new();
    for updates in [true, false] {
        let mut net = Network::new(residual_sigmoid(2, 12, 4));
        let config = RecorderConfig { updates, ..RecorderConfig::all() };
        let handle = net.attach_hook(Recorder::new(config).unwrap());
        for s in 0..3 {
            let mut rng = rng(s);
            let x = normal(&mut rng, 5, INPUTS);
            let y = net.forward(x.view(), Mode::Train).unwrap().to_owned();
            net.backward(mse_grad(y.view(), normal(&mut rng, 5, OUTPUTS).view()).view()).unwrap();
            sgd(&mut net, 0.3);
        }
        recordings.push(net.detach_hook(handle).unwrap().into_recording());
    }
    let norms = |r: &gradflow::hooks::Recording| -> Vec<f64> {
        r.layers
            .iter()
            .flat_map(|l| l.steps.iter().flat_map(|s| s.params.iter().map(|p| p.value_norm)))
            .collect()
    };
    assert_eq!(norms(&recordings[0]).len(), 3 * 2 * 3 * 2, "3 steps × (2 blocks × 2 + 2) Linear × 2 params");
    assert_eq!(norms(&recordings[0]), norms(&recordings[1]));
    let ratios: Vec<Option<f64>> =
        recordings[0].layers[0].steps.iter().map(|s| s.params[0].update_to_value_ratio).collect();
    assert!(ratios[0].unwrap() > 0.0 && ratios[1].unwrap() > 0.0 && ratios[2].is_none(), "{ratios:?}");
}

#[test]
fn the_gradients_preset_records_gradients_only() {
    let mut net = Network::new(residual_sigmoid(2, 8, 1));
    let handle = net.attach_hook(Recorder::new(RecorderConfig::gradients()).unwrap());
    let mut rng = rng(0);
    let x = normal(&mut rng, 4, INPUTS);
    net.forward(x.view(), Mode::Train).unwrap();
    net.backward(Array2::ones((4, OUTPUTS)).view()).unwrap();
    let recording = net.detach_hook(handle).unwrap().into_recording();
    assert_eq!(recording.layers.len(), 12); // Linear, 2 × (4 inside + block), Linear
    for layer in &recording.layers {
        let r = layer.at_step(0).unwrap();
        assert!(r.grad_output.unwrap().l2_norm > 0.0, "{}", layer.path);
        assert!(r.activation.is_none() && r.params.is_empty(), "{}", layer.path);
    }
    assert!(
        recording.layer("0").unwrap().at_step(0).unwrap().grad_input.is_none(),
        "input gradient not asked"
    );
}

#[test]
fn activation_layers_get_saturation_or_dead_shares() {
    let mut model = Sequential::<f32>::new();
    model.push(Act::new(Tanh)).push(Act::new(Relu));
    let mut net = Network::new(model);
    let handle = net.attach_hook(Recorder::default());
    // tanh: |tanh(±3)| > 0.975 saturate, tanh(0) and tanh(0.5) do not. Then relu of the tanh
    // outputs: column 0 is ≤ 0 for both samples (dead), columns 1 and 2 are not.
    net.forward(array![[0.0, 3.0, 0.5], [-3.0, -3.0, 3.0]].view(), Mode::Train).unwrap();
    net.backward(Array2::ones((2, 3)).view()).unwrap();
    let recording = net.detach_hook(handle).unwrap().into_recording();
    let tanh = recording.layer("0").unwrap().at_step(0).unwrap().activation.unwrap();
    assert_eq!((tanh.saturated_fraction, tanh.dead_fraction), (Some(4.0 / 6.0), None));
    let relu = recording.layer("1").unwrap().at_step(0).unwrap().activation.unwrap();
    assert_eq!((relu.saturated_fraction, relu.dead_fraction), (None, Some(1.0 / 3.0)));
}

#[test]
fn the_last_forward_before_backward_is_kept_and_take_recording_starts_afresh() {
    let mut net = one_linear();
    let handle = net.attach_hook(Recorder::default());
    net.forward(array![[100.0, 100.0]].view(), Mode::Eval).unwrap();
    net.forward(array![[1.0, 1.0]].view(), Mode::Train).unwrap();
    net.backward(array![[1.0, -2.0]].view()).unwrap();
    let recorder = net.hook_mut(handle).unwrap();
    let first = recorder.take_recording();
    assert_eq!(first.layer("0").unwrap().at_step(0).unwrap().activation.unwrap().output.mean, 1.0);
    assert!(recorder.recording().is_empty());
    assert_eq!(recorder.config(), &RecorderConfig::all());
}

#[test]
fn tensor_stats_agree_with_a_direct_computation_on_a_real_gradient() {
    let mut net = Network::new(residual_sigmoid(2, 8, 3));
    let handle = net.attach_hook(Recorder::default());
    let mut rng = rng(1);
    let x = normal(&mut rng, 6, INPUTS);
    net.forward(x.view(), Mode::Train).unwrap();
    let g = normal(&mut rng, 6, OUTPUTS);
    net.backward(g.view()).unwrap();
    let recording = net.detach_hook(handle).unwrap().into_recording();
    let last = recording.layers.last().unwrap();
    assert_eq!(last.path, "3");
    let stats = last.at_step(0).unwrap().grad_output.unwrap();
    assert_eq!(stats, TensorStats::of(g.iter().copied()));
    let norm = g.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
    // f32 tensors are summed in f32 within blocks (relative error near 1e-7), f64 across them.
    assert_relative_eq!(stats.l2_norm, norm, max_relative = 1e-6);
}
