//! [`Adam`]: adaptive moment estimation, exactly as `torch.optim.Adam` (with its L2 weight decay
//! and AMSGrad); also the update shared with [`AdamW`](super::AdamW).

use ndarray::{ArrayD, ArrayViewD, Zip};

use super::state::{Optional, ParamStates};
use super::{Optimizer, validate};
use crate::layer::Layer;
use crate::param::ParamViewMut;
use crate::vectorize::all_entries;
use crate::{Error, Float, Result};

/// The hyperparameters of [`Adam`], with PyTorch's names and defaults
/// (`lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`, no weight decay, no AMSGrad).
///
/// ```
/// use gradflow::optim::AdamConfig;
/// let adam = AdamConfig::new(3e-4).betas(0.9, 0.98).build::<f32>()?;
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    /// Learning rate, positive.
    pub lr: f64,
    /// Decay rates `(β₁, β₂)` of the first and second moment estimates, each in `[0, 1)`.
    pub betas: (f64, f64),
    /// Added to the denominator, positive.
    pub eps: f64,
    /// L2 penalty added to the gradient, `g + weight_decay · p`, non-negative.
    pub weight_decay: f64,
    /// Use the maximum of past second-moment estimates (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig::new(1e-3)
    }
}

impl AdamConfig {
    /// PyTorch's defaults with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        AdamConfig { lr, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0, amsgrad: false }
    }

    /// Sets `(β₁, β₂)`.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.betas = (beta1, beta2);
        self
    }

    /// Sets `eps`.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the (L2) weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Turns AMSGrad on or off.
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first invalid field: `lr` or `eps` not positive, a
    /// beta outside `[0, 1)`, negative `weight_decay`.
    pub fn validate(&self) -> Result<()> {
        self.hyper(false).validate("Adam")
    }

    /// Validates the configuration and builds the optimizer.
    ///
    /// # Errors
    /// See [`AdamConfig::validate`].
    pub fn build<F: Float>(self) -> Result<Adam<F>> {
        Adam::new(self)
    }

    pub(crate) fn hyper(&self, decoupled_weight_decay: bool) -> AdamHyper {
        AdamHyper {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            weight_decay: self.weight_decay,
            amsgrad: self.amsgrad,
            decoupled_weight_decay,
        }
    }
}

/// Adam, `torch.optim.Adam`. At step `t`, for each parameter `p` with gradient `g`:
///
/// ```text
/// g ← g + weight_decay · p                        (if weight_decay ≠ 0)
/// m ← lerp(m, g, 1 − β₁)          = β₁ m + (1 − β₁) g
/// v ← β₂ v + (1 − β₂) g²
/// v̂ ← max(v̂, v)                                   (AMSGrad; then v̂ replaces v below)
/// denom = √v / √(1 − β₂ᵗ) + eps
/// p ← p − (lr / (1 − β₁ᵗ)) · m / denom
/// ```
///
/// with `m`, `v` (and `v̂`) starting at zero — the arrangement of `_single_tensor_adam` in
/// `torch/optim/adam.py`, so that results agree with PyTorch to rounding.
#[derive(Debug, Clone)]
pub struct Adam<F: Float> {
    config: AdamConfig,
    state: ParamStates<AdamSlot<F>>,
}

impl<F: Float> Adam<F> {
    /// Builds the optimizer from a validated configuration.
    ///
    /// # Errors
    /// See [`AdamConfig::validate`].
    pub fn new(config: AdamConfig) -> Result<Self> {
        config.validate()?;
        config.hyper(false).check_in::<F>("Adam", false)?;
        Ok(Adam { config, state: ParamStates::default() })
    }

    /// The configuration (with the current learning rate).
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Number of steps taken (`t` of the last step).
    pub fn steps(&self) -> u64 {
        self.state.steps()
    }
}

