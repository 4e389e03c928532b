//! MNIST with a deep MLP: plain, and with the two classic repairs of gradient flow.
//!
//! Three networks of the same depth and width (default: 10 hidden layers of 256 tanh units,
//! PyTorch's default initialization U(±1/√fan_in)) are looked at once before training, then
//! trained on the 60 000 MNIST training digits and tested on the 10 000 test digits:
//!
//! - `plain`: `depth × (Linear → tanh) → Linear(10)`. U(±1/√n) weights have a third of the
//!   variance that would keep the signal's scale, so going down through a layer ‖dL/dh‖ — the
//!   gradient with respect to the layer's output — is multiplied by about √(1/3) ≈ 0.58: ten
//!   layers lose two orders of magnitude. The diagnosis says *vanishing*, and with SGD the
//!   loss sits on a plateau at ln 10 ≈ 2.3 (chance) for the first third of an epoch
//!   (`loss_by_step.svg`) before training grows the weights enough for the gradient to get
//!   through — after training the diagnosis is healthy, but the first epoch is largely lost.
//! - `residual`: the first layer as in `plain`, then `depth − 1` blocks `x + tanh(Linear(x))`:
//!   the identity path carries the gradient past every block.
//! - `batchnorm`: `depth × (Linear → BatchNorm1d → tanh) → Linear(10)`: each pre-activation is
//!   divided by its batch standard deviation, which is proportional to the weights' scale, and
//!   the backward pass divides the gradient by the same number, so the scale cancels.
//!
//! The three have the same weight matrices (BatchNorm adds 2 × width parameters per layer).
//! Training is SGD with momentum and a cosine learning-rate schedule; the loss and accuracy of
//! each epoch, the diagnosis at initialization and after training, and the wall time are
//! printed and saved. The repaired networks pass 97% test accuracy within the default 3 epochs
//! (seeds 0 and 1: 97.5–97.8%; the plain one reaches about 95.7%). Each network takes about
//! 9 s of CPU time with `--release`, and about 4× that in the repository's dev profile (gradflow
//! itself at opt-level 1; as a dependency with the README's profile lines it runs at full
//! speed), with the same numbers;
//! `--models plain,batchnorm` or `--train-samples 10000 --epochs 1` give a quicker look.
//!
//! The MNIST files (CC BY-SA 3.0) are not part of gradflow: name the directory holding
//! `train-images-idx3-ubyte(.gz)` and the three other files with `--data-dir DIR` or the
//! `GRADFLOW_MNIST_DIR` environment variable. Without one, the example says so and exits with
//! status 2.
//!
//! ```text
//! cargo run --release --example mnist -- --data-dir /path/to/mnist
//! GRADFLOW_MNIST_DIR=/path/to/mnist cargo run --release --example mnist -- --models plain,batchnorm
//! cargo run --release --example mnist -- --data-dir /path/to/mnist --activation relu --init kaiming_normal
//! ```
//!
//! Writes `report.json`, `grad_norm_by_layer.svg` (at initialization), `loss_by_epoch.svg`,
//! `test_accuracy_by_epoch.svg` and `loss_by_step.svg` into `target/gradflow/mnist/` (or
//! `--out DIR`).

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use gradflow::activation::{Activation, by_name};
use gradflow::data::{Dataset, MNIST_DIR_ENV, mnist, mnist_dir_from_env};
use gradflow::diagnose::Diagnosis;
use gradflow::init::{Fans, Initializer};
use gradflow::loss::{CrossEntropy, Reduction};
use gradflow::optim::{CosineAnnealingLr, SgdConfig};
use gradflow::report::plot::{ChartSpec, Scale, Series, line_chart};
use gradflow::train::{History, Progress, TrainConfig, Trainer};
use gradflow::{Error, Network, Result, Sequential};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

const EXAMPLE: &str = "mnist";
/// Mean and standard deviation of the MNIST training pixels scaled to [0, 1]: the constants of
/// `transforms.Normalize((0.1307,), (0.3081,))` in PyTorch's MNIST example
/// (github.com/pytorch/examples, mnist/main.py).
const PIXEL_MEAN: f64 = 0.1307;
const PIXEL_STD: f64 = 0.3081;
const PIXELS: usize = 28 * 28;
const CLASSES: usize = 10;
/// Samples of the gradient measurement before and after training (the first training digits).
const INSPECT_BATCH: usize = 256;
/// Minibatch losses averaged per point of `loss_by_step.svg`.
const SMOOTHING: usize = 25;

