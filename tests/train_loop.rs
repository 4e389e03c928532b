//! The training loop on small hand-checkable problems: configuration errors, data errors,
//! evaluation, non-finite losses, clipping, value targets, progress lines.

mod train_support;

use approx::{abs_diff_eq, assert_abs_diff_eq, assert_relative_eq};
use std::sync::atomic::AtomicUsize;

use gradflow::activation::Relu;
use gradflow::data::{Dataset, TargetData, spirals};
use gradflow::train::{Clip, Progress, TrainConfig, Trainer, epoch_line, evaluate};
use gradflow::{Error, Linear, Mode, Network, Sequential};
use ndarray::{Array2, array};
use rand::SeedableRng;
use train_support::{NanAfter, cross_entropy, parameters, sgd};

fn silent(epochs: usize, batch_size: usize) -> TrainConfig {
    TrainConfig::new(epochs, batch_size).progress(Progress::Silent)
}

fn small_net(seed: u64) -> Network<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Network::new(Sequential::builder(2).dense(16, Relu).linear(3).build(&mut rng).unwrap())
}

/// A network computing exactly `y = x` on two features (a Linear with identity weight).
fn identity_net() -> Network<f64> {
    let mut model = Sequential::new();
    model.push(Linear::from_weights(array![[1.0, 0.0], [0.0, 1.0]], Some(array![0.0, 0.0])).unwrap());
    Network::new(model)
}

fn field_of(err: Error) -> &'static str {
    match err {
        Error::InvalidConfig { field, .. } => field,
        other => panic!("expected InvalidConfig, got {other}"),
    }
}

#[test]
fn bad_configurations_are_refused_naming_the_field() {
    assert_eq!(field_of(Trainer::new(silent(0, 8)).unwrap_err()), "epochs");
    assert_eq!(field_of(Trainer::new(silent(3, 0)).unwrap_err()), "batch_size");
    for clip in [
        Clip::Norm(0.0),
        Clip::Norm(-1.0),
        Clip::Norm(f64::NAN),
        Clip::Value(0.0),
        Clip::Value(f64::INFINITY),
    ] {
        let err = Trainer::new(silent(3, 8).clip(clip)).unwrap_err();
        assert!(err.to_string().contains("TrainConfig"), "{err}");
        assert_eq!(field_of(err), "clip");
    }
    assert!(Trainer::new(silent(1, 1).clip(Clip::Norm(1.0))).is_ok());

    // drop_last with a batch larger than the data leaves nothing to train on.
    let data = spirals::<f64>(3, 5, 0.1, 0).unwrap();
    let trainer = Trainer::new(silent(1, 16).drop_last(true)).unwrap();
    let err = trainer.fit(&mut small_net(0), &mut sgd(0.1, 0.0), &cross_entropy(), &data, None).unwrap_err();
    assert!(err.to_string().contains("15 training samples"), "{err}");
    assert_eq!(field_of(err), "batch_size");
    assert_eq!(
        field_of(gradflow::train::evaluate(&mut small_net(0), &cross_entropy(), &data, 0).unwrap_err()),
        "batch_size"
    );
}

#[test]
fn dataset_length_mismatch_is_an_error_naming_both_lengths() {
    let err = Dataset::new(Array2::<f64>::zeros((5, 2)), TargetData::Classes(vec![0, 1, 2])).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }));
    let msg = err.to_string();
    assert!(msg.contains("5 (one per input row)") && msg.contains("3 class labels"), "{msg}");

    // A dataset edited by hand into inconsistency is caught by fit before any step.
    let mut data = spirals::<f64>(3, 4, 0.1, 0).unwrap();
    data.targets = TargetData::Classes(vec![0; 11]);
    let mut net = small_net(0);
    let before = parameters(&net);
    let mut sgd = sgd(0.1, 0.0);
    let err = Trainer::new(silent(1, 4))
        .unwrap()
        .fit(&mut net, &mut sgd, &cross_entropy(), &data, None)
        .unwrap_err();
    assert!(err.to_string().contains("12 (one per input row)") && err.to_string().contains("11"), "{err}");
    assert_eq!((parameters(&net), sgd.steps()), (before, 0));
}

