//! Sequential, Network and the hook API working together.

use approx::{abs_diff_eq, relative_eq};
use gradflow::activation::Tanh;
use gradflow::gradcheck::{GradCheckConfig, check_layer};
use gradflow::hooks::Event;
use gradflow::{Error, Linear, Mode, Network, Sequential};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn small_model<F: gradflow::Float>(seed: u64) -> Sequential<F> {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::builder(5).dense(7, Tanh).dense(6, Tanh).linear(3).build(&mut rng).unwrap()
}

fn input(rows: usize, cols: usize) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 3.0 - 1.0)
}

#[test]
fn sequential_passes_the_gradient_check() {
    let mut model = small_model::<f64>(1);
    let report = check_layer(&mut model, &input(4, 5), GradCheckConfig::default()).unwrap();
    // input + 3 × (weight, bias)
    assert_eq!(report.tensors.len(), 7);
    assert_eq!(report.tensors[1].name, "0.weight");
    assert_eq!(report.tensors[6].name, "4.bias");
    report.within(1e-6).unwrap();
}

#[test]
fn a_shape_error_deep_in_the_model_names_the_layer_path() {
    let mut net = Network::new(small_model::<f32>(2));
    let err = net.forward(Array2::zeros((2, 4)).view(), Mode::Train).unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("0: Linear(5→7)"), "{message}");
    assert!(message.contains("(2, 4)"), "{message}");

    // A mismatch between two hand-assembled layers names the second one.
    let mut rng = StdRng::seed_from_u64(0);
    let mut model = Sequential::<f32>::new();
    model.push(Linear::new(5, 7, &mut rng).unwrap()).push(Linear::new(8, 2, &mut rng).unwrap());
    let err = model.check(5).unwrap_err().to_string();
    assert!(err.starts_with("1: Linear(8→2)"), "{err}");
}

#[test]
fn backward_before_forward_and_wrong_gradient_shape_are_errors() {
    let mut net = Network::new(small_model::<f32>(3));
    let err = net.backward(Array2::zeros((2, 3)).view()).unwrap_err();
    assert!(matches!(err, Error::BackwardBeforeForward { .. }), "{err}");
    net.forward(Array2::zeros((2, 5)).view(), Mode::Train).unwrap();
    let err = net.backward(Array2::zeros((2, 4)).view()).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
}

#[test]
fn the_network_input_gradient_matches_finite_differences() {
    let mut net = Network::new(small_model::<f64>(4));
    let x = input(3, 5);
    net.forward(x.view(), Mode::Train).unwrap();
    let ones = Array2::ones((3, 3));
    let grad = net.backward_with_input_grad(ones.view()).unwrap().to_owned();
    let eps = 1e-6;
    for (index, analytic) in grad.iter().enumerate() {
        let mut plus = x.clone();
        plus.as_slice_mut().unwrap()[index] += eps;
        let mut minus = x.clone();
        minus.as_slice_mut().unwrap()[index] -= eps;
        let f_plus = net.forward(plus.view(), Mode::Eval).unwrap().sum();
        let f_minus = net.forward(minus.view(), Mode::Eval).unwrap().sum();
        let numeric = (f_plus - f_minus) / (2.0 * eps);
        assert!(abs_diff_eq!(*analytic, numeric, epsilon = 1e-7), "entry {index}: {analytic} vs {numeric}");
    }
}

#[test]
fn hooks_see_each_layer_once_in_documented_order() {
    let mut net = Network::new(small_model::<f64>(5));
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = log.clone();
    let handle = net.attach_hook(move |event: &mut Event<'_, f64>| {
        let direction = match event {
            Event::Forward(_) => "fwd",
            Event::Backward(_) => "bwd",
            _ => "other",
        };
        sink.lock().unwrap().push(format!("{direction} {} {}", event.path(), event.kind()));
    });
    net.forward(input(2, 5).view(), Mode::Train).unwrap();
    net.backward(Array2::ones((2, 3)).view()).unwrap();
    let expected = [
        "fwd 0 Linear",
        "fwd 1 tanh",
        "fwd 2 Linear",
        "fwd 3 tanh",
        "fwd 4 Linear",
        "bwd 4 Linear",
        "bwd 3 tanh",
        "bwd 2 Linear",
        "bwd 1 tanh",
        "bwd 0 Linear",
    ];
    assert_eq!(*log.lock().unwrap(), expected);

    // Removed hooks see nothing more.
    assert!(net.detach_hook(handle).is_some());
    net.forward(input(2, 5).view(), Mode::Train).unwrap();
    assert_eq!(log.lock().unwrap().len(), expected.len());
}

/// A user-defined hook type that collects the paths it sees.
#[derive(Default)]
struct PathLog(Vec<String>);

impl gradflow::hooks::Hook<f64> for PathLog {
    fn on_event(&mut self, event: &mut Event<'_, f64>) {
        self.0.push(event.path().to_string());
    }
}

