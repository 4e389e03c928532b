//! Gaussian expectations `E[f(z)]`, `z ~ N(0, 1)`, by adaptive Gauss–Kronrod quadrature that
//! knows where activations have kinks.
//!
//! # Why not plain Gauss–Hermite
//! Gauss–Hermite of order n is exact for polynomials of degree < 2n and converges fast for
//! smooth integrands, but the integrands of mean-field theory are not smooth: ReLU's derivative
//! jumps at 0, so `E[φ′(√q·z)²]` is the integral of a step function, and Gauss–Hermite's error
//! then falls only like `n^(-1/2)`. Splitting the integral at the kink makes each piece smooth.
//!
//! # What is computed
//! `∫ f(z)·e^{−z²/2}/√(2π) dz` is cut at 0 (where every built-in activation has its kink, the
//! pre-activations being centred) and at the caller's extra break points, truncated at ±`Z` with
//! `Z` grown until the integrand there is negligible, and each piece is integrated by the
//! 15-point Gauss–Kronrod rule, the panel with the largest error estimate bisected until the
//! total estimate `Σ|K15 − G7|` is below `tolerance · ∫|f|·pdf`. A kink the caller did not name
//! (a user-written activation's) is found by the bisection; it costs more evaluations, not
//! accuracy. Non-finite values, an integrand that is not negligible even at |z| = 37 (where the
//! density is 10⁻²⁹⁸) and a subdivision budget exhausted are errors, never a silently wrong
//! number.

use crate::Error;

/// The 15-point Kronrod nodes on [−1, 1] (the non-negative half, descending); the odd entries
/// (1, 3, 5, 7) are the 7-point Gauss nodes. Values from QUADPACK's `qk15.f` (Piessens et al.
/// 1983), checked in the tests by exactness on polynomials.
#[allow(clippy::excessive_precision)] // QUADPACK's digits, to compare with the source
const KRONROD_NODES: [f64; 8] = [
    0.991_455_371_120_812_639_206_854_697_526_329,
    0.949_107_912_342_758_524_526_189_684_047_851,
    0.864_864_423_359_769_072_789_712_788_640_926,
    0.741_531_185_599_394_439_863_864_773_280_788,
    0.586_087_235_467_691_130_294_144_845_693_013,
    0.405_845_151_377_397_166_906_606_412_076_961,
    0.207_784_955_007_898_467_600_689_403_773_245,
    0.0,
];

/// The 15-point Kronrod weights for [`KRONROD_NODES`] (QUADPACK `qk15.f`).
#[allow(clippy::excessive_precision)] // QUADPACK's digits, to compare with the source
const KRONROD_WEIGHTS: [f64; 8] = [
    0.022_935_322_010_529_224_963_732_008_058_970,
    0.063_092_092_629_978_553_290_700_663_189_204,
    0.104_790_010_322_250_183_839_876_322_541_518,
    0.140_653_259_715_525_918_745_189_590_510_238,
    0.169_004_726_639_267_902_826_583_426_598_550,
    0.190_350_578_064_785_409_913_256_402_421_014,
    0.204_432_940_075_298_892_414_161_999_234_649,
    0.209_482_141_084_727_828_012_999_174_891_714,
];

/// The 7-point Gauss weights for the nodes `KRONROD_NODES[1, 3, 5, 7]` (QUADPACK `qk15.f`).
#[allow(clippy::excessive_precision)] // QUADPACK's digits, to compare with the source
const GAUSS_WEIGHTS: [f64; 4] = [
    0.129_484_966_168_869_693_270_611_432_679_082,
    0.279_705_391_489_276_667_901_467_771_423_780,
    0.381_830_050_505_118_944_950_369_775_488_975,
    0.417_959_183_673_469_387_755_102_040_816_327,
];

/// Where the integration range starts: ±10 leaves out a Gaussian mass of 1.5·10⁻²³.
const INITIAL_CUTOFF: f64 = 10.0;
/// The widest range tried: the density at 37 is 10⁻²⁹⁸, near the smallest normal f64.
const MAX_CUTOFF: f64 = 37.0;
/// Panels bisected at most, per expectation (a derivative jump nobody named needs about 50).
const MAX_PANELS: usize = 4000;

