//! [`MeanField`]: how the variance of a signal, the correlation between two signals and the
//! size of the gradient change from layer to layer in a wide random network.

use serde::{Deserialize, Serialize};

use super::quadrature::{QuadratureFailure, gaussian_expectation, gaussian_expectation_within};
use super::roots::illinois;
use crate::activation::Activation;
use crate::{Error, Float, Result};

/// The default relative tolerance of the expectations for an `f64` activation: the estimate
/// `Σ|K15 − G7|` is held below 10⁻¹² of `E[|integrand|]`, which keeps the true error of every
/// quantity below 10⁻¹⁰ (checked against closed forms in the tests).
pub const F64_TOLERANCE: f64 = 1e-12;

/// The default tolerance for an `f32` activation: its values are rounded to 6·10⁻⁸, so the
/// error estimate cannot fall much below 10⁻⁷ however fine the panels.
pub const F32_TOLERANCE: f64 = 1e-5;

/// Where a search for the variance fixed point gives up and calls the growth unbounded: a
/// variance above 10²⁵⁰ after the map has exceeded the identity all the way from `q⁰`.
const UNBOUNDED_VARIANCE: f64 = 1e250;

/// How a wide network with independent weights `W ~ (0, σ_w²/fan_in)` and biases `b ~ (0, σ_b²)`
/// transforms its pre-activations `h` layer after layer, in the limit of infinite width (Poole,
/// Lahiri, Raghu, Sohl-Dickstein & Ganguli 2016, "Exponential expressivity in deep neural
/// networks through transient chaos"; Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep
/// Information Propagation"). With `z, z₁, z₂` independent standard normals:
///
/// - **variance map** `q ↦ V(q) = σ_w²·E[φ(√q·z)²] + σ_b²` ([`MeanField::variance_map`]): the
///   pre-activation variance of the next layer. Its stable fixed point `q*` is where the forward
///   signal settles ([`MeanField::fixed_point`]).
/// - **gradient factor** `χ₁(q) = σ_w²·E[φ′(√q·z)²]` ([`MeanField::gradient_factor`]): the
///   factor by which the *squared* gradient norm ‖∂L/∂h‖² grows from one layer to the one
///   below; the norm itself changes by `√χ₁` per layer. `χ₁(q*) < 1` is the ordered phase
///   (gradients vanish), `> 1` the chaotic one (they explode), `= 1` the edge of chaos.
/// - **correlation map** `c ↦ C(c) = (σ_w²·E[φ(u₁)φ(u₂)] + σ_b²)/V(q)` with
///   `u₁ = √q·z₁`, `u₂ = √q·(c·z₁ + √(1−c²)·z₂)` ([`MeanField::correlation_map`]): how the
///   correlation of two inputs' pre-activations changes. `C(1) = 1`; its slope at `c = 1` and
///   `q = q*` is `χ₁` again.
/// - **depth scales** ([`Propagation`]): `ξ_q = −1/ln V′(q*)` for the variance,
///   `ξ_c = −1/ln C′(c*)` for the correlation (at its stable fixed point `c*`, which is 1 in the
///   ordered phase), `ξ_∇ = 1/|ln χ₁|` for the gradient. Schoenholz et al. find that a network
///   trains only when its depth is below about `6·ξ_c`.
///
/// Expectations are computed by adaptive Gauss–Kronrod quadrature split at the kink of the
/// ReLU family (see the `quadrature` notes in the [`crate::theory`] docs), to a relative error
/// below 10⁻¹⁰ for an `f64` activation. `F` is the activation's scalar type: an `f32`
/// activation is evaluated in `f32`, which limits the accuracy to about 10⁻⁶.
///
/// ```
/// use gradflow::activation::{Relu, Tanh};
/// use gradflow::theory::{FixedPoint, MeanField};
///
/// // He initialization for ReLU (σ_w² = 2, σ_b² = 0) sits exactly at the edge of chaos.
/// let he = MeanField::new(&Relu, 2.0, 0.0)?;
/// assert!((he.gradient_factor(1.0)? - 1.0).abs() < 1e-12);
///
/// // PyTorch's default nn.Linear init, U(±1/√fan_in): σ_w² = 1/3. With tanh and no bias the
/// // variance decays to q* = 0 and the gradient norm shrinks by √(1/3) ≈ 0.58 per layer.
/// let default = MeanField::new(&Tanh, 1.0 / 3.0, 0.0)?;
/// let FixedPoint::Finite { q, .. } = default.fixed_point()? else { unreachable!() };
/// assert_eq!(q, 0.0);
/// assert!((default.gradient_factor(q)?.sqrt() - 0.57735).abs() < 1e-5);
///
/// // Above σ_w² = 2 a ReLU network's variance grows without bound: no finite q*.
/// let exploding = MeanField::new(&Relu, 2.5, 0.1)?;
/// assert!(matches!(exploding.fixed_point()?, FixedPoint::Unbounded { .. }));
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MeanField<'a, F: Float = f64> {
    activation: &'a dyn Activation<F>,
    weight_variance: f64,
    bias_variance: f64,
    tolerance: f64,
}