#[test]
fn data_that_does_not_fit_the_model_is_refused_before_training() {
    let trainer = Trainer::new(silent(1, 4)).unwrap();
    let mut sgd = sgd(0.1, 0.0);
    let train = spirals::<f64>(3, 4, 0.1, 0).unwrap();

    // Class 3 for a model with 3 outputs.
    let bad_labels =
        Dataset::new(train.inputs.clone(), TargetData::Classes(vec![0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 0, 1]))
            .unwrap();
    let err = trainer.fit(&mut small_net(0), &mut sgd, &cross_entropy(), &bad_labels, None).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("training set") && msg.contains("sample 3 has class 3") && msg.contains("3 outputs"),
        "{msg}"
    );

    // Three features for a model that takes two; in the test set this time.
    let wide = Dataset::new(Array2::zeros((2, 3)), TargetData::Classes(vec![0, 1])).unwrap();
    let err = trainer.fit(&mut small_net(0), &mut sgd, &cross_entropy(), &train, Some(&wide)).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");

    // Value targets with the wrong width.
    let values = Dataset::new(Array2::zeros((2, 2)), TargetData::Values(Array2::zeros((2, 1)))).unwrap();
    let err =
        trainer.fit(&mut small_net(0), &mut sgd, &gradflow::loss::Mse::default(), &values, None).unwrap_err();
    assert!(err.to_string().contains("1 columns") && err.to_string().contains("3 outputs"), "{err}");

    // An empty set.
    let empty = Dataset::new(Array2::zeros((0, 2)), TargetData::Classes(vec![])).unwrap();
    let err = trainer.fit(&mut small_net(0), &mut sgd, &cross_entropy(), &empty, None).unwrap_err();
    assert!(err.to_string().contains("no samples"), "{err}");
    assert_eq!(sgd.steps(), 0);
}

#[test]
fn evaluation_matches_hand_computation_and_changes_nothing() {
    let mut net = identity_net();
    let data =
        Dataset::new(array![[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]], TargetData::Classes(vec![0, 0, 0])).unwrap();
    // Cross-entropy of logits (a, b) for class 0 is ln(e^a + e^b) − a:
    // (1, 0) → ln(1 + e⁻¹), (0, 1) → ln(1 + e), (2, 1) → ln(1 + e⁻¹). Argmax is right for rows 1 and 3.
    let expected = (2.0 * (1.0 + (-1.0f64).exp()).ln() + (1.0 + 1f64.exp()).ln()) / 3.0;
    for batch_size in [1, 2, 3, 10] {
        let eval = evaluate(&mut net, &cross_entropy(), &data, batch_size).unwrap();
        assert!(
            abs_diff_eq!(eval.loss, expected, epsilon = 1e-12),
            "batch {batch_size}: {} vs {expected}",
            eval.loss
        );
        assert_eq!(eval.accuracy, Some(2.0 / 3.0));
    }

    // A trained network: evaluation changes no weight, no gradient, no step count.
    let mut net = small_net(3);
    let data = spirals::<f64>(3, 20, 0.1, 1).unwrap();
    Trainer::new(silent(1, 8))
        .unwrap()
        .fit(&mut net, &mut sgd(0.1, 0.9), &cross_entropy(), &data, None)
        .unwrap();
    let weights = parameters(&net);
    let mut grads = Vec::new();
    net.visit_parameters(&mut |p| grads.extend(p.grad.iter().copied()));
    let steps = net.step_count();
    let first = evaluate(&mut net, &cross_entropy(), &data, 7).unwrap();
    let second = evaluate(&mut net, &cross_entropy(), &data, 7).unwrap();
    assert_eq!(first, second);
    assert_eq!(parameters(&net), weights);
    let mut grads_after = Vec::new();
    net.visit_parameters(&mut |p| grads_after.extend(p.grad.iter().copied()));
    assert_eq!(grads_after, grads);
    assert_eq!(net.step_count(), steps);
}

#[test]
fn a_loss_turning_nan_stops_training_naming_epoch_and_step() {
    // 12 samples in batches of 3: 4 steps per epoch; the 6th loss (epoch 2, batch 2, step 5 since
    // steps count from 0) is NaN.
    let data = spirals::<f64>(3, 4, 0.1, 0).unwrap();
    let loss = NanAfter { nan_at: 6, calls: AtomicUsize::new(0) };
    let mut sgd = sgd(0.1, 0.0);
    let err =
        Trainer::new(silent(3, 3)).unwrap().fit(&mut small_net(0), &mut sgd, &loss, &data, None).unwrap_err();
    let Error::NonFinite { location, detail } = &err else { panic!("expected NonFinite, got {err}") };
    assert!(
        location.contains("epoch 2/3") && location.contains("batch 2") && location.contains("step 5"),
        "{err}"
    );
    assert!(detail.contains("NaN"), "{err}");
    // Five finite steps were applied, the NaN one was not.
    assert_eq!(sgd.steps(), 5);
}

