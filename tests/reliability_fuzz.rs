//! Fuzz-style adversarial tests: every public constructor and setting driven over edge values
//! (0, 1, 2⁶⁰, `usize::MAX`, `f32::MAX`, 1e39, 1e-50, NaN, ±∞, …), and seeded mutations of
//! every file format gradflow reads (safetensors, IDX, model-spec JSON, recordings in JSON
//! lines). Each call must return `Ok` or `Err` — never panic — and what it returns `Ok` must
//! hold only finite values; a load that fails must leave the model bit-identical. The mutation
//! runs are short (a few seconds in all); the README's contributing notes say how to run them
//! longer (`GRADFLOW_FUZZ_ITERATIONS`).

use std::panic::{AssertUnwindSafe, catch_unwind};

use gradflow::activation::Tanh;
use gradflow::data::{Dataset, TargetData, adding_problem, read_idx_images, read_idx_labels, spirals};
use gradflow::export::Histogram;
use gradflow::init::{Constant, Normal, Uniform};
use gradflow::io::{LayerSpec, ModelSpec};
use gradflow::layers::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2dConfig, Dropout, ImageShape, MaxPool2d,
};
use gradflow::ndarray::Array2;
use gradflow::optim::{AdamConfig, AdamWConfig, RmsPropConfig, SgdConfig};
use gradflow::recurrent::{GruConfig, LstmConfig, Readout, RecurrentInit, RnnConfig, SequenceLayer};
use gradflow::{
    BatchNormConfig, HighwayConfig, Layer, LayerNormConfig, Linear, LinearConfig, Mode, Network, Optimizer,
    PRelu, Scale, Sequential,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Sizes: each is either tiny or alone over `MAX_TENSOR_ELEMENTS`, so that no combination asks
/// for a legal but huge allocation.
const SIZES: [usize; 7] = [0, 1, 2, 3, 1 << 32, 1 << 60, usize::MAX];

/// Settings in `f64`, including ones that are finite in `f64` but not in `f32`.
const VALUES: [f64; 14] = [
    0.0,
    1.0,
    -1.0,
    0.5,
    1e-3,
    f32::MAX as f64,
    1e39,
    1e-50,
    1e-40,
    1e308,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -1e39,
];

fn rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

/// Runs `f`, failing the test (with `what`) if it panics.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what} panicked: {msg}");
        }
    }
}

/// Every parameter and buffer value of `layer` is finite.
fn all_finite<F: gradflow::Float>(layer: &dyn Layer<F>) -> bool {
    let mut ok = true;
    layer.visit_parameters(&mut |p| ok &= p.value.iter().all(|v| v.is_finite()));
    ok
}

/// A recurrent layer as a layer (reading out its last step).
fn seq(recurrent: impl gradflow::recurrent::Recurrent<f32> + 'static) -> SequenceLayer<f32> {
    SequenceLayer::new(recurrent, Readout::LastStep)
}

/// A built layer must hold finite values and, when it is small and its parameters moderate, run
/// a finite forward pass on a finite input. (Parameters near `f32::MAX`, such as a PReLU slope
/// of 3.4e38, legitimately overflow on ordinary inputs: a forward pass does not check its
/// outputs; `hooks::NonFiniteDetector` reports the first layer where that happens.)
fn check_built<F: gradflow::Float>(what: &str, layer: gradflow::Result<impl Layer<F>>, width: Option<usize>) {
    let Ok(mut layer) = layer else { return };
    assert!(all_finite(&layer), "{what}: built with a non-finite parameter");
    let mut moderate = true;
    layer.visit_parameters(&mut |p| moderate &= p.value.iter().all(|v| v.abs() <= F::lit(1e6)));
    if let Some(width) = width.filter(|&w| w <= 64 && moderate) {
        let x = Array2::from_shape_fn((3, width), |(i, j)| F::lit(((i + 2 * j) % 5) as f64 - 2.0));
        let mut y = Array2::zeros((0, 0));
        let result = no_panic(what, || {
            layer.forward(x.view(), &mut y, Mode::Train, &mut gradflow::hooks::Context::new())
        });
        if result.is_ok() {
            assert!(y.iter().all(|v| v.is_finite()), "{what}: non-finite output {y}");
        }
    }
}

