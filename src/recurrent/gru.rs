//! [`Gru`]: the gated recurrent unit (Cho et al. 2014), as PyTorch's `nn.GRU`.

use rand::RngCore;

use super::engine::{CellKind, Engine, EngineConfig};
use super::{RecurrentInit, RecurrentInits, recurrent_via_engine};
use crate::vectorize::vectorized;
use crate::{Float, Result};

/// A GRU layer, PyTorch's `nn.GRU`: at every step
///
/// ```text
/// r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)
/// z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)
/// n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))
/// h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}
/// ```
///
/// Note where the reset gate applies: to the recurrent projection *including its bias*
/// `b_hn`, as in PyTorch and cuDNN (Cho et al.'s original applies it to h before `W_hn`).
///
/// # Parameters
/// `weight_ih_l0` `(3·hidden, input)` = (W_ir | W_iz | W_in), `weight_hh_l0`
/// `(3·hidden, hidden)` = (W_hr | W_hz | W_hn), `bias_ih_l0`, `bias_hh_l0` `(3·hidden)`.
///
/// # Gradients
/// `dn = dh ⊙ (1 − z)`, `dz = dh ⊙ (h_{t−1} − n)`, `da_n = dn ⊙ (1 − n²)` (for `W_in x + b_in`),
/// `d(W_hn h + b_hn) = da_n ⊙ r`, `dr = da_n ⊙ (W_hn h + b_hn)`, and
/// `dL/dh_{t−1} = dh ⊙ z + d(W_hh h + b_hh) W_hh`: the direct path `z ⊙ dh` is the GRU's
/// shortcut through time.
///
/// ```
/// use gradflow::recurrent::{Gru, Recurrent};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let gru = Gru::<f32>::new(3, 8, &mut rng).unwrap();
/// assert_eq!(gru.num_parameters(), 3 * (8 * 3 + 8 * 8 + 8 + 8));
/// ```
#[derive(Clone)]
pub struct Gru<F: Float> {
    engine: Engine<F>,
}

recurrent_via_engine!(Gru);

/// How to build a [`Gru`]. Defaults are PyTorch's (one layer, biases, U(±1/√hidden)).
#[derive(Debug, Clone, PartialEq)]
pub struct GruConfig {
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
    /// Initializers of `weight_ih` and `weight_hh` and gate biases by name (default: none,
    /// PyTorch's initialization).
    pub inits: RecurrentInits,
}

impl GruConfig {
    /// PyTorch's defaults for `nn.GRU(input_size, hidden_size)`.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        GruConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            recurrent_init: RecurrentInit::PytorchDefault,
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

    /// Builds the layer, drawing its weights from `rng`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the field when a size is zero or an
    /// initialization setting is not finite.
    pub fn build<F: Float>(&self, rng: &mut dyn RngCore) -> Result<Gru<F>> {
        let config = EngineConfig {
            cell: CellKind::Gru,
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            num_layers: self.num_layers,
            bias: self.bias,
            recurrent_init: self.recurrent_init,
            forget_bias: None,
            inits: self.inits.clone(),
        };
        Ok(Gru { engine: Engine::new(config, rng)? })
    }
}

impl<F: Float> Gru<F> {
    /// `nn.GRU(input_size, hidden_size)` with PyTorch's defaults.
    pub fn new(input_size: usize, hidden_size: usize, rng: &mut dyn RngCore) -> Result<Self> {
        GruConfig::new(input_size, hidden_size).build(rng)
    }
}

/// One step forward. `gates` `(B, 3H)` holds the input projections `W_i· x + b_i·` and is
/// overwritten by r, z, n; `recurrent` `(B, 3H)` is `W_h· h_{t−1} + b_h·`; its n-part is kept
/// in `recurrent_n` `(B, H)` for backward; writes h_t.
pub(super) fn forward_step<F: Float>(
    gates: &mut [F],
    recurrent: &[F],
    recurrent_n: &mut [F],
    h_prev: &[F],
    h: &mut [F],
    hidden: usize,
) {
    vectorized(
        #[inline(always)]
        || {
            let rows = gates.chunks_exact_mut(3 * hidden).zip(recurrent.chunks_exact(3 * hidden));
            for (r, (g, rec)) in rows.enumerate() {
                let row = r * hidden;
                let (gr, rest) = g.split_at_mut(hidden);
                let (gz, gn) = rest.split_at_mut(hidden);
                let gn = &mut gn[..hidden];
                let (rr, rest) = rec.split_at(hidden);
                let (rz, rn) = rest.split_at(hidden);
                let rn = &rn[..hidden];
                let recurrent_n = &mut recurrent_n[row..][..hidden];
                let h_prev = &h_prev[row..][..hidden];
                let h = &mut h[row..][..hidden];
                for j in 0..hidden {
                    let reset = (gr[j] + rr[j]).fast_sigmoid();
                    let update = (gz[j] + rz[j]).fast_sigmoid();
                    let new = (gn[j] + reset * rn[j]).fast_tanh();
                    (gr[j], gz[j], gn[j]) = (reset, update, new);
                    recurrent_n[j] = rn[j];
                    h[j] = (F::one() - update) * new + update * h_prev[j];
                }
            }
        },
    )
}