/// Where the pre-activation variance goes as depth grows, from a starting variance `q⁰`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum FixedPoint {
    /// It converges to `q` (possibly 0), where the variance map has slope `slope` = `V′(q)`.
    Finite {
        /// The fixed point q*.
        q: f64,
        /// `V′(q*)`: below 1 for a stable fixed point; the variance approaches q* like
        /// `slope^depth`.
        slope: f64,
    },
    /// It grows without bound: `V(q) > q` for every `q ≥ q⁰` up to 10²⁵⁰ (e.g. ReLU with
    /// `σ_w² > 2`, or `σ_w² = 2` with a bias). `growth` is `V(q)/q` at the largest `q` tried,
    /// the factor by which the variance grows per layer once it is large.
    Unbounded {
        /// `V(q)/q` for large q.
        growth: f64,
        /// `χ₁(q)` at the same large q (for ReLU `σ_w²/2` at any q).
        gradient_factor: f64,
    },
}

/// Which side of the edge of chaos a network is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// `χ₁ < 1`: nearby inputs converge, gradients vanish with depth.
    Ordered,
    /// `χ₁` within 10⁻⁹ of 1: the edge of chaos, where signals and gradients travel furthest.
    Critical,
    /// `χ₁ > 1`: nearby inputs decorrelate, gradients explode with depth.
    Chaotic,
}

impl Phase {
    /// The phase of a gradient factor `χ₁`.
    pub fn of(chi_1: f64) -> Self {
        if (chi_1 - 1.0).abs() <= 1e-9 {
            Phase::Critical
        } else if chi_1 < 1.0 {
            Phase::Ordered
        } else {
            Phase::Chaotic
        }
    }

    /// `"ordered"`, `"critical"` or `"chaotic"`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Ordered => "ordered",
            Phase::Critical => "critical",
            Phase::Chaotic => "chaotic",
        }
    }
}

/// Everything mean-field theory says about a deep stack of identical layers at its fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Propagation {
    /// The fixed point `q*` of the pre-activation variance.
    pub q_star: f64,
    /// `V′(q*)`, the slope of the variance map there.
    pub variance_slope: f64,
    /// `χ₁ = σ_w²·E[φ′(√q*·z)²]`: the factor of ‖∂L/∂h‖² per layer.
    pub chi_1: f64,
    /// The stable fixed point `c*` of the correlation map (1 in the ordered phase).
    pub c_star: f64,
    /// `C′(c*)`, the slope of the correlation map at `c*` (`χ₁` in the ordered phase).
    pub chi_c: f64,
    /// `ξ_q = −1/ln V′(q*)`: the depth over which the variance settles (∞ when `V′ = 1`).
    pub xi_q: f64,
    /// `ξ_c = −1/ln C′(c*)`: the depth over which two inputs' correlation settles, i.e. how deep
    /// information about the input travels (∞ at the edge of chaos).
    pub xi_c: f64,
    /// `ξ_∇ = 1/|ln χ₁|`: the depth over which the gradient norm changes by a factor e² in its
    /// square (∞ at the edge of chaos).
    pub xi_gradient: f64,
    /// Ordered, critical or chaotic, from `χ₁`.
    pub phase: Phase,
}

impl Propagation {
    /// `√χ₁`: the predicted factor of the gradient norm ‖∂L/∂h‖ per layer, going down.
    pub fn gradient_norm_factor(&self) -> f64 {
        self.chi_1.sqrt()
    }
}

/// `−1/ln s` for a slope `s ∈ [0, 1]` (0 for `s = 0`, ∞ for `s = 1`); `1/|ln s|` otherwise.
pub(crate) fn depth_scale(slope: f64) -> f64 {
    let log = slope.abs().ln();
    if log == 0.0 { f64::INFINITY } else { 1.0 / log.abs() }
}

fn check_variance(component: &str, field: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(Error::config(component, field, format!("must be a finite number ≥ 0, got {value}")))
    }
}

