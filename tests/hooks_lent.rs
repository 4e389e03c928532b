//! Hooks lent for a stretch of code (`Network::with_hook`), which borrow local state; layer
//! numbers on events; losses reported to hooks; steps counted the same way everywhere.

mod diagnose_support;

use diagnose_support::{mse_grad, normal, rng};
use gradflow::activation::{Relu, Tanh};
use gradflow::data::digits_split;
use gradflow::hooks::{Event, Recorder, layer_numbers};
use gradflow::loss::{CrossEntropy, Reduction};
use gradflow::optim::SgdConfig;
use gradflow::train::{Progress, TrainConfig, Trainer};
use gradflow::{Mode, Network, Sequential};

/// Linear+tanh, Linear+BatchNorm+relu, Residual(Linear+relu), Linear: layers 1, 2, 3, 4.
fn model() -> Sequential<f32> {
    Sequential::builder(4)
        .dense(8, Tanh)
        .linear(8)
        .batch_norm()
        .activation(Relu)
        .residual(|b| b.dense(8, Relu))
        .linear(3)
        .build(&mut rng(5))
        .unwrap()
}

fn pass(net: &mut Network<f32>, seed: u64) -> gradflow::Result<()> {
    let mut rng = rng(seed);
    let x = normal(&mut rng, 6, 4);
    let t = normal(&mut rng, 6, 3);
    let y = net.forward(x.view(), Mode::Train)?.to_owned();
    net.backward(mse_grad(y.view(), t.view()).view())
}

#[test]
fn a_lent_closure_fills_a_local_table_and_is_gone_when_with_hook_returns() {
    let mut net = Network::new(model());
    let mut seen: Vec<(String, Option<usize>, u64)> = Vec::new();
    let (result, _) = net.with_hook(
        |event: &mut Event<'_, f32>| {
            if let Event::Backward(b) = event {
                seen.push((b.path.to_string(), b.layer_number, b.step));
            }
        },
        |net| {
            pass(net, 1)?;
            pass(net, 2)
        },
    );
    result.unwrap();
    // The local table is ours again: every layer, at both steps, numbered as the diagnosis does.
    let at_step_0: Vec<(&str, Option<usize>)> =
        seen.iter().filter(|s| s.2 == 0).map(|(p, n, _)| (p.as_str(), *n)).collect();
    assert_eq!(
        at_step_0,
        [
            ("6", Some(4)),
            ("5.branch.1", Some(3)),
            ("5.branch.0", Some(3)),
            ("5.branch", Some(3)),
            ("5", Some(3)),
            ("4", Some(2)),
            ("3", Some(2)),
            ("2", Some(2)),
            ("1", Some(1)),
            ("0", Some(1)),
        ]
    );
    assert_eq!(seen.iter().filter(|s| s.2 == 1).count(), at_step_0.len());
    // Afterwards the network runs without it.
    let before = seen.len();
    pass(&mut net, 3).unwrap();
    assert_eq!(seen.len(), before);
}

#[test]
fn layer_numbers_on_events_are_the_rows_of_the_diagnosis() {
    let mut net = Network::new(model());
    let recorder = net.attach_hook(Recorder::default());
    pass(&mut net, 1).unwrap();
    let recording = net.detach_hook(recorder).unwrap().into_recording();
    let top: Vec<(&str, Option<usize>)> =
        recording.layers.iter().filter(|l| l.depth == 0).map(|l| (l.path.as_str(), l.layer_number)).collect();
    for (path, number) in &top {
        let row = recording.hidden_layers(0).into_iter().find(|h| h.paths.iter().any(|p| p == path)).unwrap();
        assert_eq!(Some(row.index + 1), *number, "path {path}");
    }
    // The same rule, from the kinds alone.
    let kinds = ["Linear", "tanh", "Linear", "BatchNorm1d", "relu", "Residual", "Linear"];
    let is_activation = [false, true, false, false, true, false, false];
    assert_eq!(layer_numbers(kinds.iter().copied().zip(is_activation)), [1, 1, 2, 2, 2, 3, 4]);
}

