//! Adversarial inputs to constructors, builders, generators, settings and optimizer steps: sizes
//! that overflow or exceed gradflow's limits, children replaced by ones of another width,
//! settings valid in `f64` but zero or infinite in `f32`, and values whose statistics or updates
//! overflow. Every case must be an `Err` naming what was wrong, never a panic, an abort or a
//! silently wrong result (see `gradflow::limits` and the README's "Reliability").

use gradflow::activation::{Relu, Tanh};
use gradflow::data::{adding_problem, spirals};
use gradflow::export::Histogram;
use gradflow::hooks::Context;
use gradflow::init::{Constant, Uniform};
use gradflow::io::ModelSpec;
use gradflow::layers::{BatchNorm2d, Conv2dConfig, ImageShape, MaxPool2d};
use gradflow::ndarray::{Array1, Array2, array};
use gradflow::optim::{AdamConfig, AdamWConfig, RmsPropConfig, SgdConfig};
use gradflow::recurrent::{GruConfig, LstmConfig, RnnConfig};
use gradflow::{
    BatchNorm1d, BatchNormConfig, Error, HighwayConfig, Layer, LayerNorm, LayerNormConfig, Linear,
    LinearConfig, Mode, Optimizer, PRelu, ResidualBlock, Scale, Sequential,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

/// The message of an `InvalidConfig` error, which must mention every one of `words`.
fn config_error<T: std::fmt::Debug>(result: gradflow::Result<T>, words: &[&str]) -> String {
    let err = result.expect_err("must be refused");
    assert!(matches!(err, Error::InvalidConfig { .. }), "not InvalidConfig: {err:?}");
    let msg = err.to_string();
    for word in words {
        assert!(msg.contains(word), "`{word}` missing from: {msg}");
    }
    msg
}

/// The whole state of a layer (parameters and buffers) as bytes, to compare bit for bit.
fn state<L: Layer<f32>>(layer: &L) -> Vec<u8> {
    gradflow::io::safetensors_bytes(layer).unwrap()
}

// ---- sizes ---------------------------------------------------------------------------------

#[test]
fn sizes_linear_over_the_limit_or_overflowing_is_refused_before_allocating() {
    config_error(Linear::<f32>::new(1_000_000, 1_000_000, &mut rng()), &["Linear", "weight", "entries"]);
    config_error(Linear::<f32>::new(usize::MAX, 2, &mut rng()), &["more than usize::MAX"]);
    config_error(Linear::<f64>::new(1 << 32, 1 << 32, &mut rng()), &["weight"]);
    config_error(LinearConfig::new(3, usize::MAX).bias(false).build::<f32>(&mut rng()), &["weight"]);
    // The limit itself is documented in one place.
    assert_eq!(gradflow::limits::MAX_TENSOR_ELEMENTS, 1 << 31);
}

#[test]
fn sizes_normalization_and_prelu_over_the_limit_are_refused() {
    config_error(BatchNorm1d::<f32>::new(1 << 60), &["BatchNorm1d", "num_features"]);
    config_error(BatchNorm1d::<f64>::new(usize::MAX), &["num_features"]);
    config_error(LayerNorm::<f32>::new(1 << 60), &["LayerNorm", "normalized_shape"]);
    config_error(PRelu::<f32>::new(1 << 60, 0.25), &["PReLU"]);
    config_error(BatchNorm2d::<f32>::new(ImageShape::new(usize::MAX, 2, 2)), &["BatchNorm2d"]);
    config_error(BatchNorm2d::<f32>::new(ImageShape::new(4, 1 << 20, 1 << 20)), &["BatchNorm2d", "image"]);
}

#[test]
fn sizes_recurrent_gate_rows_that_overflow_are_refused() {
    // 4 · 2⁶² overflows usize: the LSTM used to build with 0 parameters.
    config_error(LstmConfig::new(4, 1 << 62).build::<f32>(&mut rng()), &["LSTM", "hidden_size"]);
    config_error(GruConfig::new(4, usize::MAX / 2).build::<f32>(&mut rng()), &["hidden_size"]);
    config_error(RnnConfig::new(1 << 40, 1 << 40).build::<f32>(&mut rng()), &["weight_ih"]);
    config_error(LstmConfig::new(2, 1000).num_layers(1 << 40).build::<f32>(&mut rng()), &["num_layers"]);
    // Ordinary sizes still build.
    assert!(LstmConfig::new(3, 5).num_layers(2).build::<f32>(&mut rng()).is_ok());
}

#[test]
fn sizes_convolution_and_pooling_geometry_that_overflows_is_refused() {
    let build = |config: Conv2dConfig, size| config.build::<f32>(size, &mut rng());
    assert!(build(Conv2dConfig::new(1 << 40, 1 << 40, 3), (8, 8)).is_err());
    assert!(build(Conv2dConfig::new(3, 4, usize::MAX), (8, 8)).is_err());
    assert!(build(Conv2dConfig::new(3, 4, 3).padding(usize::MAX), (8, 8)).is_err());
    assert!(build(Conv2dConfig::new(3, 4, 3).dilation(usize::MAX), (8, 8)).is_err());
    assert!(build(Conv2dConfig::new(3, 4, 3), (usize::MAX, usize::MAX)).is_err());
    assert!(MaxPool2d::<f32>::new(ImageShape::new(usize::MAX, usize::MAX, 1), 2, 2).is_err());
    assert!(MaxPool2d::<f32>::new(ImageShape::new(3, 8, 8), usize::MAX, 1).is_err());
    assert!(build(Conv2dConfig::new(3, 4, 3).padding(1), (8, 8)).is_ok());
}

#[test]
fn sizes_builders_and_specs_refuse_huge_widths_and_repeat_counts() {
    let build = |b: gradflow::SequentialBuilder<f32>| b.build(&mut rng());
    config_error(build(Sequential::builder(8).repeat(1_000_000_000_000, 8, Tanh)), &["repeat", "MAX_LAYERS"]);
    config_error(build(Sequential::builder(8).repeat_residual(usize::MAX, 8, Relu)), &["MAX_LAYERS"]);
    config_error(build(Sequential::builder(8).repeat_highway(1 << 40, Relu, -2.0)), &["MAX_LAYERS"]);
    config_error(build(Sequential::builder(1_000_000).linear(1_000_000)), &["parameters"]);
    // Layers of unknown size (a residual block) are checked one by one, naming the first too large.
    config_error(build(Sequential::builder(8).residual(|b| b.linear(1 << 32).linear(8))), &["0.branch"]);
    config_error(build(Sequential::builder(usize::MAX).linear(2)), &["parameters"]);
    // 40 000² = 1.6·10⁹ entries per layer is under the per-tensor limit, 20 of them are not
    // under the model limit: refused before the first is drawn.
    config_error(build(Sequential::builder(40_000).repeat(20, 40_000, Tanh)), &["MAX_MODEL_PARAMETERS"]);
    let spec = |json: &str| ModelSpec::from_json(json, "spec").unwrap().build::<f32>(&mut rng());
    assert!(
        spec(r#"{"input": 4, "layers": [{"linear": {"out": 1000000}}, {"linear": {"out": 1000000}}]}"#)
            .is_err()
    );
    assert!(
        spec(r#"{"input": 4, "layers": [{"repeat": {"count": 1000000000000, "width": 4, "activation": "tanh"}}]}"#)
            .is_err()
    );
}

#[test]
fn sizes_generators_and_histograms_refuse_huge_requests() {
    config_error(adding_problem::<f32>(1_000_000, 1_000_000, 0), &["adding_problem"]);
    config_error(adding_problem::<f32>(usize::MAX, usize::MAX, 0), &["adding_problem"]);
    config_error(spirals::<f32>(usize::MAX, 2, 0.1, 0), &["spirals", "classes"]);
    config_error(spirals::<f32>(1 << 20, 1 << 20, 0.1, 0), &["spirals"]);
    config_error(Histogram::from_values([1.0, 2.0], 1 << 40), &["bins", "MAX_HISTOGRAM_BUCKETS"]);
    assert_eq!(adding_problem::<f32>(3, 4, 0).unwrap().len(), 3);
}

// ---- shapes --------------------------------------------------------------------------------

#[test]
fn shapes_parameter_accessors_are_views_of_a_fixed_shape() {
    let mut layer = Linear::<f32>::new(4, 2, &mut rng()).unwrap();
    assert_eq!(layer.weight_mut().dim(), (2, 4));
    layer.weight_mut().assign(&Array2::from_elem((2, 4), 0.5));
    layer.bias_mut().unwrap().fill(1.0);
    let mut y = Array2::zeros((0, 0));
    layer.forward(Array2::ones((3, 4)).view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
    assert_eq!(y, Array2::from_elem((3, 2), 3.0));
    let mut bn = BatchNorm1d::<f32>::new(3).unwrap();
    assert_eq!(bn.weight_mut().unwrap().len(), 3);
    let mut ln = LayerNorm::<f32>::new(3).unwrap();
    assert_eq!(ln.bias_mut().unwrap().len(), 3);
}

#[test]
fn shapes_a_replaced_projection_or_highway_child_of_another_width_is_an_error() {
    let branch = Linear::<f32>::new(4, 6, &mut rng()).unwrap();
    let projection = Linear::<f32>::new(4, 6, &mut rng()).unwrap();
    let mut block = ResidualBlock::projection(branch, projection).unwrap();
    *block.projection_mut().unwrap() = Linear::new(4, 7, &mut rng()).unwrap();
    let x = Array2::<f32>::ones((2, 4));
    let mut y = Array2::zeros((0, 0));
    let err = block.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }) && err.to_string().contains("shortcut"), "{err}");

    let mut highway = HighwayConfig::<f32>::new(4).build(&mut rng()).unwrap();
    *highway.transform_mut() = Linear::new(4, 5, &mut rng()).unwrap();
    let err = highway.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }) && err.to_string().contains("transform"), "{err}");
    let mut highway = HighwayConfig::<f32>::new(4).build(&mut rng()).unwrap();
    *highway.gate_mut() = Linear::new(4, 3, &mut rng()).unwrap();
    assert!(highway.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).is_err());
}