/// The standard normal density.
fn pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() * (0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2)
}

/// One panel [a, b] with its Kronrod estimate, error estimate and ∫|f|·pdf.
#[derive(Debug, Clone, Copy)]
struct Panel {
    a: f64,
    b: f64,
    value: f64,
    error: f64,
    magnitude: f64,
}

/// What went wrong in a quadrature, turned into an [`Error`] by the caller, who knows what was
/// being integrated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum QuadratureFailure {
    /// The integrand was NaN or infinite at `z`.
    NonFinite { z: f64, value: f64 },
    /// The integrand is not negligible at |z| = `MAX_CUTOFF`: the expectation diverges (or
    /// exceeds what f64 holds).
    Diverges { z: f64 },
    /// The error estimate stayed above the tolerance after `MAX_PANELS` panels.
    NoConvergence { error: f64, value: f64 },
}

impl QuadratureFailure {
    /// The failure as a [`Error::NonFinite`] (divergence, non-finite values) or
    /// [`Error::InvalidConfig`] (no convergence), naming `what` was integrated.
    pub(crate) fn into_error(self, what: &str) -> Error {
        match self {
            QuadratureFailure::NonFinite { z, value } => Error::NonFinite {
                location: format!("mean-field expectation {what}"),
                detail: format!("the integrand is {value} at z = {z} (z ~ N(0, 1))"),
            },
            QuadratureFailure::Diverges { z } => Error::NonFinite {
                location: format!("mean-field expectation {what}"),
                detail: format!(
                    "the expectation diverges: the integrand times the Gaussian density is not \
                     negligible even at |z| = {z}"
                ),
            },
            QuadratureFailure::NoConvergence { error, value } => Error::config(
                "theory quadrature",
                "tolerance",
                format!(
                    "{what}: the error estimate {error:.1e} stayed above the tolerance after {MAX_PANELS} \
                     panels (value {value}); the integrand may be discontinuous or noisy"
                ),
            ),
        }
    }
}

/// The 15-point Kronrod estimate of ∫_a^b g, the 7-point Gauss one, and ∫_a^b |g|.
fn kronrod(
    g: &mut dyn FnMut(f64) -> std::result::Result<f64, QuadratureFailure>,
    a: f64,
    b: f64,
) -> std::result::Result<Panel, QuadratureFailure> {
    let centre = 0.5 * (a + b);
    let half = 0.5 * (b - a);
    let (mut kronrod, mut gauss, mut magnitude) = (0.0, 0.0, 0.0);
    for (i, (&x, &w)) in KRONROD_NODES.iter().zip(&KRONROD_WEIGHTS).enumerate() {
        let values =
            if x == 0.0 { [g(centre)?, 0.0] } else { [g(centre - half * x)?, g(centre + half * x)?] };
        let sum = values[0] + values[1];
        kronrod += w * sum;
        magnitude += w * (values[0].abs() + values[1].abs());
        if i % 2 == 1 {
            gauss += GAUSS_WEIGHTS[i / 2] * sum;
        }
    }
    Ok(Panel {
        a,
        b,
        value: kronrod * half,
        error: ((kronrod - gauss) * half).abs(),
        magnitude: magnitude * half,
    })
}

/// `E[f(z)]` for `z ~ N(0, 1)`, to a relative accuracy of `tolerance` (of `E[|f(z)|]`), with
/// the integral cut at 0 and at every point of `breaks`.
///
/// # Errors
/// [`QuadratureFailure`] when `f` is not finite somewhere, the expectation diverges, or the
/// error estimate does not fall below the tolerance.
pub(crate) fn gaussian_expectation(
    f: &mut dyn FnMut(f64) -> f64,
    breaks: &[f64],
    tolerance: f64,
) -> std::result::Result<f64, QuadratureFailure> {
    gaussian_expectation_within(f, breaks, tolerance, 0.0)
}

