"""ganjax: adversarial generative models in JAX and Flax."""

from ganjax import xla_defaults as _xla_defaults

_xla_defaults.apply()  # before JAX starts its backends; see ganjax/xla_defaults.py

from ganjax import host_heap as _host_heap

_host_heap.apply()  # also before JAX starts; see ganjax/host_heap.py
