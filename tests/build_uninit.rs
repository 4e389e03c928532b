//! Building without a random generator (`SequentialBuilder::build_uninit`,
//! `ModelSpec::build_uninit`) and loading every weight gives the saved model back exactly.

use std::path::PathBuf;

use gradflow::activation::{Relu, Tanh};
use gradflow::io::{ModelSpec, load_safetensors, save_safetensors};
use gradflow::layers::SequentialBuilder;
use gradflow::loss::{Loss, Mse};
use gradflow::optim::SgdConfig;
use gradflow::{BufferView, Mode, Network, Optimizer, Sequential, Targets, named_buffers, named_parameters};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::StdRng;

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        TempFile(
            std::env::temp_dir().join(format!("gradflow-uninit-{}-{name}.safetensors", std::process::id())),
        )
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Linear, BatchNorm, tanh, a highway layer, a residual block and a named output layer.
fn describe() -> SequentialBuilder<f64> {
    Sequential::builder(5)
        .linear(6)
        .named("fc1")
        .batch_norm()
        .named("bn1")
        .activation(Tanh)
        .highway(Relu, -1.5)
        .residual_block(6, Tanh)
        .linear(3)
        .named("head")
}

fn input() -> Array2<f64> {
    Array2::from_shape_fn((8, 5), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 3.0 - 1.0)
}

fn target() -> Array2<f64> {
    Array2::from_shape_fn((8, 3), |(i, j)| ((i + 2 * j) % 5) as f64 / 2.5 - 1.0)
}

/// A few SGD steps, so that weights and BatchNorm's running statistics and counter move away
/// from any initial value.
fn trained() -> Network<f64> {
    let mut net = Network::new(describe().build(&mut StdRng::seed_from_u64(11)).unwrap());
    let mut sgd = SgdConfig::new(0.1).build::<f64>().unwrap();
    let mut grad = Array2::zeros((0, 0));
    for _ in 0..3 {
        net.zero_grad();
        let y = net.forward(input().view(), Mode::Train).unwrap();
        Mse::default().compute(y, Targets::Values(target().view()), &mut grad).unwrap();
        net.backward(grad.view()).unwrap();
        sgd.step(net.model_mut()).unwrap();
    }
    net
}

/// Every parameter's gradient, by name.
type Gradients = Vec<(String, Vec<f64>)>;

/// Outputs (train and eval) and every parameter gradient of one step.
fn run(net: &mut Network<f64>) -> (Array2<f64>, Array2<f64>, Gradients) {
    let eval = net.forward(input().view(), Mode::Eval).unwrap().to_owned();
    net.zero_grad();
    let train = net.forward(input().view(), Mode::Train).unwrap().to_owned();
    net.backward(Array2::from_elem((8, 3), 0.25).view()).unwrap();
    let grads = named_parameters(net.model())
        .into_iter()
        .map(|(n, p)| (n, p.grad.iter().copied().collect()))
        .collect();
    (eval, train, grads)
}

#[test]
fn build_uninit_sets_every_parameter_to_zero_and_buffers_to_their_initial_values() {
    let model = describe().build_uninit().unwrap();
    let built = describe().build(&mut StdRng::seed_from_u64(0)).unwrap();
    let names = |m: &Sequential<f64>| named_parameters(m).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(names(&model), names(&built));
    assert!(named_parameters(&model).iter().all(|(_, p)| p.value.iter().all(|&w| w == 0.0)));
    for (name, buffer) in named_buffers(&model) {
        match buffer {
            BufferView::Tensor { value, .. } => {
                let expected = if name.ends_with("running_var") { 1.0 } else { 0.0 };
                assert!(value.iter().all(|&v| v == expected), "{name}");
            }
            BufferView::Count { value, .. } => assert_eq!(value, 0, "{name}"),
        }
    }
}

#[test]
fn build_uninit_then_load_computes_exactly_what_the_saved_model_did() {
    let mut saved = trained();
    let file = TempFile::new("model");
    save_safetensors(saved.model(), &file.0).unwrap();

    let mut model = describe().build_uninit().unwrap();
    let report = load_safetensors(&mut model, &file.0).unwrap();
    assert!(report.missing.is_empty() && report.unexpected.is_empty());
    let mut loaded = Network::new(model);
    let bits = |net: &Network<f64>| {
        let mut all: Vec<u64> = Vec::new();
        net.visit_parameters(&mut |p| all.extend(p.value.iter().map(|v| v.to_bits())));
        for (_, b) in named_buffers(net.model()) {
            match b {
                BufferView::Tensor { value, .. } => all.extend(value.iter().map(|v| v.to_bits())),
                BufferView::Count { value, .. } => all.push(value),
            }
        }
        all
    };
    assert_eq!(bits(&loaded), bits(&saved));
    let (a, b) = (run(&mut saved), run(&mut loaded));
    assert_eq!(a.0, b.0, "eval outputs");
    assert_eq!(a.1, b.1, "train outputs");
    assert_eq!(a.2, b.2, "parameter gradients");
}

#[test]
fn a_file_missing_a_weight_does_not_leave_zeros_behind_silently() {
    let saved = trained();
    let file = TempFile::new("partial");
    // Save only the first two layers: everything after them is missing from the file.
    let mut partial = Sequential::<f64>::new();
    partial.push_named("fc1", saved.model().layer::<gradflow::Linear<f64>>("fc1").unwrap().clone()).unwrap();
    save_safetensors(&partial, &file.0).unwrap();
    let mut model = describe().build_uninit().unwrap();
    let err = load_safetensors(&mut model, &file.0).unwrap_err().to_string();
    assert!(err.contains("head.weight") && err.contains("nothing was loaded"), "{err}");
    assert!(named_parameters(&model).iter().all(|(_, p)| p.value.iter().all(|&w| w == 0.0)));
}

#[test]
fn a_model_spec_builds_uninitialized_too() {
    let spec = ModelSpec::from_json(
        r#"{"input": 4, "layers": [{"dense": {"out": 6, "activation": "tanh"}}, {"linear": {"out": 2}}]}"#,
        "spec.json",
    )
    .unwrap();
    let mut trained = spec.build::<f32>(&mut StdRng::seed_from_u64(2)).unwrap();
    let file = TempFile::new("spec");
    save_safetensors(&trained, &file.0).unwrap();
    let mut loaded = spec.build_uninit::<f32>().unwrap();
    assert!(named_parameters(&loaded).iter().all(|(_, p)| p.value.iter().all(|&w| w == 0.0)));
    load_safetensors(&mut loaded, &file.0).unwrap();
    let x = Array2::from_shape_fn((3, 4), |(i, j)| (i as f32 - j as f32) / 4.0);
    let (mut a, mut b) = (Network::new(std::mem::take(&mut trained)), Network::new(loaded));
    assert_eq!(a.predict(x.view()).unwrap(), b.predict(x.view()).unwrap());
}
