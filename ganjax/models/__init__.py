"""The networks, as plain Flax modules.

Every network that has convolutions takes them as module factories, `conv`
and `conv_transpose`, which default to `flax.linen.Conv` and
`flax.linen.ConvTranspose` (as Flax's own ResNet example takes `conv`). Read
on its own a model file is the paper's network; ganjax/backend.py may hand
the algorithms other factories with the same parameters (faster forms on the
CPU), which they pass on through `Layers`.
"""

import dataclasses
from collections.abc import Callable

import flax.linen as nn


@dataclasses.dataclass(frozen=True)
class Layers:
  """The layer factories an algorithm hands to the networks it builds."""
  conv: Callable[..., nn.Module] = nn.Conv
  conv_transpose: Callable[..., nn.Module] = nn.ConvTranspose


STOCK = Layers()
