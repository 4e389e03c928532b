//! [`Sgd`]: stochastic gradient descent with momentum, dampening, Nesterov momentum and weight
//! decay, exactly as `torch.optim.SGD`.

use ndarray::{ArrayD, ArrayViewD, Zip};

use super::state::{Optional, ParamStates, same_layout_slices, update_measured};
use super::{Optimizer, validate};
use crate::layer::Layer;
use crate::param::ParamViewMut;
use crate::vectorize::{all_entries, vectorized, zip_chunks, zip_chunks_sum};
use crate::{Error, Float, Result};

/// The hyperparameters of [`Sgd`], with PyTorch's names and defaults (everything but `lr` off).
///
/// ```
/// use gradflow::optim::SgdConfig;
/// let sgd = SgdConfig::new(0.05).momentum(0.9).nesterov(true).weight_decay(1e-4).build::<f32>()?;
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SgdConfig {
    /// Learning rate, positive.
    pub lr: f64,
    /// Momentum factor in `[0, 1)` (default 0: no momentum buffer).
    pub momentum: f64,
    /// Dampening of the gradient added to the momentum buffer, in `[0, 1]` (default 0).
    pub dampening: f64,
    /// Nesterov momentum (default off); needs `momentum > 0` and `dampening = 0`, as in PyTorch.
    pub nesterov: bool,
    /// L2 penalty added to the gradient, `g + weight_decay · p`, non-negative (default 0).
    pub weight_decay: f64,
}

impl SgdConfig {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        SgdConfig { lr, momentum: 0.0, dampening: 0.0, nesterov: false, weight_decay: 0.0 }
    }

    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the dampening.
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Sets the weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first invalid field: `lr` not positive, `momentum`
    /// outside `[0, 1)`, `dampening` outside `[0, 1]`, negative `weight_decay`, or `nesterov`
    /// without momentum or with dampening.
    pub fn validate(&self) -> Result<()> {
        const NAME: &str = "Sgd";
        validate::positive_lr(NAME, self.lr)?;
        validate::unit_interval_open(NAME, "momentum", self.momentum)?;
        validate::unit_interval_closed(NAME, "dampening", self.dampening)?;
        validate::non_negative(NAME, "weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::config(
                NAME,
                "nesterov",
                format!(
                    "Nesterov momentum requires a momentum > 0 and zero dampening, got momentum {} and \
                     dampening {}",
                    self.momentum, self.dampening
                ),
            ));
        }
        Ok(())
    }

    /// Validates the configuration and builds the optimizer.
    ///
    /// # Errors
    /// See [`SgdConfig::validate`].
    pub fn build<F: Float>(self) -> Result<Sgd<F>> {
        Sgd::new(self)
    }
}

/// Stochastic gradient descent, `torch.optim.SGD`. For each parameter `p` with gradient `g`:
///
/// ```text
/// g ← g + weight_decay · p                          (if weight_decay ≠ 0)
/// b ← g  on the first step,  else  momentum · b + (1 − dampening) · g   (if momentum ≠ 0)
/// g ← g + momentum · b  if nesterov,  else  b                           (if momentum ≠ 0)
/// p ← p − lr · g
/// ```
///
/// (`_single_tensor_sgd` in `torch/optim/sgd.py`.)
#[derive(Debug, Clone)]
pub struct Sgd<F: Float> {
    config: SgdConfig,
    /// The momentum buffer of each parameter (`None` without momentum).
    state: ParamStates<Option<ArrayD<F>>>,
}

impl<F: Float> Sgd<F> {
    /// Builds the optimizer from a validated configuration.
    ///
    /// # Errors
    /// See [`SgdConfig::validate`].
    pub fn new(config: SgdConfig) -> Result<Self> {
        config.validate()?;
        validate::in_float::<F>("Sgd", config.lr, false, None, &[("weight_decay", config.weight_decay)])?;
        Ok(Sgd { config, state: ParamStates::default() })
    }

    /// The configuration (with the current learning rate).
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// Number of steps taken.
    pub fn steps(&self) -> u64 {
        self.state.steps()
    }
}

