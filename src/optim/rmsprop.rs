//! [`RmsProp`]: root-mean-square propagation, exactly as `torch.optim.RMSprop`.

use ndarray::{ArrayD, ArrayViewD, Zip};

use super::adam::lerp;
use super::state::{Optional, ParamStates};
use super::{Optimizer, validate};
use crate::layer::Layer;
use crate::param::ParamViewMut;
use crate::vectorize::all_entries;
use crate::{Float, Result};

/// The hyperparameters of [`RmsProp`], with PyTorch's names and defaults
/// (`lr = 0.01`, `alpha = 0.99`, `eps = 1e-8`, no weight decay, no momentum, not centered).
///
/// ```
/// use gradflow::optim::RmsPropConfig;
/// let rmsprop = RmsPropConfig::new(1e-3).momentum(0.9).centered(true).build::<f32>()?;
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RmsPropConfig {
    /// Learning rate, positive.
    pub lr: f64,
    /// Smoothing constant of the running mean of g², in `[0, 1)`.
    pub alpha: f64,
    /// Added to the root mean square (after the square root), positive.
    pub eps: f64,
    /// L2 penalty added to the gradient, `g + weight_decay · p`, non-negative.
    pub weight_decay: f64,
    /// Momentum factor in `[0, 1)` (0: none).
    pub momentum: f64,
    /// Divide by the centered second moment, an estimate of the gradient's variance.
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig::new(0.01)
    }
}

impl RmsPropConfig {
    /// PyTorch's defaults with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        RmsPropConfig { lr, alpha: 0.99, eps: 1e-8, weight_decay: 0.0, momentum: 0.0, centered: false }
    }

    /// Sets `alpha`.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Sets `eps`.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Turns the centered variant on or off.
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    /// Checks every field. (PyTorch only requires `alpha ≥ 0` and `momentum ≥ 0`; values of 1 or
    /// more make the running averages meaningless, so they are refused here.)
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the first invalid field: `lr` or `eps` not
    /// positive, `alpha` or `momentum` outside `[0, 1)`, negative `weight_decay`.
    pub fn validate(&self) -> Result<()> {
        const NAME: &str = "RmsProp";
        validate::positive_lr(NAME, self.lr)?;
        validate::unit_interval_open(NAME, "alpha", self.alpha)?;
        validate::positive(NAME, "eps", self.eps)?;
        validate::non_negative(NAME, "weight_decay", self.weight_decay)?;
        validate::unit_interval_open(NAME, "momentum", self.momentum)
    }

    /// Validates the configuration and builds the optimizer.
    ///
    /// # Errors
    /// See [`RmsPropConfig::validate`].
    pub fn build<F: Float>(self) -> Result<RmsProp<F>> {
        RmsProp::new(self)
    }
}

/// RMSprop, `torch.optim.RMSprop` (Hinton's lecture 6e; centered form from Graves, 2013). For each
/// parameter `p` with gradient `g`:
///
/// ```text
/// g ← g + weight_decay · p                  (if weight_decay ≠ 0)
/// s ← α s + (1 − α) g²
/// ḡ ← lerp(ḡ, g, 1 − α),  avg = √(s − ḡ²)    (centered)   else  avg = √s
/// avg ← avg + eps
/// b ← momentum · b + g / avg,  p ← p − lr · b   (momentum > 0)  else  p ← p − lr · g / avg
/// ```
///
/// with `s`, `ḡ`, `b` starting at zero (`_single_tensor_rmsprop` in `torch/optim/rmsprop.py`).
/// One deliberate difference: in the centered form `s − ḡ²`, which is never negative in exact
/// arithmetic, is clamped at 0 so that rounding cannot make PyTorch's NaN.
#[derive(Debug, Clone)]
pub struct RmsProp<F: Float> {
    config: RmsPropConfig,
    state: ParamStates<RmsSlot<F>>,
}

/// The running averages of one parameter.
#[derive(Debug, Clone)]
struct RmsSlot<F: Float> {
    square_avg: ArrayD<F>,
    grad_avg: Option<ArrayD<F>>,
    momentum_buffer: Option<ArrayD<F>>,
}

impl<F: Float> RmsProp<F> {
    /// Builds the optimizer from a validated configuration.
    ///
    /// # Errors
    /// See [`RmsPropConfig::validate`].
    pub fn new(config: RmsPropConfig) -> Result<Self> {
        config.validate()?;
        validate::in_float::<F>(
            "RmsProp",
            config.lr,
            false,
            Some(config.eps),
            &[("weight_decay", config.weight_decay)],
        )?;
        Ok(RmsProp { config, state: ParamStates::default() })
    }

