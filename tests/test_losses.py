"""Loss functions against their closed forms, computed in float64 NumPy."""

import jax
import numpy as np
import pytest

from ganjax import losses

LOGITS = np.array([-30.0, -4.0, -0.5, 0.0, 0.3, 2.0, 25.0])


def np_sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def np_bce(logits, target):
  p = np_sigmoid(logits)
  eps = 1e-300
  return np.mean(-target * np.log(np.maximum(p, eps)) - (1 - target) * np.log(np.maximum(1 - p, eps)))


@pytest.mark.parametrize("target", [0.0, 0.9, 1.0])
def test_sigmoid_cross_entropy_is_binary_cross_entropy(target):
  moderate = LOGITS[1:-1]  # where float64 log(sigmoid) is itself accurate
  np.testing.assert_allclose(losses.sigmoid_cross_entropy(moderate, target),
                             np_bce(moderate, target), rtol=1e-6)


def test_losses_stay_finite_and_exact_for_large_logits():
  # -log(sigmoid(-30)) = 30 + log(1 + e^-30) ~ 30; naive float32 would give inf.
  np.testing.assert_allclose(losses.sigmoid_cross_entropy(np.array([-30.0]), 1.0), 30.0, rtol=1e-6)
  np.testing.assert_allclose(losses.generator_loss_non_saturating(np.array([-30.0])), 30.0, rtol=1e-6)
  assert np.isfinite(float(losses.discriminator_loss(LOGITS, LOGITS)))


def test_discriminator_loss_with_one_sided_label_smoothing():
  real, fake = LOGITS, LOGITS[::-1] * 0.5
  for real_label in (1.0, 0.9):
    p_real, p_fake = np_sigmoid(real[1:-1]), np_sigmoid(fake[1:-1])
    expected = (np.mean(-real_label * np.log(p_real) - (1 - real_label) * np.log(1 - p_real))
                + np.mean(-np.log(1 - p_fake)))  # fakes are never smoothed: target 0
    got = losses.discriminator_loss(real[1:-1], fake[1:-1], real_label)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_generator_losses_closed_forms():
  p = np_sigmoid(LOGITS[1:-1])
  np.testing.assert_allclose(losses.generator_loss_minimax(LOGITS[1:-1]),
                             np.mean(np.log(1 - p)), rtol=1e-6)
  np.testing.assert_allclose(losses.generator_loss_non_saturating(LOGITS[1:-1]),
                             np.mean(-np.log(p)), rtol=1e-6)


def test_non_saturating_keeps_gradient_where_minimax_vanishes():
  # d/dl of log(1 - sigmoid(l)) is -sigmoid(l); of -log(sigmoid(l)) it is -(1 - sigmoid(l)).
  l = np.array([-8.0])  # the discriminator confidently rejects the fake
  g_minimax = jax.grad(lambda x: losses.generator_loss_minimax(x).sum())(l)
  g_ns = jax.grad(lambda x: losses.generator_loss_non_saturating(x).sum())(l)
  np.testing.assert_allclose(g_minimax, -np_sigmoid(l), rtol=1e-5)
  np.testing.assert_allclose(g_ns, -(1 - np_sigmoid(l)), rtol=1e-5)
  assert abs(g_ns[0]) > 1000 * abs(g_minimax[0])
