//! A model saved by PyTorch loads into gradflow and gives PyTorch's outputs and gradients.
//!
//! The fixture files in `tests/fixtures/` were written by `scripts/make_torch_fixture.py`
//! (torch, float64), each state with `safetensors.torch.save_file(model.state_dict(), …)` and
//! each `*_expected.safetensors` holding an input, the output, and the gradients of
//! `loss = (out * R).sum()` (so `grad_output` = R) with respect to the input and every
//! parameter, as PyTorch's autograd computed them:
//! - `torch_mlp`: `nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))`;
//! - `torch_bn_mlp`: `nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(),
//!   nn.Linear(6, 3))` after two training-mode passes (running statistics and
//!   `num_batches_tracked` = 2 in the state), checked in eval mode and then in train mode;
//! - `torch_lstm_head`: a module with `self.rnn = nn.LSTM(3, 4)` and `self.head =
//!   nn.Linear(4, 2)` returning `head(rnn(x)[0][-1])` — gradflow's `SequenceModel` with
//!   `Readout::LastStep`, whose names (`rnn.weight_ih_l0`, …, `head.weight`) are the module's;
//!   `torch_lstm` is the bare `nn.LSTM`'s own state (`weight_ih_l0`, …), which loads into a
//!   `SequenceLayer`;
//! - `torch_conv_resnet`: a small convolutional ResNet (identity, zero-padding and projection
//!   shortcuts, a grouped dilated 'same' convolution, max, average and adaptive pooling) on
//!   3×12×12 images, checked in eval mode and then in train mode like `torch_bn_mlp`.
//!
//! With `GRADFLOW_TORCH_RESAVE=DIR`, the tests also write the states as gradflow saves them
//! into DIR, for the reverse check in PyTorch (`make_torch_fixture.py --check`), and a conv
//! ResNet gradflow initialized itself with its outputs and gradients (`--expected`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use approx::{abs_diff_eq, assert_abs_diff_eq};
use gradflow::activation::Tanh;
use gradflow::hooks::Context;
use gradflow::io::{LoadOptions, load_safetensors, load_safetensors_with, read_tensors, safetensors_bytes};
use gradflow::recurrent::{LstmConfig, Readout, SequenceLayer, SequenceModel, sequence_to_rows};
use gradflow::{BufferView, Layer, Linear, Mode, Network, Sequential, named_buffers, named_parameters};
use ndarray::{Array2, ArrayD, Ix2, Ix3, arr0};
use rand::SeedableRng;
use rand::rngs::StdRng;
use safetensors::SafeTensors;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

fn expected() -> BTreeMap<String, ArrayD<f64>> {
    read_tensors::<f64>(fixture("torch_mlp_expected.safetensors")).unwrap()
}