impl<F: Float> Optimizer<F> for Adam<F> {
    fn name(&self) -> &'static str {
        "adam"
    }

    fn step(&mut self, model: &mut dyn Layer<F>) -> Result<()> {
        adam_step("Adam", self.config.hyper(false), &mut self.state, model, None)
    }

    fn step_observed(
        &mut self,
        model: &mut dyn Layer<F>,
        observer: &mut dyn FnMut(usize, f64),
    ) -> Result<()> {
        adam_step("Adam", self.config.hyper(false), &mut self.state, model, Some(observer))
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        validate::scheduled_lr("Adam", lr)?;
        AdamHyper { lr, ..self.config.hyper(false) }.check_in::<F>("Adam", true)?;
        self.config.lr = lr;
        Ok(())
    }
}

/// The hyperparameters of one Adam step, for [`Adam`] and [`AdamW`](super::AdamW).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamHyper {
    pub(crate) lr: f64,
    pub(crate) betas: (f64, f64),
    pub(crate) eps: f64,
    pub(crate) weight_decay: f64,
    pub(crate) amsgrad: bool,
    /// AdamW: `p ← p · (1 − lr · weight_decay)` instead of adding `weight_decay · p` to `g`.
    pub(crate) decoupled_weight_decay: bool,
}

impl AdamHyper {
    pub(crate) fn validate(&self, component: &str) -> Result<()> {
        validate::positive_lr(component, self.lr)?;
        for (i, beta) in [self.betas.0, self.betas.1].into_iter().enumerate() {
            if !(0.0..1.0).contains(&beta) {
                return Err(Error::config(
                    component,
                    "betas",
                    format!("beta{} must be in [0, 1), got {beta}", i + 1),
                ));
            }
        }
        validate::positive(component, "eps", self.eps)?;
        validate::non_negative(component, "weight_decay", self.weight_decay)
    }

    /// The settings in the model's float type `F` (see [`validate::in_float`]).
    pub(crate) fn check_in<F: Float>(&self, component: &str, lr_may_be_zero: bool) -> Result<()> {
        validate::in_float::<F>(
            component,
            self.lr,
            lr_may_be_zero,
            Some(self.eps),
            &[("weight_decay", self.weight_decay)],
        )
    }
}

/// The moment estimates of one parameter.
#[derive(Debug, Clone)]
pub(crate) struct AdamSlot<F: Float> {
    exp_avg: ArrayD<F>,
    exp_avg_sq: ArrayD<F>,
    max_exp_avg_sq: Option<ArrayD<F>>,
}

/// `torch.lerp(start, end, weight)` with ATen's two-sided formula (exact at both ends).
#[inline(always)]
pub(crate) fn lerp<F: Float>(start: F, end: F, weight: F) -> F {
    if weight.abs() < F::lit(0.5) {
        start + weight * (end - start)
    } else {
        end - (end - start) * (F::one() - weight)
    }
}

