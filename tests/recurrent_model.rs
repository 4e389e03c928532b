//! Recurrent layers inside networks: PyTorch names, readouts, per-time-step hook events, and
//! training with the crate's Loss / Optimizer interfaces.

use approx::assert_abs_diff_eq;
use std::sync::{Arc, Mutex};

use gradflow::hooks::{Event, TimeStepPass};
use gradflow::loss::{Loss, Targets};
use gradflow::optim::Optimizer;
use gradflow::recurrent::{
    GruConfig, LstmConfig, Readout, Recurrent, RnnConfig, SequenceLayer, SequenceModel, TimeProfile,
    TimeStepRecorder, rows_to_sequence, sequence_to_rows,
};
use gradflow::{Layer, Linear, Mode, Network, Sequential, hooks::Context};
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand_distr::StandardNormal;

fn normal(shape: (usize, usize), rng: &mut rand::rngs::StdRng) -> Array2<f64> {
    Array2::random_using(shape, StandardNormal, rng)
}

fn lstm_model(seed: u64, readout: Readout) -> SequenceModel<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let lstm = LstmConfig::new(2, 6).num_layers(2).forget_bias(1.0).build::<f64>(&mut rng).unwrap();
    SequenceModel::new(lstm, readout, Linear::<f64>::new(6, 3, &mut rng).unwrap()).unwrap()
}

#[test]
fn parameters_carry_pytorch_names_through_a_network() {
    let mut model = Sequential::new();
    model.push(lstm_model(0, Readout::LastStep));
    let net = Network::new(model);
    let names: Vec<(String, Vec<usize>)> =
        net.named_parameters().into_iter().map(|(n, p)| (n, p.value.shape().to_vec())).collect();
    let expected = [
        ("0.rnn.weight_ih_l0", vec![24, 2]),
        ("0.rnn.weight_hh_l0", vec![24, 6]),
        ("0.rnn.bias_ih_l0", vec![24]),
        ("0.rnn.bias_hh_l0", vec![24]),
        ("0.rnn.weight_ih_l1", vec![24, 6]),
        ("0.rnn.weight_hh_l1", vec![24, 6]),
        ("0.rnn.bias_ih_l1", vec![24]),
        ("0.rnn.bias_hh_l1", vec![24]),
        ("0.head.weight", vec![3, 6]),
        ("0.head.bias", vec![3]),
    ];
    let expected: Vec<(String, Vec<usize>)> = expected.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
    assert_eq!(names, expected);
}

#[test]
fn readouts_apply_the_head_to_the_last_step_or_to_every_step() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let (batch, t_len) = (3, 5);
    let x = normal((batch, t_len * 2), &mut rng);
    for readout in [Readout::LastStep, Readout::EveryStep] {
        let mut model = lstm_model(2, readout);
        let mut y = Array2::zeros((0, 0));
        model.forward(x.view(), &mut y, Mode::Eval, &mut Context::new()).unwrap();
        assert_eq!(model.output_features(t_len * 2).unwrap(), y.ncols());
        // Independently: the recurrent outputs, then the head's weights by hand.
        let outputs = model.recurrent().outputs().unwrap().to_owned();
        let mut weight = Array2::zeros((3, 6));
        let mut bias = Array1::zeros(3);
        model.head().visit_parameters(&mut |p| match p.name {
            "weight" => weight.assign(&p.value.into_dimensionality::<ndarray::Ix2>().unwrap()),
            _ => bias.assign(&p.value.into_dimensionality::<ndarray::Ix1>().unwrap()),
        });
        let head = |h: ArrayView2<'_, f64>| h.dot(&weight.t()) + &bias;
        match readout {
            Readout::LastStep => {
                assert_eq!(y.dim(), (batch, 3));
                let expected = head(outputs.index_axis(Axis(0), t_len - 1));
                assert_abs_diff_eq!(y, expected, epsilon = 1e-14);
            }
            Readout::EveryStep => {
                assert_eq!(y.dim(), (batch, t_len * 3));
                for t in 0..t_len {
                    let expected = head(outputs.index_axis(Axis(0), t));
                    assert_abs_diff_eq!(y.slice(s![.., t * 3..(t + 1) * 3]), expected, epsilon = 1e-14);
                }
            }
        }
    }
}

#[test]
fn rows_and_sequences_round_trip_and_feed_the_layer_alike() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let rows = normal((4, 7 * 3), &mut rng);
    let sequence = rows_to_sequence(rows.view(), 3).unwrap();
    assert_eq!(sequence.dim(), (7, 4, 3));
    assert_eq!(sequence[[2, 1, 0]], rows[[1, 2 * 3]]);
    assert_eq!(sequence_to_rows(sequence.view()), rows);
    assert!(rows_to_sequence(rows.view(), 4).is_err());

    // The Layer view of a GRU computes the same as the GRU on the sequence.
    let gru = GruConfig::new(3, 5).build::<f64>(&mut rng).unwrap();
    let mut direct = gru.clone();
    let mut layer = SequenceLayer::new(gru, Readout::EveryStep);
    let mut y = Array2::zeros((0, 0));
    layer.forward(rows.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
    direct.forward_sequence(sequence.view(), None, Mode::Train).unwrap();
    assert_eq!(y, sequence_to_rows(direct.outputs().unwrap()));
}