impl<F: Float> Optimizer<F> for Sgd<F> {
    fn name(&self) -> &'static str {
        "sgd"
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
        validate::scheduled_lr("Sgd", lr)?;
        validate::in_float::<F>("Sgd", lr, true, None, &[])?;
        self.config.lr = lr;
        Ok(())
    }
}

impl<F: Float> Sgd<F> {
    /// One step, reporting each update's squared size to `observer` when there is one.
    fn apply(
        &mut self,
        model: &mut dyn Layer<F>,
        observer: Option<&mut dyn FnMut(usize, f64)>,
    ) -> Result<()> {
        let c = self.config;
        let rule = SgdRule {
            lr: F::lit(c.lr),
            weight_decay: Optional::new(c.weight_decay != 0.0, F::lit(c.weight_decay)),
            momentum: F::lit(c.momentum),
            keep: F::lit(1.0 - c.dampening),
            first: self.state.steps() == 0,
            nesterov: c.nesterov,
        };
        let with_momentum = c.momentum != 0.0;
        self.state.step(
            "Sgd",
            model,
            observer,
            |shape| with_momentum.then(|| ArrayD::zeros(shape)),
            |value, grad, buffer| {
                F::sgd_update_is_finite(value, grad, buffer.as_ref().map(|b| b.view()), &rule)
            },
            |ParamViewMut { mut value, grad, .. }, buffer, moved| {
                let observing = moved.observing();
                match buffer {
                    None => match same_layout_slices(&mut value, &grad) {
                        // The common case (plain SGD on contiguous parameters): one vectorized loop.
                        Some((value, grad)) => moved.add(F::sgd_plain(value, grad, &rule, observing)),
                        None => Zip::from(&mut value).and(&grad).for_each(|p, &g| {
                            let old = *p;
                            *p -= rule.lr * rule.decayed(g, old);
                            moved.entry(old, *p);
                        }),
                    },
                    Some(buffer) => match (value.as_slice_mut(), grad.as_slice(), buffer.as_slice_mut()) {
                        (Some(value), Some(grad), Some(buffer)) => {
                            moved.add(F::sgd_momentum(value, grad, buffer, &rule, observing))
                        }
                        // A parameter replaced by a strided array: entry by entry.
                        _ => Zip::from(&mut value).and(&grad).and(buffer).for_each(|p, &g, b| {
                            let old = *p;
                            *p = rule.momentum_entry(old, g, b);
                            moved.entry(old, *p);
                        }),
                    },
                }
            },
        )
    }
}

/// The scalars of one [`Sgd`] step, in the parameter's type.
#[derive(Debug, Clone, Copy)]
pub struct SgdRule<F> {
    lr: F,
    /// Off when the weight decay is zero (the gradient is then used as it is).
    weight_decay: Optional<F>,
    momentum: F,
    /// `1 − dampening`.
    keep: F,
    /// The first step, which starts the momentum buffer at the gradient.
    first: bool,
    nesterov: bool,
}

impl<F: Float> SgdRule<F> {
    /// `g + weight_decay · p`.
    #[inline(always)]
    fn decayed(&self, g: F, p: F) -> F {
        self.weight_decay.map_or(g, |wd| g + wd * p)
    }

    /// The new value of a parameter entry `p` with gradient `g` and momentum buffer entry `b`
    /// (updated in place).
    #[inline(always)]
    fn momentum_entry(&self, p: F, g: F, b: &mut F) -> F {
        let g = self.decayed(g, p);
        *b = if self.first { g } else { self.momentum * *b + self.keep * g };
        let direction = if self.nesterov { g + self.momentum * *b } else { *b };
        p - self.lr * direction
    }
}

