//! Bad input to recurrent layers gives errors naming the layer and what was wrong.

use gradflow::recurrent::{
    GruConfig, LstmConfig, Readout, Recurrent, RecurrentInit, RecurrentState, RnnConfig, SequenceLayer,
    SequenceModel,
};
use gradflow::{Error, Layer, Linear, Mode, hooks::Context};
use ndarray::{Array2, Array3, ArrayD, IxDyn};
use rand::SeedableRng;

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(0)
}

fn message(result: Result<(), Error>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn wrong_input_rank_names_the_layer() {
    let mut lstm = LstmConfig::new(3, 4).build::<f64>(&mut rng()).unwrap();
    let x = ArrayD::<f64>::zeros(IxDyn(&[5, 3]));
    let msg = message(lstm.forward_sequence_dyn(x.view(), None, Mode::Train));
    assert!(msg.contains("LSTM(3→4)") && msg.contains("(time, batch, 3)") && msg.contains("(5, 3)"), "{msg}");
    // The right rank goes through.
    let x = ArrayD::<f64>::zeros(IxDyn(&[5, 2, 3]));
    lstm.forward_sequence_dyn(x.view(), None, Mode::Train).unwrap();
}

#[test]
fn wrong_feature_size_names_the_layer_and_both_shapes() {
    let mut gru = GruConfig::new(3, 4).build::<f64>(&mut rng()).unwrap();
    let msg = message(gru.forward_sequence(Array3::zeros((5, 2, 7)).view(), None, Mode::Train));
    assert!(
        msg.contains("GRU(3→4)") && msg.contains("(time, batch, 3)") && msg.contains("(5, 2, 7)"),
        "{msg}"
    );
}

#[test]
fn empty_sequence_and_empty_batch_are_refused() {
    let mut rnn = RnnConfig::new(3, 4).build::<f64>(&mut rng()).unwrap();
    rnn.forward_sequence(Array3::zeros((4, 2, 3)).view(), None, Mode::Train).unwrap();
    let msg = message(rnn.forward_sequence(Array3::zeros((0, 2, 3)).view(), None, Mode::Train));
    assert!(msg.contains("RNN(3→4)") && msg.contains("empty sequence") && msg.contains("(0, 2, 3)"), "{msg}");
    let msg = message(rnn.forward_sequence(Array3::zeros((4, 0, 3)).view(), None, Mode::Train));
    assert!(msg.contains("RNN(3→4)") && msg.contains("empty batch"), "{msg}");
    // A failed pass leaves nothing from the previous one for backward to use.
    assert!(rnn.outputs().is_none());
    let err = rnn.backward_sequence(Array3::zeros((4, 2, 4)).view(), None, None).unwrap_err();
    assert!(matches!(err, Error::BackwardBeforeForward { .. }), "{err}");
}

#[test]
fn initial_state_of_the_wrong_shape_is_refused() {
    let mut lstm = LstmConfig::new(3, 4).num_layers(2).build::<f64>(&mut rng()).unwrap();
    let x = Array3::zeros((5, 2, 3));
    let one_layer = RecurrentState::zeros(1, 2, 4, true);
    let msg = message(lstm.forward_sequence(x.view(), Some(&one_layer), Mode::Train));
    assert!(msg.contains("LSTM(3→4, num_layers=2)") && msg.contains("initial_state.hidden"), "{msg}");
    assert!(msg.contains("(2, 2, 4)") && msg.contains("(1, 2, 4)"), "{msg}");
    let wrong_batch = RecurrentState::zeros(2, 3, 4, true);
    assert!(message(lstm.forward_sequence(x.view(), Some(&wrong_batch), Mode::Train)).contains("(2, 3, 4)"));
    let no_cell = RecurrentState::zeros(2, 2, 4, false);
    let msg = message(lstm.forward_sequence(x.view(), Some(&no_cell), Mode::Train));
    assert!(msg.contains("initial_state.cell") && msg.contains("got none"), "{msg}");
    let mut bad_cell = RecurrentState::zeros(2, 2, 4, true);
    bad_cell.cell = Some(Array3::zeros((2, 2, 5)));
    assert!(
        message(lstm.forward_sequence(x.view(), Some(&bad_cell), Mode::Train)).contains("initial_state.cell")
    );

    let mut gru = GruConfig::new(3, 4).build::<f64>(&mut rng()).unwrap();
    let with_cell = RecurrentState::zeros(1, 2, 4, true);
    let msg = message(gru.forward_sequence(x.view(), Some(&with_cell), Mode::Train));
    assert!(msg.contains("GRU(3→4)") && msg.contains("no cell state"), "{msg}");
}

#[test]
fn backward_errors_name_the_layer() {
    let mut rnn = RnnConfig::new(3, 4).build::<f64>(&mut rng()).unwrap();
    let g = Array3::zeros((5, 2, 4));
    let err = rnn.backward_sequence(g.view(), None, None).unwrap_err();
    assert!(matches!(err, Error::BackwardBeforeForward { ref layer } if layer == "RNN(3→4)"), "{err}");

    rnn.forward_sequence(Array3::zeros((5, 2, 3)).view(), None, Mode::Train).unwrap();
    let msg = message(rnn.backward_sequence(Array3::zeros((4, 2, 4)).view(), None, None));
    assert!(msg.contains("RNN(3→4)") && msg.contains("grad_outputs") && msg.contains("(4, 2, 4)"), "{msg}");
    let msg = message(rnn.backward_sequence(g.view(), None, Some(0)));
    assert!(msg.contains("RNN(3→4)") && msg.contains("truncate"), "{msg}");
    let bad_final = RecurrentState::zeros(1, 3, 4, false);
    let msg = message(rnn.backward_sequence(g.view(), Some(&bad_final), None));
    assert!(msg.contains("grad_final_state.hidden"), "{msg}");
}

#[test]
fn invalid_configuration_names_the_field() {
    let err = RnnConfig::new(0, 4).build::<f32>(&mut rng()).unwrap_err();
    assert!(err.to_string().contains("RNN") && err.to_string().contains("input_size"), "{err}");
    let err = LstmConfig::new(3, 0).build::<f32>(&mut rng()).unwrap_err();
    assert!(err.to_string().contains("hidden_size"), "{err}");
    let err = GruConfig::new(3, 4).num_layers(0).build::<f32>(&mut rng()).unwrap_err();
    assert!(err.to_string().contains("GRU") && err.to_string().contains("num_layers"), "{err}");
    let err = LstmConfig::new(3, 4).forget_bias(f64::INFINITY).build::<f32>(&mut rng()).unwrap_err();
    assert!(err.to_string().contains("forget_bias"), "{err}");
    let err = RnnConfig::new(3, 4)
        .recurrent_init(RecurrentInit::Identity { scale: f64::NAN })
        .build::<f32>(&mut rng())
        .unwrap_err();
    assert!(err.to_string().contains("recurrent_init"), "{err}");
    let err = gradflow::recurrent::Nonlinearity::from_name("sigmoid").unwrap_err();
    assert!(err.to_string().contains("nonlinearity") && err.to_string().contains("sigmoid"), "{err}");
}

#[test]
fn set_parameter_refuses_unknown_names_and_wrong_shapes() {
    let mut lstm = LstmConfig::new(3, 4).build::<f64>(&mut rng()).unwrap();
    let msg = message(lstm.set_parameter("weight_ih_l1", ArrayD::zeros(IxDyn(&[16, 3])).view()));
    assert!(msg.contains("LSTM(3→4)") && msg.contains("weight_ih_l1"), "{msg}");
    let msg = message(lstm.set_parameter("weight_ih_l0", ArrayD::zeros(IxDyn(&[12, 3])).view()));
    assert!(msg.contains("(16, 3)") && msg.contains("(12, 3)"), "{msg}");
}

#[test]
fn sequence_layer_refuses_rows_that_are_not_whole_steps() {
    let mut layer =
        SequenceLayer::new(LstmConfig::new(3, 4).build::<f64>(&mut rng()).unwrap(), Readout::LastStep);
    let mut y = Array2::zeros((0, 0));
    let err =
        layer.forward(Array2::zeros((2, 10)).view(), &mut y, Mode::Train, &mut Context::new()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("LSTM(3→4)") && msg.contains("time · 3") && msg.contains("(2, 10)"), "{msg}");
    assert!(layer.output_features(10).is_err() && layer.output_features(0).is_err());
    assert_eq!(layer.output_features(12).unwrap(), 4);
    let x = Array2::zeros((2, 12));
    let err = layer
        .backward(x.view(), y.view(), Array2::zeros((2, 4)).view(), None, &mut Context::new())
        .unwrap_err();
    assert!(matches!(err, Error::BackwardBeforeForward { .. }), "{err}");
    assert!(layer.set_truncation(Some(0)).unwrap_err().to_string().contains("truncate"));
}

#[test]
fn sequence_model_refuses_a_head_of_the_wrong_width() {
    let mut r = rng();
    let lstm = LstmConfig::new(3, 4).build::<f64>(&mut r).unwrap();
    let err =
        SequenceModel::new(lstm, Readout::LastStep, Linear::<f64>::new(5, 1, &mut r).unwrap()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("head") && msg.contains("Linear(5→1)") && msg.contains("(batch, 4)"), "{msg}");

    let gru = GruConfig::new(3, 4).build::<f64>(&mut r).unwrap();
    let mut model =
        SequenceModel::new(gru, Readout::EveryStep, Linear::<f64>::new(4, 2, &mut r).unwrap()).unwrap();
    let mut y = Array2::zeros((0, 0));
    let err =
        model.forward(Array2::zeros((2, 7)).view(), &mut y, Mode::Train, &mut Context::new()).unwrap_err();
    assert!(err.to_string().starts_with("rnn: GRU(3→4)"), "{err}");
}
