//! The adding problem: the generator's contract (one marker per half, target = the sum of the
//! marked values, baseline MSE 1/6) and a short run in which an LSTM learns it.

use approx::abs_diff_eq;
use gradflow::data::{ADDING_PROBLEM_BASELINE_MSE, Dataset, TargetData, adding_problem};
use gradflow::loss::Mse;
use gradflow::optim::AdamConfig;
use gradflow::recurrent::{LstmConfig, Readout, SequenceModel};
use gradflow::train::{Clip, Progress, TrainConfig, Trainer, evaluate};
use gradflow::{Linear, Network, Sequential};
use rand::SeedableRng;

fn targets(data: &Dataset<f64>) -> Vec<f64> {
    match &data.targets {
        TargetData::Values(v) => v.column(0).to_vec(),
        TargetData::Classes(_) => panic!("the adding problem has value targets"),
    }
}

/// The marked steps of every row.
fn markers(data: &Dataset<f64>, length: usize) -> Vec<Vec<usize>> {
    data.inputs
        .rows()
        .into_iter()
        .map(|row| (0..length).filter(|&t| row[2 * t + 1] != 0.0).collect())
        .collect()
}

#[test]
fn every_sequence_has_one_marker_in_each_half_and_the_sum_as_target() {
    for length in [2, 7, 10, 100] {
        let data = adding_problem::<f64>(300, length, 11).unwrap();
        assert_eq!(data.inputs.dim(), (300, 2 * length));
        let half = length / 2;
        let targets = targets(&data);
        for ((row, marked), target) in data.inputs.rows().into_iter().zip(markers(&data, length)).zip(targets)
        {
            assert_eq!(marked.len(), 2, "length {length}: markers at {marked:?}");
            assert!(marked[0] < half && marked[1] >= half, "length {length}: markers at {marked:?}");
            for t in 0..length {
                assert!(row[2 * t + 1] == 0.0 || row[2 * t + 1] == 1.0);
                assert!((0.0..1.0).contains(&row[2 * t]), "value {} outside [0, 1)", row[2 * t]);
            }
            assert_eq!(target, row[2 * marked[0]] + row[2 * marked[1]]);
        }
    }
}

#[test]
fn marker_positions_cover_each_half() {
    // T = 10: the first marker is drawn from steps 0..5, the second from 5..10; over 2000
    // sequences every step is marked, each with a frequency near 1/5 of its half.
    let data = adding_problem::<f64>(2000, 10, 5).unwrap();
    let mut counts = [0usize; 10];
    for marked in markers(&data, 10) {
        for t in marked {
            counts[t] += 1;
        }
    }
    for (t, &c) in counts.iter().enumerate() {
        // Binomial(2000, 0.2): mean 400, standard deviation ≈ 18.
        assert!((300..500).contains(&c), "step {t} marked {c} times: {counts:?}");
    }
}

#[test]
fn predicting_one_has_the_baseline_mse_of_one_sixth() {
    // The target is the sum of two U[0, 1) values: mean 1, variance 2/12. Over 20000 sequences
    // the standard error of the sample variance is ≈ 0.0014 (excess kurtosis of the triangular
    // distribution −0.6), so 0.006 is a four-sigma band.
    let data = adding_problem::<f64>(20000, 6, 2).unwrap();
    let t = targets(&data);
    let n = t.len() as f64;
    let mean = t.iter().sum::<f64>() / n;
    let mse_of_one = t.iter().map(|v| (v - 1.0) * (v - 1.0)).sum::<f64>() / n;
    assert!(abs_diff_eq!(mean, 1.0, epsilon = 0.01), "mean target {mean}");
    assert!(
        abs_diff_eq!(mse_of_one, ADDING_PROBLEM_BASELINE_MSE, epsilon = 0.006),
        "MSE of predicting 1: {mse_of_one}"
    );
    assert_eq!(ADDING_PROBLEM_BASELINE_MSE, 1.0 / 6.0);
}

#[test]
fn same_seed_same_data_in_f32_and_f64() {
    let a = adding_problem::<f64>(50, 20, 9).unwrap();
    assert_eq!(a, adding_problem::<f64>(50, 20, 9).unwrap());
    assert_ne!(a, adding_problem::<f64>(50, 20, 10).unwrap());
    let b = adding_problem::<f32>(50, 20, 9).unwrap();
    assert!(
        abs_diff_eq!(a.inputs, b.inputs.mapv(f64::from), epsilon = 1e-7),
        "f32 inputs differ from f64 beyond rounding"
    );
}

#[test]
fn invalid_sizes_are_refused_naming_the_field() {
    let err = adding_problem::<f32>(0, 10, 0).unwrap_err().to_string();
    assert!(err.contains("sequences"), "{err}");
    let err = adding_problem::<f32>(10, 0, 0).unwrap_err().to_string();
    assert!(err.contains("length"), "{err}");
}

#[test]
fn lstm_learns_a_short_adding_problem_well_below_the_baseline() {
    // T = 10, 400 steps of Adam: a small LSTM with forget-gate bias 1 learns to add the marked
    // values, far below the 1/6 of a model that ignores the markers.
    let length = 10;
    let train = adding_problem::<f32>(32 * 40, length, 1).unwrap();
    let test = adding_problem::<f32>(500, length, 2).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let lstm = LstmConfig::new(2, 16).forget_bias(1.0).build::<f32>(&mut rng).unwrap();
    let head = Linear::new(16, 1, &mut rng).unwrap();
    let mut model = Sequential::new();
    model.push(SequenceModel::new(lstm, Readout::LastStep, head).unwrap());
    let mut net = Network::new(model);
    let loss = Mse::default();
    let before = evaluate(&mut net, &loss, &test, 250).unwrap().loss;
    let mut adam = AdamConfig::new(1e-2).build::<f32>().unwrap();
    let config = TrainConfig::new(10, 32).seed(4).clip(Clip::Norm(1.0)).progress(Progress::Silent);
    Trainer::new(config).unwrap().fit(&mut net, &mut adam, &loss, &train, None).unwrap();
    let after = evaluate(&mut net, &loss, &test, 250).unwrap().loss;
    assert!(before > 0.5 * ADDING_PROBLEM_BASELINE_MSE, "untrained test MSE {before}");
    assert!(after < 0.2 * ADDING_PROBLEM_BASELINE_MSE, "test MSE {before} → {after}");
}
