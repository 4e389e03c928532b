//! Backpropagation through time: truncation, stacking, and agreement between the ways of
//! running the same layer.

use approx::{abs_diff_eq, assert_abs_diff_eq};
use gradflow::Mode;
use gradflow::recurrent::{GruConfig, LstmConfig, Recurrent, RecurrentState, RnnConfig};
use ndarray::{Array3, ArrayD, Axis, s};
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand_distr::StandardNormal;

fn normal3(shape: (usize, usize, usize), seed: u64) -> Array3<f64> {
    Array3::random_using(shape, StandardNormal, &mut rand::rngs::StdRng::seed_from_u64(seed))
}

/// All parameter gradients, in visiting order.
fn grads(layer: &dyn Recurrent<f64>) -> Vec<ArrayD<f64>> {
    let mut out = Vec::new();
    layer.visit_parameters(&mut |p| out.push(p.grad.to_owned()));
    out
}

fn layers(seed: u64) -> Vec<Box<dyn Recurrent<f64>>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    vec![
        Box::new(RnnConfig::new(3, 5).build::<f64>(&mut rng).unwrap()),
        Box::new(LstmConfig::new(3, 5).forget_bias(1.0).build::<f64>(&mut rng).unwrap()),
        Box::new(GruConfig::new(3, 5).build::<f64>(&mut rng).unwrap()),
        Box::new(LstmConfig::new(3, 5).num_layers(2).build::<f64>(&mut rng).unwrap()),
    ]
}

/// Runs forward then backward with gradients on every output and on the final state.
fn run(layer: &mut dyn Recurrent<f64>, x: &Array3<f64>, truncate: Option<usize>) {
    run_with(layer, x, truncate, true);
}

/// [`run`], computing the input gradient or not.
fn run_with(layer: &mut dyn Recurrent<f64>, x: &Array3<f64>, truncate: Option<usize>, input_grad: bool) {
    let (t_len, batch, _) = x.dim();
    let (l, h) = (layer.num_layers(), layer.hidden_size());
    layer.zero_grad();
    layer.forward_sequence(x.view(), None, Mode::Train).unwrap();
    let grad_out = normal3((t_len, batch, h), 99);
    let grad_final = RecurrentState {
        hidden: normal3((l, batch, h), 98),
        cell: layer.has_cell_state().then(|| normal3((l, batch, h), 97)),
    };
    if input_grad {
        layer.backward_sequence(grad_out.view(), Some(&grad_final), truncate).unwrap();
    } else {
        layer.backward_sequence_without_input_grad(grad_out.view(), Some(&grad_final), truncate).unwrap();
    }
}

#[test]
fn truncation_to_at_least_t_steps_equals_full_bptt_exactly() {
    let x = normal3((6, 2, 3), 1);
    for mut layer in layers(1) {
        run(layer.as_mut(), &x, None);
        let (full, full_dx) = (grads(layer.as_ref()), layer.grad_input().unwrap().to_owned());
        let full_dh0 = layer.grad_initial_state().unwrap().clone();
        for k in [6, 7, 100] {
            run(layer.as_mut(), &x, Some(k));
            assert_eq!(grads(layer.as_ref()), full, "{} k={k}", layer.describe());
            assert_eq!(layer.grad_input().unwrap(), full_dx);
            assert_eq!(layer.grad_initial_state().unwrap(), &full_dh0);
        }
        // One step short of T, something is cut.
        run(layer.as_mut(), &x, Some(5));
        assert!(!abs_diff_eq!(grads(layer.as_ref())[..], full[..], epsilon = 1e-6), "{}", layer.describe());
    }
}