/// One Adam (or AdamW) step over every parameter of `model`, reporting each update's squared
/// size to `observer` when there is one (see [`ParamStates::step`]).
pub(crate) fn adam_step<F: Float>(
    component: &str,
    h: AdamHyper,
    state: &mut ParamStates<AdamSlot<F>>,
    model: &mut dyn Layer<F>,
    observer: Option<&mut dyn FnMut(usize, f64)>,
) -> Result<()> {
    let t = (state.steps() + 1) as i32;
    let (beta1, beta2) = h.betas;
    // Scalars in f64, as PyTorch computes them in Python floats.
    let bias_correction1 = 1.0 - beta1.powi(t);
    let bias_correction2 = 1.0 - beta2.powi(t);
    let rule = AdamRule {
        step_size: F::lit(h.lr / bias_correction1),
        bias_correction2_sqrt: F::lit(bias_correction2.sqrt()),
        one_minus_beta1: F::lit(1.0 - beta1),
        beta2: F::lit(beta2),
        one_minus_beta2: F::lit(1.0 - beta2),
        eps: F::lit(h.eps),
        l2: Optional::new(!h.decoupled_weight_decay && h.weight_decay != 0.0, F::lit(h.weight_decay)),
        shrink: Optional::new(
            h.decoupled_weight_decay && h.weight_decay != 0.0,
            F::lit(1.0 - h.lr * h.weight_decay),
        ),
    };
    let amsgrad = h.amsgrad;
    state.step(
        component,
        model,
        observer,
        |shape| AdamSlot {
            exp_avg: ArrayD::zeros(shape),
            exp_avg_sq: ArrayD::zeros(shape),
            max_exp_avg_sq: amsgrad.then(|| ArrayD::zeros(shape)),
        },
        |value, grad, slot| {
            let max = slot.max_exp_avg_sq.as_ref().map(|m| m.view());
            F::adam_update_is_finite((value, grad), (slot.exp_avg.view(), slot.exp_avg_sq.view(), max), &rule)
        },
        |ParamViewMut { mut value, grad, .. }, slot, moved| {
            let AdamSlot { exp_avg, exp_avg_sq, max_exp_avg_sq } = slot;
            let observing = moved.observing();
            let slices =
                (value.as_slice_mut(), grad.as_slice(), exp_avg.as_slice_mut(), exp_avg_sq.as_slice_mut());
            match (slices, max_exp_avg_sq.as_mut().map(|m| m.as_slice_mut())) {
                ((Some(p), Some(g), Some(m), Some(v)), None) => {
                    moved.add(F::adam_update(p, g, m, v, None, &rule, observing))
                }
                ((Some(p), Some(g), Some(m), Some(v)), Some(Some(vmax))) => {
                    moved.add(F::adam_update(p, g, m, v, Some(vmax), &rule, observing))
                }
                // A parameter replaced by a strided array: entry by entry.
                _ => match max_exp_avg_sq {
                    None => Zip::from(&mut value).and(&grad).and(exp_avg).and(exp_avg_sq).for_each(
                        |p, &g, m, v| {
                            let old = *p;
                            rule.moments(p, g, m, v);
                            rule.apply(p, *m, *v);
                            moved.entry(old, *p);
                        },
                    ),
                    Some(max_sq) => {
                        Zip::from(&mut value).and(&grad).and(exp_avg).and(exp_avg_sq).and(max_sq).for_each(
                            |p, &g, m, v, vmax| {
                                let old = *p;
                                rule.moments(p, g, m, v);
                                *vmax = vmax.max(*v);
                                rule.apply(p, *m, *vmax);
                                moved.entry(old, *p);
                            },
                        )
                    }
                },
            }
        },
    )
}

/// The scalars of one Adam (or AdamW) step, in the parameter's type.
#[derive(Debug, Clone, Copy)]
pub struct AdamRule<F> {
    step_size: F,
    bias_correction2_sqrt: F,
    one_minus_beta1: F,
    beta2: F,
    one_minus_beta2: F,
    eps: F,
    /// Adam's L2 weight decay, added to the gradient.
    l2: Optional<F>,
    /// AdamW's decoupled weight decay: `p ← p · shrink` first.
    shrink: Optional<F>,
}

impl<F: Float> AdamRule<F> {
    /// The weight decay and both moment updates.
    #[inline(always)]
    fn moments(&self, p: &mut F, g: F, m: &mut F, v: &mut F) {
        if let Some(s) = self.shrink.get() {
            *p *= s;
        }
        let g = self.l2.map_or(g, |wd| g + wd * *p);
        *m = lerp(*m, g, self.one_minus_beta1);
        *v = *v * self.beta2 + self.one_minus_beta2 * g * g;
    }

    /// `p ← p − step_size · m / (√second / √(1 − β₂ᵗ) + eps)`.
    #[inline(always)]
    fn apply(&self, p: &mut F, m: F, second: F) {
        let denom = second.sqrt() / self.bias_correction2_sqrt + self.eps;
        *p -= self.step_size * (m / denom);
    }
}