impl<'a> MeanField<'a, f64> {
    /// The mean field of layers `h ↦ W·φ(h) + b` with activation `activation`, weight variance
    /// `σ_w² = fan_in·Var(W)` and bias variance `σ_b² = Var(b)`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `weight_variance` or `bias_variance` when it is negative
    /// or not finite.
    pub fn new(
        activation: &'a dyn Activation<f64>,
        weight_variance: f64,
        bias_variance: f64,
    ) -> Result<Self> {
        Self::new_in(activation, weight_variance, bias_variance)
    }
}

impl<'a, F: Float> MeanField<'a, F> {
    /// [`MeanField::new`] for an activation in another scalar type (e.g. one taken from an
    /// `f32` model): evaluated in `F`, with the tolerance [`F32_TOLERANCE`] unless `F` is `f64`.
    ///
    /// ```
    /// use gradflow::activation::Tanh;
    /// use gradflow::theory::MeanField;
    ///
    /// let field = MeanField::<f32>::new_in(&Tanh, 1.0, 0.0)?;
    /// assert!((field.gradient_factor(0.0)? - 1.0).abs() < 1e-6);
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`MeanField::new`].
    pub fn new_in(
        activation: &'a dyn Activation<F>,
        weight_variance: f64,
        bias_variance: f64,
    ) -> Result<Self> {
        let component = format!("MeanField({})", activation.describe());
        Ok(MeanField {
            activation,
            weight_variance: check_variance(&component, "weight_variance", weight_variance)?,
            bias_variance: check_variance(&component, "bias_variance", bias_variance)?,
            tolerance: if F::NAME == "f64" { F64_TOLERANCE } else { F32_TOLERANCE },
        })
    }

    /// The same mean field with another relative tolerance for the expectations (default
    /// [`F64_TOLERANCE`] for `f64` activations, [`F32_TOLERANCE`] for `f32`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `tolerance` unless it is in `[1e-15, 1e-2]`.
    pub fn with_tolerance(mut self, tolerance: f64) -> Result<Self> {
        if !(1e-15..=1e-2).contains(&tolerance) {
            return Err(Error::config(
                "MeanField",
                "tolerance",
                format!("must be between 1e-15 and 1e-2, got {tolerance}"),
            ));
        }
        self.tolerance = tolerance;
        Ok(self)
    }

    /// The activation.
    pub fn activation(&self) -> &'a dyn Activation<F> {
        self.activation
    }

    /// `σ_w²`.
    pub fn weight_variance(&self) -> f64 {
        self.weight_variance
    }

    /// `σ_b²`.
    pub fn bias_variance(&self) -> f64 {
        self.bias_variance
    }

    fn phi(&self, u: f64) -> f64 {
        self.activation.value(F::lit(u)).as_f64()
    }

    fn phi_prime(&self, u: f64) -> f64 {
        let x = F::lit(u);
        self.activation.derivative(x, self.activation.value(x)).as_f64()
    }

    fn expect(&self, what: &str, breaks: &[f64], f: &mut dyn FnMut(f64) -> f64) -> Result<f64> {
        gaussian_expectation(f, breaks, self.tolerance)
            .map_err(|e| e.into_error(&format!("{what} for {}", self.activation.describe())))
    }

    fn check_q(&self, q: f64) -> Result<f64> {
        check_variance(&format!("MeanField({})", self.activation.describe()), "q", q)
    }

    /// `V(q) = σ_w²·E[φ(√q·z)²] + σ_b²`: the pre-activation variance of the next layer when this
    /// one's is `q`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a negative or non-finite `q`; [`Error::NonFinite`] when the
    /// expectation diverges or the activation returns a non-finite value.
    pub fn variance_map(&self, q: f64) -> Result<f64> {
        let root = self.check_q(q)?.sqrt();
        let second_moment = self.expect("E[φ(√q·z)²]", &[], &mut |z| self.phi(root * z).powi(2))?;
        let v = self.weight_variance * second_moment + self.bias_variance;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(Error::NonFinite {
                location: format!("mean-field variance map of {}", self.activation.describe()),
                detail: format!("V({q}) = {v}"),
            })
        }
    }

    /// `(E[φ(√q·z)], E[φ(√q·z)²])`: the mean and second moment of a layer's output over its
    /// units when its pre-activations have variance `q`.
    ///
    /// # Errors
    /// As [`MeanField::variance_map`].
    pub fn output_moments(&self, q: f64) -> Result<(f64, f64)> {
        let root = self.check_q(q)?.sqrt();
        if root == 0.0 {
            let value = self.phi(0.0);
            return Ok((value, value * value));
        }
        let mean = self.expect("E[φ(√q·z)]", &[], &mut |z| self.phi(root * z))?;
        let second = self.expect("E[φ(√q·z)²]", &[], &mut |z| self.phi(root * z).powi(2))?;
        Ok((mean, second))
    }

    /// `V′(q)`, the slope of the variance map: `σ_w²·E[φ(u)·φ′(u)·z]/√q` with `u = √q·z` (the
    /// derivative of `E[φ(√q·z)²]` under the integral). At `q = 0`, where it is only used when
    /// `φ(0) = 0`, the limit `σ_w²·(φ′(0⁺)² + φ′(0⁻)²)/2`.
    ///
    /// # Errors
    /// As [`MeanField::variance_map`].
    pub fn variance_slope(&self, q: f64) -> Result<f64> {
        let root = self.check_q(q)?.sqrt();
        if root == 0.0 {
            return Ok(self.weight_variance * self.derivative_square_at_zero());
        }
        let moment = self.expect("E[φ(u)φ′(u)z]", &[], &mut |z| {
            let u = root * z;
            self.phi(u) * self.phi_prime(u) * z
        })?;
        Ok(self.weight_variance * moment / root)
    }

    /// `(φ′(0⁺)² + φ′(0⁻)²)/2`: `E[φ′(√q·z)²]` in the limit `q → 0`.
    fn derivative_square_at_zero(&self) -> f64 {
        let tiny = f64::from(f32::MIN_POSITIVE);
        0.5 * (self.phi_prime(tiny).powi(2) + self.phi_prime(-tiny).powi(2))
    }

    /// `χ₁(q) = σ_w²·E[φ′(√q·z)²]`: the factor by which ‖∂L/∂h‖² grows per layer (going down)
    /// when the pre-activations have variance `q`. At `q = 0` the limit
    /// `σ_w²·(φ′(0⁺)² + φ′(0⁻)²)/2` (σ_w²/2 for ReLU, σ_w² for tanh).
    ///
    /// # Errors
    /// As [`MeanField::variance_map`].
    pub fn gradient_factor(&self, q: f64) -> Result<f64> {
        let root = self.check_q(q)?.sqrt();
        if root == 0.0 {
            return Ok(self.weight_variance * self.derivative_square_at_zero());
        }
        let moment = self.expect("E[φ′(√q·z)²]", &[], &mut |z| self.phi_prime(root * z).powi(2))?;
        Ok(self.weight_variance * moment)
    }

    /// The fixed point of the variance map reached from `q⁰ = 1` (see
    /// [`MeanField::fixed_point_from`]).
    ///
    /// # Errors
    /// As [`MeanField::fixed_point_from`].
    pub fn fixed_point(&self) -> Result<FixedPoint> {
        self.fixed_point_from(1.0)
    }

    /// Where the variance goes from `q⁰`: the first fixed point of `V` in the direction of
    /// `V(q⁰) − q⁰` (above `q⁰` when the map grows the variance, below when it shrinks it),
    /// which is where the iteration `q ↦ V(q)` converges when `V` is increasing — as it is for
    /// every built-in activation. Found by bracketing (steps of ×4) and the Illinois method to
    /// a relative precision of 10⁻¹⁴; [`FixedPoint::Unbounded`] when `V(q) > q` up to 10²⁵⁰.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a negative or non-finite `q0`; [`Error::NonFinite`] when an
    /// expectation diverges (e.g. an activation growing faster than linearly, whose variance
    /// overflows).
    pub fn fixed_point_from(&self, q0: f64) -> Result<FixedPoint> {
        let q0 = self.check_q(q0)?;
        let gap = |q: f64| -> Result<f64> { Ok(self.variance_map(q)? - q) };
        let start = gap(q0)?;
        let root = if start == 0.0 {
            q0
        } else if start > 0.0 {
            // Upwards: find q with V(q) ≤ q.
            let (mut lo, mut hi) = (q0, (4.0 * q0).max(q0 + start).max(f64::MIN_POSITIVE));
            loop {
                let g = gap(hi)?;
                if g <= 0.0 {
                    break;
                }
                if hi > UNBOUNDED_VARIANCE {
                    return Ok(FixedPoint::Unbounded {
                        growth: self.variance_map(hi)? / hi,
                        gradient_factor: self.gradient_factor(hi)?,
                    });
                }
                lo = hi;
                hi *= 4.0;
            }
            illinois(&mut |q| gap(q), lo, hi, 1e-14)?
        } else {
            // Downwards: find q with V(q) ≥ q (V(0) ≥ 0 always).
            let (mut lo, mut hi) = (q0 / 4.0, q0);
            loop {
                if lo < 1e-300 {
                    lo = 0.0;
                }
                let g = gap(lo)?;
                if g >= 0.0 {
                    break;
                }
                hi = lo;
                lo /= 4.0;
            }
            if gap(lo)? == 0.0 { lo } else { illinois(&mut |q| gap(q), lo, hi, 1e-14)? }
        };
        Ok(FixedPoint::Finite { q: root, slope: self.variance_slope(root)? })
    }

    /// `E[a(u₁)·b(u₂)]` for `u₁ = √q·z₁`, `u₂ = √q·(c·z₁ + √(1−c²)·z₂)`: an outer quadrature
    /// over `z₁` (cut at 0) of an inner one over `z₂` (cut where `u₂ = 0`), accurate to the
    /// tolerance relative to `E[|a(u)|]·E[|b(u)|]` (the value itself may be near 0, e.g. the
    /// cross moment of an odd activation at `c ≈ 0`).
    fn bivariate(
        &self,
        what: &str,
        q: f64,
        c: f64,
        a: &dyn Fn(f64) -> f64,
        b: &dyn Fn(f64) -> f64,
    ) -> Result<f64> {
        let root = q.sqrt();
        let scale = self.expect(what, &[], &mut |z| a(root * z).abs())?
            * self.expect(what, &[], &mut |z| b(root * z).abs())?;
        let s = (1.0 - c * c).max(0.0).sqrt();
        let inner_tolerance = (self.tolerance * 0.1).max(1e-15);
        let mut failure: Option<QuadratureFailure> = None;
        let mut outer = |z1: f64| -> f64 {
            if failure.is_some() {
                return 0.0;
            }
            let first = a(root * z1);
            if first == 0.0 {
                return 0.0;
            }
            let second = if s == 0.0 {
                b(root * c * z1)
            } else {
                let kink = -c * z1 / s;
                match gaussian_expectation(&mut |z2| b(root * (c * z1 + s * z2)), &[kink], inner_tolerance) {
                    Ok(v) => v,
                    Err(e) => {
                        failure = Some(e);
                        0.0
                    }
                }
            };
            first * second
        };
        let result = gaussian_expectation_within(&mut outer, &[], self.tolerance, self.tolerance * scale);
        if let Some(e) = failure {
            return Err(e.into_error(&format!("{what} for {}", self.activation.describe())));
        }
        result.map_err(|e| e.into_error(&format!("{what} for {}", self.activation.describe())))
    }

    fn check_correlation(&self, c: f64) -> Result<f64> {
        if (-1.0..=1.0).contains(&c) {
            Ok(c)
        } else {
            Err(Error::config(
                format!("MeanField({})", self.activation.describe()),
                "c",
                format!("a correlation must be in [−1, 1], got {c}"),
            ))
        }
    }

    /// `C(c) = (σ_w²·E[φ(u₁)φ(u₂)] + σ_b²)/V(q)`: the correlation of two inputs'
    /// pre-activations in the next layer when it is `c` in this one and both have variance `q`
    /// (normalized by `V(q)`, so that `C(1) = 1`; at `q = q*`, `V(q) = q`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for `q` negative or not finite, or `c` outside `[−1, 1]`;
    /// [`Error::NonFinite`] as for [`MeanField::variance_map`].
    pub fn correlation_map(&self, q: f64, c: f64) -> Result<f64> {
        let (q, c) = (self.check_q(q)?, self.check_correlation(c)?);
        let v = self.variance_map(q)?;
        if v == 0.0 {
            return Ok(1.0);
        }
        let phi = |u: f64| self.phi(u);
        let cross = self.bivariate("E[φ(u₁)φ(u₂)]", q, c, &phi, &phi)?;
        Ok(((self.weight_variance * cross + self.bias_variance) / v).clamp(-1.0, 1.0))
    }

    /// `C′(c) = σ_w²·q·E[φ′(u₁)φ′(u₂)]/V(q)`, the slope of the correlation map (Price's
    /// theorem); at `c = 1` and `q = q*` it is `χ₁`.
    ///
    /// # Errors
    /// As [`MeanField::correlation_map`].
    pub fn correlation_slope(&self, q: f64, c: f64) -> Result<f64> {
        let (q, c) = (self.check_q(q)?, self.check_correlation(c)?);
        let v = self.variance_map(q)?;
        if v == 0.0 {
            return Ok(0.0);
        }
        if c == 1.0 {
            return Ok(q * self.gradient_factor(q)? / v);
        }
        let phi_prime = |u: f64| self.phi_prime(u);
        let cross = self.bivariate("E[φ′(u₁)φ′(u₂)]", q, c, &phi_prime, &phi_prime)?;
        Ok(self.weight_variance * q * cross / v)
    }

    /// The stable fixed point of the correlation map at variance `q` (normally `q*`): 1 when
    /// `C′(1) ≤ 1`, otherwise the largest `c < 1` with `C(c) = c` (found by scanning down from 1
    /// at 16 points crowded near 1, then the Illinois method, to 10⁻¹²).
    ///
    /// # Errors
    /// As [`MeanField::correlation_map`].
    pub fn correlation_fixed_point(&self, q: f64) -> Result<f64> {
        if self.correlation_slope(q, 1.0)? <= 1.0 {
            return Ok(1.0);
        }
        let gap = |c: f64| -> Result<f64> { Ok(self.correlation_map(q, c)? - c) };
        // C(c) < c just below 1 (slope above 1); C(−1) ≥ −1, so a sign change exists in [−1, 1).
        let mut above = 1.0;
        // Points crowd near 1, where the map's structure is (16 of them: a double root between
        // two would be missed, which an increasing, convex-then-concave map does not have).
        for k in 1..=16 {
            let c = 1.0 - 2.0 * (k as f64 / 16.0).powi(2);
            let g = gap(c)?;
            if g >= 0.0 {
                return if g == 0.0 { Ok(c) } else { illinois(&mut |c| gap(c), c, above, 1e-12) };
            }
            above = c;
        }
        Ok(-1.0)
    }

    /// The whole picture at the fixed point reached from `q⁰ = 1`: `Ok(None)` when the variance
    /// grows without bound (no finite `q*`, see [`FixedPoint::Unbounded`]).
    ///
    /// # Errors
    /// As [`MeanField::fixed_point_from`].
    pub fn propagation(&self) -> Result<Option<Propagation>> {
        let (q_star, variance_slope) = match self.fixed_point()? {
            FixedPoint::Finite { q, slope } => (q, slope),
            FixedPoint::Unbounded { .. } => return Ok(None),
        };
        let chi_1 = self.gradient_factor(q_star)?;
        let (c_star, chi_c) = if q_star == 0.0 || chi_1 <= 1.0 {
            (1.0, chi_1)
        } else {
            let c_star = self.correlation_fixed_point(q_star)?;
            (c_star, self.correlation_slope(q_star, c_star)?)
        };
        Ok(Some(Propagation {
            q_star,
            variance_slope,
            chi_1,
            c_star,
            chi_c,
            xi_q: depth_scale(variance_slope),
            xi_c: depth_scale(chi_c),
            xi_gradient: depth_scale(chi_1),
            phase: Phase::of(chi_1),
        }))
    }
}

