//! He/Kaiming initialization: [`KaimingUniform`] and [`KaimingNormal`], with [`FanMode`].
//!
//! He, Zhang, Ren & Sun (2015), "Delving Deep into Rectifiers: Surpassing Human-Level
//! Performance on ImageNet Classification", ICCV: `std = gain/√fan`, where `fan` is `fan_in`
//! (preserves the variance of the forward signal) or `fan_out` (preserves the variance of the
//! backward gradient), and the gain compensates the activation (√2 for ReLU, which zeroes half
//! of its inputs). Formulas of `torch.nn.init.kaiming_uniform_` and `kaiming_normal_`.
//!
//! # Default gain: the activation that actually follows
//!
//! PyTorch's `kaiming_*_` default to `nonlinearity='leaky_relu', a=0`, i.e. a gain of √2
//! whatever activation follows. gradflow's default (`gain: None`) instead takes the gain of the
//! activation that actually follows the layer, [`Fans::activation_gain`], which the builder
//! fills from [`crate::Activation::gain`] of the next activation, looking past normalization,
//! dropout, pooling and flattening layers in between: √2 before a ReLU (the same as PyTorch),
//! also in `Linear → BatchNorm → ReLU`; 5/3 before tanh; 1 before no activation. To reproduce PyTorch's default exactly whatever follows, set the
//! gain: `KaimingNormal::fan_in().with_gain(std::f64::consts::SQRT_2)`.

use ndarray::Array2;
use rand::RngCore;

use super::{Fans, Initializer, check, draw, short};
use crate::Result;

/// Alias: He is Kaiming He's family name; Keras calls these `he_uniform`.
pub type HeUniform = KaimingUniform;
/// Alias: He is Kaiming He's family name; Keras calls these `he_normal`.
pub type HeNormal = KaimingNormal;

/// Which fan the He/Kaiming variance is divided by (PyTorch's `mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum FanMode {
    /// `fan_in` (PyTorch's default): preserves the magnitude of the forward signal.
    #[default]
    FanIn,
    /// `fan_out`: preserves the magnitude of the gradient in the backward pass.
    FanOut,
}

impl FanMode {
    /// `"fan_in"` or `"fan_out"`, as PyTorch spells the mode.
    pub fn name(self) -> &'static str {
        match self {
            FanMode::FanIn => "fan_in",
            FanMode::FanOut => "fan_out",
        }
    }

    /// The fan this mode selects.
    pub fn fan(self, fans: Fans) -> usize {
        match self {
            FanMode::FanIn => fans.fan_in,
            FanMode::FanOut => fans.fan_out,
        }
    }
}

/// std = gain/√fan with the explicit gain, or the following activation's when `None`.
fn kaiming_std(component: &str, mode: FanMode, gain: Option<f64>, fans: Fans) -> Result<f64> {
    let fan = check::fan(component, mode.name(), mode.fan(fans))?;
    let gain = match gain {
        Some(g) => g,
        None => check::gain(component, "activation_gain", fans.activation_gain)?,
    };
    Ok(gain / fan.sqrt())
}

fn kaiming_name(kind: &str, mode: FanMode, gain: Option<f64>) -> String {
    match gain {
        Some(g) => format!("{kind}({}, gain={})", mode.name(), short(g)),
        None => format!("{kind}({}, gain=activation)", mode.name()),
    }
}

/// He/Kaiming uniform (`torch.nn.init.kaiming_uniform_`): U(−b, b) with b = gain·√(3/fan),
/// i.e. std = gain/√fan. `fan` is chosen by the [`FanMode`]; the gain is the following
/// activation's ([`Fans::activation_gain`]) unless set.
///
/// # Default gain: the activation that actually follows
/// PyTorch's `kaiming_uniform_`/`kaiming_normal_` default to `nonlinearity='leaky_relu', a=0`,
/// i.e. a gain of √2 whatever activation follows. gradflow's default (`gain: None`) takes the
/// gain of the activation that actually follows the layer, which the builder fills in from
/// [`crate::Activation::gain`]: √2 before a ReLU (the same as PyTorch), 5/3 before tanh, 1
/// before nothing. To reproduce PyTorch's default whatever follows, set it:
/// `KaimingUniform::fan_in().with_gain(std::f64::consts::SQRT_2)`.
///
/// ```
/// use gradflow::init::{Fans, Initializer, KaimingUniform};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // Followed by a ReLU (gain √2) with fan_in 6: b = √2·√(3/6) = 1.
/// let w = KaimingUniform::fan_in().sample((4, 6), Fans::new(6, 4, 2f64.sqrt()), &mut rng)?;
/// assert!(w.iter().all(|v| v.abs() <= 1.0 + 1e-12));
/// # Ok::<(), gradflow::Error>(())
/// ```
#[doc(alias = "he_uniform")]
#[doc(alias = "kaiming_uniform")]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KaimingUniform {
    mode: FanMode,
    gain: Option<f64>,
}

