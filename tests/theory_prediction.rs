//! The mean-field prediction beside the measurement: the per-layer gradient factor that
//! `theory::predict_model` computes from a model's weights, against the one `diagnose`
//! measures from a recorded pass, for the plain networks of the `resnet_vs_plain` and
//! `initializers` examples; and what the prediction says it does not cover.

use std::sync::Arc;

use gradflow::activation::{Activation, Relu, Tanh};
use gradflow::data::digits_split;
use gradflow::diagnose::{Diagnosis, diagnose};
use gradflow::hooks::{Recorder, RecorderConfig};
use gradflow::init::{Constant, GlorotUniform, KaimingNormal, LinearDefault, Normal, Zeros};
use gradflow::loss::{CrossEntropy, Loss, Reduction, Targets};
use gradflow::theory::{InputScale, LayerDescriptor, describe_model, predict, predict_model};
use gradflow::{Error, Float, Mode, Network, Sequential};
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// A network of the initializers example: its name, activation, initializer and the expected
/// per-layer factor.
type Case = (&'static str, Arc<dyn Activation<f64>>, Arc<dyn gradflow::Initializer>, f64);

/// One recorded cross-entropy pass, diagnosed.
fn measure<F: Float>(net: &mut Network<F>, x: &Array2<F>, classes: &[usize]) -> Diagnosis {
    let handle = net.attach_hook(Recorder::new(RecorderConfig::gradients()).unwrap());
    let output = net.forward(x.view(), Mode::Train).unwrap();
    let (_, grad) =
        CrossEntropy::new(Reduction::Mean).value_and_grad(output, Targets::Classes(classes)).unwrap();
    net.backward(grad.view()).unwrap();
    diagnose(&net.detach_hook(handle).unwrap().into_recording(), &Default::default()).unwrap()
}

/// Measured over predicted per-layer factor (measured on 3 seeds of each setting below:
/// 0.975–1.026).
fn assert_agree(predicted: f64, measured: f64, what: &str) {
    let ratio = measured / predicted;
    assert!(
        (0.96..=1.04).contains(&ratio),
        "{what}: predicted ×{predicted:.4} per layer, measured ×{measured:.4}"
    );
}

#[test]
fn resnet_vs_plain_plain_tanh_network_predicted_and_measured_factors_agree() {
    // The example's plain network: 20 × (Linear(64→64) + tanh), PyTorch's default init, f32,
    // 256 digits. The digits' pixels are in [0, 1]: their mean square is the input scale.
    let (train, _) = digits_split::<f32>(0.25, 0).unwrap();
    let x = train.inputs.slice(ndarray::s![..256, ..]).to_owned();
    let classes = &train.targets.classes().unwrap()[..256];
    let moment = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64;
    let mut rng = StdRng::seed_from_u64(0);
    let model = Sequential::<f32>::builder(64).repeat(20, 64, Tanh).linear(10).build(&mut rng).unwrap();
    let mut net = Network::new(model);
    let prediction = predict_model(net.model(), InputScale::SecondMoment(moment)).unwrap();
    let measured = measure(&mut net, &x, classes);
    // About ×0.57 per layer (σ_w² = 1/3 from U(±1/√64), plus the bias's 1/192).
    let predicted = prediction.per_layer_factor.unwrap();
    assert!((0.56..0.58).contains(&predicted), "{predicted}");
    assert_agree(predicted, measured.per_layer_factor.unwrap(), "resnet_vs_plain plain tanh");
    let (p, m) = (prediction.gradient_ratio.unwrap(), measured.gradient_ratio.unwrap());
    assert!((0.5..2.0).contains(&(m / p)), "first/last ratio: predicted {p:e}, measured {m:e}");
    assert_eq!(prediction.layers.len(), measured.layers.len());
    assert!(prediction.first_not_covered.is_none());
}

#[test]
fn initializers_plain_networks_predicted_and_measured_factors_agree() {
    // The example's networks: 30 × (Linear(128→128) + activation) + Linear(128→10), zero
    // biases, f64, standard normal inputs (input scale 1).
    let (width, depth, batch) = (128, 30, 256);
    let mut rng = StdRng::seed_from_u64(43);
    let x = Array2::from_shape_simple_fn((batch, width), || rng.sample::<f64, _>(StandardNormal));
    let classes: Vec<usize> = (0..batch).map(|_| rng.random_range(0..10)).collect();
    let tanh: Arc<dyn Activation<f64>> = Arc::new(Tanh);
    let relu: Arc<dyn Activation<f64>> = Arc::new(Relu);
    let cases: Vec<Case> = vec![
        ("tanh, standard", tanh.clone(), Arc::new(LinearDefault), 0.576),
        ("tanh, glorot", tanh.clone(), Arc::new(GlorotUniform::default()), 0.950),
        ("tanh, normal(1): saturated, exploding", tanh, Arc::new(Normal::new(0.0, 1.0).unwrap()), 2.50),
        ("relu, glorot", relu.clone(), Arc::new(GlorotUniform::default()), 0.707),
        ("relu, he", relu.clone(), Arc::new(KaimingNormal::fan_in()), 1.0),
        ("relu, normal(0.01)", relu, Arc::new(Normal::new(0.0, 0.01).unwrap()), 0.08),
    ];
    for (what, activation, init, expected) in cases {
        let mut rng = StdRng::seed_from_u64(42);
        let model = Sequential::<f64>::builder(width)
            .init(init)
            .bias_init(Zeros)
            .repeat(depth, width, activation)
            .linear(10)
            .build(&mut rng)
            .unwrap();
        let mut net = Network::new(model);
        let predicted =
            predict_model(net.model(), InputScale::SecondMoment(1.0)).unwrap().per_layer_factor.unwrap();
        // Closed forms: √(σ_w²/2) for ReLU; tanh's by the theory (σ_w² = 1/3, 1, 128).
        assert!(
            (predicted / expected - 1.0).abs() < 0.01,
            "{what}: predicted {predicted}, expected ≈ {expected}"
        );
        assert_agree(predicted, measure(&mut net, &x, &classes).per_layer_factor.unwrap(), what);
    }
}

#[test]
fn descriptors_from_a_recording_s_numbers_give_the_same_prediction_as_the_model() {
    let mut rng = StdRng::seed_from_u64(1);
    let model = Sequential::<f64>::builder(32).repeat(4, 48, Tanh).linear(10).build(&mut rng).unwrap();
    let direct = predict_model(&model, InputScale::SecondMoment(0.5)).unwrap();
    let described = predict(&describe_model(&model).unwrap(), InputScale::SecondMoment(0.5)).unwrap();
    assert_eq!(direct, described);
    // What a recording keeps: ‖W‖, its entry count, ‖b‖ and its count, the activation's name.
    let mut descriptors = Vec::new();
    for (i, layer) in model.layers().enumerate() {
        if let Some(activation) = layer.as_activation() {
            descriptors.push(LayerDescriptor::activation_named(i.to_string(), activation.name()).unwrap());
            continue;
        }
        let mut norms = Vec::new();
        layer.visit_parameters(&mut |p| {
            norms.push((
                p.value.iter().map(|v| v * v).sum::<f64>().sqrt(),
                p.value.len() as u64,
                p.value.shape()[0],
            ))
        });
        let (w, b) = (norms[0], norms[1]);
        descriptors.push(
            LayerDescriptor::linear_from_norms(i.to_string(), w.2, w.0, w.1, Some((b.0, b.1))).unwrap(),
        );
    }
    let from_norms = predict(&descriptors, InputScale::SecondMoment(0.5)).unwrap();
    for (a, b) in from_norms.layers.iter().zip(&direct.layers) {
        let (a, b) = (a.prediction.unwrap(), b.prediction.unwrap());
        assert!((a.gradient_factor - b.gradient_factor).abs() < 1e-12 && (a.q - b.q).abs() < 1e-12);
    }
    let err = LayerDescriptor::linear_from_norms("3", 7, 1.0, 100, None).unwrap_err();
    assert!(err.to_string().contains("100 weights"), "{err}");
}

#[test]
fn layers_the_theory_does_not_cover_are_named_with_the_reason() {
    let mut rng = StdRng::seed_from_u64(2);
    let batch_norm = Sequential::<f32>::builder(16)
        .dense(16, Tanh)
        .linear(16)
        .batch_norm()
        .activation(Tanh)
        .dense(16, Tanh)
        .linear(4)
        .build(&mut rng)
        .unwrap();
    let p = predict_model(&batch_norm, InputScale::SecondMoment(1.0)).unwrap();
    assert!(p.layers[0].prediction.is_some());
    let reason = p.layers[1].not_covered.as_deref().unwrap();
    assert!(reason.starts_with("3:") && reason.contains("batch normalization"), "{reason}");
    let after = p.layers[2].not_covered.as_deref().unwrap();
    assert!(after.contains("unknown") && after.contains("3:"), "{after}");
    assert_eq!(p.gradient_ratio, None);
    assert_eq!(p.first_not_covered.as_deref(), Some(reason));

    let residual =
        Sequential::<f64>::builder(8).repeat_residual(2, 8, Relu).linear(2).build(&mut rng).unwrap();
    let p = predict_model(&residual, InputScale::SecondMoment(1.0)).unwrap();
    assert!(p.layers[0].not_covered.as_deref().unwrap().contains("residual"), "{:?}", p.layers[0]);

    // Weights drawn around 0.5, or a constant bias: not the independent zero-mean draws assumed.
    let shifted = Sequential::<f64>::builder(32)
        .init(Normal::new(0.5, 0.1).unwrap())
        .repeat(3, 32, Tanh)
        .build(&mut rng)
        .unwrap();
    let p = predict_model(&shifted, InputScale::SecondMoment(1.0)).unwrap();
    assert!(p.layers[0].not_covered.as_deref().unwrap().contains("weights have mean"), "{:?}", p.layers[0]);
    let constant_bias = Sequential::<f64>::builder(32)
        .bias_init(Constant::new(0.1).unwrap())
        .repeat(3, 32, Tanh)
        .build(&mut rng)
        .unwrap();
    let p = predict_model(&constant_bias, InputScale::SecondMoment(1.0)).unwrap();
    assert!(p.layers[0].not_covered.as_deref().unwrap().contains("biases have mean"), "{:?}", p.layers[0]);

    // From a recording's kinds: the same reason.
    let described = predict(
        &[LayerDescriptor::linear("0", 16, 1.0, 0.0), LayerDescriptor::other("1", "BatchNorm1d")],
        InputScale::SecondMoment(1.0),
    )
    .unwrap();
    assert!(described.layers[0].not_covered.as_deref().unwrap().contains("batch normalization"));

    let err = predict_model(&constant_bias, InputScale::SecondMoment(-1.0)).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains("-1"), "{err}");
    let err = predict(&[LayerDescriptor::linear("0", 4, f64::NAN, 0.0)], InputScale::SecondMoment(1.0))
        .unwrap_err();
    assert!(err.to_string().contains("weight_variance"), "{err}");
}

