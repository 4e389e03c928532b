"""W6 in JAX (jit): He et al.'s ResNet-20 for CIFAR-10, as w6_torch.py (3x3 convolutions
without bias, batch normalization with batch statistics and running averages, ReLU, option-A
zero-padding shortcuts, global average pooling, a dense 64->10), 3x32x32 images in NCHW, batch
64, f32, cross-entropy, one plain SGD step (lr 1e-3) jitted as one function, loss read back.

Usage: w6_jax.py <threads>   (threads are set by the caller through XLA_FLAGS and taskset)
"""
import jax
import jax.numpy as jnp

from peer_protocol import serve

WIDTHS = (16, 32, 64)
LR, MOMENTUM, EPS = 1e-3, 0.1, 1e-5


def conv(x, w, stride):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), ((1, 1), (1, 1)),
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))


def batch_norm(x, p, s):
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    new_s = {"mean": (1 - MOMENTUM) * s["mean"] + MOMENTUM * mean,
             "var": (1 - MOMENTUM) * s["var"] + MOMENTUM * var * n / (n - 1)}
    y = (x - mean[None, :, None, None]) * jax.lax.rsqrt(var + EPS)[None, :, None, None]
    return y * p["gamma"][None, :, None, None] + p["beta"][None, :, None, None], new_s


def zero_pad(x, cout):
    x = x[:, :, ::2, ::2]
    extra = cout - x.shape[1]
    return jnp.pad(x, ((0, 0), (extra // 2, extra - extra // 2), (0, 0), (0, 0)))


def init(key):
    def conv_w(key, cout, cin):
        return jax.random.normal(key, (cout, cin, 3, 3)) * jnp.sqrt(2.0 / (cin * 9))

    def bn(c):
        return {"gamma": jnp.ones(c), "beta": jnp.zeros(c)}, {"mean": jnp.zeros(c), "var": jnp.ones(c)}

    keys = iter(jax.random.split(key, 64))
    params, state = {"stem": conv_w(next(keys), WIDTHS[0], 3), "blocks": [], "bn": None}, {"blocks": []}
    params["bn"], state["bn"] = bn(WIDTHS[0])
    cin = WIDTHS[0]
    for stage, width in enumerate(WIDTHS):
        for block in range(3):
            (p1, s1), (p2, s2) = bn(width), bn(width)
            params["blocks"].append({"w1": conv_w(next(keys), width, cin), "bn1": p1,
                                     "w2": conv_w(next(keys), width, width), "bn2": p2})
            state["blocks"].append({"bn1": s1, "bn2": s2})
            cin = width
    params["fc_w"] = jax.random.normal(next(keys), (10, cin)) * 0.1
    params["fc_b"] = jnp.zeros(10)
    return params, state


def forward(params, state, x):
    new_state = {"blocks": []}
    y, new_state["bn"] = batch_norm(conv(x, params["stem"], 1), params["bn"], state["bn"])
    y = jax.nn.relu(y)
    for i, (p, s) in enumerate(zip(params["blocks"], state["blocks"])):
        stride = 2 if i in (3, 6) else 1
        h, s1 = batch_norm(conv(y, p["w1"], stride), p["bn1"], s["bn1"])
        h, s2 = batch_norm(conv(jax.nn.relu(h), p["w2"], 1), p["bn2"], s["bn2"])
        shortcut = y if stride == 1 and y.shape[1] == h.shape[1] else zero_pad(y, h.shape[1])
        y = jax.nn.relu(h + shortcut)
        new_state["blocks"].append({"bn1": s1, "bn2": s2})
    pooled = y.mean(axis=(2, 3))
    return pooled @ params["fc_w"].T + params["fc_b"], new_state


def loss_fn(params, state, x, labels):
    logits, new_state = forward(params, state, x)
    logp = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean(), new_state


@jax.jit
def train_step(params, state, x, labels):
    (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, labels)
    params = jax.tree_util.tree_map(lambda p, g: p - LR * g, params, grads)
    return params, new_state, loss


def build(name):
    if name != "W6":
        return None
    key = jax.random.PRNGKey(0)
    params, state = init(key)
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 3, 32, 32))
    labels = jnp.array([i * 7 % 10 for i in range(64)])
    holder = {"params": params, "state": state}

    def step():
        holder["params"], holder["state"], loss = train_step(holder["params"], holder["state"], x, labels)
        return float(loss)

    return step


if __name__ == "__main__":
    serve(build)
