//! A model saved by PyTorch loads into gradflow and gives PyTorch's outputs and gradients.
//!
//! The fixture files in `tests/fixtures/` were written by `scripts/make_torch_fixture.py`
//! (torch, float64): `torch_mlp.safetensors` is the `state_dict()` of
//! `nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))` saved with
//! `safetensors.torch.save_file`, and `torch_mlp_expected.safetensors` holds a 4-row input, the
//! output, and the gradients of `loss = (out * R).sum()` (so `grad_output` = R) with respect to
//! the input and every parameter, as PyTorch's autograd computed them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gradflow::activation::Tanh;
use gradflow::io::{LoadOptions, load_safetensors, load_safetensors_with, read_tensors, safetensors_bytes};
use gradflow::{Mode, Network, Sequential, named_parameters};
use ndarray::{ArrayD, Ix2};
use rand::SeedableRng;
use rand::rngs::StdRng;
use safetensors::SafeTensors;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

fn expected() -> BTreeMap<String, ArrayD<f64>> {
    read_tensors::<f64>(fixture("torch_mlp_expected.safetensors")).unwrap()
}

/// The same architecture as the PyTorch model, with other (random) weights.
fn model<F: gradflow::Float>() -> Sequential<F> {
    let mut rng = StdRng::seed_from_u64(123);
    Sequential::builder(4).dense(5, Tanh).linear(3).build(&mut rng).unwrap()
}

fn max_abs_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
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
    let mut diffs =
        vec![("output".to_string(), max_abs_diff(&output.clone().into_dyn(), &expected["output"]))];
    let loss: f64 = (&output * &r).sum();
    diffs.push(("loss".to_string(), (loss - expected["loss"].first().unwrap()).abs()));

    net.zero_grad();
    let grad_input = net.backward_with_input_grad(r.view()).unwrap().to_owned();
    diffs.push(("grad.input".to_string(), max_abs_diff(&grad_input.into_dyn(), &expected["grad.input"])));
    let mut seen = 0;
    for (name, p) in named_parameters(net.model()) {
        let key = format!("grad.{name}");
        let diff = max_abs_diff(&p.grad.to_owned(), &expected[&key]);
        // Sanity: the gradients are not trivially zero.
        assert!(p.grad.iter().any(|&g| g.abs() > 1e-3), "{key}");
        diffs.push((key, diff));
        seen += 1;
    }
    assert_eq!(seen, 4);
    for (what, diff) in diffs {
        eprintln!("{what}: max |gradflow - torch| = {diff:e}");
        assert!(diff <= 1e-10, "{what}: max |gradflow - torch| = {diff:e}");
    }
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
    assert!(max_abs_diff(&output, &expected["output"]) < 1e-5);
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
    // For the reverse check in PyTorch (scripts/make_torch_fixture.py --check FILE).
    if let Some(out) = std::env::var_os("GRADFLOW_TORCH_RESAVE") {
        std::fs::write(out, &ours).unwrap();
    }
}
