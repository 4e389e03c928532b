//! [`Lstm`]: long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers et al.
//! 2000), as PyTorch's `nn.LSTM`.

use rand::RngCore;

use super::engine::{CellKind, Engine, EngineConfig};
use super::{RecurrentInit, RecurrentInits, recurrent_via_engine};
use crate::vectorize::vectorized;
use crate::{Float, Result};

/// An LSTM layer, PyTorch's `nn.LSTM`: at every step, with `W_i· x_t + b_i· + W_h· h_{t−1} + b_h·`
/// written `a_·`,
///
/// ```text
/// i_t = σ(a_i)    f_t = σ(a_f)    g_t = tanh(a_g)    o_t = σ(a_o)
/// c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t
/// h_t = o_t ⊙ tanh(c_t)
/// ```
///
/// # Parameters
/// `weight_ih_l0` `(4·hidden, input)` = (W_ii | W_if | W_ig | W_io) stacked by rows,
/// `weight_hh_l0` `(4·hidden, hidden)`, `bias_ih_l0` and `bias_hh_l0` `(4·hidden)`, gates in
/// PyTorch's order i, f, g, o.
///
/// # Gradients
/// With `dc_t = dL/dc_t = dc_{t+1} ⊙ f_{t+1} + dh_t ⊙ o_t ⊙ (1 − tanh² c_t)`:
/// `da_i = dc_t ⊙ g_t ⊙ i_t(1 − i_t)`, `da_f = dc_t ⊙ c_{t−1} ⊙ f_t(1 − f_t)`,
/// `da_g = dc_t ⊙ i_t ⊙ (1 − g_t²)`, `da_o = dh_t ⊙ tanh(c_t) ⊙ o_t(1 − o_t)`. Along the cell
/// path the gradient is only multiplied by the forget gate: with f ≈ 1 it survives long lags.
///
/// ```
/// use gradflow::recurrent::{LstmConfig, Recurrent};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let lstm = LstmConfig::new(3, 8).forget_bias(1.0).build::<f32>(&mut rng).unwrap();
/// let mut names = Vec::new();
/// lstm.visit_parameters(&mut |p| names.push((p.name, p.value.shape().to_vec())));
/// assert_eq!(names[0], ("weight_ih_l0", vec![32, 3]));
/// assert_eq!(names[3], ("bias_hh_l0", vec![32]));
/// ```
#[derive(Clone)]
pub struct Lstm<F: Float> {
    engine: Engine<F>,
}

recurrent_via_engine!(Lstm);

/// How to build an [`Lstm`]. Defaults are PyTorch's (one layer, biases, U(±1/√hidden)),
/// plus two options PyTorch does not have: orthogonal or identity recurrent weights and a
/// forget-gate bias.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmConfig {
    /// Input features I.
    pub input_size: usize,
    /// Hidden units H.
    pub hidden_size: usize,
    /// Stacked layers (default 1).
    pub num_layers: usize,
    /// Whether there are biases (default `true`).
    pub bias: bool,
    /// How `weight_hh` is initialized (default PyTorch's).
    pub recurrent_init: RecurrentInit,
    /// When set, the forget-gate slice of `bias_ih` (entries `H..2H`) is set to this value and
    /// that of `bias_hh` to zero, so that their sum, the forget gate's bias, is this value.
    /// 1 is the usual choice (Gers et al. 2000; Jozefowicz, Zaremba & Sutskever 2015, "An
    /// Empirical Exploration of Recurrent Network Architectures"): the forget gate starts near
    /// σ(1) ≈ 0.73 instead of 0.5, so the cell remembers, and its gradient survives, longer.
    /// Default `None` (PyTorch's initialization unchanged).
    pub forget_bias: Option<f64>,
    /// Initializers of `weight_ih` and `weight_hh` and gate biases by name (default: none,
    /// PyTorch's initialization).
    pub inits: RecurrentInits,
}

impl LstmConfig {
    /// PyTorch's defaults for `nn.LSTM(input_size, hidden_size)`.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            recurrent_init: RecurrentInit::PytorchDefault,
            forget_bias: None,
            inits: RecurrentInits::default(),
        }
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

    /// Sets the forget-gate bias (see [`LstmConfig::forget_bias`]).
    pub fn forget_bias(mut self, value: f64) -> Self {
        self.forget_bias = Some(value);
        self
    }

    /// Builds the layer, drawing its weights from `rng`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the field when a size is zero, a setting is not
    /// finite, or a forget bias is asked for a layer without biases.
    pub fn build<F: Float>(&self, rng: &mut dyn RngCore) -> Result<Lstm<F>> {
        let config = EngineConfig {
            cell: CellKind::Lstm,
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            num_layers: self.num_layers,
            bias: self.bias,
            recurrent_init: self.recurrent_init,
            forget_bias: self.forget_bias,
            inits: self.inits.clone(),
        };
        Ok(Lstm { engine: Engine::new(config, rng)? })
    }
}

