"""MLP projector / predictor heads.

``MLPHead`` is ``[Linear → (BN) → ReLU] × len(hidden_dims) → Linear → (BN)``,
which covers the heads of the methods in ssljax:

* BYOL / SSL-HSIC projector and predictor (Haiku ``byol/utils/networks.py``
  ``MLP``; ``ssl_hsic/experiment.py``): ``MLPHead((4096,), 256, last_bias=False)``.
* CorInfoMax projectors ("h1-h2-D", last Linear without bias; BN only in the
  ImageNet-1K model, ``imagenet1k/model_base_resnet_bn.py::CovModel6``, not in
  ``cifars-tiny/model_base_resnet.py::CovModel``):
  ``MLPHead((h1, h2), D, use_bn=False, last_bias=False)`` for CIFAR / Tiny
  ImageNet, ``use_bn=True`` for ImageNet-1K.
* VICReg expander 8192-8192-8192: ``MLPHead((8192, 8192), 8192)``.
* Barlow Twins projector (hidden Linear layers without bias, a final affine-free
  BN before the cross-correlation): ``MLPHead((8192, 8192), 8192,
  hidden_bias=False, last_bias=False, last_bn=True)``.

Linear weights use Flax's default ``lecun_normal`` (truncated normal, std
1/√fan_in), the same as Haiku's default used by BYOL / SSL-HSIC; PyTorch's
``nn.Linear`` default (uniform, variance 1/(3·fan_in), uniform bias) is not
reproduced. Biases start at 0.

Example:
  >>> import jax, jax.numpy as jnp
  >>> head = MLPHead((64,), 16, last_bias=False)
  >>> variables = head.init(jax.random.key(0), jnp.zeros((2, 32)), train=False)
  >>> h = jnp.ones((4, 32))
  >>> z, updates = head.apply(variables, h, train=True, mutable=['batch_stats'])
  >>> z.shape
  (4, 16)
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLPHead(nn.Module):
  """Multi-layer perceptron head: ``x [N, D_in] -> [N, output_dim]``.

  Attributes:
    hidden_dims: widths of the hidden layers (may be empty: a single Linear).
    output_dim: width of the output layer.
    use_bn: BatchNorm after each hidden Linear (before the ReLU).
    hidden_bias: bias in the hidden Linear layers (Barlow Twins: False).
    last_bias: bias in the output Linear (BYOL / SSL-HSIC / CorInfoMax: False).
    last_bn: BatchNorm on the output (Barlow Twins style).
    last_bn_affine: learnable scale and offset in the output BN (Barlow
      Twins: False; only used when ``last_bn``).
    dtype: computation dtype (parameters and BatchNorm statistics stay float32).
    bn_momentum: running-average decay of BatchNorm (Haiku ``decay_rate``).
    bn_eps: BatchNorm epsilon.
    bn_axis_name: mapped axis for BN statistics inside ``shard_map``
      (``None`` under ``jax.jit``, where statistics are global already).
  """
  hidden_dims: Sequence[int]
  output_dim: int
  use_bn: bool = True
  hidden_bias: bool = True
  last_bias: bool = True
  last_bn: bool = False
  last_bn_affine: bool = False
  dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  bn_eps: float = 1e-5
  bn_axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, train: bool):
    """Apply the head.

    Args:
      x: inputs ``[N, D_in]``.
      train: batch statistics in BN (pass ``mutable=['batch_stats']``) or
        running averages. Ignored when the head has no BN.
    Returns:
      outputs ``[N, output_dim]``.
    """
    if x.ndim != 2:
      raise ValueError(f"MLPHead expects [N, D] inputs, got shape {x.shape}; flatten or "
                       "pool the features first.")
    norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                             momentum=self.bn_momentum, epsilon=self.bn_eps,
                             dtype=self.dtype, axis_name=self.bn_axis_name)
    x = x.astype(self.dtype)
    for i, h in enumerate(self.hidden_dims):
      x = nn.Dense(h, use_bias=self.hidden_bias, dtype=self.dtype, name=f"linear{i}")(x)
      if self.use_bn:
        x = norm(name=f"bn{i}")(x)
      x = nn.relu(x)
    x = nn.Dense(self.output_dim, use_bias=self.last_bias, dtype=self.dtype,
                 name=f"linear{len(self.hidden_dims)}")(x)
    if self.last_bn:
      x = norm(use_scale=self.last_bn_affine, use_bias=self.last_bn_affine, name="bn_out")(x)
    return x