#[test]
fn divergence_stops_with_a_non_finite_error() {
    // A huge learning rate overflows the weights; the first non-finite loss or gradient stops it.
    let data = spirals::<f32>(3, 10, 0.1, 0).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut net =
        Network::new(Sequential::<f32>::builder(2).dense(16, Relu).linear(3).build(&mut rng).unwrap());
    let mut sgd = sgd(1e30, 0.0);
    let err = Trainer::new(silent(50, 5))
        .unwrap()
        .fit(&mut net, &mut sgd, &cross_entropy(), &data, None)
        .unwrap_err();
    let Error::NonFinite { location, .. } = &err else { panic!("expected NonFinite, got {err}") };
    assert!(location.contains("epoch") && location.contains("step"), "{err}");
    assert!(sgd.steps() < 50 * 6);
}

#[test]
fn history_has_one_entry_per_epoch_and_per_step() {
    let data = spirals::<f64>(3, 10, 0.2, 0).unwrap();
    let (train, test) = data.split_stratified(0.2, 0).unwrap();
    assert_eq!((train.len(), test.len()), (24, 6));
    let trainer = Trainer::new(silent(4, 10)).unwrap();
    let history =
        trainer.fit(&mut small_net(1), &mut sgd(0.05, 0.9), &cross_entropy(), &train, Some(&test)).unwrap();
    assert_eq!(history.epochs.len(), 4);
    assert_eq!(history.step_losses.len(), 4 * 3); // 24 samples in batches of 10, 10, 4
    for (i, stats) in history.epochs.iter().enumerate() {
        assert_eq!(stats.epoch, i + 1);
        assert!(stats.test_loss.is_some() && stats.test_accuracy.is_some());
        let acc = stats.train_accuracy.unwrap();
        // Accuracy over 24 samples is a multiple of 1/24.
        assert!(abs_diff_eq!(acc * 24.0, (acc * 24.0).round(), epsilon = 1e-9), "{acc}");
        assert_eq!(stats.learning_rate, 0.05);
        // The epoch loss is the batch losses weighted by batch size (10, 10, 4).
        let steps = &history.step_losses[3 * i..3 * i + 3];
        let weighted = (10.0 * steps[0] + 10.0 * steps[1] + 4.0 * steps[2]) / 24.0;
        assert_abs_diff_eq!(stats.train_loss, weighted, epsilon = 1e-12);
    }
    // With drop_last the 4-sample batch is skipped.
    let trainer = Trainer::new(silent(2, 10).drop_last(true)).unwrap();
    let history =
        trainer.fit(&mut small_net(1), &mut sgd(0.05, 0.9), &cross_entropy(), &train, None).unwrap();
    assert_eq!(history.step_losses.len(), 2 * 2);
    assert_eq!(history.epochs[0].test_loss, None);
}

#[test]
fn without_shuffling_the_seed_does_not_matter() {
    let data = spirals::<f64>(3, 10, 0.2, 0).unwrap();
    let run = |seed: u64| {
        let mut net = small_net(4);
        let trainer = Trainer::new(silent(2, 7).shuffle(false).seed(seed)).unwrap();
        trainer.fit(&mut net, &mut sgd(0.05, 0.9), &cross_entropy(), &data, None).unwrap();
        parameters(&net)
    };
    assert_eq!(run(1), run(2));
    // …whereas with shuffling it does.
    let shuffled = |seed: u64| {
        let mut net = small_net(4);
        let trainer = Trainer::new(silent(2, 7).seed(seed)).unwrap();
        trainer.fit(&mut net, &mut sgd(0.05, 0.9), &cross_entropy(), &data, None).unwrap();
        parameters(&net)
    };
    assert_ne!(shuffled(1), shuffled(2));
}

