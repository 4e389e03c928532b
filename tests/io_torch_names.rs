//! A PyTorch module whose children have names (`fc1`, `bn1`, `act`, `fc2`) loads into a
//! gradflow chain named the same way, with no renaming, gives PyTorch's outputs and gradients,
//! and saves back under the module's names; a positional state loads through a key map.
//!
//! `tests/fixtures/torch_named_mlp*.safetensors` were written by
//! `scripts/make_torch_fixture.py --only named_mlp` (torch 2.15, float64): `fc1 = Linear(4, 6)`,
//! `bn1 = BatchNorm1d(6)` (random affine parameters, running statistics moved by two training
//! passes), `act = Tanh()`, `fc2 = Linear(6, 3)`; the expected file holds, for eval and then train
//! mode, the output, the loss `(out * R).sum()`, the gradients and the buffers after the pass.

use std::collections::BTreeMap;
use std::path::PathBuf;

use approx::abs_diff_eq;
use gradflow::activation::Tanh;
use gradflow::hooks::Event;
use gradflow::io::{
    KeyMap, LoadOptions, load_safetensors, load_safetensors_with, read_any_tensors, read_tensors,
    safetensors_bytes, safetensors_bytes_with,
};
use gradflow::{
    BufferView, Error, Layer, Linear, Mode, Network, Sequential, named_buffers, named_parameters,
};
use ndarray::{Array2, ArrayD, Ix2};
use rand::SeedableRng;
use rand::rngs::StdRng;
use safetensors::SafeTensors;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

/// gradflow's twin of the fixture's module, named as its children, with other (random) weights.
fn named_model(seed: u64) -> Sequential<f64> {
    Sequential::builder(4)
        .linear(6)
        .named("fc1")
        .batch_norm()
        .named("bn1")
        .activation(Tanh)
        .named("act")
        .linear(3)
        .named("fc2")
        .build(&mut StdRng::seed_from_u64(seed))
        .unwrap()
}

fn buffers(model: &dyn Layer<f64>) -> BTreeMap<String, ArrayD<f64>> {
    named_buffers(model)
        .into_iter()
        .map(|(name, b)| match b {
            BufferView::Tensor { value, .. } => (name, value.to_owned()),
            BufferView::Count { value, .. } => (name, ndarray::arr0(value as f64).into_dyn()),
        })
        .collect()
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

#[test]
fn a_named_pytorch_module_loads_runs_and_saves_back_under_its_own_names() {
    let path = fixture("torch_named_mlp.safetensors");
    let mut model = named_model(1);
    let report = load_safetensors(&mut model, &path).unwrap();
    assert_eq!(
        report.loaded,
        [
            "fc1.weight",
            "fc1.bias",
            "bn1.weight",
            "bn1.bias",
            "fc2.weight",
            "fc2.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "bn1.num_batches_tracked"
        ]
    );
    assert!(report.renamed.is_empty());
    // Saved back: the very tensors PyTorch wrote, under its names.
    assert_same_tensors(&safetensors_bytes(&model).unwrap(), &std::fs::read(&path).unwrap());

    let expected = read_tensors::<f64>(fixture("torch_named_mlp_expected.safetensors")).unwrap();
    let matrix = |a: &ArrayD<f64>| a.clone().into_dimensionality::<Ix2>().unwrap();
    let (x, r) = (matrix(&expected["input"]), matrix(&expected["grad_output"]));
    let mut net = Network::new(model);
    let mut failing = Vec::new();
    let mut compare = |key: String, ours: ArrayD<f64>| {
        if !abs_diff_eq!(ours, expected[&key], epsilon = 1e-10) {
            failing.push(format!("{key}: gradflow {ours} vs torch {}", expected[&key]));
        }
    };
    for (mode, prefix) in [(Mode::Eval, "eval"), (Mode::Train, "train")] {
        net.zero_grad();
        let output = net.forward(x.view(), mode).unwrap().to_owned();
        compare(format!("{prefix}.output"), output.clone().into_dyn());
        compare(format!("{prefix}.loss"), ndarray::arr0((&output * &r).sum()).into_dyn());
        let grad_input = net.backward_with_input_grad(r.view()).unwrap().to_owned();
        compare(format!("{prefix}.grad.input"), grad_input.into_dyn());
        for (name, p) in named_parameters(net.model()) {
            compare(format!("{prefix}.grad.{name}"), p.grad.to_owned());
        }
        for (name, value) in buffers(net.model()) {
            compare(format!("{prefix}.buffer.{name}"), value);
        }
    }
    assert!(failing.is_empty(), "differ from PyTorch:\n{}", failing.join("\n"));
    assert_eq!(expected["train.buffer.bn1.num_batches_tracked"].first(), Some(&3.0));
}

#[test]
fn hooks_and_paths_use_the_names() {
    let mut net = Network::new(named_model(2));
    let mut paths = Vec::new();
    let (result, _) = net.with_hook(
        |event: &mut Event<'_, f64>| {
            if let Event::Backward(b) = event {
                paths.push((b.path.to_string(), b.layer_number));
            }
        },
        |net| {
            net.forward(Array2::ones((3, 4)).view(), Mode::Train)?;
            net.backward(Array2::ones((3, 3)).view())
        },
    );
    result.unwrap();
    let expected: Vec<(String, Option<usize>)> = [("fc2", 2), ("act", 1), ("bn1", 1), ("fc1", 1)]
        .iter()
        .map(|&(p, n)| (p.to_string(), Some(n)))
        .collect();
    assert_eq!(paths, expected);
    let model = net.model();
    assert_eq!(model.layer_at("bn1").unwrap().kind(), "BatchNorm1d");
    assert_eq!(model.index_of("fc2"), Some(3));
    assert_eq!(model.name_of(2).as_deref(), Some("act"));
    assert!(model.layer_at("1").is_none(), "a named child is reached by its name only");
}

