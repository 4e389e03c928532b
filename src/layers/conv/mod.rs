//! Image layers: convolution, pooling, flattening, and the zero-padding shortcut of residual
//! networks. Images travel as `(batch, C·H·W)` rows in NCHW order: see [`ImageShape`].

mod conv2d;
mod image;
mod window;

pub use conv2d::{Conv2d, Conv2dConfig, Padding};
pub use image::ImageShape;
pub(crate) use image::{check_image_features, check_image_input};
pub(crate) use window::Window;
