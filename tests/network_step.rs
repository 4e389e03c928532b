//! `Network::step`: the optimizer step that shows hooks how far each parameter moved, and the
//! recorder's update-to-weight ratios taken from it.

use approx::relative_eq;
use std::sync::{Arc, Mutex};

use gradflow::activation::Tanh;
use gradflow::hooks::{Event, Recorder, RecorderConfig, Recording, WithUpdates};
use gradflow::optim::{AdamConfig, Optimizer, RmsPropConfig, SgdConfig};
use gradflow::{Layer, Mode, Network, Sequential};
use ndarray::Array2;
use rand::SeedableRng;

/// A model with a container (a residual block, whose layers sit at paths like `2.branch.0`).
fn model() -> Sequential<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    Sequential::builder(5)
        .dense(6, Tanh)
        .residual(|b| b.dense(6, Tanh).linear(6))
        .linear(2)
        .build(&mut rng)
        .unwrap()
}

fn batch(step: usize) -> (Array2<f64>, Array2<f64>) {
    let x = Array2::from_shape_fn((4, 5), |(i, j)| ((i * 5 + j + step) % 7) as f64 / 3.0 - 1.0);
    let grad = Array2::from_shape_fn((4, 2), |(i, j)| ((i + 3 * j + step) % 5) as f64 / 4.0 - 0.5);
    (x, grad)
}

fn forward_backward(net: &mut Network<f64>, step: usize) {
    let (x, grad) = batch(step);
    net.zero_grad();
    net.forward(x.view(), Mode::Train).unwrap();
    net.backward(grad.view()).unwrap();
}

/// Every parameter's value, by name.
fn values(net: &Network<f64>) -> Vec<(String, Vec<f64>)> {
    net.named_parameters().into_iter().map(|(name, p)| (name, p.value.iter().copied().collect())).collect()
}

/// A custom optimizer that only implements `step`: it gets the provided `step_observed`.
struct HalfGradient;

impl Optimizer<f64> for HalfGradient {
    fn name(&self) -> &'static str {
        "half"
    }
    fn step(&mut self, model: &mut dyn Layer<f64>) -> gradflow::Result<()> {
        model.visit_parameters_mut(&mut |mut p| {
            let step = p.grad.mapv(|g| -0.5 * g);
            p.value += &step;
        });
        Ok(())
    }
    fn learning_rate(&self) -> f64 {
        0.5
    }
    fn set_learning_rate(&mut self, _: f64) -> gradflow::Result<()> {
        Ok(())
    }
}

#[test]
fn update_events_carry_each_parameters_distance_for_every_optimizer() {
    let optimizers: Vec<(&str, Box<dyn Optimizer<f64>>)> = vec![
        ("sgd", Box::new(SgdConfig::new(0.1).build().unwrap())),
        (
            "sgd+momentum+decay",
            Box::new(SgdConfig::new(0.1).momentum(0.9).weight_decay(0.01).build().unwrap()),
        ),
        ("adam", Box::new(AdamConfig::new(0.01).build().unwrap())),
        ("rmsprop", Box::new(RmsPropConfig::new(0.01).momentum(0.5).centered(true).build().unwrap())),
        ("custom", Box::new(HalfGradient)),
    ];
    for (label, mut optimizer) in optimizers {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut net = Network::new(model());
        let sink = seen.clone();
        net.attach_hook(WithUpdates(move |event: &mut Event<'_, f64>| {
            if let Event::Update(e) = event {
                let mut sink = sink.lock().unwrap();
                sink.extend(e.updates.iter().map(|u| (e.step, format!("{}.{}", e.path, u.name), u.norm)));
            }
        }));
        for step in 0..3 {
            forward_backward(&mut net, step);
            let before = values(&net);
            seen.lock().unwrap().clear();
            net.step(optimizer.as_mut()).unwrap();
            let after = values(&net);
            let seen = seen.lock().unwrap();
            let names: Vec<&str> = seen.iter().map(|(_, name, _)| name.as_str()).collect();
            let expected_names: Vec<&str> = before.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(names, expected_names, "{label}: one entry per parameter, in order");
            assert!(names.contains(&"2.branch.0.weight"), "{label}: {names:?}");
            for ((event_step, name, norm), ((_, old), (_, new))) in seen.iter().zip(before.iter().zip(&after))
            {
                assert_eq!(*event_step, step as u64, "{label} {name}: the step of the applied gradients");
                let expected = old.iter().zip(new).map(|(a, b)| (b - a).powi(2)).sum::<f64>().sqrt();
                assert!(expected > 0.0, "{label} {name}: the parameter moved");
                assert!(
                    relative_eq!(*norm, expected, epsilon = 0.0, max_relative = 1e-12),
                    "{label} {name} step {step}: reported {norm}, measured {expected}"
                );
            }
        }
    }
}

