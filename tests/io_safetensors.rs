//! safetensors save/load: exact round trips, PyTorch names and dtypes, every mismatch reported
//! at once, corrupted files refused, and nothing half-loaded.

use std::path::PathBuf;

use gradflow::activation::Tanh;
use gradflow::hooks::Context;
use gradflow::io::{
    LoadOptions, Mismatch, check_safetensors, load_safetensors, load_safetensors_bytes,
    load_safetensors_with, read_tensors, safetensors_bytes, save_safetensors,
};
use gradflow::{
    BufferView, BufferViewMut, Error, Float, Layer, Linear, Mode, Param, ParamView, ParamViewMut, Sequential,
    ensure_shape, named_buffers, named_parameters,
};
use ndarray::{Array1, Array2, ArrayView2, array};
use rand::SeedableRng;
use rand::rngs::StdRng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

// ---------------------------------------------------------------------------------------------
// TEST-ONLY LAYER. BatchNorm1d is written elsewhere; this tiny layer exists only to exercise the
// buffer path (a float buffer and a counter, named like BatchNorm's) of save and load.
// y = x * weight (per feature); in training it records the batch mean of x in `running_mean`
// and counts batches in `num_batches_tracked`.
// ---------------------------------------------------------------------------------------------
#[derive(Debug)]
struct TestScaleWithStats<F: Float> {
    weight: Param<F, ndarray::Ix1>,
    running_mean: Array1<F>,
    num_batches_tracked: u64,
}

impl<F: Float> TestScaleWithStats<F> {
    fn new(features: usize) -> Self {
        TestScaleWithStats {
            weight: Param::new(Array1::from_shape_fn(features, |i| F::lit(1.0 + i as f64 / 4.0))),
            running_mean: Array1::zeros(features),
            num_batches_tracked: 0,
        }
    }
}

impl<F: Float> Layer<F> for TestScaleWithStats<F> {
    fn kind(&self) -> &'static str {
        "TestScaleWithStats"
    }

    fn output_features(&self, input_features: usize) -> gradflow::Result<usize> {
        Ok(input_features)
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        _ctx: &mut Context<'_, F>,
    ) -> gradflow::Result<()> {
        ensure_shape(output, input.dim());
        output.assign(&(&input * &self.weight.value));
        if mode == Mode::Train {
            self.running_mean = input.mean_axis(ndarray::Axis(0)).expect("non-empty batch");
            self.num_batches_tracked += 1;
        }
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        _output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        _ctx: &mut Context<'_, F>,
    ) -> gradflow::Result<()> {
        self.weight.grad += &(&grad_output * &input).sum_axis(ndarray::Axis(0));
        if let Some(g) = grad_input {
            ensure_shape(g, grad_output.dim());
            g.assign(&(&grad_output * &self.weight.value));
        }
        Ok(())
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        visitor(self.weight.view("weight"));
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        visitor(self.weight.view_mut("weight"));
    }

    fn visit_buffers<'a>(&'a self, visitor: &mut dyn FnMut(BufferView<'a, F>)) {
        visitor(BufferView::Tensor { name: "running_mean", value: self.running_mean.view().into_dyn() });
        visitor(BufferView::Count { name: "num_batches_tracked", value: self.num_batches_tracked });
    }

    fn visit_buffers_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(BufferViewMut<'a, F>)) {
        visitor(BufferViewMut::Tensor {
            name: "running_mean",
            value: self.running_mean.view_mut().into_dyn(),
        });
        visitor(BufferViewMut::Count { name: "num_batches_tracked", value: &mut self.num_batches_tracked });
    }
}
// --------------------------------- end of the test-only layer --------------------------------

fn mlp<F: Float>(seed: u64) -> Sequential<F> {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::builder(4).dense(5, Tanh).linear(3).build(&mut rng).unwrap()
}

/// Linear(3→4), the test-only layer with buffers, Linear(4→2).
fn with_buffers<F: Float>(seed: u64) -> Sequential<F> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Sequential::new();
    model
        .push(Linear::new(3, 4, &mut rng).unwrap())
        .push(TestScaleWithStats::new(4))
        .push(Linear::new(4, 2, &mut rng).unwrap());
    model
}

