//! [`critical_weight_variance`]: the edge of chaos, `χ₁ = 1`, as a weight variance.

use super::mean_field::{FixedPoint, MeanField};
use super::roots::illinois;
use crate::Result;
use crate::activation::Activation;

/// The weight variance `σ_w²` at which `χ₁(q*) = 1` for bias variance `bias_variance`: the
/// critical line between the ordered phase (below: gradients vanish) and the chaotic one
/// (above: they explode), found by the Illinois method on `χ₁(q*(σ_w²)) − 1` for
/// `σ_w² ∈ [10⁻³, 10³]` to a relative precision of 10⁻¹².
///
/// Where the variance has no finite fixed point (ReLU above `σ_w² = 2` with a bias), `χ₁ − 1`
/// is taken as positive: unbounded growth happens only when the activation's slopes at ±∞,
/// `a₊`, `a₋`, give `σ_w²·(a₊² + a₋²)/2 ≥ 1`, the limit of `χ₁` there. So for ReLU the critical
/// weight variance is 2 for every bias variance (He et al.'s), approached from below.
///
/// `Ok(None)` when `χ₁ − 1` does not change sign on that range.
///
/// Precision: where `χ₁ − 1` crosses zero with a slope (any bias variance above 0) the edge is
/// found to 10⁻¹⁰; without a bias an odd activation's `χ₁(q*) − 1` grows only like
/// `(σ_w² − σ_c²)²` on the chaotic side (tanh: 3·10⁻⁵ at σ_w² = 1.01), so the edge is located to
/// about 10⁻⁷.
///
/// ```
/// use gradflow::activation::{Relu, Tanh};
/// use gradflow::theory::critical_weight_variance;
///
/// assert!((critical_weight_variance(&Relu, 0.0)?.unwrap() - 2.0).abs() < 1e-10);
/// // tanh without bias: σ_w² = 1 (tanh′(0) = 1), to 10⁻⁷ (see Precision); a bias moves the
/// // edge to larger σ_w².
/// assert!((critical_weight_variance(&Tanh, 0.0)?.unwrap() - 1.0).abs() < 1e-7);
/// assert!(critical_weight_variance(&Tanh, 0.05)?.unwrap() > 1.1);
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// As [`MeanField::new`] and [`MeanField::fixed_point`].
pub fn critical_weight_variance(activation: &dyn Activation<f64>, bias_variance: f64) -> Result<Option<f64>> {
    MeanField::new(activation, 1.0, bias_variance)?;
    let excess = |weight_variance: f64| -> Result<f64> {
        let field = MeanField::new(activation, weight_variance, bias_variance)?;
        Ok(match field.fixed_point()? {
            FixedPoint::Finite { q, .. } => field.gradient_factor(q)? - 1.0,
            FixedPoint::Unbounded { .. } => f64::INFINITY,
        })
    };
    // Scan upwards by ×2 for the first sign change.
    let mut lo = 1e-3;
    let below = excess(lo)?;
    if below >= 0.0 {
        return Ok((below == 0.0).then_some(lo));
    }
    while lo < 1e3 {
        let hi = (lo * 2.0).min(1e3);
        let above = excess(hi)?;
        if above >= 0.0 {
            let mut finite = |w: f64| -> Result<f64> {
                let e = excess(w)?;
                // The unbounded side counts as "just above": keeps the secant steps finite.
                Ok(if e.is_finite() { e } else { f64::MIN_POSITIVE })
            };
            return illinois(&mut finite, lo, hi, 1e-12).map(Some);
        }
        lo = hi;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::{Identity, Relu, Sigmoid, Tanh};

    #[test]
    fn relu_and_the_identity_have_their_closed_form_edges() {
        for sb in [0.0, 0.05, 1.0] {
            let relu = critical_weight_variance(&Relu, sb).unwrap().unwrap();
            assert!((relu - 2.0).abs() < 1e-10, "ReLU at σ_b² = {sb}: {relu}");
            // (Linear crossings: both are exact to 1e-10.)
            let identity = critical_weight_variance(&Identity, sb).unwrap().unwrap();
            assert!((identity - 1.0).abs() < 1e-10, "identity at σ_b² = {sb}: {identity}");
        }
    }

    #[test]
    fn on_the_tanh_edge_chi_1_is_one_and_the_edge_moves_right_with_the_bias() {
        let mut previous = 0.0;
        for sb in [0.0, 0.01, 0.05, 0.3, 1.0] {
            let sw = critical_weight_variance(&Tanh, sb).unwrap().unwrap();
            assert!(sw > previous, "σ_b² = {sb}: {sw} after {previous}");
            previous = sw;
            let field = MeanField::new(&Tanh, sw, sb).unwrap();
            let FixedPoint::Finite { q, .. } = field.fixed_point().unwrap() else { panic!() };
            assert!((field.gradient_factor(q).unwrap() - 1.0).abs() < 1e-9, "σ_b² = {sb}");
        }
        // Sigmoid has an edge too (its derivative is at most 1/4, so σ_w² > 16).
        let sigmoid = critical_weight_variance(&Sigmoid, 0.0).unwrap().unwrap();
        assert!(sigmoid > 16.0, "{sigmoid}");
    }
}
