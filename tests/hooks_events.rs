//! Hook mechanics: event order, modifying hooks, handles, and hooks that fail.

mod diagnose_support;

use std::sync::{Arc, Mutex};

use diagnose_support::{mse_grad, normal, rng};
use gradflow::activation::{Relu, Tanh};
use gradflow::hooks::{Event, Recorder};
use gradflow::{Error, Mode, Network, Sequential};
use ndarray::{Array2, ArrayViewMut2};

/// Linear, tanh, ResidualBlock(branch: Linear + relu), Linear.
fn nested_model() -> Sequential<f32> {
    let mut rng = rng(3);
    Sequential::builder(4).dense(8, Tanh).residual(|b| b.dense(8, Relu)).linear(3).build(&mut rng).unwrap()
}

fn mlp(seed: u64) -> Sequential<f32> {
    Sequential::builder(4).dense(8, Tanh).dense(8, Tanh).linear(3).build(&mut rng(seed)).unwrap()
}

type Log = Arc<Mutex<Vec<String>>>;

fn logger(log: &Log) -> impl FnMut(&mut Event<'_, f32>) + Send + 'static {
    let log = log.clone();
    move |event: &mut Event<'_, f32>| {
        let direction = match event {
            Event::Forward(_) => "F",
            _ => "B",
        };
        log.lock().unwrap().push(format!("{direction} {} {}", event.path(), event.kind()));
    }
}

fn step(net: &mut Network<f32>, seed: u64) -> gradflow::Result<()> {
    let mut rng = rng(seed);
    let x = normal(&mut rng, 5, 4);
    let t = normal(&mut rng, 5, 3);
    let y = net.forward(x.view(), Mode::Train)?.to_owned();
    net.backward(mse_grad(y.view(), t.view()).view())
}

#[test]
fn events_arrive_once_per_layer_children_first_forward_then_top_down() {
    let mut net = Network::new(nested_model());
    let log: Log = Arc::default();
    net.attach_hook(logger(&log));
    step(&mut net, 1).unwrap();
    let expected = [
        "F 0 Linear",
        "F 1 tanh",
        "F 2.branch.0 Linear",
        "F 2.branch.1 relu",
        "F 2.branch Sequential",
        "F 2 Residual",
        "F 3 Linear",
        "B 3 Linear",
        "B 2.branch.1 relu",
        "B 2.branch.0 Linear",
        "B 2.branch Sequential",
        "B 2 Residual",
        "B 1 tanh",
        "B 0 Linear",
    ];
    assert_eq!(*log.lock().unwrap(), expected);
}

#[test]
fn the_recording_lists_layers_in_first_forward_order_with_depth_and_containers() {
    let mut net = Network::new(nested_model());
    let handle = net.attach_hook(Recorder::default());
    step(&mut net, 1).unwrap();
    let recording = net.detach_hook(handle).unwrap().into_recording();
    let rows: Vec<(&str, usize, bool)> =
        recording.layers.iter().map(|l| (l.path.as_str(), l.depth, l.is_container)).collect();
    assert_eq!(
        rows,
        [
            ("0", 0, false),
            ("1", 0, false),
            ("2.branch.0", 2, false),
            ("2.branch.1", 2, false),
            ("2.branch", 1, true),
            ("2", 0, true),
            ("3", 0, false)
        ]
    );
    // Parameters are recorded under their leaves only, never twice.
    assert_eq!(recording.layer("2.branch.0").unwrap().at_step(0).unwrap().params.len(), 2);
    assert!(recording.layer("2").unwrap().at_step(0).unwrap().params.is_empty());
    assert_eq!(recording.layer("1").unwrap().activation.as_ref().unwrap().name, "tanh");
}

/// Multiplies the gradient that layer `path` sends below by `factor`.
fn scale_below(path: &'static str, factor: f32) -> impl FnMut(&mut Event<'_, f32>) + Send + 'static {
    move |event: &mut Event<'_, f32>| {
        if let Event::Backward(e) = event
            && e.path == path
        {
            let mut g: ArrayViewMut2<'_, f32> = e.grad_input_mut().unwrap();
            g *= factor;
        }
    }
}

fn grads(net: &Network<f32>) -> Vec<(String, Vec<f32>)> {
    net.named_parameters().into_iter().map(|(n, p)| (n, p.grad.iter().copied().collect())).collect()
}

#[test]
fn a_modifying_hook_reaches_the_layers_below_and_only_them() {
    let mut plain = Network::new(mlp(5));
    step(&mut plain, 9).unwrap();
    let mut hooked = Network::new(mlp(5));
    hooked.attach_hook(scale_below("2", 2.0));
    step(&mut hooked, 9).unwrap();
    for ((name, base), (_, scaled)) in grads(&plain).into_iter().zip(grads(&hooked)) {
        // Layer 2 and above are untouched; layer 0, below the hook, gets exactly twice the
        // gradient (scaling by 2 is exact in floating point).
        let factor = if name.starts_with("0.") { 2.0 } else { 1.0 };
        let expected: Vec<f32> = base.iter().map(|g| g * factor).collect();
        assert_eq!(scaled, expected, "{name}");
    }
}

