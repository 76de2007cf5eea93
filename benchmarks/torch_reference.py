"""PyTorch versions of ganjax's networks and train steps, for side-by-side timing only.

Used by benchmarks/throughput.py; never imported by the package or its tests
(PyTorch is listed in benchmarks/requirements.txt alone).

Each `make_*_step(...)` builds the networks and optimizers with the same
layer sizes, losses, optimizer settings and batch shapes as the ganjax
experiment it mirrors, and returns a `TorchStep`: `.run(batch)` performs one
generator iteration (with its critic updates) on a batch of torch tensors
shaped as ganjax's batches are, [n_critic, B, C, H, W] (NCHW here), and
`.params` maps network names to trainable parameter counts, which
throughput.py checks against ganjax's.

  dcgan    models/dcgan.py Generator / Discriminator (BatchNorm; LayerNorm over
           C, H, W with per-channel scale and bias for WGAN-GP critics, which
           is GroupNorm with one group); class conditioning by a label
           embedding concatenated to z and one-hot channels concatenated to
           the image.
  gan      non-saturating loss, D on the real and the fake batch in two
           passes, then G against the updated D, reusing fake = G(z).
  wgan_gp  n_critic critic updates, each with fresh fakes and the per-example
           gradient penalty (autograd.grad with create_graph=True), then one
           generator update with fresh noise.
  cyclegan models/cyclegan.py ResnetGenerator + PatchGAN, least-squares terms,
           cycle and identity L1, the history pools, one Adam over both
           generators and one over both discriminators.

While a network is only differentiated through (D during the generator
update), its parameters have requires_grad off, so no weight gradient is
computed that is thrown away: the fastest ordinary way to write the loop.
"""

import contextlib
import math
import random

import torch
from torch import nn
from torch.nn import functional as F


def count(module: nn.Module) -> int:
  return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _dcgan_init(module: nn.Module) -> None:
  for m in module.modules():
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
      nn.init.normal_(m.weight, 0.0, 0.02)
      if m.bias is not None:
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
      nn.init.normal_(m.weight, 1.0, 0.02)
      nn.init.zeros_(m.bias)


def stages_of(image_size: int) -> int:
  return int(round(math.log2(image_size / 4)))