#[test]
fn constructors_over_edge_sizes_never_panic() {
    for &a in &SIZES {
        for &b in &SIZES {
            let what = format!("sizes ({a}, {b})");
            no_panic(&what, || {
                check_built::<f32>(&what, Linear::new(a, b, &mut rng()), Some(a));
                check_built::<f32>(&what, LstmConfig::new(a, b).build(&mut rng()).map(seq), None);
                check_built::<f32>(
                    &what,
                    GruConfig::new(a, b).num_layers(2).build(&mut rng()).map(seq),
                    None,
                );
                check_built::<f32>(
                    &what,
                    RnnConfig::new(a, 3).num_layers(b).build(&mut rng()).map(seq),
                    None,
                );
                let image = ImageShape::new(a, b, 3);
                check_built::<f32>(&what, BatchNorm2d::new(image), Some(image.features()));
                check_built::<f32>(&what, MaxPool2d::new(image, b, a), Some(image.features()));
                check_built::<f32>(&what, AvgPool2d::new(ImageShape::new(2, a, a), b, 1), None);
                check_built::<f32>(&what, AdaptiveAvgPool2d::new(image, (a, b)), Some(image.features()));
                check_built::<f32>(
                    &what,
                    Conv2dConfig::new(a, 2, b).build((4, 4), &mut rng()),
                    Some(a.saturating_mul(16)),
                );
                check_built::<f32>(
                    &what,
                    Conv2dConfig::new(2, 2, 3).stride(a).padding(b).build((3, 3), &mut rng()),
                    None,
                );
                let _ = Sequential::<f32>::builder(a).repeat(b, a, Tanh).build(&mut rng());
                let _ = adding_problem::<f32>(a, b, 0);
                let _ = spirals::<f32>(a, b, 0.1, 0);
                let _ = Histogram::from_values([1.0, 2.0], a);
            });
        }
        let what = format!("size {a}");
        no_panic(&what, || {
            check_built::<f32>(&what, BatchNormConfig::new(a).build(), Some(a));
            check_built::<f32>(&what, LayerNormConfig::new(a).build(), Some(a));
            check_built::<f32>(&what, PRelu::new(a, 0.25), Some(a));
            check_built::<f32>(&what, HighwayConfig::<f32>::new(a).build(&mut rng()), Some(a));
        });
    }
}

#[test]
fn settings_over_edge_values_never_panic_and_never_give_non_finite_weights() {
    for &v in &VALUES {
        let what = format!("value {v:e}");
        no_panic(&what, || {
            check_built::<f32>(&what, BatchNormConfig::new(3).eps(v).build(), Some(3));
            check_built::<f32>(&what, BatchNormConfig::new(3).momentum(Some(v)).build(), Some(3));
            check_built::<f32>(&what, LayerNormConfig::new(3).eps(v).build(), Some(3));
            check_built::<f32>(&what, PRelu::new(3, v), Some(3));
            check_built::<f32>(&what, Scale::fixed(v), None); // a fixed α of 3e38 overflows legitimately
            check_built::<f32>(&what, HighwayConfig::<f32>::new(3).gate_bias(v).build(&mut rng()), Some(3));
            check_built::<f32>(&what, LstmConfig::new(2, 3).forget_bias(v).build(&mut rng()).map(seq), None);
            check_built::<f32>(&what, LinearConfig::new(3, 2).activation_gain(v).build(&mut rng()), Some(3));
            check_built::<f32>(
                &what,
                RnnConfig::new(2, 3)
                    .recurrent_init(RecurrentInit::Identity { scale: v })
                    .build(&mut rng())
                    .map(seq),
                None,
            );
            check_built::<f32>(&what, Dropout::new(v, 0), Some(3));
            if let Ok(init) = Constant::new(v) {
                check_built::<f32>(
                    &what,
                    LinearConfig::new(3, 2).weight_init(init).build(&mut rng()),
                    Some(3),
                );
            }
            if let Ok(init) = Normal::new(v, v.abs()) {
                check_built::<f32>(&what, LinearConfig::new(3, 2).bias_init(init).build(&mut rng()), Some(3));
            }
            if let Ok(init) = Uniform::new(-v.abs(), v.abs()) {
                check_built::<f32>(
                    &what,
                    LinearConfig::new(3, 2).weight_init(init).build(&mut rng()),
                    Some(3),
                );
            }
            let _ = spirals::<f32>(2, 3, v, 0);
            let _ = Histogram::from_values([v, 1.0, -v], 3);
        });
        for optimizer in ["sgd", "adam", "adamw", "rmsprop"] {
            for field in 0..4 {
                let what = format!("{optimizer} field {field} = {v:e}");
                no_panic(&what, || step_with(optimizer, field, v));
            }
        }
    }
}

