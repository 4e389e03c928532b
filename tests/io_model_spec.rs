//! A model described as JSON builds the same network as the builder calls it stands for.

use gradflow::activation::{Relu, Sigmoid, Tanh};
use gradflow::init::{GlorotUniform, KaimingNormal};
use gradflow::io::{LayerSpec, ModelSpec};
use gradflow::{Error, Float, Sequential, named_parameters};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn params<F: Float>(model: &Sequential<F>) -> Vec<(String, Vec<u64>)> {
    named_parameters(model)
        .into_iter()
        .map(|(n, p)| (n, p.value.iter().map(|v| v.as_f64().to_bits()).collect()))
        .collect()
}

fn describe<F: Float>(model: &Sequential<F>) -> Vec<String> {
    model.layers().map(|l| l.describe()).collect()
}

const SPEC: &str = r#"{
    "input": 4,
    "init": "he_normal",
    "layers": [
        {"dense": {"out": 8, "activation": "relu"}},
        {"repeat": {"count": 2, "width": 6, "activation": "tanh"}},
        {"linear": {"out": 3, "bias": false, "init": "glorot_uniform"}},
        {"activation": "sigmoid"},
        {"linear": {"out": 2}}
    ]
}"#;

#[test]
fn a_json_spec_builds_the_same_model_as_the_builder() {
    let spec = ModelSpec::from_json(SPEC, "spec.json").unwrap();
    let from_spec = spec.build::<f64>(&mut StdRng::seed_from_u64(5)).unwrap();
    let by_hand = Sequential::<f64>::builder(4)
        .init(KaimingNormal::fan_in())
        .dense(8, Relu)
        .repeat(2, 6, Tanh)
        .init(GlorotUniform::default())
        .bias(false)
        .linear(3)
        .activation(Sigmoid)
        .init(KaimingNormal::fan_in())
        .bias(true)
        .linear(2)
        .build(&mut StdRng::seed_from_u64(5))
        .unwrap();
    assert_eq!(describe(&from_spec), describe(&by_hand));
    assert_eq!(params(&from_spec), params(&by_hand));
    // The per-layer overrides apply to that layer only: 6 has no bias, 8 has one.
    let names: Vec<String> = params(&from_spec).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"6.weight".to_string()) && !names.contains(&"6.bias".to_string()));
    assert!(names.contains(&"8.bias".to_string()));
}

#[test]
fn a_spec_survives_a_json_round_trip_and_omitted_fields_take_their_defaults() {
    let spec = ModelSpec::from_json(SPEC, "spec.json").unwrap();
    assert_eq!((spec.bias_init.as_str(), spec.bias), ("default", true));
    assert_eq!(spec.layers[3], LayerSpec::Activation("sigmoid".into()));
    assert_eq!(spec.layers[4], LayerSpec::Linear { out: 2, bias: None, init: None, bias_init: None });
    let again = ModelSpec::from_json(&spec.to_json(), "round trip").unwrap();
    assert_eq!(again, spec);

    let path = std::env::temp_dir().join(format!("gradflow-spec-{}.json", std::process::id()));
    std::fs::write(&path, spec.to_json()).unwrap();
    let from_file = ModelSpec::from_json_file(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(from_file.unwrap(), spec);
    assert!(matches!(ModelSpec::from_json_file(&path), Err(Error::Io { .. })));
}

#[test]
fn mistakes_in_a_spec_are_errors_that_say_where() {
    // A typo in a field name is refused, not ignored.
    let err = ModelSpec::from_json(
        r#"{"input": 4, "layers": [{"dense": {"out": 3, "activaton": "relu"}}]}"#,
        "exp.json",
    )
    .unwrap_err();
    match err {
        Error::Data { source_name, reason } => {
            assert_eq!(source_name, "exp.json");
            assert!(reason.contains("activaton"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let err = ModelSpec::from_json(r#"{"input": 4, "layers": [], "bais": false}"#, "exp.json").unwrap_err();
    assert!(err.to_string().contains("bais"), "{err}");

    let spec = ModelSpec::from_json(
        r#"{"input": 4, "layers": [{"linear": {"out": 3}}, {"activation": "relu6"}]}"#,
        "exp.json",
    )
    .unwrap();
    let err = spec.build::<f32>(&mut StdRng::seed_from_u64(0)).unwrap_err().to_string();
    assert!(err.contains("layers[1]") && err.contains("relu6"), "{err}");

    let spec = ModelSpec::from_json(r#"{"input": 4, "init": "glorot", "layers": []}"#, "exp.json").unwrap();
    let err = spec.build::<f32>(&mut StdRng::seed_from_u64(0)).unwrap_err().to_string();
    assert!(err.contains("`init`") && err.contains("glorot_uniform"), "{err}");

    let spec =
        ModelSpec::from_json(r#"{"input": 4, "layers": [{"linear": {"out": 0}}]}"#, "exp.json").unwrap();
    let err = spec.build::<f32>(&mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    assert!(err.to_string().contains("out_features"), "{err}");
}
