//! [`AdamW`]: Adam with decoupled weight decay, exactly as `torch.optim.AdamW`.

use super::adam::{AdamConfig, AdamSlot, adam_step};
use super::state::ParamStates;
use super::{Optimizer, validate};
use crate::layer::Layer;
use crate::{Float, Result};

/// The hyperparameters of [`AdamW`], with PyTorch's names and defaults
/// (`lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`, `weight_decay = 0.01`, no AMSGrad).
///
/// ```
/// use gradflow::optim::AdamWConfig;
/// let adamw = AdamWConfig::new(1e-3).weight_decay(0.1).build::<f32>()?;
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    /// Learning rate, positive.
    pub lr: f64,
    /// Decay rates `(β₁, β₂)` of the first and second moment estimates, each in `[0, 1)`.
    pub betas: (f64, f64),
    /// Added to the denominator, positive.
    pub eps: f64,
    /// Decoupled decay: each step first multiplies the parameter by `1 − lr · weight_decay`;
    /// non-negative (default 0.01, PyTorch's).
    pub weight_decay: f64,
    /// Use the maximum of past second-moment estimates (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig::new(1e-3)
    }
}

impl AdamWConfig {
    /// PyTorch's defaults with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        AdamWConfig { lr, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.01, amsgrad: false }
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

    /// Sets the decoupled weight decay.
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
    /// [`crate::Error::InvalidConfig`] naming the first invalid field: `lr` or `eps` not
    /// positive, a beta outside `[0, 1)`, negative `weight_decay`.
    pub fn validate(&self) -> Result<()> {
        self.adam().hyper(true).validate("AdamW")
    }

    /// Validates the configuration and builds the optimizer.
    ///
    /// # Errors
    /// See [`AdamWConfig::validate`].
    pub fn build<F: Float>(self) -> Result<AdamW<F>> {
        AdamW::new(self)
    }

    fn adam(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            weight_decay: self.weight_decay,
            amsgrad: self.amsgrad,
        }
    }
}

/// AdamW, `torch.optim.AdamW`: [`Adam`](super::Adam)'s update with the weight decay applied to
/// the parameter instead of the gradient (Loshchilov & Hutter, "Decoupled Weight Decay
/// Regularization", 2019). At step `t`:
///
/// ```text
/// p ← p · (1 − lr · weight_decay)
/// m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
/// p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + eps)
/// ```
#[derive(Debug, Clone)]
pub struct AdamW<F: Float> {
    config: AdamWConfig,
    state: ParamStates<AdamSlot<F>>,
}

impl<F: Float> AdamW<F> {
    /// Builds the optimizer from a validated configuration.
    ///
    /// # Errors
    /// See [`AdamWConfig::validate`].
    pub fn new(config: AdamWConfig) -> Result<Self> {
        config.validate()?;
        config.adam().hyper(true).check_in::<F>("AdamW", false)?;
        Ok(AdamW { config, state: ParamStates::default() })
    }

    /// The configuration (with the current learning rate).
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Number of steps taken (`t` of the last step).
    pub fn steps(&self) -> u64 {
        self.state.steps()
    }
}

