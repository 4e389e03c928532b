//! Image layers: convolution, pooling, flattening, and the zero-padding shortcut of residual
//! networks. Images travel as `(batch, C·H·W)` rows in NCHW order: see [`ImageShape`].

mod adaptive_avg_pool;
mod avg_pool;
mod conv2d;
mod flatten;
mod image;
mod max_pool;
mod window;
mod zero_pad_shortcut;

pub use adaptive_avg_pool::AdaptiveAvgPool2d;
pub use avg_pool::AvgPool2d;
pub use conv2d::{Conv2d, Conv2dConfig, Padding};
pub use flatten::Flatten;
pub use image::ImageShape;
pub(crate) use image::{check_image_features, check_image_input};
pub use max_pool::MaxPool2d;
pub use zero_pad_shortcut::ZeroPadShortcut;