#[test]
fn plain_closures_and_networks_without_hooks_step_without_measuring() {
    let events = Arc::new(Mutex::new(0usize));
    let counter = events.clone();
    let mut observed = Network::new(model());
    observed.attach_hook(move |event: &mut Event<'_, f64>| {
        if matches!(event, Event::Update(_)) {
            *counter.lock().unwrap() += 1;
        }
    });
    let mut bare = Network::new(model());
    let (mut sgd_a, mut sgd_b) = (SgdConfig::new(0.1).build().unwrap(), SgdConfig::new(0.1).build().unwrap());
    for step in 0..2 {
        forward_backward(&mut observed, step);
        forward_backward(&mut bare, step);
        observed.step(&mut sgd_a).unwrap();
        bare.step(&mut sgd_b).unwrap();
    }
    assert_eq!(*events.lock().unwrap(), 0, "a plain closure does not ask for update events");
    assert_eq!(values(&observed), values(&bare), "the same updates either way");
}

/// Builds a fresh optimizer.
type MakeOptimizer = fn() -> Box<dyn Optimizer<f64>>;

/// Trains with a recorder attached, stepping either through the network (update events) or
/// directly (the recorder's snapshots); returns the recording.
fn recorded(through_network: bool, optimizer: &mut dyn Optimizer<f64>) -> Recording {
    let mut net = Network::new(model());
    let recorder = net.attach_hook(Recorder::new(RecorderConfig::all()).unwrap());
    for step in 0..4 {
        forward_backward(&mut net, step);
        if through_network {
            net.step(optimizer).unwrap();
        } else {
            optimizer.step(net.model_mut()).unwrap();
        }
    }
    // A last forward pass: the snapshot method measures step 3's update there.
    net.forward(batch(4).0.view(), Mode::Train).unwrap();
    net.detach_hook(recorder).unwrap().into_recording()
}

#[test]
fn recorder_ratios_from_update_events_match_its_snapshots() {
    let mut checked = 0;
    let optimizers: [MakeOptimizer; 3] = [
        || Box::new(SgdConfig::new(0.1).build().unwrap()),
        || Box::new(SgdConfig::new(0.1).momentum(0.9).build().unwrap()),
        || Box::new(AdamConfig::new(0.01).build().unwrap()),
    ];
    for make in optimizers {
        let (events, snapshots) = (recorded(true, make().as_mut()), recorded(false, make().as_mut()));
        for (a, b) in events.layers.iter().zip(&snapshots.layers) {
            assert_eq!(a.path, b.path);
            for (sa, sb) in a.steps.iter().zip(&b.steps) {
                for (pa, pb) in sa.params.iter().zip(&sb.params) {
                    assert_eq!(pa.value_norm, pb.value_norm, "{} step {}: ‖W‖", a.path, sa.step);
                    let (ra, rb) = (pa.update_to_value_ratio.unwrap(), pb.update_to_value_ratio.unwrap());
                    assert!(
                        relative_eq!(ra, rb, epsilon = 0.0, max_relative = 1e-12),
                        "{} {} step {}: {ra} vs {rb}",
                        a.path,
                        pa.name,
                        sa.step
                    );
                    checked += 1;
                }
            }
        }
    }
    // 3 optimizers, 4 Linear layers with weight and bias, 4 steps.
    assert_eq!(checked, 3 * 4 * 2 * 4);
}