impl KaimingUniform {
    /// Kaiming uniform with the given mode and gain (`None`: the following activation's).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming `gain` when it is not positive and finite.
    pub fn new(mode: FanMode, gain: Option<f64>) -> Result<Self> {
        let gain = gain.map(|g| check::gain("KaimingUniform", "gain", g)).transpose()?;
        Ok(KaimingUniform { mode, gain })
    }

    /// Fan-in mode (PyTorch's default), gain of the following activation.
    pub fn fan_in() -> Self {
        KaimingUniform { mode: FanMode::FanIn, gain: None }
    }

    /// Fan-out mode, gain of the following activation.
    pub fn fan_out() -> Self {
        KaimingUniform { mode: FanMode::FanOut, gain: None }
    }

    /// The same mode with an explicit gain, used instead of the activation's.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming `gain` when it is not positive and finite.
    pub fn with_gain(self, gain: f64) -> Result<Self> {
        Self::new(self.mode, Some(gain))
    }

    /// The fan mode.
    pub fn mode(&self) -> FanMode {
        self.mode
    }

    /// The explicit gain, or `None` when the following activation's gain is used.
    pub fn gain(&self) -> Option<f64> {
        self.gain
    }
}

impl Initializer for KaimingUniform {
    fn name(&self) -> String {
        kaiming_name("kaiming_uniform", self.mode, self.gain)
    }

    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        // PyTorch: std = gain/√fan; bound = √3·std.
        let bound = 3f64.sqrt() * kaiming_std("KaimingUniform", self.mode, self.gain, fans)?;
        draw::uniform("KaimingUniform", shape, -bound, bound, rng)
    }
}

/// He/Kaiming normal (`torch.nn.init.kaiming_normal_`): N(0, std²) with std = gain/√fan.
/// `fan` is chosen by the [`FanMode`]; the gain is the following activation's
/// ([`Fans::activation_gain`]) unless set. PyTorch's default gain is √2 whatever follows; see
/// [`KaimingUniform`] for why gradflow uses the activation's instead.
///
/// ```
/// use gradflow::init::{Fans, Initializer, KaimingNormal};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // Fan-out mode, explicit gain 1 (the following tanh's 5/3 is ignored): std = 1/√100.
/// let init = KaimingNormal::fan_out().with_gain(1.0)?;
/// assert_eq!(init.name(), "kaiming_normal(fan_out, gain=1)");
/// let w = init.sample((100, 400), Fans::new(400, 100, 5.0 / 3.0), &mut rng)?;
/// let std = (w.mapv(|v| v * v).mean().unwrap()).sqrt();
/// assert!((std - 0.1).abs() < 0.002);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[doc(alias = "he_normal")]
#[doc(alias = "kaiming_normal")]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KaimingNormal {
    mode: FanMode,
    gain: Option<f64>,
}

impl KaimingNormal {
    /// Kaiming normal with the given mode and gain (`None`: the following activation's).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming `gain` when it is not positive and finite.
    pub fn new(mode: FanMode, gain: Option<f64>) -> Result<Self> {
        let gain = gain.map(|g| check::gain("KaimingNormal", "gain", g)).transpose()?;
        Ok(KaimingNormal { mode, gain })
    }

    /// Fan-in mode (PyTorch's default), gain of the following activation.
    pub fn fan_in() -> Self {
        KaimingNormal { mode: FanMode::FanIn, gain: None }
    }

    /// Fan-out mode, gain of the following activation.
    pub fn fan_out() -> Self {
        KaimingNormal { mode: FanMode::FanOut, gain: None }
    }

    /// The same mode with an explicit gain, used instead of the activation's.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming `gain` when it is not positive and finite.
    pub fn with_gain(self, gain: f64) -> Result<Self> {
        Self::new(self.mode, Some(gain))
    }

    /// The fan mode.
    pub fn mode(&self) -> FanMode {
        self.mode
    }

    /// The explicit gain, or `None` when the following activation's gain is used.
    pub fn gain(&self) -> Option<f64> {
        self.gain
    }
}