    /// The configuration (with the current learning rate).
    pub fn config(&self) -> &RmsPropConfig {
        &self.config
    }

    /// Number of steps taken.
    pub fn steps(&self) -> u64 {
        self.state.steps()
    }
}

impl<F: Float> Optimizer<F> for RmsProp<F> {
    fn name(&self) -> &'static str {
        "rmsprop"
    }

    fn step(&mut self, model: &mut dyn Layer<F>) -> Result<()> {
        self.apply(model, None)
    }

    fn step_observed(
        &mut self,
        model: &mut dyn Layer<F>,
        observer: &mut dyn FnMut(usize, f64),
    ) -> Result<()> {
        self.apply(model, Some(observer))
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        validate::scheduled_lr("RmsProp", lr)?;
        validate::in_float::<F>("RmsProp", lr, true, Some(self.config.eps), &[])?;
        self.config.lr = lr;
        Ok(())
    }
}

impl<F: Float> RmsProp<F> {
    /// One step, reporting each update's squared size to `observer` when there is one.
    fn apply(
        &mut self,
        model: &mut dyn Layer<F>,
        observer: Option<&mut dyn FnMut(usize, f64)>,
    ) -> Result<()> {
        let c = self.config;
        let rule = RmsPropRule {
            lr: F::lit(c.lr),
            alpha: F::lit(c.alpha),
            one_minus_alpha: F::lit(1.0 - c.alpha),
            eps: F::lit(c.eps),
            weight_decay: Optional::new(c.weight_decay != 0.0, F::lit(c.weight_decay)),
            momentum: F::lit(c.momentum),
        };
        let (centered, with_momentum) = (c.centered, c.momentum > 0.0);
        self.state.step(
            "RmsProp",
            model,
            observer,
            |shape| RmsSlot {
                square_avg: ArrayD::zeros(shape),
                grad_avg: centered.then(|| ArrayD::zeros(shape)),
                momentum_buffer: with_momentum.then(|| ArrayD::zeros(shape)),
            },
            |value, grad, slot| {
                let averages = (slot.square_avg.view(), slot.grad_avg.as_ref().map(|a| a.view()));
                let momentum = slot.momentum_buffer.as_ref().map(|b| b.view());
                F::rmsprop_update_is_finite((value, grad), averages, momentum, &rule)
            },
            |ParamViewMut { mut value, grad, .. }, slot, moved| {
                let RmsSlot { square_avg, grad_avg, momentum_buffer } = slot;
                let observing = moved.observing();
                let standard = |b: &Option<ArrayD<F>>| b.as_ref().is_none_or(|b| b.is_standard_layout());
                if value.is_standard_layout()
                    && grad.is_standard_layout()
                    && square_avg.is_standard_layout()
                    && standard(grad_avg)
                    && standard(momentum_buffer)
                {
                    moved.add(F::rmsprop_update(
                        value.as_slice_mut().expect("standard layout"),
                        grad.as_slice().expect("standard layout"),
                        contiguous(square_avg),
                        grad_avg.as_mut().map(contiguous),
                        momentum_buffer.as_mut().map(contiguous),
                        &rule,
                        observing,
                    ));
                    return;
                }
                // A parameter replaced by a strided array: entry by entry.
                match (grad_avg, momentum_buffer) {
                    (None, None) => Zip::from(&mut value).and(&grad).and(square_avg).for_each(|p, &g, s| {
                        let old = *p;
                        rule.entry(p, g, s, None, None);
                        moved.entry(old, *p);
                    }),
                    (Some(ga), None) => {
                        Zip::from(&mut value).and(&grad).and(square_avg).and(ga).for_each(|p, &g, s, ga| {
                            let old = *p;
                            rule.entry(p, g, s, Some(ga), None);
                            moved.entry(old, *p);
                        })
                    }
                    (None, Some(b)) => {
                        Zip::from(&mut value).and(&grad).and(square_avg).and(b).for_each(|p, &g, s, b| {
                            let old = *p;
                            rule.entry(p, g, s, None, Some(b));
                            moved.entry(old, *p);
                        })
                    }
                    (Some(ga), Some(b)) => {
                        Zip::from(&mut value).and(&grad).and(square_avg).and(ga).and(b).for_each(
                            |p, &g, s, ga, b| {
                                let old = *p;
                                rule.entry(p, g, s, Some(ga), Some(b));
                                moved.entry(old, *p);
                            },
                        )
                    }
                }
            },
        )
    }
}

