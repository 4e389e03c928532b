//! Exploding gradients through time, and gradient clipping.
//!
//! A recurrent network whose recurrent weights are scaled up multiplies the gradient by more than
//! one at every step back in time, so ‖dL/dh_t‖ grows geometrically with the time lag (Bengio,
//! Simard & Frasconi 1994; Pascanu, Mikolov & Bengio 2013, "On the difficulty of training
//! recurrent neural networks"). Here a ReLU RNN starts with `W_hh = 1.2 · I` and zero biases (the
//! IRNN of Le, Jaitly & Hinton 2015, scaled past 1): for every active unit the step-to-step
//! Jacobian is exactly 1.2, so the gradient grows by about 1.2 per step back. Plain SGD takes
//! steps as long as the gradient: without clipping, training blows up to infinity and NaN. The
//! same run with global-norm clipping (Pascanu et al. 2013; PyTorch's `clip_grad_norm_`) keeps
//! every step at most `lr · max_norm` long, and trains.
//!
//! Both runs use the same data, weights and batches in a plain loop (forward, MSE, backward,
//! [`global_grad_norm`], optional [`clip_grad_norm`], SGD step), so the unclipped run's losses and
//! gradient norms are kept up to the step where it fails; a [`NonFiniteDetector`] names the layer
//! where the first NaN or infinity appeared, and the crate's [`Trainer`] is run on the same
//! unclipped configuration to show the error it stops with.
//!
//! ```text
//! cargo run --example exploding_gradients
//! cargo run --example exploding_gradients -- --init orthogonal --gain 1.8 --seed 1
//! ```

mod common;

use std::path::PathBuf;
use std::time::Instant;

use clap::builder::RangedU64ValueParser;
use clap::{Parser, ValueEnum};
use gradflow::data::{ADDING_PROBLEM_BASELINE_MSE, Dataset, TargetData, adding_problem};
use gradflow::hooks::{NonFiniteDetector, NonFiniteReport};
use gradflow::loss::{Loss, Mse};
use gradflow::optim::{SgdConfig, clip_grad_norm, global_grad_norm};
use gradflow::recurrent::{Nonlinearity, Readout, RecurrentInit, RnnConfig, SequenceModel, TimeStepRecorder};
use gradflow::report::plot::{ChartSpec, Scale, Series, line_chart};
use gradflow::train::{Progress, TrainConfig, Trainer, evaluate};
use gradflow::{Error, Linear, Mode, Network, Result, Sequential, Targets};
use ndarray::s;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

/// Train an RNN with scaled-up recurrent weights on the adding problem, without and with
/// gradient clipping.
#[derive(Parser)]
#[command(name = "exploding_gradients")]
struct Args {
    /// Steps per sequence T of the adding problem (at least 2).
    #[arg(long, default_value_t = 30, value_parser = RangedU64ValueParser::<usize>::new().range(2..))]
    sequence_length: usize,
    /// The RNN's non-linearity.
    #[arg(long, value_enum, default_value_t = Activation::Relu)]
    activation: Activation,
    /// How W_hh starts: `identity` (times --gain; biases zero: the IRNN of Le et al. 2015 when
    /// the gain is 1) or `orthogonal` (a random orthogonal matrix times --gain).
    #[arg(long, value_enum, default_value_t = Init::Identity)]
    init: Init,
    /// The scale of W_hh: 1 keeps norms, above 1 makes the gradient explode.
    #[arg(long, default_value_t = 1.2)]
    gain: f64,
    /// Hidden units.
    #[arg(long, default_value_t = 32, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    hidden: usize,
    /// SGD learning rate (the same for both runs).
    #[arg(long, default_value_t = 0.03)]
    lr: f64,
    /// Global-norm limit of the clipped run.
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// Optimizer steps (minibatches of 32, each of fresh sequences).
    #[arg(long, default_value_t = 3000, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    steps: usize,
    /// Seed of the data, the weights and the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory for report.json and the plots (default target/gradflow/exploding_gradients/).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Init {
    Identity,
    Orthogonal,
}

impl Init {
    fn scheme(self, gain: f64) -> RecurrentInit {
        match self {
            Init::Identity => RecurrentInit::Identity { scale: gain },
            Init::Orthogonal => RecurrentInit::Orthogonal { gain },
        }
    }

