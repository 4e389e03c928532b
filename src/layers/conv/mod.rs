//! Image layers: convolution, pooling, flattening, and the zero-padding shortcut of residual
//! networks. Images travel as `(batch, C·H·W)` rows in NCHW order: see [`ImageShape`].

mod adaptive_avg_pool;
mod avg_pool;
mod conv2d;
mod flatten;
mod image;
mod image_pass;
mod max_pool;
mod passes;
mod window;
mod zero_pad_shortcut;

pub use adaptive_avg_pool::AdaptiveAvgPool2d;
pub(crate) use adaptive_avg_pool::{adaptive_avg_pool, adaptive_avg_pool_backward};
pub use avg_pool::AvgPool2d;
pub(crate) use avg_pool::{avg_pool, avg_pool_backward};
pub use conv2d::{Conv2d, Conv2dConfig, Padding};
pub(crate) use conv2d::{gather_product, scatter_product};
pub use flatten::Flatten;
pub use image::ImageShape;
pub(crate) use image::{check_image_features, check_image_input, copy_into};
pub use max_pool::MaxPool2d;
pub(crate) use max_pool::{max_pool, max_pool_backward};
pub(crate) use passes::{add_channel_bias, add_channel_sums};
pub(crate) use window::{PackedWindow, col2im, col2im_gather, im2col, im2col_gather};
pub use zero_pad_shortcut::ZeroPadShortcut;
pub(crate) use zero_pad_shortcut::{pad_channels, pad_channels_backward};