impl Initializer for KaimingNormal {
    fn name(&self) -> String {
        kaiming_name("kaiming_normal", self.mode, self.gain)
    }

    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        let std = kaiming_std("KaimingNormal", self.mode, self.gain, fans)?;
        draw::normal("KaimingNormal", shape, 0.0, std, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::testing::{FAN_IN, FAN_OUT, assert_moments, rng};
    use std::f64::consts::SQRT_2;

    const TANH_GAIN: f64 = 5.0 / 3.0;

    /// (initializer, expected std) for fans 300/700 followed by a ReLU (gain √2).
    fn cases() -> Vec<(Box<dyn Initializer>, f64)> {
        vec![
            (Box::new(KaimingUniform::fan_in()), SQRT_2 / 300f64.sqrt()),
            (Box::new(KaimingUniform::fan_out()), SQRT_2 / 700f64.sqrt()),
            (Box::new(KaimingNormal::fan_in()), SQRT_2 / 300f64.sqrt()),
            (Box::new(KaimingNormal::fan_out()), SQRT_2 / 700f64.sqrt()),
        ]
    }

    #[test]
    fn statistics_match_pytorch_in_both_fan_modes() {
        for (seed, (init, std)) in cases().into_iter().enumerate() {
            let w =
                init.sample((512, 512), Fans::new(FAN_IN, FAN_OUT, SQRT_2), &mut rng(seed as u64)).unwrap();
            assert_moments(&w, 0.0, std, &init.name());
        }
    }

    #[test]
    fn uniform_bound_is_gain_times_root_three_over_fan() {
        let w = KaimingUniform::fan_out()
            .sample((512, 512), Fans::new(FAN_IN, FAN_OUT, SQRT_2), &mut rng(9))
            .unwrap();
        let bound = SQRT_2 * (3.0f64 / 700.0).sqrt() * (1.0 + 1e-12);
        assert!(w.iter().all(|v| v.abs() <= bound));
        // And the draw reaches close to the bound (it is not, e.g., using fan_in's smaller one).
        assert!(w.iter().any(|v| v.abs() > 0.99 * bound));
    }

    #[test]
    fn unset_gain_is_the_following_activations() {
        // Followed by tanh: std = (5/3)/√300.
        let fans = Fans::new(FAN_IN, FAN_OUT, TANH_GAIN);
        let w = KaimingNormal::fan_in().sample((512, 512), fans, &mut rng(11)).unwrap();
        assert_moments(&w, 0.0, TANH_GAIN / 300f64.sqrt(), "kaiming_normal after tanh");
        let w = KaimingUniform::fan_in().sample((512, 512), fans, &mut rng(12)).unwrap();
        assert_moments(&w, 0.0, TANH_GAIN / 300f64.sqrt(), "kaiming_uniform after tanh");
    }

    #[test]
    fn explicit_gain_overrides_the_activations() {
        // Explicit gain 1 while the activation says 5/3: std = 1/√300.
        let fans = Fans::new(FAN_IN, FAN_OUT, TANH_GAIN);
        let init = KaimingNormal::fan_in().with_gain(1.0).unwrap();
        let w = init.sample((512, 512), fans, &mut rng(13)).unwrap();
        assert_moments(&w, 0.0, 1.0 / 300f64.sqrt(), "kaiming_normal gain 1");
        let init = KaimingUniform::new(FanMode::FanOut, Some(3.0)).unwrap();
        let w = init.sample((512, 512), fans, &mut rng(14)).unwrap();
        assert_moments(&w, 0.0, 3.0 / 700f64.sqrt(), "kaiming_uniform gain 3");
    }

    #[test]
    fn invalid_explicit_gain_is_refused() {
        for bad in [0.0, -SQRT_2, f64::NAN, f64::INFINITY] {
            let msg = KaimingNormal::fan_in().with_gain(bad).unwrap_err().to_string();
            assert!(msg.contains("KaimingNormal") && msg.contains("`gain`"), "{msg}");
            let msg = KaimingUniform::new(FanMode::FanOut, Some(bad)).unwrap_err().to_string();
            assert!(msg.contains("KaimingUniform") && msg.contains("`gain`"), "{msg}");
        }
    }

    #[test]
    fn invalid_activation_gain_is_refused_when_used() {
        let fans = Fans::new(4, 4, f64::NAN);
        let msg = KaimingNormal::fan_in().sample((4, 4), fans, &mut rng(0)).unwrap_err().to_string();
        assert!(msg.contains("`activation_gain`"), "{msg}");
        // With an explicit gain the activation's is not consulted.
        assert!(KaimingNormal::fan_in().with_gain(1.0).unwrap().sample((4, 4), fans, &mut rng(0)).is_ok());
    }

    #[test]
    fn zero_fan_of_the_mode_is_refused_the_other_is_not_used() {
        let fans = Fans::new(5, 0, 1.0);
        let msg = KaimingUniform::fan_out().sample((1, 5), fans, &mut rng(0)).unwrap_err().to_string();
        assert!(msg.contains("KaimingUniform") && msg.contains("`fan_out`"), "{msg}");
        assert!(KaimingUniform::fan_in().sample((1, 5), fans, &mut rng(0)).is_ok());
        let msg = KaimingNormal::fan_in().sample((1, 5), Fans::new(0, 5, 1.0), &mut rng(0)).unwrap_err();
        assert!(msg.to_string().contains("`fan_in`"), "{msg}");
    }

    #[test]
    fn defaults_and_names() {
        assert_eq!(KaimingNormal::default(), KaimingNormal::fan_in());
        assert_eq!(HeUniform::default().mode(), FanMode::FanIn);
        assert_eq!(KaimingUniform::fan_out().gain(), None);
        assert_eq!(KaimingUniform::fan_in().name(), "kaiming_uniform(fan_in, gain=activation)");
        let init = HeNormal::fan_out().with_gain(SQRT_2).unwrap();
        assert_eq!(init.gain(), Some(SQRT_2));
        assert_eq!(init.name(), "kaiming_normal(fan_out, gain=1.4142)");
    }
}
