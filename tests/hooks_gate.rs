//! Gates computed inside a layer reach the hooks: a highway layer's `T(x)` in forward and
//! `dL/dT` in backward (`Event::Gate`), checked against the definition and, in f64, against
//! finite differences.

use gradflow::activation::{Relu, Tanh};
use gradflow::hooks::{Direction, Event, GateFunction, Recorder};
use gradflow::{Act, Error, Highway, Linear, Mode, Network, Sequential};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `0` Highway(4, tanh), `1` Linear(4→3), `2` tanh, `3` Linear(3→2).
fn network() -> Network<f64> {
    let mut rng = StdRng::seed_from_u64(21);
    let model = Sequential::builder(4).highway(Tanh, -0.5).dense(3, Tanh).linear(2).build(&mut rng).unwrap();
    Network::new(model)
}

fn input() -> Array2<f64> {
    Array2::from_shape_fn((5, 4), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 2.0 - 1.5)
}

/// dL/dy of `L = Σ G ⊙ y`.
fn grad_output() -> Array2<f64> {
    Array2::from_shape_fn((5, 2), |(i, j)| 0.3 * i as f64 - 0.7 * j as f64 + 0.2)
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// What one observed step of [`network`] shows: the highway layer's input and `H(x)`, the gate
/// events, and dL/d(W_T x + b_T) from the gate child's backward event.
#[derive(Default)]
struct Seen {
    x: Option<Array2<f64>>,
    h: Option<Array2<f64>>,
    forward_gate: Option<Array2<f64>>,
    backward_gate: Option<(Array2<f64>, Array2<f64>)>,
    grad_t_pre: Option<Array2<f64>>,
    gate_events: Vec<(String, Direction, Option<usize>)>,
}

fn observe(net: &mut Network<f64>) -> Seen {
    let mut seen = Seen::default();
    let (result, _) = net.with_hook(
        |event: &mut Event<'_, f64>| match event {
            Event::Forward(e) if e.path == "0" => seen.x = Some(e.input.to_owned()),
            Event::Forward(e) if e.path == "0.activation" => seen.h = Some(e.output.to_owned()),
            Event::Backward(e) if e.path == "0.gate" => seen.grad_t_pre = Some(e.grad_output.to_owned()),
            Event::Gate(g) => {
                assert_eq!((g.gate.name, g.gate.function), ("T", GateFunction::Sigmoid));
                assert!(g.layer.downcast_ref::<Highway<f64>>().is_some());
                seen.gate_events.push((g.path.to_string(), g.pass, g.layer_number));
                match g.pass {
                    Direction::Forward => {
                        assert!(g.grad.is_none());
                        seen.forward_gate = Some(g.value.to_owned());
                    }
                    Direction::Backward => {
                        let grad = g.grad.expect("dL/dT in backward").to_owned();
                        seen.backward_gate = Some((g.value.to_owned(), grad));
                    }
                }
            }
            _ => {}
        },
        |net| {
            net.forward(input().view(), Mode::Train)?;
            net.backward(grad_output().view())
        },
    );
    result.unwrap();
    seen
}

#[test]
fn the_gate_shown_to_hooks_is_sigma_of_the_gate_pre_activation() {
    let mut net = network();
    let seen = observe(&mut net);
    assert_eq!(
        seen.gate_events,
        [("0".to_string(), Direction::Forward, Some(1)), ("0".to_string(), Direction::Backward, Some(1))]
    );
    let x = seen.x.unwrap();
    let highway = net.layer::<Highway<f64>>("0").unwrap();
    let z = x.dot(&highway.gate().weight().t()) + highway.gate().bias().unwrap();
    let expected = z.mapv(sigmoid);
    let t = seen.forward_gate.unwrap();
    assert_eq!(t.dim(), (5, 4));
    for (got, want) in t.iter().zip(&expected) {
        assert!((got - want).abs() < 1e-14, "{got} vs {want}");
    }
    assert_eq!(t, seen.backward_gate.unwrap().0);
    assert_eq!(t, highway.last_gate());
}

