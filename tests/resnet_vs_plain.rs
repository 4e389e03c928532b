//! The headline claim of `examples/resnet_vs_plain.rs`, at its default settings: a 20-layer,
//! width-64 tanh network with PyTorch's default init vanishes and cannot learn the digits with
//! plain SGD, while the same depth with residual blocks `x + W_b·tanh(W_a·x)` is healthy and learns.

use gradflow::activation::Tanh;
use gradflow::data::digits_split;
use gradflow::diagnose::{Verdict, diagnose};
use gradflow::hooks::{Recorder, RecorderConfig};
use gradflow::loss::{CrossEntropy, Loss, Reduction, Targets};
use gradflow::optim::SgdConfig;
use gradflow::train::{Progress, TrainConfig, Trainer};
use gradflow::{Mode, Network, Sequential};
use ndarray::s;
use rand::SeedableRng;

const SEED: u64 = 0;

fn network(residual: bool) -> Network<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let builder = Sequential::builder(64);
    let builder = if residual { builder.repeat_residual(20, 64, Tanh) } else { builder.repeat(20, 64, Tanh) };
    Network::new(builder.linear(10).build(&mut rng).unwrap())
}

#[test]
fn plain_vanishes_and_residual_is_healthy_at_initialization() {
    let (train, _) = digits_split::<f32>(0.25, SEED).unwrap();
    let classes = train.targets.classes().unwrap();
    for residual in [false, true] {
        let mut net = network(residual);
        let handle = net.attach_hook(Recorder::new(RecorderConfig::gradients()).unwrap());
        let output = net.forward(train.inputs.slice(s![..256, ..]), Mode::Train).unwrap();
        let (_, grad) = CrossEntropy::new(Reduction::Mean)
            .value_and_grad(output, Targets::Classes(&classes[..256]))
            .unwrap();
        net.backward(grad.view()).unwrap();
        let diagnosis =
            diagnose(&net.detach_hook(handle).unwrap().into_recording(), &Default::default()).unwrap();
        let ratio = diagnosis.gradient_ratio.unwrap();
        if residual {
            assert_eq!(diagnosis.verdict, Verdict::Healthy, "{:?}", diagnosis.evidence);
            assert!((0.1..=10.0).contains(&ratio), "residual first/last ‖dL/dh‖ = {ratio:e}");
        } else {
            assert_eq!(diagnosis.verdict, Verdict::Vanishing, "{:?}", diagnosis.evidence);
            assert!(ratio <= 1e-2, "plain first/last ‖dL/dh‖ = {ratio:e}");
        }
    }
}

#[test]
fn residual_learns_the_digits_and_plain_stays_at_chance() {
    let (train, test) = digits_split::<f32>(0.25, SEED).unwrap();
    let mut accuracy = Vec::new();
    for residual in [false, true] {
        let mut net = network(residual);
        let mut sgd = SgdConfig::new(0.05).build::<f32>().unwrap();
        // 8 of the example's 36 epochs: enough to separate them.
        let trainer = Trainer::new(TrainConfig::new(8, 32).seed(SEED).progress(Progress::Silent)).unwrap();
        let history = trainer
            .fit(&mut net, &mut sgd, &CrossEntropy::new(Reduction::Mean), &train, Some(&test))
            .unwrap();
        accuracy.push(history.last().unwrap().test_accuracy.unwrap());
    }
    let (plain, residual) = (accuracy[0], accuracy[1]);
    assert!(residual >= 0.90, "residual test accuracy {residual}");
    assert!(residual - plain >= 0.20, "residual {residual} vs plain {plain}");
}
