//! [`Rnn`]: the Elman recurrent layer, `h_t = φ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)`.

use rand::RngCore;

use super::engine::{CellKind, Engine, EngineConfig};
use super::{Nonlinearity, RecurrentInit, RecurrentInits, recurrent_via_engine};
use crate::vectorize::vectorized;
use crate::{Float, Result};

/// An Elman RNN, PyTorch's `nn.RNN`: at every step
///
/// `h_t = φ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)`, with φ = tanh (default) or ReLU.
///
/// # Parameters
/// `weight_ih_l0` `(hidden, input)`, `weight_hh_l0` `(hidden, hidden)`, `bias_ih_l0`,
/// `bias_hh_l0` `(hidden)`; then `…_l1` with input `hidden` for a second stacked layer.
///
/// # Gradients
/// With `δ_t = dL/dh_t ⊙ φ'(·)`: `dW_ih += Σ_t δ_tᵀ x_t`, `dW_hh += Σ_t δ_tᵀ h_{t−1}`,
/// `db_ih = db_hh += Σ_t δ_t`, `dL/dx_t = δ_t W_ih`, and `dL/dh_{t−1} += δ_t W_hh` — the
/// recurrence through which the gradient decays (or explodes) with the time lag.
///
/// ```
/// use gradflow::recurrent::{Nonlinearity, Recurrent, RnnConfig};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let rnn = RnnConfig::new(3, 16).nonlinearity(Nonlinearity::Relu).build::<f32>(&mut rng).unwrap();
/// assert_eq!(rnn.describe(), "RNN(3→16, nonlinearity=relu)");
/// assert_eq!(rnn.num_parameters(), 16 * 3 + 16 * 16 + 16 + 16);
/// ```
#[derive(Clone)]
pub struct Rnn<F: Float> {
    engine: Engine<F>,
}

recurrent_via_engine!(Rnn);

/// How to build an [`Rnn`]. Defaults are PyTorch's: tanh, one layer, with biases,
/// U(±1/√hidden) initialization.
#[derive(Debug, Clone, PartialEq)]
pub struct RnnConfig {
    /// Input features I (`input_size`).
    pub input_size: usize,
    /// Hidden units H (`hidden_size`).
    pub hidden_size: usize,
    /// Stacked layers (`num_layers`, default 1).
    pub num_layers: usize,
    /// The non-linearity (default tanh).
    pub nonlinearity: Nonlinearity,
    /// Whether there are biases (default `true`).
    pub bias: bool,
    /// How `weight_hh` is initialized (default PyTorch's).
    pub recurrent_init: RecurrentInit,
    /// Initializers of `weight_ih` and `weight_hh` and gate biases by name (default: none,
    /// PyTorch's initialization).
    pub inits: RecurrentInits,
}