/// The entries of a state buffer (which the optimizer creates in standard layout).
fn contiguous<F: Float>(buffer: &mut ArrayD<F>) -> &mut [F] {
    buffer.as_slice_mut().expect("state buffers are standard layout")
}

/// The scalars of one [`RmsProp`] step, in the parameter's type.
#[derive(Debug, Clone, Copy)]
pub struct RmsPropRule<F> {
    lr: F,
    alpha: F,
    one_minus_alpha: F,
    eps: F,
    weight_decay: Optional<F>,
    momentum: F,
}

impl<F: Float> RmsPropRule<F> {
    /// Updates a parameter entry `p` with gradient `g`, its square average `s` and, when the
    /// optimizer keeps them, its gradient average `ga` (centered) and momentum buffer `b`.
    #[inline(always)]
    fn entry(&self, p: &mut F, g: F, s: &mut F, ga: Option<&mut F>, b: Option<&mut F>) {
        let g = self.weight_decay.map_or(g, |wd| g + wd * *p);
        *s = *s * self.alpha + self.one_minus_alpha * g * g;
        let avg = match ga {
            Some(ga) => {
                *ga = lerp(*ga, g, self.one_minus_alpha);
                (*s - *ga * *ga).max(F::zero()).sqrt()
            }
            None => s.sqrt(),
        } + self.eps;
        match b {
            Some(b) => {
                *b = *b * self.momentum + g / avg;
                *p -= self.lr * *b;
            }
            None => *p -= self.lr * (g / avg),
        }
    }
}

/// Whether an RMSprop step keeps one parameter and its state finite, computed without writing
/// anything; `averages` = (`square_avg`, `grad_avg` when centered). A kernel
/// ([`crate::kernels`]): compiled inside gradflow, so that a user's debug build runs it optimized.
pub(crate) fn update_is_finite<F: Float>(
    (value, grad): (ArrayViewD<'_, F>, ArrayViewD<'_, F>),
    (square_avg, grad_avg): (ArrayViewD<'_, F>, Option<ArrayViewD<'_, F>>),
    momentum_buffer: Option<ArrayViewD<'_, F>>,
    rule: &RmsPropRule<F>,
) -> bool {
    let entry = |p: F, g: F, s: F, ga: Option<F>, b: Option<F>| {
        let (mut p, mut s, mut ga, mut b) = (p, s, ga, b);
        rule.entry(&mut p, g, &mut s, ga.as_mut(), b.as_mut());
        p.is_finite() & s.is_finite() & ga.is_none_or(F::is_finite) & b.is_none_or(F::is_finite)
    };
    let slices = (value.as_slice(), grad.as_slice(), square_avg.as_slice());
    let ga_slice = grad_avg.as_ref().map(|a| a.as_slice());
    let b_slice = momentum_buffer.as_ref().map(|b| b.as_slice());
    match (slices, ga_slice, b_slice) {
        ((Some(p), Some(g), Some(s)), None, None) => {
            return all_entries([p, g, s], |[p, g, s]| entry(p, g, s, None, None));
        }
        ((Some(p), Some(g), Some(s)), Some(Some(ga)), None) => {
            return all_entries([p, g, s, ga], |[p, g, s, ga]| entry(p, g, s, Some(ga), None));
        }
        ((Some(p), Some(g), Some(s)), None, Some(Some(b))) => {
            return all_entries([p, g, s, b], |[p, g, s, b]| entry(p, g, s, None, Some(b)));
        }
        ((Some(p), Some(g), Some(s)), Some(Some(ga)), Some(Some(b))) => {
            return all_entries([p, g, s, ga, b], |[p, g, s, ga, b]| entry(p, g, s, Some(ga), Some(b)));
        }
        // A parameter replaced by a strided array: entry by entry, below.
        _ => {}
    }
    match (grad_avg, momentum_buffer) {
        (None, None) => {
            Zip::from(&value).and(&grad).and(square_avg).all(|&p, &g, &s| entry(p, g, s, None, None))
        }
        (Some(ga), None) => Zip::from(&value)
            .and(&grad)
            .and(square_avg)
            .and(ga)
            .all(|&p, &g, &s, &ga| entry(p, g, s, Some(ga), None)),
        (None, Some(b)) => Zip::from(&value)
            .and(&grad)
            .and(square_avg)
            .and(b)
            .all(|&p, &g, &s, &b| entry(p, g, s, None, Some(b))),
        (Some(ga), Some(b)) => Zip::from(&value)
            .and(&grad)
            .and(square_avg)
            .and(ga)
            .and(b)
            .all(|&p, &g, &s, &ga, &b| entry(p, g, s, Some(ga), Some(b))),
    }
}

