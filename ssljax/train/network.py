"""The SSL network: encoder → projector → (predictor), plus optional heads.

One Flax module serves every method; the config decides which heads exist.
Outputs are a dict so loss terms pick what they need by name:

* ``embedding``  h = f(x)            [N, F]  (what evaluation uses)
* ``projection`` z = g(h)            [N, D]
* ``prediction`` p = q(z)            [N, D]  (BYOL, SSL-HSIC; if a predictor is set)
* ``logvar``     log σ²(h)           [N, D]  (SuperInfo's Gaussian posterior; optional)
* ``cluster_logits`` c(h)            [N, K]  (PID-SSL's pseudo-label head; optional)
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

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

  @nn.compact
  def __call__(self, x, train: bool, project_only: bool = False) -> dict[str, Any]:
    h = self.encoder(x, train=train)
    z = models.MLPHead(tuple(self.projector_hidden), self.projector_dim, use_bn=self.projector_bn,
                       last_bias=self.projector_last_bias, name="projector")(h, train=train)
    out = {"embedding": h, "projection": z}
    if project_only:
      return out
    if self.predictor_dim:
      # BYOL / SSL-HSIC predictors have no output bias, like their projectors.
      out["prediction"] = models.MLPHead(tuple(self.predictor_hidden), self.predictor_dim,
                                         use_bn=self.projector_bn,
                                         last_bias=self.projector_last_bias,
                                         name="predictor")(z, train=train)
    if self.variance_head:
      out["logvar"] = nn.Dense(self.projector_dim, name="logvar_head")(h)
    if self.cluster_classes:
      out["cluster_logits"] = nn.Dense(self.cluster_classes, name="cluster_head")(h)
    return out


class LinearProbe(nn.Module):
  """The online linear classifier trained on stop-gradient embeddings."""
  num_classes: int

  @nn.compact
  def __call__(self, h):
    return nn.Dense(self.num_classes, name="linear")(h)


def num_clusters(config: ml_collections.ConfigDict, num_classes: int) -> int:
  """Size of the classification head: PID-SSL's clusters, or the classes of the
  ``supervised`` term (0 when neither is on)."""
  if "supervised" in config.loss.terms:
    return num_classes
  if not config.pid.enabled:
    return 0
  return config.pid.num_clusters if config.pid.num_clusters > 0 else num_classes


def build_network(model_cfg: ml_collections.ConfigDict, *, cluster_classes: int = 0) -> SSLNetwork:
  """Builds `SSLNetwork` from ``config.model``."""
  encoder = models.build_encoder(model_cfg.encoder, **dict(model_cfg.encoder_kwargs))
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
  )
