//! Adversarial inputs for the features merged after the first reliability pass (issue 15):
//! convolution layers and the image builder, training budgets, named layers and key maps, the
//! JSON-lines recording reader and the theory module. Each test asserts the error variant, the
//! field it names, and that nothing was changed; debug and release builds behave the same.

use gradflow::data::{Dataset, TargetData};
use gradflow::export::parse_recording_jsonl;
use gradflow::io::{KeyMap, safetensors_bytes, safetensors_bytes_with};
use gradflow::layers::{
    AdaptiveAvgPool2d, AvgPool2d, CifarResNet, Conv2d, Conv2dConfig, ImageShape, MaxPool2d, Padding,
    ZeroPadShortcut,
};
use gradflow::loss::{CrossEntropy, Reduction};
use gradflow::ndarray::{Array1, Array2, Array4};
use gradflow::optim::SgdConfig;
use gradflow::train::{Progress, TrainConfig, Trainer};
use gradflow::{Error, Linear, Network, Sequential};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

/// The field of an [`Error::InvalidConfig`], or a panic naming what was returned instead.
fn field_of(err: Error) -> &'static str {
    match err {
        Error::InvalidConfig { field, .. } => field,
        other => panic!("expected InvalidConfig, got {other}"),
    }
}

// ---- sizes ----------------------------------------------------------------------------------

#[test]
fn sizes_convolution_and_pooling_sizes_that_overflow_are_refused_before_allocating() {
    // kH·kW = 2⁶⁴ overflows the size type: with 'same' padding the window fits a 1×1 image, and
    // the fans (in·kH·kW) were computed before the weight's size was checked, so debug builds
    // panicked ("attempt to multiply with overflow") and release builds wrapped.
    let err = Conv2dConfig::new(1, 1, 1)
        .kernel_size((1 << 32, 1 << 32))
        .padding_mode(Padding::Same)
        .build::<f32>((1, 1), &mut rng())
        .unwrap_err();
    assert_eq!(field_of(err), "weight");
    let err = Conv2dConfig::new(1, 1, 1)
        .kernel_size((usize::MAX, 2))
        .padding_mode(Padding::Same)
        .build::<f32>((1, 1), &mut rng())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. } | Error::ShapeMismatch { .. }), "{err}");

    // 2⁴⁰ output channels of a zero-padding shortcut: the output images were never checked, and
    // the first forward pass asked for terabytes.
    let err = ZeroPadShortcut::<f32>::new(ImageShape::new(1, 1, 1), 1 << 40, 1).unwrap_err();
    assert_eq!(field_of(err), "out_channels");
    let err = ZeroPadShortcut::<f32>::new(ImageShape::new(4, 2, 2), usize::MAX, 1).unwrap_err();
    assert!(err.to_string().contains("usize::MAX"), "{err}");

    // An adaptive pool to 2²⁰ × 2²⁰ bins: likewise.
    let err = AdaptiveAvgPool2d::<f32>::new(ImageShape::new(3, 4, 4), (1 << 20, 1 << 20)).unwrap_err();
    assert_eq!(field_of(err), "output_size");
    let err = AdaptiveAvgPool2d::<f32>::new(ImageShape::new(3, 4, 4), (usize::MAX, usize::MAX)).unwrap_err();
    assert_eq!(field_of(err), "output_size");
    // A pooling window of 2³³ × 2³³ with padding 2³² (half the kernel, as PyTorch allows) fits
    // a 1×1 image: the average's divisor kH·kW overflowed in the first forward pass.
    let k = 1usize << 33;
    let err = AvgPool2d::<f32>::with_options(ImageShape::new(1, 1, 1), (k, k), (1, 1), (k / 2, k / 2), true);
    assert_eq!(field_of(err.unwrap_err()), "kernel_size");
    let err =
        MaxPool2d::<f32>::with_options(ImageShape::new(1, 1, 1), (k, k), (1, 1), (k / 2, k / 2), (1, 1));
    assert_eq!(field_of(err.unwrap_err()), "kernel_size");
    // A 64×64 kernel over 1024×1024 images: weight and output are small, but the im2col matrix
    // of one sample (64·64 × 1025²) has 4.3·10⁹ entries, asked for at the first pass.
    let err = Conv2dConfig::new(1, 1, 64).padding(32).build::<f32>((1024, 1024), &mut rng()).unwrap_err();
    assert_eq!(field_of(err), "columns");

    // A CIFAR ResNet of 6·2⁴⁰ + 2 layers: the builder added 3·2⁴⁰ blocks, without bound in time
    // and memory, before any size was checked.
    let err = CifarResNet::new(6 * (1 << 40) + 2, &[1, 1, 1], 10)
        .build::<f32>(ImageShape::new(1, 2, 2), &mut rng());
    assert_eq!(field_of(err.unwrap_err()), "depth");
    // Input images whose C·H·W overflows: the width saturated to usize::MAX and a model of
    // dropout and flatten layers claiming usize::MAX inputs was built.
    let err = Sequential::<f32>::image_builder(ImageShape::new(usize::MAX, usize::MAX, 4))
        .dropout(0.5)
        .flatten()
        .build(&mut rng())
        .unwrap_err();
    assert_eq!(field_of(err), "image");
    // The same limits hold through the image builder, naming the step.
    let err = Sequential::<f32>::image_builder(ImageShape::new(1, 2, 2))
        .basic_block(1 << 40, 1, gradflow::layers::ShortcutKind::ZeroPad)
        .build(&mut rng())
        .unwrap_err();
    assert!(err.to_string().starts_with('0'), "{err}");
}

