//! Layers and containers.

mod builder;
mod linear;
mod prelu;
mod sequential;

pub use builder::SequentialBuilder;
pub use linear::{Linear, LinearConfig};
pub use prelu::PRelu;
pub use sequential::Sequential;
