//! PyTorch models whose modules are nested and named as their authors chose load into gradflow
//! with no key mapping, compute PyTorch's outputs and gradients, and save back under their own
//! names: a residual MLP (`stem`, `blocks = ModuleList([...])` of blocks holding `norm`, `fc1`,
//! `fc2` and a `proj` shortcut, `head`) and a two-layer LSTM classifier (`lstm`, `fc`).
//!
//! `tests/fixtures/torch_res_mlp*.safetensors` and `torch_named_lstm*.safetensors` were written
//! by `scripts/make_torch_fixture.py --only res_mlp` / `--only named_lstm` (torch 2.15,
//! float64); the expected files hold the input, `R`, the output, the loss `(out * R).sum()` and
//! every gradient.

use std::collections::BTreeMap;
use std::path::PathBuf;

use approx::abs_diff_eq;
use gradflow::activation::{Gelu, Relu, Tanh};
use gradflow::hooks::{Event, Recorder};
use gradflow::io::{load_safetensors, read_tensors, safetensors_bytes};
use gradflow::layers::ImageShape;
use gradflow::recurrent::{LstmConfig, Readout, SequenceLayout, SequenceModel, rows_to_sequence};
use gradflow::{Layer, Linear, Mode, Network, Sequential, SequentialBuilder, named_parameters};
use ndarray::{Array2, ArrayD, Ix2, Ix3};
use rand::SeedableRng;
use rand::rngs::StdRng;
use safetensors::SafeTensors;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

/// The tensors of two safetensors files are the same: names, dtypes, shapes and bytes.
fn assert_same_tensors(ours: &[u8], theirs: &[u8]) {
    let (a, b) = (SafeTensors::deserialize(ours).unwrap(), SafeTensors::deserialize(theirs).unwrap());
    let (mut names_a, mut names_b) = (a.names(), b.names());
    names_a.sort();
    names_b.sort();
    assert_eq!(names_a, names_b);
    for name in names_a {
        let (x, y) = (a.tensor(name).unwrap(), b.tensor(name).unwrap());
        assert_eq!((x.dtype(), x.shape(), x.data()), (y.dtype(), y.shape(), y.data()), "{name}");
    }
}

/// Loads the PyTorch fixture `name` into `model` strictly with no key map, checks that every one
/// of its `tensors` tensors was loaded under its own name, and that saving gives PyTorch's file
/// back tensor for tensor.
fn load_as_saved_by_pytorch(model: &mut dyn Layer<f64>, name: &str, tensors: usize) {
    let path = fixture(name);
    let report = load_safetensors(model, &path).unwrap();
    assert!(report.renamed.is_empty() && report.missing.is_empty() && report.unexpected.is_empty());
    assert_eq!(report.loaded.len(), tensors, "{:?}", report.loaded);
    assert_same_tensors(&safetensors_bytes(model).unwrap(), &std::fs::read(&path).unwrap());
}

/// Collects every value that differs from the fixture's by more than 1e-10.
struct Comparison<'a> {
    expected: &'a BTreeMap<String, ArrayD<f64>>,
    failing: Vec<String>,
    compared: usize,
}

impl Comparison<'_> {
    fn check(&mut self, key: &str, ours: ArrayD<f64>) {
        let Some(theirs) = self.expected.get(key) else {
            self.failing.push(format!("{key}: not in the fixture"));
            return;
        };
        self.compared += 1;
        if !abs_diff_eq!(ours, theirs, epsilon = 1e-10) {
            self.failing.push(format!("{key}: gradflow {ours} vs torch {theirs}"));
        }
    }
}

/// Runs `model` in training mode on the input of the fixture `expected_name` (plain rows) and
/// checks that its output, loss, input gradient and every parameter gradient are PyTorch's;
/// returns the network and that input with its `R`.
fn matches_pytorch_on_rows(
    model: Sequential<f64>,
    expected_name: &str,
) -> (Network<f64>, Array2<f64>, Array2<f64>) {
    let expected = read_tensors::<f64>(fixture(expected_name)).unwrap();
    let matrix = |a: &ArrayD<f64>| a.clone().into_dimensionality::<Ix2>().unwrap();
    let (x, r) = (matrix(&expected["input"]), matrix(&expected["grad_output"]));
    let parameters = named_parameters(&model).len();
    let mut net = Network::new(model);
    let output = net.forward(x.view(), Mode::Train).unwrap().to_owned();
    let grad_input = net.backward_with_input_grad(r.view()).unwrap().to_owned();
    let mut cmp = Comparison { expected: &expected, failing: Vec::new(), compared: 0 };
    cmp.check("output", output.clone().into_dyn());
    cmp.check("loss", ndarray::arr0((&output * &r).sum()).into_dyn());
    cmp.check("grad.input", grad_input.into_dyn());
    for (name, p) in named_parameters(net.model()) {
        cmp.check(&format!("grad.{name}"), p.grad.to_owned());
    }
    assert!(cmp.failing.is_empty(), "differ from PyTorch:\n{}", cmp.failing.join("\n"));
    assert_eq!(cmp.compared, 3 + parameters, "every gradient compared");
    (net, x, r)
}