/// A deep MLP on MNIST — plain, with residual connections, with BatchNorm — and how the
/// gradient flows through each. Needs the MNIST files: --data-dir DIR or GRADFLOW_MNIST_DIR.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Directory holding the four MNIST IDX files (plain or .gz) [default: $GRADFLOW_MNIST_DIR]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Hidden layers of each network (a residual block counts as one)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=1000))]
    depth: u64,
    /// Units per hidden layer
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=8192))]
    width: u64,
    /// Activation of the hidden layers: one of gradflow::activation::NAMES (tanh, relu, sigmoid, …)
    #[arg(long, default_value = "tanh")]
    activation: String,
    /// Weight initialization: one of gradflow::init::NAMES; `default` is PyTorch's U(±1/√fan_in)
    #[arg(long, default_value = "default")]
    init: String,
    /// The networks to train, in this order (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "plain,residual,batchnorm")]
    models: Vec<Kind>,
    /// Passes over the training set
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    epochs: u64,
    /// Samples per minibatch (an epoch's last, partial batch is dropped)
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(2..=60_000))]
    batch_size: u64,
    /// SGD learning rate (at the first epoch; see --schedule)
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// SGD momentum
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Learning rate over the epochs
    #[arg(long, value_enum, default_value_t = Schedule::Cosine)]
    schedule: Schedule,
    /// Train on the first N training digits only, for a quick look [default: all 60 000]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(256..=60_000))]
    train_samples: Option<u64>,
    /// Seed of the weights and of the minibatch order
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory for report.json and the plots [default: target/gradflow/mnist]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The networks compared.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// depth × (Linear → act) → Linear(10)
    Plain,
    /// Linear → act, then depth − 1 blocks x + act(Linear(x)), then Linear(10)
    Residual,
    /// depth × (Linear → BatchNorm1d → act) → Linear(10)
    Batchnorm,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Residual => "residual",
            Kind::Batchnorm => "batchnorm",
        }
    }

    fn architecture(self, depth: usize, width: usize, act: &str) -> String {
        match self {
            Kind::Plain => format!("{depth} × (Linear({width}) → {act}) → Linear({CLASSES})"),
            Kind::Residual => {
                format!("Linear({width}) → {act}, {} × (x + {act}(Linear(x))) → Linear({CLASSES})", depth - 1)
            }
            Kind::Batchnorm => {
                format!("{depth} × (Linear({width}) → BatchNorm1d → {act}) → Linear({CLASSES})")
            }
        }
    }
}

/// The learning-rate schedule.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Schedule {
    /// PyTorch's CosineAnnealingLR with T_max = epochs: lr · (1 + cos(π·epoch/epochs)) / 2
    Cosine,
    /// The same rate at every epoch
    Constant,
}

/// An initializer chosen by name on the command line (the builder takes an owned one).
#[derive(Debug)]
struct NamedInit(Arc<dyn Initializer>);

impl Initializer for NamedInit {
    fn name(&self) -> String {
        self.0.name()
    }

    fn sample(
        &self,
        shape: (usize, usize),
        fans: Fans,
        rng: &mut dyn rand::RngCore,
    ) -> Result<ndarray::Array2<f64>> {
        self.0.sample(shape, fans, rng)
    }
}

/// One network, before and after training.
struct Model {
    kind: Kind,
    architecture: String,
    net: Network<f32>,
    at_init: Option<Diagnosis>,
    after_training: Option<Diagnosis>,
    history: Option<History>,
    /// Why training stopped early, if it did.
    failure: Option<String>,
    seconds: f64,
}

impl Model {
    fn epochs(&self) -> &[gradflow::train::EpochStats] {
        self.history.as_ref().map_or(&[], |h| h.epochs.as_slice())
    }