// ---- settings -------------------------------------------------------------------------------

#[test]
fn settings_a_convolution_from_non_finite_weights_is_refused_like_a_linear_layer() {
    let input = ImageShape::new(1, 3, 3);
    let mut weight = Array4::<f32>::ones((2, 1, 2, 2));
    weight[[1, 0, 1, 1]] = f32::NAN;
    let err = Conv2d::from_weights(weight, None, input, &Conv2dConfig::new(1, 2, 2)).unwrap_err();
    assert_eq!(field_of(err), "weight");
    let bias = Array1::from(vec![0.0, f32::INFINITY]);
    let err =
        Conv2d::from_weights(Array4::ones((2, 1, 2, 2)), Some(bias), input, &Conv2dConfig::new(1, 2, 2))
            .unwrap_err();
    assert_eq!(field_of(err), "bias");
    // Finite arrays still build.
    assert!(
        Conv2d::from_weights(Array4::<f32>::ones((2, 1, 2, 2)), None, input, &Conv2dConfig::new(1, 2, 2))
            .is_ok()
    );
}

// ---- training budgets -----------------------------------------------------------------------

fn tiny_data() -> Dataset<f32> {
    let inputs = Array2::from_shape_fn((8, 2), |(i, j)| (i * 2 + j) as f32 / 8.0);
    Dataset::new(inputs, TargetData::Classes((0..8).map(|i| i % 2).collect())).unwrap()
}

#[test]
fn budgets_huge_epoch_and_step_budgets_train_until_stopped_instead_of_aborting() {
    // Room for the whole history was reserved up front: `Vec::with_capacity(usize::MAX)`
    // panicked with "capacity overflow" (or aborted on allocation) before the first step.
    for config in [
        TrainConfig::steps(u64::MAX, 4),
        TrainConfig::new(usize::MAX, 4),
        TrainConfig::new(1 << 40, 4).max_steps(1 << 50),
        TrainConfig::steps(u64::MAX, 4).replacement(true),
    ] {
        let mut model = Sequential::new();
        model.push(Linear::<f32>::new(2, 2, &mut rng()).unwrap());
        let mut net = Network::new(model);
        let mut sgd = SgdConfig::new(0.1).build().unwrap();
        let trainer = Trainer::new(config.progress(Progress::Silent)).unwrap();
        let mut seen = 0;
        let err = trainer
            .fit_with(&mut net, &mut sgd, &CrossEntropy::new(Reduction::Mean), &tiny_data(), None, |_, _| {
                seen += 1;
                if seen == 5 { Err(Error::config("test", "stop", "enough")) } else { Ok(()) }
            })
            .unwrap_err();
        assert_eq!(field_of(err), "stop");
        assert_eq!(seen, 5);
        assert_eq!(net.step_count(), 5);
    }
}

// ---- names ----------------------------------------------------------------------------------

