//! A `Network` wraps any `Layer`, not only a `Sequential`: a `SequenceModel` directly.

use gradflow::hooks::{Context, Event, Recorder};
use gradflow::optim::SgdConfig;
use gradflow::recurrent::{LstmConfig, Readout, SequenceLayer, SequenceModel};
use gradflow::{Error, Layer, Linear, Mode, Network, named_parameters};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn lstm_model() -> SequenceModel<f64> {
    let mut rng = StdRng::seed_from_u64(9);
    let lstm = LstmConfig::new(2, 5).num_layers(2).build::<f64>(&mut rng).unwrap();
    SequenceModel::new(lstm, Readout::LastStep, Linear::new(5, 3, &mut rng).unwrap()).unwrap()
}

fn input() -> Array2<f64> {
    Array2::from_shape_fn((4, 6 * 2), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 3.0 - 1.0)
}

fn grad_output() -> Array2<f64> {
    Array2::from_shape_fn((4, 3), |(i, j)| 0.2 * i as f64 - 0.3 * j as f64)
}

fn gradients(layer: &dyn Layer<f64>) -> Vec<(String, Vec<f64>)> {
    named_parameters(layer).into_iter().map(|(n, p)| (n, p.grad.iter().copied().collect())).collect()
}

#[test]
fn a_network_of_a_sequence_model_computes_what_the_model_computes() {
    let mut direct = lstm_model();
    let mut y = Array2::zeros((0, 0));
    direct.forward(input().view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
    direct.backward(input().view(), y.view(), grad_output().view(), None, &mut Context::new()).unwrap();

    let mut net = Network::new(lstm_model());
    let out = net.forward(input().view(), Mode::Train).unwrap().to_owned();
    net.backward(grad_output().view()).unwrap();
    assert_eq!(out, y);
    assert_eq!(gradients(net.model()), gradients(&direct));
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.first().map(String::as_str), Some("rnn.weight_ih_l0"));
    assert_eq!(names.last().map(String::as_str), Some("head.bias"));
    assert_eq!(net.step_count(), 1);
}

#[test]
fn hooks_see_the_models_children_and_time_steps_under_their_own_names() {
    let mut net = Network::new(lstm_model());
    let recorder = net.attach_hook(Recorder::default());
    let mut seen = Vec::new();
    let (result, _) = net.with_hook(
        |event: &mut Event<'_, f64>| {
            let what = match event {
                Event::Forward(_) => "F",
                Event::Backward(_) => "B",
                Event::TimeStep(_) => "T",
                _ => "?",
            };
            let entry = format!("{what} {} {:?}", event.path(), event.layer_number());
            if seen.last() != Some(&entry) {
                seen.push(entry);
            }
        },
        |net| {
            net.forward(input().view(), Mode::Train)?;
            net.backward(grad_output().view())
        },
    );
    result.unwrap();
    assert_eq!(
        seen,
        [
            "T rnn Some(1)",
            "F rnn Some(1)",
            "F head Some(2)",
            "B head Some(2)",
            "T rnn Some(1)",
            "B rnn Some(1)"
        ]
    );
    let recording = net.hook(recorder).unwrap().recording();
    assert!(recording.layers.iter().any(|l| l.path == "head"), "{:?}", recording.layers.len());
}

#[test]
fn a_network_of_a_sequence_model_trains_and_reaches_its_layers_by_path() {
    let mut net = Network::new(lstm_model());
    let mut sgd = SgdConfig::new(0.1).build::<f64>().unwrap();
    let before = net.layer::<Linear<f64>>("head").unwrap().weight().clone();
    net.forward(input().view(), Mode::Train).unwrap();
    net.backward(grad_output().view()).unwrap();
    net.step(&mut sgd).unwrap();
    assert_ne!(net.layer::<Linear<f64>>("head").unwrap().weight(), &before);
    assert_eq!(net.layer::<SequenceLayer<f64>>("rnn").unwrap().recurrent().hidden_size(), 5);
    assert_eq!(net.model().head().describe(), "Linear(5→3)");

    let err = net.layer::<Linear<f64>>("fc").unwrap_err();
    assert!(matches!(&err, Error::NoSuchLayer { .. }), "{err}");
    assert!(err.to_string().contains("the model has no child `fc`; its children are `rnn`, `head`"), "{err}");
    let err = net.layer_mut::<Linear<f64>>("rnn").unwrap_err().to_string();
    assert!(err.starts_with("layer `rnn` is LSTM ("), "{err}");
}

#[test]
fn a_network_of_a_single_layer_runs_and_says_it_has_no_children() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut net = Network::new(Linear::<f32>::new(3, 2, &mut rng).unwrap());
    let y = net.forward(Array2::ones((4, 3)).view(), Mode::Train).unwrap();
    assert_eq!(y.dim(), (4, 2));
    let dx = net.backward_with_input_grad(Array2::ones((4, 2)).view()).unwrap();
    assert_eq!(dx.dim(), (4, 3));
    let err = net.layer::<Linear<f32>>("0").unwrap_err().to_string();
    assert!(err.contains("the model is Linear(3→2), which has no children"), "{err}");
    assert_eq!(net.into_model().weight_grad().dim(), (2, 3));
}

#[test]
fn the_trainer_trains_a_sequence_model_directly() {
    use gradflow::data::{ADDING_PROBLEM_BASELINE_MSE, adding_problem};
    use gradflow::loss::{Mse, Reduction};
    use gradflow::optim::AdamConfig;
    use gradflow::train::{Progress, TrainConfig, Trainer};

    // The adding problem over 10 steps: an LSTM read out at its last step, no Sequential around it.
    let train = adding_problem::<f64>(512, 10, 1).unwrap();
    let test = adding_problem::<f64>(256, 10, 2).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let lstm = LstmConfig::new(2, 16).forget_bias(1.0).build::<f64>(&mut rng).unwrap();
    let head = Linear::new(16, 1, &mut rng).unwrap();
    let mut net = Network::new(SequenceModel::new(lstm, Readout::LastStep, head).unwrap());
    let trainer = Trainer::new(TrainConfig::new(30, 32).seed(4).progress(Progress::Silent)).unwrap();
    let mut optimizer = AdamConfig::new(0.01).build::<f64>().unwrap();
    let mut seen = 0;
    let history = trainer
        .fit_with(&mut net, &mut optimizer, &Mse::new(Reduction::Mean), &train, Some(&test), |net, _| {
            seen += 1;
            assert!(net.model().recurrent().hidden_size() == 16);
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, 30 * 16);
    let test_loss = history.epochs.last().unwrap().test_loss.unwrap();
    // Always predicting the mean target gives 1/6; having learned to add the marked values is far below.
    assert!(test_loss < 0.2 * ADDING_PROBLEM_BASELINE_MSE, "test loss {test_loss}");
}
