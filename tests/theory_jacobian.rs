//! The input–output Jacobian built from backward passes, checked against central finite
//! differences of the network's output in f64, and what the Jacobian passes leave unchanged.

use std::sync::{Arc, Mutex};

use gradflow::activation::{Relu, Sigmoid, Tanh};
use gradflow::hooks::Event;
use gradflow::init::{GlorotUniform, Normal};
use gradflow::theory::{Spectrum, jacobian, jacobian_spectra, network_jacobian, network_jacobian_spectra};
use gradflow::{Error, Layer, Mode, Network, Sequential};
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Central differences of `net.predict` at `x`, step `h`: column j is ∂y/∂x_j.
fn finite_difference_jacobian(net: &mut Network<f64>, x: &Array1<f64>, h: f64) -> Array2<f64> {
    let n_in = x.len();
    let out = net.predict(x.view().insert_axis(ndarray::Axis(0))).unwrap().ncols();
    let mut j = Array2::zeros((out, n_in));
    for k in 0..n_in {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[k] += h;
        minus[k] -= h;
        let yp = net.predict(plus.view().insert_axis(ndarray::Axis(0))).unwrap();
        let ym = net.predict(minus.view().insert_axis(ndarray::Axis(0))).unwrap();
        for i in 0..out {
            j[[i, k]] = (yp[[0, i]] - ym[[0, i]]) / (2.0 * h);
        }
    }
    j
}

fn input(n: usize, seed: u64) -> Array1<f64> {
    Array1::from_shape_fn(n, |i| ((i as u64 * 37 + seed * 11) % 23) as f64 / 11.0 - 1.0)
}

fn assert_close(analytic: &Array2<f64>, numeric: &Array2<f64>, what: &str) {
    assert_eq!(analytic.dim(), numeric.dim(), "{what}");
    let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-3);
    for ((i, j), a) in analytic.indexed_iter() {
        let n = numeric[[i, j]];
        assert!((a - n).abs() <= 1e-7 * scale, "{what}: J[{i}][{j}] analytic {a} vs finite differences {n}");
    }
}

fn models() -> Vec<(&'static str, Sequential<f64>)> {
    let mut rng = StdRng::seed_from_u64(3);
    vec![
        ("tanh", Sequential::builder(7).repeat(3, 9, Tanh).linear(5).build(&mut rng).unwrap()),
        (
            "sigmoid, wide output",
            Sequential::builder(5).dense(12, Sigmoid).linear(300).build(&mut rng).unwrap(),
        ),
        (
            "residual + batch norm (eval)",
            Sequential::builder(6)
                .init(GlorotUniform::default())
                .linear(8)
                .batch_norm()
                .activation(Tanh)
                .residual_block(8, Tanh)
                .layer_norm()
                .linear(4)
                .build(&mut rng)
                .unwrap(),
        ),
    ]
}

#[test]
fn the_jacobian_matches_finite_differences_of_the_output() {
    for (name, model) in models() {
        let mut net = Network::new(model);
        let width = match name {
            "tanh" => 7,
            "sigmoid, wide output" => 5,
            _ => 6,
        };
        let x = input(width, 1);
        let numeric = finite_difference_jacobian(&mut net, &x, 1e-5);
        let analytic = network_jacobian(&mut net, x.view()).unwrap();
        assert_close(&analytic, &numeric, name);
        // The same through the bare-layer entry point and the spectra's network Jacobian.
        let bare = jacobian(net.model_mut(), x.view()).unwrap();
        assert_eq!(bare, analytic, "{name}");
        let spectra = network_jacobian_spectra(&mut net, x.view()).unwrap();
        assert_eq!(spectra.network, Spectrum::of(analytic.view()).unwrap(), "{name}");
    }
}

#[test]
fn each_hidden_layer_s_jacobian_matches_finite_differences_and_their_product_is_the_network_s() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut model = Sequential::<f64>::builder(6).repeat(3, 6, Tanh).linear(6).build(&mut rng).unwrap();
    let x = input(6, 2);
    let spectra = jacobian_spectra(&mut model, x.view()).unwrap();
    let labels: Vec<&str> = spectra.layers.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(labels, ["Linear+tanh", "Linear+tanh", "Linear+tanh", "Linear"]);
    assert_eq!(spectra.layers[1].paths, ["2", "3"]);
    // Chain rule: J = J₄·J₃·J₂·J₁, so |det J| = Π |det Jₗ| = Π over all singular values.
    let product = |s: &Spectrum| s.singular_values.iter().product::<f64>();
    let layers: f64 = spectra.layers.iter().map(|l| product(&l.spectrum)).product();
    let network = product(&spectra.network);
    assert!((layers / network - 1.0).abs() < 1e-10, "{layers} vs {network}");
    // The first hidden layer's Jacobian against finite differences of Linear + tanh alone.
    let mut first = Sequential::<f64>::new();
    let w = model.get(0).unwrap();
    let mut weights = Vec::new();
    w.visit_parameters(&mut |p| weights.push(p.value.to_owned()));
    let weight = weights[0].clone().into_dimensionality::<ndarray::Ix2>().unwrap();
    let bias = weights[1].clone().into_dimensionality::<ndarray::Ix1>().unwrap();
    first.push(gradflow::Linear::from_weights(weight, Some(bias)).unwrap());
    first.push(gradflow::Act::new(Tanh));
    let mut first = Network::new(first);
    let numeric = finite_difference_jacobian(&mut first, &x, 1e-5);
    let exact = Spectrum::of(numeric.view()).unwrap();
    for (a, b) in spectra.layers[0].spectrum.singular_values.iter().zip(&exact.singular_values) {
        assert!((a - b).abs() < 1e-8, "{a} vs {b}");
    }
}

