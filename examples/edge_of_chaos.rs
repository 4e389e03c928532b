//! # Deep networks train only where depth ≲ 6·ξ_c: the edge of chaos, at small scale
//!
//! Schoenholz, Gilmer, Ganguli & Sohl-Dickstein (2017, "Deep Information Propagation", fig. 5)
//! trained plain tanh networks of many depths with weights W ~ N(0, σ_w²/n) and biases
//! b ~ N(0, σ_b²), and found that a network is trainable only when its depth is below about
//! six times the correlation depth scale ξ_c that mean-field theory computes from (σ_w², σ_b²):
//! deep signals about the input survive only near the edge of chaos, χ₁ = 1, where ξ_c diverges.
//!
//! This example redraws that figure on the embedded 8×8 digits: for every σ_w² of a grid (the
//! columns) and every depth (the rows) it trains `depth × [Linear(n→n) + tanh] + Linear(n→10)`
//! for a fixed number of SGD steps and colours the cell by the training accuracy reached; over
//! it, the white line is the depth `6·ξ_c(σ_w², σ_b²)` from `gradflow::theory::MeanField`.
//!
//! What it shows at the default settings (seed 0, width 64, 400 steps of SGD at lr 10⁻³): the
//! trainable region narrows with depth around the edge of chaos (σ_w² ≈ 1.76 at σ_b² = 0.05)
//! and follows the 6·ξ_c line on both sides; 44 of the 48 networks are trained (accuracy above
//! 50%) exactly where depth ≤ 6·ξ_c. The four others sit next to the line (e.g. depth 40 at
//! σ_w² = 3.5–4, where 6·ξ_c is 47 and 42, reaches 41% and 21%): at this scale the boundary is
//! a few layers wide. The learning rate matters: at 0.005 no 40-layer network trains within 400
//! steps, even at the edge (deeper networks need smaller steps), so it is 10⁻³, the paper's.
//!
//! ```text
//! cargo run --example edge_of_chaos
//! cargo run --release --example edge_of_chaos -- --fine
//! cargo run --example edge_of_chaos -- --bias-variance 0.3 --depths 10,20,40
//! ```
//!
//! Writes `report.json`, `trainability.svg` (the heatmap with the 6·ξ_c line) and
//! `depth_scales.svg` (ξ_c, ξ_∇ and χ₁ against σ_w²) into `target/gradflow/edge_of_chaos/`
//! (or `--out DIR`).

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use gradflow::activation::Tanh;
use gradflow::data::digits_split;
use gradflow::init::{Normal, Zeros};
use gradflow::optim::SgdConfig;
use gradflow::report::plot::{ChartSpec, HeatmapSpec, Scale, Series, heatmap, line_chart};
use gradflow::theory::{MeanField, Propagation, critical_weight_variance};
use gradflow::{Error, Network, Result, Sequential};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

const EXAMPLE: &str = "edge_of_chaos";

/// Trainability of deep tanh networks over a (σ_w², depth) grid, with the mean-field depth
/// scale 6·ξ_c drawn over it (Schoenholz et al. 2017, fig. 5).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Weight variances σ_w² (the columns; W ~ N(0, σ_w²/n)), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.75,1,1.25,1.5,1.75,2,2.5,3,3.5,4,5")]
    weight_variances: Vec<f64>,
    /// Bias variance σ_b² (b ~ N(0, σ_b²)); Schoenholz et al.'s figure uses 0.05.
    #[arg(long, default_value_t = 0.05)]
    bias_variance: f64,
    /// Depths (hidden layers; the rows), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20,40")]
    depths: Vec<usize>,
    /// Units per hidden layer (the digits have 64 features).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// SGD steps per network.
    #[arg(long, default_value_t = 400)]
    steps: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// SGD learning rate (momentum 0.9). Schoenholz et al. use 10⁻³; at 0.005 the 40-layer
    /// networks do not train even at the edge of chaos within 400 steps, at 0.0025 they diverge.
    #[arg(long, default_value_t = 0.001)]
    lr: f64,
    /// A denser grid (σ_w² from 0.5 to 5 in steps of 0.25, depths 4 to 64) and 600 steps:
    /// several minutes even with --release.
    #[arg(long)]
    fine: bool,
    /// Seed of the weights (one per network, derived from it), the split and the minibatches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (default: target/gradflow/edge_of_chaos/).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn validate(args: &mut Args) -> Result<()> {
    if args.fine {
        args.weight_variances = (2..=20).map(|i| i as f64 * 0.25).collect();
        args.depths = vec![4, 6, 8, 12, 16, 24, 32, 48, 64];
        args.steps = args.steps.max(600);
    }
    let component = "edge_of_chaos example";
    if args.weight_variances.is_empty() || args.weight_variances.iter().any(|&v| !(v > 0.0 && v.is_finite()))
    {
        return Err(Error::config(component, "--weight-variances", "list positive, finite variances"));
    }
    if args.depths.is_empty() || args.depths.contains(&0) {
        return Err(Error::config(component, "--depths", "list depths of at least 1"));
    }
    for (field, value) in [("--width", args.width), ("--steps", args.steps), ("--batch", args.batch)] {
        if value == 0 {
            return Err(Error::config(component, field, "must be at least 1"));
        }
    }
    args.weight_variances.sort_by(f64::total_cmp);
    args.depths.sort_unstable();
    args.depths.dedup();
    Ok(())
}