/// Whether an SGD step keeps one parameter (and its momentum `buffer`) finite, computed without
/// writing anything. A kernel ([`crate::kernels`]): compiled inside gradflow, so that a user's
/// debug build runs it optimized.
pub(crate) fn update_is_finite<F: Float>(
    value: ArrayViewD<'_, F>,
    grad: ArrayViewD<'_, F>,
    buffer: Option<ArrayViewD<'_, F>>,
    rule: &SgdRule<F>,
) -> bool {
    let plain = |p: F, g: F| (p - rule.lr * rule.decayed(g, p)).is_finite();
    let momentum = |p: F, g: F, b: F| {
        let mut b = b;
        rule.momentum_entry(p, g, &mut b).is_finite() & b.is_finite()
    };
    match (value.as_slice(), grad.as_slice(), buffer.as_ref().map(|b| b.as_slice())) {
        (Some(p), Some(g), None) => all_entries([p, g], |[p, g]| plain(p, g)),
        (Some(p), Some(g), Some(Some(b))) => all_entries([p, g, b], |[p, g, b]| momentum(p, g, b)),
        // A parameter replaced by a strided array: entry by entry.
        _ => match buffer {
            None => Zip::from(&value).and(&grad).all(|&p, &g| plain(p, g)),
            Some(buffer) => Zip::from(&value).and(&grad).and(&buffer).all(|&p, &g, &b| momentum(p, g, b)),
        },
    }
}

/// Plain SGD (no momentum) over a parameter's value and gradient, shared between threads when
/// long, returning Σ(new − old)² when `observing` (0 otherwise). A kernel ([`crate::kernels`]).
pub(crate) fn plain_update<F: Float>(value: &mut [F], grad: &[F], rule: &SgdRule<F>, observing: bool) -> f64 {
    let lr = rule.lr;
    if observing {
        zip_chunks_sum(value, grad, |value, grad| {
            vectorized(
                #[inline(always)]
                || match rule.weight_decay.get() {
                    None => update_measured(value, grad, |p, g| p - lr * g),
                    Some(wd) => update_measured(value, grad, |p, g| p - lr * (g + wd * p)),
                },
            )
        })
    } else {
        zip_chunks(value, grad, |value, grad| {
            vectorized(
                #[inline(always)]
                || match rule.weight_decay.get() {
                    None => value.iter_mut().zip(grad).for_each(|(p, &g)| *p -= lr * g),
                    Some(wd) => value.iter_mut().zip(grad).for_each(|(p, &g)| *p -= lr * (g + wd * *p)),
                },
            )
        });
        0.0
    }
}

/// SGD with momentum over a parameter's value, gradient and momentum buffer (contiguous, in the
/// same order), returning Σ(new − old)² (summed in `f64` entry by entry) when `observing`, 0
/// otherwise. A kernel ([`crate::kernels`]).
pub(crate) fn momentum_update<F: Float>(
    value: &mut [F],
    grad: &[F],
    buffer: &mut [F],
    rule: &SgdRule<F>,
    observing: bool,
) -> f64 {
    match observing {
        true => momentum_loop::<F, true>(value, grad, buffer, rule),
        false => momentum_loop::<F, false>(value, grad, buffer, rule),
    }
}