impl<F: Float> Lstm<F> {
    /// `nn.LSTM(input_size, hidden_size)` with PyTorch's defaults.
    pub fn new(input_size: usize, hidden_size: usize, rng: &mut dyn RngCore) -> Result<Self> {
        LstmConfig::new(input_size, hidden_size).build(rng)
    }
}

/// One step forward. `gates` `(B, 4H)` holds the pre-activations a_i, a_f, a_g, a_o and is
/// overwritten by i, f, g, o; writes c_t, tanh(c_t) and h_t `(B, H)`. One fused pass per row,
/// compiled for the widest SIMD the CPU has ([`Float::fast_sigmoid`], [`Float::fast_tanh`]).
pub(super) fn forward_step<F: Float>(
    gates: &mut [F],
    c_prev: &[F],
    c: &mut [F],
    tanh_c: &mut [F],
    h: &mut [F],
    hidden: usize,
) {
    vectorized(
        #[inline(always)]
        || {
            for (r, g) in gates.chunks_exact_mut(4 * hidden).enumerate() {
                let row = r * hidden;
                let (gi, rest) = g.split_at_mut(hidden);
                let (gf, rest) = rest.split_at_mut(hidden);
                let (gg, go) = rest.split_at_mut(hidden);
                let go = &mut go[..hidden];
                let c_prev = &c_prev[row..][..hidden];
                let c = &mut c[row..][..hidden];
                let tanh_c = &mut tanh_c[row..][..hidden];
                let h = &mut h[row..][..hidden];
                for j in 0..hidden {
                    let i = gi[j].fast_sigmoid();
                    let f = gf[j].fast_sigmoid();
                    let g = gg[j].fast_tanh();
                    let o = go[j].fast_sigmoid();
                    (gi[j], gf[j], gg[j], go[j]) = (i, f, g, o);
                    let cell = f * c_prev[j] + i * g;
                    let tc = cell.fast_tanh();
                    c[j] = cell;
                    tanh_c[j] = tc;
                    h[j] = o * tc;
                }
            }
        },
    )
}