/// One step backward from dL/dh_t: `d_pre` `(B, 3H)` receives dL/d(input projections),
/// `d_rec` `(B, 3H)` dL/d(recurrent projections) and `dh_prev_direct` `(B, H)` the direct
/// part of dL/dh_{t−1}, `dh ⊙ z`.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_step<F: Float>(
    gates: &[F],
    recurrent_n: &[F],
    h_prev: &[F],
    dh: &[F],
    d_pre: &mut [F],
    d_rec: &mut [F],
    dh_prev_direct: &mut [F],
    hidden: usize,
) {
    let one = F::one();
    vectorized(
        #[inline(always)]
        || {
            let rows = gates
                .chunks_exact(3 * hidden)
                .zip(d_pre.chunks_exact_mut(3 * hidden))
                .zip(d_rec.chunks_exact_mut(3 * hidden));
            for (r, ((g, dp), dr)) in rows.enumerate() {
                let row = r * hidden;
                let (gr, rest) = g.split_at(hidden);
                let (gz, gn) = rest.split_at(hidden);
                let gn = &gn[..hidden];
                let (dpr, rest) = dp.split_at_mut(hidden);
                let (dpz, dpn) = rest.split_at_mut(hidden);
                let dpn = &mut dpn[..hidden];
                let (drr, rest) = dr.split_at_mut(hidden);
                let (drz, drn) = rest.split_at_mut(hidden);
                let drn = &mut drn[..hidden];
                let recurrent_n = &recurrent_n[row..][..hidden];
                let h_prev = &h_prev[row..][..hidden];
                let dh = &dh[row..][..hidden];
                let dh_prev_direct = &mut dh_prev_direct[row..][..hidden];
                for j in 0..hidden {
                    let (reset, update, new) = (gr[j], gz[j], gn[j]);
                    let d_new = dh[j] * (one - update);
                    let d_update = dh[j] * (h_prev[j] - new);
                    let da_n = d_new * (one - new * new);
                    let da_r = da_n * recurrent_n[j] * reset * (one - reset);
                    let da_z = d_update * update * (one - update);
                    (dpr[j], dpz[j], dpn[j]) = (da_r, da_z, da_n);
                    (drr[j], drz[j], drn[j]) = (da_r, da_z, da_n * reset);
                    dh_prev_direct[j] = dh[j] * update;
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
    fn reset_gate_multiplies_the_recurrent_bias_too() {
        // H = 1, I = 1, gates r, z, n. W_ih = (0.1, 0.2, 0.3), W_hh = (0.4, 0.5, 0.6),
        // b_ih = (0.01, 0.02, 0.03), b_hh = (0.04, 0.05, 0.9); x = 1, h0 = 0.5.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut gru = Gru::<f64>::new(1, 1, &mut rng).unwrap();
        gru.set_parameter("weight_ih_l0", array![[0.1], [0.2], [0.3]].into_dyn().view()).unwrap();
        gru.set_parameter("weight_hh_l0", array![[0.4], [0.5], [0.6]].into_dyn().view()).unwrap();
        gru.set_parameter("bias_ih_l0", array![0.01, 0.02, 0.03].into_dyn().view()).unwrap();
        gru.set_parameter("bias_hh_l0", array![0.04, 0.05, 0.9].into_dyn().view()).unwrap();
        let state = RecurrentState { hidden: Array3::from_elem((1, 1, 1), 0.5), cell: None };
        gru.forward_sequence(array![[[1.0]]].view(), Some(&state), Mode::Train).unwrap();
        let r = sig(0.1 + 0.01 + 0.2 + 0.04);
        let z = sig(0.2 + 0.02 + 0.25 + 0.05);
        let n = (0.3 + 0.03 + r * (0.3 + 0.9f64)).tanh();
        let h = (1.0 - z) * n + z * 0.5;
        assert!((gru.outputs().unwrap()[[0, 0, 0]] - h).abs() < 1e-15);
        // The variant r ⊙ (W_hn h) + b_hn would give a different value here.
        let other = (0.3 + 0.03 + r * 0.3 + 0.9f64).tanh();
        assert!(((1.0 - z) * other + z * 0.5 - h).abs() > 1e-3);

        // dL/db_hn = dn_pre · r, dL/db_in = dn_pre.
        gru.backward_sequence(array![[[1.0]]].view(), None, None).unwrap();
        let dn_pre = (1.0 - z) * (1.0 - n * n);
        let mut grads = Vec::new();
        gru.visit_parameters(&mut |p| grads.push(p.grad.to_owned()));
        assert!((grads[2][2] - dn_pre).abs() < 1e-15);
        assert!((grads[3][2] - dn_pre * r).abs() < 1e-15);
        // dL/dh0 = z + Σ W_hh·d(recurrent projection).
        let dr = dn_pre * (0.3 + 0.9) * r * (1.0 - r);
        let dz = (0.5 - n) * z * (1.0 - z);
        let dh0 = z + 0.4 * dr + 0.5 * dz + 0.6 * dn_pre * r;
        assert!((gru.grad_initial_state().unwrap().hidden[[0, 0, 0]] - dh0).abs() < 1e-15);
    }

    #[test]
    fn gradients_pass_finite_difference_check() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let gru = GruConfig::new(3, 4).build::<f64>(&mut rng).unwrap();
        let mut layer = SequenceLayer::new(gru, Readout::EveryStep);
        let x = Array2::from_shape_fn((3, 4 * 3), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 3.5 - 1.0);
        check_layer(&mut layer, &x, GradCheckConfig::default()).unwrap().within(1e-6).unwrap();
    }
}