#[test]
fn names_bad_layer_names_and_colliding_key_maps_are_refused_with_nothing_changed() {
    let mut model = Sequential::<f32>::new();
    model.push(Linear::new(2, 2, &mut rng()).unwrap());
    for bad in ["", "a.b", "5", ".", "01"] {
        let before = model.len();
        assert_eq!(
            field_of(model.push_named(bad, Linear::new(2, 2, &mut rng()).unwrap()).err().unwrap()),
            "name"
        );
        assert_eq!(model.len(), before);
    }
    model.set_name(0, "fc").unwrap();
    assert_eq!(
        field_of(model.push_named("fc", Linear::new(2, 2, &mut rng()).unwrap()).err().unwrap()),
        "name"
    );
    assert_eq!(field_of(model.set_name(7, "x").unwrap_err()), "name");
    assert_eq!(model.name_of(0).as_deref(), Some("fc"));
    let err = Sequential::<f32>::builder(2).named("x").linear(2).build(&mut rng()).unwrap_err();
    assert_eq!(field_of(err), "name");
    let err = Sequential::<f32>::builder(2).linear(2).named("a.b").build(&mut rng()).unwrap_err();
    assert_eq!(field_of(err), "name");

    // A key map sending two tensors to one name, or every name to the header's metadata key.
    let bytes = safetensors_bytes(&model).unwrap();
    let err = safetensors_bytes_with(&model, &KeyMap::new().function(|_| "w".to_string())).unwrap_err();
    assert_eq!(field_of(err), "names");
    let single = Linear::<f32>::new(2, 2, &mut rng()).unwrap();
    let err =
        safetensors_bytes_with(&single, &KeyMap::new().rule("weight", "__metadata__").unwrap()).unwrap_err();
    assert_eq!(field_of(err), "names");
    let err = safetensors_bytes_with(&single, &KeyMap::new().rule("weight", "").unwrap()).unwrap_err();
    assert_eq!(field_of(err), "names");
    assert_eq!(safetensors_bytes(&model).unwrap(), bytes);

    // A pattern of many `**` against a long name: the matcher backtracked exponentially (ten
    // `**` against 30 segments took 40 s, twelve about 15 min); now it is polynomial.
    let pattern = format!("{}.x", ["**"; 12].join("."));
    let map = KeyMap::new().rule(&pattern, "{1}").unwrap();
    let name = vec!["a"; 30].join(".");
    let start = std::time::Instant::now();
    assert_eq!(map.apply(&name), name, "no match: unchanged");
    assert_eq!(map.apply(&format!("{name}.x")), "", "the first `**` matches as little as it can");
    assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
}

#[test]
fn names_a_key_map_function_that_panics_is_an_error_naming_the_key_with_nothing_changed() {
    use gradflow::io::{LoadOptions, load_safetensors_bytes};
    let mut model = Sequential::<f32>::builder(2).linear(2).named("fc").build(&mut rng()).unwrap();
    let bytes = safetensors_bytes(&model).unwrap();
    // Panics on `fc.bias`: a closure that assumes every name has a `weight` in it.
    let map = || KeyMap::new().function(|name| name.strip_suffix("weight").expect("a weight").to_string());
    let err = safetensors_bytes_with(&model, &map()).unwrap_err();
    assert!(err.to_string().contains("panicked on `fc.bias`: a weight"), "{err}");
    assert_eq!(field_of(err), "function");
    let err = load_safetensors_bytes(&mut model, &bytes, "state", &LoadOptions::default().remap(map()))
        .unwrap_err();
    assert!(err.to_string().contains("`fc.bias`"), "{err}");
    assert_eq!(safetensors_bytes(&model).unwrap(), bytes, "nothing loaded");
}

// ---- recordings -----------------------------------------------------------------------------

#[test]
fn recordings_hostile_json_lines_are_refused_naming_the_line() {
    let header = r#"{"schema":"gradflow.recording.jsonl","schema_version":1,"float":"f32","producer":"x","config":{"every_n_steps":1,"activations":true,"parameters":true,"updates":true,"saturation_level":0.99}}"#;
    assert!(parse_recording_jsonl(header, "run.jsonl").is_ok(), "the header alone is a valid recording");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for (what, body) in [
        ("a huge number", format!("{header}\n{{\"type\":\"loss\",\"step\":1,\"loss\":1e400}}")),
        ("a huge step", format!("{header}\n{{\"type\":\"loss\",\"step\":1e30,\"loss\":1}}")),
        ("a negative step", format!("{header}\n{{\"type\":\"loss\",\"step\":-1,\"loss\":1}}")),
        ("deep nesting", format!("{header}\n{deep}")),
        ("deep nesting in the header", deep.clone()),
        ("a zero sampling period", header.replace("\"every_n_steps\":1", "\"every_n_steps\":0")),
        ("a NaN saturation level", header.replace("0.99", "NaN")),
    ] {
        match parse_recording_jsonl(&body, "run.jsonl") {
            Err(Error::Data { source_name, .. }) => assert_eq!(source_name, "run.jsonl", "{what}"),
            other => panic!("{what}: expected a data error, got {other:?}"),
        }
    }
}

