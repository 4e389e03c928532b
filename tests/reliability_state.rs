//! Failures must leave state exactly as it was: a training pass that fails at a later layer, or
//! whose hook panics, leaves every BatchNorm's running statistics and counter untouched; a
//! safetensors file that names a tensor twice is refused with nothing loaded; datasets refuse
//! labels that would ask for absurd class tables; IDX headers that describe impossible images are
//! refused.

use std::path::PathBuf;

use gradflow::data::{Dataset, TargetData, read_idx_images};
use gradflow::hooks::Event;
use gradflow::ndarray::Array2;
use gradflow::{BatchNorm1d, Error, Layer, Linear, Mode, Network, Sequential};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

/// Every parameter and buffer of a model, as the bytes of its safetensors file.
fn state(layer: &dyn Layer<f32>) -> Vec<u8> {
    gradflow::io::safetensors_bytes(layer).unwrap()
}

/// BatchNorm(4) → Linear(4→3) → BatchNorm(3) → Linear(`last_in`→2): with `last_in ≠ 3`, a
/// training pass fails at layer 3, after both BatchNorms have run.
fn model(last_in: usize) -> Sequential<f32> {
    let mut model = Sequential::new();
    model.push(BatchNorm1d::new(4).unwrap());
    model.push(Linear::new(4, 3, &mut rng()).unwrap());
    model.push(BatchNorm1d::new(3).unwrap());
    model.push(Linear::new(last_in, 2, &mut rng()).unwrap());
    model
}

fn batch() -> Array2<f32> {
    Array2::from_shape_fn((5, 4), |(i, j)| (i * 3 + j) as f32 / 4.0 - 1.0)
}

// ---- transactions ---------------------------------------------------------------------------

#[test]
fn transactions_a_pass_failing_at_a_later_layer_leaves_running_statistics_unchanged() {
    let mut net = Network::new(model(5));
    let before = state(net.model());
    let err = net.forward(batch().view(), Mode::Train).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }) && err.to_string().starts_with("3"), "{err}");
    assert_eq!(state(net.model()), before, "running statistics or counters changed");
    // A pass that succeeds does update them (the check above is not vacuous).
    let mut net = Network::new(model(3));
    net.forward(batch().view(), Mode::Train).unwrap();
    assert_ne!(state(net.model()), before);
}

#[test]
fn transactions_a_hook_panicking_mid_pass_leaves_running_statistics_unchanged() {
    let mut net = Network::new(model(3));
    net.forward(batch().view(), Mode::Train).unwrap(); // some history in the buffers
    let before = state(net.model());
    net.attach_hook(|event: &mut Event<'_, f32>| {
        if let Event::Forward(e) = event
            && e.path == "3"
        {
            panic!("hook failure at the last layer");
        }
    });
    let err = net.forward(batch().view(), Mode::Train).unwrap_err();
    assert!(matches!(err, Error::Hook { .. }), "{err:?}");
    assert_eq!(state(net.model()), before);
    // Many failed passes in a row leave it unchanged too (the saved copy is reused).
    for _ in 0..3 {
        assert!(net.forward(batch().view(), Mode::Train).is_err());
    }
    assert_eq!(state(net.model()), before);
}

// ---- files ----------------------------------------------------------------------------------

/// A safetensors file of `F32` tensors from a JSON header and the data bytes.
fn safetensors_file(header: &str, data: &[f32]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

#[test]
fn files_a_safetensors_header_naming_a_tensor_twice_is_refused_with_nothing_loaded() {
    let mut layer = Linear::<f32>::from_weights(Array2::zeros((2, 1)), None).unwrap();
    let before = state(&layer);
    // The second entry alone covers the data, so the safetensors crate accepts the file and keeps
    // it; which of the two did the writer mean?
    let header = r#"{"weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"weight":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]}}"#;
    let bytes = safetensors_file(header, &[1.0, 2.0]);
    let err =
        gradflow::io::load_safetensors_bytes(&mut layer, &bytes, "twice.safetensors", &Default::default())
            .unwrap_err();
    assert!(matches!(err, Error::Data { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("twice.safetensors") && msg.contains("`weight`") && msg.contains("twice"), "{msg}");
    assert_eq!(state(&layer), before);
    // The same file with the name once loads.
    let once = r#"{"weight":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]}}"#;
    gradflow::io::load_safetensors_bytes(
        &mut layer,
        &safetensors_file(once, &[1.0, 2.0]),
        "once",
        &Default::default(),
    )
    .unwrap();
    assert_eq!(layer.weight().as_slice().unwrap(), [1.0, 2.0]);
}

/// A fresh file under the system's temporary directory (removed when the test ends).
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("gradflow-reliability-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn files_an_idx_header_of_zero_images_of_impossible_size_is_refused() {
    let mut header = vec![0, 0, 8, 3];
    for dim in [0u32, 0xFFFF_FFFF, 0xFFFF_FFFF] {
        header.extend_from_slice(&dim.to_be_bytes());
    }
    let file = TempFile::new("huge.idx", &header);
    let err = read_idx_images(&file.0).unwrap_err();
    assert!(matches!(err, Error::Data { .. }) && err.to_string().contains("MAX_TENSOR_ELEMENTS"), "{err}");
    // Hand-edited fields never make `image` panic.
    let images = gradflow::data::IdxImages { count: 2, rows: usize::MAX, cols: 3, pixels: vec![0; 4] };
    assert_eq!(images.image(1), None);
    let images = gradflow::data::IdxImages { count: 3, rows: 2, cols: 2, pixels: vec![0; 4] };
    assert_eq!(images.image(0), Some(&[0u8; 4][..]));
    assert_eq!(images.image(2), None);
}

// ---- data -----------------------------------------------------------------------------------

#[test]
fn data_labels_over_the_class_limit_are_refused() {
    let inputs = Array2::<f32>::zeros((3, 2));
    let err = Dataset::new(inputs.clone(), TargetData::Classes(vec![0, usize::MAX, 1])).unwrap_err();
    assert!(matches!(err, Error::InvalidTarget { .. }), "{err:?}");
    assert!(err.to_string().contains("sample 1") && err.to_string().contains("MAX_CLASSES"), "{err}");
    let limit = gradflow::limits::MAX_CLASSES;
    assert!(Dataset::new(inputs.clone(), TargetData::Classes(vec![0, limit, 1])).is_err());
    assert!(Dataset::new(inputs.clone(), TargetData::Classes(vec![0, limit - 1, 1])).is_ok());
    // Labels edited in by hand after `new`: counting and splitting refuse them, never panic.
    let mut data = Dataset::new(inputs, TargetData::Classes(vec![0, 1, 1])).unwrap();
    data.targets = TargetData::Classes(vec![0, usize::MAX, 1]);
    assert_eq!(data.class_counts(), None);
    assert!(data.split_stratified(0.34, 0).is_err());
    assert!(data.check().is_err());
}