/// With `GRADFLOW_TORCH_RESAVE=DIR`, writes `bytes` (a state as gradflow saves it) to `DIR/name`
/// for the reverse check in PyTorch (`scripts/make_torch_fixture.py --check`).
fn resave(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("GRADFLOW_TORCH_RESAVE") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn matrix(a: &ArrayD<f64>) -> Array2<f64> {
    a.clone().into_dimensionality::<Ix2>().unwrap()
}

/// `(what, gradflow's, PyTorch's)`: one quantity computed both ways.
type Pair = (String, ArrayD<f64>, ArrayD<f64>);

/// Every pair agrees to 1e-10 in f64; all are compared before the failing ones are named.
fn assert_agree_with_torch(pairs: &[Pair]) {
    let failing: Vec<String> = pairs
        .iter()
        .filter(|(_, ours, torch)| !abs_diff_eq!(ours, torch, epsilon = 1e-10))
        .map(|(what, ours, torch)| format!("{what}: gradflow {ours} vs torch {torch}"))
        .collect();
    assert!(failing.is_empty(), "differ from PyTorch by more than 1e-10:\n{}", failing.join("\n"));
}

/// The pair of a scalar: `ours` against the fixture's one-entry tensor.
fn scalar_pair(what: &str, ours: f64, torch: &ArrayD<f64>) -> Pair {
    (what.to_string(), arr0(ours).into_dyn(), arr0(*torch.first().unwrap()).into_dyn())
}

/// The same architecture as the PyTorch model, with other (random) weights.
fn model<F: gradflow::Float>() -> Sequential<F> {
    let mut rng = StdRng::seed_from_u64(123);
    Sequential::builder(4).dense(5, Tanh).linear(3).build(&mut rng).unwrap()
}

#[test]
fn a_pytorch_model_gives_pytorchs_outputs_and_gradients_in_f64() {
    let expected = expected();
    let mut model = model::<f64>();
    let report = load_safetensors(&mut model, fixture("torch_mlp.safetensors")).unwrap();
    assert_eq!(report.loaded, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert!(report.converted.is_empty());

    let mut net = Network::new(model);
    let x = expected["input"].clone().into_dimensionality::<Ix2>().unwrap();
    let r = expected["grad_output"].clone().into_dimensionality::<Ix2>().unwrap();
    let output = net.forward(x.view(), Mode::Train).unwrap().to_owned();
    let mut pairs = vec![("output".to_string(), output.clone().into_dyn(), expected["output"].clone())];
    let loss: f64 = (&output * &r).sum();
    pairs.push(scalar_pair("loss", loss, &expected["loss"]));

    net.zero_grad();
    let grad_input = net.backward_with_input_grad(r.view()).unwrap().to_owned();
    pairs.push(("grad.input".to_string(), grad_input.into_dyn(), expected["grad.input"].clone()));
    let mut seen = 0;
    for (name, p) in named_parameters(net.model()) {
        let key = format!("grad.{name}");
        // Sanity: the gradients are not trivially zero.
        assert!(p.grad.iter().any(|&g| g.abs() > 1e-3), "{key}");
        pairs.push((key.clone(), p.grad.to_owned(), expected[&key].clone()));
        seen += 1;
    }
    assert_eq!(seen, 4);
    assert_agree_with_torch(&pairs);
}

#[test]
fn the_pytorch_model_in_f32_needs_narrowing_and_then_agrees_to_f32_precision() {
    let expected = expected();
    let mut model = model::<f32>();
    let path = fixture("torch_mlp.safetensors");
    let err = load_safetensors(&mut model, &path).unwrap_err().to_string();
    assert!(err.contains("narrow_f64_to_f32") && err.contains("4 problems"), "{err}");
    let report =
        load_safetensors_with(&mut model, &path, &LoadOptions::default().narrow_f64_to_f32(true)).unwrap();
    assert_eq!(report.converted.len(), 4);
    let mut net = Network::new(model);
    let x = expected["input"].mapv(|v| v as f32).into_dimensionality::<Ix2>().unwrap();
    let output = net.forward(x.view(), Mode::Eval).unwrap().mapv(f64::from).into_dyn();
    // f32 rounding of weights and arithmetic: relative error of order 1e-7 on outputs of order 1.
    assert_abs_diff_eq!(output, expected["output"], epsilon = 1e-5);
}

#[test]
fn gradflow_writes_back_the_same_tensors_pytorch_wrote() {
    let path = fixture("torch_mlp.safetensors");
    let mut model = model::<f64>();
    load_safetensors(&mut model, &path).unwrap();
    let ours = safetensors_bytes(&model).unwrap();
    let theirs = std::fs::read(&path).unwrap();
    let (ours_st, theirs_st) =
        (SafeTensors::deserialize(&ours).unwrap(), SafeTensors::deserialize(&theirs).unwrap());
    let (mut a, mut b) = (ours_st.names(), theirs_st.names());
    a.sort();
    b.sort();
    assert_eq!(a, b);
    for name in a {
        let (x, y) = (ours_st.tensor(name).unwrap(), theirs_st.tensor(name).unwrap());
        assert_eq!((x.dtype(), x.shape(), x.data()), (y.dtype(), y.shape(), y.data()), "{name}");
    }
    resave("torch_mlp.safetensors", &ours);
}

/// `Linear(4, 6) → BatchNorm1d(6) → Tanh → Linear(6, 3)`, as in the PyTorch fixture, with other
/// (random) weights and fresh running statistics.
fn bn_model() -> Sequential<f64> {
    let mut rng = StdRng::seed_from_u64(7);
    Sequential::builder(4).linear(6).batch_norm().activation(Tanh).linear(3).build(&mut rng).unwrap()
}

/// The buffers of `model` as float arrays (`num_batches_tracked` as a scalar).
fn buffers(model: &dyn Layer<f64>) -> BTreeMap<String, ArrayD<f64>> {
    named_buffers(model)
        .into_iter()
        .map(|(name, b)| {
            let value = match b {
                BufferView::Tensor { value, .. } => value.to_owned(),
                BufferView::Count { value, .. } => ndarray::arr0(value as f64).into_dyn(),
            };
            (name, value)
        })
        .collect()
}

#[test]
fn a_pytorch_batchnorm_model_loads_its_running_statistics() {
    let path = fixture("torch_bn_mlp.safetensors");
    let mut model = bn_model();
    let report = load_safetensors(&mut model, &path).unwrap();
    assert_eq!(
        report.loaded,
        [
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
            "3.weight",
            "3.bias",
            "1.running_mean",
            "1.running_var",
            "1.num_batches_tracked"
        ]
    );
    // PyTorch stores the counter as an I64 scalar; the script ran two training passes.
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let counter = file.tensor("1.num_batches_tracked").unwrap();
    assert_eq!((counter.dtype(), counter.shape()), (safetensors::Dtype::I64, &[][..]));
    assert_eq!(counter.data(), 2i64.to_le_bytes());
    let loaded = buffers(&model);
    assert_eq!(loaded["1.num_batches_tracked"], ndarray::arr0(2.0).into_dyn());
    // The parameters and running statistics hold the file's numbers (the running statistics
    // are no longer the initial 0 and 1).
    let file_values = |name: &str| -> Vec<f64> {
        let view = file.tensor(name).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::F64, "{name}");
        view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
    };
    for name in ["1.running_mean", "1.running_var"] {
        assert_eq!(loaded[name].iter().copied().collect::<Vec<_>>(), file_values(name), "{name}");
    }
    assert!(loaded["1.running_mean"].iter().all(|&m| m != 0.0));
    assert!(loaded["1.running_var"].iter().all(|&v| v != 1.0));
    for (name, p) in named_parameters(&model) {
        assert_eq!(p.value.iter().copied().collect::<Vec<_>>(), file_values(&name), "{name}");
    }
}

#[test]
fn a_pytorch_batchnorm_model_gives_pytorchs_outputs_and_gradients_in_eval_and_train_mode() {
    let expected = read_tensors::<f64>(fixture("torch_bn_mlp_expected.safetensors")).unwrap();
    let mut model = bn_model();
    load_safetensors(&mut model, fixture("torch_bn_mlp.safetensors")).unwrap();
    let mut net = Network::new(model);
    let x = matrix(&expected["input"]);
    let r = matrix(&expected["grad_output"]);
    let mut pairs = Vec::new();
    // Eval first (running statistics as loaded, and left alone), then train (batch statistics,
    // and the running statistics move once more), as the script ran them.
    for (mode, prefix) in [(Mode::Eval, "eval"), (Mode::Train, "train")] {
        net.zero_grad();
        let output = net.forward(x.view(), mode).unwrap().to_owned();
        let key = format!("{prefix}.output");
        pairs.push((key.clone(), output.clone().into_dyn(), expected[&key].clone()));
        let loss: f64 = (&output * &r).sum();
        let key = format!("{prefix}.loss");
        pairs.push(scalar_pair(&key, loss, &expected[&key]));
        let grad_input = net.backward_with_input_grad(r.view()).unwrap().to_owned().into_dyn();
        let key = format!("{prefix}.grad.input");
        pairs.push((key.clone(), grad_input, expected[&key].clone()));
        let mut seen = 0;
        for (name, p) in named_parameters(net.model()) {
            let key = format!("{prefix}.grad.{name}");
            if mode == Mode::Train && name == "0.bias" {
                // In train mode the BatchNorm subtracts the batch mean, which cancels the bias
                // before it: its gradient is zero up to rounding, in PyTorch too.
                assert!(expected[&key].iter().chain(p.grad.iter()).all(|g| g.abs() < 1e-12), "{key}");
            } else {
                assert!(p.grad.iter().any(|&g| g.abs() > 1e-3), "{key} is trivially zero");
            }
            pairs.push((key.clone(), p.grad.to_owned(), expected[&key].clone()));
            seen += 1;
        }
        assert_eq!(seen, 6);
        for (name, value) in buffers(net.model()) {
            let key = format!("{prefix}.buffer.{name}");
            pairs.push((key.clone(), value, expected[&key].clone()));
        }
    }
    // Hand-known: eval passes do not count, the train pass does.
    assert_eq!(expected["eval.buffer.1.num_batches_tracked"].first(), Some(&2.0));
    assert_eq!(expected["train.buffer.1.num_batches_tracked"].first(), Some(&3.0));
    // Train mode normalizes with the batch statistics: its output differs from eval's.
    assert!(!abs_diff_eq!(expected["eval.output"], expected["train.output"], epsilon = 1e-2));
    assert_agree_with_torch(&pairs);
}

#[test]
fn gradflow_writes_back_the_batchnorm_state_pytorch_wrote() {
    let path = fixture("torch_bn_mlp.safetensors");
    let mut model = bn_model();
    load_safetensors(&mut model, &path).unwrap();
    let ours = safetensors_bytes(&model).unwrap();
    let theirs = std::fs::read(&path).unwrap();
    let (ours_st, theirs_st) =
        (SafeTensors::deserialize(&ours).unwrap(), SafeTensors::deserialize(&theirs).unwrap());
    let (mut a, mut b) = (ours_st.names(), theirs_st.names());
    a.sort();
    b.sort();
    assert_eq!(a, b);
    for name in a {
        let (x, y) = (ours_st.tensor(name).unwrap(), theirs_st.tensor(name).unwrap());
        assert_eq!((x.dtype(), x.shape(), x.data()), (y.dtype(), y.shape(), y.data()), "{name}");
    }
    resave("torch_bn_mlp.safetensors", &ours);
}

/// gradflow's counterpart of the fixture's `LstmHead`: `nn.LSTM(3, 4)` read out at the last
/// step by `nn.Linear(4, 2)`, with other (random) weights.
fn lstm_model() -> SequenceModel<f64> {
    let mut rng = StdRng::seed_from_u64(11);
    let lstm = LstmConfig::new(3, 4).build::<f64>(&mut rng).unwrap();
    let head = Linear::new(4, 2, &mut rng).unwrap();
    SequenceModel::new(lstm, Readout::LastStep, head).unwrap()
}

#[test]
fn a_pytorch_lstm_gives_pytorchs_outputs_and_gradients_through_a_sequence_model() {
    let expected = read_tensors::<f64>(fixture("torch_lstm_head_expected.safetensors")).unwrap();
    let mut model = lstm_model();
    let report = load_safetensors(&mut model, fixture("torch_lstm_head.safetensors")).unwrap();
    // PyTorch's names for `self.rnn = nn.LSTM(…)`, `self.head = nn.Linear(…)`, unchanged.
    assert_eq!(
        report.loaded,
        [
            "rnn.weight_ih_l0",
            "rnn.weight_hh_l0",
            "rnn.bias_ih_l0",
            "rnn.bias_hh_l0",
            "head.weight",
            "head.bias"
        ]
    );
    // The sequence (time 5, batch 2, 3 features) as rows (batch, time · features).
    let sequence = expected["input"].clone().into_dimensionality::<Ix3>().unwrap();
    let x = sequence_to_rows(sequence.view());
    let r = matrix(&expected["grad_output"]);
    let mut output = Array2::zeros((0, 0));
    model.forward(x.view(), &mut output, Mode::Train, &mut Context::new()).unwrap();
    let mut pairs = vec![("output".to_string(), output.clone().into_dyn(), expected["output"].clone())];
    let loss: f64 = (&output * &r).sum();
    pairs.push(scalar_pair("loss", loss, &expected["loss"]));

    model.zero_grad();
    let mut grad_input = Array2::zeros((0, 0));
    model.backward(x.view(), output.view(), r.view(), Some(&mut grad_input), &mut Context::new()).unwrap();
    let expected_grad_input =
        sequence_to_rows(expected["grad.input"].clone().into_dimensionality::<Ix3>().unwrap().view());
    pairs.push(("grad.input".to_string(), grad_input.into_dyn(), expected_grad_input.into_dyn()));
    let mut seen = 0;
    for (name, p) in named_parameters(&model) {
        let key = format!("grad.{name}");
        assert!(p.grad.iter().any(|&g| g.abs() > 1e-3), "{key} is trivially zero");
        pairs.push((key.clone(), p.grad.to_owned(), expected[&key].clone()));
        seen += 1;
    }
    assert_eq!(seen, 6);
    assert_agree_with_torch(&pairs);
    resave("torch_lstm_head.safetensors", &safetensors_bytes(&model).unwrap());
}

#[test]
fn a_bare_pytorch_lstm_state_loads_into_a_sequence_layer_not_a_sequence_model() {
    // `nn.LSTM(3, 4).state_dict()` has no prefix: the names of a SequenceLayer.
    let mut rng = StdRng::seed_from_u64(5);
    let mut layer =
        SequenceLayer::new(LstmConfig::new(3, 4).build::<f64>(&mut rng).unwrap(), Readout::EveryStep);
    let report = load_safetensors(&mut layer, fixture("torch_lstm.safetensors")).unwrap();
    assert_eq!(report.loaded, ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]);
    // The same numbers as the module's `rnn.*` tensors.
    let mut model = lstm_model();
    load_safetensors(&mut model, fixture("torch_lstm_head.safetensors")).unwrap();
    let bare: BTreeMap<String, ArrayD<f64>> =
        named_parameters(&layer).into_iter().map(|(n, p)| (n, p.value.to_owned())).collect();
    for (name, p) in named_parameters(&model) {
        if let Some(local) = name.strip_prefix("rnn.") {
            assert_eq!(p.value.to_owned(), bare[local], "{name}");
        }
    }
    // Into a SequenceModel the bare names are refused (strict, as PyTorch), naming what differs.
    let err = load_safetensors(&mut lstm_model(), fixture("torch_lstm.safetensors")).unwrap_err().to_string();
    assert!(err.contains("rnn.weight_ih_l0") && err.contains("head.weight"), "{err}");
}