/// What a hook saw of one time-step event.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    path: String,
    kind: &'static str,
    pass: TimeStepPass,
    stack_index: usize,
    time: usize,
    grad_norm: Option<f64>,
    has_cell: bool,
    gate_width: usize,
}

#[test]
fn hooks_see_every_time_step_with_its_gradient_and_gates() {
    let (batch, t_len) = (2, 4);
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let x = normal((batch, t_len * 2), &mut rng);
    let grad = normal((batch, 3), &mut rng);

    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let order: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut model = Sequential::new();
    model.push(lstm_model(5, Readout::LastStep));
    let mut net = Network::new(model);
    let (seen_hook, order_hook) = (seen.clone(), order.clone());
    net.attach_hook(move |event: &mut Event<'_, f64>| {
        let label = match event {
            Event::TimeStep(e) => {
                seen_hook.lock().unwrap().push(Seen {
                    path: e.path.to_string(),
                    kind: e.layer.kind(),
                    pass: e.pass,
                    stack_index: e.stack_index,
                    time: e.time,
                    grad_norm: e.grad_hidden.map(|g| g.iter().map(|v| v * v).sum::<f64>().sqrt()),
                    has_cell: e.cell.is_some() && (e.pass == TimeStepPass::Forward || e.grad_cell.is_some()),
                    gate_width: e.gate("f").map_or(0, |f| f.ncols()),
                });
                "step".to_string()
            }
            other => other.path().to_string(),
        };
        order_hook.lock().unwrap().push(label);
    });
    net.forward(x.view(), Mode::Train).unwrap();
    net.backward(grad.view()).unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2 * 2 * t_len); // forward + backward, 2 stacked layers, T steps
    assert!(seen.iter().all(|s| s.path == "0.rnn" && s.kind == "LSTM" && s.has_cell && s.gate_width == 6));
    let forward: Vec<(usize, usize)> =
        seen.iter().filter(|s| s.pass == TimeStepPass::Forward).map(|s| (s.stack_index, s.time)).collect();
    assert_eq!(forward, [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3)]);
    let backward: Vec<(usize, usize)> =
        seen.iter().filter(|s| s.pass == TimeStepPass::Backward).map(|s| (s.stack_index, s.time)).collect();
    assert_eq!(backward, [(1, 3), (1, 2), (1, 1), (1, 0), (0, 3), (0, 2), (0, 1), (0, 0)]);
    // Per-step events come before the layer's own event, in both passes.
    let order = order.lock().unwrap().clone();
    let rnn_forward = order.iter().position(|p| p == "0.rnn").unwrap();
    assert!(order[..rnn_forward].iter().filter(|p| *p == "step").count() == 2 * t_len);

    // The gradients shown equal those of the same model run without hooks.
    let mut plain = lstm_model(5, Readout::LastStep);
    let mut y = Array2::zeros((0, 0));
    plain.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
    plain.backward(x.view(), y.view(), grad.view(), None, &mut Context::new()).unwrap();
    let expected = plain.time_step_grad_norms();
    let from_hooks: Vec<f64> = (0..t_len)
        .map(|t| seen.iter().find(|s| s.pass == TimeStepPass::Backward && s.stack_index == 1 && s.time == t))
        .map(|s| s.unwrap().grad_norm.unwrap())
        .collect();
    assert_eq!(from_hooks, expected);
    assert_eq!(net.output(), y.view());
}

/// Runs an LSTM(1→4) whose forget-gate bias is `forget` over 10 steps with a recorder
/// attached, and returns the recorder's profile.
fn profile_with_forget_bias(forget: f64) -> TimeProfile {
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let mut lstm = LstmConfig::new(1, 4).build::<f64>(&mut rng).unwrap();
    let mut bias = Array1::<f64>::zeros(16);
    bias.slice_mut(s![4..8]).fill(forget);
    lstm.set_parameter("bias_ih_l0", bias.into_dyn().view()).unwrap();
    let mut model = Sequential::new();
    model.push(SequenceLayer::new(lstm, Readout::LastStep));
    let mut net = Network::new(model);
    let handle = net.attach_hook(TimeStepRecorder::new());
    let x = normal((3, 10), &mut rng) * 0.1;
    net.forward(x.view(), Mode::Train).unwrap();
    net.backward(Array2::ones((3, 4)).view()).unwrap();
    let recorder = net.hook(handle).unwrap();
    assert_eq!(recorder.profiles().count(), 1);
    recorder.profile("0", 0).unwrap().clone()
}

