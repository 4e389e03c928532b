//! Layers and containers.

pub(crate) mod batch_norm;
mod builder;
pub(crate) mod highway;
pub(crate) mod layer_norm;
mod linear;
pub(crate) mod prelu;
mod residual;
mod scale;
mod sequential;

pub use batch_norm::{BatchNorm, BatchNorm1d, BatchNormConfig};
pub use builder::SequentialBuilder;
pub use highway::{Highway, HighwayConfig};
pub use layer_norm::{LayerNorm, LayerNormConfig};
pub use linear::{Linear, LinearConfig};
pub use prelu::PRelu;
pub use residual::{BranchScale, Residual, ResidualBlock};
pub use scale::Scale;
pub use sequential::Sequential;
