"""ganjax: adversarial generative models in JAX and Flax."""

from ganjax import xla_defaults as _xla_defaults

_xla_defaults.apply()  # before JAX starts its backends; see ganjax/xla_defaults.py