/// Every parameter and buffer as (name, f64 bits or count), to compare states exactly.
fn state_bits<F: Float>(model: &dyn Layer<F>) -> Vec<(String, Vec<u64>)> {
    let mut out: Vec<(String, Vec<u64>)> = named_parameters(model)
        .into_iter()
        .map(|(n, p)| (n, p.value.iter().map(|v| v.as_f64().to_bits()).collect()))
        .collect();
    for (n, b) in named_buffers(model) {
        let bits = match b {
            BufferView::Tensor { value, .. } => value.iter().map(|v| v.as_f64().to_bits()).collect(),
            BufferView::Count { value, .. } => vec![value],
        };
        out.push((n, bits));
    }
    out
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!("gradflow-io-{}-{name}.safetensors", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A safetensors file made with the reference crate, from (name, dtype, shape, bytes).
fn file_bytes(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(&str, TensorView<'_>)> =
        tensors.iter().map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, None).unwrap()
}

fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn data_reason(err: Error, source: &str) -> String {
    match err {
        Error::Data { source_name, reason } => {
            assert_eq!(source_name, source);
            reason
        }
        other => panic!("expected Error::Data, got {other:?}"),
    }
}

#[test]
fn a_round_trip_through_a_file_is_bit_exact_in_f32_and_f64() {
    fn check<F: Float>() {
        let file = TempFile::new(&format!("round-trip-{}", F::NAME));
        let original = with_buffers::<F>(1);
        // Give the buffers non-trivial values: one training forward pass.
        let mut trained = with_buffers::<F>(1);
        let x = Array2::from_shape_fn((3, 3), |(i, j)| F::lit((i as f64 - j as f64 * 0.7).sin()));
        let mut y = Array2::zeros((0, 0));
        trained.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        assert_ne!(state_bits(&trained), state_bits(&original));

        save_safetensors(&trained, &file.0).unwrap();
        let mut loaded = with_buffers::<F>(99);
        assert_ne!(state_bits(&loaded), state_bits(&trained));
        let report = load_safetensors(&mut loaded, &file.0).unwrap();
        assert_eq!(state_bits(&loaded), state_bits(&trained));
        assert_eq!(
            report.loaded,
            [
                "0.weight",
                "0.bias",
                "1.weight",
                "2.weight",
                "2.bias",
                "1.running_mean",
                "1.num_batches_tracked"
            ]
        );
        assert!(report.converted.is_empty() && report.missing.is_empty() && report.unexpected.is_empty());
        assert_eq!(report.metadata.get("format").map(String::as_str), Some("pt"));

        // The same through bytes, and the same output afterwards.
        let bytes = safetensors_bytes(&trained).unwrap();
        assert_eq!(bytes, std::fs::read(&file.0).unwrap());
        let mut from_bytes = mlp::<F>(5);
        let err = load_safetensors_bytes(&mut from_bytes, &bytes, "mem", &LoadOptions::default());
        assert!(err.is_err(), "an MLP is another architecture");
        let mut again = with_buffers::<F>(7);
        load_safetensors_bytes(&mut again, &bytes, "mem", &LoadOptions::default()).unwrap();
        let (mut a, mut b) = (Array2::zeros((0, 0)), Array2::zeros((0, 0)));
        trained.forward(x.view(), &mut a, Mode::Eval, &mut Context::new()).unwrap();
        again.forward(x.view(), &mut b, Mode::Eval, &mut Context::new()).unwrap();
        assert_eq!(a, b);
    }
    check::<f32>();
    check::<f64>();
}

#[test]
fn the_file_uses_pytorch_names_shapes_and_dtypes() {
    let mut model = with_buffers::<f32>(2);
    let x = Array2::<f32>::ones((2, 3));
    let mut y = Array2::zeros((0, 0));
    for _ in 0..3 {
        model.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
    }
    let bytes = safetensors_bytes(&model).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(
        names,
        ["0.bias", "0.weight", "1.num_batches_tracked", "1.running_mean", "1.weight", "2.bias", "2.weight"]
    );
    let w = file.tensor("0.weight").unwrap();
    assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[4usize, 3][..]));
    // nn.Linear layout: weight[o][i] is row-major (out, in).
    let linear = model.get(0).unwrap();
    let mut first_row = Vec::new();
    linear.visit_parameters(&mut |p| {
        if p.name == "weight" {
            first_row = p.value.iter().take(3).copied().collect();
        }
    });
    let stored: Vec<f32> =
        w.data()[..12].chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(stored, first_row);
    let count = file.tensor("1.num_batches_tracked").unwrap();
    assert_eq!((count.dtype(), count.shape()), (Dtype::I64, &[][..]));
    assert_eq!(count.data(), 3i64.to_le_bytes());

    let bytes64 = safetensors_bytes(&with_buffers::<f64>(2)).unwrap();
    let file64 = SafeTensors::deserialize(&bytes64).unwrap();
    assert_eq!(file64.tensor("2.bias").unwrap().dtype(), Dtype::F64);
    assert_eq!(file64.tensor("1.running_mean").unwrap().dtype(), Dtype::F64);
}