#[test]
fn norm_clipping_records_the_pre_clip_norm_and_bounds_the_update() {
    let data = spirals::<f64>(3, 8, 0.2, 0).unwrap();
    // One full batch, no shuffling: the gradient can be recomputed by hand.
    let mut reference = small_net(2);
    reference.zero_grad();
    let output = reference.forward(data.inputs.view(), Mode::Train).unwrap().to_owned();
    let (_, grad) =
        gradflow::loss::Loss::value_and_grad(&cross_entropy(), output.view(), data.targets()).unwrap();
    reference.backward(grad.view()).unwrap();
    let mut sum_sq = 0.0;
    reference.visit_parameters(&mut |p| sum_sq += p.grad.iter().map(|g| g * g).sum::<f64>());
    let norm = sum_sq.sqrt();
    assert!(norm > 0.01, "the test needs a gradient larger than the limit, got {norm}");

    let mut net = small_net(2);
    let before = parameters(&net);
    let trainer = Trainer::new(silent(1, 24).shuffle(false).clip(Clip::Norm(0.01))).unwrap();
    let history = trainer.fit(&mut net, &mut sgd(1.0, 0.0), &cross_entropy(), &data, None).unwrap();
    assert_eq!(history.grad_norms.len(), 1);
    assert_relative_eq!(history.grad_norms[0], norm, epsilon = 0.0, max_relative = 1e-12);
    // Plain SGD with lr 1 moves the weights by exactly the clipped gradient: norm 0.01·n/(n+1e-6).
    let moved: f64 = parameters(&net).iter().zip(&before).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
    let expected = 0.01 * norm / (norm + 1e-6);
    assert_abs_diff_eq!(moved, expected, epsilon = 1e-12);
}

#[test]
fn value_clipping_bounds_every_update_entry() {
    let data = spirals::<f64>(3, 8, 0.2, 0).unwrap();
    let mut net = small_net(2);
    let before = parameters(&net);
    let trainer = Trainer::new(silent(1, 24).clip(Clip::Value(1e-3))).unwrap();
    let history = trainer.fit(&mut net, &mut sgd(1.0, 0.0), &cross_entropy(), &data, None).unwrap();
    assert_eq!(history.grad_norms.len(), 1);
    let largest = parameters(&net).iter().zip(&before).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    // Every entry moved by at most the limit (up to the rounding of a − b), and some by the limit.
    assert_abs_diff_eq!(largest, 1e-3, epsilon = 1e-12);
}