/// One RMSprop update of a parameter's value with its gradient and running averages
/// (contiguous, in the same order; `grad_avg` when centered, `momentum_buffer` with momentum),
/// returning Σ(new − old)² (summed in `f64` entry by entry) when `observing`, 0 otherwise. A
/// kernel ([`crate::kernels`]).
pub(crate) fn update<F: Float>(
    value: &mut [F],
    grad: &[F],
    square_avg: &mut [F],
    grad_avg: Option<&mut [F]>,
    momentum_buffer: Option<&mut [F]>,
    rule: &RmsPropRule<F>,
    observing: bool,
) -> f64 {
    match observing {
        true => rmsprop_loop::<F, true>(value, grad, square_avg, grad_avg, momentum_buffer, rule),
        false => rmsprop_loop::<F, false>(value, grad, square_avg, grad_avg, momentum_buffer, rule),
    }
}

/// [`update`]'s loop, compiled once per choice so that the plain one has no branch.
#[allow(clippy::too_many_arguments)]
fn rmsprop_loop<F: Float, const OBSERVE: bool>(
    value: &mut [F],
    grad: &[F],
    square_avg: &mut [F],
    grad_avg: Option<&mut [F]>,
    momentum_buffer: Option<&mut [F]>,
    rule: &RmsPropRule<F>,
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
            let entries = value.iter_mut().zip(grad).zip(square_avg.iter_mut());
            match (grad_avg, momentum_buffer) {
                (None, None) => entries.for_each(|((p, &g), s)| {
                    let old = *p;
                    rule.entry(p, g, s, None, None);
                    measure(old, *p);
                }),
                (Some(ga), None) => entries.zip(ga).for_each(|(((p, &g), s), ga)| {
                    let old = *p;
                    rule.entry(p, g, s, Some(ga), None);
                    measure(old, *p);
                }),
                (None, Some(b)) => entries.zip(b).for_each(|(((p, &g), s), b)| {
                    let old = *p;
                    rule.entry(p, g, s, None, Some(b));
                    measure(old, *p);
                }),
                (Some(ga), Some(b)) => {
                    entries.zip(ga.iter_mut().zip(b)).for_each(|(((p, &g), s), (ga, b))| {
                        let old = *p;
                        rule.entry(p, g, s, Some(ga), Some(b));
                        measure(old, *p);
                    })
                }
            }
            distance_sq
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use approx::assert_abs_diff_eq;

    use crate::optim::test_model::{model, params, set_grads};

    const GRADS: [[f64; 3]; 3] = [[0.5, -1.0, 2.0], [0.1, 0.3, -1.0], [-0.2, 0.4, 0.05]];

    fn three_steps<F: Float>(config: RmsPropConfig) -> Vec<[f64; 3]> {
        let mut m = model::<F>();
        let mut opt = config.build::<F>().unwrap();
        GRADS
            .iter()
            .map(|g| {
                set_grads(&mut m, *g);
                opt.step(&mut m).unwrap();
                params(&m)
            })
            .collect()
    }

    #[test]
    fn defaults_match_hand_computation() {
        // lr 0.01, α 0.99, eps 1e-8. For w₀ (p₀ = 1):
        //   step 1: g = 0.5,  s = 0.01·0.25 = 0.0025,           avg = 0.05 + 1e-8,
        //           p = 1 − 0.01·0.5/0.05000001 = 0.90000002
        //   step 2: g = 0.1,  s = 0.002475 + 0.0001 = 0.002575,  avg = 0.0507444678,
        //           p = 0.90000002 − 0.01·0.1/0.0507444678 = 0.8802934383
        //   step 3: g = −0.2, s = 0.00254925 + 0.0004 = 0.00294925, avg = 0.0543070077,
        //           p = 0.8802934383 + 0.01·0.2/0.0543070077 = 0.9171210980
        let steps = three_steps::<f64>(RmsPropConfig::default());
        assert_abs_diff_eq!(
            steps[0][..],
            [0.900000019999996, -1.900000009999999, 0.40000000499999977][..],
            epsilon = 1e-9
        );
        assert_abs_diff_eq!(
            steps[1][..],
            [0.8802934383202046, -1.9288675206817028, 0.4449013284905645][..],
            epsilon = 1e-9
        );
        assert_abs_diff_eq!(
            steps[2][..],
            [0.9171210980353726, -1.9649460375747332, 0.44264552625577414][..],
            epsilon = 1e-9
        );
        let f32_steps = three_steps::<f32>(RmsPropConfig::default());
        assert_abs_diff_eq!(
            f32_steps[2][..],
            [0.9171210980353726, -1.9649460375747332, 0.44264552625577414][..],
            epsilon = 1e-6
        );
    }

    #[test]
    fn centered_with_momentum_and_weight_decay_matches_hand_computation() {
        // lr 0.01, α 0.99, momentum 0.9, weight_decay 0.1, centered. For w₀ (p₀ = 1):
        //   step 1: g = 0.5 + 0.1 = 0.6, s = 0.0036, ḡ = 0.006, avg = √(0.0036 − 0.000036) + 1e-8
        //           = 0.0596992562, b = 0.6/0.0596992562 = 10.0503764691, p = 0.8994962353
        //   step 2: g = 0.1 + 0.0899496235 = 0.1899496235, s = 0.0039248086, ḡ = 0.0078394962,
        //           avg = 0.0621558697, b = 9.0453388 + 3.0560319 = 12.1013595083, p = 0.7784826402
        //   step 3: g = −0.2 + 0.0778482640 = −0.1221517360, s = 0.0040347710, ḡ = 0.0065395839,
        //           avg = 0.0631823241, b = 10.8912236 − 1.9333214 = 8.9579022103, p = 0.6889036181
        let config = RmsPropConfig::new(0.01).momentum(0.9).weight_decay(0.1).centered(true);
        let steps = three_steps::<f64>(config);
        assert_abs_diff_eq!(
            steps[0][..],
            [0.8994962353090928, -1.8994962268915865, 0.39949622340140056][..],
            epsilon = 1e-9
        );
        assert_abs_diff_eq!(
            steps[1][..],
            [0.7784826402260491, -1.8182583083047712, 0.3516770685720919][..],
            epsilon = 1e-9
        );
        assert_abs_diff_eq!(
            steps[2][..],
            [0.6889036181228834, -1.763177406563363, 0.3048406960280256][..],
            epsilon = 1e-9
        );
        let f32_steps = three_steps::<f32>(config);
        assert_abs_diff_eq!(
            f32_steps[2][..],
            [0.6889036181228834, -1.763177406563363, 0.3048406960280256][..],
            epsilon = 1e-6
        );
    }

    #[test]
    fn centered_variance_never_goes_negative() {
        // A constant gradient drives s − ḡ² towards 0, where rounding can make it negative.
        let mut m = model::<f32>();
        let mut opt = RmsPropConfig::new(1e-6).alpha(0.5).centered(true).build::<f32>().unwrap();
        set_grads(&mut m, [0.3, 0.3, 0.3]);
        for _ in 0..200 {
            opt.step(&mut m).unwrap();
        }
        assert!(params(&m).iter().all(|p| p.is_finite()), "{:?}", params(&m));
    }

    #[test]
    fn invalid_configuration_is_refused_naming_the_field() {
        let cases = [
            (RmsPropConfig::new(0.0), "lr"),
            (RmsPropConfig::default().alpha(1.0), "alpha"),
            (RmsPropConfig::default().eps(0.0), "eps"),
            (RmsPropConfig::default().weight_decay(-1.0), "weight_decay"),
            (RmsPropConfig::default().momentum(1.0), "momentum"),
        ];
        for (config, field) in cases {
            match config.build::<f64>() {
                Err(Error::InvalidConfig { component, field: f, .. }) => {
                    assert_eq!((component.as_str(), f), ("RmsProp", field), "{config:?}")
                }
                other => panic!("{config:?}: expected InvalidConfig for {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn non_finite_gradient_leaves_every_parameter_unchanged() {
        let mut m = model::<f64>();
        let mut opt = RmsPropConfig::default().momentum(0.5).build::<f64>().unwrap();
        set_grads(&mut m, [0.5, f64::NAN, 1.0]);
        let before = params(&m);
        let err = opt.step(&mut m).unwrap_err();
        assert!(err.to_string().contains("RmsProp step 0") && err.to_string().contains("weight"), "{err}");
        assert_eq!(params(&m), before);
    }
}
