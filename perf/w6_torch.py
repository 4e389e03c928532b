"""W6 in PyTorch: He et al.'s ResNet-20 for CIFAR-10 (3x3 convolutions without bias, BatchNorm2d
in training mode, ReLU, option-A zero-padding shortcuts, global average pooling, Linear 64->10)
on 3x32x32 images, batch 64, f32, cross-entropy, one plain SGD step (lr 1e-3) per step, the loss
read back each step. The same network as gradflow's `CifarResNet::new(20, &[16, 32, 64], 10)`.

Usage: w6_torch.py <eager|compile> <threads>   (speaks peer_protocol.py on stdin/stdout)
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_protocol import serve

MODE, THREADS = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(THREADS)
torch.manual_seed(0)


class ZeroPad(nn.Module):
    """Option A: every second row and column, zero channels around (planes // 4 on each side)."""

    def __init__(self, extra):
        super().__init__()
        self.extra = extra

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else ZeroPad(cout - cin)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


def resnet20(widths=(16, 32, 64), classes=10):
    layers = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    cin = widths[0]
    for stage, width in enumerate(widths):
        for block in range(3):
            layers.append(BasicBlock(cin, width, 2 if stage > 0 and block == 0 else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def build(name):
    if name != "W6":
        return None
    model = resnet20().train()
    x = torch.randn(64, 3, 32, 32)
    y = torch.tensor([i * 7 % 10 for i in range(64)])
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def forward_loss(x, y):
        return F.cross_entropy(model(x), y)

    if MODE == "compile":
        forward_loss = torch.compile(forward_loss)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = forward_loss(x, y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


if __name__ == "__main__":
    serve(build)
