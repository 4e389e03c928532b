//! Gradient flow on the real MNIST digits, as `examples/mnist.rs` shows it: a deep tanh MLP with
//! PyTorch's default initialization vanishes at initialization and learns slowly with SGD; the
//! same network with BatchNorm or residual connections does not.
//!
//! The MNIST files are not part of the crate (CC BY-SA 3.0), so these tests are ignored by
//! default; run them with the directory in `GRADFLOW_MNIST_DIR`:
//!
//! ```text
//! GRADFLOW_MNIST_DIR=/path/to/mnist cargo test --test mnist_gradient_flow -- --ignored
//! ```

use gradflow::activation::Tanh;
use gradflow::data::{Dataset, mnist, mnist_dir_from_env};
use gradflow::diagnose::{Diagnosis, Thresholds, Verdict, diagnose};
use gradflow::hooks::{Recorder, RecorderConfig};
use gradflow::loss::{CrossEntropy, Loss, Reduction, Targets};
use gradflow::optim::SgdConfig;
use gradflow::train::{Progress, TrainConfig, Trainer};
use gradflow::{Mode, Network, Sequential};
use ndarray::s;
use rand::SeedableRng;
use rand::rngs::StdRng;

const DEPTH: usize = 10;
const WIDTH: usize = 256;

/// The first `train_samples` training digits and the whole test set, standardized with the
/// mean and std of PyTorch's MNIST example (0.1307, 0.3081), as the example does.
fn data(train_samples: usize) -> (Dataset<f32>, Dataset<f32>) {
    let dir =
        mnist_dir_from_env().expect("set GRADFLOW_MNIST_DIR to the directory holding the MNIST IDX files");
    let (train, mut test) = mnist::<f32>(&dir).unwrap();
    let indices: Vec<usize> = (0..train_samples).collect();
    let mut train = train.subset(&indices).unwrap();
    for d in [&mut train, &mut test] {
        d.inputs.mapv_inplace(|x| (x - 0.1307) / 0.3081);
    }
    (train, test)
}

/// `DEPTH` × (Linear(256) → tanh) → Linear(10), PyTorch's default initialization.
fn plain(seed: u64) -> Sequential<f32> {
    Sequential::builder(784)
        .repeat(DEPTH, WIDTH, Tanh)
        .linear(10)
        .build(&mut StdRng::seed_from_u64(seed))
        .unwrap()
}

/// `DEPTH` × (Linear(256) → BatchNorm1d → tanh) → Linear(10).
fn batchnorm(seed: u64) -> Sequential<f32> {
    let mut b = Sequential::builder(784);
    for _ in 0..DEPTH {
        b = b.linear(WIDTH).batch_norm().activation(Tanh);
    }
    b.linear(10).build(&mut StdRng::seed_from_u64(seed)).unwrap()
}

/// Linear(256) → tanh, then `DEPTH − 1` blocks x + tanh(Linear(x)), then Linear(10).
fn residual(seed: u64) -> Sequential<f32> {
    let mut b = Sequential::builder(784).dense(WIDTH, Tanh);
    for _ in 1..DEPTH {
        b = b.residual(|branch| branch.dense(WIDTH, Tanh));
    }
    b.linear(10).build(&mut StdRng::seed_from_u64(seed)).unwrap()
}

/// The diagnosis of one recorded cross-entropy step on the first 256 digits.
fn diagnosis_at_init(model: Sequential<f32>, data: &Dataset<f32>) -> Diagnosis {
    let mut net = Network::new(model);
    let x = data.inputs.slice(s![..256, ..]);
    let classes = &data.targets.classes().unwrap()[..256];
    let (result, recorder) = net.with_hook(Recorder::new(RecorderConfig::all()).unwrap(), |net| {
        let output = net.forward(x, Mode::Train)?;
        let (_, grad) =
            CrossEntropy::new(Reduction::Mean).value_and_grad(output, Targets::Classes(classes))?;
        net.backward(grad.view())
    });
    result.unwrap();
    diagnose(recorder.recording(), &Thresholds::default()).unwrap()
}

#[test]
#[ignore = "needs the MNIST files in GRADFLOW_MNIST_DIR"]
fn on_mnist_the_plain_deep_tanh_mlp_vanishes_and_batchnorm_and_residuals_repair_it() {
    let (train, _) = data(256);
    let plain = diagnosis_at_init(plain(1), &train);
    assert_eq!(plain.verdict, Verdict::Vanishing, "{:#?}", plain.evidence);
    // U(±1/√n) weights have variance 1/(3n): each layer scales ‖dL/dh‖ by about √(1/3) ≈ 0.58
    // (times tanh' ≈ 1 near 0), so 9 layers give about 0.58⁹ ≈ 7e-3.
    let factor = plain.per_layer_factor.unwrap();
    assert!((0.5..0.66).contains(&factor), "{factor}");
    for (name, d) in [
        ("batchnorm", diagnosis_at_init(batchnorm(1), &train)),
        ("residual", diagnosis_at_init(residual(1), &train)),
    ] {
        assert_eq!(d.verdict, Verdict::Healthy, "{name}: {:#?}", d.evidence);
        let ratio = d.gradient_ratio.unwrap();
        assert!(ratio > 100.0 * plain.gradient_ratio.unwrap(), "{name}: {ratio}");
    }
}

#[test]
#[ignore = "needs the MNIST files in GRADFLOW_MNIST_DIR"]
fn on_mnist_batchnorm_learns_faster_than_the_vanishing_plain_mlp() {
    let (train, test) = data(10_000);
    let fit = |model: Sequential<f32>| {
        let mut net = Network::new(model);
        let mut sgd = SgdConfig::new(0.01).momentum(0.9).build().unwrap();
        let trainer = Trainer::new(TrainConfig::new(1, 128).seed(3).progress(Progress::Silent)).unwrap();
        let loss = CrossEntropy::new(Reduction::Mean);
        trainer.fit(&mut net, &mut sgd, &loss, &train, Some(&test)).unwrap()
    };
    let plain = fit(plain(2));
    let repaired = fit(batchnorm(2));
    let (p, b) = (plain.last().unwrap(), repaired.last().unwrap());
    eprintln!("plain: {p:?}\nbatchnorm: {b:?}");
    // One epoch on 10 000 digits: the repaired network is already a usable classifier ...
    assert!(b.test_accuracy.unwrap() > 0.85, "{b:?}");
    // ... and its first-epoch loss is well below the plain network's.
    assert!(p.train_loss > 1.5 * b.train_loss, "plain {p:?}, batchnorm {b:?}");
}
