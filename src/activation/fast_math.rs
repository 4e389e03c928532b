//! Vectorizable `f32` versions of `tanh`, `exp`, the logistic sigmoid and Φ, behind
//! [`Float::fast_tanh`](crate::Float::fast_tanh) / [`Float::fast_sigmoid`](crate::Float::fast_sigmoid)
//! (the f32 [`Tanh`](super::Tanh) and [`Sigmoid`](super::Sigmoid) layers, the recurrent cells)
//! and the f32 GELU.
//!
//! `f32::tanh` and `f32::exp` are calls into the C library, one element at a time (about 16 ns
//! per `tanh` on the machine the benchmarks run on). These are branch-free polynomial and
//! rational approximations that the compiler turns into SIMD code when inlined into a loop run
//! through [`vectorized`], so that AVX-512 or AVX2 is used where the CPU has it. Accuracy against the
//! exact functions (checked by the tests below on a dense grid over ±1000): relative error
//! below 5·10⁻⁷ for `tanh`, below 3·10⁻⁷ for `exp` on normal results and for the sigmoid where
//! its value is a normal `f32` (absolute error below 1.2·10⁻³⁸ where it is not); the limits at
//! ±∞ are exact, and NaN stays NaN. `f64` keeps the exact `std` functions (gradient checks run
//! in `f64`).

use crate::vectorize::vectorized;

/// Beyond ±7.905311 `tanh` rounds to ±1 in `f32`; the rational approximation is clamped there
/// (Eigen's `generic_fast_tanh_float`, Eigen/src/Core/MathFunctionsImpl.h).
const TANH_CLAMP: f32 = 7.905_311;

/// Odd numerator and even denominator of the [13/6] rational approximation of `tanh` on
/// [−7.905311, 7.905311], from Eigen's `generic_fast_tanh_float`.
const TANH_ALPHA: [f32; 7] = [
    4.893_524_6e-3,   // α₁
    6.372_619_3e-4,   // α₃
    1.485_722_4e-5,   // α₅
    5.122_297e-8,     // α₇
    -8.604_672e-11,   // α₉
    2.000_188e-13,    // α₁₁
    -2.760_768_5e-16, // α₁₃
];
const TANH_BETA: [f32; 4] = [
    4.893_525e-3,   // β₀
    2.268_434_7e-3, // β₂
    1.185_347_1e-4, // β₄
    1.198_258_4e-6, // β₆
];

/// `tanh(x)` to within 5·10⁻⁷ relative error, vectorizable.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    // `clamp` (unlike `min`/`max`) lets NaN through unchanged.
    let x = x.clamp(-TANH_CLAMP, TANH_CLAMP);
    let x2 = x * x;
    let [a1, a3, a5, a7, a9, a11, a13] = TANH_ALPHA;
    let p = ((((((a13 * x2 + a11) * x2 + a9) * x2 + a7) * x2 + a5) * x2 + a3) * x2 + a1) * x;
    let [b0, b2, b4, b6] = TANH_BETA;
    let q = ((b6 * x2 + b4) * x2 + b2) * x2 + b0;
    p / q
}

/// Below this `exp` is not a normal `f32` (ln of the smallest normal, 2⁻¹²⁶); returns 0 there.
const EXP_MIN: f32 = -87.336_55;
/// Above this `2ⁿ` would overflow the exponent field; returns +∞ there (eˣ overflows `f32`
/// only above 88.72, so results in (1.65·10³⁸, 3.4·10³⁸) are lost; the sigmoid, the only user,
/// takes `exp` of non-positive numbers only).
const EXP_MAX: f32 = 88.0;
/// 1.5·2²³: adding it rounds a float of magnitude below 2²² to the nearest integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `eˣ` to within 3·10⁻⁷ relative error where the result is a normal `f32` and x ≤ 88,
/// vectorizable.
///
/// Cephes `expf` (Stephen L. Moshier, Cephes Math Library): `x = n·ln 2 + r` with
/// `|r| ≤ ln 2 / 2` (ln 2 split in two parts so that `r` is exact), a degree-7 polynomial for
/// `eʳ`, and `2ⁿ` built directly in the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // 0.693359375, exact in f32
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let shifted = xc * LOG2_E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes: 5.0000001201e-1, which rounds to 0.5 in f32
    let er = p * r * r + r + 1.0;
    // `shifted` is exactly 1.5·2²³ + n, whose last bit is worth 1: its bit pattern minus the
    // magic number's is n.
    let n_int = shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits()) as i32;
    let two_n = f32::from_bits((n_int.wrapping_add(127) << 23) as u32);
    let y = er * two_n;
    if x > EXP_MAX {
        f32::INFINITY
    } else if x < EXP_MIN {
        0.0
    } else {
        y
    }
}

/// The logistic sigmoid `1/(1 + e⁻ˣ)` in the two-branch form of
/// [`stable_sigmoid`](super::stable_sigmoid), vectorizable.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 { r } else { e * r }
}