/// [`gaussian_expectation`] that also stops when the error estimate is below `floor`: for an
/// integrand that is itself computed to an absolute accuracy (an inner quadrature), whose
/// noise no refinement removes.
pub(crate) fn gaussian_expectation_within(
    f: &mut dyn FnMut(f64) -> f64,
    breaks: &[f64],
    tolerance: f64,
    floor: f64,
) -> std::result::Result<f64, QuadratureFailure> {
    let mut g = |z: f64| {
        let value = f(z);
        if !value.is_finite() {
            return Err(QuadratureFailure::NonFinite { z, value });
        }
        // 0 · f for an f that is finite: the density underflows to 0 beyond |z| ≈ 38.6.
        Ok(value * pdf(z))
    };
    let cutoff = cutoff(&mut g)?;
    let mut points: Vec<f64> = vec![-cutoff, 0.0, cutoff];
    points.extend(breaks.iter().copied().filter(|b| b.is_finite() && b.abs() < cutoff && *b != 0.0));
    // Unit panels to start with, so that a narrow feature cannot hide between two nodes of one
    // wide panel.
    points
        .extend((1..cutoff.ceil() as i32).flat_map(|k| [k as f64, -(k as f64)]).filter(|k| k.abs() < cutoff));
    points.sort_by(f64::total_cmp);
    points.dedup();
    let mut panels = Vec::with_capacity(points.len() + 64);
    for pair in points.windows(2) {
        panels.push(kronrod(&mut g, pair[0], pair[1])?);
    }
    loop {
        let value: f64 = panels.iter().map(|p| p.value).sum();
        let error: f64 = panels.iter().map(|p| p.error).sum();
        let magnitude: f64 = panels.iter().map(|p| p.magnitude).sum();
        if error <= tolerance * magnitude || error <= floor || magnitude == 0.0 {
            return Ok(value);
        }
        if panels.len() >= MAX_PANELS {
            return Err(QuadratureFailure::NoConvergence { error, value });
        }
        let worst =
            (0..panels.len()).max_by(|&i, &j| panels[i].error.total_cmp(&panels[j].error)).expect("panels");
        let Panel { a, b, .. } = panels[worst];
        let middle = 0.5 * (a + b);
        if middle <= a || middle >= b {
            // The panel cannot be split further in f64: its error is what it is.
            return Err(QuadratureFailure::NoConvergence { error, value });
        }
        panels[worst] = kronrod(&mut g, a, middle)?;
        panels.push(kronrod(&mut g, middle, b)?);
    }
}

