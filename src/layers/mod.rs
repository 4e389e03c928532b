//! Layers and containers.

mod builder;
mod linear;
mod sequential;

pub use builder::SequentialBuilder;
pub use linear::{Linear, LinearConfig};
pub use sequential::Sequential;
