//! The deep-ResNet experiment of He et al. (2016, "Deep Residual Learning for Image
//! Recognition", Fig. 1 and Fig. 6): plain convolutional networks get *worse* when they get
//! deeper — plain-56 ends with a higher *training* loss than plain-20, so it is not overfitting
//! but an optimization failure ("degradation") — while the same networks with shortcuts get
//! better: ResNet-56 trains at least as well as ResNet-20.
//!
//! Four CIFAR-style networks (6n + 2 layers: a 3×3 convolution, three stages of n basic blocks,
//! global average pooling, a classifier; batch normalization after every convolution; widths
//! scaled down to the data) are trained with the same optimizer, schedule, data order and seed:
//! plain-20, plain-56, ResNet-20 and ResNet-56. The training set holds every digit shifted by
//! up to a pixel (the paper's random crops, made once), so that no network can simply memorize
//! it and the final training loss measures how well each depth can fit. The residual blocks
//! with an identity shortcut start as the identity (their last batch normalization at γ = 0,
//! torchvision's `zero_init_residual`); the first block of each stage keeps γ = 1, because its
//! zero-padded shortcut channels would otherwise stay dead for good. With γ = 1 everywhere, as
//! in the paper, ResNet-56 needs a longer run than this example's budget to catch up with
//! ResNet-20 (`--zero-init-residual false` shows it). Before training one observed pass measures
//! the gradient of every weighted layer; during training a recorder keeps it every few steps.
//!
//! ```text
//! cargo run --example conv_resnet                                  # 8×8 digits, ≈ 25 s
//! cargo run --example conv_resnet -- --seed 3
//! cargo run --release --example conv_resnet -- --data-dir /path/to/mnist
//! ```
//!
//! Writes `report.json` and SVG plots into `target/gradflow/conv_resnet/` (or `--out DIR`).

mod common;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use gradflow::data::{Dataset, TargetData, digits_split, mnist};
use gradflow::diagnose::Diagnosis;
use gradflow::hooks::{Recorder, RecorderConfig, Recording};
use gradflow::layers::{CifarResNet, ImageShape};
use gradflow::loss::{CrossEntropy, Reduction};
use gradflow::optim::{CosineAnnealingLr, LrSchedule, SgdConfig};
use gradflow::report::plot::{ChartSpec, HeatmapSpec, Scale, Series, heatmap, line_chart};
use gradflow::report::table;
use gradflow::train::{History, Progress, TrainConfig, Trainer, evaluate};
use gradflow::{Error, Network, Result};
use ndarray::Array2;
use rand::SeedableRng;
use serde_json::json;

