//! Finite-difference checks of backpropagation through time, in f64: every parameter, the
//! input and the initial states (h₀ and c₀), for every cell, one and two stacked layers.

use approx::relative_eq;
use gradflow::activation::Tanh;
use gradflow::gradcheck::{GradCheckConfig, check_layer};
use gradflow::recurrent::{
    GruConfig, LstmConfig, Nonlinearity, Readout, Recurrent, RecurrentState, RnnConfig, SequenceModel,
};
use gradflow::{Linear, Mode, Sequential};
use ndarray::{Array2, Array3, ArrayD};
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand_distr::StandardNormal;

const T: usize = 4;
const B: usize = 3;
const I: usize = 3;
const H: usize = 4;
const EPS: f64 = 1e-5;

fn normal3(shape: (usize, usize, usize), rng: &mut rand::rngs::StdRng) -> Array3<f64> {
    Array3::random_using(shape, StandardNormal, rng)
}

/// The scalar L = Σ R⊙outputs + Σ R_h⊙h_n (+ Σ R_c⊙c_n), with fixed random weights R.
struct Weights {
    outputs: Array3<f64>,
    final_state: RecurrentState<f64>,
}

fn loss(layer: &mut dyn Recurrent<f64>, x: &Array3<f64>, s0: &RecurrentState<f64>, w: &Weights) -> f64 {
    layer.forward_sequence(x.view(), Some(s0), Mode::Train).unwrap();
    let mut l = (&layer.outputs().unwrap() * &w.outputs).sum();
    let fin = layer.final_state().unwrap();
    l += (&fin.hidden * &w.final_state.hidden).sum();
    if let (Some(c), Some(wc)) = (&fin.cell, &w.final_state.cell) {
        l += (c * wc).sum();
    }
    l
}

/// Relative tolerance of the check; gradients below `FLOOR` are compared in absolute terms.
const TOLERANCE: f64 = 1e-6;
const FLOOR: f64 = 1e-3;

/// Every entry within |a − n| ≤ TOLERANCE · max(|a|, |n|, FLOOR) (gradcheck's relative error with
/// its default floor), which is approx's `relative_eq` with `epsilon = TOLERANCE · FLOOR` and
/// `max_relative = TOLERANCE`; a NaN fails.
fn assert_agree(layer: &str, name: &str, analytic: &[f64], numeric: &[f64]) {
    assert!(
        relative_eq!(analytic, numeric, epsilon = TOLERANCE * FLOOR, max_relative = TOLERANCE),
        "{layer}: {name}\n  analytic {analytic:?}\n  numeric  {numeric:?}"
    );
}

/// Central differences of L with respect to every entry of `values`; `eval` computes L with
/// the given values in place of the originals.
fn numeric(values: &[f64], mut eval: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut v = values.to_vec();
    (0..v.len())
        .map(|i| {
            let original = v[i];
            v[i] = original + EPS;
            let plus = eval(&v);
            v[i] = original - EPS;
            let minus = eval(&v);
            v[i] = original;
            (plus - minus) / (2.0 * EPS)
        })
        .collect()
}

/// A parameter's name, shape, value and analytic gradient.
struct Snapshot {
    name: String,
    shape: Vec<usize>,
    value: Vec<f64>,
    grad: Vec<f64>,
}