// ---- the command line -----------------------------------------------------------------------

#[test]
fn cli_a_closed_output_pipe_and_arguments_that_are_not_utf8_are_not_panics() {
    use std::process::{Command, Stdio};
    let binary = env!("CARGO_BIN_EXE_gradflow");
    // The reader of the output has gone (`gradflow … | head -1`): `println!` panicked with
    // "failed printing to stdout: Broken pipe" (exit status 101).
    for args in [&["--help"][..], &["--version"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(binary).args(args).stdout(Stdio::from(writer)).stderr(Stdio::piped()).output();
        let out = out.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !stderr.contains("panicked"), "{args:?}: {:?} {stderr}", out.status);
    }
    // `std::env::args` panicked on an argument that is not UTF-8.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bad = std::ffi::OsStr::from_bytes(b"run-\xff.jsonl");
        let out = Command::new(binary).arg("diagnose").arg(bad).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("not UTF-8") && !stderr.contains("panicked"), "{stderr}");
    }
}

// ---- theory ---------------------------------------------------------------------------------

#[test]
fn theory_bad_variances_wide_models_and_edited_predictions_are_errors_or_reports() {
    use gradflow::activation::{Relu, Tanh};
    use gradflow::diagnose::{TheoryAgreement, Thresholds, diagnose};
    use gradflow::hooks::{Recorder, RecorderConfig};
    use gradflow::loss::{Loss, Mse, Targets};
    use gradflow::theory::{InputScale, MeanField, jacobian, predict_model};
    use gradflow::{Mode, ndarray::Array1};

    // Variances that are negative, NaN or make the variance map overflow.
    assert_eq!(field_of(MeanField::new(&Tanh, -1.0, 0.0).err().unwrap()), "weight_variance");
    assert_eq!(field_of(MeanField::new(&Tanh, 1.0, f64::NAN).err().unwrap()), "bias_variance");
    assert!(matches!(
        MeanField::new(&Relu, 1e300, 1e300).unwrap().fixed_point(),
        Err(Error::NonFinite { .. })
    ));
    // The Jacobian of a model too wide to build exactly: refused, the model unchanged.
    let mut wide = Sequential::<f32>::builder(1).linear(5000).build(&mut rng()).unwrap();
    let before = safetensors_bytes(&wide).unwrap();
    assert_eq!(field_of(jacobian(&mut wide, Array1::ones(1).view()).unwrap_err()), "width");
    assert_eq!(safetensors_bytes(&wide).unwrap(), before);

    // A prediction's fields are public and deserializable: layer numbers of usize::MAX made
    // `Diagnosis::with_theory` overflow ("attempt to add with overflow") in debug builds.
    let model = Sequential::<f32>::builder(4).repeat(3, 8, Tanh).linear(2).build(&mut rng()).unwrap();
    let mut prediction = predict_model(&model, InputScale::SecondMoment(1.0)).unwrap();
    let mut net = Network::new(model);
    let handle = net.attach_hook(Recorder::new(RecorderConfig::gradients()).unwrap());
    let x = Array2::from_shape_fn((5, 4), |(i, j)| (i + j) as f32 / 4.0 - 1.0);
    let y = net.forward(x.view(), Mode::Train).unwrap();
    let mut grad = Array2::zeros((0, 0));
    let target = Array2::<f32>::zeros((5, 2));
    Mse::new(Reduction::Mean).compute(y, Targets::Values(target.view()), &mut grad).unwrap();
    net.backward(grad.view()).unwrap();
    let mut diagnosis =
        diagnose(&net.detach_hook(handle).unwrap().into_recording(), &Thresholds::default()).unwrap();
    let n = prediction.layers.len();
    for (i, layer) in prediction.layers.iter_mut().enumerate() {
        layer.index = usize::MAX - (n - 1 - i);
        let why = if i % 2 == 0 { "the variance of its input is unknown" } else { "not covered" };
        layer.not_covered = Some(format!("{i}: {why}"));
    }
    let theory = diagnosis.clone().with_theory(&prediction).theory.unwrap();
    assert!(theory.not_covered.iter().any(|l| l.contains(&usize::MAX.to_string())), "{theory}");
    diagnosis.layers[0].layer.index = usize::MAX;
    prediction.layers[0].label = "Other".into();
    let compared = diagnosis.with_theory(&prediction);
    assert_eq!(compared.theory.as_ref().unwrap().agreement, TheoryAgreement::Disagree);
    assert!(gradflow::report::table::render(&compared).contains(&usize::MAX.to_string()));
}