/// Plain versus residual convolutional networks of 20 and 56 layers: does depth help?
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Seed of the weights, the train/test split and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training epochs (default: 4 on the digits — each epoch is the nine shifted copies —, 3 on
    /// MNIST).
    #[arg(long)]
    epochs: Option<usize>,
    /// Channels of the three stages (the paper: 16,32,64).
    #[arg(long, value_delimiter = ',', default_value = "4,8,16")]
    widths: Vec<usize>,
    /// SGD learning rate (He et al.: 0.1; momentum 0.9; after the warm-up, cosine-annealed to 0 over the run).
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// Warm-up epochs at a tenth of the learning rate, as He et al. did for ResNet-110.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// L2 weight decay of SGD (He et al.: 1e-4).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Start the last batch normalization of each residual branch with an identity shortcut at
    /// γ = 0, so that those blocks start as the identity (torchvision's `zero_init_residual`,
    /// Goyal et al. 2017); the first block of each stage, whose shortcut zero-pads channels,
    /// keeps γ = 1.
    /// (`--zero-init-residual false` starts them at γ = 1, as He et al. did; then ResNet-56 is
    /// still slower than ResNet-20 at the end of so short a run.)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    zero_init_residual: bool,
    /// Train only these of the four networks (e.g. `ResNet-20,ResNet-56`); the claims need all.
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Minibatch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Train on MNIST from this directory (the four IDX files) instead of the embedded digits.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Augment the training set with every copy of each image shifted by up to this many pixels
    /// in each direction, zero-filled ((2s+1)² copies; default: 1 on the digits, 0 on MNIST).
    /// As He et al.'s random crops, this keeps the networks from simply memorizing the images,
    /// so the final training loss measures how well each network can fit, not how fast.
    #[arg(long)]
    shift: Option<usize>,
    /// Use only the first N training images (MNIST; all by default).
    #[arg(long)]
    train_size: Option<usize>,
    /// Record every weighted layer's gradient every this many steps (for the heatmaps).
    #[arg(long, default_value_t = 10)]
    record_every: u64,
    /// Directory for report.json and the plots (default target/gradflow/conv_resnet).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The four networks: name, depth, residual.
const MODELS: [(&str, usize, bool); 4] =
    [("plain-20", 20, false), ("plain-56", 56, false), ("ResNet-20", 20, true), ("ResNet-56", 56, true)];

/// `warmup` epochs at a tenth of the rate (He et al. trained ResNet-110 at 0.01 until it
/// "warmed up", then at 0.1), then the rest of the run cosine-annealed from the full rate to 0.
#[derive(Debug, Clone, Copy)]
struct WarmupCosine {
    warmup: usize,
    cosine: CosineAnnealingLr,
}

impl WarmupCosine {
    fn new(warmup: usize, epochs: usize) -> Result<Self> {
        if warmup >= epochs {
            return Err(Error::config(
                "conv_resnet",
                "warmup",
                format!("must be fewer than the {epochs} epochs, got {warmup}"),
            ));
        }
        Ok(WarmupCosine { warmup, cosine: CosineAnnealingLr::new(epochs - warmup, 0.0)? })
    }
}

impl LrSchedule for WarmupCosine {
    fn name(&self) -> &'static str {
        "warmup_cosine"
    }

    fn learning_rate(&self, base_lr: f64, epoch: usize) -> f64 {
        match epoch.checked_sub(self.warmup) {
            None => base_lr / 10.0,
            Some(e) => self.cosine.learning_rate(base_lr, e),
        }
    }
}

/// Samples of the gradient measurement at initialization.
const INSPECT_BATCH: usize = 128;

struct Model {
    name: &'static str,
    depth: usize,
    net: Network<f32>,
    /// ‖dL/dW‖ of every weighted layer (convolutions, then the classifier) at initialization.
    init_norms: Vec<f64>,
    /// gradflow's diagnosis of the gradient at initialization.
    diagnosis: Diagnosis,
    /// ‖dL/dW‖ of every weighted layer after training.
    trained_norms: Vec<f64>,
    /// gradflow's diagnosis of the gradient after training.
    trained_diagnosis: Option<Diagnosis>,
    history: Option<History>,
    stopped: Option<String>,
    /// The same norms every `record_every` steps during training.
    recording: Recording,
    /// Loss and accuracy on the whole training set in evaluation mode, after training.
    final_train_eval: Option<(f64, f64)>,
    seconds: f64,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    if args.widths.len() != 3 || args.widths.contains(&0) {
        return Err(Error::config(
            "conv_resnet",
            "widths",
            format!("three stages of channels, got {:?}", args.widths),
        ));
    }
    let started = Instant::now();
    let output = common::Output::new("conv_resnet", args.out.clone())?;
    let (train, test, image, dataset) = load(&args)?;
    let shift = args.shift.unwrap_or(if args.data_dir.is_some() { 0 } else { 1 });
    let originals = train.len();
    // The gradient is observed on the first images as they are (not on shifted copies of a few).
    let unshifted = train.clone();
    let train = shifted(&train, image, shift)?;
    let epochs = args.epochs.unwrap_or(if args.data_dir.is_some() { 3 } else { 4 });
    println!("gradflow · conv_resnet — plain and residual conv nets of 20 and 56 layers (He et al. 2016)");
    println!(
        "data: {dataset}, {} train ({originals} images × {} shifts of up to {shift} pixel{}) / {} test images of {image}  \
         ·  widths {:?}  ·  seed {}",
        train.len(),
        (2 * shift + 1).pow(2),
        if shift == 1 { "" } else { "s" },
        test.len(),
        args.widths,
        args.seed
    );
    println!(
        "SGD lr {} momentum 0.9{}, {}cosine to 0 over {epochs} epochs, batch {}; the same for all four networks",
        args.lr,
        if args.weight_decay > 0.0 { format!(", weight decay {}", args.weight_decay) } else { String::new() },
        if args.warmup > 0 {
            format!("{} warm-up epoch(s) at lr/10, then ", args.warmup)
        } else {
            String::new()
        },
        args.batch_size
    );
    println!(
        "residual blocks with an identity shortcut start as the identity (last BN of the branch at γ = 0): {}\n",
        if args.zero_init_residual { "yes" } else { "no (γ = 1)" }
    );

