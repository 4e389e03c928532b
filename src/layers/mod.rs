//! Layers and containers.

mod batch_norm;
mod builder;
mod conv;
mod highway;
mod layer_norm;
mod linear;
mod prelu;
mod residual;
mod scale;
mod sequential;

pub use batch_norm::{BatchNorm, BatchNorm1d, BatchNormConfig};
pub use builder::SequentialBuilder;
pub use conv::{Conv2d, Conv2dConfig, ImageShape, Padding};
pub(crate) use conv::{Window, check_image_features, check_image_input};
pub use highway::{Highway, HighwayConfig};
pub use layer_norm::{LayerNorm, LayerNormConfig};
pub use linear::{Linear, LinearConfig};
pub use prelu::PRelu;
pub use residual::{BranchScale, Residual, ResidualBlock};
pub use scale::Scale;
pub use sequential::Sequential;