/// gradflow's counterpart of the fixture's small convolutional ResNet (see
/// `scripts/make_torch_fixture.py`): the same layers in the same order, so the same names, with
/// other (random) weights and fresh running statistics.
fn conv_model() -> Sequential<f64> {
    use gradflow::activation::Relu;
    use gradflow::layers::{AvgPool2d, ImageShape, MaxPool2d, Padding, ShortcutKind};
    let mut rng = StdRng::seed_from_u64(13);
    Sequential::image_builder(ImageShape::new(3, 12, 12))
        .conv2d_with(4, 3, |c| c.padding(1).bias(false))
        .batch_norm2d()
        .activation(Relu)
        .basic_block(4, 1, ShortcutKind::ZeroPad)
        .basic_block(8, 2, ShortcutKind::ZeroPad)
        .basic_block(12, 2, ShortcutKind::Projection)
        .conv2d_with(12, 3, |c| c.padding_mode(Padding::Same).dilation(2).groups(3))
        .layer(MaxPool2d::with_options(ImageShape::new(12, 3, 3), (2, 2), (1, 1), (1, 1), (1, 1)).unwrap())
        .layer(AvgPool2d::with_options(ImageShape::new(12, 4, 4), (2, 2), (2, 2), (1, 1), false).unwrap())
        .layer(gradflow::layers::AdaptiveAvgPool2d::new(ImageShape::new(12, 3, 3), (2, 2)).unwrap())
        .global_avg_pool2d()
        .flatten()
        .linear(5)
        .build(&mut rng)
        .unwrap()
}