/// Builds `optimizer` with setting number `field` set to `v`, and, if it builds, steps a small
/// network twice: every Ok step leaves finite weights; every failed one changes nothing.
fn step_with(optimizer: &str, field: usize, v: f64) {
    let opt: gradflow::Result<Box<dyn Optimizer<f32>>> = match optimizer {
        "sgd" => {
            let c = SgdConfig::new(if field == 0 { v } else { 0.1 });
            let c = match field {
                1 => c.momentum(v),
                2 => c.weight_decay(v),
                3 => c.momentum(0.5).dampening(v),
                _ => c,
            };
            c.build().map(|o| Box::new(o) as Box<dyn Optimizer<f32>>)
        }
        "adam" | "adamw" => {
            let (lr, eps, wd, b) = match field {
                0 => (v, 1e-8, 0.0, 0.9),
                1 => (1e-3, v, 0.0, 0.9),
                2 => (1e-3, 1e-8, v, 0.9),
                _ => (1e-3, 1e-8, 0.0, v),
            };
            if optimizer == "adam" {
                AdamConfig::new(lr)
                    .eps(eps)
                    .weight_decay(wd)
                    .betas(b, 0.999)
                    .build()
                    .map(|o| Box::new(o) as _)
            } else {
                AdamWConfig::new(lr)
                    .eps(eps)
                    .weight_decay(wd)
                    .betas(b, 0.999)
                    .build()
                    .map(|o| Box::new(o) as _)
            }
        }
        _ => {
            let c = RmsPropConfig::new(if field == 0 { v } else { 1e-3 });
            let c = match field {
                1 => c.eps(v),
                2 => c.weight_decay(v),
                3 => c.alpha(v).centered(true).momentum(0.5),
                _ => c,
            };
            c.build().map(|o| Box::new(o) as _)
        }
    };
    let Ok(mut opt) = opt else { return };
    let model = Sequential::<f32>::builder(3).dense(4, Tanh).linear(2).build(&mut rng()).unwrap();
    let mut net = Network::new(model);
    for _ in 0..2 {
        net.zero_grad();
        net.forward(Array2::from_elem((2, 3), 0.5).view(), Mode::Train).unwrap();
        net.backward(Array2::from_elem((2, 2), 1.0).view()).unwrap();
        let before = gradflow::io::safetensors_bytes(net.model()).unwrap();
        match net.step(opt.as_mut()) {
            Ok(()) => assert!(all_finite(net.model()), "{optimizer} {field} {v:e}: non-finite weights"),
            Err(_) => assert_eq!(gradflow::io::safetensors_bytes(net.model()).unwrap(), before),
        }
    }
}