#[test]
fn truncated_gradient_of_the_last_output_equals_full_bptt_over_the_last_k_steps() {
    // With the loss on the last step only, BPTT truncated to k equals full BPTT of the same
    // layer run on the last k steps, started from the (detached) state reached before them.
    let (t_len, k, batch) = (9, 3, 2);
    let x = normal3((t_len, batch, 3), 2);
    for mut layer in layers(2) {
        let h = layer.hidden_size();
        let mut grad_out = Array3::zeros((t_len, batch, h));
        grad_out.index_axis_mut(Axis(0), t_len - 1).assign(&normal3((1, batch, h), 3).index_axis(Axis(0), 0));

        layer.zero_grad();
        layer.forward_sequence(x.view(), None, Mode::Train).unwrap();
        let state = state_after(layer.as_ref(), t_len - k - 1);
        layer.backward_sequence(grad_out.view(), None, Some(k)).unwrap();
        let truncated = grads(layer.as_ref());
        let dx = layer.grad_input().unwrap().to_owned();
        // Nothing reaches the steps before the window, nor the initial state.
        assert!(dx.slice(s![..t_len - k, .., ..]).iter().all(|&v| v == 0.0), "{}", layer.describe());
        assert!(layer.grad_initial_state().unwrap().hidden.iter().all(|&v| v == 0.0));

        layer.zero_grad();
        let tail = x.slice(s![t_len - k.., .., ..]).to_owned();
        layer.forward_sequence(tail.view(), Some(&state), Mode::Train).unwrap();
        layer.backward_sequence(grad_out.slice(s![t_len - k.., .., ..]), None, None).unwrap();
        let reference = grads(layer.as_ref());
        assert!(abs_diff_eq!(truncated[..], reference[..], epsilon = 1e-12), "{}", layer.describe());
        let dx_ref = layer.grad_input().unwrap();
        assert_abs_diff_eq!(dx.slice(s![t_len - k.., .., ..]), dx_ref, epsilon = 1e-12);
    }
}

/// The state of every stacked layer after step `t` of the last forward pass.
fn state_after(layer: &dyn Recurrent<f64>, t: usize) -> RecurrentState<f64> {
    let (l, h) = (layer.num_layers(), layer.hidden_size());
    let batch = layer.hidden_states(0).unwrap().dim().1;
    RecurrentState {
        hidden: Array3::from_shape_fn((l, batch, h), |(i, b, j)| layer.hidden_states(i).unwrap()[[t, b, j]]),
        cell: layer.has_cell_state().then(|| {
            Array3::from_shape_fn((l, batch, h), |(i, b, j)| layer.cell_states(i).unwrap()[[t, b, j]])
        }),
    }
}

#[test]
fn truncated_gradient_of_every_output_is_the_sum_of_k_step_windows() {
    // BPTT(k) with a gradient on every output: the gradient of output e flows back over steps
    // e−k+1..=e only, in every stacked layer. Reference: for each e, full BPTT over that window
    // from the states before it, with only output e's gradient; the gradients add up.
    let (t_len, k, batch) = (7, 3, 2);
    let x = normal3((t_len, batch, 3), 4);
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let cells: Vec<Box<dyn Recurrent<f64>>> = vec![
        Box::new(RnnConfig::new(3, 4).build::<f64>(&mut rng).unwrap()),
        Box::new(LstmConfig::new(3, 4).build::<f64>(&mut rng).unwrap()),
        Box::new(GruConfig::new(3, 4).build::<f64>(&mut rng).unwrap()),
        Box::new(GruConfig::new(3, 4).num_layers(2).build::<f64>(&mut rng).unwrap()),
        Box::new(LstmConfig::new(3, 4).num_layers(3).build::<f64>(&mut rng).unwrap()),
    ];
    for mut layer in cells {
        let h = layer.hidden_size();
        let grad_out = normal3((t_len, batch, h), 5);
        layer.zero_grad();
        layer.forward_sequence(x.view(), None, Mode::Train).unwrap();
        let states: Vec<RecurrentState<f64>> = (0..t_len).map(|t| state_after(layer.as_ref(), t)).collect();
        layer.backward_sequence(grad_out.view(), None, Some(k)).unwrap();
        let truncated = grads(layer.as_ref());
        let truncated_dx = layer.grad_input().unwrap().to_owned();

        layer.zero_grad();
        let mut reference_dx = Array3::<f64>::zeros(x.dim());
        for end in 0..t_len {
            let start = (end + 1).saturating_sub(k);
            let state = (start > 0).then(|| &states[start - 1]);
            let window = x.slice(s![start..=end, .., ..]).to_owned();
            layer.forward_sequence(window.view(), state, Mode::Train).unwrap();
            let mut g = Array3::zeros((end + 1 - start, batch, h));
            g.index_axis_mut(Axis(0), end - start).assign(&grad_out.index_axis(Axis(0), end));
            layer.backward_sequence(g.view(), None, None).unwrap(); // adds into the parameter grads
            let mut dx = reference_dx.slice_mut(s![start..=end, .., ..]);
            dx += &layer.grad_input().unwrap();
        }
        let reference = grads(layer.as_ref());
        assert!(abs_diff_eq!(truncated[..], reference[..], epsilon = 1e-12), "{}", layer.describe());
        assert!(abs_diff_eq!(truncated_dx, reference_dx, epsilon = 1e-12), "{}", layer.describe());
    }
}