impl<F: Float> Optimizer<F> for AdamW<F> {
    fn name(&self) -> &'static str {
        "adamw"
    }

    fn step(&mut self, model: &mut dyn Layer<F>) -> Result<()> {
        adam_step("AdamW", self.config.adam().hyper(true), &mut self.state, model, None)
    }

    fn step_observed(
        &mut self,
        model: &mut dyn Layer<F>,
        observer: &mut dyn FnMut(usize, f64),
    ) -> Result<()> {
        adam_step("AdamW", self.config.adam().hyper(true), &mut self.state, model, Some(observer))
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        validate::scheduled_lr("AdamW", lr)?;
        crate::optim::adam::AdamHyper { lr, ..self.config.adam().hyper(true) }
            .check_in::<F>("AdamW", true)?;
        self.config.lr = lr;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use approx::assert_abs_diff_eq;

    use crate::optim::test_model::{model, params, set_grads};

    const GRADS: [[f64; 3]; 3] = [[0.5, -1.0, 2.0], [0.1, 0.3, -1.0], [-0.2, 0.4, 0.05]];

    fn three_steps<F: Float>(config: AdamWConfig) -> Vec<[f64; 3]> {
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
    fn adamw_matches_hand_computation() {
        // lr 0.1, weight_decay 0.1: each step first scales p by 1 − 0.01 = 0.99, then applies
        // plain Adam's step (the moments see the raw gradient). Step 1 for w₀:
        //   1 · 0.99 − 0.1 · 0.5/(0.5 + 1e-8) = 0.890000002.
        // Step 2 for w₀: 0.890000002 · 0.99 − 0.0803040956 (Adam's step-2 update) = 0.8007959064.
        let steps = three_steps::<f64>(AdamWConfig::new(0.1).weight_decay(0.1));
        assert_abs_diff_eq!(steps[0][..], [0.890000002, -1.880000001, 0.3950000005][..], epsilon = 1e-9);
        assert_abs_diff_eq!(
            steps[1][..],
            [0.8007959063646517, -1.8184151424192265, 0.36441629669743153][..],
            epsilon = 1e-9
        );
        assert_abs_diff_eq!(
            steps[2][..],
            [0.7583525727518424, -1.792225087042392, 0.33875999841903875][..],
            epsilon = 1e-9
        );
        let f32_steps = three_steps::<f32>(AdamWConfig::new(0.1).weight_decay(0.1));
        assert_abs_diff_eq!(
            f32_steps[2][..],
            [0.7583525727518424, -1.792225087042392, 0.33875999841903875][..],
            epsilon = 1e-6
        );
    }

    #[test]
    fn pytorch_defaults_match_hand_computation() {
        // lr 0.01 and the default weight_decay 0.01: shrink factor 1 − 1e-4 = 0.9999.
        // Step 1 for w₀: 0.9999 − 0.01 · 0.5/(0.5 + 1e-8) = 0.9899000002.
        let config = AdamWConfig::new(0.01);
        assert_eq!(config.weight_decay, 0.01);
        let steps = three_steps::<f64>(config);
        assert_abs_diff_eq!(steps[0][..], [0.9899000002, -1.9898000001, 0.48995000005][..], epsilon = 1e-9);
        assert_abs_diff_eq!(
            steps[1][..],
            [0.9817706006384452, -1.9853225342429126, 0.4872376346702382][..],
            epsilon = 1e-9
        );
        assert_abs_diff_eq!(
            steps[2][..],
            [0.978228886123465, -1.984323411594224, 0.4849876973756293][..],
            epsilon = 1e-9
        );
    }

    #[test]
    fn invalid_configuration_is_refused_naming_the_field() {
        let cases = [
            (AdamWConfig::new(-1e-3), "lr"),
            (AdamWConfig::new(1e-3).betas(0.9, 1.5), "betas"),
            (AdamWConfig::new(1e-3).eps(-1e-8), "eps"),
            (AdamWConfig::new(1e-3).weight_decay(f64::NAN), "weight_decay"),
        ];
        for (config, field) in cases {
            match config.build::<f32>() {
                Err(Error::InvalidConfig { component, field: f, .. }) => {
                    assert_eq!((component.as_str(), f), ("AdamW", field), "{config:?}")
                }
                other => panic!("{config:?}: expected InvalidConfig for {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn non_finite_gradient_leaves_every_parameter_unchanged() {
        // The decay would change the parameters even with a zero gradient; it must not run either.
        let mut m = model::<f64>();
        let mut opt = AdamWConfig::new(0.1).weight_decay(0.5).build::<f64>().unwrap();
        set_grads(&mut m, [0.0, 0.0, f64::NAN]);
        let before = params(&m);
        assert!(matches!(opt.step(&mut m), Err(Error::NonFinite { .. })));
        assert_eq!(params(&m), before);
    }
}