#[test]
fn a_modifying_hook_changes_the_parameter_updates() {
    let sgd = |net: &mut Network<f32>| {
        net.visit_parameters_mut(&mut |mut p| {
            let step = p.grad.mapv(|g| -0.1 * g);
            p.value += &step;
        })
    };
    let before = Network::new(mlp(5));
    let weights = |net: &Network<f32>, layer: &str| {
        net.named_parameters().into_iter().find(|(n, _)| n == layer).unwrap().1.value.to_owned()
    };
    let mut hooked = Network::new(mlp(5));
    hooked.attach_hook(scale_below("2", 0.0));
    step(&mut hooked, 9).unwrap();
    sgd(&mut hooked);
    assert_eq!(
        weights(&hooked, "0.weight"),
        weights(&before, "0.weight"),
        "zeroed gradient: no update below"
    );
    assert_ne!(weights(&hooked, "2.weight"), weights(&before, "2.weight"), "layer 2 itself still learns");
    assert_ne!(weights(&hooked, "4.weight"), weights(&before, "4.weight"));
}

#[test]
fn a_recorder_after_a_modifying_hook_sees_the_modified_gradient() {
    let mut net = Network::new(mlp(5));
    net.attach_hook(scale_below("2", 0.0));
    let handle = net.attach_hook(Recorder::default());
    step(&mut net, 9).unwrap();
    let recording = net.detach_hook(handle).unwrap().into_recording();
    let at = |path: &str| recording.layer(path).unwrap().at_step(0).unwrap().clone();
    assert_eq!(at("2").grad_input.unwrap().l2_norm, 0.0);
    assert_eq!(at("1").grad_output.unwrap().l2_norm, 0.0);
    assert!(at("2").grad_output.unwrap().l2_norm > 0.0);
}

#[test]
fn handles_remove_hooks_and_give_back_what_they_collected() {
    let mut net = Network::new(mlp(1));
    let log: Log = Arc::default();
    let handle = net.attach_hook(logger(&log));
    let counter = net.attach_hook(Recorder::default());
    step(&mut net, 2).unwrap();
    assert_eq!(log.lock().unwrap().len(), 10);
    assert!(net.detach_hook(handle).is_some());
    assert!(net.detach_hook(handle).is_none(), "a hook is removed once");
    step(&mut net, 3).unwrap();
    assert_eq!(log.lock().unwrap().len(), 10, "a removed hook sees nothing");
    let recorder = net.detach_hook(counter).unwrap();
    assert_eq!(recorder.recording().steps(), [0, 1]);
    step(&mut net, 4).unwrap();
    assert_eq!(recorder.recording().steps(), [0, 1]);

    // with_hook: attached for the closure only.
    let (result, recorder) = net.with_hook(Recorder::default(), |net| step(net, 5));
    result.unwrap();
    assert_eq!(recorder.recording().steps(), [3]);
}

#[test]
fn a_panicking_hook_stops_the_pass_with_an_error_naming_the_layer() {
    let mut net = Network::new(mlp(1));
    net.attach_hook(|event: &mut Event<'_, f32>| {
        if matches!(event, Event::Backward(_)) && event.path() == "2" {
            panic!("boom");
        }
    });
    let err = step(&mut net, 2).unwrap_err();
    match &err {
        Error::Hook { path, reason } => {
            assert_eq!(path, "2");
            assert!(reason.contains("boom") && reason.contains("zero_grad"), "{reason}");
        }
        other => panic!("expected a hook error, got {other}"),
    }
    assert_eq!(net.step_count(), 0, "the failed step is not counted");
}

#[test]
fn a_replacement_gradient_of_the_wrong_shape_is_an_error_naming_the_layer() {
    let mut net = Network::new(mlp(1));
    net.attach_hook(|event: &mut Event<'_, f32>| {
        if let Event::Backward(e) = event
            && e.path == "2"
        {
            let wrong = Array2::<f32>::zeros((5, 3));
            assert!(e.set_grad_input(wrong.view()).is_err());
        }
    });
    let err = step(&mut net, 2).unwrap_err();
    let text = err.to_string();
    assert!(matches!(&err, Error::Hook { path, .. } if path == "2"), "{text}");
    assert!(text.contains("(5, 3)") && text.contains("(5, 8)"), "{text}");
}

#[test]
fn a_hook_can_abort_a_pass_with_its_own_error() {
    let mut net = Network::new(mlp(1));
    let seen: Log = Arc::default();
    net.attach_hook(|event: &mut Event<'_, f32>| {
        if matches!(event, Event::Forward(_)) && event.path() == "1" {
            event.abort(Error::config("test hook", "path", "refuses layer 1"));
        }
    });
    // A hook attached after the aborting one still sees the event, then the pass stops.
    net.attach_hook(logger(&seen));
    let err = net.forward(Array2::zeros((2, 4)).view(), Mode::Train).unwrap_err();
    assert!(err.to_string().contains("refuses layer 1"), "{err}");
    assert_eq!(*seen.lock().unwrap(), ["F 0 Linear", "F 1 tanh"]);
    let err = net.backward(Array2::zeros((2, 3)).view()).unwrap_err();
    assert!(matches!(err, Error::BackwardBeforeForward { .. }), "{err}");
}