#[test]
fn hand_made_weights_load_in_pytorch_layout() {
    // nn.Linear(2, 3) with weight [[1, 2], [3, 4], [5, 6]] and bias [0.5, -0.5, 0]:
    // y = x Wᵀ + b, so x = [1, -1] gives [-1 + 0.5, -1 - 0.5, -1].
    let bytes = file_bytes(&[
        ("0.weight", Dtype::F64, vec![3, 2], f64_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
        ("0.bias", Dtype::F64, vec![3], f64_bytes(&[0.5, -0.5, 0.0])),
    ]);
    let mut rng = StdRng::seed_from_u64(0);
    let mut model = Sequential::<f64>::new();
    model.push(Linear::new(2, 3, &mut rng).unwrap());
    load_safetensors_bytes(&mut model, &bytes, "hand", &LoadOptions::default()).unwrap();
    let mut y = Array2::zeros((0, 0));
    model.forward(array![[1.0, -1.0]].view(), &mut y, Mode::Eval, &mut Context::new()).unwrap();
    assert_eq!(y, array![[-0.5, -1.5, -1.0]]);
}

#[test]
fn every_mismatch_is_reported_at_once_and_nothing_is_loaded() {
    // A file for another architecture: Linear(4→5), Tanh, Linear(5→2), Tanh, Linear(2→1).
    let mut rng = StdRng::seed_from_u64(3);
    let other =
        Sequential::<f64>::builder(4).dense(5, Tanh).dense(2, Tanh).linear(1).build(&mut rng).unwrap();
    let file = TempFile::new("other-arch");
    save_safetensors(&other, &file.0).unwrap();

    // The model has a buffer-carrying layer at index 1 and no `4.*`; `2.weight` is (3, 5) here.
    let mut rng = StdRng::seed_from_u64(4);
    let mut model = Sequential::<f64>::new();
    model
        .push(Linear::new(4, 5, &mut rng).unwrap())
        .push(TestScaleWithStats::new(5))
        .push(Linear::new(5, 3, &mut rng).unwrap());
    let before = state_bits(&model);

    let source = file.0.display().to_string();
    let reason = data_reason(load_safetensors(&mut model, &file.0).unwrap_err(), &source);
    assert_eq!(state_bits(&model), before, "nothing may be loaded");
    assert!(reason.contains("does not fit Sequential(3 layers): 7 problems, nothing was loaded"), "{reason}");
    for expected in [
        "missing `1.weight` (the model expects shape (5))",
        "wrong shape for `2.weight`: the model expects (3, 5), the file has (2, 5)",
        "wrong shape for `2.bias`: the model expects (3), the file has (2)",
        "missing `1.running_mean`",
        "missing `1.num_batches_tracked` (the model expects shape ())",
        "unexpected `4.bias` (F64, shape (1))",
        "unexpected `4.weight` (F64, shape (1, 2))",
    ] {
        assert!(reason.contains(expected), "`{expected}` not in:\n{reason}");
    }

    // The same list, structured, without loading.
    let mismatches = check_safetensors(&model, &file.0, &LoadOptions::default()).unwrap();
    assert_eq!(mismatches.len(), 7);
    assert_eq!(mismatches[0], Mismatch::Missing { name: "1.weight".into(), shape: vec![5] });
    assert!(matches!(&mismatches[1], Mismatch::WrongShape { name, .. } if name == "2.weight"));
    assert_eq!(state_bits(&model), before);
}

#[test]
fn non_strict_loading_lists_missing_and_unexpected_names_but_refuses_wrong_shapes() {
    let file = TempFile::new("non-strict");
    save_safetensors(&mlp::<f64>(1), &file.0).unwrap();
    let mut model = with_buffers::<f64>(2);
    // Both Linear layers have other shapes than in the file: still refused, and the names
    // the file lacks (the buffers) are not problems.
    let options = LoadOptions::default().strict(false);
    let source = file.0.display().to_string();
    let reason = data_reason(load_safetensors_with(&mut model, &file.0, &options).unwrap_err(), &source);
    assert!(reason.contains("4 problems") && reason.contains("wrong shape for `0.weight`"), "{reason}");
    assert!(!reason.contains("missing"), "{reason}");

    // A model whose shapes agree: the first Linear(4→5) only.
    let mut rng = StdRng::seed_from_u64(8);
    let mut model = Sequential::<f64>::new();
    model.push(Linear::new(4, 5, &mut rng).unwrap()).push(TestScaleWithStats::new(5));
    let report = load_safetensors_with(&mut model, &file.0, &options).unwrap();
    assert_eq!(report.loaded, ["0.weight", "0.bias"]);
    assert_eq!(report.missing, ["1.weight", "1.running_mean", "1.num_batches_tracked"]);
    assert_eq!(report.unexpected, ["2.bias", "2.weight"]);
    let source_model = mlp::<f64>(1);
    assert_eq!(state_bits(&model)[..2], state_bits(&source_model)[..2]);
}

#[test]
fn f32_files_widen_exactly_and_f64_files_narrow_only_when_allowed() {
    // f32 → f64 model: accepted by default, exactly.
    let model32 = mlp::<f32>(1);
    let bytes32 = safetensors_bytes(&model32).unwrap();
    let mut model64 = mlp::<f64>(2);
    let report = load_safetensors_bytes(&mut model64, &bytes32, "f32 file", &LoadOptions::default()).unwrap();
    assert_eq!(report.converted, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(state_bits(&model64), state_bits(&model32), "widening is exact");
    let strict_dtype = LoadOptions::default().widen_f32_to_f64(false);
    let mut other64 = mlp::<f64>(3);
    let reason = data_reason(
        load_safetensors_bytes(&mut other64, &bytes32, "f32 file", &strict_dtype).unwrap_err(),
        "f32 file",
    );
    assert!(reason.contains("4 problems") && reason.contains("the model expects F64, the file has F32"));

    // f64 → f32 model: refused by default, naming every tensor and the option.
    let source64 = mlp::<f64>(4);
    let bytes64 = safetensors_bytes(&source64).unwrap();
    let mut target32 = mlp::<f32>(5);
    let before = state_bits(&target32);
    let reason = data_reason(
        load_safetensors_bytes(&mut target32, &bytes64, "f64 file", &LoadOptions::default()).unwrap_err(),
        "f64 file",
    );
    assert!(reason.contains("wrong dtype for `0.weight`: the model expects F32, the file has F64"));
    assert!(reason.contains("LoadOptions::narrow_f64_to_f32") && reason.contains("4 problems"), "{reason}");
    assert_eq!(state_bits(&target32), before);

    // Allowed: each value rounded to the nearest f32.
    let narrow = LoadOptions::default().narrow_f64_to_f32(true);
    load_safetensors_bytes(&mut target32, &bytes64, "f64 file", &narrow).unwrap();
    let expected: Vec<f32> = named_parameters(&source64)[0].1.value.iter().map(|&v| v as f32).collect();
    let got: Vec<f32> = named_parameters(&target32)[0].1.value.iter().copied().collect();
    assert_eq!(got, expected);
}

#[test]
fn other_dtypes_non_finite_values_and_negative_counts_are_refused() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut model = Sequential::<f64>::new();
    model.push(Linear::new(2, 2, &mut rng).unwrap()).push(TestScaleWithStats::new(2));
    let bytes = file_bytes(&[
        ("0.weight", Dtype::I32, vec![2, 2], vec![0; 16]),
        ("0.bias", Dtype::F64, vec![2], f64_bytes(&[1.0, f64::NAN])),
        ("1.weight", Dtype::F32, vec![2], f32_bytes(&[f32::INFINITY, f32::NEG_INFINITY])),
        ("1.running_mean", Dtype::I64, vec![2], vec![0; 16]),
        ("1.num_batches_tracked", Dtype::I64, vec![], (-3i64).to_le_bytes().to_vec()),
    ]);
    let before = state_bits(&model);
    let err = load_safetensors_bytes(&mut model, &bytes, "mixed", &LoadOptions::default()).unwrap_err();
    let reason = data_reason(err, "mixed");
    assert_eq!(state_bits(&model), before);
    for expected in [
        "wrong dtype for `0.weight`: the model expects F64, the file has I32",
        "`0.bias` has 1 non-finite value (the first at flat index 1)",
        "`1.weight` has 2 non-finite values (the first at flat index 0)",
        "wrong dtype for `1.running_mean`: the model expects F64, the file has I64",
        "`1.num_batches_tracked` is a counter but the file holds -3",
    ] {
        assert!(reason.contains(expected), "`{expected}` not in:\n{reason}");
    }

    // A counter stored as a float, or with a shape.
    let bytes = file_bytes(&[
        ("0.weight", Dtype::F64, vec![2, 2], f64_bytes(&[1.0; 4])),
        ("0.bias", Dtype::F64, vec![2], f64_bytes(&[1.0; 2])),
        ("1.weight", Dtype::F64, vec![2], f64_bytes(&[1.0; 2])),
        ("1.running_mean", Dtype::F64, vec![2], f64_bytes(&[1.0; 2])),
        ("1.num_batches_tracked", Dtype::F64, vec![1], f64_bytes(&[2.0])),
    ]);
    let reason = data_reason(
        load_safetensors_bytes(&mut model, &bytes, "count", &LoadOptions::default()).unwrap_err(),
        "count",
    );
    assert!(
        reason.contains("wrong shape for `1.num_batches_tracked`: the model expects (), the file has (1)")
    );
    assert!(reason.contains("the model expects I64, the file has F64"), "{reason}");
    assert_eq!(state_bits(&model), before);
}

#[test]
fn corrupted_and_truncated_files_are_refused_naming_the_file() {
    let good = safetensors_bytes(&with_buffers::<f64>(1)).unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut model = with_buffers::<f64>(2);
    let before = state_bits(&model);

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("inside the length prefix", good[..5].to_vec()),
        ("inside the header", good[..8 + header_len / 2].to_vec()),
        ("inside the data", good[..good.len() - 3].to_vec()),
        ("one byte too many", [good.as_slice(), &[0]].concat()),
        ("not safetensors", b"PK\x03\x04 this is a zip file, not safetensors".to_vec()),
    ];
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("absurd header length", huge));
    let mut bad_json = good.clone();
    bad_json[8] = b'[';
    cases.push(("header not JSON", bad_json));
    let mut bad_utf8 = good.clone();
    bad_utf8[10] = 0xff;
    cases.push(("header not UTF-8", bad_utf8));
    // Offsets that overlap: make the header claim a different size for the first tensor.
    let header = std::str::from_utf8(&good[8..8 + header_len]).unwrap();
    let tampered = header.replacen("\"data_offsets\":[0,", "\"data_offsets\":[8,", 1);
    assert_ne!(tampered, header);
    cases.push(("bad offsets", [&good[..8], tampered.as_bytes(), &good[8 + header_len..]].concat()));

    for (what, bytes) in cases {
        let file = TempFile::new(&format!("corrupt-{}", what.replace(' ', "-")));
        std::fs::write(&file.0, &bytes).unwrap();
        let source = file.0.display().to_string();
        let err = load_safetensors(&mut model, &file.0).unwrap_err();
        let reason = data_reason(err, &source);
        assert!(reason.starts_with("not a valid safetensors file"), "{what}: {reason}");
        assert_eq!(state_bits(&model), before, "{what}: nothing may be loaded");
        assert!(check_safetensors(&model, &file.0, &LoadOptions::default()).is_err(), "{what}");
    }

    let missing = TempFile::new("does-not-exist");
    assert!(
        matches!(load_safetensors(&mut model, &missing.0), Err(Error::Io { path, .. }) if path == missing.0)
    );
}

