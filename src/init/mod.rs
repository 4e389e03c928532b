//! Weight initializers: the [`Initializer`] trait and the schemes of `torch.nn.init`.
//!
//! # Why initialization decides whether a deep network can learn at all
//!
//! A fully connected layer computes `y_i = Σ_j W_ij x_j`, a sum of `fan_in` terms. With
//! independent zero-mean weights of variance `Var(W)`,
//!
//! - **forward**: `E[y_i²] = fan_in · Var(W) · E[x_j²]` — the signal keeps its size from layer
//!   to layer when `Var(W) = 1/fan_in` (LeCun et al. 1998, "Efficient BackProp");
//! - **backward**: the gradient `∂L/∂x_j = Σ_i W_ij ∂L/∂y_i` is a sum of `fan_out` terms, so
//!   `E[(∂L/∂x_j)²] = fan_out · Var(W) · E[(∂L/∂y_i)²]` — the gradient keeps its size when
//!   `Var(W) = 1/fan_out`.
//!
//! Any other scale multiplies the signal (or the gradient) by a constant factor per layer, which
//! over 30 layers is vanishing or explosion. Glorot & Bengio (2010, "Understanding the difficulty
//! of training deep feedforward neural networks") compromise between the two conditions with
//! `Var(W) = 2/(fan_in + fan_out)` ([`GlorotUniform`], [`GlorotNormal`]); the **fan mode** of
//! He/Kaiming ([`FanMode::FanIn`] or [`FanMode::FanOut`]) chooses one of them exactly.
//!
//! # The gain ties the scale to the activation
//!
//! The activation between two layers changes the second moment of the signal: a ReLU zeroes
//! half of its inputs and so halves `E[x²]`, which He et al. (2015, "Delving Deep into
//! Rectifiers") compensate with `Var(W) = 2/fan_in`, i.e. a **gain** of √2 on the standard
//! deviation. In general `std = gain / √fan`, with the gain that `torch.nn.init.calculate_gain`
//! recommends for the activation that follows (1 for none or sigmoid, 5/3 for tanh, √2 for
//! ReLU; see [`crate::Activation::gain`]). gradflow passes that gain to every initializer in
//! [`Fans::activation_gain`]; the He/Kaiming initializers use it unless a gain is set
//! explicitly.
//!
//! # Orthogonal matrices preserve norms exactly
//!
//! Variance scaling preserves the *average* size of the signal; an [`Orthogonal`] weight matrix
//! (all singular values equal to the gain) preserves the norm of *every* vector, so that in a
//! deep linear network the whole spectrum of the input–output map stays at one (Saxe, McClelland
//! & Ganguli 2014, "Exact solutions to the nonlinear dynamics of learning in deep linear neural
//! networks").
//!
//! # The schemes
//!
//! | gradflow | PyTorch | distribution |
//! |---|---|---|
//! | [`LinearDefault`] | `nn.Linear.reset_parameters` | U(±1/√fan_in) |
//! | [`GlorotUniform`] (= [`XavierUniform`]) | `xavier_uniform_` | U(±gain·√(6/(fan_in+fan_out))) |
//! | [`GlorotNormal`] (= [`XavierNormal`]) | `xavier_normal_` | N(0, gain·√(2/(fan_in+fan_out))) |
//! | [`KaimingUniform`] (= [`HeUniform`]) | `kaiming_uniform_` | U(±gain·√(3/fan)) |
//! | [`KaimingNormal`] (= [`HeNormal`]) | `kaiming_normal_` | N(0, gain/√fan) |
//! | [`LecunUniform`] | — | U(±√(3/fan_in)) |
//! | [`LecunNormal`] | — | N(0, 1/√fan_in) |
//! | [`Orthogonal`] | `orthogonal_` | gain · (semi-)orthogonal matrix |
//! | [`Normal`] | `normal_` | N(mean, std) |
//! | [`Uniform`] | `uniform_` | U(low, high) |
//! | [`Constant`], [`Zeros`], [`Ones`] | `constant_`, `zeros_`, `ones_` | a constant |
//!
//! The RNG is always the caller's: the same seed gives bit-identical weights.
//!
//! ```
//! use gradflow::init::{Fans, Initializer, KaimingNormal};
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(7);
//! // A (256, 128) weight followed by a ReLU (gain √2): std = √2/√128 = 0.125.
//! let fans = Fans::new(128, 256, std::f64::consts::SQRT_2);
//! let w = KaimingNormal::fan_in().sample((256, 128), fans, &mut rng)?;
//! let std = (w.mapv(|v| v * v).mean().unwrap()).sqrt();
//! assert!((std - 0.125).abs() < 0.01);
//! # Ok::<(), gradflow::Error>(())
//! ```

