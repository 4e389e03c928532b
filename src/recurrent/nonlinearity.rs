//! [`Nonlinearity`]: the activation of an Elman RNN.

use crate::{Error, Result};

/// The non-linearity of an Elman [`super::Rnn`], PyTorch's `nonlinearity` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Nonlinearity {
    /// h_t = tanh(…) (PyTorch's default). Its derivative 1 − h² ≤ 1 shrinks the gradient at
    /// every step, and vanishes where units saturate.
    #[default]
    Tanh,
    /// h_t = max(0, …). Passes the gradient unchanged through active units; with identity
    /// recurrent weights this is the IRNN (see [`super::RecurrentInit::Identity`]).
    Relu,
}

impl Nonlinearity {
    /// PyTorch's spelling: `"tanh"` or `"relu"`.
    pub fn name(self) -> &'static str {
        match self {
            Nonlinearity::Tanh => "tanh",
            Nonlinearity::Relu => "relu",
        }
    }

    /// Parses PyTorch's spelling.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for anything but `"tanh"` and `"relu"`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "tanh" => Ok(Nonlinearity::Tanh),
            "relu" => Ok(Nonlinearity::Relu),
            other => Err(Error::config(
                "RNN",
                "nonlinearity",
                format!("must be \"tanh\" or \"relu\", got {other:?}"),
            )),
        }
    }
}