// ---- settings in the model's float type -------------------------------------------------------

#[test]
fn settings_optimizers_check_values_after_conversion_to_f32() {
    config_error(SgdConfig::new(1e39).build::<f32>(), &["Sgd", "lr", "f32"]);
    assert!(SgdConfig::new(1e39).build::<f64>().is_ok());
    config_error(SgdConfig::new(0.1).weight_decay(1e39).build::<f32>(), &["weight_decay"]);
    config_error(AdamConfig::new(1e-3).eps(1e-50).build::<f32>(), &["Adam", "eps"]);
    config_error(AdamWConfig::new(1e-3).eps(1e-50).build::<f32>(), &["AdamW", "eps"]);
    config_error(RmsPropConfig::new(1e-3).eps(1e-50).build::<f32>(), &["RmsProp", "eps"]);
    config_error(SgdConfig::new(1e-50).build::<f32>(), &["lr"]);
    let mut sgd = SgdConfig::new(0.1).build::<f32>().unwrap();
    config_error(sgd.set_learning_rate(1e39), &["lr"]);
    assert_eq!(Optimizer::<f32>::learning_rate(&sgd), 0.1, "unchanged");
    let mut adam = AdamConfig::new(0.1).build::<f32>().unwrap();
    assert!(adam.set_learning_rate(1e39).is_err() && adam.set_learning_rate(0.0).is_ok());
}

