//! Typed access to a layer by path: `Sequential::layer` / `layer_mut`, `Network::layer` /
//! `layer_mut`, and `downcast_ref` on `dyn Layer` (e.g. inside a hook).

use gradflow::activation::{Relu, Tanh};
use gradflow::hooks::Event;
use gradflow::layers::ResidualBlock;
use gradflow::{Act, Error, Highway, Layer, Linear, Mode, Network, Sequential};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `fc1` (Linear 4→6), `1` highway, `2` residual block (branch: Linear, tanh, Linear), `out`.
fn model() -> Sequential<f64> {
    let mut rng = StdRng::seed_from_u64(3);
    Sequential::builder(4)
        .linear(6)
        .named("fc1")
        .highway(Relu, -1.0)
        .residual_block(6, Tanh)
        .linear(2)
        .named("out")
        .build(&mut rng)
        .unwrap()
}

fn input() -> Array2<f64> {
    Array2::from_shape_fn((3, 4), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 3.0 - 1.0)
}

#[test]
fn top_level_nested_and_named_layers_come_back_as_their_types() {
    let model = model();
    let fc1: &Linear<f64> = model.layer("fc1").unwrap();
    assert_eq!(fc1.weight().dim(), (6, 4));
    assert_eq!(model.layer::<Highway<f64>>("1").unwrap().width(), 6);
    assert_eq!(model.layer::<ResidualBlock<f64>>("2").unwrap().kind(), "Residual");
    let inner: &Linear<f64> = model.layer("2.branch.0").unwrap();
    assert_eq!(inner.weight().dim(), (6, 6));
    assert_eq!(model.layer::<Act<f64>>("2.branch.1").unwrap().activation().name(), "tanh");
    let gate: &Linear<f64> = model.layer("1.gate").unwrap();
    assert_eq!(gate.bias().unwrap()[0], -1.0);
    assert_eq!(model.layer::<Linear<f64>>("out").unwrap().out_features(), 2);
}

#[test]
fn a_layer_changed_through_layer_mut_changes_the_network() {
    let mut net = Network::new(model());
    let before = net.forward(input().view(), Mode::Eval).unwrap().to_owned();
    // Close every gate: the highway layer becomes the identity.
    let highway = net.layer_mut::<Highway<f64>>("1").unwrap();
    highway.gate_mut().bias_mut().unwrap().fill(-60.0);
    let after = net.forward(input().view(), Mode::Eval).unwrap().to_owned();
    assert!(before.iter().zip(&after).any(|(a, b)| (a - b).abs() > 1e-6));
    assert!(net.layer::<Highway<f64>>("1").unwrap().last_gate().iter().all(|&t| t < 1e-20));
    net.layer_mut::<Linear<f64>>("2.branch.2").unwrap().weight_mut().fill(0.0);
    assert!(net.layer::<Linear<f64>>("2.branch.2").unwrap().weight().iter().all(|&w| w == 0.0));
}

#[test]
fn the_wrong_type_is_an_error_naming_the_path_and_the_actual_kind() {
    let mut net = Network::new(model());
    let err = net.layer::<Highway<f64>>("fc1").unwrap_err();
    assert!(
        matches!(&err, Error::WrongLayerType { path, expected, actual }
            if path == "fc1" && expected == "Highway<f64>" && actual == "Linear (Linear(4→6))"),
        "{err}"
    );
    assert_eq!(err.to_string(), "layer `fc1` is Linear (Linear(4→6)), not Highway<f64>");
    // (A layer of the other float type, `Highway<f32>` here, does not compile: `T: Layer<f64>`.)
    let err = net.layer::<Sequential<f64>>("1").unwrap_err().to_string();
    assert_eq!(err, "layer `1` is Highway (Highway(6, relu)), not Sequential<f64>");
    let err = net.layer_mut::<Linear<f64>>("2.branch.1").unwrap_err().to_string();
    assert_eq!(err, "layer `2.branch.1` is tanh (tanh), not Linear<f64>");
}

#[test]
fn a_wrong_path_is_an_error_naming_the_missing_segment_and_what_is_there() {
    let mut net = Network::new(model());
    let cases = [
        ("fc2", "the model has no child `fc2`; its children are `fc1`, `1`, `2`, `out`"),
        ("0", "the model has no child `0`"),
        ("2.branch.5", "`2.branch` (Sequential(3 layers)) has no child `5`; its children are `0`, `1`, `2`"),
        ("2.trunk", "`2` (Residual(6→6, identity)) has no child `trunk`; its children are `branch`"),
        ("fc1.weight", "`fc1` is Linear(4→6), which has no children"),
        ("", "the path is empty"),
    ];
    for (path, expected) in cases {
        let err = net.layer::<Linear<f64>>(path).unwrap_err();
        assert!(matches!(&err, Error::NoSuchLayer { path: p, .. } if p == path), "{err}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("no layer at `{path}`: ")), "{message}");
        assert!(message.contains(expected), "{path}: {message}");
        let err = net.layer_mut::<Linear<f64>>(path).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn a_hook_reads_a_layers_typed_state_through_downcast_ref() {
    let mut net = Network::new(model());
    let mut gates = Vec::new();
    let (result, _) = net.with_hook(
        |event: &mut Event<'_, f64>| {
            if let Event::Forward(e) = event
                && let Some(highway) = e.layer.downcast_ref::<Highway<f64>>()
            {
                gates.push((e.path.to_string(), highway.last_gate().to_owned()));
            }
        },
        |net| net.forward(input().view(), Mode::Train).map(|_| ()),
    );
    result.unwrap();
    assert_eq!(gates.len(), 1);
    assert_eq!(gates[0].0, "1");
    assert_eq!(gates[0].1, net.layer::<Highway<f64>>("1").unwrap().last_gate());
    let any: &dyn Layer<f64> = net.model().get(0).unwrap();
    assert!(any.downcast_ref::<Linear<f64>>().is_some());
    assert!(any.downcast_ref::<Highway<f64>>().is_none());
}