    let unshifted_classes = unshifted.targets.classes().expect("class targets");
    let mut models = Vec::new();
    for (name, depth, residual) in MODELS {
        if !args.models.is_empty() && !args.models.iter().any(|m| m.eq_ignore_ascii_case(name)) {
            continue;
        }
        let mut config = CifarResNet::new(depth, &args.widths, 10);
        if !residual {
            config = config.plain();
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
        let mut net = Network::new(config.build(image, &mut rng)?);
        if residual && args.zero_init_residual {
            zero_init_residual(&mut net);
        }
        let (recording, diagnosis) =
            common::inspect(&mut net, &unshifted.inputs, unshifted_classes, INSPECT_BATCH)?;
        let init_norms = weight_grad_norms(&recording, recording.steps().first().copied().unwrap_or(0));
        models.push(Model {
            name,
            depth,
            net,
            init_norms,
            diagnosis,
            trained_norms: Vec::new(),
            trained_diagnosis: None,
            history: None,
            stopped: None,
            recording: Recording::default(),
            final_train_eval: None,
            seconds: 0.0,
        });
    }
    print_init_gradients(&models);

    train_all(&mut models, &args, epochs, &train, &test)?;
    inspect_trained(&mut models, &unshifted)?;
    let verdict = print_summary(&models);
    write_report(&models, &args, epochs, shift, &dataset, &verdict, &output)?;
    println!(
        "\nwrote {} (report.json, grad_norm_by_layer.svg, grad_norm_by_layer_trained.svg, train_loss_by_epoch.svg, test_accuracy_by_epoch.svg, \
         grad_norm_heatmap_<model>.svg, diagnosis_<model>.txt) in {}",
        output.dir().display(),
        common::seconds(started.elapsed())
    );
    Ok(())
}

/// The training and test sets as images, their shape and the data set's name.
fn load(args: &Args) -> Result<(Dataset<f32>, Dataset<f32>, ImageShape, String)> {
    match &args.data_dir {
        None => {
            let (train, test) = digits_split::<f32>(0.25, args.seed)?;
            Ok((train, test, ImageShape::new(1, 8, 8), "8×8 digits".into()))
        }
        Some(dir) => {
            let (mut train, test) = mnist::<f32>(dir)?;
            if let Some(n) = args.train_size.filter(|&n| n < train.len()) {
                train = train.subset(&(0..n).collect::<Vec<_>>())?;
            }
            Ok((train, test, ImageShape::new(1, 28, 28), "MNIST".into()))
        }
    }
}

/// Sets γ of the last batch normalization (`K.branch.4`) of every residual branch whose shortcut
/// is the identity to 0.
fn zero_init_residual(net: &mut Network<f32>) {
    let model = net.model_mut();
    for k in 0..model.len() {
        // A block with a shortcut layer (the zero-padding one where a stage begins) keeps γ = 1:
        // its padded channels are 0 on the shortcut, so with γ = 0 they would be relu(0 + 0),
        // whose derivative is 0 — the branch would never get a gradient and those channels would
        // stay dead for good (gradflow's diagnosis shows them: 50% and 75% dead channels in the
        // second and third stages, before and after training).
        if model.layer_at(&format!("{k}.shortcut")).is_some() {
            continue;
        }
        if let Some(bn) = model.layer_at_mut(&format!("{k}.branch.4")) {
            bn.visit_parameters_mut(&mut |p| {
                if p.name == "weight" {
                    let mut value = p.value;
                    value.fill(0.0);
                }
            });
        }
    }
}

/// `data` with every image also shifted by up to `shift` pixels down/up and right/left, the
/// uncovered pixels set to 0: (2·shift + 1)² rows per image (the unshifted one included).
fn shifted(data: &Dataset<f32>, image: ImageShape, shift: usize) -> Result<Dataset<f32>> {
    if shift == 0 {
        return Ok(data.clone());
    }
    let classes = data.targets.classes().expect("class targets");
    let (c, h, w) = (image.channels, image.height, image.width);
    let s = shift as isize;
    let offsets: Vec<(isize, isize)> = (-s..=s).flat_map(|dy| (-s..=s).map(move |dx| (dy, dx))).collect();
    let mut inputs = Array2::zeros((data.len() * offsets.len(), data.inputs.ncols()));
    let mut labels = Vec::with_capacity(inputs.nrows());
    for (i, row) in data.inputs.rows().into_iter().enumerate() {
        for (k, &(dy, dx)) in offsets.iter().enumerate() {
            let mut out = inputs.row_mut(i * offsets.len() + k);
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        let (sy, sx) = (y as isize - dy, x as isize - dx);
                        if (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx) {
                            out[(ch * h + y) * w + x] = row[(ch * h + sy as usize) * w + sx as usize];
                        }
                    }
                }
            }
            labels.push(classes[i]);
        }
    }
    Dataset::new(inputs, TargetData::Classes(labels))
}