/// Block(d, e) of the fixture: `norm`, `fc1`, `act`, `fc2` on the branch, flattened into the
/// block, and `proj` on the shortcut when the width changes.
fn block(width: usize) -> impl FnOnce(SequentialBuilder<f64>) -> SequentialBuilder<f64> {
    move |b| {
        b.layer_norm()
            .named("norm")
            .linear(width)
            .named("fc1")
            .activation(Gelu::default())
            .named("act")
            .linear(width)
            .named("fc2")
    }
}

/// gradflow's twin of the fixture's `ResMlp`, named as its modules, with other (random) weights.
fn res_mlp(seed: u64) -> Sequential<f64> {
    Sequential::builder(4)
        .linear(6)
        .named("stem")
        .activation(Tanh)
        .sequential(|b| {
            b.residual(block(6))
                .flatten_branch()
                .residual_projection(block(8))
                .flatten_branch()
                .rename_child("shortcut", "proj")
        })
        .named("blocks")
        .linear(3)
        .named("head")
        .build(&mut StdRng::seed_from_u64(seed))
        .unwrap()
}

#[test]
fn a_pytorch_residual_mlp_with_nested_named_modules_loads_runs_and_saves_back() {
    let mut model = res_mlp(1);
    load_as_saved_by_pytorch(&mut model, "torch_res_mlp.safetensors", 18);
    assert_eq!(named_parameters(&model).len(), 18);
    matches_pytorch_on_rows(model, "torch_res_mlp_expected.safetensors");
}

#[test]
fn hooks_reports_and_paths_use_the_nested_names() {
    let mut net = Network::new(res_mlp(2));
    let mut seen = Vec::new();
    let (result, recorder) = net.with_hook(Recorder::default(), |net| {
        net.with_hook(
            |event: &mut Event<'_, f64>| {
                if let Event::Backward(b) = event {
                    seen.push((b.path.to_string(), b.layer_number));
                }
            },
            |net| {
                net.forward(Array2::ones((3, 4)).view(), Mode::Train)?;
                net.backward(Array2::ones((3, 3)).view())
            },
        )
        .0
    });
    result.unwrap();
    let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
    // The flattened branches' layers are the blocks' own; no `branch` in any path.
    for path in ["blocks.1.proj", "blocks.1.fc2", "blocks.1.act", "blocks.1.norm", "blocks.0.fc1", "stem"] {
        assert!(paths.contains(&path), "{path} not in {paths:?}");
    }
    assert!(paths.iter().all(|p| !p.contains("branch")), "{paths:?}");
    let number = |path: &str| seen.iter().find(|(p, _)| p == path).and_then(|(_, n)| *n);
    // Layers are numbered through the nested container: stem+tanh, each block, the head.
    assert_eq!(
        ["stem", "1", "blocks.0", "blocks.0.fc1", "blocks.1", "blocks.1.proj", "head"].map(number),
        [Some(1), Some(1), Some(2), Some(2), Some(3), Some(3), Some(4)]
    );
    let labels: Vec<String> = recorder.recording().hidden_layers(0).into_iter().map(|l| l.label).collect();
    assert_eq!(labels, ["Linear+tanh", "Residual", "Residual", "Linear"]);

    let model = net.model();
    assert_eq!(model.layer::<Linear<f64>>("blocks.1.proj").unwrap().weight().dim(), (8, 6));
    assert_eq!(model.layer_at("blocks.0.norm").unwrap().kind(), "LayerNorm");
    assert!(model.layer_at("blocks.0.branch").is_none());
}