/// [`momentum_update`]'s loop, compiled once per choice so that the plain one has no branch
/// (and vectorizes).
fn momentum_loop<F: Float, const OBSERVE: bool>(
    value: &mut [F],
    grad: &[F],
    buffer: &mut [F],
    rule: &SgdRule<F>,
) -> f64 {
    vectorized(
        #[inline(always)]
        || {
            let mut distance_sq = 0.0f64;
            for ((p, &g), b) in value.iter_mut().zip(grad).zip(buffer) {
                let old = *p;
                *p = rule.momentum_entry(old, g, b);
                if OBSERVE {
                    let d = (*p - old).as_f64();
                    distance_sq += d * d;
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

    /// Three steps with the fixed gradient g = [0.5, −1, 2] from p₀ = [1, −2, 0.5].
    fn three_steps<F: Float>(config: SgdConfig) -> Vec<[f64; 3]> {
        let mut m = model::<F>();
        let mut sgd = config.build::<F>().unwrap();
        set_grads(&mut m, [0.5, -1.0, 2.0]);
        (0..3)
            .map(|_| {
                sgd.step(&mut m).unwrap();
                params(&m)
            })
            .collect()
    }

    #[test]
    fn plain_sgd_matches_hand_computation() {
        // p_t = p₀ − t · 0.1 · g
        let steps = three_steps::<f64>(SgdConfig::new(0.1));
        assert_abs_diff_eq!(steps[0][..], [0.95, -1.9, 0.3][..], epsilon = 1e-12);
        assert_abs_diff_eq!(steps[1][..], [0.9, -1.8, 0.1][..], epsilon = 1e-12);
        assert_abs_diff_eq!(steps[2][..], [0.85, -1.7, -0.1][..], epsilon = 1e-12);
    }

    #[test]
    fn plain_sgd_in_f32_matches_to_1e_6() {
        let steps = three_steps::<f32>(SgdConfig::new(0.1));
        assert_abs_diff_eq!(steps[2][..], [0.85, -1.7, -0.1][..], epsilon = 1e-6);
    }

    #[test]
    fn momentum_with_dampening_matches_hand_computation() {
        // momentum 0.9, dampening 0.1: b₁ = g (no dampening on the first step),
        // b₂ = 0.9·g + 0.9·g = 1.8 g, b₃ = 0.9·1.8 g + 0.9 g = 2.52 g;
        // p_t = p₀ − 0.1·(b₁ + … + b_t): 0.1 g, 0.28 g, 0.532 g.
        let steps = three_steps::<f64>(SgdConfig::new(0.1).momentum(0.9).dampening(0.1));
        assert_abs_diff_eq!(steps[0][..], [0.95, -1.9, 0.3][..], epsilon = 1e-12);
        assert_abs_diff_eq!(steps[1][..], [0.86, -1.72, -0.06][..], epsilon = 1e-12);
        assert_abs_diff_eq!(steps[2][..], [0.734, -1.468, -0.564][..], epsilon = 1e-12);
    }

    #[test]
    fn nesterov_matches_hand_computation() {
        // momentum 0.9: b₁ = g, b₂ = 1.9 g, b₃ = 0.9·1.9 g + g = 2.71 g;
        // direction g + 0.9 b: 1.9 g, 2.71 g, 3.439 g; cumulative · 0.1: 0.19 g, 0.461 g, 0.8049 g.
        let steps = three_steps::<f64>(SgdConfig::new(0.1).momentum(0.9).nesterov(true));
        assert_abs_diff_eq!(steps[0][..], [0.905, -1.81, 0.12][..], epsilon = 1e-12);
        assert_abs_diff_eq!(steps[1][..], [0.7695, -1.539, -0.422][..], epsilon = 1e-12);
        assert_abs_diff_eq!(steps[2][..], [0.59755, -1.1951, -1.1098][..], epsilon = 1e-12);
        let f32_steps = three_steps::<f32>(SgdConfig::new(0.1).momentum(0.9).nesterov(true));
        assert_abs_diff_eq!(f32_steps[2][..], [0.59755, -1.1951, -1.1098][..], epsilon = 1e-6);
    }

    #[test]
    fn weight_decay_with_momentum_matches_hand_computation() {
        // weight decay 0.1, momentum 0.5, lr 0.1; for w₀ (p₀ = 1, g = 0.5):
        //   d₁ = 0.5 + 0.1·1 = 0.6,        b₁ = 0.6,                 p₁ = 1 − 0.06 = 0.94
        //   d₂ = 0.5 + 0.094 = 0.594,      b₂ = 0.3 + 0.594 = 0.894, p₂ = 0.94 − 0.0894 = 0.8506
        //   d₃ = 0.5 + 0.08506 = 0.58506,  b₃ = 0.447 + 0.58506 = 1.03206, p₃ = 0.747394
        // for w₁ (p₀ = −2, g = −1): d = −1.2, −1.188, −1.17012; b = −1.2, −1.788, −2.06412;
        //   p = −1.88, −1.7012, −1.494788
        // for b (p₀ = 0.5, g = 2): d = 2.05, 2.0295, 1.998955; b = 2.05, 3.0545, 3.526205;
        //   p = 0.295, −0.01045, −0.3630705
        let steps = three_steps::<f64>(SgdConfig::new(0.1).momentum(0.5).weight_decay(0.1));
        assert_abs_diff_eq!(steps[0][..], [0.94, -1.88, 0.295][..], epsilon = 1e-12);
        assert_abs_diff_eq!(steps[1][..], [0.8506, -1.7012, -0.01045][..], epsilon = 1e-12);
        assert_abs_diff_eq!(steps[2][..], [0.747394, -1.494788, -0.3630705][..], epsilon = 1e-12);
    }

    #[test]
    fn invalid_configuration_is_refused_naming_the_field() {
        let cases = [
            (SgdConfig::new(0.0), "lr"),
            (SgdConfig::new(-0.1), "lr"),
            (SgdConfig::new(f64::NAN), "lr"),
            (SgdConfig::new(0.1).momentum(1.0), "momentum"),
            (SgdConfig::new(0.1).momentum(-0.1), "momentum"),
            (SgdConfig::new(0.1).momentum(0.5).dampening(1.5), "dampening"),
            (SgdConfig::new(0.1).weight_decay(-1e-4), "weight_decay"),
            (SgdConfig::new(0.1).nesterov(true), "nesterov"),
            (SgdConfig::new(0.1).momentum(0.9).dampening(0.1).nesterov(true), "nesterov"),
        ];
        for (config, field) in cases {
            match config.build::<f32>() {
                Err(Error::InvalidConfig { component, field: f, .. }) => {
                    assert_eq!((component.as_str(), f), ("Sgd", field), "{config:?}")
                }
                other => panic!("{config:?}: expected InvalidConfig for {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn non_finite_gradient_leaves_every_parameter_unchanged() {
        let mut m = model::<f64>();
        let mut sgd = SgdConfig::new(0.1).momentum(0.9).build::<f64>().unwrap();
        set_grads(&mut m, [0.5, -1.0, 2.0]);
        sgd.step(&mut m).unwrap();
        let before = params(&m);
        set_grads(&mut m, [0.5, 1.0, f64::NAN]);
        let err = sgd.step(&mut m).unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }), "{err}");
        assert!(err.to_string().contains("bias"), "{err}");
        assert_eq!(params(&m), before);
        assert_eq!(sgd.steps(), 1);
        // The momentum buffer was not touched either: the next good step is the true step 2.
        set_grads(&mut m, [0.5, -1.0, 2.0]);
        sgd.step(&mut m).unwrap();
        // b₂ = 0.9 g + g = 1.9 g; p₂ = p₁ − 0.19 g with p₁ = [0.95, −1.9, 0.3].
        assert_abs_diff_eq!(params(&m)[..], [0.855, -1.71, -0.08][..], epsilon = 1e-12);
    }

    #[test]
    fn fits_a_linear_target_with_mse() {
        // y = 2·x₀ − x₁ + 0.5 is exactly representable: SGD on the MSE gradient must find it.
        use crate::hooks::Context;
        use crate::loss::{Loss, Mse, Targets};
        use crate::{Linear, Mode};
        use ndarray::{Array2, array};
        let x: Array2<f64> = array![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 2.0]];
        let y = x.map_axis(ndarray::Axis(1), |r| 2.0 * r[0] - r[1] + 0.5).insert_axis(ndarray::Axis(1));
        let mut layer = Linear::from_weights(array![[0.0, 0.0]], Some(array![0.0])).unwrap();
        let mut sgd = SgdConfig::new(0.1).momentum(0.5).build::<f64>().unwrap();
        let (mut out, mut grad) = (Array2::zeros((0, 0)), Array2::zeros((0, 0)));
        for _ in 0..500 {
            layer.zero_grad();
            layer.forward(x.view(), &mut out, Mode::Train, &mut Context::new()).unwrap();
            Mse::default().compute(out.view(), Targets::Values(y.view()), &mut grad).unwrap();
            layer.backward(x.view(), out.view(), grad.view(), None, &mut Context::new()).unwrap();
            sgd.step(&mut layer).unwrap();
        }
        assert_abs_diff_eq!(params(&layer)[..], [2.0, -1.0, 0.5][..], epsilon = 1e-6);
    }

    #[test]
    fn learning_rate_can_be_changed_but_not_to_a_negative_value() {
        let mut sgd = SgdConfig::new(0.1).build::<f64>().unwrap();
        sgd.set_learning_rate(0.0).unwrap();
        assert_eq!(Optimizer::<f64>::learning_rate(&sgd), 0.0);
        let err = sgd.set_learning_rate(-1.0).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "lr", .. }));
    }
}
