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
