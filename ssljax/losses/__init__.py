"""Loss kernels: pure functions of arrays, for notebooks and the train-step factory.

Every kernel follows one contract (``docs/kernels.md``): ``views`` first
(``[V, N, D]`` or a sequence of V ``[N, D]`` arrays), keyword-only
hyper-parameters with the official defaults, ``key=`` where it samples, and
``(loss, aux)`` returned — ``(loss, aux, new_state)`` with ``state=`` for
running statistics (CorInfoMax). It works on the *global* batch with
``axis_name=None`` (one device, or inside the jitted train step, where XLA
inserts the collectives) and on per-device shards with ``axis_name='data'``
inside ``jax.shard_map``. A layout it cannot read raises a ValueError.

Example:
  >>> import jax, jax.numpy as jnp, ssljax.losses as L
  >>> views = jax.random.normal(jax.random.key(0), (2, 256, 64))   # [V=2, N, D]
  >>> loss, aux = L.vicreg_loss(views)
  >>> loss, aux = L.nt_xent_loss(views, temperature=0.2)
  >>> loss, aux, state = L.corinfomax_loss(views)
  >>> loss, aux = L.ssl_hsic_loss(views, key=jax.random.key(1))
  >>> sorted(aux)
  ['hsic_zy', 'hsic_zz', 'scale']
"""

from ssljax.losses.barlow_twins import (BarlowTwinsStats, barlow_twins_from_stats, barlow_twins_loss,
                                        barlow_twins_stats)
from ssljax.losses.byol import byol_loss, regression_loss
from ssljax.losses.corinfomax import (CorInfoMaxState, corinfomax_from_stats, corinfomax_init_state,
                                      corinfomax_loss, corinfomax_stats, psd_logdet)
from ssljax.losses.entropy import (ENTROPY_ESTIMATORS, coding_rate_beta, estimate_entropy,
                                   logdet_entropy, pairwise_mixture_entropy, vicreg_entropy_loss)
from ssljax.losses.hypersphere import alignment_loss, uniformity_loss
from ssljax.losses.hsic import (gaussian_kernel, gaussian_rff_features, hsic_biased, hsic_zy_exact,
                                hsic_zy_from_features, hsic_zy_rff, hsic_zz_exact,
                                hsic_zz_from_features, hsic_zz_rff, imq_kernel,
                                imq_rff_amplitude_grid, imq_rff_features, kernel_scale_objective,
                                label_weights, linear_kernel, pairwise_sq_dists, rff_features,
                                ssl_hsic_loss, ssl_hsic_rff_from_stats, ssl_hsic_rff_stats)
from ssljax.losses.moco import moco_init_state, moco_loss
from ssljax.losses.nnclr import nearest_neighbour, nnclr_init_state, nnclr_loss
from ssljax.losses.queue import QueueState, enqueue, init_queue
from ssljax.losses.koleo import koleo_loss
from ssljax.losses.mmcr import mmcr_loss, nuclear_norm_direction
from ssljax.losses.sigreg import epps_pulley_weights, sigreg_loss
from ssljax.losses.simclr import info_nce_bound, nt_xent_loss
from ssljax.losses.swav import SwAVState, sinkhorn, swav_init_state, swav_loss
from ssljax.losses.superinfo import (gaussian_kl, reparameterize, skl_superfluous_terms,
                                     superinfo_loss)
from ssljax.losses.vicreg import (VICRegStats, covariance_term, invariance_term, variance_term,
                                  vicreg_from_stats, vicreg_loss, vicreg_stats)
from ssljax.losses.wmse import whiten, wmse_loss

__all__ = [
    "BarlowTwinsStats", "barlow_twins_from_stats", "barlow_twins_loss", "barlow_twins_stats",
    "byol_loss", "regression_loss",
    "CorInfoMaxState", "corinfomax_from_stats", "corinfomax_init_state", "corinfomax_loss",
    "corinfomax_stats", "psd_logdet",
    "ENTROPY_ESTIMATORS", "coding_rate_beta", "estimate_entropy", "logdet_entropy",
    "pairwise_mixture_entropy", "vicreg_entropy_loss",
    "gaussian_kernel", "gaussian_rff_features", "hsic_biased", "hsic_zy_exact",
    "hsic_zy_from_features", "hsic_zy_rff", "hsic_zz_exact", "hsic_zz_from_features", "hsic_zz_rff",
    "imq_kernel", "imq_rff_amplitude_grid", "imq_rff_features", "kernel_scale_objective",
    "label_weights", "linear_kernel", "pairwise_sq_dists", "rff_features", "ssl_hsic_loss",
    "ssl_hsic_rff_from_stats", "ssl_hsic_rff_stats",
    "info_nce_bound", "nt_xent_loss",
    "moco_init_state", "moco_loss",
    "nearest_neighbour", "nnclr_init_state", "nnclr_loss",
    "QueueState", "enqueue", "init_queue",
    "gaussian_kl", "reparameterize", "skl_superfluous_terms", "superinfo_loss",
    "SwAVState", "sinkhorn", "swav_init_state", "swav_loss",
    "VICRegStats", "covariance_term", "invariance_term", "variance_term", "vicreg_from_stats",
    "vicreg_loss", "vicreg_stats",
    "alignment_loss", "uniformity_loss",
    "koleo_loss",
    "mmcr_loss", "nuclear_norm_direction",
    "epps_pulley_weights", "sigreg_loss",
    "whiten", "wmse_loss",
]