/// ‖dL/dW‖ of every convolution and of the classifier at `step`, input side first (the
/// recording lists layers in the order they first ran).
fn weight_grad_norms(recording: &Recording, step: u64) -> Vec<f64> {
    recording
        .layers
        .iter()
        .filter(|l| l.kind == "Conv2d" || l.kind == "Linear")
        .map(|l| {
            let record = l.at_step(step);
            record
                .and_then(|r| r.params.iter().find(|p| p.name == "weight"))
                .map_or(f64::NAN, |p| p.grad.l2_norm)
        })
        .collect()
}

fn print_init_gradients(models: &[Model]) {
    println!("‖dL/dW‖ of each weighted layer at initialization (1 = the first convolution):");
    let rows = [1usize, 2, 5, 10, 15, 19, 20, 28, 38, 48, 55, 56];
    let header: Vec<String> =
        std::iter::once("layer".to_string()).chain(models.iter().map(|m| m.name.to_string())).collect();
    let mut table_rows = Vec::new();
    for &layer in &rows {
        let mut row = vec![layer.to_string()];
        for m in models {
            row.push(m.init_norms.get(layer - 1).map_or("".into(), |v| format!("{v:.2e}")));
        }
        table_rows.push(row);
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    print!("{}", common::table("rrrrr", &header, &table_rows));
    for m in models {
        if let (Some(first), Some(last)) = (m.init_norms.first(), m.init_norms.get(m.depth - 2)) {
            let ratio = if *last > 0.0 {
                format!("{:.2}", first / last)
            } else {
                "— (the last conv's is 0)".into()
            };
            println!(
                "  {:<10} first conv / last conv ‖dL/dW‖ = {}   gradflow's diagnosis: {}{}",
                m.name,
                ratio,
                m.diagnosis.verdict,
                m.diagnosis
                    .gradient_ratio
                    .map_or(String::new(), |r| format!(" (first/last ‖dL/dh‖ = {r:.2})"))
            );
        }
    }
    println!(
        "  (‖dL/dh‖: the gradient w.r.t. each layer's output. Batch normalization does not keep a deep plain stack's \
         gradient level:\n   it grows toward the input at every layer (Yang et al. 2019). The residual blocks with an identity \
         shortcut start at γ = 0,\n   so their convolutions get no gradient at step 0 (‖dL/dW‖ = 0 above): only their γ's, \
         the stem, the first block of each stage\n   and the classifier do. The first block of each stage keeps γ = 1: with \
         γ = 0 its zero-padded shortcut channels would be\n   relu(0 + 0), whose derivative is 0, and stay dead for good.)"
    );
}

/// One observed pass on the trained networks: the diagnosis and ‖dL/dW‖ by layer after training.
fn inspect_trained(models: &mut [Model], train: &Dataset<f32>) -> Result<()> {
    let classes = train.targets.classes().expect("class targets");
    println!(
        "\nThe gradient after training (one observed pass over {INSPECT_BATCH} unshifted training images):"
    );
    for m in models.iter_mut() {
        let (recording, diagnosis) = common::inspect(&mut m.net, &train.inputs, classes, INSPECT_BATCH)?;
        m.trained_norms = weight_grad_norms(&recording, recording.steps().first().copied().unwrap_or(0));
        println!(
            "  {:<10} gradflow's diagnosis: {}{}",
            m.name,
            diagnosis.verdict,
            diagnosis.gradient_ratio.map_or(String::new(), |r| format!(" (first/last ‖dL/dh‖ = {r:.2})"))
        );
        m.trained_diagnosis = Some(diagnosis);
    }
    Ok(())
}

/// Trains the four networks on two threads, the deepest first (each network's training is
/// independent and deterministic, so the results are those of training them one by one).
fn train_all(
    models: &mut [Model],
    args: &Args,
    epochs: usize,
    train: &Dataset<f32>,
    test: &Dataset<f32>,
) -> Result<()> {
    println!("\nTraining the four networks, two at a time (the 56-layer ones first):");
    let mut queue: Vec<&mut Model> = models.iter_mut().collect();
    queue.sort_by_key(|m| std::cmp::Reverse(m.depth));
    queue.reverse(); // popped from the back
    let queue = std::sync::Mutex::new(queue);
    let workers = 2;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let Some(model) = queue.lock().expect("no worker panics holding it").pop() else {
                            return Ok(());
                        };
                        train_model(model, args, epochs, train, test)?;
                    }
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("a training thread panicked"))
    })
}

