//! Sequences in PyTorch's layouts through a `Network`: `(T, B, F)` (`batch_first=False`) and
//! `(B, T, F)` (`batch_first=True`) in and out, the same numbers as the row layout, and a PyTorch
//! LSTM fixture fed its `(T, B, I)` input directly.

use std::path::PathBuf;

use gradflow::io::{load_safetensors, read_tensors};
use gradflow::recurrent::{
    GruConfig, LstmConfig, Readout, SequenceLayout, SequenceModel, rows_as_sequence, rows_to_sequence,
    sequence_to_rows,
};
use gradflow::{Error, Layer, Linear, Mode, Network, named_parameters};
use ndarray::{Array2, Array3, Ix2, Ix3};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn gru_model(readout: Readout) -> SequenceModel<f64> {
    let mut rng = StdRng::seed_from_u64(4);
    let gru = GruConfig::new(3, 5).build::<f64>(&mut rng).unwrap();
    SequenceModel::new(gru, readout, Linear::new(5, 2, &mut rng).unwrap()).unwrap()
}

/// (T, B, F) = (6, 4, 3).
fn time_major() -> Array3<f64> {
    Array3::from_shape_fn((6, 4, 3), |(t, b, f)| ((t * 7 + b * 5 + f * 3) % 11) as f64 / 5.0 - 1.0)
}

fn batch_first(sequence: &Array3<f64>) -> Array3<f64> {
    sequence.view().permuted_axes([1, 0, 2]).as_standard_layout().to_owned()
}

fn gradients(layer: &dyn Layer<f64>) -> Vec<Vec<f64>> {
    named_parameters(layer).into_iter().map(|(_, p)| p.grad.iter().copied().collect()).collect()
}

#[test]
fn both_pytorch_layouts_give_the_row_layouts_outputs_and_gradients() {
    let x = time_major();
    let rows = sequence_to_rows(x.view());
    // dL/dy for every step's output, (T, B, 2).
    let dy = Array3::from_shape_fn((6, 4, 2), |(t, b, h)| 0.1 * t as f64 - 0.2 * b as f64 + 0.3 * h as f64);

    let mut reference = Network::new(gru_model(Readout::EveryStep));
    let expected = reference.forward(rows.view(), Mode::Train).unwrap().to_owned();
    reference.backward(sequence_to_rows(dy.view()).view()).unwrap();
    let expected_grads = gradients(reference.model());

    let inputs = [
        (SequenceLayout::TimeMajor, x.clone(), dy.clone()),
        (SequenceLayout::BatchFirst, batch_first(&x), batch_first(&dy)),
    ];
    for (layout, input, grad) in inputs {
        let mut net = Network::new(gru_model(Readout::EveryStep));
        let out = net.forward_sequence(input.view(), layout, Mode::Train).unwrap().to_owned();
        assert_eq!(out, expected, "{layout:?}");
        let seq = net.output_sequence(layout).unwrap().to_owned();
        assert_eq!(seq, rows_as_sequence(expected.view(), 2, layout).unwrap(), "{layout:?}");
        let as_time_major = if layout == SequenceLayout::TimeMajor { seq.clone() } else { batch_first(&seq) };
        assert_eq!(as_time_major, rows_to_sequence(expected.view(), 2).unwrap(), "{layout:?}");
        net.backward_sequence(grad.view(), layout).unwrap();
        assert_eq!(gradients(net.model()), expected_grads, "{layout:?}");
    }
    assert_eq!(SequenceLayout::from_batch_first(true), SequenceLayout::BatchFirst);
    assert_eq!(SequenceLayout::from_batch_first(false), SequenceLayout::default());
}

#[test]
fn a_last_step_model_returns_rows_and_refuses_an_output_sequence() {
    let mut net = Network::new(gru_model(Readout::LastStep));
    let y = net.forward_sequence(time_major().view(), SequenceLayout::TimeMajor, Mode::Eval).unwrap();
    assert_eq!(y.dim(), (4, 2));
    let err = net.output_sequence(SequenceLayout::TimeMajor).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    // After an ordinary forward pass there is no sequence either.
    let mut net = Network::new(gru_model(Readout::EveryStep));
    net.forward(sequence_to_rows(time_major().view()).view(), Mode::Eval).unwrap();
    assert!(net.output_sequence(SequenceLayout::BatchFirst).is_err());
    // A gradient of the wrong shape is refused naming the network.
    net.forward_sequence(time_major().view(), SequenceLayout::TimeMajor, Mode::Train).unwrap();
    let err = net.backward_sequence(Array3::zeros((6, 4, 3)).view(), SequenceLayout::TimeMajor).unwrap_err();
    assert!(err.to_string().starts_with("Network: shape mismatch for grad_output"), "{err}");
    // A sequence with another number of features than the recurrent layer reads is refused,
    // not read as more or fewer time steps (6 · 6 features would be 12 steps of 3).
    for (layout, shape, expected) in [
        (SequenceLayout::TimeMajor, (6, 4, 6), "expected (time, batch, 3), got (6, 4, 6)"),
        (SequenceLayout::BatchFirst, (4, 6, 2), "expected (batch, time, 3), got (4, 6, 2)"),
    ] {
        let err =
            net.forward_sequence(Array3::zeros(shape).view(), layout, Mode::Eval).unwrap_err().to_string();
        assert_eq!(err, format!("Network: shape mismatch for input sequence: {expected}"));
    }
    // Also when the sequence model is the first layer of a Sequential.
    let mut model = gradflow::Sequential::new();
    model.push(gru_model(Readout::LastStep));
    let mut net = Network::new(model);
    assert!(
        net.forward_sequence(Array3::zeros((6, 4, 6)).view(), SequenceLayout::TimeMajor, Mode::Eval).is_err()
    );
    assert!(net.forward_sequence(time_major().view(), SequenceLayout::TimeMajor, Mode::Eval).is_ok());
}

#[test]
fn a_pytorch_lstm_takes_its_time_major_input_directly() {
    let fixture =
        |name: &str| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name);
    let expected = read_tensors::<f64>(fixture("torch_lstm_head_expected.safetensors")).unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let lstm = LstmConfig::new(3, 4).build::<f64>(&mut rng).unwrap();
    let mut model =
        SequenceModel::new(lstm, Readout::LastStep, Linear::new(4, 2, &mut rng).unwrap()).unwrap();
    load_safetensors(&mut model, fixture("torch_lstm_head.safetensors")).unwrap();
    let mut net = Network::new(model);

    // PyTorch's input: (time 5, batch 2, 3 features), nn.LSTM's default layout.
    let x = expected["input"].clone().into_dimensionality::<Ix3>().unwrap();
    let torch_output = expected["output"].clone().into_dimensionality::<Ix2>().unwrap();
    let r: Array2<f64> = expected["grad_output"].clone().into_dimensionality::<Ix2>().unwrap();
    for (layout, input) in
        [(SequenceLayout::TimeMajor, x.clone()), (SequenceLayout::BatchFirst, batch_first(&x))]
    {
        net.zero_grad();
        let y = net.forward_sequence(input.view(), layout, Mode::Train).unwrap().to_owned();
        assert!(y.iter().zip(&torch_output).all(|(a, b)| (a - b).abs() < 1e-10), "{y} vs {torch_output}");
        net.backward(r.view()).unwrap();
        for (name, p) in named_parameters(net.model()) {
            let torch = &expected[&format!("grad.{name}")];
            assert!(p.grad.iter().zip(torch).all(|(a, b)| (a - b).abs() < 1e-10), "grad.{name}");
        }
    }
}