class DCGANGenerator(nn.Module):

  def __init__(self, image_size, channels, width, latent_dim, num_classes=0, label_dim=10):
    super().__init__()
    stages = stages_of(image_size)
    features = width * 2 ** (stages - 1)
    self.embed = nn.Embedding(num_classes, label_dim) if num_classes else None
    inputs = latent_dim + (label_dim if num_classes else 0)
    layers = [nn.ConvTranspose2d(inputs, features, 4, 1, 0, bias=False),
              nn.BatchNorm2d(features, momentum=0.1, eps=1e-5), nn.ReLU(True)]
    for _ in range(stages - 1):
      layers += [nn.ConvTranspose2d(features, features // 2, 4, 2, 1, bias=False),
                 nn.BatchNorm2d(features // 2, momentum=0.1, eps=1e-5), nn.ReLU(True)]
      features //= 2
    layers += [nn.ConvTranspose2d(features, channels, 4, 2, 1, bias=False), nn.Tanh()]
    self.net = nn.Sequential(*layers)
    _dcgan_init(self)
    if self.embed is not None:
      nn.init.normal_(self.embed.weight, 0.0, 1.0)

  def forward(self, z, labels=None):
    if self.embed is not None:
      z = torch.cat([z, self.embed(labels)], 1)
    return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):

  def __init__(self, image_size, channels, width, norm="batch", num_classes=0, slope=0.2):
    super().__init__()
    self.num_classes = num_classes
    cin = channels + num_classes
    layers = []
    for i in range(stages_of(image_size)):
      layers.append(nn.Conv2d(cin, width, 4, 2, 1, bias=False))
      if i > 0 and norm == "batch":
        layers.append(nn.BatchNorm2d(width, momentum=0.1, eps=1e-5))
      elif i > 0 and norm == "layer":  # over C, H, W per example; per-channel affine
        layers.append(nn.GroupNorm(1, width, eps=1e-5))
      layers.append(nn.LeakyReLU(slope, True))
      cin, width = width, width * 2
    layers.append(nn.Conv2d(cin, 1, 4, 1, 0, bias=False))
    self.net = nn.Sequential(*layers)
    _dcgan_init(self)

  def forward(self, x, labels=None):
    if self.num_classes:
      maps = F.one_hot(labels, self.num_classes).to(x.dtype)[:, :, None, None]
      x = torch.cat([x, maps.expand(-1, -1, x.shape[2], x.shape[3])], 1)
    return self.net(x).reshape(x.shape[0])


def _frozen(module: nn.Module):
  """Context: `module`'s parameters need no gradient inside."""
  @contextlib.contextmanager
  def ctx():
    for p in module.parameters():
      p.requires_grad_(False)
    try:
      yield
    finally:
      for p in module.parameters():
        p.requires_grad_(True)
  return ctx()


class TorchStep:
  """One train step of a PyTorch reference; `compiled` wraps its networks in torch.compile."""

  def __init__(self, run, params, modules):
    self.run = run
    self.params = params
    self.modules = modules


def _autocast(device, dtype):
  if dtype == torch.float32:
    return contextlib.nullcontext()
  return torch.autocast(device_type=device.type, dtype=dtype)


def _maybe_compile(module, compile_):
  return torch.compile(module) if compile_ else module


def make_gan_step(*, image_size, channels, g_width, d_width, latent_dim, batch_size,
                  n_critic=1, loss="non_saturating", d_norm="batch", gp_weight=0.0,
                  num_classes=0, label_dim=10, g_lr=2e-4, d_lr=2e-4, betas=(0.5, 0.999),
                  device="cpu", dtype=torch.float32, compile_=False):
  """The GAN / WGAN-GP / cGAN step of ganjax's algorithms/gan.py, in PyTorch."""
  device = torch.device(device)
  g = DCGANGenerator(image_size, channels, g_width, latent_dim, num_classes, label_dim).to(device)
  d = DCGANDiscriminator(image_size, channels, d_width, d_norm, num_classes).to(device)
  params = {"generator": count(g), "discriminator": count(d)}
  g_opt = torch.optim.Adam(g.parameters(), lr=g_lr, betas=betas)
  d_opt = torch.optim.Adam(d.parameters(), lr=d_lr, betas=betas)
  gc, dc = _maybe_compile(g, compile_), _maybe_compile(d, compile_)
  amp = lambda: _autocast(device, dtype)  # noqa: E731

  def noise():
    return torch.randn(batch_size, latent_dim, device=device)

  def gradient_penalty(real, fake, labels):
    u = torch.rand(real.shape[0], 1, 1, 1, device=device)
    x_hat = (u * real + (1 - u) * fake).requires_grad_(True)
    out = dc(x_hat, labels)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    return gp_weight * ((norms - 1) ** 2).mean()

  def d_loss_of(real_out, fake_out):
    if loss == "wasserstein":
      return fake_out.mean() - real_out.mean()
    return (F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out))
            + F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out)))

  def g_loss_of(fake_out):
    if loss == "wasserstein":
      return -fake_out.mean()
    return F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))

  def discriminator_update(real, fake, labels):
    d_opt.zero_grad(set_to_none=True)
    with amp():
      lossv = d_loss_of(dc(real, labels), dc(fake, labels))
      if gp_weight > 0:
        lossv = lossv + gradient_penalty(real, fake, labels)
    lossv.backward()
    d_opt.step()

  def run(batch):
    reals = batch["image"]
    labels = batch.get("label")
    y0 = labels[0] if num_classes else None
    if n_critic == 1:  # the DCGAN loop: one fake batch for both updates
      with amp():
        fake = gc(noise(), y0)
      discriminator_update(reals[0], fake.detach(), y0)
    else:
      for i in range(n_critic):
        y = labels[i] if num_classes else None
        with torch.no_grad(), amp():
          fake = gc(noise(), y)
        discriminator_update(reals[i], fake, y)
      with amp():
        fake = gc(noise(), y0)
    g_opt.zero_grad(set_to_none=True)
    with _frozen(d), amp():
      lossv = g_loss_of(dc(fake, y0))
    lossv.backward()
    g_opt.step()
    return lossv

  return TorchStep(run, params, (g, d))


# ---------------------------------------------------------------------------
# CycleGAN


def _conv(cin, cout, k, s=1, p=0):
  return nn.Conv2d(cin, cout, k, s, p, bias=True)


class ResnetBlock(nn.Module):

  def __init__(self, features):
    super().__init__()
    self.body = nn.Sequential(
        nn.ReflectionPad2d(1), _conv(features, features, 3), nn.InstanceNorm2d(features),
        nn.ReLU(True), nn.ReflectionPad2d(1), _conv(features, features, 3),
        nn.InstanceNorm2d(features))

  def forward(self, x):
    return x + self.body(x)