/// One step backward. `dc` holds dL/dc_t arriving from step t+1 and is replaced by the part
/// passed on to c_{t−1}; the total dL/dc_t is added to `grad_cell`; `d_pre` `(B, 4H)` receives
/// dL/d(a_i, a_f, a_g, a_o).
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_step<F: Float>(
    gates: &[F],
    c_prev: &[F],
    tanh_c: &[F],
    dh: &[F],
    dc: &mut [F],
    grad_cell: &mut [F],
    d_pre: &mut [F],
    hidden: usize,
) {
    let one = F::one();
    vectorized(
        #[inline(always)]
        || {
            let rows = gates.chunks_exact(4 * hidden).zip(d_pre.chunks_exact_mut(4 * hidden));
            for (r, (g, d)) in rows.enumerate() {
                let row = r * hidden;
                let (gi, rest) = g.split_at(hidden);
                let (gf, rest) = rest.split_at(hidden);
                let (gg, go) = rest.split_at(hidden);
                let go = &go[..hidden];
                let (di, rest) = d.split_at_mut(hidden);
                let (df, rest) = rest.split_at_mut(hidden);
                let (dg, dout) = rest.split_at_mut(hidden);
                let dout = &mut dout[..hidden];
                let c_prev = &c_prev[row..][..hidden];
                let tanh_c = &tanh_c[row..][..hidden];
                let dh = &dh[row..][..hidden];
                let dc = &mut dc[row..][..hidden];
                let grad_cell = &mut grad_cell[row..][..hidden];
                for j in 0..hidden {
                    let (i, f, g, o) = (gi[j], gf[j], gg[j], go[j]);
                    let tc = tanh_c[j];
                    let dc_total = dc[j] + dh[j] * o * (one - tc * tc);
                    grad_cell[j] += dc_total;
                    di[j] = dc_total * g * i * (one - i);
                    df[j] = dc_total * c_prev[j] * f * (one - f);
                    dg[j] = dc_total * i * (one - g * g);
                    dout[j] = dh[j] * tc * o * (one - o);
                    dc[j] = dc_total * f;
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use crate::recurrent::{Readout, Recurrent, RecurrentState, SequenceLayer};
    use ndarray::{Array2, Array3, array};
    use rand::SeedableRng;

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn one_step_matches_hand_computation() {
        // H = 1, I = 1, gates i, f, g, o with W_ih = (0.1, 0.2, 0.3, 0.4), W_hh = (0.5, 0.6,
        // 0.7, 0.8), b_ih = (0.01, 0.02, 0.03, 0.04), b_hh = 0; x = 2, h0 = 0.5, c0 = −1.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut lstm = Lstm::<f64>::new(1, 1, &mut rng).unwrap();
        lstm.set_parameter("weight_ih_l0", array![[0.1], [0.2], [0.3], [0.4]].into_dyn().view()).unwrap();
        lstm.set_parameter("weight_hh_l0", array![[0.5], [0.6], [0.7], [0.8]].into_dyn().view()).unwrap();
        lstm.set_parameter("bias_ih_l0", array![0.01, 0.02, 0.03, 0.04].into_dyn().view()).unwrap();
        lstm.set_parameter("bias_hh_l0", array![0.0, 0.0, 0.0, 0.0].into_dyn().view()).unwrap();
        let state = RecurrentState {
            hidden: Array3::from_elem((1, 1, 1), 0.5),
            cell: Some(Array3::from_elem((1, 1, 1), -1.0)),
        };
        lstm.forward_sequence(array![[[2.0]]].view(), Some(&state), Mode::Train).unwrap();
        let i = sig(0.2 + 0.01 + 0.25);
        let f = sig(0.4 + 0.02 + 0.3);
        let g = (0.6f64 + 0.03 + 0.35).tanh();
        let o = sig(0.8 + 0.04 + 0.4);
        let c0 = -1.0;
        let c = f * c0 + i * g;
        let h = o * c.tanh();
        assert!((lstm.outputs().unwrap()[[0, 0, 0]] - h).abs() < 1e-15);
        let fin = lstm.final_state().unwrap();
        assert!((fin.cell.as_ref().unwrap()[[0, 0, 0]] - c).abs() < 1e-15);
        assert_eq!(lstm.gate_activations(0).unwrap().shape(), &[1, 1, 4]);
        assert!((lstm.gate_activations(0).unwrap()[[0, 0, 1]] - f).abs() < 1e-15);

        // L = h + 2·c_n: dL/dc = 2 + o(1 − tanh²c); dL/dc0 = f·dL/dc.
        let grad_final = RecurrentState {
            hidden: Array3::zeros((1, 1, 1)),
            cell: Some(Array3::from_elem((1, 1, 1), 2.0)),
        };
        lstm.backward_sequence(array![[[1.0]]].view(), Some(&grad_final), None).unwrap();
        let dc = 2.0 + o * (1.0 - c.tanh().powi(2));
        let grad0 = lstm.grad_initial_state().unwrap();
        assert!((grad0.cell.as_ref().unwrap()[[0, 0, 0]] - f * dc).abs() < 1e-14);
        assert!((lstm.grad_cell(0).unwrap()[[0, 0, 0]] - dc).abs() < 1e-14);
        // dL/dh0 = Σ_gates W_hh[gate] · da_gate.
        let da = [
            dc * g * i * (1.0 - i),
            dc * c0 * f * (1.0 - f),
            dc * i * (1.0 - g * g),
            c.tanh() * o * (1.0 - o),
        ];
        let dh0: f64 = da.iter().zip([0.5, 0.6, 0.7, 0.8]).map(|(d, w)| d * w).sum();
        assert!((grad0.hidden[[0, 0, 0]] - dh0).abs() < 1e-14);
    }

    #[test]
    fn forget_bias_sets_the_f_slice_of_bias_ih_and_zeroes_that_of_bias_hh() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let lstm = LstmConfig::new(2, 3).forget_bias(1.0).build::<f64>(&mut rng).unwrap();
        let mut biases = Vec::new();
        lstm.visit_parameters(&mut |p| {
            if p.name.starts_with("bias") {
                biases.push(p.value.to_owned());
            }
        });
        assert!(biases[0].iter().skip(3).take(3).all(|&b| b == 1.0));
        assert!(biases[1].iter().skip(3).take(3).all(|&b| b == 0.0));
        assert!(biases[0].iter().take(3).all(|&b| b != 1.0 && b.abs() <= 1.0 / 3f64.sqrt()));
    }

    #[test]
    fn forget_bias_without_bias_is_refused() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let err = LstmConfig::new(2, 3).bias(false).forget_bias(1.0).build::<f64>(&mut rng).unwrap_err();
        assert!(err.to_string().contains("LSTM") && err.to_string().contains("forget_bias"), "{err}");
    }

    #[test]
    fn gradients_pass_finite_difference_check() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let lstm = LstmConfig::new(3, 4).build::<f64>(&mut rng).unwrap();
        let mut layer = SequenceLayer::new(lstm, Readout::EveryStep);
        let x = Array2::from_shape_fn((3, 4 * 3), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 3.5 - 1.0);
        check_layer(&mut layer, &x, GradCheckConfig::default()).unwrap().within(1e-6).unwrap();
    }
}