#[test]
fn a_typed_hook_is_read_back_through_its_handle() {
    let mut net = Network::new(small_model::<f64>(6));
    let handle = net.attach_hook(PathLog::default());
    net.forward(input(2, 5).view(), Mode::Train).unwrap();
    assert_eq!(net.hook(handle).unwrap().0.len(), 5);
    let collected = net.detach_hook(handle).unwrap();
    assert_eq!(collected.0, ["0", "1", "2", "3", "4"]);
    assert!(net.hook(handle).is_none());
}

fn gradients(net: &Network<f64>) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    net.visit_parameters(&mut |p| out.push(p.grad.iter().copied().collect()));
    out
}

#[test]
fn observing_does_not_change_gradients_and_a_modifying_hook_reaches_the_layers_below() {
    let x = input(4, 5);
    let g = Array2::from_elem((4, 3), 0.5);
    type BoxedHook = Box<dyn FnMut(&mut Event<'_, f64>) + Send>;
    let run = |hook: Option<BoxedHook>| {
        let mut net = Network::new(small_model::<f64>(7));
        if let Some(hook) = hook {
            net.attach_hook(hook);
        }
        net.forward(x.view(), Mode::Train).unwrap();
        net.backward(g.view()).unwrap();
        gradients(&net)
    };
    let plain = run(None);
    let observed = run(Some(Box::new(|e: &mut Event<'_, f64>| {
        let _ = e.path();
    })));
    assert_eq!(plain, observed, "observing must be bit-identical");

    // Doubling the gradient leaving layer 2 doubles every gradient below it and nothing above.
    let doubled = run(Some(Box::new(|e: &mut Event<'_, f64>| {
        if let Event::Backward(b) = e
            && b.path == "2"
        {
            b.grad_input_mut().unwrap().mapv_inplace(|v| 2.0 * v);
        }
    })));
    // parameters: 0.weight 0.bias 2.weight 2.bias 4.weight 4.bias
    for (i, (a, b)) in plain.iter().zip(&doubled).enumerate() {
        let factor = if i < 2 { 2.0 } else { 1.0 };
        for (x, y) in a.iter().zip(b) {
            assert!(
                relative_eq!(x * factor, *y, epsilon = 1e-12, max_relative = 1e-12),
                "param {i}: {x} vs {y}"
            );
        }
    }
}

#[test]
fn a_replacement_gradient_of_the_wrong_shape_fails_the_pass_naming_the_layer() {
    let mut net = Network::new(small_model::<f64>(8));
    net.attach_hook(|e: &mut Event<'_, f64>| {
        if let Event::Backward(b) = e
            && b.path == "2"
        {
            let _ = b.set_grad_input(Array2::zeros((1, 1)).view());
        }
    });
    net.forward(input(2, 5).view(), Mode::Train).unwrap();
    let err = net.backward(Array2::ones((2, 3)).view()).unwrap_err();
    match err {
        Error::Hook { path, reason } => {
            assert_eq!(path, "2");
            assert!(reason.contains("(1, 1)") && reason.contains("(2, 7)"), "{reason}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_panicking_hook_becomes_an_error_naming_the_layer() {
    let mut net = Network::new(small_model::<f64>(9));
    net.attach_hook(|e: &mut Event<'_, f64>| {
        if e.path() == "3" {
            panic!("boom");
        }
    });
    let err = net.forward(input(2, 5).view(), Mode::Train).unwrap_err();
    match err {
        Error::Hook { path, reason } => {
            assert_eq!(path, "3");
            assert!(reason.contains("boom"), "{reason}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn layers_are_reachable_by_index_and_path_and_parameters_by_name() {
    let mut net = Network::new(small_model::<f32>(10));
    assert_eq!(net.model().get(2).unwrap().describe(), "Linear(7→6)");
    assert_eq!(net.model().layer_at("4").unwrap().kind(), "Linear");
    assert!(net.model().layer_at("9").is_none());
    assert!(net.model_mut().layer_at_mut("1").is_some());
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]);
    assert_eq!(net.num_parameters(), 5 * 7 + 7 + 7 * 6 + 6 + 6 * 3 + 3);
}

#[test]
fn buffers_are_named_by_path_through_containers() {
    use gradflow::{BufferView, named_buffers};
    let mut rng = StdRng::seed_from_u64(11);
    let model = Sequential::<f32>::builder(4)
        .batch_norm()
        .residual(|b| b.linear(4).batch_norm().activation(Tanh))
        .build(&mut rng)
        .unwrap();
    let names: Vec<String> = named_buffers(&model).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "0.running_mean",
            "0.running_var",
            "0.num_batches_tracked",
            "1.branch.1.running_mean",
            "1.branch.1.running_var",
            "1.branch.1.num_batches_tracked"
        ]
    );
    let mut net = Network::new(model);
    net.forward(input(3, 4).mapv(|v| v as f32).view(), Mode::Train).unwrap();
    let counts: Vec<u64> = named_buffers(net.model())
        .into_iter()
        .filter_map(|(_, b)| match b {
            BufferView::Count { value, .. } => Some(value),
            _ => None,
        })
        .collect();
    assert_eq!(counts, [1, 1]);
}
