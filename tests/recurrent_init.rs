//! Initialization of recurrent layers: PyTorch's default, orthogonal and identity (IRNN)
//! recurrent weights.

use approx::abs_diff_eq;
use gradflow::Mode;
use gradflow::recurrent::{
    GruConfig, LstmConfig, Nonlinearity, Recurrent, RecurrentInit, RecurrentState, RnnConfig,
};
use ndarray::{Array2, Array3, ArrayD, Axis, Ix2, s};
use rand::SeedableRng;

fn parameters(layer: &dyn Recurrent<f64>) -> Vec<(&'static str, ArrayD<f64>)> {
    let mut out = Vec::new();
    layer.visit_parameters(&mut |p| out.push((p.name, p.value.to_owned())));
    out
}

fn weight_hh(layer: &dyn Recurrent<f64>) -> Array2<f64> {
    let params = parameters(layer);
    params.into_iter().find(|(n, _)| *n == "weight_hh_l0").unwrap().1.into_dimensionality::<Ix2>().unwrap()
}

#[test]
fn default_draws_every_parameter_from_pytorch_bound() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let lstm = LstmConfig::new(5, 16).num_layers(2).build::<f64>(&mut rng).unwrap();
    let bound = 1.0 / 16f64.sqrt(); // U(−1/√hidden_size, 1/√hidden_size)
    for (name, value) in parameters(&lstm) {
        let max = value.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(max <= bound && max > 0.9 * bound, "{name}: max |w| = {max}");
        let mean = value.mean().unwrap();
        assert!(mean.abs() < 0.2 * bound, "{name}: mean {mean}");
    }
}

#[test]
fn orthogonal_recurrent_weights_are_orthogonal_per_gate_and_leave_the_rest_unchanged() {
    let build = |init| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        GruConfig::new(3, 8).num_layers(2).recurrent_init(init).build::<f64>(&mut rng)
    };
    let default = build(RecurrentInit::PytorchDefault).unwrap();
    let orthogonal = build(RecurrentInit::Orthogonal { gain: 2.0 }).unwrap();
    let w = weight_hh(&orthogonal);
    for k in 0..3 {
        let block = w.slice(s![k * 8..(k + 1) * 8, ..]);
        let gram = block.t().dot(&block);
        assert!(abs_diff_eq!(gram, Array2::<f64>::eye(8) * 4.0, epsilon = 1e-12), "gate {k}: QᵀQ = {gram}");
    }
    // Same seed: every other parameter, of both stacked layers, is the same as with the
    // default initialization.
    for ((name, a), (_, b)) in parameters(&default).iter().zip(parameters(&orthogonal).iter()) {
        if name.starts_with("weight_hh") {
            assert_ne!(a, b, "{name}");
        } else {
            assert_eq!(a, b, "{name}");
        }
    }
    assert!(build(RecurrentInit::Orthogonal { gain: f64::INFINITY }).is_err());
}