/// One trained network.
struct Cell {
    depth: usize,
    weight_variance: f64,
    accuracy: Option<f64>,
    final_loss: f64,
    diverged: bool,
}

fn run(mut args: Args) -> Result<()> {
    validate(&mut args)?;
    let started = Instant::now();
    let out = common::Output::new(EXAMPLE, args.out.clone())?;
    let (train, _) = digits_split::<f32>(0.25, args.seed)?;
    let classes = train.targets.classes().expect("digits have classes");
    let sb = args.bias_variance;
    let critical = critical_weight_variance(&Tanh, sb)?;
    println!("edge_of_chaos: which deep tanh networks can be trained, and does mean-field theory say so?");
    println!(
        "seed {} · depth × [Linear({n}→{n}) + tanh] + Linear({n}→10) · W ~ N(0, σ_w²/{n}), b ~ N(0, {sb}) · f32",
        args.seed,
        n = args.width
    );
    println!(
        "data: 8×8 digits, {} training examples · SGD lr {} momentum 0.9, batch {}, {} steps per network",
        train.len(),
        args.lr,
        args.batch,
        args.steps
    );
    println!(
        "the edge of chaos (χ₁ = 1) at σ_b² = {sb}: σ_w² = {}",
        critical.map_or("none found".into(), |c| format!("{c:.3}"))
    );
    println!(
        "Each cell: training accuracy after the steps (chance 10%). Theory: networks train when depth ≲ 6·ξ_c\n\
         (Schoenholz et al. 2017), ξ_c the depth over which two inputs' correlation forgets its start.\n"
    );

    // Mean-field depth scales on the grid and on a fine line for the overlay.
    let theory: Vec<Propagation> =
        args.weight_variances.iter().map(|&sw| propagation(sw, sb)).collect::<Result<_>>()?;

    let mut cells = Vec::new();
    for (d, &depth) in args.depths.iter().enumerate() {
        for (w, &sw) in args.weight_variances.iter().enumerate() {
            let seed = args.seed.wrapping_mul(1_000_003).wrapping_add((d * 1000 + w) as u64);
            cells.push(train_one(&args, depth, sw, seed, &train.inputs, classes)?);
        }
    }
    print_table(&args, &theory, &cells);
    let summary = agreement(&args, &theory, &cells);
    println!("\n{summary}");

    // The theory on a line of 61 weight variances, for the figures.
    let (lo, hi) = (args.weight_variances[0], *args.weight_variances.last().expect("non-empty"));
    let line: Vec<(f64, Propagation)> = (0..=60)
        .map(|i| lo + (hi - lo) * i as f64 / 60.0)
        .map(|sw| Ok((sw, propagation(sw, sb)?)))
        .collect::<Result<_>>()?;
    let mut written = vec![plot_heatmap(&args, &out, &cells, &line)?, plot_scales(&args, &out, &line)?];
    written.push(out.write_json("report.json", &report(&args, critical, &theory, &cells, &summary))?);
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned()))
        .collect();
    println!(
        "\nwrote {} into {} ({})",
        names.join(", "),
        out.dir().display(),
        common::seconds(started.elapsed())
    );
    Ok(())
}