fn train_model(
    model: &mut Model,
    args: &Args,
    epochs: usize,
    train: &Dataset<f32>,
    test: &Dataset<f32>,
) -> Result<()> {
    let started = Instant::now();
    let mut sgd = SgdConfig::new(args.lr).momentum(0.9).weight_decay(args.weight_decay).build::<f32>()?;
    let trainer =
        Trainer::new(TrainConfig::new(epochs, args.batch_size).seed(args.seed).progress(Progress::Silent))?
            .with_schedule(WarmupCosine::new(args.warmup, epochs)?);
    let config = RecorderConfig {
        activations: false,
        updates: false,
        ..RecorderConfig::all().every_n_steps(args.record_every)
    };
    let handle = model.net.attach_hook(Recorder::new(config)?);
    let loss = CrossEntropy::new(Reduction::Mean);
    let batches = train.len().div_ceil(args.batch_size);
    let (name, mut sum, mut count) = (model.name, 0.0, 0usize);
    let fitted = trainer.fit_with(&mut model.net, &mut sgd, &loss, train, Some(test), |_, step| {
        (sum, count) = (sum + step.loss, count + 1);
        if step.batch == batches {
            println!(
                "  {name:<10} epoch {:>2}/{epochs}  mean minibatch loss {:.4}",
                step.epoch,
                sum / count as f64
            );
            (sum, count) = (0.0, 0);
        }
        Ok(())
    });
    model.recording = model.net.detach_hook(handle).expect("attached above").into_recording();
    match fitted {
        Ok(history) => model.history = Some(history),
        // A diverging run is a result to report, not a crash of the demonstration.
        Err(e) => {
            println!("  training stopped: {e}");
            model.stopped = Some(e.to_string());
        }
    }
    let evaluation = evaluate(&mut model.net, &loss, train, 256)?;
    model.final_train_eval = evaluation.accuracy.map(|a| (evaluation.loss, a));
    model.seconds = started.elapsed().as_secs_f64();
    Ok(())
}

/// The last epoch's mean training loss (measured during the epoch, in training mode, as the
/// weights change).
fn last_epoch_loss(model: &Model) -> Option<f64> {
    model.history.as_ref().and_then(|h| h.last()).map(|e| e.train_loss)
}

/// The final training loss: the trained network's loss over the whole training set (in
/// evaluation mode), the number the two claims compare.
fn final_train_loss(model: &Model) -> Option<f64> {
    model.final_train_eval.map(|(loss, _)| loss)
}

