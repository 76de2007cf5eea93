"""CycleGAN (Zhu, Park, Isola and Efros 2017): unpaired image-to-image translation.

Run (offline, CPU, minutes; writes runs/cyclegan):

  python -m ganjax.main --config experiments/cyclegan.py

Presets:
  (none)             bundled:digit_pair, two domains made from the bundled MNIST
                     digits (A: plain white digits; B: other digits, thickened and
                     coloured, see ganjax/data/bundled.py), 32x32x3; 6 residual blocks,
                     width 16, batch 4, so that it trains in minutes on a CPU.
                     The sample grid's rows are real A, G(A), F(G(A)), real B,
                     F(B), G(F(B)).
  horse2zebra        tfds:cycle_gan/horse2zebra at the paper's setting: resize
                     to 286, random 256x256 crops and flips, 9 blocks, width 64,
                     batch 1, 200 epochs of the 1,334 horses (266,800 steps),
                     the learning rate decaying linearly over the second half.
  tfds:<pair>        any tensorflow-datasets cycle_gan pair with the same
                     setting, e.g. experiments/cyclegan.py:tfds:cycle_gan/monet2photo
  folder:<path>      your own images in <path>/trainA and <path>/trainB (and
                     testA, testB), with the paper's setting.

Then translate your own images with the trained generators:

  python -m ganjax translate --workdir runs/cyclegan-horse2zebra \\
      --input my_horses/ --output zebras/ --direction AtoB

The objective, as the authors' reference code: least-squares adversarial
terms, cycle consistency L1 with lambda 10 both ways, identity L1 with weight
0.5 * lambda, the discriminator loss halved, a history pool of 50 generated
images per direction, Adam 2e-4 (0.5, 0.999), N(0, 0.02) initialisation.
"""

import ml_collections

from ganjax import configs

# Each preset with one line for python -m ganjax experiments (which shows the default too);
# a name with <...> stands for a family of presets.
PRESETS = {
    "horse2zebra": "horse2zebra at the paper's setting (256x256 crops, 9 blocks, batch 1,"
                   " 200 epochs)",
    "tfds:<pair>": "a tensorflow-datasets cycle_gan pair at the paper's setting, e.g."
                   " tfds:cycle_gan/monet2photo",
    "folder:<path>": "your images in <path>/trainA and <path>/trainB (and testA, testB), at"
                     " the paper's setting",
}

# Training images per domain A (the epoch length of the paper's schedule).
EPOCH_STEPS = {"horse2zebra": 1334}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = configs.cyclegan()
  if not arg:
    c.dataset = "bundled:digit_pair"
    c.image_size = c.load_size = 32
    c.flip = False             # digits are not mirror-symmetric
    c.g_width = c.d_width = 16
    c.num_blocks = 6
    c.batch_size = 4
    c.num_train_steps = 1500
    c.log_every = 50
    c.sample_every = 250
    c.checkpoint_every = 500
    return c
  if arg == "horse2zebra":
    c.dataset = "tfds:cycle_gan/horse2zebra"
  elif arg.startswith("tfds:") or arg.startswith("folder:"):
    c.dataset = arg
  else:
    raise ValueError(f"experiments/cyclegan.py has no preset {arg!r}; presets: horse2zebra,"
                     " tfds:cycle_gan/<pair>, folder:<path>")
  pair = c.dataset.rpartition("/")[2]
  c.num_train_steps = 200 * EPOCH_STEPS.get(pair, 1000)
  return c