/// An `(N, C, H, W)` tensor as gradflow's `(N, C·H·W)` rows (PyTorch's `flatten(1)`).
fn images_as_rows(a: &ArrayD<f64>) -> Array2<f64> {
    let n = a.shape()[0];
    a.as_standard_layout().into_owned().into_shape_with_order((n, a.len() / n)).unwrap()
}

/// Runs `net` on `x` in eval mode and then in train mode, backpropagating `r`, and returns what
/// the fixture holds for each mode: `MODE.output`, `MODE.loss` (`Σ output·r`), `MODE.grad.input`
/// (as `(N, C, H, W)`),
/// `MODE.grad.<parameter>` and `MODE.buffer.<buffer>` after the pass.
fn conv_passes(net: &mut Network<f64>, x: &Array2<f64>, r: &Array2<f64>) -> BTreeMap<String, ArrayD<f64>> {
    let mut out = BTreeMap::new();
    for (mode, prefix) in [(Mode::Eval, "eval"), (Mode::Train, "train")] {
        net.zero_grad();
        let output = net.forward(x.view(), mode).unwrap().to_owned();
        out.insert(format!("{prefix}.loss"), ndarray::arr0((&output * r).sum()).into_dyn());
        out.insert(format!("{prefix}.output"), output.into_dyn());
        let grad_input = net.backward_with_input_grad(r.view()).unwrap().to_owned();
        let nchw = grad_input.into_shape_with_order((x.nrows(), 3, 12, 12)).unwrap().into_dyn();
        out.insert(format!("{prefix}.grad.input"), nchw);
        for (name, p) in named_parameters(net.model()) {
            out.insert(format!("{prefix}.grad.{name}"), p.grad.to_owned());
        }
        for (name, value) in buffers(net.model()) {
            out.insert(format!("{prefix}.buffer.{name}"), value);
        }
    }
    out
}