#[test]
fn a_positional_state_loads_through_a_key_map_and_saves_back_through_its_inverse() {
    // The same architecture saved by PyTorch as nn.Sequential: 0, 1, 3.
    let path = fixture("torch_bn_mlp.safetensors");
    let to_names = KeyMap::new()
        .rule("0.**", "fc1.{1}")
        .unwrap()
        .rule("1.**", "bn1.{1}")
        .unwrap()
        .rule("3.**", "fc2.{1}")
        .unwrap();
    let mut model = named_model(3);
    let report = load_safetensors_with(&mut model, &path, &LoadOptions::default().remap(to_names)).unwrap();
    assert_eq!(report.loaded.len(), 9);
    assert!(
        report
            .renamed
            .contains(&("1.num_batches_tracked".to_string(), "bn1.num_batches_tracked".to_string()))
    );
    // Back to the positional names with a function.
    let to_positions = KeyMap::new()
        .function(|name| name.replacen("fc1.", "0.", 1).replacen("bn1.", "1.", 1).replacen("fc2.", "3.", 1));
    let bytes = safetensors_bytes_with(&model, &to_positions).unwrap();
    assert_same_tensors(&bytes, &std::fs::read(&path).unwrap());
}

#[test]
fn a_key_map_that_merges_names_is_refused_naming_both_and_errors_name_both_sides() {
    let path = fixture("torch_named_mlp.safetensors");
    let mut model = named_model(4);
    let before = safetensors_bytes(&model).unwrap();
    // Both BatchNorm affine parameters to one name.
    let merge = KeyMap::new().rule("bn1.bias", "bn1.weight").unwrap();
    let err = load_safetensors_with(&mut model, &path, &LoadOptions::default().remap(merge)).unwrap_err();
    let reason = err.to_string();
    assert!(
        reason.contains("the key map renames `bn1.bias` and `bn1.weight` all to `bn1.weight`"),
        "{reason}"
    );
    assert!(reason.contains("missing `bn1.bias`"), "{reason}");
    assert_eq!(safetensors_bytes(&model).unwrap(), before, "nothing loaded");

    // A renamed tensor of the wrong shape, and one the model lacks: both names shown.
    let map = KeyMap::new().function(|name| {
        match name {
            "fc1.bias" => "fc2.bias",
            "fc2.bias" => "fc1.bias",
            "fc1.weight" => "proj.weight",
            other => other,
        }
        .to_string()
    });
    let err = load_safetensors_with(&mut model, &path, &LoadOptions::default().remap(map)).unwrap_err();
    let reason = err.to_string();
    for expected in [
        "wrong shape for `fc1.bias`: the model expects (6), the file has (3) (`fc2.bias` in the file)",
        "wrong shape for `fc2.bias`: the model expects (3), the file has (6) (`fc1.bias` in the file)",
        "unexpected `fc1.weight` (F64, shape (6, 4)): the model has no such parameter or buffer (the key \
         map renamed it `proj.weight`)",
        "missing `fc1.weight`",
    ] {
        assert!(reason.contains(expected), "`{expected}` not in:\n{reason}");
    }
    assert_eq!(safetensors_bytes(&model).unwrap(), before, "nothing loaded");

    // Saving with a map that merges two names.
    let err = safetensors_bytes_with(&model, &KeyMap::new().function(|_| "x".into())).unwrap_err();
    assert!(err.to_string().contains("renames both `fc1.weight` and `fc1.bias` to `x`"), "{err}");
}

