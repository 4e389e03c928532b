//! The two primitive draws every scheme reduces to: U(low, high) and N(mean, std), arrays
//! filled in row-major order from the caller's RNG by `ndarray-rand`
//! ([`RandomExt::random_using`]), one draw per entry.

use ndarray::Array2;
use rand::RngCore;
use rand_distr::Distribution;

use crate::{Error, Result};

/// `shape` i.i.d. draws from U[low, high) (half-open, like `torch.Tensor.uniform_`).
/// Requires finite `low < high`; `component` names the caller in the error otherwise.
pub(crate) fn uniform(
    component: &str,
    shape: (usize, usize),
    low: f64,
    high: f64,
    rng: &mut dyn RngCore,
) -> Result<Array2<f64>> {
    let dist = rand_distr::Uniform::new(low, high)
        .map_err(|e| Error::config(component, "bound", format!("U({low}, {high}) is invalid: {e}")))?;
    filled(component, shape, dist, rng)
}

/// `shape` i.i.d. draws from N(mean, std²), each `mean + std·z` with z standard normal
/// (`rand_distr::Normal`). Requires a finite `std`; `component` names the caller in the error
/// otherwise.
pub(crate) fn normal(
    component: &str,
    shape: (usize, usize),
    mean: f64,
    std: f64,
    rng: &mut dyn RngCore,
) -> Result<Array2<f64>> {
    let dist = rand_distr::Normal::new(mean, std)
        .map_err(|e| Error::config(component, "std", format!("N({mean}, {std}²) is invalid: {e}")))?;
    filled(component, shape, dist, rng)
}

/// `shape` draws from `dist` in row-major order (as `ndarray-rand`'s `random_using` draws
/// them), the size checked and the memory allocated fallibly.
fn filled(
    component: &str,
    shape: (usize, usize),
    dist: impl Distribution<f64>,
    rng: &mut dyn RngCore,
) -> Result<Array2<f64>> {
    let len = crate::alloc::check_len(component, "shape", &[shape.0, shape.1])?;
    let mut data = crate::alloc::try_vec(component, "shape", len)?;
    data.extend((0..len).map(|_| dist.sample(rng)));
    Ok(Array2::from_shape_vec(shape, data).expect("len is rows × cols"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::testing::rng;

    #[test]
    fn uniform_stays_in_its_half_open_interval() {
        let a = uniform("T", (100, 100), -0.5, 0.25, &mut rng(3)).unwrap();
        assert!(a.iter().all(|&v| (-0.5..0.25).contains(&v)));
    }

    #[test]
    fn uniform_refuses_an_empty_interval() {
        let msg = uniform("T", (2, 2), 1.0, 1.0, &mut rng(3)).unwrap_err().to_string();
        assert!(msg.starts_with("T:"), "{msg}");
    }

    #[test]
    fn normal_refuses_an_infinite_std() {
        let msg = normal("T", (2, 2), 0.0, f64::INFINITY, &mut rng(3)).unwrap_err().to_string();
        assert!(msg.starts_with("T:") && msg.contains("std"), "{msg}");
    }

    #[test]
    fn normal_with_zero_std_is_the_mean() {
        let a = normal("T", (3, 4), 2.5, 0.0, &mut rng(3)).unwrap();
        assert!(a.iter().all(|&v| v == 2.5));
    }
}