impl RnnConfig {
    /// PyTorch's defaults for `nn.RNN(input_size, hidden_size)`.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        RnnConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            nonlinearity: Nonlinearity::Tanh,
            bias: true,
            recurrent_init: RecurrentInit::PytorchDefault,
            inits: RecurrentInits::default(),
        }
    }

    /// Sets the non-linearity.
    pub fn nonlinearity(mut self, nonlinearity: Nonlinearity) -> Self {
        self.nonlinearity = nonlinearity;
        self
    }

    /// Sets the number of stacked layers.
    pub fn num_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }

    /// Sets whether there are biases.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets how `weight_hh` is initialized.
    pub fn recurrent_init(mut self, init: RecurrentInit) -> Self {
        self.recurrent_init = init;
        self
    }

    /// Sets the initializer of `weight_ih`, each gate's block drawn with fans `(input, hidden)`
    /// (see [`RecurrentInits`]), e.g. [`crate::init::GlorotUniform`].
    pub fn input_init(mut self, init: impl crate::init::Initializer + 'static) -> Self {
        self.inits = self.inits.input(init);
        self
    }

    /// Sets the initializer of `weight_hh`, each gate's `(hidden, hidden)` block drawn
    /// separately (see [`RecurrentInits`]), e.g. [`crate::init::Orthogonal`] or
    /// [`crate::init::Normal`] for N(0, g²/H); refused together with a `recurrent_init` scheme.
    pub fn hidden_init(mut self, init: impl crate::init::Initializer + 'static) -> Self {
        self.inits = self.inits.hidden(init);
        self
    }

    /// Sets the bias of the gate called `gate` (PyTorch's letters; see [`RecurrentInits`]).
    pub fn gate_bias(mut self, gate: &str, value: f64) -> Self {
        self.inits = self.inits.gate_bias(gate, value);
        self
    }

    /// Builds the layer, drawing its weights from `rng`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the field when a size is zero or an
    /// initialization setting is not finite.
    pub fn build<F: Float>(&self, rng: &mut dyn RngCore) -> Result<Rnn<F>> {
        let config = EngineConfig {
            cell: CellKind::Rnn(self.nonlinearity),
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            num_layers: self.num_layers,
            bias: self.bias,
            recurrent_init: self.recurrent_init,
            forget_bias: None,
            inits: self.inits.clone(),
        };
        Ok(Rnn { engine: Engine::new(config, rng)? })
    }
}

impl<F: Float> Rnn<F> {
    /// `nn.RNN(input_size, hidden_size)` with PyTorch's defaults.
    pub fn new(input_size: usize, hidden_size: usize, rng: &mut dyn RngCore) -> Result<Self> {
        RnnConfig::new(input_size, hidden_size).build(rng)
    }
}

/// One step forward: `h = φ(pre)` for `pre = W_ih x + b_ih + W_hh h_{t−1} + b_hh` `(B, H)`.
pub(super) fn forward_step<F: Float>(nonlinearity: Nonlinearity, pre: &[F], h: &mut [F]) {
    match nonlinearity {
        Nonlinearity::Tanh => vectorized(
            #[inline(always)]
            || h.iter_mut().zip(pre).for_each(|(h, &a)| *h = a.fast_tanh()),
        ),
        // `a <= 0` is false for NaN, which therefore propagates instead of becoming 0.
        Nonlinearity::Relu => {
            h.iter_mut().zip(pre).for_each(|(h, &a)| *h = if a <= F::zero() { F::zero() } else { a })
        }
    }
}