#[test]
fn the_gate_gradient_matches_finite_differences_in_f64() {
    let mut net = network();
    let seen = observe(&mut net);
    let (x, h, t) = (seen.x.unwrap(), seen.h.unwrap(), seen.forward_gate.unwrap());
    let (_, grad_t) = seen.backward_gate.unwrap();

    // The layers above the highway layer, as a network of their own (same weights).
    let mut above = Sequential::<f64>::new();
    above.push(net.layer::<Linear<f64>>("1").unwrap().clone());
    above.push(Act::new(Tanh));
    above.push(net.layer::<Linear<f64>>("3").unwrap().clone());
    let mut above = Network::new(above);
    let g = grad_output();
    // L(T) = Σ G ⊙ above(x + T ⊙ (H − x)), with x and H held fixed.
    let mut loss = |t: &Array2<f64>| {
        let y = &x + &(t * &(&h - &x));
        (&above.forward(y.view(), Mode::Eval).unwrap() * &g).sum()
    };
    let y = net.forward(input().view(), Mode::Eval).unwrap().to_owned();
    let direct = (&y * &g).sum();
    assert!((loss(&t) - direct).abs() < 1e-12, "{} vs {direct}", loss(&t));

    // The crate's gradient-check convention (gradflow::gradcheck::GradCheckConfig's defaults):
    // central differences with step 1e-5, relative error |a − n| / max(|a|, |n|, 1e-3).
    let eps = 1e-5;
    let mut worst: f64 = 0.0;
    for index in ndarray::indices(t.dim()) {
        let (mut plus, mut minus) = (t.clone(), t.clone());
        plus[index] += eps;
        minus[index] -= eps;
        let numeric = (loss(&plus) - loss(&minus)) / (2.0 * eps);
        let analytic = grad_t[index];
        let error = (numeric - analytic).abs() / numeric.abs().max(analytic.abs()).max(1e-3);
        worst = worst.max(error);
        assert!(error < 1e-6, "dL/dT at {index:?}: hook {analytic}, finite differences {numeric}");
    }
    assert!(grad_t.iter().any(|&d| d.abs() > 1e-3), "a trivial gradient tests nothing: {grad_t}");
    assert!(worst < 1e-6);

    // The chain rule through the sigmoid gives the gradient the gate's linear part received.
    let grad_t_pre = seen.grad_t_pre.unwrap();
    for ((dt, t), dz) in grad_t.iter().zip(&t).zip(&grad_t_pre) {
        assert!((dt * t * (1.0 - t) - dz).abs() < 1e-14, "{dt} · T(1 − T) vs {dz}");
    }
}

#[test]
fn every_highway_layer_shows_its_gate_in_order_alongside_a_recorder() {
    let mut rng = StdRng::seed_from_u64(5);
    let model =
        Sequential::<f32>::builder(6).repeat_highway(3, Relu, -2.0).linear(2).build(&mut rng).unwrap();
    let mut net = Network::new(model);
    let recorder = net.attach_hook(Recorder::default());
    let mut order = Vec::new();
    for _ in 0..2 {
        let (result, _) = net.with_hook(
            |event: &mut Event<'_, f32>| {
                if let Event::Gate(g) = event {
                    assert!(g.value.iter().all(|&t| t > 0.0 && t < 1.0));
                    order.push(format!("{}{}", if g.pass == Direction::Forward { "F" } else { "B" }, g.path));
                }
            },
            |net| {
                net.forward(Array2::ones((3, 6)).view(), Mode::Train)?;
                net.backward(Array2::ones((3, 2)).view())
            },
        );
        result.unwrap();
    }
    assert_eq!(order, ["F0", "F1", "F2", "B2", "B1", "B0"].repeat(2));
    assert!(!net.hook(recorder).unwrap().recording().layers.is_empty());
}

#[test]
fn a_hook_that_aborts_at_a_gate_stops_the_pass_naming_the_layer() {
    let mut rng = StdRng::seed_from_u64(6);
    let model = Sequential::<f32>::builder(3).repeat_highway(2, Relu, -2.0).build(&mut rng).unwrap();
    let mut net = Network::new(model);
    net.attach_hook(|event: &mut Event<'_, f32>| {
        if let Event::Gate(g) = event
            && g.path == "1"
        {
            let path = g.path.to_string();
            event.abort(Error::Hook { path, reason: "gate too open".into() });
        }
    });
    let err = net.forward(Array2::ones((2, 3)).view(), Mode::Train).unwrap_err();
    assert!(matches!(&err, Error::Hook { path, .. } if path == "1"), "{err}");
    assert!(err.to_string().contains("gate too open"), "{err}");
}