    fn test_accuracy(&self) -> Option<f64> {
        self.epochs().last().and_then(|e| e.test_accuracy)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::NoData(message)) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why the example stopped: no MNIST files (exit status 2, like a usage error), or anything else.
enum Failure {
    NoData(String),
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

fn how_to_point_at_the_data() -> String {
    format!(
        "The MNIST files (CC BY-SA 3.0) are not part of gradflow. Point the example at the directory\n\
         holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and\n\
         t10k-labels-idx1-ubyte (each as is or gzipped, .gz), either with a flag or the environment:\n\
         \n    cargo run --release --example mnist -- --data-dir /path/to/mnist\
         \n    {MNIST_DIR_ENV}=/path/to/mnist cargo run --release --example mnist"
    )
}

fn run(args: &Args) -> std::result::Result<(), Failure> {
    let started = Instant::now();
    // Every flag is checked before the data is read.
    let (depth, width, epochs) = (args.depth as usize, args.width as usize, args.epochs as usize);
    let activation = by_name::<f32>(&args.activation)?;
    gradflow::init::by_name(&args.init)?;
    SgdConfig::new(args.lr).momentum(args.momentum).validate()?;
    let kinds = distinct(&args.models);
    let Some(dir) = args.data_dir.clone().or_else(mnist_dir_from_env) else {
        return Err(Failure::NoData(format!(
            "error: no MNIST directory: pass --data-dir DIR or set {MNIST_DIR_ENV}.\n{}",
            how_to_point_at_the_data()
        )));
    };
    let (train, test) = load(&dir, args.train_samples).map_err(|e| {
        Failure::NoData(format!(
            "error: cannot read MNIST from {}: {e}\n{}",
            dir.display(),
            how_to_point_at_the_data()
        ))
    })?;
    let mut models =
        kinds.iter().map(|&kind| build(kind, args, &activation)).collect::<Result<Vec<Model>>>()?;
    let output = common::Output::new(EXAMPLE, args.out.clone())?;

    println!("gradflow · mnist — a deep MLP on MNIST, plain and with the repairs of gradient flow");
    println!(
        "seed {}  ·  depth {depth}  ·  width {width}  ·  activation {}  ·  init {}",
        args.seed,
        args.activation,
        init_text(&args.init)
    );
    println!(
        "data: {} — {} training / {} test digits, pixels standardized (mean {PIXEL_MEAN}, std {PIXEL_STD})",
        dir.display(),
        train.len(),
        test.len()
    );
    println!(
        "training: SGD lr {} momentum {}, {} schedule, batch {}, {epochs} epochs\n",
        args.lr,
        args.momentum,
        schedule_text(args.schedule),
        args.batch_size
    );
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| vec![m.kind.name().into(), m.architecture.clone(), m.net.num_parameters().to_string()])
        .collect();
    print!("{}", common::table("llr", &["model", "architecture", "parameters"], &rows));

    let classes = train.targets.classes().expect("MNIST has class targets");
    for model in &mut models {
        model.at_init = Some(common::inspect(&mut model.net, &train.inputs, classes, INSPECT_BATCH)?.1);
    }
    print_gradient_at_init(&models);

    for (index, model) in models.iter_mut().enumerate() {
        println!("\n── training {} ──", model.kind.name());
        train_model(model, args, index as u64, &train, &test)?;
        let after = common::inspect(&mut model.net, &train.inputs, classes, INSPECT_BATCH)?.1;
        println!(
            "{} in {:.1} s; gradient flow after training: {} (first/last ‖dL/dh‖ {})",
            if model.failure.is_some() { "stopped" } else { "trained" },
            model.seconds,
            after.verdict,
            sci(after.gradient_ratio)
        );
        model.after_training = Some(after);
    }

    print_summary(&models, depth);
    let files = write_report(&models, args, &dir, &train, &test, &output, started)?;
    println!("\ntotal wall time {}", common::seconds(started.elapsed()));
    println!("wrote {} in {}", files.join(", "), output.dir().display());
    Ok(())
}

/// The kinds in their first order of appearance, each once.
fn distinct(kinds: &[Kind]) -> Vec<Kind> {
    let mut out: Vec<Kind> = Vec::new();
    for &k in kinds {
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

fn init_text(init: &str) -> String {
    if init == "default" { "PyTorch default U(±1/√fan_in)".into() } else { init.to_string() }
}

fn schedule_text(schedule: Schedule) -> &'static str {
    match schedule {
        Schedule::Cosine => "cosine",
        Schedule::Constant => "constant",
    }
}

/// `1.2e-3`, or `-` when absent.
fn sci(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.1e}"))
}

fn percent(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.2}%", 100.0 * v))
}

/// Reads MNIST, keeps the first `train_samples` training digits, and standardizes the pixels.
fn load(dir: &Path, train_samples: Option<u64>) -> Result<(Dataset<f32>, Dataset<f32>)> {
    let (mut train, mut test) = mnist::<f32>(dir)?;
    if let Some(n) = train_samples {
        let indices: Vec<usize> = (0..(n as usize).min(train.len())).collect();
        train = train.subset(&indices)?;
    }
    let (mean, std) = (PIXEL_MEAN as f32, PIXEL_STD as f32);
    for data in [&mut train, &mut test] {
        data.inputs.mapv_inplace(|x| (x - mean) / std);
    }
    Ok((train, test))
}