#[test]
fn settings_layers_check_values_after_conversion_to_f32() {
    config_error(BatchNormConfig::new(3).eps(1e-50).build::<f32>(), &["BatchNorm1d", "eps"]);
    assert!(BatchNormConfig::new(3).eps(1e-50).build::<f64>().is_ok());
    config_error(LayerNormConfig::new(3).eps(1e-50).build::<f32>(), &["LayerNorm", "eps"]);
    let constant = LinearConfig::new(3, 2).weight_init(Constant::new(1e39).unwrap());
    config_error(constant.build::<f32>(&mut rng()), &["constant", "value", "f32"]);
    assert!(constant.build::<f64>(&mut rng()).is_ok());
    let uniform = LinearConfig::new(3, 2).bias_init(Uniform::new(-1e39, 1e39).unwrap());
    assert!(uniform.build::<f32>(&mut rng()).is_err());
    config_error(HighwayConfig::<f32>::new(3).gate_bias(1e39).build(&mut rng()), &["gate_bias"]);
    config_error(LstmConfig::new(2, 3).forget_bias(1e39).build::<f32>(&mut rng()), &["bias_ih"]);
    config_error(PRelu::<f32>::new(3, 1e39), &["PReLU", "init"]);
    config_error(Scale::<f32>::fixed(1e39), &["Scale", "alpha"]);
    let mut scale = Scale::<f32>::fixed(0.5).unwrap();
    assert!(scale.set_alpha(f32::NAN).is_err() && scale.alpha() == 0.5);
    config_error(Linear::from_weights(array![[1.0f32, f32::NAN]], None), &["weight"]);
}

