//! How the weights of a recurrent layer are initialized: PyTorch's default, orthogonal or
//! identity recurrent weights, and the LSTM forget-gate bias.

use ndarray::{Array1, Array2, s};
use ndarray_rand::RandomExt;
use rand::RngCore;
use rand_distr::Uniform;

use std::sync::Arc;

use crate::init::{Fans, Initializer};
use crate::{Error, Result};

/// An initializer shared between configurations, equal to another when it is the same one or
/// has the same name and settings ([`Initializer::name`]).
#[derive(Debug, Clone)]
struct Shared(Arc<dyn Initializer>);

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.name() == other.0.name()
    }
}

/// Initializers of a recurrent layer's input-to-hidden and hidden-to-hidden weights, chosen
/// separately, and the bias of each gate by name — the options set with `input_init`,
/// `hidden_init` and `gate_bias` on [`super::RnnConfig`], [`super::LstmConfig`] and
/// [`super::GruConfig`].
///
/// Each initializer is applied per gate block: `weight_ih`'s `(H, I)` block of each gate with
/// fans `(I, H)`, `weight_hh`'s `(H, H)` block with fans `(H, H)`, after PyTorch's defaults
/// have been drawn for every parameter (so that, with the same seed, what is not chosen here is
/// what PyTorch would draw). Gate names are PyTorch's: `i`, `f`, `g`, `o` for an LSTM, `r`, `z`,
/// `n` for a GRU, `h` for a plain RNN; a gate bias sets that gate's slice of `bias_ih` to the
/// value and that of `bias_hh` to zero, so that their sum is the value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecurrentInits {
    input: Option<Shared>,
    hidden: Option<Shared>,
    gate_biases: Vec<(String, f64)>,
}

impl RecurrentInits {
    /// Sets the initializer of `weight_ih`.
    pub fn input(mut self, init: impl Initializer + 'static) -> Self {
        self.input = Some(Shared(Arc::new(init)));
        self
    }

    /// Sets the initializer of `weight_hh` (instead of a [`RecurrentInit`] scheme).
    pub fn hidden(mut self, init: impl Initializer + 'static) -> Self {
        self.hidden = Some(Shared(Arc::new(init)));
        self
    }

    /// Sets the bias of gate `gate` (replacing an earlier value for the same gate).
    pub fn gate_bias(mut self, gate: &str, value: f64) -> Self {
        self.gate_biases.retain(|(g, _)| g != gate);
        self.gate_biases.push((gate.to_string(), value));
        self
    }

    /// Checks the settings against the layer's gates; `component` names the layer.
    pub(crate) fn validate(
        &self,
        component: &str,
        gates: &[&str],
        bias: bool,
        scheme: &RecurrentInit,
    ) -> Result<()> {
        if self.hidden.is_some() && *scheme != RecurrentInit::PytorchDefault {
            return Err(Error::config(
                component,
                "hidden_init",
                "choose either a recurrent_init scheme or a hidden_init initializer, not both",
            ));
        }
        for (gate, value) in &self.gate_biases {
            if !gates.contains(&gate.as_str()) {
                return Err(Error::config(
                    component,
                    "gate_bias",
                    format!("no gate `{gate}`: the gates are {}", gates.join(", ")),
                ));
            }
            if !bias {
                return Err(Error::config(
                    component,
                    "gate_bias",
                    "needs bias = true (the layer has no bias)",
                ));
            }
            if !value.is_finite() {
                return Err(Error::config(
                    component,
                    "gate_bias",
                    format!("gate `{gate}` must be finite, got {value}"),
                ));
            }
        }
        Ok(())
    }

    /// Overwrites the weights and biases of one stacked layer as chosen.
    pub(crate) fn apply(
        &self,
        component: &str,
        gates: &[&str],
        (weight_ih, weight_hh): (&mut Array2<f64>, &mut Array2<f64>),
        biases: Option<(&mut Array1<f64>, &mut Array1<f64>)>,
        rng: &mut dyn RngCore,
    ) -> Result<()> {
        let hidden = weight_hh.ncols();
        let input = weight_ih.ncols();
        for (weights, init, fans, field) in [
            (weight_ih, &self.input, Fans::new(input, hidden, 1.0), "input_init"),
            (weight_hh, &self.hidden, Fans::new(hidden, hidden, 1.0), "hidden_init"),
        ] {
            let Some(Shared(init)) = init else { continue };
            for k in 0..gates.len() {
                let block = init
                    .sample((hidden, fans.fan_in), fans, rng)
                    .map_err(|e| Error::config(component, field, format!("{}: {e}", init.name())))?;
                weights.slice_mut(s![k * hidden..(k + 1) * hidden, ..]).assign(&block);
            }
        }
        if let Some((b_ih, b_hh)) = biases {
            for (gate, value) in &self.gate_biases {
                let k = gates.iter().position(|g| g == gate).expect("validated");
                b_ih.slice_mut(s![k * hidden..(k + 1) * hidden]).fill(*value);
                b_hh.slice_mut(s![k * hidden..(k + 1) * hidden]).fill(0.0);
            }
        }
        Ok(())
    }
}