#[test]
fn read_tensors_returns_every_float_tensor_by_name() {
    let file = TempFile::new("read-tensors");
    let bytes = file_bytes(&[
        ("x", Dtype::F64, vec![2, 2], f64_bytes(&[1.0, 2.0, 3.0, 4.0])),
        ("scalar", Dtype::F32, vec![], f32_bytes(&[0.25])),
    ]);
    std::fs::write(&file.0, &bytes).unwrap();
    let tensors = read_tensors::<f64>(&file.0).unwrap();
    assert_eq!(tensors["x"], array![[1.0, 2.0], [3.0, 4.0]].into_dyn());
    assert_eq!(tensors["scalar"].shape(), &[] as &[usize]);
    assert_eq!(tensors["scalar"].first(), Some(&0.25));
    // F64 into f32 is refused, naming the tensor.
    let reason = data_reason(read_tensors::<f32>(&file.0).unwrap_err(), &file.0.display().to_string());
    assert!(reason.contains("`x`") && reason.contains("F64"), "{reason}");
}

#[test]
fn half_precision_files_load_exactly_into_f32_and_f64_models() {
    // 1.5, −0.25, 2^-24 (the smallest subnormal), 65504 (the largest f16), in F16 and BF16.
    let f16 = [0x3e00u16, 0xb400, 0x0001, 0x7bff];
    let bf16 = [0x3fc0u16, 0xbe80, 0x3380, 0x477f];
    let half = |v: &[u16]| v.iter().flat_map(|b| b.to_le_bytes()).collect::<Vec<u8>>();
    let bytes = file_bytes(&[
        ("0.weight", Dtype::F16, vec![2, 2], half(&f16)),
        ("0.bias", Dtype::BF16, vec![2], half(&bf16[..2])),
    ]);
    let mut rng = StdRng::seed_from_u64(0);
    let mut model = Sequential::<f32>::new();
    model.push(Linear::new(2, 2, &mut rng).unwrap());
    let report = load_safetensors_bytes(&mut model, &bytes, "half", &LoadOptions::default()).unwrap();
    assert_eq!(report.converted, ["0.weight", "0.bias"]);
    let values: Vec<Vec<f32>> =
        named_parameters(&model).iter().map(|(_, p)| p.value.iter().copied().collect()).collect();
    assert_eq!(values, [vec![1.5, -0.25, 2f32.powi(-24), 65504.0], vec![1.5, -0.25]]);
}