class ResnetGenerator(nn.Module):

  def __init__(self, channels=3, width=64, num_blocks=9):
    super().__init__()
    layers = [nn.ReflectionPad2d(3), _conv(channels, width, 7), nn.InstanceNorm2d(width),
              nn.ReLU(True)]
    features = width
    for _ in range(2):
      layers += [_conv(features, features * 2, 3, 2, 1), nn.InstanceNorm2d(features * 2),
                 nn.ReLU(True)]
      features *= 2
    layers += [ResnetBlock(features) for _ in range(num_blocks)]
    for _ in range(2):
      layers += [nn.ConvTranspose2d(features, features // 2, 3, 2, 1, output_padding=1,
                                    bias=True),
                 nn.InstanceNorm2d(features // 2), nn.ReLU(True)]
      features //= 2
    layers += [nn.ReflectionPad2d(3), _conv(features, channels, 7), nn.Tanh()]
    self.net = nn.Sequential(*layers)
    _dcgan_init(self)

  def forward(self, x):
    return self.net(x)


class PatchDiscriminator(nn.Module):

  def __init__(self, channels=3, width=64, num_layers=3):
    super().__init__()
    layers = [_conv(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    cin = width
    for n in range(1, num_layers):
      cout = width * min(2 ** n, 8)
      layers += [_conv(cin, cout, 4, 2, 1), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2, True)]
      cin = cout
    cout = width * min(2 ** num_layers, 8)
    layers += [_conv(cin, cout, 4, 1, 1), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2, True),
               _conv(cout, 1, 4, 1, 1)]
    self.net = nn.Sequential(*layers)
    _dcgan_init(self)

  def forward(self, x):
    return self.net(x)


class ImagePool:
  """The reference history pool: store while filling, then swap with probability 1/2."""

  def __init__(self, size):
    self.size, self.images = size, []

  def query(self, images):
    if self.size == 0:
      return images
    out = []
    for image in images:
      image = image[None]
      if len(self.images) < self.size:
        self.images.append(image)
        out.append(image)
      elif random.random() > 0.5:
        i = random.randrange(self.size)
        out.append(self.images[i].clone())
        self.images[i] = image
      else:
        out.append(image)
    return torch.cat(out, 0)


def make_cyclegan_step(*, channels=3, g_width=64, d_width=64, num_blocks=9, d_layers=3,
                       cycle_weight=10.0, identity_weight=0.5, pool_size=50, lr=2e-4,
                       betas=(0.5, 0.999), device="cpu", dtype=torch.float32,
                       compile_=False):
  """The CycleGAN step of ganjax's algorithms/cyclegan.py, in PyTorch."""
  device = torch.device(device)
  g_ab, g_ba = (ResnetGenerator(channels, g_width, num_blocks).to(device) for _ in range(2))
  d_a, d_b = (PatchDiscriminator(channels, d_width, d_layers).to(device) for _ in range(2))
  params = {"g_ab": count(g_ab), "g_ba": count(g_ba), "d_a": count(d_a), "d_b": count(d_b)}
  g_opt = torch.optim.Adam(list(g_ab.parameters()) + list(g_ba.parameters()), lr=lr, betas=betas)
  d_opt = torch.optim.Adam(list(d_a.parameters()) + list(d_b.parameters()), lr=lr, betas=betas)
  G_ab, G_ba, D_a, D_b = (_maybe_compile(m, compile_) for m in (g_ab, g_ba, d_a, d_b))
  pool_a, pool_b = ImagePool(pool_size), ImagePool(pool_size)
  lam, idt = cycle_weight, cycle_weight * identity_weight
  amp = lambda: _autocast(device, dtype)  # noqa: E731

  def mse(x, target):
    return ((x.float() - target) ** 2).mean()

  def run(batch):
    real_a, real_b = batch["image_a"][0], batch["image_b"][0]
    g_opt.zero_grad(set_to_none=True)
    with _frozen(d_a), _frozen(d_b), amp():
      fake_b, fake_a = G_ab(real_a), G_ba(real_b)
      g_loss = (mse(D_a(fake_a), 1.0) + mse(D_b(fake_b), 1.0)
                + lam * (F.l1_loss(G_ba(fake_b), real_a) + F.l1_loss(G_ab(fake_a), real_b)))
      if idt > 0:
        g_loss = g_loss + idt * (F.l1_loss(G_ba(real_a), real_a)
                                 + F.l1_loss(G_ab(real_b), real_b))
    g_loss.backward()
    g_opt.step()
    fa, fb = pool_a.query(fake_a.detach()), pool_b.query(fake_b.detach())
    d_opt.zero_grad(set_to_none=True)
    with amp():
      d_loss = (0.5 * (mse(D_a(real_a), 1.0) + mse(D_a(fa), 0.0))
                + 0.5 * (mse(D_b(real_b), 1.0) + mse(D_b(fb), 0.0)))
    d_loss.backward()
    d_opt.step()
    return g_loss

  return TorchStep(run, params, (g_ab, g_ba, d_a, d_b))