    fn describe(self, gain: f64) -> String {
        match self {
            Init::Identity => format!("{gain} × identity"),
            Init::Orthogonal => format!("{gain} × a random orthogonal matrix"),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Activation {
    Tanh,
    Relu,
}

/// Minibatch size.
const BATCH: usize = 32;
/// Fresh sequences the clipped model is tested on.
const TEST_SEQUENCES: usize = 1000;
/// Added to the seed for the test set, so that it never overlaps the training data.
const TEST_SEED_OFFSET: u64 = 0x7e57_5eed;

/// One training run, as far as it got.
struct Run {
    name: &'static str,
    /// The global-norm limit, if clipped.
    clip: Option<f64>,
    losses: Vec<f64>,
    /// Global L2 norm of the gradients before clipping, per step.
    grad_norms: Vec<f64>,
    /// The step (the network's count, from 0) at which the loss or the gradient stopped being
    /// finite.
    failed_at: Option<usize>,
    failure: Option<String>,
    detector: Option<NonFiniteReport>,
    seconds: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    for (name, value) in [("gain", args.gain), ("lr", args.lr), ("clip", args.clip)] {
        if !(value.is_finite() && value > 0.0) {
            return Err(Error::config(
                "exploding_gradients",
                name,
                format!("must be positive and finite, got {value}"),
            ));
        }
    }
    let output = common::Output::new("exploding_gradients", args.out.clone())?;
    let t_len = args.sequence_length;
    let activation = match args.activation {
        Activation::Tanh => Nonlinearity::Tanh,
        Activation::Relu => Nonlinearity::Relu,
    };

    println!("Exploding gradients through time, and global-norm clipping");
    println!(
        "  RNN({}, hidden {}) with W_hh = {}, on the adding problem with T = {t_len}",
        activation_name(args.activation),
        args.hidden,
        args.init.describe(args.gain)
    );
    println!(
        "  seed {} · {} steps of {BATCH} fresh sequences · SGD lr {} · clipped run: global norm ≤ {}",
        args.seed, args.steps, args.lr, args.clip
    );
    println!();

    let train = adding_problem::<f32>(args.steps * BATCH, t_len, args.seed)?;
    let test = adding_problem::<f32>(TEST_SEQUENCES, t_len, args.seed.wrapping_add(TEST_SEED_OFFSET))?;
    let build = || build(activation, args.init.scheme(args.gain), args.hidden, args.seed);

    // 1. The gradient by time lag at initialization.
    let mut net = build()?;
    let grad_by_t = grad_by_time_step(&mut net, &test)?;
    print_growth(&grad_by_t);

    // 2. The same run without and with clipping.
    let (unclipped, _) = train_run("unclipped", build()?, &train, &test, args.lr, None)?;
    let (clipped, clipped_test) = train_run("clipped", build()?, &train, &test, args.lr, Some(args.clip))?;

    // 3. What the crate's Trainer says about the unclipped run.
    let trainer_error = trainer_on_unclipped(build()?, &train, args.lr, args.seed)?;

    print_runs(&unclipped, &clipped, args.lr, args.clip, clipped_test);
    print_failure(&unclipped, trainer_error.as_deref());
    let verdict = verdict(&grad_by_t, &unclipped, &clipped, args.lr, clipped_test);
    println!();
    println!("Verdict");
    print_wrapped(&verdict);

    let written = write_outputs(
        &output,
        &args,
        &grad_by_t,
        &unclipped,
        &clipped,
        clipped_test,
        trainer_error.as_deref(),
        &verdict,
    )?;
    println!();
    println!("Wrote {}", written.join(", "));
    println!("   in {}", output.dir().display());
    Ok(())
}

fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Tanh => "tanh",
        Activation::Relu => "relu",
    }
}

/// `SequenceModel(RNN with W_hh set by `init` → Linear(hidden → 1) on the last step)`.
fn build(activation: Nonlinearity, init: RecurrentInit, hidden: usize, seed: u64) -> Result<Network<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let rnn = RnnConfig::new(2, hidden).nonlinearity(activation).recurrent_init(init).build(&mut rng)?;
    let model = SequenceModel::new(rnn, Readout::LastStep, Linear::new(hidden, 1, &mut rng)?)?;
    let mut sequential = Sequential::new();
    sequential.push(model);
    Ok(Network::new(sequential))
}