/// Models of every kind gradflow saves, in f32 and f64: each file reads back with
/// `read_tensors` (counters as floats) and `read_any_tensors` (with their dtypes).
#[test]
fn every_file_gradflow_writes_reads_back() {
    use gradflow::activation::Relu;
    use gradflow::io::{Dtype as StoredDtype, TensorData, read_any_tensors};
    use gradflow::layers::ImageShape;
    use gradflow::recurrent::{LstmConfig, Readout, SequenceModel};

    fn check<F: Float>(what: &str, model: &dyn Layer<F>) {
        let file = TempFile::new(&format!("reads-back-{what}-{}", std::mem::size_of::<F>()));
        save_safetensors(model, &file.0).unwrap();
        let floats = read_tensors::<F>(&file.0).unwrap();
        let any = read_any_tensors(&file.0).unwrap();
        let state = state_bits(model);
        assert_eq!(floats.len(), state.len(), "{what}");
        assert_eq!(any.len(), state.len(), "{what}");
        let float_dtype = if std::mem::size_of::<F>() == 4 { StoredDtype::F32 } else { StoredDtype::F64 };
        let mut counters = 0;
        for (name, bits) in &state {
            let stored = &any[name];
            assert_eq!(floats[name].shape(), stored.shape.as_slice(), "{what}: {name}");
            match &stored.data {
                TensorData::Float(values) => {
                    assert_eq!(stored.dtype, float_dtype, "{what}: {name}");
                    let read: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(&read, bits, "{what}: {name}");
                    let as_f: Vec<u64> = floats[name].iter().map(|v| v.as_f64().to_bits()).collect();
                    assert_eq!(&as_f, bits, "{what}: {name}");
                }
                TensorData::Int(values) => {
                    counters += 1;
                    assert_eq!((stored.dtype, stored.shape.as_slice()), (StoredDtype::I64, &[] as &[usize]));
                    assert_eq!(values.iter().map(|&v| v as u64).collect::<Vec<_>>(), *bits, "{what}: {name}");
                    assert_eq!(floats[name].first().map(|v| v.as_f64()), Some(bits[0] as f64));
                }
            }
        }
        let expected_counters =
            named_buffers(model).iter().filter(|(_, b)| matches!(b, BufferView::Count { .. })).count();
        assert_eq!(counters, expected_counters, "{what}");
    }

    fn models<F: Float>() -> Vec<(&'static str, Box<dyn Layer<F>>)> {
        let mut rng = StdRng::seed_from_u64(5);
        let mut bn = Sequential::<F>::builder(3)
            .linear(4)
            .batch_norm()
            .activation(Relu)
            .residual(|b| b.linear(4).batch_norm())
            .layer_norm()
            .highway(Tanh, -1.0)
            .linear(2)
            .build(&mut rng)
            .unwrap();
        // Move the running statistics and count batches, so the buffers are not their defaults.
        let mut net = gradflow::Network::new(std::mem::take(&mut bn));
        for _ in 0..3 {
            net.forward(
                Array2::from_shape_fn((5, 3), |(i, j)| F::lit((i * 3 + j) as f64 / 7.0)).view(),
                Mode::Train,
            )
            .unwrap();
        }
        let bn = net.into_model();
        let conv = Sequential::<F>::image_builder(ImageShape::new(2, 6, 6))
            .conv2d(3, 3)
            .batch_norm2d()
            .activation(Relu)
            .flatten()
            .linear(2)
            .build(&mut rng)
            .unwrap();
        let lstm = LstmConfig::new(3, 4).build::<F>(&mut rng).unwrap();
        let lstm = SequenceModel::new(lstm, Readout::LastStep, Linear::new(4, 2, &mut rng).unwrap()).unwrap();
        vec![
            ("mlp", Box::new(mlp::<F>(1))),
            ("bn", Box::new(bn)),
            ("conv", Box::new(conv)),
            ("lstm", Box::new(lstm)),
        ]
    }

    for (what, model) in models::<f32>() {
        check(what, model.as_ref());
    }
    for (what, model) in models::<f64>() {
        check(what, model.as_ref());
    }
}