fn check(layer: &mut dyn Recurrent<f64>, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let layers = layer.num_layers();
    let with_cell = layer.has_cell_state();
    let x = normal3((T, B, I), &mut rng);
    let s0 = RecurrentState {
        hidden: normal3((layers, B, H), &mut rng) * 0.5,
        cell: with_cell.then(|| normal3((layers, B, H), &mut rng) * 0.5),
    };
    let w = Weights {
        outputs: normal3((T, B, H), &mut rng),
        final_state: RecurrentState {
            hidden: normal3((layers, B, H), &mut rng),
            cell: with_cell.then(|| normal3((layers, B, H), &mut rng)),
        },
    };

    layer.zero_grad();
    layer.forward_sequence(x.view(), Some(&s0), Mode::Train).unwrap();
    layer.backward_sequence(w.outputs.view(), Some(&w.final_state), None).unwrap();
    let grad_x: Vec<f64> = layer.grad_input().unwrap().iter().copied().collect();
    let grad_s0 = layer.grad_initial_state().unwrap().clone();
    let mut params: Vec<Snapshot> = Vec::new();
    layer.visit_parameters(&mut |p| {
        let (value, grad) = (p.value.iter().copied().collect(), p.grad.iter().copied().collect());
        params.push(Snapshot { name: p.name.to_string(), shape: p.value.shape().to_vec(), value, grad })
    });
    assert_eq!(params.len(), 4 * layers);

    let what = layer.describe();
    let xs: Vec<f64> = x.iter().copied().collect();
    let num = numeric(&xs, |v| loss(layer, &Array3::from_shape_vec((T, B, I), v.to_vec()).unwrap(), &s0, &w));
    assert_agree(&what, "input", &grad_x, &num);

    let h0: Vec<f64> = s0.hidden.iter().copied().collect();
    let num = numeric(&h0, |v| {
        let s = RecurrentState {
            hidden: Array3::from_shape_vec((layers, B, H), v.to_vec()).unwrap(),
            cell: s0.cell.clone(),
        };
        loss(layer, &x, &s, &w)
    });
    assert_agree(&what, "h0", grad_s0.hidden.as_slice().unwrap(), &num);
    if let Some(c0) = &s0.cell {
        let c0v: Vec<f64> = c0.iter().copied().collect();
        let num = numeric(&c0v, |v| {
            let s = RecurrentState {
                hidden: s0.hidden.clone(),
                cell: Some(Array3::from_shape_vec((layers, B, H), v.to_vec()).unwrap()),
            };
            loss(layer, &x, &s, &w)
        });
        assert_agree(&what, "c0", grad_s0.cell.as_ref().unwrap().as_slice().unwrap(), &num);
    }

    for Snapshot { name, shape, value, grad } in &params {
        let num = numeric(value, |v| {
            let arr = ArrayD::from_shape_vec(shape.clone(), v.to_vec()).unwrap();
            layer.set_parameter(name, arr.view()).unwrap();
            loss(layer, &x, &s0, &w)
        });
        let original = ArrayD::from_shape_vec(shape.clone(), value.clone()).unwrap();
        layer.set_parameter(name, original.view()).unwrap();
        assert_agree(&what, name, grad, &num);
    }
}

#[test]
fn rnn_tanh_gradients_match_finite_differences() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    check(&mut RnnConfig::new(I, H).build::<f64>(&mut rng).unwrap(), 10);
}

#[test]
fn rnn_relu_gradients_match_finite_differences() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut rnn = RnnConfig::new(I, H).nonlinearity(Nonlinearity::Relu).build::<f64>(&mut rng).unwrap();
    check(&mut rnn, 11);
}

#[test]
fn lstm_gradients_match_finite_differences() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    check(&mut LstmConfig::new(I, H).forget_bias(1.0).build::<f64>(&mut rng).unwrap(), 12);
}

#[test]
fn gru_gradients_match_finite_differences() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    check(&mut GruConfig::new(I, H).build::<f64>(&mut rng).unwrap(), 13);
}

#[test]
fn stacked_layers_gradients_match_finite_differences() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    check(&mut RnnConfig::new(I, H).num_layers(2).build::<f64>(&mut rng).unwrap(), 14);
    check(&mut LstmConfig::new(I, H).num_layers(2).build::<f64>(&mut rng).unwrap(), 15);
    check(&mut GruConfig::new(I, H).num_layers(3).build::<f64>(&mut rng).unwrap(), 16);
}

#[test]
fn layers_without_bias_match_finite_differences() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let lstm = LstmConfig::new(I, H).bias(false).build::<f64>(&mut rng).unwrap();
    let mut n = 0;
    lstm.visit_parameters(&mut |_| n += 1);
    assert_eq!(n, 2);
    // `check` expects four parameters per layer; check the bias-free layer through a model.
    let mut model =
        SequenceModel::new(lstm, Readout::EveryStep, Linear::<f64>::new(H, 2, &mut rng).unwrap()).unwrap();
    let x = Array2::from_shape_fn((B, T * I), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 5.5 - 1.0);
    check_layer(&mut model, &x, GradCheckConfig::default()).unwrap().within(1e-6).unwrap();
}

#[test]
fn sequence_models_pass_the_crate_gradient_check() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let x = Array2::from_shape_fn((B, T * I), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 3.5 - 1.0);
    for readout in [Readout::LastStep, Readout::EveryStep] {
        let gru = GruConfig::new(I, H).build::<f64>(&mut rng).unwrap();
        let head = Sequential::<f64>::builder(H).dense(5, Tanh).linear(2).build(&mut rng).unwrap();
        let mut model = SequenceModel::new(gru, readout, head).unwrap();
        let report =
            check_layer(&mut model, &x, GradCheckConfig { mode: Mode::Eval, ..Default::default() }).unwrap();
        // input, 4 GRU parameters, 4 head parameters.
        assert_eq!(report.tensors.len(), 9, "{report}");
        assert_eq!(report.tensors[1].name, "rnn.weight_ih_l0");
        assert_eq!(report.tensors[5].name, "head.0.weight");
        report.within(1e-6).unwrap();
    }
}