#[test]
fn stacked_layers_equal_single_layers_chained() {
    // A 2-layer LSTM is layer l0 followed by layer l1 with its own parameters.
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let mut stacked = LstmConfig::new(3, 4).num_layers(2).build::<f64>(&mut rng).unwrap();
    let mut first = LstmConfig::new(3, 4).build::<f64>(&mut rng).unwrap();
    let mut second = LstmConfig::new(4, 4).build::<f64>(&mut rng).unwrap();
    let mut values = Vec::new();
    stacked.visit_parameters(&mut |p| values.push((p.name.to_string(), p.value.to_owned())));
    for (name, value) in &values {
        let (target, local) = match name.strip_suffix("_l1") {
            Some(base) => (&mut second, format!("{base}_l0")),
            None => (&mut first, name.clone()),
        };
        target.set_parameter(&local, value.view()).unwrap();
    }
    let x = normal3((5, 2, 3), 7);
    let grad_out = normal3((5, 2, 4), 8);

    stacked.forward_sequence(x.view(), None, Mode::Train).unwrap();
    stacked.backward_sequence(grad_out.view(), None, None).unwrap();
    first.forward_sequence(x.view(), None, Mode::Train).unwrap();
    let mid = first.outputs().unwrap().to_owned();
    second.forward_sequence(mid.view(), None, Mode::Train).unwrap();
    second.backward_sequence(grad_out.view(), None, None).unwrap();
    let grad_mid = second.grad_input().unwrap().to_owned();
    first.backward_sequence(grad_mid.view(), None, None).unwrap();

    assert_abs_diff_eq!(stacked.outputs().unwrap(), second.outputs().unwrap(), epsilon = 1e-14);
    let fin = stacked.final_state().unwrap();
    assert_eq!(fin.hidden.index_axis(Axis(0), 0), first.final_state().unwrap().hidden.index_axis(Axis(0), 0));
    let chained: Vec<ArrayD<f64>> = grads(&first).into_iter().chain(grads(&second)).collect();
    assert_abs_diff_eq!(grads(&stacked)[..], chained[..], epsilon = 1e-13);
    assert_abs_diff_eq!(stacked.grad_input().unwrap(), first.grad_input().unwrap(), epsilon = 1e-13);
    assert_eq!(stacked.hidden_states(0).unwrap(), mid);
}

#[test]
fn backward_adds_into_parameter_gradients_until_zero_grad() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let mut gru = GruConfig::new(3, 4).build::<f64>(&mut rng).unwrap();
    let x = normal3((4, 2, 3), 9);
    let g = normal3((4, 2, 4), 10);
    gru.forward_sequence(x.view(), None, Mode::Train).unwrap();
    gru.backward_sequence(g.view(), None, None).unwrap();
    let once = grads(&gru);
    gru.backward_sequence(g.view(), None, None).unwrap();
    let twice = grads(&gru);
    for (a, b) in once.iter().zip(&twice) {
        assert_abs_diff_eq!(*b, a * 2.0, epsilon = 1e-14);
    }
    gru.zero_grad();
    assert!(grads(&gru).iter().all(|g| g.iter().all(|&v| v == 0.0)));
}

#[test]
fn f32_and_f64_agree() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut l64 = LstmConfig::new(3, 6).build::<f64>(&mut rng).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut l32 = LstmConfig::new(3, 6).build::<f32>(&mut rng).unwrap();
    let x = normal3((8, 4, 3), 12);
    l64.forward_sequence(x.view(), None, Mode::Eval).unwrap();
    l32.forward_sequence(x.mapv(|v| v as f32).view(), None, Mode::Eval).unwrap();
    assert_abs_diff_eq!(l64.outputs().unwrap(), l32.outputs().unwrap().mapv(f64::from), epsilon = 1e-5);
}