/// Builds one network. BatchNorm1d and the residual wrapper draw nothing from the generator, so
/// with the same seed all three start from the same Linear weights.
fn build(kind: Kind, args: &Args, activation: &Arc<dyn Activation<f32>>) -> Result<Model> {
    let (depth, width) = (args.depth as usize, args.width as usize);
    let builder = Sequential::<f32>::builder(PIXELS).init(NamedInit(gradflow::init::by_name(&args.init)?));
    let builder = match kind {
        Kind::Plain => builder.repeat(depth, width, activation.clone()),
        Kind::Residual => (1..depth).fold(builder.dense(width, activation.clone()), |b, _| {
            let act = activation.clone();
            b.residual(move |branch| branch.dense(width, act))
        }),
        Kind::Batchnorm => {
            (0..depth).fold(builder, |b, _| b.linear(width).batch_norm().activation(activation.clone()))
        }
    };
    let model = builder.linear(CLASSES).build(&mut StdRng::seed_from_u64(args.seed))?;
    Ok(Model {
        kind,
        architecture: kind.architecture(depth, width, &args.activation),
        net: Network::new(model),
        at_init: None,
        after_training: None,
        history: None,
        failure: None,
        seconds: 0.0,
    })
}

fn hidden_grad_norms(d: &Diagnosis) -> Vec<f64> {
    d.layers.iter().filter(|l| !l.layer.is_output).map(|l| l.layer.grad_norm.unwrap_or(f64::NAN)).collect()
}

fn print_gradient_at_init(models: &[Model]) {
    let diagnoses: Vec<&Diagnosis> = models.iter().filter_map(|m| m.at_init.as_ref()).collect();
    let norms: Vec<Vec<f64>> = diagnoses.iter().map(|d| hidden_grad_norms(d)).collect();
    println!(
        "\nGradient at initialization: ‖dL/dh‖ per hidden layer (1 = nearest the input), one cross-entropy \
         pass on {INSPECT_BATCH} training digits"
    );
    let mut header = vec!["layer".to_string()];
    header.extend(models.iter().map(|m| m.kind.name().to_string()));
    let layers = norms.iter().map(Vec::len).max().unwrap_or(0);
    let mut rows: Vec<Vec<String>> = (0..layers)
        .map(|i| {
            let mut row = vec![(i + 1).to_string()];
            row.extend(norms.iter().map(|n| n.get(i).map_or("-".into(), |g| format!("{g:.2e}"))));
            row
        })
        .collect();
    let mut summary_row = |label: &str, cell: &dyn Fn(&Diagnosis) -> String| {
        let mut row = vec![label.to_string()];
        row.extend(diagnoses.iter().map(|d| cell(d)));
        rows.push(row);
    };
    summary_row("first/last", &|d| sci(d.gradient_ratio));
    summary_row("per layer", &|d| d.per_layer_factor.map_or("-".into(), |f| format!("×{f:.2}")));
    summary_row("verdict", &|d| d.verdict.name().to_string());
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let align = "l".to_string() + &"r".repeat(models.len());
    print!("{}", common::table(&align, &header, &rows));
    for (model, d) in models.iter().zip(&diagnoses) {
        if d.evidence.is_empty() && d.remedies.is_empty() {
            continue;
        }
        println!("{} ({}):", model.kind.name(), d.verdict);
        for e in &d.evidence {
            println!("  - {e}");
        }
        for (i, r) in d.remedies.iter().take(3).enumerate() {
            println!("  remedy {}: {r}", i + 1);
        }
    }
}