#[test]
fn read_any_tensors_returns_every_dtype_and_read_tensors_names_what_it_cannot_convert() {
    use gradflow::io::{Dtype as StoredDtype, read_any_tensors, read_any_tensors_bytes};
    let file = TempFile::new("read-any");
    let bytes = file_bytes(&[
        ("mask", Dtype::BOOL, vec![3], vec![1, 0, 1]),
        ("ids", Dtype::I32, vec![2], [-3i32, 7].iter().flat_map(|v| v.to_le_bytes()).collect()),
        ("big", Dtype::I64, vec![1], (1i64 << 40).to_le_bytes().to_vec()),
        ("half", Dtype::F16, vec![1], 0x3c00u16.to_le_bytes().to_vec()),
        ("x", Dtype::F64, vec![1, 2], f64_bytes(&[0.1, f64::NAN])),
    ]);
    std::fs::write(&file.0, &bytes).unwrap();
    let any = read_any_tensors(&file.0).unwrap();
    assert_eq!(any["mask"].dtype, StoredDtype::Bool);
    assert_eq!(any["mask"].ints().unwrap().as_slice().unwrap(), &[1, 0, 1]);
    assert_eq!(any["ids"].ints().unwrap().as_slice().unwrap(), &[-3, 7]);
    assert_eq!(any["big"].ints().unwrap()[[0]], 1 << 40);
    assert_eq!((any["half"].dtype, any["half"].floats().unwrap()[[0]]), (StoredDtype::F16, 1.0));
    assert_eq!(any["x"].shape, [1, 2]);
    assert_eq!(any["x"].non_finite(), 1, "read as stored; the caller decides");
    assert_eq!(any["x"].dtype.to_string(), "F64");

    // read_tensors converts what is exact and names each tensor it cannot.
    let reason = data_reason(read_tensors::<f32>(&file.0).unwrap_err(), &file.0.display().to_string());
    assert!(reason.starts_with("cannot read: 2 problems:"), "{reason}");
    assert!(
        reason.contains("`big`") && reason.contains("I64") && reason.contains("1099511627776"),
        "{reason}"
    );
    assert!(reason.contains("`x`") && reason.contains("the file has F64"), "{reason}");
    let ok = file_bytes(&[
        ("mask", Dtype::BOOL, vec![3], vec![1, 0, 1]),
        ("ids", Dtype::I32, vec![2], [-3i32, 7].iter().flat_map(|v| v.to_le_bytes()).collect()),
        ("half", Dtype::F16, vec![1], 0x3c00u16.to_le_bytes().to_vec()),
    ]);
    std::fs::write(&file.0, &ok).unwrap();
    let floats = read_tensors::<f32>(&file.0).unwrap();
    assert_eq!(floats["mask"].as_slice().unwrap(), &[1.0, 0.0, 1.0]);
    assert_eq!(floats["ids"].as_slice().unwrap(), &[-3.0, 7.0]);
    assert_eq!(floats["half"].as_slice().unwrap(), &[1.0]);

    // Dtypes gradflow does not read are named.
    let f8 = file_bytes(&[("q", Dtype::F8_E4M3, vec![2], vec![0, 0])]);
    let err = read_any_tensors_bytes(&f8, "f8").unwrap_err();
    assert!(data_reason(err, "f8").contains("wrong dtype for `q`"));
}