use ndarray::Array2;
use rand::RngCore;

use crate::{Float, Result};

mod by_name;
mod check;
mod constant;
mod draw;
mod glorot;
mod kaiming;
mod lecun;
mod linear_default;
mod normal;
mod orthogonal;
mod qr;
mod uniform;

#[cfg(test)]
mod testing;

pub use by_name::{NAMES, by_name};
pub use constant::{Constant, Ones, Zeros};
pub use glorot::{GlorotNormal, GlorotUniform, XavierNormal, XavierUniform};
pub use kaiming::{FanMode, HeNormal, HeUniform, KaimingNormal, KaimingUniform};
pub use lecun::{LecunNormal, LecunUniform};
pub use linear_default::LinearDefault;
pub use normal::Normal;
pub use orthogonal::Orthogonal;
pub use uniform::Uniform;

/// The fans of a weight tensor and the gain of the activation that follows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fans {
    /// Number of inputs per output unit (`in_features` for `Linear`).
    pub fan_in: usize,
    /// Number of outputs per input unit (`out_features` for `Linear`).
    pub fan_out: usize,
    /// The gain of the activation that follows (`calculate_gain`), used by initializers whose
    /// gain is not set explicitly (He/Kaiming). 1.0 when there is no activation.
    pub activation_gain: f64,
}

impl Fans {
    /// Fans of a `(out, in)` weight matrix followed by an activation of gain `activation_gain`.
    pub fn new(fan_in: usize, fan_out: usize, activation_gain: f64) -> Self {
        Fans { fan_in, fan_out, activation_gain }
    }

    /// Fans of a convolution weight `(out, in_per_group, kH, kW)`, as PyTorch's
    /// `_calculate_fan_in_and_fan_out` computes them: `fan_in = in_per_group·kH·kW` (the inputs
    /// one output entry sums over) and `fan_out = out·kH·kW`. Initializers then see the weight as
    /// the `(out, in_per_group·kH·kW)` matrix.
    ///
    /// ```
    /// use gradflow::init::Fans;
    /// // nn.Conv2d(16, 32, 3, groups=2): weight (32, 8, 3, 3).
    /// let fans = Fans::conv(8, 32, (3, 3), 1.0);
    /// assert_eq!((fans.fan_in, fans.fan_out), (72, 288));
    /// ```
    pub fn conv(
        in_per_group: usize,
        out_channels: usize,
        kernel: (usize, usize),
        activation_gain: f64,
    ) -> Self {
        let taps = kernel.0 * kernel.1;
        Fans { fan_in: in_per_group * taps, fan_out: out_channels * taps, activation_gain }
    }
}

/// A scheme for drawing initial weights. The RNG is always the caller's: the same seed gives
/// the same weights.
pub trait Initializer: std::fmt::Debug + Send + Sync {
    /// The scheme's name with its settings, e.g. `"kaiming_uniform(fan_in, gain=1.4142)"`.
    fn name(&self) -> String;

    /// Draws a `shape` = `(rows, cols)` tensor in f64.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when the fans are zero or a setting is out of range.
    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>>;
}

/// An initializer chosen at run time — [`by_name`] returns one — is an initializer too, so it
/// can go wherever a concrete one is taken:
///
/// ```
/// use gradflow::Sequential;
/// use gradflow::activation::Tanh;
/// use gradflow::init::by_name;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let chosen = by_name("xavier_uniform")?; // e.g. from a command line
/// let model = Sequential::<f32>::builder(4).init(chosen).repeat(2, 8, Tanh).build(&mut rng)?;
/// # Ok::<(), gradflow::Error>(())
/// ```
impl<I: Initializer + ?Sized> Initializer for std::sync::Arc<I> {
    fn name(&self) -> String {
        (**self).name()
    }

    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        (**self).sample(shape, fans, rng)
    }
}

/// A boxed initializer is an initializer too (see the `Arc` implementation).
impl<I: Initializer + ?Sized> Initializer for Box<I> {
    fn name(&self) -> String {
        (**self).name()
    }

    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        (**self).sample(shape, fans, rng)
    }
}