// ---- overflow reported, not silent --------------------------------------------------------------

#[test]
fn overflow_layer_norm_of_huge_values_normalizes_them() {
    let mut ln = LayerNorm::<f32>::new(2).unwrap();
    let mut y = Array2::zeros((0, 0));
    ln.forward(array![[3e38f32, -3e38], [3e38, 3e38]].view(), &mut y, Mode::Train, &mut Context::new())
        .unwrap();
    // (x − μ)/σ = ±1 for the first row, as in f64; the second row is constant: 0.
    assert!((y[[0, 0]] - 1.0).abs() < 1e-5 && (y[[0, 1]] + 1.0).abs() < 1e-5, "{y}");
    assert_eq!((y[[1, 0]], y[[1, 1]]), (0.0, 0.0));
    // The backward pass of such a row stays finite.
    let mut dx = Array2::zeros((0, 0));
    let x = array![[3e38f32, -3e38], [3e38, 3e38]];
    ln.backward(x.view(), y.view(), Array2::ones((2, 2)).view(), Some(&mut dx), &mut Context::new()).unwrap();
    assert!(dx.iter().all(|v| v.is_finite()), "{dx}");
}

#[test]
fn overflow_an_optimizer_step_that_would_overflow_a_weight_changes_nothing() {
    let set_grads = |layer: &mut Linear<f32>, g: f32| layer.visit_parameters_mut(&mut |mut p| p.grad.fill(g));
    for optimizer in ["sgd", "momentum", "adam", "adamw", "rmsprop"] {
        let mut layer =
            Linear::from_weights(array![[3e38f32, 1.0]], Some(Array1::from_elem(1, 0.5))).unwrap();
        let mut opt: Box<dyn Optimizer<f32>> = match optimizer {
            "sgd" => Box::new(SgdConfig::new(10.0).build().unwrap()),
            "momentum" => Box::new(SgdConfig::new(10.0).momentum(0.9).build().unwrap()),
            "adam" => Box::new(AdamConfig::new(3e38).build().unwrap()),
            "adamw" => Box::new(AdamWConfig::new(3e38).weight_decay(0.0).build().unwrap()),
            _ => Box::new(RmsPropConfig::new(3e38).build().unwrap()),
        };
        set_grads(&mut layer, -1e38);
        let before = state(&layer);
        let err = opt.step(&mut layer).unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }), "{optimizer}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains("weight") && msg.contains("no parameter was changed"), "{optimizer}: {msg}");
        assert_eq!(state(&layer), before, "{optimizer}: the weights changed");
        // A reasonable gradient then steps normally (the failed step left no state behind).
        set_grads(&mut layer, 1.0);
        opt.set_learning_rate(1e-3).unwrap();
        opt.step(&mut layer).unwrap();
        assert!(layer.weight().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn overflow_histogram_buckets_of_values_near_the_f64_limits_are_finite() {
    let h = Histogram::from_values([-1e308, 0.0, 1e308, 1.5e308], 4).unwrap();
    assert!(h.bucket_limit.iter().all(|v| v.is_finite()), "{:?}", h.bucket_limit);
    assert!(h.bucket_limit.windows(2).all(|w| w[0] < w[1]), "{:?}", h.bucket_limit);
    assert_eq!(h.bucket.iter().sum::<f64>(), 4.0);
    assert_eq!((h.bucket_limit[0], h.bucket_limit[4]), (-1e308, 1.5e308));
}