#[test]
fn recorder_profiles_gradients_by_lag_and_gate_saturation() {
    // Forget-gate bias 12: σ(12) ≈ 1 − 6e-6, saturated for every unit at every step.
    let open = profile_with_forget_bias(12.0);
    assert_eq!(open.gate_names, ["i", "f", "g", "o"]);
    assert_eq!(open.gate_saturation[1], vec![1.0; 10], "forget gate");
    assert!(open.gate_saturation[0].iter().all(|&s| s == 0.0), "input gate {:?}", open.gate_saturation[0]);
    assert!(open.gate_mean[1].iter().all(|&m| m > 0.9999));
    assert_eq!(open.grad_hidden_norms.len(), 10);
    assert_eq!(open.grad_cell_norms.len(), 10);
    let by_lag = open.grad_norms_by_lag();
    assert_eq!(by_lag[0], open.grad_hidden_norms[9]);
    assert_eq!(by_lag[9], open.grad_hidden_norms[0]);
    // With the forget gate open the cell gradient keeps its order of magnitude over 9 steps;
    // closed (bias −12), it is gone.
    let closed = profile_with_forget_bias(-12.0);
    assert_eq!(closed.gate_saturation[1], vec![1.0; 10]);
    let (o, c) = (&open.grad_cell_norms, &closed.grad_cell_norms);
    assert!(o[0] > 0.1 * o[9], "open: {o:?}");
    assert!(c[0] < 1e-4 * c[9], "closed: {c:?}");
}

#[test]
fn recurrent_models_train_with_the_loss_and_optimizer_interfaces() {
    // The task: output the first of T noisy inputs at the last step — a dependency over T − 1
    // steps. Full BPTT learns it; BPTT truncated to 2 steps cannot (no gradient reaches x₀).
    let full = train(None);
    let truncated = train(Some(2));
    assert!(full.1 < 0.3 * full.0, "full BPTT: loss {} → {}", full.0, full.1);
    assert!(full.1 < 0.5 * truncated.1, "full {} vs truncated {}", full.1, truncated.1);
}

/// Returns (initial loss, final loss) of 600 SGD steps on the copy-first-input task.
fn train(truncate: Option<usize>) -> (f64, f64) {
    let (t_len, batch) = (6, 32);
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let lstm = LstmConfig::new(1, 12).forget_bias(1.0).build::<f64>(&mut rng).unwrap();
    let head = Linear::new(12, 1, &mut rng).unwrap();
    let model = SequenceModel::new(lstm, Readout::LastStep, head).unwrap().with_truncation(truncate).unwrap();
    let mut sequential = Sequential::new();
    sequential.push(model);
    let mut net = Network::new(sequential);
    let mut sgd = gradflow::optim::SgdConfig::new(0.5).build::<f64>().unwrap();
    let mut losses = Vec::new();
    for _ in 0..600 {
        let x = normal((batch, t_len), &mut rng);
        let target = x.slice(s![.., 0..1]).to_owned();
        let prediction = net.forward(x.view(), Mode::Train).unwrap().to_owned();
        let (loss, grad) = gradflow::loss::Mse::default()
            .value_and_grad(prediction.view(), Targets::Values(target.view()))
            .unwrap();
        losses.push(loss);
        net.zero_grad();
        net.backward(grad.view()).unwrap();
        sgd.step(net.model_mut()).unwrap();
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    (mean(&losses[..20]), mean(&losses[580..]))
}

#[test]
fn relu_rnn_and_gru_models_run_in_f32() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let rnn = RnnConfig::new(2, 4).build::<f32>(&mut rng).unwrap();
    let mut model =
        SequenceModel::new(rnn, Readout::EveryStep, Linear::<f32>::new(4, 2, &mut rng).unwrap()).unwrap();
    let x = Array2::<f32>::from_elem((3, 10), 0.5);
    let mut y = Array2::zeros((0, 0));
    model.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
    assert_eq!(y.dim(), (3, 10));
    let mut dx = Array2::zeros((0, 0));
    model
        .backward(x.view(), y.view(), Array2::ones((3, 10)).view(), Some(&mut dx), &mut Context::new())
        .unwrap();
    assert_eq!(dx.dim(), (3, 10));
    assert!(dx.iter().all(|v| v.is_finite()) && dx.iter().any(|&v| v != 0.0));
    let gru = GruConfig::new(2, 4).build::<f32>(&mut rng).unwrap();
    let mut layer = SequenceLayer::new(gru, Readout::LastStep);
    layer.forward(x.view(), &mut y, Mode::Eval, &mut Context::new()).unwrap();
    assert_eq!(y.dim(), (3, 4));
}