#[test]
fn a_pytorch_lstm_with_its_own_names_loads_runs_and_saves_back() {
    let mut rng = StdRng::seed_from_u64(3);
    let lstm = LstmConfig::new(3, 5).num_layers(2).build::<f64>(&mut rng).unwrap();
    let fc = Linear::new(5, 2, &mut rng).unwrap();
    let mut model = SequenceModel::new(lstm, Readout::LastStep, fc).unwrap();
    model.rename_child("rnn", "lstm").unwrap();
    model.rename_child("head", "fc").unwrap();
    load_as_saved_by_pytorch(&mut model, "torch_named_lstm.safetensors", 10);

    let expected = read_tensors::<f64>(fixture("torch_named_lstm_expected.safetensors")).unwrap();
    // PyTorch's input: (time 6, batch 3, 3 features), nn.LSTM's default layout.
    let x = expected["input"].clone().into_dimensionality::<Ix3>().unwrap();
    let r = expected["grad_output"].clone().into_dimensionality::<Ix2>().unwrap();
    let mut net = Network::new(model);
    let output = net.forward_sequence(x.view(), SequenceLayout::TimeMajor, Mode::Train).unwrap().to_owned();
    let grad_rows = net.backward_with_input_grad(r.view()).unwrap().to_owned();
    let grad_input = rows_to_sequence(grad_rows.view(), 3).unwrap();
    let mut cmp = Comparison { expected: &expected, failing: Vec::new(), compared: 0 };
    cmp.check("output", output.clone().into_dyn());
    cmp.check("loss", ndarray::arr0((&output * &r).sum()).into_dyn());
    cmp.check("grad.input", grad_input.into_dyn());
    for (name, p) in named_parameters(net.model()) {
        cmp.check(&format!("grad.{name}"), p.grad.to_owned());
    }
    assert!(cmp.failing.is_empty(), "differ from PyTorch:\n{}", cmp.failing.join("\n"));
    assert_eq!(cmp.compared, 3 + 10, "every gradient compared");

    // Hooks see the user's names.
    let mut paths = Vec::new();
    let (result, _) = net.with_hook(
        |event: &mut Event<'_, f64>| {
            if let Event::Forward(f) = event {
                paths.push(f.path.to_string());
            }
        },
        |net| net.forward_sequence(x.view(), SequenceLayout::TimeMajor, Mode::Eval).map(|_| ()),
    );
    result.unwrap();
    assert_eq!(paths, ["lstm", "fc"]);
}

#[test]
fn renaming_a_child_twice_into_one_container_or_flattening_a_leaf_is_refused() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut refused = |builder: SequentialBuilder<f64>| builder.build(&mut rng).unwrap_err().to_string();
    // A block with a projection shortcut whose branch has a child `fc1`, flattened.
    let flattened = || {
        Sequential::<f64>::builder(4)
            .residual_projection(|b| b.linear(6).named("fc1").activation(Tanh).linear(6))
            .flatten_branch()
    };
    // A flattened branch child may not take the shortcut's name, nor the shortcut a branch
    // child's; the error names the layer and nothing is built.
    let err = refused(
        Sequential::<f64>::builder(4)
            .residual_projection(|b| b.linear(6).named("proj").activation(Tanh).linear(6))
            .rename_child("shortcut", "proj")
            .flatten_branch(),
    );
    assert!(err.contains("`proj` has the name of the block's shortcut"), "{err}");
    let err = refused(flattened().rename_child("shortcut", "fc1"));
    assert!(err.contains("`fc1` already names another child"), "{err}");
    // A branch child renamed to the shortcut's name through the block.
    let err = refused(flattened().rename_child("fc1", "shortcut"));
    assert!(err.contains("already names the shortcut"), "{err}");
    // An activation inside a block whose flattened branch has a child of that name.
    let err = refused(
        Sequential::<f64>::builder(4)
            .residual(|b| b.linear(4).activation(Tanh).named("activation").linear(4))
            .flatten_branch()
            .block_activation(Tanh),
    );
    assert!(err.contains("has a child `activation`, the activation's name"), "{err}");
    // flatten_branch after a step that is not a residual block; renaming a leaf's child; an edit
    // before any step; a name with a dot.
    let err = refused(Sequential::<f64>::builder(4).linear(4).flatten_branch());
    assert!(err.contains("0: Linear(4→4)"), "{err}");
    let err = refused(Sequential::<f64>::builder(4).linear(4).rename_child("weight", "w"));
    assert!(err.contains("has no children to rename"), "{err}");
    let err = refused(Sequential::<f64>::builder(4).rename_child("a", "b").linear(4));
    assert!(err.contains("comes before any layer"), "{err}");
    let err = refused(Sequential::<f64>::builder(4).highway(Tanh, -2.0).rename_child("gate", "T.x"));
    assert!(err.contains("has a `.`"), "{err}");
    // A branch that is a single layer cannot be flattened: its parameters would have no name.
    let mut rng = StdRng::seed_from_u64(5);
    let mut block =
        gradflow::ResidualBlock::identity(Linear::<f64>::new(4, 4, &mut rng).unwrap(), 4).unwrap();
    let err = block.flatten_branch().unwrap_err();
    assert!(err.to_string().contains("no children"), "{err}");
    assert!(!block.has_flat_branch());
    // Renaming within a nested Sequential by index.
    let model = Sequential::<f64>::builder(4)
        .sequential(|b| b.linear(4).linear(4))
        .rename_child("1", "out")
        .build(&mut rng)
        .unwrap();
    assert_eq!(model.layer_at("0.out").unwrap().kind(), "Linear");
}