#[test]
fn repeated_passes_with_the_same_shapes_reuse_their_buffers() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let mut lstm = LstmConfig::new(3, 4).build::<f64>(&mut rng).unwrap();
    let x = normal3((5, 2, 3), 14);
    let g = normal3((5, 2, 4), 15);
    lstm.forward_sequence(x.view(), None, Mode::Train).unwrap();
    lstm.backward_sequence(g.view(), None, None).unwrap();
    let pointers = |l: &dyn Recurrent<f64>| {
        [
            l.outputs().unwrap().as_ptr(),
            l.gate_activations(0).unwrap().as_ptr(),
            l.grad_input().unwrap().as_ptr(),
        ]
    };
    let before = pointers(&lstm);
    let out_before = lstm.outputs().unwrap().to_owned();
    lstm.forward_sequence(x.view(), None, Mode::Train).unwrap();
    lstm.backward_sequence(g.view(), None, None).unwrap();
    assert_eq!(pointers(&lstm), before);
    assert_eq!(lstm.outputs().unwrap(), out_before); // and the pass is deterministic
}

#[test]
fn backward_without_input_grad_gives_the_same_parameter_and_state_gradients() {
    let x = normal3((6, 2, 3), 3);
    for truncate in [None, Some(2)] {
        for mut layer in layers(4) {
            run(layer.as_mut(), &x, truncate);
            let (with_dx, dh0) = (grads(layer.as_ref()), layer.grad_initial_state().unwrap().clone());
            let time_norms = layer.time_step_grad_norms();
            assert!(layer.grad_input().is_some());

            run_with(layer.as_mut(), &x, truncate, false);
            let what = format!("{} truncate={truncate:?}", layer.describe());
            assert_eq!(grads(layer.as_ref()), with_dx, "{what}");
            assert_eq!(layer.grad_initial_state().unwrap(), &dh0, "{what}");
            assert_eq!(layer.time_step_grad_norms(), time_norms, "{what}");
            assert!(layer.grad_input().is_none(), "{what}: no input gradient was computed");
        }
    }
}

/// Copies every parameter of `from` (f64) into `to` (f32).
fn copy_to_f32(from: &dyn Recurrent<f64>, to: &mut dyn Recurrent<f32>) {
    let mut values = Vec::new();
    from.visit_parameters(&mut |p| values.push((p.name, p.value.mapv(|v| v as f32))));
    for (name, value) in values {
        to.set_parameter(name, value.view()).unwrap();
    }
}

fn relative_difference(a: ndarray::ArrayViewD<'_, f32>, b: ndarray::ArrayViewD<'_, f64>) -> f64 {
    let diff = a.iter().zip(b.iter()).map(|(&x, &y)| (x as f64 - y).powi(2)).sum::<f64>().sqrt();
    diff / b.iter().map(|y| y * y).sum::<f64>().sqrt()
}

/// The same layer in f64 and in f32.
type ExactAndFast = (Box<dyn Recurrent<f64>>, Box<dyn Recurrent<f32>>);

#[test]
fn f32_layers_with_fast_tanh_and_sigmoid_agree_with_exact_f64() {
    // f32 runs the cells with vectorized approximations of tanh and σ (relative error ≤ 5e-7);
    // over 30 steps of two stacked layers the results must stay at f32 round-off level.
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let pairs: Vec<ExactAndFast> = vec![
        (
            Box::new(RnnConfig::new(4, 16).num_layers(2).build::<f64>(&mut rng).unwrap()),
            Box::new(RnnConfig::new(4, 16).num_layers(2).build::<f32>(&mut rng).unwrap()),
        ),
        (
            Box::new(LstmConfig::new(4, 16).num_layers(2).build::<f64>(&mut rng).unwrap()),
            Box::new(LstmConfig::new(4, 16).num_layers(2).build::<f32>(&mut rng).unwrap()),
        ),
        (
            Box::new(GruConfig::new(4, 16).num_layers(2).build::<f64>(&mut rng).unwrap()),
            Box::new(GruConfig::new(4, 16).num_layers(2).build::<f32>(&mut rng).unwrap()),
        ),
    ];
    let x = normal3((30, 3, 4), 6);
    let grad_out = normal3((30, 3, 16), 7);
    for (mut exact, mut fast) in pairs {
        copy_to_f32(exact.as_ref(), fast.as_mut());
        exact.forward_sequence(x.view(), None, Mode::Train).unwrap();
        fast.forward_sequence(x.mapv(|v| v as f32).view(), None, Mode::Train).unwrap();
        exact.backward_sequence(grad_out.view(), None, None).unwrap();
        fast.backward_sequence(grad_out.mapv(|v| v as f32).view(), None, None).unwrap();
        let what = exact.describe();
        let out =
            relative_difference(fast.outputs().unwrap().into_dyn(), exact.outputs().unwrap().into_dyn());
        assert!(out < 1e-5, "{what}: outputs differ by {out:e}");
        let dx = relative_difference(
            fast.grad_input().unwrap().into_dyn(),
            exact.grad_input().unwrap().into_dyn(),
        );
        assert!(dx < 1e-4, "{what}: input gradients differ by {dx:e}");
        let mut exact_grads = Vec::new();
        exact.visit_parameters(&mut |p| exact_grads.push((p.name, p.grad.to_owned())));
        let mut i = 0;
        fast.visit_parameters(&mut |p| {
            let (name, g) = &exact_grads[i];
            let d = relative_difference(p.grad, g.view());
            assert!(d < 1e-4, "{what} {name}: gradients differ by {d:e}");
            i += 1;
        });
    }
}