#[test]
fn names_are_checked_and_errors_name_the_child() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut model = Sequential::<f32>::new();
    model.push_named("fc1", Linear::new(2, 2, &mut rng).unwrap()).unwrap();
    for (name, why) in [
        ("", "a name cannot be empty"),
        ("a.b", "`a.b` has a `.`"),
        ("fc1", "`fc1` already names child 0"),
        ("7", "`7` is a number"),
    ] {
        let err = model.push_named(name, Linear::new(2, 2, &mut rng).unwrap()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { field: "name", .. }) && err.to_string().contains(why),
            "{err}"
        );
    }
    assert_eq!(model.len(), 1, "nothing appended");
    model.push_named("1", Linear::new(2, 2, &mut rng).unwrap()).unwrap(); // its own index
    assert!(model.set_name(5, "x").unwrap_err().to_string().contains("there are 2 children"));

    let build = |b: gradflow::layers::SequentialBuilder<f32>| {
        b.build(&mut StdRng::seed_from_u64(0)).unwrap_err().to_string()
    };
    let err = build(Sequential::builder(2).named("fc0").linear(2));
    assert!(err.contains("named(\"fc0\") comes before any layer"), "{err}");
    let err = build(Sequential::builder(2).linear(2).named("fc").linear(2).named("fc"));
    assert!(err.contains("`fc` already names child 0"), "{err}");
    // Inside a residual branch the names are the branch's own.
    let model = Sequential::<f32>::builder(2)
        .residual(|b| b.linear(2).named("fc1").activation(Tanh).linear(2).named("fc2"))
        .named("block1")
        .build(&mut rng)
        .unwrap();
    let names: Vec<String> = named_parameters(&model).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "block1.branch.fc1.weight",
            "block1.branch.fc1.bias",
            "block1.branch.fc2.weight",
            "block1.branch.fc2.bias"
        ]
    );
    // read_any_tensors and read_tensors read what a named model writes.
    let path = std::env::temp_dir().join(format!("gradflow-names-{}.safetensors", std::process::id()));
    gradflow::io::save_safetensors(&model, &path).unwrap();
    assert_eq!(read_any_tensors(&path).unwrap().len(), 4);
    assert_eq!(read_tensors::<f32>(&path).unwrap().keys().collect::<Vec<_>>(), {
        let mut n: Vec<&String> = names.iter().collect();
        n.sort();
        n
    });
    std::fs::remove_file(&path).unwrap();
}