/// Prints the final table and the two claims; returns them as text for the report.
fn print_summary(models: &[Model]) -> Vec<String> {
    println!("\nAfter training");
    let pct = |v: Option<f64>| v.map_or("-".into(), |a| format!("{:.1}%", 100.0 * a));
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            let last = m.history.as_ref().and_then(|h| h.last());
            vec![
                m.name.to_string(),
                m.depth.to_string(),
                final_train_loss(m).map_or("-".into(), |l| format!("{l:.4}")),
                pct(m.final_train_eval.map(|(_, a)| 1.0 - a)),
                last_epoch_loss(m).map_or("-".into(), |l| format!("{l:.4}")),
                pct(last.and_then(|e| e.test_accuracy)),
                format!("{:.1} s", m.seconds),
            ]
        })
        .collect();
    let header = ["model", "layers", "train loss", "train error", "last epoch loss", "test acc", "time"];
    print!("{}", common::table("lrrrrrr", &header, &rows));
    println!(
        "  (train loss and error: the trained network on the whole training set; last epoch: the mean minibatch \
         loss while training)"
    );

    let loss =
        |name: &str| models.iter().find(|m| m.name == name).and_then(final_train_loss).unwrap_or(f64::NAN);
    let (plain20, plain56, res20, res56) =
        (loss("plain-20"), loss("plain-56"), loss("ResNet-20"), loss("ResNet-56"));
    let ratio = plain56 / plain20;
    let degradation = ratio >= 1.5;
    let residual = res56 <= res20;
    let claims = vec![
        format!(
            "degradation: plain-56's final training loss is {ratio:.2}× plain-20's ({plain56:.4} vs {plain20:.4}): {}",
            if degradation {
                "the deeper plain network trains WORSE (claim holds: ≥ 1.5×)"
            } else {
                "claim NOT shown (< 1.5×)"
            }
        ),
        format!(
            "shortcuts: ResNet-56's final training loss {res56:.4} vs ResNet-20's {res20:.4}: {}",
            if residual {
                "the deeper residual network trains at least as well (claim holds)"
            } else {
                "claim NOT shown"
            }
        ),
    ];
    println!();
    for claim in &claims {
        println!("  {claim}");
    }
    claims
}

/// ‖dL/dW‖ of every weighted layer at every recorded step: rows = layers (1 = input side),
/// columns = steps.
fn training_heatmap(recording: &Recording) -> (Vec<String>, Vec<f64>, Array2<f64>) {
    let steps = recording.steps();
    let per_step: Vec<Vec<f64>> = steps.iter().map(|&s| weight_grad_norms(recording, s)).collect();
    let layers = per_step.iter().map(Vec::len).max().unwrap_or(0);
    let labels = (1..=layers).map(|i| format!("layer {i}")).collect();
    let values = Array2::from_shape_fn((layers, steps.len()), |(l, s)| {
        per_step[s].get(l).copied().unwrap_or(f64::NAN)
    });
    (labels, steps.iter().map(|&s| s as f64).collect(), values)
}

fn from_one(values: &[f64]) -> Vec<(f64, f64)> {
    values.iter().enumerate().map(|(i, &v)| ((i + 1) as f64, v)).collect()
}