#[test]
fn the_gate_pre_activation_gradients_are_what_the_input_weights_receive() {
    // dL/dW_ih = Σ_t grad_tᵀ x_t and dL/db_ih = Σ_t Σ_b grad_t, for every cell, with full and
    // truncated backpropagation through time.
    for truncate in [None, Some(2)] {
        for mut layer in layers(31) {
            let x = normal3((6, 4, 3), 32);
            run(layer.as_mut(), &x, truncate);
            let grad_pre = layer.grad_gate_preactivations(0).expect("after a backward pass");
            assert_eq!(grad_pre.dim(), (6, 4, layer.gates().len() * layer.hidden_size()));
            let mut weight = ndarray::Array2::<f64>::zeros((grad_pre.dim().2, 3));
            for t in 0..6 {
                weight += &grad_pre.index_axis(Axis(0), t).t().dot(&x.index_axis(Axis(0), t));
            }
            let bias = grad_pre.sum_axis(Axis(0)).sum_axis(Axis(0));
            let (mut got_weight, mut got_bias) = (None, None);
            layer.visit_parameters(&mut |p| match p.name {
                "weight_ih_l0" => got_weight = Some(p.grad.to_owned()),
                "bias_ih_l0" => got_bias = Some(p.grad.to_owned()),
                _ => {}
            });
            let name = layer.describe();
            assert!(
                abs_diff_eq!(got_weight.unwrap(), weight.into_dyn(), epsilon = 1e-12),
                "{name} {truncate:?}"
            );
            assert!(abs_diff_eq!(got_bias.unwrap(), bias.into_dyn(), epsilon = 1e-12), "{name} {truncate:?}");
        }
    }
}

#[test]
fn hooks_see_each_gate_s_gradient_at_each_time_step() {
    use gradflow::hooks::{Event, TimeStepPass};
    use gradflow::recurrent::{Readout, SequenceModel};
    use gradflow::{Linear, Network};
    let mut rng = rand::rngs::StdRng::seed_from_u64(33);
    let lstm = LstmConfig::new(3, 5).build::<f64>(&mut rng).unwrap();
    let model = SequenceModel::new(lstm, Readout::LastStep, Linear::new(5, 2, &mut rng).unwrap()).unwrap();
    let mut net = Network::new(model);
    let x = ndarray::Array2::from_shape_fn((4, 6 * 3), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 5.0 - 1.0);
    let mut forget = vec![None; 6];
    let (result, _) = net.with_hook(
        |event: &mut Event<'_, f64>| {
            if let Event::TimeStep(e) = event {
                match e.pass {
                    TimeStepPass::Forward => assert!(e.gate_grad("f").is_none()),
                    TimeStepPass::Backward => forget[e.time] = e.gate_grad("f").map(|g| g.to_owned()),
                }
            }
        },
        |net| {
            net.forward(x.view(), Mode::Train)?;
            net.backward(ndarray::Array2::ones((4, 2)).view())
        },
    );
    result.unwrap();
    let all = net.model().recurrent().grad_gate_preactivations(0).unwrap();
    for (t, seen) in forget.iter().enumerate() {
        // Columns H..2H are the forget gate's (PyTorch's order i, f, g, o).
        assert_eq!(seen.as_ref().unwrap(), &all.index_axis(Axis(0), t).slice(s![.., 5..10]));
    }
    // With the loss on the last step only, the forget gate's gradient at the first step is
    // smaller than at the last (it has travelled back through time).
    let norm = |t: usize| forget[t].as_ref().unwrap().iter().map(|g| g * g).sum::<f64>().sqrt();
    assert!(norm(0) < norm(5), "{} vs {}", norm(0), norm(5));
}
