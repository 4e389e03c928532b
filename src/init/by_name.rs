//! [`by_name`]: initializers chosen on a command line or in a configuration file.

use std::sync::Arc;

use super::{
    GlorotNormal, GlorotUniform, Initializer, KaimingNormal, KaimingUniform, LecunNormal, LecunUniform,
    LinearDefault, Normal, Ones, Orthogonal, Uniform, Zeros,
};
use crate::{Error, Result};

/// Every name [`by_name`] accepts, aliases included, in the order of its documentation.
pub const NAMES: &[&str] = &[
    "default",
    "glorot_uniform",
    "xavier_uniform",
    "glorot_normal",
    "xavier_normal",
    "he_uniform",
    "kaiming_uniform",
    "he_normal",
    "kaiming_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "normal",
    "uniform",
    "zeros",
    "ones",
];

/// The initializer called `name`, with its default settings:
///
/// | name | initializer |
/// |---|---|
/// | `default` | [`LinearDefault`], U(±1/√fan_in), PyTorch's `nn.Linear` default |
/// | `glorot_uniform`, `xavier_uniform` | [`GlorotUniform`], gain 1 |
/// | `glorot_normal`, `xavier_normal` | [`GlorotNormal`], gain 1 |
/// | `he_uniform`, `kaiming_uniform` | [`KaimingUniform`], fan-in, gain of the following activation |
/// | `he_normal`, `kaiming_normal` | [`KaimingNormal`], fan-in, gain of the following activation |
/// | `lecun_uniform` | [`LecunUniform`] |
/// | `lecun_normal` | [`LecunNormal`] |
/// | `orthogonal` | [`Orthogonal`], gain 1 |
/// | `normal` | [`Normal`], N(0, 1) — ignores the width: explodes in a deep network |
/// | `uniform` | [`Uniform`], U(0, 1) |
/// | `zeros`, `ones` | [`Zeros`], [`Ones`] (for biases and scales) |
///
/// Case, surrounding spaces and `-` for `_` do not matter (`"He-Normal"` works).
///
/// ```
/// use gradflow::init::{by_name, NAMES};
///
/// assert_eq!(by_name("xavier_uniform")?.name(), "xavier_uniform(gain=1)");
/// assert_eq!(by_name("He-Normal")?.name(), "kaiming_normal(fan_in, gain=activation)");
/// let err = by_name("glorot").unwrap_err().to_string();
/// assert!(err.contains("glorot_uniform"), "lists the valid names: {err}");
/// assert!(NAMES.iter().all(|n| by_name(n).is_ok()));
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] naming `name` and listing [`NAMES`] when the name is unknown.
pub fn by_name(name: &str) -> Result<Arc<dyn Initializer>> {
    let key = name.trim().to_ascii_lowercase().replace('-', "_");
    let init: Arc<dyn Initializer> = match key.as_str() {
        "default" => Arc::new(LinearDefault),
        "glorot_uniform" | "xavier_uniform" => Arc::new(GlorotUniform::default()),
        "glorot_normal" | "xavier_normal" => Arc::new(GlorotNormal::default()),
        "he_uniform" | "kaiming_uniform" => Arc::new(KaimingUniform::fan_in()),
        "he_normal" | "kaiming_normal" => Arc::new(KaimingNormal::fan_in()),
        "lecun_uniform" => Arc::new(LecunUniform),
        "lecun_normal" => Arc::new(LecunNormal),
        "orthogonal" => Arc::new(Orthogonal::default()),
        "normal" => Arc::new(Normal::default()),
        "uniform" => Arc::new(Uniform::default()),
        "zeros" => Arc::new(Zeros),
        "ones" => Arc::new(Ones),
        _ => {
            return Err(Error::config(
                "initializer",
                "name",
                format!("unknown initializer {name:?}; valid names: {}", NAMES.join(", ")),
            ));
        }
    };
    Ok(init)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Fans;
    use crate::init::testing::rng;

    #[test]
    fn aliases_give_the_same_initializer() {
        for (a, b) in [
            ("glorot_uniform", "xavier_uniform"),
            ("glorot_normal", "xavier_normal"),
            ("he_uniform", "kaiming_uniform"),
            ("he_normal", "kaiming_normal"),
        ] {
            assert_eq!(by_name(a).unwrap().name(), by_name(b).unwrap().name());
        }
    }

    #[test]
    fn each_name_gives_its_scheme() {
        let expected = [
            ("default", "uniform(±1/sqrt(fan_in))"),
            ("glorot_uniform", "xavier_uniform(gain=1)"),
            ("glorot_normal", "xavier_normal(gain=1)"),
            ("he_uniform", "kaiming_uniform(fan_in, gain=activation)"),
            ("kaiming_normal", "kaiming_normal(fan_in, gain=activation)"),
            ("lecun_uniform", "lecun_uniform"),
            ("lecun_normal", "lecun_normal"),
            ("orthogonal", "orthogonal(gain=1)"),
            ("normal", "normal(mean=0, std=1)"),
            ("uniform", "uniform(low=0, high=1)"),
            ("zeros", "zeros"),
            ("ones", "ones"),
        ];
        for (name, scheme) in expected {
            assert_eq!(by_name(name).unwrap().name(), scheme, "{name}");
        }
    }

    #[test]
    fn spelling_variants_are_accepted() {
        assert_eq!(by_name("  Kaiming-Uniform ").unwrap().name(), by_name("kaiming_uniform").unwrap().name());
        assert_eq!(by_name("LECUN_NORMAL").unwrap().name(), "lecun_normal");
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let msg = by_name("glorot").unwrap_err().to_string();
        assert!(msg.contains("`name`") && msg.contains("\"glorot\""), "{msg}");
        for name in NAMES {
            assert!(msg.contains(name), "{name} missing from: {msg}");
        }
    }

    #[test]
    fn named_kaiming_uses_the_activation_gain() {
        // Activation gain 3 makes the draw 3× that of gain 1, entry for entry.
        let init = by_name("he_normal").unwrap();
        let a = init.sample((4, 4), Fans::new(16, 4, 1.0), &mut rng(5)).unwrap();
        let b = init.sample((4, 4), Fans::new(16, 4, 3.0), &mut rng(5)).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((3.0 * x - y).abs() < 1e-15);
        }
    }
}