/// One step backward: `d_pre = dh ⊙ φ'`, with φ' from the output h: `1 − h²` for tanh,
/// `[h > 0]` for ReLU (0 at 0, as PyTorch).
pub(super) fn backward_step<F: Float>(nonlinearity: Nonlinearity, h: &[F], dh: &[F], d_pre: &mut [F]) {
    let rows = d_pre.iter_mut().zip(h).zip(dh);
    match nonlinearity {
        Nonlinearity::Tanh => vectorized(
            #[inline(always)]
            || rows.for_each(|((d, &h), &g)| *d = g * (F::one() - h * h)),
        ),
        Nonlinearity::Relu => vectorized(
            #[inline(always)]
            || rows.for_each(|((d, &h), &g)| *d = if h > F::zero() { g } else { F::zero() }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use crate::recurrent::{Readout, Recurrent, SequenceLayer};
    use ndarray::{Array2, Array3, IxDyn, array};
    use rand::SeedableRng;

    fn set(rnn: &mut Rnn<f64>, name: &str, value: ndarray::ArrayD<f64>) {
        rnn.set_parameter(name, value.view()).unwrap();
    }

    #[test]
    fn two_steps_match_hand_computation() {
        // H = 1, I = 1: h1 = tanh(0.5·1 + 0.1 + 0.8·0 + 0.2), h2 = tanh(0.5·(−1) + 0.1 + 0.8·h1 + 0.2).
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut rnn = Rnn::<f64>::new(1, 1, &mut rng).unwrap();
        set(&mut rnn, "weight_ih_l0", array![[0.5]].into_dyn());
        set(&mut rnn, "weight_hh_l0", array![[0.8]].into_dyn());
        set(&mut rnn, "bias_ih_l0", array![0.1].into_dyn());
        set(&mut rnn, "bias_hh_l0", array![0.2].into_dyn());
        let x = Array3::from_shape_vec((2, 1, 1), vec![1.0, -1.0]).unwrap();
        rnn.forward_sequence(x.view(), None, Mode::Train).unwrap();
        let h1 = (0.5f64 + 0.1 + 0.2).tanh();
        let h2 = (-0.5 + 0.1 + 0.8 * h1 + 0.2).tanh();
        let out = rnn.outputs().unwrap();
        assert!((out[[0, 0, 0]] - h1).abs() < 1e-15 && (out[[1, 0, 0]] - h2).abs() < 1e-15);

        // L = h2: dL/dh1 = (1 − h2²)·0.8, dL/dW_hh = (1 − h2²)·h1 + (1 − h1²)·dL/dh1·0.
        rnn.backward_sequence(array![[[0.0]], [[1.0]]].view(), None, None).unwrap();
        let d2 = 1.0 - h2 * h2;
        let dh1 = d2 * 0.8;
        let d1 = dh1 * (1.0 - h1 * h1);
        let grads: Vec<(String, f64)> = {
            let mut v = Vec::new();
            rnn.visit_parameters(&mut |p| {
                v.push((p.name.to_string(), p.grad[IxDyn(&[0; 2][..p.grad.ndim()])]))
            });
            v
        };
        let (x1, x2) = (1.0, -1.0);
        let expected = [d1 * x1 + d2 * x2, d2 * h1, d1 + d2, d1 + d2];
        for ((name, got), want) in grads.iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{name}: {got} vs {want}");
        }
        assert!((rnn.grad_hidden(0).unwrap()[[0, 0, 0]] - dh1).abs() < 1e-15);
        assert!((rnn.grad_initial_state().unwrap().hidden[[0, 0, 0]] - d1 * 0.8).abs() < 1e-15);
    }

    #[test]
    fn relu_passes_gradient_only_through_active_units() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut rnn = RnnConfig::new(1, 2).nonlinearity(Nonlinearity::Relu).build::<f64>(&mut rng).unwrap();
        set(&mut rnn, "weight_ih_l0", array![[1.0], [-1.0]].into_dyn());
        set(&mut rnn, "weight_hh_l0", Array2::zeros((2, 2)).into_dyn());
        set(&mut rnn, "bias_ih_l0", array![0.0, 0.0].into_dyn());
        set(&mut rnn, "bias_hh_l0", array![0.0, 0.0].into_dyn());
        rnn.forward_sequence(array![[[2.0]]].view(), None, Mode::Train).unwrap();
        assert_eq!(rnn.outputs().unwrap(), array![[[2.0, 0.0]]]);
        rnn.backward_sequence(array![[[1.0, 1.0]]].view(), None, None).unwrap();
        assert_eq!(rnn.grad_input().unwrap(), array![[[1.0]]]); // only unit 0 is active
    }

    #[test]
    fn gradients_pass_finite_difference_check() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for nonlinearity in [Nonlinearity::Tanh, Nonlinearity::Relu] {
            let rnn = RnnConfig::new(3, 4).nonlinearity(nonlinearity).build::<f64>(&mut rng).unwrap();
            let mut layer = SequenceLayer::new(rnn, Readout::EveryStep);
            let x = Array2::from_shape_fn((3, 4 * 3), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 3.5 - 1.0);
            let report = check_layer(&mut layer, &x, GradCheckConfig::default()).unwrap();
            assert_eq!(report.tensors.len(), 5);
            report.within(1e-6).unwrap();
        }
    }
}