#[test]
fn a_sequence_model_shows_its_head_s_buffers() {
    let mut rng = StdRng::seed_from_u64(5);
    let lstm = LstmConfig::new(2, 4).build::<f64>(&mut rng).unwrap();
    let head = Sequential::builder(4).linear(4).batch_norm().linear(1).build(&mut rng).unwrap();
    let model = SequenceModel::new(lstm, Readout::LastStep, head).unwrap();
    let names: Vec<String> = gradflow::named_buffers(&model).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["head.1.running_mean", "head.1.running_var", "head.1.num_batches_tracked"]);
}

/// torchvision's `BasicBlock(planes, stride)`: conv1, bn1, relu, conv2, bn2 flattened into the
/// block, `downsample` (1×1 convolution and BatchNorm2d) when the shape changes, and the ReLU
/// after the addition inside the block.
fn basic_block(
    b: SequentialBuilder<f64>,
    planes: usize,
    stride: usize,
    downsample: bool,
) -> SequentialBuilder<f64> {
    let branch = move |b: SequentialBuilder<f64>| {
        b.conv2d_with(planes, 3, move |c| c.stride(stride).padding(1).bias(false))
            .named("conv1")
            .batch_norm2d()
            .named("bn1")
            .activation(Relu)
            .named("relu")
            .conv2d_with(planes, 3, |c| c.padding(1).bias(false))
            .named("conv2")
            .batch_norm2d()
            .named("bn2")
    };
    let block = if downsample {
        let shortcut = move |s: SequentialBuilder<f64>| {
            s.conv2d_with(planes, 1, move |c| c.stride(stride).bias(false)).batch_norm2d()
        };
        b.residual_shortcut(branch, shortcut).flatten_branch().rename_child("shortcut", "downsample")
    } else {
        b.residual(branch).flatten_branch()
    };
    block.block_activation(Relu)
}

/// gradflow's twin of the fixture's torchvision-named ResNet.
fn tv_resnet(seed: u64) -> Sequential<f64> {
    Sequential::image_builder(ImageShape::new(3, 12, 12))
        .conv2d_with(8, 3, |c| c.padding(1).bias(false))
        .named("conv1")
        .batch_norm2d()
        .named("bn1")
        .activation(Relu)
        .named("relu")
        .max_pool2d_padded(3, 2, 1)
        .named("maxpool")
        .sequential(|b| basic_block(basic_block(b, 8, 1, false), 8, 1, false))
        .named("layer1")
        .sequential(|b| basic_block(basic_block(b, 16, 2, true), 16, 1, false))
        .named("layer2")
        .global_avg_pool2d()
        .named("avgpool")
        .flatten()
        .linear(5)
        .named("fc")
        .build(&mut StdRng::seed_from_u64(seed))
        .unwrap()
}