/// The truncation point: the smallest of 10, 15, …, 35, 37 beyond which the integrand is
/// negligible (below 10⁻¹⁸ of its largest value seen, at two points per side).
fn cutoff(
    g: &mut dyn FnMut(f64) -> std::result::Result<f64, QuadratureFailure>,
) -> std::result::Result<f64, QuadratureFailure> {
    let mut largest = [0.0f64, 0.5, 1.0, 2.0, 3.0, 5.0]
        .iter()
        .map(|&z| Ok(g(z)?.abs().max(g(-z)?.abs())))
        .collect::<std::result::Result<Vec<f64>, _>>()?
        .into_iter()
        .fold(0.0, f64::max);
    let mut z = INITIAL_CUTOFF;
    loop {
        let edge = [z, z - 1.0]
            .iter()
            .map(|&t| Ok(g(t)?.abs().max(g(-t)?.abs())))
            .collect::<std::result::Result<Vec<f64>, _>>()?;
        let edge = edge.into_iter().fold(0.0, f64::max);
        if edge <= 1e-18 * largest || (edge == 0.0 && largest == 0.0) {
            return Ok(z);
        }
        largest = largest.max(edge);
        if z >= MAX_CUTOFF {
            return Err(QuadratureFailure::Diverges { z });
        }
        z = (z + 5.0).min(MAX_CUTOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(mut f: impl FnMut(f64) -> f64) -> f64 {
        gaussian_expectation(&mut f, &[], 1e-12).unwrap()
    }

    #[test]
    fn the_kronrod_rule_is_exact_for_polynomials_up_to_degree_22_and_gauss_up_to_13() {
        // ∫_{-1}^{1} x^k dx = 2/(k+1) for even k, 0 for odd k.
        for k in 0..=23 {
            let exact = if k % 2 == 0 { 2.0 / (k + 1) as f64 } else { 0.0 };
            let mut g = |x: f64| Ok(x.powi(k));
            let panel = kronrod(&mut g, -1.0, 1.0).unwrap();
            let kronrod_error = (panel.value - exact).abs();
            if k <= 22 {
                assert!(kronrod_error < 1e-15, "K15 on x^{k}: {kronrod_error:e}");
            }
            // The Gauss part: exact up to degree 13, so K15 − G7 vanishes there.
            if k <= 13 {
                assert!(panel.error < 1e-15, "G7 on x^{k}: K15 − G7 = {:e}", panel.error);
            }
        }
        // Degree 14 is beyond G7: the error estimate sees it.
        let mut g = |x: f64| Ok(x.powi(14));
        assert!(kronrod(&mut g, -1.0, 1.0).unwrap().error > 1e-6);
    }

    #[test]
    fn gaussian_moments_are_exact() {
        // E[z^2k] = (2k − 1)!!
        let mut double_factorial = 1.0;
        for k in 1..=8 {
            double_factorial *= (2 * k - 1) as f64;
            let got = expect(|z| z.powi(2 * k));
            assert!((got - double_factorial).abs() <= 1e-13 * double_factorial, "E[z^{}] = {got}", 2 * k);
        }
        assert!(expect(|z| z.powi(3)).abs() < 1e-14);
        assert!((expect(|_| 1.0) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn step_functions_and_kinks_at_zero_are_exact() {
        // E[1{z > 0}] = 1/2, E[max(z, 0)] = 1/√(2π), E[max(z, 0)²] = 1/2.
        let step = expect(|z| if z > 0.0 { 1.0 } else { 0.0 });
        assert!((step - 0.5).abs() < 1e-15, "{step}");
        let relu = expect(|z| z.max(0.0));
        assert!((relu - 1.0 / (2.0 * std::f64::consts::PI).sqrt()).abs() < 1e-15, "{relu}");
        assert!((expect(|z| z.max(0.0).powi(2)) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn a_jump_away_from_zero_is_found_by_bisection_or_named_as_a_break() {
        // P(z > 0.3) = Φ(−0.3) = 0.382088577811047... (erfc(0.3/√2)/2, computed with mpmath).
        let exact = 0.382_088_577_811_047_1;
        let named = gaussian_expectation(&mut |z| if z > 0.3 { 1.0 } else { 0.0 }, &[0.3], 1e-12).unwrap();
        assert!((named - exact).abs() < 1e-14, "{named}");
        let found = gaussian_expectation(&mut |z| if z > 0.3 { 1.0 } else { 0.0 }, &[], 1e-11).unwrap();
        assert!((found - exact).abs() < 1e-10, "{found}");
    }

    #[test]
    fn a_wide_integrand_moves_the_cutoff_and_a_divergent_one_is_an_error() {
        // E[e^{4z}] = e^8: the integrand peaks at z = 4 and is not negligible at 10.
        let got = expect(|z| (4.0 * z).exp());
        assert!((got / 8f64.exp() - 1.0).abs() < 1e-12, "{got}");
        // E[e^{z²}] diverges.
        let err = gaussian_expectation(&mut |z| (z * z).exp(), &[], 1e-12).unwrap_err();
        assert!(
            matches!(err, QuadratureFailure::Diverges { .. } | QuadratureFailure::NonFinite { .. }),
            "{err:?}"
        );
        let err =
            gaussian_expectation(&mut |z| if z > 1.0 { f64::NAN } else { 1.0 }, &[], 1e-12).unwrap_err();
        assert!(matches!(err, QuadratureFailure::NonFinite { .. }), "{err:?}");
        let msg = err.into_error("E[φ(√q·z)²]").to_string();
        assert!(msg.contains("E[φ(√q·z)²]") && msg.contains("NaN"), "{msg}");
    }
}