/// Whether an Adam (or AdamW) step keeps one parameter and its moments finite, computed without
/// writing anything; `moments` = (`exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` with AMSGrad). A
/// kernel ([`crate::kernels`]): compiled inside gradflow, so that a user's debug build runs it
/// optimized.
pub(crate) fn update_is_finite<F: Float>(
    (value, grad): (ArrayViewD<'_, F>, ArrayViewD<'_, F>),
    (exp_avg, exp_avg_sq, max_exp_avg_sq): Moments<'_, F>,
    rule: &AdamRule<F>,
) -> bool {
    let entry = |p: F, g: F, m: F, v: F, vmax: Option<F>| {
        let (mut p, mut m, mut v) = (p, m, v);
        rule.moments(&mut p, g, &mut m, &mut v);
        let second = vmax.map_or(v, |vmax| vmax.max(v));
        rule.apply(&mut p, m, second);
        p.is_finite() & m.is_finite() & v.is_finite()
    };
    let slices = (value.as_slice(), grad.as_slice(), exp_avg.as_slice(), exp_avg_sq.as_slice());
    match (slices, max_exp_avg_sq.as_ref().map(|m| m.as_slice())) {
        ((Some(p), Some(g), Some(m), Some(v)), None) => {
            return all_entries([p, g, m, v], |[p, g, m, v]| entry(p, g, m, v, None));
        }
        ((Some(p), Some(g), Some(m), Some(v)), Some(Some(vmax))) => {
            return all_entries([p, g, m, v, vmax], |[p, g, m, v, vmax]| entry(p, g, m, v, Some(vmax)));
        }
        // A parameter replaced by a strided array: entry by entry, below.
        _ => {}
    }
    match max_exp_avg_sq {
        None => Zip::from(&value)
            .and(&grad)
            .and(exp_avg)
            .and(exp_avg_sq)
            .all(|&p, &g, &m, &v| entry(p, g, m, v, None)),
        Some(max_sq) => Zip::from(&value)
            .and(&grad)
            .and(exp_avg)
            .and(exp_avg_sq)
            .and(max_sq)
            .all(|&p, &g, &m, &v, &vmax| entry(p, g, m, v, Some(vmax))),
    }
}

/// Views of a parameter's Adam moments: `exp_avg`, `exp_avg_sq` and, with AMSGrad, `max_exp_avg_sq`.
pub(crate) type Moments<'a, F> = (ArrayViewD<'a, F>, ArrayViewD<'a, F>, Option<ArrayViewD<'a, F>>);

/// One Adam (or AdamW) update of a parameter's value with its gradient and moment estimates
/// (contiguous, in the same order; `max_exp_avg_sq` for AMSGrad), returning Σ(new − old)²
/// (summed in `f64` entry by entry) when `observing`, 0 otherwise. A kernel
/// ([`crate::kernels`]).
pub(crate) fn update<F: Float>(
    value: &mut [F],
    grad: &[F],
    exp_avg: &mut [F],
    exp_avg_sq: &mut [F],
    max_exp_avg_sq: Option<&mut [F]>,
    rule: &AdamRule<F>,
    observing: bool,
) -> f64 {
    match observing {
        true => adam_loop::<F, true>(value, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, rule),
        false => adam_loop::<F, false>(value, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, rule),
    }
}