#[test]
fn a_torchvision_named_resnet_loads_runs_and_saves_back() {
    let mut model = tv_resnet(6);
    // 32 parameters and 30 BatchNorm buffers.
    load_as_saved_by_pytorch(&mut model, "torch_tv_resnet.safetensors", 62);

    let expected = read_tensors::<f64>(fixture("torch_tv_resnet_expected.safetensors")).unwrap();
    // NCHW images as rows of C·H·W.
    let x = expected["input"].clone().into_shape_with_order((4, 3 * 12 * 12)).unwrap();
    let x = x.into_dimensionality::<Ix2>().unwrap();
    let r = expected["grad_output"].clone().into_dimensionality::<Ix2>().unwrap();
    let mut net = Network::new(model);
    let mut cmp = Comparison { expected: &expected, failing: Vec::new(), compared: 0 };
    for (mode, prefix) in [(Mode::Eval, "eval"), (Mode::Train, "train")] {
        net.zero_grad();
        let output = net.forward(x.view(), mode).unwrap().to_owned();
        cmp.check(&format!("{prefix}.output"), output.clone().into_dyn());
        let grad_input = net.backward_with_input_grad(r.view()).unwrap().to_owned();
        let grad_input = grad_input.into_shape_with_order((4, 3, 12, 12)).unwrap().into_dyn();
        cmp.check(&format!("{prefix}.grad.input"), grad_input);
        for (name, p) in named_parameters(net.model()) {
            cmp.check(&format!("{prefix}.grad.{name}"), p.grad.to_owned());
        }
        for (name, b) in gradflow::named_buffers(net.model()) {
            let value = match b {
                gradflow::BufferView::Tensor { value, .. } => value.to_owned(),
                gradflow::BufferView::Count { value, .. } => ndarray::arr0(value as f64).into_dyn(),
            };
            cmp.check(&format!("{prefix}.buffer.{name}"), value);
        }
    }
    assert!(cmp.failing.is_empty(), "differ from PyTorch:\n{}", cmp.failing.join("\n"));
    // Per mode: the output and input gradient; 32 parameters' gradients (stem 3, four blocks of
    // 6, downsample 3, fc 2); 3 buffers for each of the 10 BatchNorms.
    assert_eq!(cmp.compared, 2 * (2 + 32 + 30));

    // The stages are looked through: each block is a layer of its own in the diagnosis.
    let (result, recorder) = net.with_hook(Recorder::default(), |net| {
        net.forward(x.view(), Mode::Train)?;
        net.backward(r.view())
    });
    result.unwrap();
    let recording = recorder.recording();
    let layers = recording.hidden_layers(recording.steps()[0]);
    let blocks: Vec<&str> =
        layers.iter().filter(|l| l.label.starts_with("Residual")).map(|l| l.paths[0].as_str()).collect();
    assert_eq!(blocks, ["layer1.0", "layer1.1", "layer2.0", "layer2.1"]);
    let norms: Vec<(&str, Option<f64>)> = layers.iter().map(|l| (l.label.as_str(), l.grad_norm)).collect();
    assert!(layers.iter().all(|l| l.grad_norm.is_some_and(f64::is_finite)), "{norms:?}");
}

#[test]
fn a_module_list_of_linear_layers_with_functional_activations_keeps_pytorch_s_indices() {
    // PyTorch: layers = ModuleList([Linear(4, 8), Linear(8, 8), Linear(8, 3)]), tanh applied as a
    // function: the Linear layers are layers.0, layers.1, layers.2. The tanh layers take names of
    // their own, so the Linear layers can carry those numbers.
    let mut model = Sequential::<f64>::builder(4)
        .sequential(|b| {
            b.linear(8)
                .named("0")
                .activation(Tanh)
                .named("tanh0")
                .linear(8)
                .named("1")
                .activation(Tanh)
                .named("tanh1")
                .linear(3)
                .named("2")
        })
        .named("layers")
        .build(&mut StdRng::seed_from_u64(7))
        .unwrap();
    load_as_saved_by_pytorch(&mut model, "torch_list_mlp.safetensors", 6);
    let (mut net, x, r) = matches_pytorch_on_rows(model, "torch_list_mlp_expected.safetensors");
    // Layer numbers see three hidden layers through the nested chain.
    let labels: Vec<String> = {
        let (result, recorder) = net.with_hook(Recorder::default(), |net| {
            net.forward(x.view(), Mode::Train)?;
            net.backward(r.view())
        });
        result.unwrap();
        let recording = recorder.into_recording();
        recording.hidden_layers(recording.steps()[0]).into_iter().map(|l| l.label).collect()
    };
    assert_eq!(labels, ["Linear+tanh", "Linear+tanh", "Linear"]);

    // A number may not take an unnamed child's index, nor be above the child's own index.
    let mut rng = StdRng::seed_from_u64(8);
    let err = Sequential::<f64>::builder(4)
        .linear(4)
        .activation(Tanh)
        .linear(4)
        .named("1")
        .build(&mut rng)
        .unwrap_err();
    assert!(err.to_string().contains("index of the unnamed child 1"), "{err}");
    let err = Sequential::<f64>::builder(4).linear(4).named("3").build(&mut rng).unwrap_err();
    assert!(err.to_string().contains("above the child's index"), "{err}");
}
