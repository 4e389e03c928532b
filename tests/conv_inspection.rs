//! Inspection works on convolutional networks without extra code: the recorder sees every
//! convolution, normalization, pooling and shortcut layer, reports dead channels of ReLUs over
//! images, the diagnosis groups "conv + BN + ReLU" into one layer, and the non-finite detector
//! names the convolution a NaN weight sits in.

use gradflow::activation::Relu;
use gradflow::diagnose::{Thresholds, diagnose};
use gradflow::hooks::{Direction, NonFiniteDetector, Recorder, RecorderConfig};
use gradflow::layers::{CifarResNet, ImageShape};
use gradflow::loss::{CrossEntropy, Loss, Targets};
use gradflow::optim::SgdConfig;
use gradflow::{Mode, Network, Sequential};
use ndarray::Array2;
use rand::SeedableRng;

/// A CIFAR-style ResNet-8 (one basic block per stage, widths 2/4/8) on 1×8×8 images.
fn resnet8() -> Network<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    Network::new(CifarResNet::new(8, &[2, 4, 8], 3).build(ImageShape::new(1, 8, 8), &mut rng).unwrap())
}

fn batch() -> (Array2<f32>, Vec<usize>) {
    let x = Array2::from_shape_fn((6, 64), |(i, j)| ((i * 13 + j * 7) % 17) as f32 / 8.0 - 1.0);
    (x, (0..6).map(|i| i % 3).collect())
}

/// One observed training step.
fn step(net: &mut Network<f32>) {
    let (x, classes) = batch();
    let mut grad = Array2::zeros((0, 0));
    let y = net.forward(x.view(), Mode::Train).unwrap();
    CrossEntropy::default().compute(y, Targets::Classes(&classes), &mut grad).unwrap();
    net.backward(grad.view()).unwrap();
    net.step(&mut SgdConfig::new(0.01).build().unwrap()).unwrap();
}

#[test]
fn the_recorder_sees_every_image_layer_and_dead_channels() {
    let mut net = resnet8();
    let recorder = net.attach_hook(Recorder::new(RecorderConfig::all()).unwrap());
    step(&mut net);
    let recording = net.detach_hook(recorder).unwrap().into_recording();
    let kinds = |kind: &str| recording.layers.iter().filter(|l| l.kind == kind).count();
    // stem + 2 per block + the option-A shortcuts have no conv; BatchNorm after each conv.
    assert_eq!((kinds("Conv2d"), kinds("BatchNorm2d")), (7, 7));
    assert_eq!((kinds("ZeroPadShortcut"), kinds("AdaptiveAvgPool2d"), kinds("Flatten")), (2, 1, 1));
    for layer in recording.layers.iter().filter(|l| l.kind == "Conv2d") {
        let at = layer.at_step(0).unwrap();
        assert!(at.grad_output.unwrap().l2_norm > 0.0 && at.params[0].grad.l2_norm > 0.0, "{}", layer.path);
        assert!(at.params[0].update_to_value_ratio.is_some(), "{}", layer.path);
    }
    // Every ReLU over images has per-channel statistics; the classifier's input has none.
    for layer in recording.layers.iter().filter(|l| l.kind == "relu") {
        let channels = layer.at_step(0).unwrap().activation.unwrap().channels.unwrap();
        assert!(channels.channels >= 2 && channels.dead_fraction.is_some(), "{}", layer.path);
    }
    // "conv + BN + ReLU", each block + its ReLU, the pooling joining the last block: 5 layers.
    let layers = recording.hidden_layers(0);
    let labels: Vec<&str> = layers.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Conv2d+BatchNorm2d+relu",
            "Residual+relu",
            "Residual+relu",
            "Residual+relu+AdaptiveAvgPool2d+Flatten",
            "Linear"
        ]
    );
    let diagnosis = diagnose(&recording, &Thresholds::default()).unwrap();
    assert_eq!(diagnosis.layers.len(), 5);
    assert!(gradflow::report::table::render(&diagnosis).contains("Residual+relu"));
}

#[test]
fn a_filter_switched_off_is_one_dead_channel() {
    // conv(1→4) + BN + ReLU: BN's γ = 0 and β < 0 for channel 2 switch that channel off for every
    // position and sample. Per entry, its 64 positions are a quarter of the units; per channel,
    // a quarter of the filters — and a border position of a live channel that never fires
    // would count as dead per entry but not per channel.
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut model = Sequential::<f32>::image_builder(ImageShape::new(1, 8, 8))
        .conv2d_with(4, 3, |c| c.padding(1))
        .batch_norm2d()
        .activation(Relu)
        .build(&mut rng)
        .unwrap();
    model.layer_at_mut("1").unwrap().visit_parameters_mut(&mut |mut p| {
        p.value[[2].as_slice()] = if p.name == "weight" { 0.0 } else { -1.0 }
    });
    let mut net = Network::new(model);
    let (x, _) = batch();
    let (_, recorder) = net.with_hook(Recorder::new(RecorderConfig::all()).unwrap(), |net| {
        net.forward(x.view(), Mode::Train).map(|_| ())
    });
    let stats = recorder.recording().layer("2").unwrap().at_step(0).unwrap().activation.unwrap();
    assert_eq!(stats.channels.unwrap().dead_fraction, Some(0.25));
    assert!(stats.dead_fraction.unwrap() >= 0.25);
}

#[test]
fn a_nan_weight_in_a_block_is_reported_at_its_convolution() {
    let mut net = resnet8();
    net.model_mut().layer_at_mut("5.branch.3").unwrap().visit_parameters_mut(&mut |mut p| {
        if p.name == "weight" {
            p.value[[1, 0, 1, 1].as_slice()] = f32::NAN;
        }
    });
    let detector = net.attach_hook(NonFiniteDetector::new());
    let (x, _) = batch();
    net.forward(x.view(), Mode::Train).unwrap();
    let report = net.hook(detector).unwrap().report().unwrap().clone();
    assert_eq!((report.path.as_str(), report.kind.as_str()), ("5.branch.3", "Conv2d"));
    assert_eq!(report.direction, Direction::Forward);
    assert!(net.model().layer_at("5.branch.3").unwrap().describe().contains("Conv2d(4→4"));
}