#[test]
fn bad_variances_and_overflowing_signals_are_errors_naming_the_layer() {
    let relu = |path: usize| LayerDescriptor::activation_named(path.to_string(), "relu").unwrap();
    // A negative or infinite variance in the second hidden layer.
    for (weight, bias, field) in [(1.0, -0.5, "bias_variance"), (f64::INFINITY, 0.0, "weight_variance")] {
        let layers = [
            LayerDescriptor::linear("0", 8, 2.0, 0.0),
            relu(1),
            LayerDescriptor::linear("2", 8, weight, bias),
            relu(3),
            LayerDescriptor::linear("4", 8, 1.0, 0.0),
        ];
        let err = predict(&layers, InputScale::SecondMoment(1.0)).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("layer 2 (path 2)") && text.contains(field), "{text}");
    }
    // 400 ReLU layers with σ_w² = 100: the variance grows ×50 per layer, beyond f64 after ~180.
    let mut layers = Vec::new();
    for i in 0..400 {
        layers.push(LayerDescriptor::linear((2 * i).to_string(), 64, 100.0, 0.0));
        layers.push(relu(2 * i + 1));
    }
    layers.push(LayerDescriptor::linear("800", 64, 1.0, 0.0));
    let err = predict(&layers, InputScale::SecondMoment(1.0)).unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    // "non-finite value in mean-field expectation E[φ(√q·z)²] for relu at layer 180 (path 358): …"
    let text = err.to_string();
    let layer: usize =
        text.split("relu at layer ").nth(1).and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    assert!((170..=190).contains(&layer), "{text}");
    let err = predict(&layers, InputScale::FirstPreactivationVariance(f64::NAN)).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
}

#[test]
fn the_per_layer_factor_of_a_very_deep_network_survives_where_the_ratio_underflows() {
    // 2000 tanh layers with σ_w² = 0.01: ×0.1 per layer, 10^-1999 over the network.
    let mut layers = Vec::new();
    for i in 0..2000 {
        layers.push(LayerDescriptor::linear((2 * i).to_string(), 64, 0.01, 0.0));
        layers.push(LayerDescriptor::activation_named((2 * i + 1).to_string(), "tanh").unwrap());
    }
    layers.push(LayerDescriptor::linear("4000", 64, 1.0, 0.0));
    let p = predict(&layers, InputScale::SecondMoment(1.0)).unwrap();
    assert_eq!(p.gradient_ratio, Some(0.0));
    let factor = p.per_layer_factor.unwrap();
    assert!((factor - 0.1).abs() < 1e-6, "{factor}");
}