#[test]
fn lent_hooks_nest_see_updates_and_unwinding_removes_them() {
    let mut net = Network::new(model());
    let (mut outer, mut inner) = (Vec::new(), Vec::new());
    let mut sgd = SgdConfig::new(0.1).build().unwrap();
    let (result, _) = net.with_hook(
        |event: &mut Event<'_, f32>| outer.push(event.path().to_string()),
        |net| {
            let (result, _) = net.with_hook(
                gradflow::hooks::WithUpdates(|event: &mut Event<'_, f32>| {
                    if let Event::Update(u) = event {
                        inner.push((u.path.to_string(), u.layer_number));
                    }
                }),
                |net| {
                    pass(net, 1)?;
                    net.step(&mut sgd)
                },
            );
            result
        },
    );
    result.unwrap();
    // 10 layers forward and backward, and the 5 layers with parameters updated: once the inner
    // hook asks for updates, every hook is shown them.
    assert_eq!(outer.len(), 25);
    assert_eq!(inner.len(), 5);
    assert_eq!(inner[0], ("0".to_string(), Some(1)));
    assert_eq!(inner.last().unwrap(), &("6".to_string(), Some(4)));

    // A panic inside the lent stretch unwinds through with_hook, which takes the hook back.
    let mut calls = 0usize;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        net.with_hook(
            |_: &mut Event<'_, f32>| calls += 1,
            |net| {
                pass(net, 2).unwrap();
                panic!("the caller's code fails");
            },
        )
    }));
    assert!(outcome.is_err());
    assert_eq!(calls, 20);
    pass(&mut net, 3).unwrap();
    assert_eq!(calls, 20, "no longer lent");
}

#[test]
fn a_hook_lent_to_one_network_does_not_see_another() {
    let (mut a, mut b) = (Network::new(model()), Network::new(model()));
    let mut count = 0;
    let (result, _) = a.with_hook(|_: &mut Event<'_, f32>| count += 1, |_| pass(&mut b, 1));
    result.unwrap();
    assert_eq!(count, 0);
    // Nor a network put in its place.
    let (result, _) = a.with_hook(
        |_: &mut Event<'_, f32>| count += 1,
        |a| {
            *a = Network::new(model());
            pass(a, 1)
        },
    );
    result.unwrap();
    assert_eq!(count, 0);
}

#[test]
fn the_trainer_reports_each_steps_loss_and_counts_steps_like_the_network() {
    let (train, _) = digits_split::<f32>(0.5, 0).unwrap();
    let model = Sequential::builder(64).dense(16, Relu).linear(10).build(&mut rng(1)).unwrap();
    let mut net = Network::new(model);
    let recorder = net.attach_hook(Recorder::default());
    let mut sgd = SgdConfig::new(0.05).build().unwrap();
    let trainer = Trainer::new(TrainConfig::new(2, 128).progress(Progress::Silent)).unwrap();
    let loss = CrossEntropy::new(Reduction::Mean);
    let mut callback_steps = Vec::new();
    let first = trainer
        .fit_with(&mut net, &mut sgd, &loss, &train, None, |net, step| {
            assert_eq!(net.step_count(), step.step + 1, "called after the step's backward pass");
            callback_steps.push(step.step);
            Ok(())
        })
        .unwrap();
    let steps_per_epoch = 899usize.div_ceil(128) as u64;
    assert_eq!(callback_steps, (0..2 * steps_per_epoch).collect::<Vec<_>>());
    assert_eq!(first.first_step, 0);
    // A second fit continues the network's count.
    let second = trainer.fit(&mut net, &mut sgd, &loss, &train, None).unwrap();
    assert_eq!(second.first_step, 2 * steps_per_epoch);

    let recording = net.detach_hook(recorder).unwrap().into_recording();
    let losses: Vec<f64> = recording.losses.iter().map(|l| l.loss).collect();
    let trained: Vec<f64> = first.step_losses.iter().chain(&second.step_losses).copied().collect();
    assert_eq!(losses, trained);
    assert!(recording.losses.iter().enumerate().all(|(i, l)| l.step == i as u64));
    assert_eq!(recording.steps(), (0..4 * steps_per_epoch).collect::<Vec<_>>());
}