#[test]
fn a_pytorch_conv_resnet_gives_pytorchs_outputs_and_gradients_in_eval_and_train_mode() {
    let expected = read_tensors::<f64>(fixture("torch_conv_resnet_expected.safetensors")).unwrap();
    let mut model = conv_model();
    let report = load_safetensors(&mut model, fixture("torch_conv_resnet.safetensors")).unwrap();
    // Conv weights (out, in/groups, kH, kW) under PyTorch's names, loaded without conversion.
    assert!(report.converted.is_empty() && report.loaded.len() == 28 + 8 * 3, "{:?}", report.loaded);
    let conv9 = named_parameters(&model).into_iter().find(|(n, _)| n == "9.weight").unwrap().1;
    assert_eq!(conv9.value.shape(), [12, 4, 3, 3]);
    let mut net = Network::new(model);
    let x = images_as_rows(&expected["input"]);
    let r = matrix(&expected["grad_output"]);
    let ours = conv_passes(&mut net, &x, &r);
    let mut pairs = Vec::new();
    for (key, value) in ours {
        if key.contains(".grad.") && !key.ends_with("input") {
            assert!(value.iter().any(|&g| g.abs() > 1e-4), "{key} is trivially zero");
        }
        let torch = expected[&key].clone();
        pairs.push((key, value, torch));
    }
    // Per mode: the output, the loss, the input gradient, 28 parameter gradients (9 conv weights, conv 9's
    // bias, 8 BatchNorms' weight and bias, the Linear's weight and bias) and 8 × 3 buffers.
    assert_eq!(pairs.len(), 2 * (3 + 28 + 24));
    assert!(!abs_diff_eq!(expected["eval.output"], expected["train.output"], epsilon = 1e-2));
    assert_agree_with_torch(&pairs);
}