fn train_model(
    model: &mut Model,
    args: &Args,
    index: u64,
    train: &Dataset<f32>,
    test: &Dataset<f32>,
) -> Result<()> {
    let epochs = args.epochs as usize;
    let mut optimizer = SgdConfig::new(args.lr).momentum(args.momentum).build::<f32>()?;
    let config = TrainConfig::new(epochs, args.batch_size as usize)
        // BatchNorm needs two samples per batch in training: never leave a batch of one.
        .drop_last(true)
        .seed(args.seed.wrapping_add(index))
        .progress(Progress::Auto);
    let mut trainer = Trainer::new(config)?;
    if args.schedule == Schedule::Cosine {
        trainer = trainer.with_schedule(CosineAnnealingLr::new(epochs, 0.0)?);
    }
    let started = Instant::now();
    let fitted =
        trainer.fit(&mut model.net, &mut optimizer, &CrossEntropy::new(Reduction::Mean), train, Some(test));
    model.seconds = started.elapsed().as_secs_f64();
    match fitted {
        Ok(history) => model.history = Some(history),
        // A diverging run is a result worth reporting, not a crash of the demonstration.
        Err(e @ Error::NonFinite { .. }) => {
            println!("training stopped: {e}");
            model.failure = Some(e.to_string());
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

fn print_summary(models: &[Model], depth: usize) {
    let epochs = models.iter().map(|m| m.epochs().len()).max().unwrap_or(0);
    println!(
        "\nSummary: verdict and first/last ‖dL/dh‖ (layer 1 / layer {depth}) at initialization and after \
         training; mean training loss of the first epoch; test accuracy after each epoch"
    );
    let mut header = vec!["model".to_string(), "at init".into(), "first/last".into(), "epoch-1 loss".into()];
    header.extend((1..=epochs).map(|e| format!("epoch {e}")));
    header.extend(["after training".into(), "time".into()]);
    let verdict = |d: Option<&Diagnosis>| d.map_or("-".into(), |d| d.verdict.name().to_string());
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            let init = m.at_init.as_ref();
            let after = m.after_training.as_ref();
            let mut row = vec![
                m.kind.name().to_string(),
                verdict(init),
                sci(init.and_then(|d| d.gradient_ratio)),
                m.epochs().first().map_or("-".into(), |e| format!("{:.4}", e.train_loss)),
            ];
            row.extend((0..epochs).map(|e| percent(m.epochs().get(e).and_then(|s| s.test_accuracy))));
            row.push(format!("{} ({})", verdict(after), sci(after.and_then(|d| d.gradient_ratio))));
            row.push(format!("{:.1} s", m.seconds));
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let align = "llrr".to_string() + &"r".repeat(epochs) + "lr";
    print!("{}", common::table(&align, &header, &rows));
    let best = models
        .iter()
        .filter_map(|m| m.test_accuracy().map(|a| (a, m.kind.name())))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((accuracy, name)) = best {
        println!("best: {name}, {} test accuracy", percent(Some(accuracy)));
    }
    for m in models.iter().filter(|m| m.failure.is_some()) {
        println!("{}: training stopped early ({})", m.kind.name(), m.failure.as_deref().unwrap_or_default());
    }
}

/// The minibatch losses averaged over windows of `SMOOTHING` steps, at the window's end, with
/// *x* in epochs (a last, shorter window is left out when there are full ones).
fn smoothed_steps(losses: &[f64], epochs: usize) -> Vec<(f64, f64)> {
    let steps_per_epoch = losses.len() as f64 / epochs.max(1) as f64;
    let full = losses.len() >= SMOOTHING;
    losses
        .chunks(SMOOTHING)
        .enumerate()
        .filter(|(_, chunk)| !full || chunk.len() == SMOOTHING)
        .map(|(i, chunk)| {
            let end = i * SMOOTHING + chunk.len();
            (end as f64 / steps_per_epoch, chunk.iter().sum::<f64>() / chunk.len() as f64)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn write_report(
    models: &[Model],
    args: &Args,
    dir: &Path,
    train: &Dataset<f32>,
    test: &Dataset<f32>,
    output: &common::Output,
    started: Instant,
) -> Result<Vec<&'static str>> {
    let by_epoch = |v: &[f64]| v.iter().enumerate().map(|(i, &x)| ((i + 1) as f64, x)).collect::<Vec<_>>();
    let mut entries = Vec::new();
    let (mut loss_series, mut accuracy_series, mut grad_series) = (Vec::new(), Vec::new(), Vec::new());
    let mut step_series = Vec::new();
    for m in models {
        let epochs = m.epochs();
        let loss_by_epoch: Vec<f64> = epochs.iter().map(|e| e.train_loss).collect();
        let test_loss_by_epoch: Vec<f64> = epochs.iter().filter_map(|e| e.test_loss).collect();
        let test_accuracy_by_epoch: Vec<f64> = epochs.iter().filter_map(|e| e.test_accuracy).collect();
        let init = m.at_init.as_ref();
        let after = m.after_training.as_ref();
        entries.push(json!({
            "name": m.kind.name(),
            "architecture": m.architecture,
            "parameters": m.net.num_parameters(),
            "test_accuracy": m.test_accuracy(),
            "train_accuracy": epochs.last().and_then(|e| e.train_accuracy),
            "loss_by_epoch": loss_by_epoch,
            "test_loss_by_epoch": test_loss_by_epoch,
            "test_accuracy_by_epoch": test_accuracy_by_epoch,
            "learning_rate_by_epoch": epochs.iter().map(|e| e.learning_rate).collect::<Vec<_>>(),
            "verdict": init.map(|d| d.verdict.name()),
            "gradient_ratio_first_to_last": init.and_then(|d| d.gradient_ratio),
            "per_layer_factor": init.and_then(|d| d.per_layer_factor),
            "grad_norm_by_layer": init.map(hidden_grad_norms),
            "evidence": init.map(|d| d.evidence.clone()),
            "remedies": init.map(|d| d.remedies.iter().map(|r| r.text()).collect::<Vec<_>>()),
            "after_training": {
                "verdict": after.map(|d| d.verdict.name()),
                "gradient_ratio_first_to_last": after.and_then(|d| d.gradient_ratio),
                "grad_norm_by_layer": after.map(hidden_grad_norms),
            },
            "stopped_early": m.failure,
            "train_seconds": m.seconds,
        }));
        let group = m.kind.name();
        loss_series.push(Series::new(format!("{group} (train)"), by_epoch(&loss_by_epoch)).group(group));
        loss_series.push(Series::new(format!("{group} (test)"), by_epoch(&test_loss_by_epoch)).group(group));
        let accuracy_percent: Vec<f64> = test_accuracy_by_epoch.iter().map(|a| 100.0 * a).collect();
        accuracy_series.push(Series::new(m.kind.name(), by_epoch(&accuracy_percent)));
        if let Some(history) = &m.history {
            step_series.push(Series::new(m.kind.name(), smoothed_steps(&history.step_losses, epochs.len())));
        }
        if let Some(d) = init {
            grad_series.push(Series::new(m.kind.name(), by_epoch(&hidden_grad_norms(d))));
        }
    }
    output.write_json(
        "report.json",
        &json!({
            "example": EXAMPLE,
            "seed": args.seed,
            "data_dir": dir.display().to_string(),
            "dataset": "mnist",
            "train_samples": train.len(),
            "test_samples": test.len(),
            "pixel_normalization": {"mean": PIXEL_MEAN, "std": PIXEL_STD},
            "depth": args.depth,
            "width": args.width,
            "activation": args.activation,
            "init": args.init,
            "optimizer": {
                "name": "sgd",
                "lr": args.lr,
                "momentum": args.momentum,
                "schedule": schedule_text(args.schedule),
                "batch_size": args.batch_size,
                "epochs": args.epochs,
            },
            "models": entries,
            "wall_seconds": started.elapsed().as_secs_f64(),
        }),
    )?;
    let title = format!("MNIST, {}-layer {} MLPs", args.depth, args.activation);
    let mut files = vec!["report.json"];
    // A chart needs a point to show: when every run stopped before its first epoch ended,
    // report.json says why and the per-epoch charts are left out.
    let has_points = |series: &[Series]| series.iter().any(|s| !s.points.is_empty());
    if has_points(&grad_series) {
        line_chart(
            output.path("grad_norm_by_layer.svg"),
            &ChartSpec::new(format!("‖dL/dh‖ by hidden layer at initialization — {title}"))
                .x_label("hidden layer (1 = nearest the input)")
                .y_label("‖dL/dh‖")
                .y_scale(Scale::Log10),
            &grad_series,
        )?;
        files.push("grad_norm_by_layer.svg");
    }
    if has_points(&loss_series) {
        line_chart(
            output.path("loss_by_epoch.svg"),
            &ChartSpec::new(format!("Cross-entropy by epoch — {title}"))
                .x_label("epoch")
                .y_label("loss (train: mean over the epoch)")
                .y_scale(Scale::Log10),
            &loss_series,
        )?;
        line_chart(
            output.path("test_accuracy_by_epoch.svg"),
            &ChartSpec::new(format!("Test accuracy by epoch — {title}"))
                .x_label("epoch")
                .y_label("test accuracy (%)"),
            &accuracy_series,
        )?;
        line_chart(
            output.path("loss_by_step.svg"),
            &ChartSpec::new(format!("Training loss, mean of {SMOOTHING} steps — {title}"))
                .x_label("epoch")
                .y_label("minibatch cross-entropy")
                .y_scale(Scale::Log10),
            &step_series,
        )?;
        files.extend(["loss_by_epoch.svg", "test_accuracy_by_epoch.svg", "loss_by_step.svg"]);
    }
    Ok(files)
}
