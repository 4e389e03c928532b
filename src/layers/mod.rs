//! Layers and containers.

pub(crate) mod batch_norm;
mod builder;
mod builder_edits;
pub(crate) mod child_names;
pub(crate) mod conv;
pub(crate) mod dropout;
pub(crate) mod highway;
mod image_builder;
pub(crate) mod layer_norm;
mod linear;
pub(crate) mod prelu;
pub(crate) mod residual;
mod resnet;
mod scale;
mod sequential;

pub use batch_norm::{BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig};
pub use builder::SequentialBuilder;
pub use conv::{
    AdaptiveAvgPool2d, AvgPool2d, Conv2d, Conv2dConfig, Flatten, ImageShape, MaxPool2d, Padding,
    ZeroPadShortcut,
};
pub(crate) use conv::{check_image_features, check_image_input, copy_into};
pub use dropout::{Dropout, Dropout2d};
pub use highway::{Highway, HighwayConfig};
pub use image_builder::ShortcutKind;
pub use layer_norm::{LayerNorm, LayerNormConfig};
pub use linear::{Linear, LinearConfig};
pub use prelu::PRelu;
pub use residual::{BranchScale, Residual, ResidualBlock};
pub use resnet::CifarResNet;
pub use scale::Scale;
pub use sequential::Sequential;
pub(crate) use sequential::{child_named, find_typed, find_typed_mut};