/// The other direction: a conv ResNet initialized and trained a little by gradflow, saved, and
/// its outputs and gradients as gradflow computes them. The state loads back into a fresh model
/// that then computes the same numbers bit for bit; with `GRADFLOW_TORCH_RESAVE=DIR` both are
/// written for `make_torch_fixture.py --model conv_resnet --check DIR/gradflow_conv_resnet.safetensors
/// --expected DIR/gradflow_conv_resnet_expected.safetensors`, which loads the state into PyTorch
/// and compares PyTorch's outputs and gradients with gradflow's.
#[test]
fn gradflows_own_conv_resnet_round_trips_for_the_reverse_check() {
    let fixture_values = read_tensors::<f64>(fixture("torch_conv_resnet_expected.safetensors")).unwrap();
    let mut net = Network::new(conv_model());
    for shift in [0.5, -0.25] {
        let batch =
            Array2::from_shape_fn((6, 432), |(i, j)| ((i * 37 + j * 11) % 29) as f64 / 7.0 - 2.0 + shift);
        net.forward(batch.view(), Mode::Train).unwrap();
    }
    let state = safetensors_bytes(net.model()).unwrap();
    let x = images_as_rows(&fixture_values["input"]);
    let r = matrix(&fixture_values["grad_output"]);
    let ours = conv_passes(&mut net, &x, &r);

    let mut copy = Network::new({
        let mut fresh = conv_model();
        gradflow::io::load_safetensors_bytes(&mut fresh, &state, "gradflow state", &LoadOptions::default())
            .unwrap();
        fresh
    });
    assert_eq!(conv_passes(&mut copy, &x, &r), ours);
    assert_eq!(ours["eval.buffer.1.num_batches_tracked"].first(), Some(&2.0));

    if std::env::var_os("GRADFLOW_TORCH_RESAVE").is_some() {
        resave("gradflow_conv_resnet.safetensors", &state);
        let mut all = ours;
        all.insert("input".into(), fixture_values["input"].clone());
        all.insert("grad_output".into(), fixture_values["grad_output"].clone());
        let bytes: BTreeMap<String, Vec<u8>> =
            all.iter().map(|(k, v)| (k.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = all
            .iter()
            .map(|(k, v)| {
                let view = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F64,
                    v.shape().to_vec(),
                    &bytes[k],
                );
                (k.clone(), view.unwrap())
            })
            .collect();
        resave("gradflow_conv_resnet_expected.safetensors", &safetensors::serialize(views, None).unwrap());
    }
}

#[test]
fn gradflow_writes_back_the_conv_resnet_state_pytorch_wrote() {
    let path = fixture("torch_conv_resnet.safetensors");
    let mut model = conv_model();
    load_safetensors(&mut model, &path).unwrap();
    let ours = safetensors_bytes(&model).unwrap();
    let theirs = std::fs::read(&path).unwrap();
    let (ours_st, theirs_st) =
        (SafeTensors::deserialize(&ours).unwrap(), SafeTensors::deserialize(&theirs).unwrap());
    let (mut a, mut b) = (ours_st.names(), theirs_st.names());
    a.sort();
    b.sort();
    assert_eq!(a, b);
    for name in a {
        let (x, y) = (ours_st.tensor(name).unwrap(), theirs_st.tensor(name).unwrap());
        assert_eq!((x.dtype(), x.shape(), x.data()), (y.dtype(), y.shape(), y.data()), "{name}");
    }
    resave("torch_conv_resnet.safetensors", &ours);
}