/// Draws a tensor with `init` and converts it to `F`.
///
/// # Errors
/// The initializer's errors; [`crate::Error::InvalidConfig`] when `shape` has more entries than
/// [`crate::limits::MAX_TENSOR_ELEMENTS`] (refused before drawing) or cannot be allocated, and
/// when a drawn value is not finite in `F` (e.g. `Constant::new(1e39)` for an `f32` model: 1e39
/// is finite in `f64` but infinite in `f32`).
pub fn sample_as<F: Float>(
    init: &dyn Initializer,
    shape: (usize, usize),
    fans: Fans,
    rng: &mut dyn RngCore,
) -> Result<Array2<F>> {
    crate::alloc::check_len(&init.name(), "shape", &[shape.0, shape.1])?;
    let drawn = init.sample(shape, fans, rng)?;
    let values = try_from_f64::<F, _>(&drawn, &init.name(), "shape")?;
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(crate::Error::config(
            init.name(),
            "value",
            format!(
                "entry {i} is {} in {} (drawn as {:e} in f64): choose a value within ±{:e}",
                v,
                F::NAME,
                drawn.iter().nth(i).copied().unwrap_or(f64::NAN),
                F::max_value().as_f64()
            ),
        ));
    }
    Ok(values)
}

/// `values` converted to `F` (rounded to nearest for `f32`), in the same layout, allocated
/// fallibly (errors name `component` and `field`).
pub(crate) fn try_from_f64<F: Float, D: ndarray::Dimension>(
    values: &ndarray::Array<f64, D>,
    component: &str,
    field: &'static str,
) -> Result<ndarray::Array<F, D>> {
    let mut out = crate::alloc::try_zeros::<F, _>(component, field, values.raw_dim())?;
    match values.as_slice() {
        Some(drawn) => F::convert_from_f64(drawn, out.as_slice_mut().expect("standard layout")),
        None => out.zip_mut_with(values, |o, &v| *o = F::lit(v)),
    }
    Ok(out)
}

/// A number as shown in an initializer's [`Initializer::name`]: at most 4 decimals, trailing
/// zeros dropped (`1`, `1.4142`, `0.5`).
fn short(x: f64) -> String {
    let s = format!("{x:.4}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::testing::rng;

    #[test]
    fn short_numbers_drop_trailing_zeros() {
        assert_eq!(short(1.0), "1");
        assert_eq!(short(std::f64::consts::SQRT_2), "1.4142");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(-2.25), "-2.25");
    }

    /// Every named scheme: the same seed gives bit-identical draws, another seed other draws.
    #[test]
    fn same_seed_same_weights_other_seed_other_weights() {
        let fans = Fans::new(30, 20, 5.0 / 3.0);
        for &name in NAMES {
            let init = by_name(name).unwrap();
            let a = init.sample((20, 30), fans, &mut rng(1)).unwrap();
            let b = init.sample((20, 30), fans, &mut rng(1)).unwrap();
            assert_eq!(a.as_slice().unwrap(), b.as_slice().unwrap(), "{name}: same seed differs");
            let c = init.sample((20, 30), fans, &mut rng(2)).unwrap();
            if matches!(name, "zeros" | "ones") {
                assert_eq!(a, c, "{name} is a constant");
            } else {
                assert_ne!(a, c, "{name}: different seeds gave the same weights");
            }
        }
    }

    #[test]
    fn sample_as_f32_rounds_the_f64_draw() {
        let init = KaimingNormal::fan_in();
        let fans = Fans::new(300, 700, std::f64::consts::SQRT_2);
        let wide = init.sample((512, 512), fans, &mut rng(5)).unwrap();
        let narrow = sample_as::<f32>(&init, (512, 512), fans, &mut rng(5)).unwrap();
        assert_eq!(narrow.dim(), (512, 512));
        for (&n, &w) in narrow.iter().zip(wide.iter()) {
            assert_eq!(n, w as f32);
        }
        // And the f32 tensor has the He statistics: std = √2/√300.
        let as_f64 = narrow.mapv(f64::from);
        crate::init::testing::assert_moments(&as_f64, 0.0, (2.0f64 / 300.0).sqrt(), "kaiming_normal f32");
    }

    #[test]
    fn errors_pass_through_sample_as() {
        let err = sample_as::<f32>(&LecunNormal, (2, 2), Fans::new(0, 2, 1.0), &mut rng(0)).unwrap_err();
        assert!(err.to_string().contains("fan_in"), "{err}");
    }
}