fn value_targets(data: &Dataset<f32>) -> Result<&ndarray::Array2<f32>> {
    match &data.targets {
        TargetData::Values(v) => Ok(v),
        TargetData::Classes(_) => Err(Error::config("exploding_gradients", "data", "value targets expected")),
    }
}

/// ‖dL/dh_t‖ for every step t from one MSE pass on the first 256 test sequences (gradients are
/// zeroed afterwards).
fn grad_by_time_step(net: &mut Network<f32>, data: &Dataset<f32>) -> Result<Vec<f64>> {
    let rows = 256.min(data.len());
    let x = data.inputs.slice(s![..rows, ..]);
    let targets = value_targets(data)?.slice(s![..rows, ..]);
    let (pass, recorder) = net.with_hook(TimeStepRecorder::new(), |net| {
        let prediction = net.forward(x, Mode::Train)?;
        let (_, grad) = Mse::default().value_and_grad(prediction, Targets::Values(targets))?;
        net.backward(grad.view())
    });
    net.zero_grad();
    pass?;
    let profile = recorder.profile("0.rnn", 0).ok_or_else(|| {
        Error::config("exploding_gradients", "model", "no time-step profile was recorded for layer 0.rnn")
    })?;
    Ok(profile.grad_hidden_norms.clone())
}