#[test]
fn the_recorder_keeps_the_gates_and_the_diagnosis_and_json_lines_carry_them() {
    use gradflow::export::{parse_recording_jsonl, recording_to_jsonl};
    use gradflow::hooks::TensorStats;
    // The same step seen by a plain hook, then by a recorder (the network computes the same).
    let seen = observe(&mut network());
    let (t, dt) = seen.backward_gate.unwrap();
    let mut net = network();
    let (result, recorder) = net.with_hook(Recorder::default(), |net| {
        net.forward(input().view(), Mode::Train)?;
        net.backward(grad_output().view())
    });
    result.unwrap();
    let recording = recorder.into_recording();
    let record = recording.layer("0").unwrap().at_step(0).unwrap();
    assert_eq!(record.gates.len(), 1);
    let gate = &record.gates[0];
    assert_eq!(gate.name, "T");
    let expected = TensorStats::of_array(&t.view());
    assert!((gate.value.mean - expected.mean).abs() < 1e-12 && gate.value.count == 20, "{gate:?}");
    let grad_norm = dt.iter().map(|g| g * g).sum::<f64>().sqrt();
    assert!((gate.grad.unwrap().l2_norm - grad_norm).abs() < 1e-12);
    // With gradient statistics only, the backward pass records the gate and its gradient.
    let mut net = network();
    let gradients = Recorder::new(gradflow::hooks::RecorderConfig::gradients()).unwrap();
    let (result, lean) = net.with_hook(gradients, |net| {
        net.forward(input().view(), Mode::Train)?;
        net.backward(grad_output().view())
    });
    result.unwrap();
    let lean = lean.into_recording();
    assert_eq!(&lean.layer("0").unwrap().at_step(0).unwrap().gates, &record.gates);
    // No other layer has gates.
    assert!(
        recording.layers.iter().filter(|l| l.path != "0").all(|l| l.steps.iter().all(|s| s.gates.is_empty()))
    );

    // The hidden layer of the highway shows the mean gate; the others none.
    let layers = recording.hidden_layers(0);
    assert!((layers[0].gate_mean.unwrap() - expected.mean).abs() < 1e-12);
    assert!(layers[1..].iter().all(|l| l.gate_mean.is_none()));

    // Written as JSON lines and read back; a line without `gates` (an older file, or the
    // Python recorder's) reads as no gates.
    let text = recording_to_jsonl(&recording).unwrap();
    assert_eq!(text.matches("\"gates\"").count(), 1);
    assert_eq!(parse_recording_jsonl(&text, "run").unwrap(), recording);
    let bad = text.replace("\"gates\":[{\"name\":\"T\"", "\"gates\":[{\"name\":7");
    let err = parse_recording_jsonl(&bad, "run").unwrap_err().to_string();
    assert!(err.contains("gates[0].name"), "{err}");
}

#[test]
fn a_closed_highway_stack_records_gates_near_sigma_of_the_bias() {
    // Gate bias −4 with zero gate weights: T = σ(−4) ≈ 0.018 at every unit — the layers carry.
    let mut rng = StdRng::seed_from_u64(3);
    let mut model =
        Sequential::<f64>::builder(6).repeat_highway(3, Relu, -4.0).linear(2).build(&mut rng).unwrap();
    for i in 0..3 {
        let highway: &mut Highway<f64> = model.layer_mut(&i.to_string()).unwrap();
        highway.gate_mut().weight_mut().fill(0.0);
    }
    let mut net = Network::new(model);
    let (result, recorder) = net.with_hook(Recorder::default(), |net| {
        net.forward(Array2::ones((4, 6)).view(), Mode::Train)?;
        net.backward(Array2::ones((4, 2)).view())
    });
    result.unwrap();
    let layers = recorder.recording().hidden_layers(0);
    for layer in &layers[..3] {
        assert!((layer.gate_mean.unwrap() - sigmoid(-4.0)).abs() < 1e-12, "{:?}", layer.gate_mean);
    }
    // The table shows a gate column, with `-` for the output layer.
    let diagnosis = gradflow::diagnose::diagnose(recorder.recording(), &Default::default()).unwrap();
    let table = gradflow::report::table::render(&diagnosis);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[1].contains("gate") && lines[2].contains("0.018") && lines[5].contains("  -  "), "{table}");
}