#[test]
fn identity_initialized_relu_rnn_carries_state_and_gradient_unchanged() {
    // IRNN (Le, Jaitly & Hinton 2015): W_hh = I, zero biases; with zero input a positive state
    // is copied from step to step and dL/dh₀ equals dL/dh_T.
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut irnn = RnnConfig::new(2, 3)
        .nonlinearity(Nonlinearity::Relu)
        .recurrent_init(RecurrentInit::Identity { scale: 1.0 })
        .build::<f64>(&mut rng)
        .unwrap();
    assert_eq!(weight_hh(&irnn), Array2::<f64>::eye(3));
    assert!(
        parameters(&irnn)
            .iter()
            .filter(|(n, _)| n.starts_with("bias"))
            .all(|(_, b)| b.iter().all(|&v| v == 0.0))
    );

    let t_len = 50;
    let h0 = Array3::from_shape_vec((1, 1, 3), vec![0.5, 1.0, 2.0]).unwrap();
    let state = RecurrentState { hidden: h0.clone(), cell: None };
    irnn.forward_sequence(Array3::zeros((t_len, 1, 2)).view(), Some(&state), Mode::Train).unwrap();
    for h in irnn.outputs().unwrap().outer_iter() {
        assert_eq!(h, h0.index_axis(Axis(0), 0));
    }
    let mut grad = Array3::zeros((t_len, 1, 3));
    grad.index_axis_mut(Axis(0), t_len - 1).assign(&ndarray::array![[0.3, -0.2, 0.7]]);
    irnn.backward_sequence(grad.view(), None, None).unwrap();
    assert_eq!(
        irnn.grad_initial_state().unwrap().hidden.index_axis(Axis(0), 0),
        ndarray::array![[0.3, -0.2, 0.7]]
    );
    assert!(irnn.time_step_grad_norms().windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn identity_on_gated_cells_sets_each_gate_block() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let lstm = LstmConfig::new(2, 4)
        .recurrent_init(RecurrentInit::Identity { scale: 0.5 })
        .forget_bias(1.0)
        .build::<f64>(&mut rng)
        .unwrap();
    let w = weight_hh(&lstm);
    for k in 0..4 {
        assert_eq!(w.slice(s![k * 4..(k + 1) * 4, ..]), Array2::<f64>::eye(4) * 0.5);
    }
    // The forget bias is applied after the identity scheme zeroed the biases.
    let params = parameters(&lstm);
    let bias_ih = &params[2].1;
    assert_eq!(
        bias_ih.iter().copied().collect::<Vec<_>>(),
        [0., 0., 0., 0., 1., 1., 1., 1., 0., 0., 0., 0., 0., 0., 0., 0.]
    );
}

#[test]
fn input_and_hidden_initializers_are_chosen_separately_per_gate_block() {
    use gradflow::init::{GlorotUniform, Normal, Orthogonal};
    let (input, hidden) = (6, 32);
    let build = |config: LstmConfig| config.build::<f64>(&mut rand::rngs::StdRng::seed_from_u64(4)).unwrap();
    let default = build(LstmConfig::new(input, hidden));
    let chosen = build(
        LstmConfig::new(input, hidden)
            .input_init(GlorotUniform::default())
            .hidden_init(Orthogonal::default()),
    );
    let params = parameters(&chosen);
    let w_ih = params[0].1.clone().into_dimensionality::<Ix2>().unwrap();
    // Glorot per gate block: U(±√(6/(I+H))), fans (I, H).
    let bound = (6.0 / (input + hidden) as f64).sqrt();
    for k in 0..4 {
        let block = w_ih.slice(s![k * hidden..(k + 1) * hidden, ..]);
        let max = block.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(max <= bound && max > 0.8 * bound, "gate {k}: max |w| = {max}, bound {bound}");
    }
    let w_hh = weight_hh(&chosen);
    for k in 0..4 {
        let block = w_hh.slice(s![k * hidden..(k + 1) * hidden, ..]);
        let gram = block.t().dot(&block);
        assert!(abs_diff_eq!(gram, Array2::<f64>::eye(hidden), epsilon = 1e-12), "gate {k}");
    }
    // The biases are PyTorch's draws, as without the options.
    assert_eq!(params[2..], parameters(&default)[2..]);

    // Gaussian N(0, g²/H) recurrent weights: H·Var ≈ g² = 2.25 over 4·32·32 draws (relative
    // standard error √(2/4096) ≈ 2.2%, so 10% is over four).
    let g = 1.5;
    let normal = build(
        LstmConfig::new(input, hidden).hidden_init(Normal::new(0.0, g / (hidden as f64).sqrt()).unwrap()),
    );
    let w = weight_hh(&normal);
    let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
    assert!((var * hidden as f64 / (g * g) - 1.0).abs() < 0.1, "H·Var = {}", var * hidden as f64);
}

#[test]
fn every_gate_bias_is_settable_by_name() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let h = 3;
    let lstm = LstmConfig::new(2, h).gate_bias("o", 2.0).gate_bias("i", -1.0).build::<f64>(&mut rng).unwrap();
    let params = parameters(&lstm);
    let (b_ih, b_hh) = (&params[2].1, &params[3].1);
    assert_eq!(b_ih.slice(s![0..h]).to_vec(), [-1.0; 3]);
    assert_eq!(b_ih.slice(s![3 * h..4 * h]).to_vec(), [2.0; 3]);
    assert!(b_hh.slice(s![0..h]).iter().chain(b_hh.slice(s![3 * h..4 * h]).iter()).all(|&b| b == 0.0));
    assert!(b_ih.slice(s![h..3 * h]).iter().all(|&b| b.abs() < 1.0 / (h as f64).sqrt() + 1e-12 && b != 2.0));

    let gru = GruConfig::new(2, h).gate_bias("z", -1.5).build::<f64>(&mut rng).unwrap();
    assert_eq!(parameters(&gru)[2].1.slice(s![h..2 * h]).to_vec(), [-1.5; 3]);
    let rnn = RnnConfig::new(2, h).gate_bias("h", 0.5).build::<f64>(&mut rng).unwrap();
    assert_eq!(parameters(&rnn)[2].1.iter().copied().collect::<Vec<_>>(), [0.5; 3]);

    // Errors name the layer, the field and what is wrong.
    let err = LstmConfig::new(2, h).gate_bias("x", 1.0).build::<f64>(&mut rng).unwrap_err().to_string();
    assert!(
        err.contains("LSTM") && err.contains("gate_bias") && err.contains("the gates are i, f, g, o"),
        "{err}"
    );
    let err =
        GruConfig::new(2, h).bias(false).gate_bias("r", 1.0).build::<f64>(&mut rng).unwrap_err().to_string();
    assert!(err.contains("needs bias = true"), "{err}");
    let err = RnnConfig::new(2, h)
        .recurrent_init(RecurrentInit::Orthogonal { gain: 1.0 })
        .hidden_init(gradflow::init::Orthogonal::default())
        .build::<f64>(&mut rng)
        .unwrap_err()
        .to_string();
    assert!(err.contains("hidden_init") && err.contains("not both"), "{err}");
}