/// Trains on the batches of `train` in order; stops at the first non-finite loss or gradient
/// norm. Returns the run and the test MSE of the trained network (NaN when it failed).
fn train_run(
    name: &'static str,
    mut net: Network<f32>,
    train: &Dataset<f32>,
    test: &Dataset<f32>,
    lr: f64,
    clip: Option<f64>,
) -> Result<(Run, f64)> {
    let detector = net.attach_hook(NonFiniteDetector::new());
    let mut sgd = SgdConfig::new(lr).build::<f32>()?;
    let loss = Mse::default();
    let targets = value_targets(train)?;
    let steps = train.len() / BATCH;
    let mut run = Run {
        name,
        clip,
        losses: Vec::with_capacity(steps),
        grad_norms: Vec::with_capacity(steps),
        failed_at: None,
        failure: None,
        detector: None,
        seconds: 0.0,
    };
    let started = Instant::now();
    for batch in 0..steps {
        // The network's step counter: the same number its hooks, the detector and errors use.
        let step = net.step_count() as usize;
        let rows = batch * BATCH..(batch + 1) * BATCH;
        let x = train.inputs.slice(s![rows.clone(), ..]);
        let t = targets.slice(s![rows, ..]);
        net.zero_grad();
        let prediction = net.forward(x, Mode::Train)?;
        let (value, grad) = match loss.value_and_grad(prediction, Targets::Values(t)) {
            Ok(pair) => pair,
            // The MSE refuses a non-finite prediction, naming it.
            Err(e @ Error::NonFinite { .. }) => {
                run.failed_at = Some(step);
                run.failure = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        };
        run.losses.push(f64::from(value));
        net.backward(grad.view())?;
        let norm = global_grad_norm(net.model());
        run.grad_norms.push(norm);
        if !value.is_finite() || !norm.is_finite() {
            run.failed_at = Some(step);
            run.failure = Some(format!("step {step}: loss {value}, gradient norm {norm}"));
            break;
        }
        if let Some(max_norm) = clip {
            clip_grad_norm(net.model_mut(), max_norm)?;
        }
        net.step(&mut sgd)?;
    }
    run.seconds = started.elapsed().as_secs_f64();
    run.detector = net.detach_hook(detector).and_then(|d| d.report().cloned());
    let test_loss = if run.failed_at.is_none() {
        evaluate(&mut net, &loss, test, 1000).map(|e| e.loss).unwrap_or(f64::NAN)
    } else {
        f64::NAN
    };
    Ok((run, test_loss))
}

/// Runs the crate's [`Trainer`] on the unclipped configuration (same data, batches in order,
/// one epoch) and returns the error it stops with, if any.
fn trainer_on_unclipped(
    mut net: Network<f32>,
    train: &Dataset<f32>,
    lr: f64,
    seed: u64,
) -> Result<Option<String>> {
    let mut sgd = SgdConfig::new(lr).build::<f32>()?;
    let config = TrainConfig::new(1, BATCH).seed(seed).shuffle(false).progress(Progress::Silent);
    match Trainer::new(config)?.fit(&mut net, &mut sgd, &Mse::default(), train, None) {
        Ok(_) => Ok(None),
        Err(e @ Error::NonFinite { .. }) => Ok(Some(e.to_string())),
        Err(e) => Err(e),
    }
}

fn print_growth(norms: &[f64]) {
    let t_len = norms.len();
    println!("‖dL/dh_t‖ at initialization (MSE of the readout at t = {}), batch of 256", t_len - 1);
    println!("  {:>5} {:>5} {:>12} {:>16}", "t", "lag", "‖dL/dh_t‖", "× the last step");
    let last = norms[t_len - 1];
    let mut lags: Vec<usize> = [0, 1, 2, 5, 10, 20, 30, 50, 100].into_iter().filter(|&l| l < t_len).collect();
    if lags.last() != Some(&(t_len - 1)) {
        lags.push(t_len - 1);
    }
    for lag in lags {
        let t = t_len - 1 - lag;
        println!("  {t:>5} {lag:>5} {:>12} {:>16}", sci(norms[t]), sci(norms[t] / last));
    }
    let per_step = (norms[0] / last).powf(1.0 / (t_len - 1).max(1) as f64);
    println!("  growth per step back in time: ×{per_step:.2} on average");
    println!();
}

fn print_runs(unclipped: &Run, clipped: &Run, lr: f64, max_norm: f64, clipped_test: f64) {
    println!("The first steps: SGD moves the weights by lr × ‖∇‖ (after clipping)");
    println!("  {:>4}   {:^32}   {:^32}", "", "without clipping", format!("clipped at {max_norm}"));
    println!(
        "  {:>4}   {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10}",
        "step", "loss", "‖∇‖", "update", "loss", "‖∇‖", "update"
    );
    for i in 0..5 {
        let cells = |run: &Run, clip: Option<f64>| match (run.losses.get(i), run.grad_norms.get(i)) {
            (Some(&loss), Some(&norm)) => {
                let applied = clip.map_or(norm, |c| norm.min(c));
                format!("{:>10} {:>10} {:>10}", sci(loss), sci(norm), sci(lr * applied))
            }
            _ if run.failed_at == Some(i) => format!("{:>32}", "non-finite: stopped"),
            _ => format!("{:>32}", ""),
        };
        println!("  {:>4}   {}   {}", i, cells(unclipped, None), cells(clipped, Some(max_norm)));
    }
    println!();
    println!("The whole runs (global gradient norm before clipping)");
    println!(
        "  {:<10} {:>6} {:>11} {:>11} {:>12} {:>12} {:>9} {:>8}",
        "run", "updates", "first loss", "last loss", "median ‖∇‖", "max ‖∇‖", "clipped", "time"
    );
    for run in [unclipped, clipped] {
        let clipped_steps = match run.clip {
            Some(limit) => {
                let n = run.grad_norms.iter().filter(|&&g| g > limit).count();
                format!("{:.0}%", 100.0 * n as f64 / run.grad_norms.len().max(1) as f64)
            }
            None => "-".into(),
        };
        println!(
            "  {:<10} {:>6} {:>11} {:>11} {:>12} {:>12} {:>9} {:>7.1}s",
            run.name,
            run.losses.len(),
            sci(run.losses.first().copied().unwrap_or(f64::NAN)),
            if run.failed_at.is_some() {
                "non-finite".into()
            } else {
                sci(run.losses.last().copied().unwrap_or(f64::NAN))
            },
            sci(median(&run.grad_norms)),
            sci(run.grad_norms.iter().copied().fold(f64::NAN, f64::max)),
            clipped_steps,
            run.seconds
        );
    }
    println!(
        "  clipped run: test MSE {clipped_test:.4} on {TEST_SEQUENCES} fresh sequences (always predicting 1: \
         {ADDING_PROBLEM_BASELINE_MSE:.3})"
    );
    println!();
}

fn print_failure(unclipped: &Run, trainer_error: Option<&str>) {
    println!("How the unclipped run failed");
    match (&unclipped.failed_at, &unclipped.failure) {
        (Some(step), Some(what)) => print_wrapped(&format!("Stopped at step {step}: {what}")),
        _ => print_wrapped("It did not fail within the budget."),
    }
    match &unclipped.detector {
        Some(report) => print_wrapped(&format!("NonFiniteDetector: {report}")),
        None => print_wrapped("NonFiniteDetector: no NaN or infinity seen."),
    }
    match trainer_error {
        Some(e) => print_wrapped(&format!("Trainer::fit on the same run: Err({e})")),
        None => print_wrapped("Trainer::fit on the same run finished without error."),
    }
}

fn verdict(grad_by_t: &[f64], unclipped: &Run, clipped: &Run, lr: f64, clipped_test: f64) -> String {
    let last_t = grad_by_t.len() - 1;
    let growth = grad_by_t[0] / grad_by_t[last_t];
    let first = mean(&clipped.losses[..clipped.losses.len().min(20)]);
    let last = mean(&clipped.losses[clipped.losses.len().saturating_sub(50)..]);
    let exploded = growth > 10.0;
    let trained = clipped.failed_at.is_none() && last < 0.5 * first;
    match (exploded, unclipped.failed_at, trained) {
        (true, Some(step), true) => {
            let largest_update =
                lr * unclipped.grad_norms.iter().copied().filter(|g| g.is_finite()).fold(0.0, f64::max);
            format!(
                "Exploding gradient: at initialization ‖dL/dh_0‖ is {} × ‖dL/dh_{last_t}‖. Without clipping, SGD \
                 took steps as long as lr × ‖∇‖ (up to {}) and the run hit non-finite values at step {step}. \
                 With clipping every step is at most lr × max_norm = {} long, and the same run trained: loss \
                 {} → {} (mean of the first 20 / last 50 steps), test MSE {clipped_test:.4} against {:.3} for \
                 always predicting 1.",
                sci(growth),
                sci(largest_update),
                sci(lr * clipped.clip.unwrap_or(f64::NAN)),
                sci(first),
                sci(last),
                ADDING_PROBLEM_BASELINE_MSE
            )
        }
        (_, failed, _) => format!(
            "Not the expected picture with these settings (‖dL/dh_0‖ / ‖dL/dh_{last_t}‖ = {} at initialization, \
             unclipped run {}, clipped loss {} → {}); try a larger --gain or --lr.",
            sci(growth),
            if failed.is_some() { "failed" } else { "did not fail" },
            sci(first),
            sci(last)
        ),
    }
}

/// Prints `text` indented by two spaces, wrapped at 100 columns.
fn print_wrapped(text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > 98 {
            println!("  {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        println!("  {line}");
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn sci(x: f64) -> String {
    if x.is_finite() { format!("{x:.1e}") } else { format!("{x}") }
}

#[allow(clippy::too_many_arguments)]
fn write_outputs(
    output: &common::Output,
    args: &Args,
    grad_by_t: &[f64],
    unclipped: &Run,
    clipped: &Run,
    clipped_test: f64,
    trainer_error: Option<&str>,
    verdict: &str,
) -> Result<Vec<String>> {
    let finite = |v: &[f64]| -> Vec<Option<f64>> { v.iter().map(|x| x.is_finite().then_some(*x)).collect() };
    let run_json = |r: &Run| {
        json!({
            "name": r.name,
            "steps": r.losses.len(),
            "loss_by_step": finite(&r.losses),
            "grad_norm_before_clipping": finite(&r.grad_norms),
            "failed_at_step": r.failed_at,
            "failure": r.failure,
            "non_finite_detector": r.detector,
            "train_seconds": r.seconds,
        })
    };
    let report = json!({
        "example": "exploding_gradients",
        "sequence_length": args.sequence_length,
        "seed": args.seed,
        "model": {
            "cell": "RNN",
            "nonlinearity": activation_name(args.activation),
            "hidden": args.hidden,
            "recurrent_init": format!("{:?}", args.init.scheme(args.gain)),
        },
        "optimizer": {"name": "sgd", "lr": args.lr},
        "clip_grad_norm": args.clip,
        "batch_size": BATCH,
        "grad_norm_by_time_step": grad_by_t,
        "runs": [run_json(unclipped), run_json(clipped)],
        "clipped_test_mse": clipped_test,
        "baseline_mse": ADDING_PROBLEM_BASELINE_MSE,
        "trainer_error_without_clipping": trainer_error,
        "notes": {
            "grad_norm_by_time_step": "‖dL/dh_t‖ at initialization for t = 0..T−1 (index 0 = first step)",
            "null": "non-finite values (inf, NaN) are written as null",
        },
        "verdict": verdict,
    });
    output.write_json("report.json", &report)?;

    let t_len = args.sequence_length;
    line_chart(
        output.path("grad_norm_by_time_step.svg"),
        &ChartSpec::new(format!(
            "‖dL/dh_t‖ at initialization, W_hh = {}, T = {t_len}",
            args.init.describe(args.gain)
        ))
        .x_label("time step t (readout at the last step)")
        .y_label("‖dL/dh_t‖")
        .y_scale(Scale::Log10),
        &[Series::indexed(format!("{} RNN", activation_name(args.activation)), grad_by_t)],
    )?;
    let by_step =
        |v: &[f64]| -> Vec<(f64, f64)> { v.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect() };
    // The unclipped run usually fails within a few steps: a vertical line marks where.
    let failure_marker = |values: &[f64]| -> Option<Series> {
        let step = unclipped.failed_at? as f64;
        let shown = values.iter().copied().filter(|v| v.is_finite() && *v > 0.0);
        let (lo, hi) = shown.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        (hi > 0.0).then(|| {
            Series::new(format!("without clipping: non-finite at step {step}"), [(step, lo), (step, hi)])
        })
    };
    let all_losses: Vec<f64> = unclipped.losses.iter().chain(&clipped.losses).copied().collect();
    let all_norms: Vec<f64> = unclipped.grad_norms.iter().chain(&clipped.grad_norms).copied().collect();
    let clip_label = format!("clipped at {}", args.clip);
    let mut losses = vec![
        Series::new("without clipping", by_step(&unclipped.losses)),
        Series::new(clip_label.clone(), by_step(&clipped.losses)),
    ];
    losses.extend(failure_marker(&all_losses));
    line_chart(
        output.path("loss_curves.svg"),
        &ChartSpec::new("Training MSE per step").x_label("step").y_label("MSE").y_scale(Scale::Log10),
        &losses,
    )?;
    let first = 30.min(clipped.losses.len());
    let mut first_steps = vec![
        Series::new("without clipping", by_step(&unclipped.losses[..first.min(unclipped.losses.len())])),
        Series::new(clip_label.clone(), by_step(&clipped.losses[..first])),
    ];
    first_steps.extend(failure_marker(&all_losses[..]));
    line_chart(
        output.path("loss_first_steps.svg"),
        &ChartSpec::new(format!("Training MSE, the first {first} steps"))
            .x_label("step")
            .y_label("MSE")
            .y_scale(Scale::Log10),
        &first_steps,
    )?;
    let mut norms = vec![
        Series::new("without clipping", by_step(&unclipped.grad_norms)),
        Series::new(clip_label, by_step(&clipped.grad_norms)),
        Series::new(
            "clipping threshold",
            [(1.0, args.clip), (clipped.grad_norms.len().max(2) as f64, args.clip)],
        ),
    ];
    norms.extend(failure_marker(&all_norms));
    line_chart(
        output.path("grad_norm_per_step.svg"),
        &ChartSpec::new("Global gradient norm before clipping, per step")
            .x_label("step")
            .y_label("‖∇‖ (all parameters)")
            .y_scale(Scale::Log10),
        &norms,
    )?;
    Ok([
        "report.json",
        "grad_norm_by_time_step.svg",
        "loss_curves.svg",
        "loss_first_steps.svg",
        "grad_norm_per_step.svg",
    ]
    .map(String::from)
    .to_vec())
}