/// Φ(x), the standard normal CDF ½·erfc(−x/√2), vectorizable; relative error below 2·10⁻⁶
/// for |x| ≤ 3 and 2·10⁻⁵ in the tails, 0 below x ≈ −13.2 (where Φ is not a normal `f32`).
///
/// erfc(z) for z ≥ 0 is Numerical Recipes' Chebyshev fit (Press, Teukolsky, Vetterling &
/// Flannery, *Numerical Recipes*, 2nd ed., §6.2, `erfcc`, fractional error below 1.2·10⁻⁷):
/// t = 1/(1 + z/2), erfc(z) = t·exp(−z² − 1.26551223 + t·P(t)); Φ(−|x|) = ½·erfc(|x|/√2) keeps
/// its relative accuracy in the negative tail, and Φ(|x|) = 1 − Φ(−|x|).
#[inline(always)]
pub(crate) fn normal_cdf(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_9;
    p = p * t - 1.135_204;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_7;
    p = p * t - 1.265_512_2;
    let lower = 0.5 * t * exp(p - z * z);
    // NaN fails the comparison and takes `lower`, which is NaN too.
    if x >= 0.0 { 1.0 - lower } else { lower }
}

/// The exact GELU x·Φ(x), vectorized.
pub(crate) fn gelu_slice(x: &[f32], y: &mut [f32]) {
    vectorized(
        #[inline(always)]
        || map(x, y, |x| x * normal_cdf(x)),
    )
}

/// The exact GELU's backward: `grad_x = grad_y · (Φ(x) + x·φ(x))`, vectorized.
pub(crate) fn gelu_backward_slice(x: &[f32], grad_y: &[f32], grad_x: &mut [f32]) {
    // 1/√(2π)
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    vectorized(
        #[inline(always)]
        || {
            for ((gx, &gy), &x) in grad_x.iter_mut().zip(grad_y).zip(x) {
                *gx = gy * (normal_cdf(x) + x * INV_SQRT_2PI * exp(-0.5 * x * x));
            }
        },
    )
}

/// `y[i] = f(x[i])`, inlined into its caller so that it is compiled for the caller's target.
#[inline(always)]
fn map(x: &[f32], y: &mut [f32], f: impl Fn(f32) -> f32) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = f(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// −1000 … 1000 in steps of 1/512 (dense where the functions bend, and every value exact in
    /// `f32`), plus small magnitudes down to 2⁻⁴⁰ of both signs.
    fn grid() -> Vec<f32> {
        let mut xs: Vec<f32> = (-512_000..=512_000).map(|i| i as f32 / 512.0).collect();
        for e in -40..0 {
            for m in [1.0f32, 1.3, 1.7] {
                let v = m * 2f32.powi(e);
                xs.extend([v, -v]);
            }
        }
        xs
    }

    fn relative_error(got: f32, exact: f64) -> f64 {
        if exact == 0.0 { (got as f64).abs() } else { ((got as f64) - exact).abs() / exact.abs() }
    }

    #[test]
    fn tanh_is_within_5e_7_relative_of_the_exact_value_from_minus_to_plus_1000() {
        let xs = grid();
        let mut ys = vec![0.0; xs.len()];
        // Through the layer's vectorized path, which is what the networks run.
        crate::Activation::<f32>::forward_slice(&super::super::Tanh, &xs, &mut ys);
        let mut worst = (0.0f64, 0.0f32);
        for (&x, &y) in xs.iter().zip(&ys) {
            assert!(y.abs() <= 1.0, "tanh({x}) = {y} is outside [−1, 1]");
            let err = relative_error(y, (x as f64).tanh());
            if err > worst.0 {
                worst = (err, x);
            }
        }
        assert!(worst.0 < 5e-7, "largest relative error {:e} at x = {}", worst.0, worst.1);
        assert_eq!(
            (tanh(1000.0), tanh(-1000.0), tanh(f32::INFINITY), tanh(f32::NEG_INFINITY)),
            (1.0, -1.0, 1.0, -1.0)
        );
        assert_eq!(tanh(0.0), 0.0);
        assert!(tanh(f32::NAN).is_nan());
    }

    #[test]
    fn exp_is_within_3e_7_relative_where_the_result_is_normal() {
        let mut worst = (0.0f64, 0.0f32);
        for x in grid() {
            let y = exp(x);
            let exact = (x as f64).exp();
            if (x as f64) < EXP_MIN as f64 {
                assert_eq!(y, 0.0, "exp({x})");
            } else if x > EXP_MAX {
                assert_eq!(y, f32::INFINITY, "exp({x})");
            } else {
                let err = relative_error(y, exact);
                if err > worst.0 {
                    worst = (err, x);
                }
            }
        }
        assert!(worst.0 < 3e-7, "largest relative error {:e} at x = {}", worst.0, worst.1);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!((exp(f32::NEG_INFINITY), exp(f32::INFINITY)), (0.0, f32::INFINITY));
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_is_within_3e_7_relative_where_normal_and_exact_in_the_limits() {
        let xs = grid();
        let mut ys = vec![0.0; xs.len()];
        crate::Activation::<f32>::forward_slice(&super::super::Sigmoid, &xs, &mut ys);
        let mut worst = (0.0f64, 0.0f32);
        for (&x, &y) in xs.iter().zip(&ys) {
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((0.0..=1.0).contains(&y), "σ({x}) = {y}");
            if exact < f32::MIN_POSITIVE as f64 {
                assert!(
                    (y as f64 - exact).abs() < f32::MIN_POSITIVE as f64,
                    "σ({x}) = {y:e}, exact {exact:e}"
                );
            } else {
                let err = relative_error(y, exact);
                if err > worst.0 {
                    worst = (err, x);
                }
            }
        }
        assert!(worst.0 < 3e-7, "largest relative error {:e} at x = {}", worst.0, worst.1);
        assert_eq!((sigmoid(1000.0), sigmoid(-1000.0), sigmoid(0.0)), (1.0, 0.0, 0.5));
        assert!(sigmoid(f32::NAN).is_nan());
    }
}