fn write_report(
    models: &[Model],
    args: &Args,
    epochs: usize,
    shift: usize,
    dataset: &str,
    verdict: &[String],
    output: &common::Output,
) -> Result<()> {
    let mut entries = Vec::new();
    let (mut grad, mut loss, mut accuracy) = (Vec::new(), Vec::new(), Vec::new());
    let mut grad_trained = Vec::new();
    for m in models {
        let epoch_stats = m.history.as_ref().map(|h| h.epochs.as_slice()).unwrap_or_default();
        let train_loss: Vec<f64> = epoch_stats.iter().map(|e| e.train_loss).collect();
        let test_loss: Vec<f64> = epoch_stats.iter().filter_map(|e| e.test_loss).collect();
        let test_acc: Vec<f64> = epoch_stats.iter().filter_map(|e| e.test_accuracy).collect();
        let last = epoch_stats.last();
        let (rows, columns, values) = training_heatmap(&m.recording);
        let file = output.path(&format!("diagnosis_{}.txt", m.name.to_lowercase()));
        let mut text = format!("{} at initialization\n{}", m.name, table::render(&m.diagnosis));
        if let Some(trained) = &m.trained_diagnosis {
            text += &format!("\n{} after training\n{}", m.name, table::render(trained));
        }
        std::fs::write(&file, text).map_err(|e| Error::io(&file, e))?;
        entries.push(json!({
            "name": m.name,
            "depth": m.depth,
            "verdict": m.diagnosis.verdict.name(),
            "gradient_ratio_first_to_last": m.diagnosis.gradient_ratio,
            "evidence": m.diagnosis.evidence,
            "grad_norm_by_layer_after_training": m.trained_norms,
            "verdict_after_training": m.trained_diagnosis.as_ref().map(|d| d.verdict.name()),
            "evidence_after_training": m.trained_diagnosis.as_ref().map(|d| d.evidence.clone()),
            "residual": m.name.starts_with("ResNet"),
            "parameters": m.net.num_parameters(),
            "grad_norm_by_layer": m.init_norms,
            "grad_norm_by_layer_during_training": {
                "steps": columns,
                "norms": values.rows().into_iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
            },
            "train_loss_by_epoch": train_loss,
            "test_loss_by_epoch": test_loss,
            "test_accuracy_by_epoch": test_acc,
            "train_loss": final_train_loss(m),
            "train_accuracy": m.final_train_eval.map(|(_, a)| a),
            "test_accuracy": last.and_then(|e| e.test_accuracy),
            "last_epoch_train_loss": last_epoch_loss(m),
            "last_epoch_train_accuracy": last.and_then(|e| e.train_accuracy),
            "training_stopped": m.stopped,
            "train_seconds": m.seconds,
        }));
        grad.push(Series::new(m.name, from_one(&m.init_norms)));
        grad_trained.push(Series::new(m.name, from_one(&m.trained_norms)));
        loss.push(Series::new(m.name, from_one(&train_loss)));
        accuracy.push(Series::new(m.name, from_one(&test_acc)));
        if !rows.is_empty() && !columns.is_empty() {
            let spec =
                HeatmapSpec::new(format!("{}: ‖dL/dW‖ of each weighted layer during training", m.name))
                    .x_label("training step")
                    .y_label("layer (1 = first convolution)")
                    .value_label("‖dL/dW‖")
                    .color_scale(Scale::Log10);
            let file = format!("grad_norm_heatmap_{}.svg", m.name.to_lowercase());
            heatmap(output.path(&file), &spec, &rows, &columns, values.view())?;
        }
    }
    line_chart(
        output.path("grad_norm_by_layer.svg"),
        &ChartSpec::new("‖dL/dW‖ by weighted layer at initialization")
            .x_label("layer (1 = first convolution)")
            .y_label("‖dL/dW‖")
            .y_scale(Scale::Log10),
        &grad,
    )?;
    line_chart(
        output.path("grad_norm_by_layer_trained.svg"),
        &ChartSpec::new("‖dL/dW‖ by weighted layer after training")
            .x_label("layer (1 = first convolution)")
            .y_label("‖dL/dW‖")
            .y_scale(Scale::Log10),
        &grad_trained,
    )?;
    line_chart(
        output.path("train_loss_by_epoch.svg"),
        &ChartSpec::new(format!("Training loss by epoch ({dataset})"))
            .x_label("epoch")
            .y_label("cross-entropy (training set)")
            .y_scale(Scale::Log10),
        &loss,
    )?;
    line_chart(
        output.path("test_accuracy_by_epoch.svg"),
        &ChartSpec::new(format!("Test accuracy by epoch ({dataset})")).x_label("epoch").y_label("accuracy"),
        &accuracy,
    )?;
    output.write_json(
        "report.json",
        &json!({
            "example": "conv_resnet",
            "dataset": dataset,
            "seed": args.seed,
            "widths": args.widths,
            "optimizer": {"name": "sgd", "lr": args.lr, "momentum": 0.9, "schedule": "cosine", "warmup_epochs": args.warmup, "weight_decay": args.weight_decay, "batch_size": args.batch_size, "epochs": epochs},
            "zero_init_residual": args.zero_init_residual,
            "shift": shift,
            "claims": verdict,
            "models": entries,
        }),
    )?;
    Ok(())
}