/// The mean-field picture at (σ_w², σ_b²); tanh always has a finite fixed point.
fn propagation(sw: f64, sb: f64) -> Result<Propagation> {
    // 10⁻⁹ is plenty for a figure and faster than the default 10⁻¹².
    let field = MeanField::new(&Tanh, sw, sb)?.with_tolerance(1e-9)?;
    field
        .propagation()?
        .ok_or_else(|| Error::config(EXAMPLE, "--weight-variances", format!("no finite q* at σ_w² = {sw}")))
}

fn train_one(
    args: &Args,
    depth: usize,
    sw: f64,
    seed: u64,
    inputs: &Array2<f32>,
    classes: &[usize],
) -> Result<Cell> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = args.width;
    let weights = Normal::new(0.0, (sw / n as f64).sqrt())?;
    let biases = Normal::new(0.0, args.bias_variance.sqrt())?;
    let builder =
        Sequential::<f32>::builder(inputs.ncols()).init(weights).bias_init(biases).repeat(depth, n, Tanh);
    // The read-out layer: variance 1/n, no bias, the same for every network.
    let model = builder
        .init(Normal::new(0.0, (1.0 / n as f64).sqrt())?)
        .bias_init(Zeros)
        .linear(10)
        .build(&mut rng)?;
    let mut net = Network::new(model);
    let mut sgd = SgdConfig::new(args.lr).momentum(0.9).build::<f32>()?;
    let run = common::train_steps(&mut net, &mut sgd, inputs, classes, args.steps, args.batch, &mut rng)?;
    let accuracy = if run.diverged { None } else { common::eval_accuracy(&mut net, inputs, classes)? };
    let tail = &run.losses[run.losses.len().saturating_sub(20)..];
    let final_loss = tail.iter().sum::<f64>() / tail.len().max(1) as f64;
    Ok(Cell { depth, weight_variance: sw, accuracy, final_loss, diverged: run.diverged })
}