/// How `weight_hh` (the recurrent weights) is initialized. Every other parameter always gets
/// PyTorch's default, U(−1/√hidden_size, 1/√hidden_size).
///
/// The defaults are drawn first for *every* parameter of every stacked layer, in PyTorch's
/// order (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, then `…_l1`), and the
/// chosen scheme then overwrites `weight_hh`: with the same seed, `weight_ih` (and the biases,
/// except under [`RecurrentInit::Identity`]) are the same whatever the scheme.
///
/// For gated cells the scheme is applied to each gate's `(hidden, hidden)` block of `weight_hh`
/// separately (rows `k·hidden..(k+1)·hidden` for gate `k`), which is what matters for the
/// gradient through each gate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum RecurrentInit {
    /// PyTorch's default: U(−1/√hidden_size, 1/√hidden_size) (`RNNBase.reset_parameters`).
    #[default]
    PytorchDefault,
    /// A random orthogonal matrix times `gain` per gate block, as
    /// `torch.nn.init.orthogonal_(block, gain)` (Saxe et al. 2014): all singular values equal
    /// `gain`, so a linear recurrence neither shrinks nor grows the gradient.
    Orthogonal {
        /// Multiplier of the orthogonal matrix (1 keeps norms).
        gain: f64,
    },
    /// `scale` times the identity per gate block, with both biases set to zero: the IRNN of
    /// Le, Jaitly & Hinton (2015, "A Simple Way to Initialize Recurrent Networks of Rectified
    /// Linear Units"), meant for ReLU RNNs, where the state is copied unchanged at first.
    Identity {
        /// The diagonal value (the paper uses 1).
        scale: f64,
    },
}

impl RecurrentInit {
    /// Checks the settings; `component` names the layer in the error.
    pub(crate) fn validate(&self, component: &str) -> Result<()> {
        let (name, value) = match *self {
            RecurrentInit::PytorchDefault => return Ok(()),
            RecurrentInit::Orthogonal { gain } => ("gain", gain),
            RecurrentInit::Identity { scale } => ("scale", scale),
        };
        if value.is_finite() {
            Ok(())
        } else {
            Err(Error::config(component, "recurrent_init", format!("{name} must be finite, got {value}")))
        }
    }

    /// Overwrites the recurrent weights `(gates·hidden, hidden)` (and, for the identity scheme,
    /// zeroes the biases) after the defaults have been drawn.
    pub(crate) fn apply(
        &self,
        weight_hh: &mut Array2<f64>,
        biases: [Option<&mut Array1<f64>>; 2],
        rng: &mut dyn RngCore,
    ) {
        let hidden = weight_hh.ncols();
        let gates = weight_hh.nrows() / hidden;
        match *self {
            RecurrentInit::PytorchDefault => {}
            RecurrentInit::Orthogonal { gain } => {
                for k in 0..gates {
                    let block = orthogonal_block(hidden, gain, rng);
                    weight_hh.slice_mut(s![k * hidden..(k + 1) * hidden, ..]).assign(&block);
                }
            }
            RecurrentInit::Identity { scale } => {
                for k in 0..gates {
                    let mut block = weight_hh.slice_mut(s![k * hidden..(k + 1) * hidden, ..]);
                    block.fill(0.0);
                    block.diag_mut().fill(scale);
                }
                for b in biases.into_iter().flatten() {
                    b.fill(0.0);
                }
            }
        }
    }
}

/// PyTorch's default for recurrent layers: U(−1/√hidden_size, 1/√hidden_size) for every
/// weight and bias (`torch/nn/modules/rnn.py`, `RNNBase.reset_parameters`).
pub(crate) fn pytorch_default(
    shape: (usize, usize),
    hidden_size: usize,
    rng: &mut dyn RngCore,
) -> Array2<f64> {
    let bound = 1.0 / (hidden_size as f64).sqrt();
    let dist = Uniform::new_inclusive(-bound, bound).expect("bound is finite and positive");
    Array2::random_using(shape, dist, rng)
}

/// A random `n × n` orthogonal matrix times `gain`, drawn as `torch.nn.init.orthogonal_` does
/// (via [`crate::init::Orthogonal`]; a gain of any finite sign is applied afterwards).
pub(crate) fn orthogonal_block(n: usize, gain: f64, rng: &mut dyn RngCore) -> Array2<f64> {
    use crate::init::{Fans, Initializer, Orthogonal};
    let q = Orthogonal::default()
        .sample((n, n), Fans::new(n, n, 1.0), rng)
        .expect("orthogonal init of a square block cannot fail");
    q * gain
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn orthogonal_block_is_orthogonal_and_scaled() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for n in [1, 2, 7, 16] {
            let q = orthogonal_block(n, 1.5, &mut rng);
            let qtq = q.t().dot(&q);
            let expected = Array2::<f64>::eye(n) * 2.25;
            let err = (&qtq - &expected).mapv(f64::abs).fold(0.0f64, |m, &x| m.max(x));
            assert!(err < 1e-12, "n={n}: max |QᵀQ − g²I| = {err}");
        }
    }

    #[test]
    fn identity_sets_each_gate_block_and_zeroes_biases() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut w = pytorch_default((6, 2), 2, &mut rng);
        let mut b1 = Array1::from_elem(6, 0.3);
        let mut b2 = Array1::from_elem(6, -0.3);
        RecurrentInit::Identity { scale: 0.5 }.apply(&mut w, [Some(&mut b1), Some(&mut b2)], &mut rng);
        for k in 0..3 {
            assert_eq!(w.slice(s![2 * k..2 * k + 2, ..]), Array2::<f64>::eye(2) * 0.5);
        }
        assert!(b1.iter().chain(b2.iter()).all(|&x| x == 0.0));
    }

    #[test]
    fn default_bound_is_one_over_sqrt_hidden() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let w = pytorch_default((400, 16), 16, &mut rng);
        let max = w.iter().fold(0.0f64, |m, &x| m.max(x.abs()));
        assert!(max <= 0.25 && max > 0.24, "{max}");
    }

    #[test]
    fn non_finite_settings_are_refused() {
        let err = RecurrentInit::Orthogonal { gain: f64::NAN }.validate("LSTM").unwrap_err();
        assert!(err.to_string().contains("LSTM") && err.to_string().contains("recurrent_init"), "{err}");
    }
}