/// A header written by hand: `{"name": {"dtype", "shape", "data_offsets"}, …}` in the order
/// given (duplicates kept), followed by `data_len` zero bytes.
fn raw_file(entries: &[(&str, &str, &[usize], [usize; 2])], data_len: usize) -> Vec<u8> {
    let body: Vec<String> = entries
        .iter()
        .map(|(name, dtype, shape, [s, e])| {
            format!(r#""{name}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{s},{e}]}}"#)
        })
        .collect();
    let header = format!("{{{}}}", body.join(","));
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(std::iter::repeat_n(0u8, data_len));
    bytes
}

#[test]
fn malformed_headers_are_refused_naming_the_tensor() {
    use gradflow::io::read_any_tensors_bytes;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "duplicate",
            raw_file(&[("a", "F32", &[1], [0, 4]), ("a", "F32", &[1], [4, 8])], 8),
            "the header names `a` twice",
        ),
        (
            "out of range",
            raw_file(&[("a", "F32", &[1], [0, 4]), ("b", "F32", &[2], [4, 12])], 8),
            "`b` claims bytes [4, 12) of a data section of 8 bytes",
        ),
        (
            "overlap",
            raw_file(&[("a", "F32", &[2], [0, 8]), ("b", "F32", &[1], [4, 8])], 8),
            "the byte ranges of `a` [0, 8) and `b` [4, 8) overlap",
        ),
        (
            "wrong length",
            raw_file(&[("a", "F64", &[2], [0, 8])], 8),
            "`a` (F64, shape (2)) needs 16 bytes, its range [0, 8) has 8",
        ),
        ("gap", raw_file(&[("a", "F32", &[1], [4, 8])], 8), "bytes [0, 4) of the data belong to no tensor"),
        ("unknown dtype", raw_file(&[("a", "F7", &[1], [0, 1])], 1), "`a` has the unknown dtype `F7`"),
    ];
    let mut model = Sequential::<f32>::new();
    for (what, bytes, expected) in cases {
        let reason = data_reason(read_any_tensors_bytes(&bytes, what).unwrap_err(), what);
        assert!(
            reason.starts_with("not a valid safetensors file") && reason.contains(expected),
            "{what}: {reason}"
        );
        let err = load_safetensors_bytes(&mut model, &bytes, what, &LoadOptions::default()).unwrap_err();
        assert!(data_reason(err, what).contains(expected), "{what}");
    }
}