#[test]
fn jacobian_passes_leave_gradients_hooks_and_step_counter_alone() {
    let mut rng = StdRng::seed_from_u64(5);
    let model = Sequential::<f64>::builder(4).dense(6, Relu).batch_norm().linear(3).build(&mut rng).unwrap();
    let mut net = Network::new(model);
    let events = Arc::new(Mutex::new(0usize));
    let seen = events.clone();
    net.attach_hook(move |_: &mut Event<'_, f64>| *seen.lock().unwrap() += 1);
    let batch = Array2::from_shape_fn((5, 4), |(i, j)| (i + 2 * j) as f64 / 7.0 - 0.5);
    net.forward(batch.view(), Mode::Train).unwrap();
    net.backward(Array2::ones((5, 3)).view()).unwrap();
    let before: Vec<Array2<f64>> = net
        .named_parameters()
        .iter()
        .map(|(_, p)| p.grad.to_owned().into_shape_with_order((p.grad.len(), 1)).unwrap())
        .collect();
    let mut buffers_before = Vec::new();
    net.model().visit_buffers(&mut |b| buffers_before.push(format!("{b:?}")));
    let events_before = *events.lock().unwrap();
    let steps_before = net.step_count();

    network_jacobian_spectra(&mut net, input(4, 3).view()).unwrap();

    let after: Vec<Array2<f64>> = net
        .named_parameters()
        .iter()
        .map(|(_, p)| p.grad.to_owned().into_shape_with_order((p.grad.len(), 1)).unwrap())
        .collect();
    assert_eq!(before, after, "parameter gradients must be put back");
    let mut buffers_after = Vec::new();
    net.model().visit_buffers(&mut |b| buffers_after.push(format!("{b:?}")));
    assert_eq!(buffers_before, buffers_after, "Eval passes leave BatchNorm's running statistics alone");
    assert_eq!(*events.lock().unwrap(), events_before, "no hook sees the Jacobian passes");
    assert_eq!(net.step_count(), steps_before);
    // The caches were overwritten: a backward pass now needs a new forward pass.
    let err = net.backward(Array2::ones((5, 3)).view()).unwrap_err();
    assert!(matches!(err, Error::BackwardBeforeForward { .. }), "{err}");
    net.forward(batch.view(), Mode::Train).unwrap();
    net.backward(Array2::ones((5, 3)).view()).unwrap();
}

#[test]
fn too_wide_or_mismatched_or_non_finite_requests_are_clear_errors() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut wide = Sequential::<f32>::builder(1)
        .init(Normal::new(0.0, 1.0).unwrap())
        .linear(3000)
        .build(&mut rng)
        .unwrap();
    let err = jacobian_spectra(&mut wide, Array1::ones(1).view()).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { field: "width", .. }), "{err}");
    assert!(err.to_string().contains("3000") && err.to_string().contains("2048"), "{err}");
    let err = jacobian(&mut wide, Array1::ones(1).view()).unwrap_err();
    assert!(err.to_string().contains("3000"), "{err}");

    let mut model = Sequential::<f64>::builder(4).dense(4, Tanh).build(&mut rng).unwrap();
    let err = jacobian_spectra(&mut model, Array1::ones(5).view()).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    let err = jacobian(&mut model, Array1::from_vec(vec![0.0, f64::NAN, 0.0, 0.0]).view()).unwrap_err();
    assert!(err.to_string().contains("feature 1") && err.to_string().contains("NaN"), "{err}");
    assert_eq!(model.output_features(4).unwrap(), 4);
}

#[test]
fn an_f32_network_gives_the_f64_jacobian_to_f32_precision() {
    let mut rng = StdRng::seed_from_u64(8);
    let wide = Sequential::<f64>::builder(5).repeat(2, 7, Tanh).linear(3).build(&mut rng).unwrap();
    let mut rng = StdRng::seed_from_u64(8);
    let mut narrow = Sequential::<f32>::builder(5).repeat(2, 7, Tanh).linear(3).build(&mut rng).unwrap();
    let mut wide = wide;
    let x = input(5, 4);
    let a = jacobian(&mut wide, x.view()).unwrap();
    let b = jacobian(&mut narrow, x.mapv(|v| v as f32).view()).unwrap();
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() < 1e-5, "{p} vs {q}");
    }
}