/// [`update`]'s loop, compiled once per choice so that the plain one has no branch.
#[allow(clippy::too_many_arguments)]
fn adam_loop<F: Float, const OBSERVE: bool>(
    value: &mut [F],
    grad: &[F],
    exp_avg: &mut [F],
    exp_avg_sq: &mut [F],
    max_exp_avg_sq: Option<&mut [F]>,
    rule: &AdamRule<F>,
) -> f64 {
    crate::vectorize::vectorized(
        #[inline(always)]
        || {
            let mut distance_sq = 0.0f64;
            let mut measure = |old: F, new: F| {
                if OBSERVE {
                    let d = (new - old).as_f64();
                    distance_sq += d * d;
                }
            };
            let entries = value.iter_mut().zip(grad).zip(exp_avg.iter_mut().zip(exp_avg_sq.iter_mut()));
            match max_exp_avg_sq {
                None => {
                    for ((p, &g), (m, v)) in entries {
                        let old = *p;
                        rule.moments(p, g, m, v);
                        rule.apply(p, *m, *v);
                        measure(old, *p);
                    }
                }
                Some(max_sq) => {
                    for (((p, &g), (m, v)), vmax) in entries.zip(max_sq) {
                        let old = *p;
                        rule.moments(p, g, m, v);
                        *vmax = vmax.max(*v);
                        rule.apply(p, *m, *vmax);
                        measure(old, *p);
                    }
                }
            }
            distance_sq
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    use crate::optim::test_model::{model, params, set_grads};

    /// The gradients of steps 1, 2, 3 for [w₀, w₁, b], starting from p₀ = [1, −2, 0.5].
    pub(crate) const GRADS: [[f64; 3]; 3] = [[0.5, -1.0, 2.0], [0.1, 0.3, -1.0], [-0.2, 0.4, 0.05]];

    pub(crate) fn three_steps<F: Float>(optimizer: &mut dyn Optimizer<F>) -> Vec<[f64; 3]> {
        let mut m = model::<F>();
        GRADS
            .iter()
            .map(|g| {
                set_grads(&mut m, *g);
                optimizer.step(&mut m).unwrap();
                params(&m)
            })
            .collect()
    }

    #[test]
    fn adam_matches_hand_computation() {
        // lr 0.1, β = (0.9, 0.999), eps 1e-8.
        // Step 1: m = 0.1 g, v = 0.001 g², 1 − β₁ = 0.1, 1 − β₂ = 0.001, so m/(1 − β₁) = g and
        //   √v/√0.001 = |g|: p₁ = p₀ − 0.1 · g / (|g| + 1e-8) = [0.900000002, −1.900000001, 0.4000000005].
        // Step 2 (g = [0.1, 0.3, −1]): m = [0.055, −0.06, 0.08], v = [2.5975e-4, 1.089e-3, 4.996e-3],
        //   1 − β₁² = 0.19, 1 − β₂² = 0.001999; for w₀: 0.1 · (0.055/0.19) / (√2.5975e-4/√0.001999 + 1e-8)
        //   = 0.1 · 0.2894737 / 0.3604707 = 0.0803041 → p₂ = 0.8196959.
        // Step 3 (g = [−0.2, 0.4, 0.05]): m = [0.0295, −0.014, 0.077],
        //   v = [2.9949025e-4, 1.247911e-3, 4.993504e-3], 1 − β₁³ = 0.271, 1 − β₂³ = 0.002997001.
        let mut adam = AdamConfig::new(0.1).build::<f64>().unwrap();
        let steps = three_steps(&mut adam);
        assert_abs_diff_eq!(steps[0][..], [0.900000002, -1.900000001, 0.4000000005][..], epsilon = 1e-9);
        assert_abs_diff_eq!(
            steps[1][..],
            [0.8196959063846517, -1.8572151424292265, 0.37336629670243154][..],
            epsilon = 1e-9
        );
        assert_abs_diff_eq!(
            steps[2][..],
            [0.7852605318354889, -1.8492092384765841, 0.3513541613910131][..],
            epsilon = 1e-9
        );
        let mut adam32 = AdamConfig::new(0.1).build::<f32>().unwrap();
        let steps32 = three_steps(&mut adam32);
        assert_abs_diff_eq!(
            steps32[2][..],
            [0.7852605318354889, -1.8492092384765841, 0.3513541613910131][..],
            epsilon = 1e-6
        );
    }

    #[test]
    fn adam_with_l2_weight_decay_matches_hand_computation() {
        // weight_decay 0.1 is added to the gradient: step 1 uses g + 0.1 p₀ = [0.6, −1.2, 2.05],
        // so p₁ = p₀ − 0.1 · sign(g) · |g|/(|g| + 1e-8) again; afterwards (m, v) for w₀ are
        // (0.073, 3.9574e-4) at step 2 and (0.0538365, 4.0941856e-4) at step 3.
        let mut adam = AdamConfig::new(0.1).weight_decay(0.1).build::<f64>().unwrap();
        let steps = three_steps(&mut adam);
        assert_abs_diff_eq!(
            steps[0][..],
            [0.9000000016666666, -1.9000000008333333, 0.4000000004878049][..],
            epsilon = 1e-9
        );
        assert_abs_diff_eq!(
            steps[1][..],
            [0.8136483454297575, -1.8400703555381717, 0.37089514609880114][..],
            epsilon = 1e-9
        );
        assert_abs_diff_eq!(
            steps[2][..],
            [0.7598997572221902, -1.8057542212511155, 0.34595554160620084][..],
            epsilon = 1e-9
        );
    }

    #[test]
    fn amsgrad_uses_the_largest_second_moment() {
        // Steps 1 and 2 as plain Adam. At step 3 the bias's v falls from 4.996e-3 to 4.993504e-3
        // (its gradient 0.05 is small), so AMSGrad divides by √4.996e-3 instead:
        //   0.3733662967 − 0.1 · (0.077/0.271) / (√4.996e-3/√0.002997001 + 1e-8) = 0.3513596607,
        // while the weights, whose v grew, match plain Adam.
        let mut adam = AdamConfig::new(0.1).amsgrad(true).build::<f64>().unwrap();
        let steps = three_steps(&mut adam);
        assert_abs_diff_eq!(
            steps[1][..],
            [0.8196959063846517, -1.8572151424292265, 0.37336629670243154][..],
            epsilon = 1e-9
        );
        assert_abs_diff_eq!(
            steps[2][..],
            [0.7852605318354889, -1.8492092384765841, 0.35135966070579633][..],
            epsilon = 1e-9
        );
    }

    #[test]
    fn lerp_is_exact_at_both_ends() {
        assert_eq!(lerp(0.3f64, 0.7, 0.0), 0.3);
        assert_eq!(lerp(0.3f64, 0.7, 1.0), 0.7);
        assert!((lerp(1.0f64, 3.0, 0.25) - 1.5).abs() < 1e-15);
        assert!((lerp(1.0f64, 3.0, 0.75) - 2.5).abs() < 1e-15);
    }

    #[test]
    fn invalid_configuration_is_refused_naming_the_field() {
        let cases = [
            (AdamConfig::new(0.0), "lr"),
            (AdamConfig::new(f64::INFINITY), "lr"),
            (AdamConfig::new(1e-3).betas(1.0, 0.999), "betas"),
            (AdamConfig::new(1e-3).betas(0.9, 1.0), "betas"),
            (AdamConfig::new(1e-3).betas(-0.1, 0.999), "betas"),
            (AdamConfig::new(1e-3).eps(0.0), "eps"),
            (AdamConfig::new(1e-3).weight_decay(-0.01), "weight_decay"),
        ];
        for (config, field) in cases {
            match config.build::<f64>() {
                Err(Error::InvalidConfig { component, field: f, reason }) => {
                    assert_eq!((component.as_str(), f), ("Adam", field), "{config:?}: {reason}")
                }
                other => panic!("{config:?}: expected InvalidConfig for {field}, got {other:?}"),
            }
        }
        let err = AdamConfig::new(1e-3).betas(0.9, 1.0).validate().unwrap_err();
        assert!(err.to_string().contains("beta2 must be in [0, 1), got 1"), "{err}");
    }

    #[test]
    fn non_finite_gradient_leaves_every_parameter_unchanged() {
        let mut m = model::<f32>();
        let mut adam = AdamConfig::new(0.1).build::<f32>().unwrap();
        set_grads(&mut m, [f64::INFINITY, 1.0, 1.0]);
        let before = params(&m);
        let err = adam.step(&mut m).unwrap_err();
        assert!(matches!(&err, Error::NonFinite { location, .. } if location == "Adam step 0"), "{err}");
        assert!(err.to_string().contains("parameter 0 (weight)"), "{err}");
        assert_eq!(params(&m), before);
        assert_eq!(adam.steps(), 0);
    }

    #[test]
    fn a_model_with_other_parameters_is_refused() {
        let mut adam = AdamConfig::default().build::<f64>().unwrap();
        let mut m = model::<f64>();
        adam.step(&mut m).unwrap();
        let mut other =
            crate::Linear::from_weights(ndarray::array![[1.0, 2.0, 3.0]], Some(ndarray::array![0.0]))
                .unwrap();
        let err = adam.step(&mut other).unwrap_err();
        assert!(matches!(&err, Error::ShapeMismatch { .. }), "{err}");
        assert!(err.to_string().contains("Adam: parameter 0 (weight)"), "{err}");
    }
}
