"""Pieces of networks that several models share."""

import jax.numpy as jnp


def minibatch_stddev(x, group_size: int, eps: float = 1e-8):
  """Appends the minibatch standard deviation as one more feature (Karras et al. 2018).

  The batch is split into groups of `group_size` consecutive examples; within
  each group the standard deviation of every feature at every position is
  averaged into one number, which is appended to each of the group's examples
  as a constant extra channel. A discriminator sees how varied its batch is
  and can penalise a generator whose samples are all alike (a form of
  minibatch discrimination). Groups of consecutive examples are the same on
  one device or split over many, as long as each device's batch divides into
  whole groups.
  x: [B, ..., C] -> [B, ..., C + 1].
  """
  batch = x.shape[0]
  group = min(group_size, batch)
  if batch % group:
    raise ValueError(f"minibatch stddev: a batch of {batch} does not split into groups"
                     f" of {group}")
  y = x.reshape((batch // group, group) + x.shape[1:]).astype(jnp.float32)
  std = jnp.sqrt(jnp.var(y, axis=1) + eps)              # [B/G, ..., C]
  stat = jnp.mean(std, axis=tuple(range(1, std.ndim)))  # [B/G]
  stat = jnp.repeat(stat, group)                        # example i -> group i // G
  extra = jnp.broadcast_to(stat.reshape((batch,) + (1,) * (x.ndim - 1)),
                           x.shape[:-1] + (1,)).astype(x.dtype)
  return jnp.concatenate([x, extra], axis=-1)
