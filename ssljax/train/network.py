"""The SSL network: encoder → projector → (predictor), plus optional heads.

One Flax module serves every method; the config decides which heads exist.
Outputs are a dict so loss terms pick what they need by name:

* ``embedding``  h = f(x)            [N, F]  (what evaluation uses)
* ``projection`` z = g(h)            [N, D]
* ``prediction`` p = q(z)            [N, D]  (BYOL, SSL-HSIC; if a predictor is set)
* ``logvar``     log σ²(h)           [N, D]  (SuperInfo's Gaussian posterior; optional)
* ``cluster_logits`` c(h)            [N, K]  (PID-SSL's pseudo-label head; optional)

Mixed precision (``config.model.dtype``, ``docs/mixed_precision.md``): the
encoder and the MLP heads compute in ``dtype`` (activations and matmuls, e.g.
bfloat16) with float32 parameters and float32 BatchNorm statistics; the small
linear heads (``logvar``, ``cluster_logits``) and the probe compute in float32
(a log-variance or a logit in bf16 is off by ~4e-3 relative before the
softmax), and the ``embedding`` is returned in float32 (evaluation, probe, PID
monitor). Projections and predictions come out in ``dtype``; the loss kernels
promote them to float32 (`ssljax.losses.views.upcast`).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from ssljax import config as config_lib
from ssljax import models


class SSLNetwork(nn.Module):
  """Encoder plus projection/prediction heads (shapes in the module docstring)."""
  encoder: nn.Module
  projector_hidden: Sequence[int]
  projector_dim: int
  projector_bn: bool = True
  projector_last_bias: bool = True
  predictor_hidden: Sequence[int] = ()
  predictor_dim: int = 0
  variance_head: bool = False
  cluster_classes: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool, project_only: bool = False) -> dict[str, Any]:
    h = self.encoder(x, train=train)
    z = models.MLPHead(tuple(self.projector_hidden), self.projector_dim, use_bn=self.projector_bn,
                       last_bias=self.projector_last_bias, dtype=self.dtype,
                       name="projector")(h, train=train)
    # The embedding leaves in float32: evaluation, the probe, the PID monitor and
    # PID-SSL's clustering read it, and their statistics need float32.
    h32 = h.astype(jnp.float32)
    out = {"embedding": h32, "projection": z}
    if project_only:
      return out
    if self.predictor_dim:
      # BYOL / SSL-HSIC predictors have no output bias, like their projectors.
      out["prediction"] = models.MLPHead(tuple(self.predictor_hidden), self.predictor_dim,
                                         use_bn=self.projector_bn,
                                         last_bias=self.projector_last_bias,
                                         dtype=self.dtype, name="predictor")(z, train=train)
    if self.variance_head:
      out["logvar"] = nn.Dense(self.projector_dim, dtype=jnp.float32, name="logvar_head")(h32)
    if self.cluster_classes:
      out["cluster_logits"] = nn.Dense(self.cluster_classes, dtype=jnp.float32,
                                       name="cluster_head")(h32)
    return out


class LinearProbe(nn.Module):
  """The online linear classifier trained on stop-gradient embeddings."""
  num_classes: int

  @nn.compact
  def __call__(self, h):
    return nn.Dense(self.num_classes, dtype=jnp.float32, name="linear")(h.astype(jnp.float32))


def num_clusters(config: ml_collections.ConfigDict, num_classes: int) -> int:
  """Size of the classification head: PID-SSL's clusters, or the classes of the
  ``supervised`` term (0 when neither is on)."""
  if "supervised" in config.loss.terms:
    return num_classes
  if not config.pid.enabled:
    return 0
  return config.pid.num_clusters if config.pid.num_clusters > 0 else num_classes


# config.model.dtype -> the compute dtype of the encoder and heads.
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(model_cfg: ml_collections.ConfigDict):
  """``config.model.dtype`` as a JAX dtype (`DTYPES`); an unknown name is a ConfigError."""
  return config_lib.choose(DTYPES, model_cfg.get("dtype", "float32"), "config.model.dtype")


def build_network(model_cfg: ml_collections.ConfigDict, *, cluster_classes: int = 0) -> SSLNetwork:
  """Builds `SSLNetwork` from ``config.model`` (``dtype`` goes to the encoder and the heads)."""
  dtype = compute_dtype(model_cfg)
  encoder = models.build_encoder(model_cfg.encoder, **{"dtype": dtype,
                                                        **dict(model_cfg.encoder_kwargs)})
  return SSLNetwork(
      encoder=encoder,
      projector_hidden=tuple(model_cfg.projector_hidden),
      projector_dim=model_cfg.projector_dim,
      projector_bn=model_cfg.projector_bn,
      projector_last_bias=model_cfg.projector_last_bias,
      predictor_hidden=tuple(model_cfg.predictor_hidden),
      predictor_dim=model_cfg.predictor_dim,
      variance_head=model_cfg.variance_head,
      cluster_classes=cluster_classes,
      dtype=dtype,
  )