fn print_table(args: &Args, theory: &[Propagation], cells: &[Cell]) {
    let mut header = vec!["σ_w²".to_string(), "χ₁".to_string(), "6·ξ_c".to_string()];
    header.extend(args.depths.iter().map(|d| format!("depth {d}")));
    let rows: Vec<Vec<String>> = args
        .weight_variances
        .iter()
        .zip(theory)
        .map(|(&sw, p)| {
            let mut row = vec![format!("{sw:.3}"), format!("{:.3}", p.chi_1), format!("{:.1}", 6.0 * p.xi_c)];
            for &depth in &args.depths {
                let cell =
                    cells.iter().find(|c| c.depth == depth && c.weight_variance == sw).expect("trained");
                let predicted = (depth as f64) <= 6.0 * p.xi_c;
                let mark = if predicted { "" } else { " ·" };
                row.push(match cell.accuracy {
                    Some(a) => format!("{:.0}%{mark}", 100.0 * a),
                    None => format!("diverged{mark}"),
                });
            }
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let align = "r".repeat(header.len());
    print!("{}", common::table(&align, &header, &rows));
    println!("(· marks cells deeper than 6·ξ_c, where the theory predicts no training)");
}

/// Training accuracy above which a network counts as trained.
const TRAINED: f64 = 0.5;

/// How often "trained" (accuracy above 50%) and "depth ≤ 6·ξ_c" agree.
fn agreement(args: &Args, theory: &[Propagation], cells: &[Cell]) -> String {
    let mut agree = 0;
    for cell in cells {
        let index =
            args.weight_variances.iter().position(|&w| w == cell.weight_variance).expect("on the grid");
        let predicted = (cell.depth as f64) <= 6.0 * theory[index].xi_c;
        let trained = cell.accuracy.is_some_and(|a| a > TRAINED);
        agree += usize::from(predicted == trained);
    }
    format!(
        "theory and training agree on {agree} of {} networks (trained: training accuracy above {:.0}%; predicted: depth ≤ 6·ξ_c)",
        cells.len(),
        100.0 * TRAINED
    )
}

fn plot_heatmap(
    args: &Args,
    out: &common::Output,
    cells: &[Cell],
    line: &[(f64, Propagation)],
) -> Result<PathBuf> {
    // Rows from the deepest (top) to the shallowest, columns by σ_w².
    let depths: Vec<usize> = args.depths.iter().rev().copied().collect();
    let values = Array2::from_shape_fn((depths.len(), args.weight_variances.len()), |(r, c)| {
        let cell = cells
            .iter()
            .find(|x| x.depth == depths[r] && x.weight_variance == args.weight_variances[c])
            .expect("every cell trained");
        cell.accuracy.unwrap_or(f64::NAN)
    });
    let rows: Vec<String> = depths.iter().map(|d| d.to_string()).collect();
    // The overlay: 6·ξ_c mapped to fractional columns and rows (interpolated between the
    // grid's σ_w² and depths).
    let points: Vec<(f64, f64)> = line
        .iter()
        .map(|(sw, p)| (fractional(&args.weight_variances, *sw), fractional_row(&depths, 6.0 * p.xi_c)))
        .collect();
    let spec = HeatmapSpec::new(format!(
        "Training accuracy of deep tanh networks after {} SGD steps (σ_b² = {})",
        args.steps, args.bias_variance
    ))
    .x_label("σ_w² (weight variance × fan-in)")
    .y_label("depth (hidden layers)")
    .value_label("training accuracy (grey: diverged)")
    .line("6·ξ_c (mean-field theory)", points)
    .size(900, 520);
    let columns: Vec<f64> = args.weight_variances.clone();
    let path = out.path("trainability.svg");
    heatmap(&path, &spec, &rows, &columns, values.view())?;
    Ok(path)
}

/// The fractional index of `x` among increasing `grid` values (linear between neighbours,
/// extrapolated beyond the ends).
fn fractional(grid: &[f64], x: f64) -> f64 {
    if grid.len() == 1 {
        return if x == grid[0] { 0.0 } else { f64::NAN };
    }
    let i = grid.windows(2).position(|w| x <= w[1]).unwrap_or(grid.len() - 2);
    i as f64 + (x - grid[i]) / (grid[i + 1] - grid[i])
}

/// The fractional row of depth `depth` for rows listed from the deepest down (interpolated in
/// log depth: the default depths double from row to row).
fn fractional_row(depths_descending: &[usize], depth: f64) -> f64 {
    let ascending: Vec<f64> = depths_descending.iter().rev().map(|&d| (d as f64).ln()).collect();
    let from_bottom = fractional(&ascending, depth.ln());
    (depths_descending.len() - 1) as f64 - from_bottom
}

fn plot_scales(args: &Args, out: &common::Output, line: &[(f64, Propagation)]) -> Result<PathBuf> {
    let xi_c: Vec<(f64, f64)> = line.iter().map(|(sw, p)| (*sw, 6.0 * p.xi_c)).collect();
    let xi_grad: Vec<(f64, f64)> = line.iter().map(|(sw, p)| (*sw, 6.0 * p.xi_gradient)).collect();
    let spec =
        ChartSpec::new(format!("Mean-field depth scales of tanh networks (σ_b² = {})", args.bias_variance))
            .x_label("σ_w²")
            .y_label("depth")
            .y_scale(Scale::Log10);
    let path = out.path("depth_scales.svg");
    line_chart(
        &path,
        &spec,
        &[Series::new("6·ξ_c (correlation)", xi_c), Series::new("6·ξ_∇ = 6/|ln χ₁| (gradient)", xi_grad)],
    )?;
    Ok(path)
}

fn report(
    args: &Args,
    critical: Option<f64>,
    theory: &[Propagation],
    cells: &[Cell],
    summary: &str,
) -> serde_json::Value {
    let columns: Vec<serde_json::Value> = args
        .weight_variances
        .iter()
        .zip(theory)
        .map(|(&sw, p)| json!({ "weight_variance": sw, "theory": p }))
        .collect();
    let networks: Vec<serde_json::Value> = cells
        .iter()
        .map(|c| {
            json!({
                "depth": c.depth,
                "weight_variance": c.weight_variance,
                "training_accuracy": c.accuracy,
                "final_loss": if c.final_loss.is_finite() { Some(c.final_loss) } else { None },
                "diverged": c.diverged,
            })
        })
        .collect();
    json!({
        "example": EXAMPLE,
        "seed": args.seed,
        "bias_variance": args.bias_variance,
        "critical_weight_variance": critical,
        "width": args.width,
        "depths": args.depths,
        "steps": args.steps,
        "batch": args.batch,
        "optimizer": {"name": "sgd", "lr": args.lr, "momentum": 0.9},
        "dataset": "digits-8x8 (training split, 75%)",
        "float": "f32",
        "trained_threshold": TRAINED,
        "agreement": summary,
        "columns": columns,
        "networks": networks,
    })
}