#[test]
fn value_targets_train_a_regression() {
    // y = 2·x₀ − x₁ + 0.5, learnt by a single Linear(2→1) with MSE.
    let x = Array2::from_shape_fn((40, 2), |(i, j)| ((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5);
    let y = Array2::from_shape_fn((40, 1), |(i, _)| 2.0 * x[[i, 0]] - x[[i, 1]] + 0.5);
    let data = Dataset::new(x, TargetData::Values(y)).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut net = Network::new(Sequential::builder(2).linear(1).build(&mut rng).unwrap());
    let trainer = Trainer::new(silent(100, 8)).unwrap();
    let history =
        trainer.fit(&mut net, &mut sgd(0.1, 0.9), &gradflow::loss::Mse::default(), &data, None).unwrap();
    assert!(history.epochs.iter().all(|e| e.train_accuracy.is_none()));
    assert!(history.last().unwrap().train_loss < 1e-8, "{:?}", history.last());
    let weights = parameters(&net);
    assert_abs_diff_eq!(weights[..], [2.0, -1.0, 0.5][..], epsilon = 1e-4);
}

#[test]
fn epoch_lines_follow_the_documented_format() {
    let data = spirals::<f64>(3, 10, 0.2, 0).unwrap();
    let (train, test) = data.split_stratified(0.3, 1).unwrap();
    let history = Trainer::new(silent(3, 8))
        .unwrap()
        .fit(&mut small_net(0), &mut sgd(0.05, 0.9), &cross_entropy(), &train, Some(&test))
        .unwrap();
    for stats in &history.epochs {
        let line = epoch_line(stats, 3);
        let expected = format!(
            "epoch {}/3  train loss {:.4}  acc {:.1}%  test loss {:.4}  acc {:.1}%",
            stats.epoch,
            stats.train_loss,
            100.0 * stats.train_accuracy.unwrap(),
            stats.test_loss.unwrap(),
            100.0 * stats.test_accuracy.unwrap()
        );
        assert_eq!(line, expected);
        assert!(!line.contains('\n'));
    }
}

#[test]
fn a_schedule_sets_the_learning_rate_of_each_epoch() {
    use gradflow::optim::StepLr;
    let data = spirals::<f64>(3, 20, 0.1, 0).unwrap();
    let mut net = small_net(0);
    let mut opt = sgd(0.1, 0.0);
    let trainer = Trainer::new(TrainConfig::new(5, 16).progress(Progress::Silent))
        .unwrap()
        .with_schedule(StepLr::new(2, 0.5).unwrap());
    let history = trainer.fit(&mut net, &mut opt, &cross_entropy(), &data, None).unwrap();
    let rates: Vec<f64> = history.epochs.iter().map(|e| e.learning_rate).collect();
    // StepLR(step_size=2, gamma=0.5) from 0.1: epochs 0,1 → 0.1; 2,3 → 0.05; 4 → 0.025.
    assert_eq!(rates, [0.1, 0.1, 0.05, 0.05, 0.025]);
}

/// The sample indices each training step saw, in order: the data's first feature is the index
/// (a hook reads the network's inputs in training mode).
fn samples_seen(config: TrainConfig, n: usize) -> (Vec<Vec<usize>>, gradflow::train::History) {
    use gradflow::hooks::Event;
    let data = Dataset::new(
        Array2::from_shape_fn((n, 2), |(i, j)| if j == 0 { i as f64 } else { 0.0 }),
        TargetData::Classes((0..n).map(|i| i % 2).collect()),
    )
    .unwrap();
    let mut net = identity_net();
    let mut steps: Vec<Vec<usize>> = Vec::new();
    let trainer = Trainer::new(config).unwrap();
    let (history, _) = net.with_hook(
        |event: &mut Event<'_, f64>| {
            if let Event::Forward(f) = event
                && f.mode == Mode::Train
            {
                steps.push(f.input.column(0).iter().map(|&v| v as usize).collect());
            }
        },
        // One layer: its inputs are the samples whatever the weights become.
        |net| trainer.fit(net, &mut sgd(0.1, 0.0), &cross_entropy(), &data, None),
    );
    (steps, history.unwrap())
}

#[test]
fn a_step_budget_stops_mid_epoch_and_caps_the_epochs() {
    // 10 samples in batches of 4: 3 batches an epoch; 7 steps = 3 + 3 + 1.
    let (steps, history) = samples_seen(TrainConfig::steps(7, 4).progress(Progress::Silent), 10);
    assert_eq!(steps.len(), 7);
    assert_eq!(history.step_losses.len(), 7);
    assert_eq!(history.epochs.len(), 3);
    assert_eq!(steps[6].len(), 4, "the partial epoch's first batch is a full one");
    // The epoch limit still holds when it comes first.
    let (steps, history) = samples_seen(silent(2, 4).max_steps(100), 10);
    assert_eq!((steps.len(), history.epochs.len()), (6, 2));
    assert_eq!(field_of(Trainer::new(silent(1, 4).max_steps(0)).unwrap_err()), "max_steps");
}

#[test]
fn sampling_with_replacement_is_seeded_and_repeats_samples() {
    let config = |seed| silent(3, 5).seed(seed).replacement(true);
    let (a, _) = samples_seen(config(1), 20);
    let (b, _) = samples_seen(config(1), 20);
    assert_eq!(a, b, "the same seed draws the same samples");
    assert_ne!(a, samples_seen(config(2), 20).0);
    // An epoch is as many draws as samples; with replacement some repeat and some are missed
    // (the chance that 20 draws from 20 are all distinct is 20!/20^20 ≈ 2e-8).
    assert_eq!(a.len(), 12);
    for epoch in a.chunks(4) {
        let mut drawn: Vec<usize> = epoch.concat();
        assert_eq!(drawn.len(), 20);
        assert!(drawn.iter().all(|&i| i < 20));
        drawn.sort_unstable();
        drawn.dedup();
        assert!(drawn.len() < 20, "some sample is drawn twice in an epoch");
    }
    // Without replacement each epoch is a permutation.
    let (c, _) = samples_seen(silent(1, 5).seed(1), 20);
    let mut all: Vec<usize> = c.concat();
    all.sort_unstable();
    assert_eq!(all, (0..20).collect::<Vec<_>>());
}
