"""ganjax: adversarial generative models in JAX and Flax.

Importing ganjax changes nothing in the process: no environment variables,
no JAX configuration, no allocator settings. The command-line entry points
tune the host for runs on the CPU (ganjax/backend.py, `tune_host`).
"""