#[cfg(test)]
mod tests {
    //! Closed forms: ReLU (the arc-cosine kernel of Cho & Saul 2009), the identity, and a
    //! user-written `erf` activation (Williams 1997, "Computing with infinite networks"), which
    //! also shows that an activation outside the zoo works.
    use super::*;
    use crate::ActivationFamily;
    use crate::activation::{Identity, Relu, Tanh};
    use std::f64::consts::PI;

    /// erf(x), written by a user: E[erf(u₁)erf(u₂)] = (2/π)·arcsin(2Σ₁₂/√((1+2Σ₁₁)(1+2Σ₂₂))).
    #[derive(Debug)]
    struct Erf;

    impl Activation<f64> for Erf {
        fn name(&self) -> &'static str {
            "erf"
        }
        fn value(&self, x: f64) -> f64 {
            libm::erf(x)
        }
        fn derivative(&self, x: f64, _y: f64) -> f64 {
            2.0 / PI.sqrt() * (-x * x).exp()
        }
        fn gain(&self) -> f64 {
            1.0
        }
        fn max_derivative(&self) -> f64 {
            2.0 / PI.sqrt()
        }
        fn family(&self) -> ActivationFamily {
            ActivationFamily::Saturating
        }
    }

    fn erf_cross(q: f64, c: f64) -> f64 {
        2.0 / PI * (2.0 * q * c / (1.0 + 2.0 * q)).asin()
    }

    fn close(got: f64, exact: f64, tolerance: f64, what: &str) {
        let error = (got - exact).abs() / exact.abs().max(1e-300);
        assert!(
            error <= tolerance || (got - exact).abs() <= 1e-15,
            "{what}: {got} vs {exact} (relative {error:e})"
        );
    }

    #[test]
    fn relu_variance_map_gradient_factor_and_fixed_point_are_the_closed_forms() {
        for (sw, sb) in [(1.0, 0.1), (1.5, 0.05), (1.9, 1.0), (0.3, 2.0)] {
            let field = MeanField::new(&Relu, sw, sb).unwrap();
            for q in [1e-4, 0.37, 1.0, 12.5, 1e6] {
                close(field.variance_map(q).unwrap(), sw * q / 2.0 + sb, 1e-10, "V(q)");
                close(field.gradient_factor(q).unwrap(), sw / 2.0, 1e-10, "χ₁ = σ_w²/2");
                close(field.variance_slope(q).unwrap(), sw / 2.0, 1e-10, "V′(q)");
            }
            let FixedPoint::Finite { q, slope } = field.fixed_point().unwrap() else { panic!("finite") };
            close(q, sb / (1.0 - sw / 2.0), 1e-10, "q* = σ_b²/(1 − σ_w²/2)");
            close(slope, sw / 2.0, 1e-10, "V′(q*)");
            let p = field.propagation().unwrap().unwrap();
            assert_eq!((p.phase, p.c_star), (Phase::Ordered, 1.0));
            close(p.xi_c, -1.0 / (sw / 2.0f64).ln(), 1e-10, "ξ_c");
        }
    }

    #[test]
    fn relu_correlation_map_is_the_arc_cosine_kernel() {
        // E[φ(u₁)φ(u₂)] = q/(2π)·(√(1−c²) + (π − arccos c)·c);  E[φ′φ′] = (π − arccos c)/(2π).
        let (sw, sb, q) = (1.6, 0.2, 0.7);
        let field = MeanField::new(&Relu, sw, sb).unwrap();
        let v = sw * q / 2.0 + sb;
        for c in [-1.0, -0.6, 0.0, 0.3, 0.9, 0.999, 1.0] {
            let cross = q / (2.0 * PI) * ((1.0f64 - c * c).sqrt() + (PI - f64::acos(c)) * c);
            close(field.correlation_map(q, c).unwrap(), (sw * cross + sb) / v, 1e-10, &format!("C({c})"));
            let slope = sw * q * (PI - f64::acos(c)) / (2.0 * PI) / v;
            close(field.correlation_slope(q, c).unwrap(), slope, 1e-10, &format!("C′({c})"));
        }
    }

    #[test]
    fn the_identity_is_a_linear_network() {
        let field = MeanField::new(&Identity, 0.8, 0.3).unwrap();
        let FixedPoint::Finite { q, .. } = field.fixed_point().unwrap() else { panic!("finite") };
        close(q, 0.3 / 0.2, 1e-10, "q* = σ_b²/(1 − σ_w²)");
        close(field.gradient_factor(q).unwrap(), 0.8, 1e-12, "χ₁ = σ_w²");
        close(field.correlation_map(q, 0.4).unwrap(), (0.8 * q * 0.4 + 0.3) / q, 1e-10, "C(c)");
        // Without a bias the variance decays to exactly 0; above σ_w² = 1 it grows ×σ_w² per layer.
        let decaying = MeanField::new(&Identity, 0.5, 0.0).unwrap();
        assert_eq!(decaying.fixed_point().unwrap(), FixedPoint::Finite { q: 0.0, slope: 0.5 });
        let growing = MeanField::new(&Identity, 1.5, 0.0).unwrap().fixed_point().unwrap();
        let FixedPoint::Unbounded { growth, gradient_factor } = growing else { panic!("{growing:?}") };
        close(growth, 1.5, 1e-10, "growth");
        close(gradient_factor, 1.5, 1e-10, "χ₁ at large q");
    }

    #[test]
    fn erf_quantities_are_the_closed_forms() {
        for (sw, sb) in [(1.0, 0.05), (2.5, 0.3), (6.0, 0.0)] {
            let field = MeanField::new(&Erf, sw, sb).unwrap();
            for q in [0.01, 0.5, 3.0, 100.0] {
                close(field.variance_map(q).unwrap(), sw * erf_cross(q, 1.0) + sb, 1e-10, "V(q)");
                close(field.gradient_factor(q).unwrap(), sw * 4.0 / PI / (1.0 + 4.0 * q).sqrt(), 1e-10, "χ₁");
                for c in [-0.5, 0.2, 0.95] {
                    let v = sw * erf_cross(q, 1.0) + sb;
                    close(
                        field.correlation_map(q, c).unwrap(),
                        (sw * erf_cross(q, c) + sb) / v,
                        1e-10,
                        "C(c)",
                    );
                }
            }
            // q* from the closed-form map by bisection.
            let map = |q: f64| sw * erf_cross(q, 1.0) + sb;
            let (mut lo, mut hi) = (0.0f64, 100.0f64);
            for _ in 0..200 {
                let mid = 0.5 * (lo + hi);
                if map(mid) > mid { lo = mid } else { hi = mid }
            }
            let FixedPoint::Finite { q, .. } = field.fixed_point().unwrap() else { panic!("finite") };
            if lo > 0.0 {
                close(q, lo, 1e-10, "q*");
            } else {
                assert!(q < 1e-290, "q* = {q}");
            }
        }
    }

    #[test]
    fn erf_in_the_chaotic_phase_has_the_closed_form_correlation_fixed_point() {
        let (sw, sb) = (4.0, 0.2);
        let field = MeanField::new(&Erf, sw, sb).unwrap();
        let p = field.propagation().unwrap().unwrap();
        assert_eq!(p.phase, Phase::Chaotic, "{p:?}");
        let q = p.q_star;
        let map = |c: f64| (sw * erf_cross(q, c) + sb) / q;
        let (mut lo, mut hi) = (-1.0f64, 1.0 - 1e-9);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if map(mid) > mid { lo = mid } else { hi = mid }
        }
        close(p.c_star, lo, 1e-9, "c*");
        // C′(c*) from the closed form: d/dc (2/π)·arcsin(a·c) = (2/π)·a/√(1 − a²c²), a = 2q/(1+2q).
        let a = 2.0 * q / (1.0 + 2.0 * q);
        let slope = sw * 2.0 / PI * a / (1.0 - a * a * lo * lo).sqrt() / q;
        close(p.chi_c, slope, 1e-9, "C′(c*)");
        close(p.xi_c, -1.0 / slope.ln(), 1e-8, "ξ_c");
    }

    #[test]
    fn tanh_without_bias_is_odd_so_its_chaotic_correlation_settles_at_zero() {
        let p = MeanField::new(&Tanh, 2.0, 0.0).unwrap().propagation().unwrap().unwrap();
        assert_eq!(p.phase, Phase::Chaotic);
        assert!(p.c_star.abs() < 1e-12, "c* = {}", p.c_star);
        assert!(p.chi_c < 1.0 && p.xi_c.is_finite());
        // Below σ_w² = 1 it decays to q* = 0 with χ₁ = σ_w².
        let p = MeanField::new(&Tanh, 0.5, 0.0).unwrap().propagation().unwrap().unwrap();
        assert_eq!((p.q_star, p.chi_1, p.phase), (0.0, 0.5, Phase::Ordered));
    }

    #[test]
    fn bad_variances_and_divergent_activations_are_clear_errors() {
        for (sw, sb) in [(-1.0, 0.0), (1.0, f64::NAN), (f64::INFINITY, 0.0)] {
            let err = MeanField::new(&Tanh, sw, sb).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
            assert!(err.to_string().contains("tanh") && err.to_string().contains("variance"), "{err}");
        }
        let field = MeanField::new(&Tanh, 1.0, 0.0).unwrap();
        assert!(field.variance_map(-0.5).unwrap_err().to_string().contains("`q`"));
        assert!(field.correlation_map(1.0, 1.5).unwrap_err().to_string().contains("[−1, 1]"));
        assert!(field.with_tolerance(0.0).is_err());

        /// exp(x²): E[φ(√q·z)²] = E[exp(2q·z²)] diverges for q ≥ 1/4.
        #[derive(Debug)]
        struct Explosive;
        impl Activation<f64> for Explosive {
            fn name(&self) -> &'static str {
                "explosive"
            }
            fn value(&self, x: f64) -> f64 {
                (x * x).exp()
            }
            fn derivative(&self, x: f64, y: f64) -> f64 {
                2.0 * x * y
            }
            fn gain(&self) -> f64 {
                1.0
            }
            fn max_derivative(&self) -> f64 {
                f64::INFINITY
            }
            fn family(&self) -> ActivationFamily {
                ActivationFamily::Rectifier
            }
        }
        let field = MeanField::new(&Explosive, 1.0, 0.0).unwrap();
        assert!(field.variance_map(0.1).is_ok());
        let err = field.variance_map(1.0).unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }), "{err}");
        assert!(err.to_string().contains("explosive"), "{err}");
        assert!(field.fixed_point().is_err());
    }

    #[test]
    fn an_f32_activation_is_accurate_to_its_precision() {
        let wide = MeanField::new(&Tanh, 1.7, 0.1).unwrap().propagation().unwrap().unwrap();
        let narrow = MeanField::<f32>::new_in(&Tanh, 1.7, 0.1).unwrap().propagation().unwrap().unwrap();
        close(narrow.q_star, wide.q_star, 1e-5, "q* in f32");
        close(narrow.chi_1, wide.chi_1, 1e-5, "χ₁ in f32");
    }
}