/// The number of mutations per format: small by default, more with `GRADFLOW_FUZZ_ITERATIONS`.
fn iterations() -> usize {
    std::env::var("GRADFLOW_FUZZ_ITERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(300)
}

/// One random change to `bytes`: flip a bit, set a byte to an edge value, truncate, duplicate a
/// slice, or insert bytes.
fn mutate(bytes: &mut Vec<u8>, rng: &mut StdRng) {
    if bytes.is_empty() {
        bytes.push(rng.random());
        return;
    }
    let at = rng.random_range(0..bytes.len());
    match rng.random_range(0..6) {
        0 => bytes[at] ^= 1 << rng.random_range(0..8),
        1 => bytes[at] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'9'][rng.random_range(0..8)],
        2 => bytes.truncate(at),
        3 => {
            let end = (at + rng.random_range(1..16)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            let to = rng.random_range(0..=bytes.len());
            bytes.splice(to..to, copy);
        }
        4 => bytes.insert(at, rng.random()),
        _ => {
            // An IDX or safetensors size field set to an extreme.
            let end = (at + 4).min(bytes.len());
            bytes[at..end].fill(0xff);
        }
    }
}

/// `original` with one to three random changes ([`mutate`]).
fn mutated(original: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..rng.random_range(1..4) {
        mutate(&mut bytes, rng);
    }
    bytes
}

#[test]
fn mutated_safetensors_files_never_panic_and_never_half_load() {
    let mut rng = StdRng::seed_from_u64(1);
    let model = || {
        Sequential::<f32>::builder(3)
            .dense(4, Tanh)
            .batch_norm()
            .linear(2)
            .build(&mut StdRng::seed_from_u64(2))
            .unwrap()
    };
    let original = gradflow::io::safetensors_bytes(&model()).unwrap();
    let mut loaded = 0;
    let path = std::env::temp_dir().join(format!("gradflow-fuzz-{}.safetensors", std::process::id()));
    for i in 0..iterations() {
        let bytes = mutated(&original, &mut rng);
        let mut target = model();
        let before = gradflow::io::safetensors_bytes(&target).unwrap();
        let result = no_panic(&format!("safetensors mutation {i}"), || {
            gradflow::io::load_safetensors_bytes(&mut target, &bytes, "m", &Default::default())
        });
        match result {
            Ok(_) => {
                loaded += 1;
                assert!(all_finite(&target), "mutation {i} loaded a non-finite value");
            }
            Err(_) => assert_eq!(gradflow::io::safetensors_bytes(&target).unwrap(), before, "mutation {i}"),
        }
        if i % 10 == 0 {
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(tensors) = no_panic("read_tensors", || gradflow::io::read_tensors::<f32>(&path)) {
                assert!(tensors.values().all(|t| t.iter().all(|v| v.is_finite())));
            }
            let _ = no_panic("read_any_tensors", || gradflow::io::read_any_tensors(&path));
        }
    }
    let _ = std::fs::remove_file(&path);
    // Some mutations (a flipped bit in a weight) still load: the loop is not all rejections.
    assert!(loaded > 0);
}

#[test]
fn mutated_idx_files_never_panic() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2];
    images.extend((0..12).map(|i| i * 20));
    let labels = vec![0, 0, 8, 1, 0, 0, 0, 2, 3, 7];
    let dir = std::env::temp_dir().join(format!("gradflow-fuzz-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (images_path, labels_path) = (dir.join("images"), dir.join("labels"));
    for i in 0..iterations() {
        let (mut im, mut la) = (images.clone(), labels.clone());
        mutate(&mut im, &mut rng);
        mutate(&mut la, &mut rng);
        std::fs::write(&images_path, &im).unwrap();
        std::fs::write(&labels_path, &la).unwrap();
        no_panic(&format!("IDX mutation {i}"), || {
            if let Ok(read) = read_idx_images(&images_path) {
                for k in 0..read.count.min(4) {
                    assert!(read.image(k).is_some());
                }
            }
            let _ = read_idx_labels(&labels_path);
            if let Ok(data) = gradflow::data::mnist_split::<f32>(&images_path, &labels_path) {
                data.check().unwrap();
            }
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mutated_model_specs_never_panic() {
    let mut rng = StdRng::seed_from_u64(4);
    let original = br#"{"input": 4, "init": "xavier_uniform", "layers": [{"dense": {"out": 8, "activation": "tanh"}}, {"repeat": {"count": 2, "width": 8, "activation": "relu"}}, {"linear": {"out": 3, "bias": false}}]}"#;
    for i in 0..iterations() {
        let text = String::from_utf8_lossy(&mutated(original, &mut rng)).into_owned();
        no_panic(&format!("spec mutation {i}: {text}"), || {
            let Ok(spec) = ModelSpec::from_json(&text, "spec") else { return };
            // Build only what is small: a mutated width of 10⁵ is legal but slow to draw.
            let small = spec.input <= 4096
                && spec.layers.iter().all(|l| match l {
                    LayerSpec::Linear { out, .. } | LayerSpec::Dense { out, .. } => *out <= 4096,
                    LayerSpec::Repeat { count, width, .. } => *count <= 64 && *width <= 4096,
                    _ => true,
                });
            if small && let Ok(model) = spec.build::<f32>(&mut StdRng::seed_from_u64(0)) {
                assert!(all_finite(&model));
            }
        });
    }
}

#[test]
fn datasets_over_edge_labels_never_panic() {
    for &label in &SIZES {
        no_panic(&format!("label {label}"), || {
            let data = Dataset::new(Array2::<f32>::zeros((2, 1)), TargetData::Classes(vec![0, label]));
            if let Ok(data) = data {
                let _ = data.class_counts();
                let _ = data.split_stratified(0.5, 0);
            }
        });
    }
}

/// A JSON-lines recording of two training steps of a small tanh network with BatchNorm.
fn recording_text() -> String {
    use gradflow::hooks::{Recorder, RecorderConfig};
    use gradflow::loss::{Loss, Mse, Reduction, Targets};
    let model =
        Sequential::<f32>::builder(3).dense(4, Tanh).batch_norm().linear(2).build(&mut rng()).unwrap();
    let mut net = Network::new(model);
    let handle = net.attach_hook(Recorder::new(RecorderConfig::all()).unwrap());
    let x = Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f32 / 6.0 - 1.0);
    let target = Array2::<f32>::zeros((4, 2));
    let mut sgd = SgdConfig::new(0.1).build().unwrap();
    for _ in 0..2 {
        let mut grad = Array2::zeros((0, 0));
        let y = net.forward(x.view(), Mode::Train).unwrap();
        let loss = Mse::new(Reduction::Mean).compute(y, Targets::Values(target.view()), &mut grad);
        net.report_loss(f64::from(loss.unwrap()));
        net.backward(grad.view()).unwrap();
        net.step(&mut sgd).unwrap();
    }
    let recording = net.detach_hook(handle).unwrap().into_recording();
    gradflow::export::recording_to_jsonl(&recording).unwrap()
}

#[test]
fn mutated_recordings_in_json_never_panic() {
    let mut rng = StdRng::seed_from_u64(6);
    let recording = gradflow::export::parse_recording_jsonl(&recording_text(), "run.jsonl").unwrap();
    let original = gradflow::report::json::to_string(&recording).unwrap();
    let mut parsed = 0;
    for i in 0..iterations() {
        let text = String::from_utf8_lossy(&mutated(original.as_bytes(), &mut rng)).into_owned();
        no_panic(&format!("JSON recording mutation {i}"), || {
            let Ok(recording) = gradflow::report::json::from_str(&text) else { return };
            parsed += 1;
            if let Ok(diagnosis) = gradflow::diagnose::diagnose(&recording, &Default::default()) {
                let _ = gradflow::report::table::render(&diagnosis);
            }
        });
    }
    assert!(parsed > 0);
}

#[test]
fn mutated_recordings_in_json_lines_never_panic() {
    let mut rng = StdRng::seed_from_u64(5);
    let original = recording_text();
    let recording = gradflow::export::parse_recording_jsonl(&original, "run.jsonl").unwrap();
    assert!(gradflow::diagnose::diagnose(&recording, &Default::default()).is_ok());
    let mut parsed = 0;
    for i in 0..iterations() {
        let text = String::from_utf8_lossy(&mutated(original.as_bytes(), &mut rng)).into_owned();
        no_panic(&format!("recording mutation {i}"), || {
            let Ok(recording) = gradflow::export::parse_recording_jsonl(&text, "run.jsonl") else { return };
            parsed += 1;
            // What parses is what the diagnosis and the reports read: they must not panic either.
            if let Ok(diagnosis) = gradflow::diagnose::diagnose(&recording, &Default::default()) {
                let _ = gradflow::report::table::render(&diagnosis);
            }
        });
    }
    // Some mutations (a digit changed in a norm) still parse: the loop is not all rejections.
    assert!(parsed > 0);
}
