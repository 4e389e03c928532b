//! Work split across threads gives the results of the single-threaded computation.
//!
//! Each computation runs inside local rayon pools of 1, 2 and 3 threads (gradflow uses the
//! pool it is called from), large enough to be split: recurrent steps with B·H·G·H ≥ 2²⁰
//! multiply-adds, matrix products with ≥ 2²⁵.

use gradflow::activation::Tanh;
use gradflow::recurrent::{GruConfig, LstmConfig, Recurrent, RnnConfig};
use gradflow::{Layer, Mode, Sequential, hooks::Context};
use ndarray::{Array2, Array3, ArrayD};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

fn normal3(shape: (usize, usize, usize), seed: u64) -> Array3<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Array3::from_shape_simple_fn(shape, || StandardNormal.sample(&mut rng))
}

/// Outputs, input gradient and parameter gradients of one forward/backward pass.
fn recurrent_pass(kind: &str, threads: usize) -> Vec<ArrayD<f32>> {
    in_pool(threads, || {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        // Batch 64, hidden 128: 64·128·(G·128) ≥ 2²⁰ multiply-adds per step for every cell.
        let mut layer: Box<dyn Recurrent<f32>> = match kind {
            "rnn" => Box::new(RnnConfig::new(8, 128).num_layers(2).build(&mut rng).unwrap()),
            "lstm" => Box::new(LstmConfig::new(8, 128).num_layers(2).build(&mut rng).unwrap()),
            _ => Box::new(GruConfig::new(8, 128).num_layers(2).build(&mut rng).unwrap()),
        };
        let x = normal3((5, 64, 8), 2);
        layer.forward_sequence(x.view(), None, Mode::Train).unwrap();
        layer.backward_sequence(normal3((5, 64, 128), 3).view(), None, None).unwrap();
        let mut out = vec![
            layer.outputs().unwrap().into_dyn().to_owned(),
            layer.grad_input().unwrap().into_dyn().to_owned(),
        ];
        layer.visit_parameters(&mut |p| out.push(p.grad.to_owned()));
        out
    })
}

#[test]
fn recurrent_steps_split_across_threads_give_identical_results() {
    for kind in ["rnn", "lstm", "gru"] {
        let one = recurrent_pass(kind, 1);
        for threads in [2, 3] {
            assert!(one == recurrent_pass(kind, threads), "{kind}: {threads} threads differ from 1");
        }
    }
}

/// Output, input gradient and parameter gradients of a Linear-tanh-Linear stack.
fn linear_pass(threads: usize) -> Vec<ArrayD<f32>> {
    in_pool(threads, || {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        // 256 × 512 × 384 ≥ 2²⁵ multiply-adds: split, along columns, rows or both.
        let mut model = Sequential::<f32>::builder(512).dense(384, Tanh).linear(300).build(&mut rng).unwrap();
        let x = Array2::from_shape_fn((256, 512), |(i, j)| ((i * 13 + j * 7) % 17) as f32 / 8.5 - 1.0);
        let mut y = Array2::zeros((0, 0));
        let mut ctx = Context::new();
        model.forward(x.view(), &mut y, Mode::Train, &mut ctx).unwrap();
        let grad_y = y.mapv(|v| v * 0.5 + 0.1);
        let mut dx = Array2::zeros((0, 0));
        model.backward(x.view(), y.view(), grad_y.view(), Some(&mut dx), &mut ctx).unwrap();
        let mut out = vec![y.into_dyn(), dx.into_dyn()];
        model.visit_parameters(&mut |p| out.push(p.grad.to_owned()));
        out
    })
}

#[test]
fn matrix_products_split_across_threads_agree_with_one_thread() {
    let one = linear_pass(1);
    for threads in [2, 3] {
        let many = linear_pass(threads);
        for (i, (a, b)) in one.iter().zip(&many).enumerate() {
            let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let diff = a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
            // Blocks may be summed in a different order inside the kernels: f32 round-off only.
            assert!(
                diff <= 1e-5 * scale,
                "array {i}, {threads} threads: max difference {diff:e} (scale {scale:e})"
            );
        }
    }
}
