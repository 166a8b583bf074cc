"""Tests of ssljax.models: shapes, torchvision parameter counts, BatchNorm modes, sync-BN."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from jax.sharding import NamedSharding, PartitionSpec as P

from ssljax import parallel
from ssljax.models import (BasicBlock, Bottleneck, ConvNet, MLPHead, ResNet, ResNet18, ResNet34,
                           ResNet50, build_encoder)
from ssljax.testing import assert_distributed_equivalence


def _num_params(tree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def _abstract_init(model, shape):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))


def _randn(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _rbg_key(seed=0):
  # Real initialisers with a cheap-to-compile PRNG: threefry sampling (the
  # default, partitionable) takes 5-20 s of XLA:CPU compile time per network.
  return jax.random.key(seed, impl="rbg")


def _np_variables(model, x, seed=0):
  """Variables with the shapes of ``model.init`` but drawn by NumPy.

  Compiling threefry sampling for every parameter shape costs many seconds on
  XLA:CPU (``jax_threefry_partitionable``), while the behaviour tested here does
  not depend on the initialiser: He-normal kernels, BN scale 1 / bias 0 with a
  small perturbation, running stats (0, 1).
  """
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = jax.tree_util.keystr(path[-1:])
    if "kernel" in name:
      return jnp.asarray(rng.normal(size=leaf.shape) * np.sqrt(2.0 / np.prod(leaf.shape[:-1])),
                         leaf.dtype)
    if "scale" in name or "var" in name:
      return jnp.asarray(1.0 + 0.1 * rng.normal(size=leaf.shape) * ("scale" in name),
                         leaf.dtype)
    return jnp.asarray(0.1 * rng.normal(size=leaf.shape) * ("bias" in name), leaf.dtype)

  abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  return jax.tree_util.tree_map_with_path(draw, abstract)


# torchvision.models.resnet{18,34,50}() parameter counts minus the fc layer
# (512*1000+1000 = 513,000 for 18/34; 2048*1000+1000 = 2,049,000 for 50).
@pytest.mark.parametrize("ctor,expected,feat", [
    (ResNet18, 11_689_512 - 513_000, 512),
    (ResNet34, 21_797_672 - 513_000, 512),
    (ResNet50, 25_557_032 - 2_049_000, 2048),
])
def test_resnet_torchvision_param_counts_and_shapes(ctor, expected, feat):
  model = ctor()
  variables = _abstract_init(model, (2, 224, 224, 3))
  assert _num_params(variables["params"]) == expected
  out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, 224, 224, 3)), train=False),
                       variables)
  assert out.shape == (2, feat)
  assert model.num_features == feat
  # Running statistics are not parameters (torchvision counts only weights/biases).
  assert "batch_stats" in variables


def test_resnet_cifar_stem_params_and_shapes():
  # The CIFAR stem replaces the 7×7×3×64 conv by a 3×3×3×64 one: 64*3*(49-9) fewer weights.
  variables = _abstract_init(ResNet18(stem="cifar"), (2, 32, 32, 3))
  assert _num_params(variables["params"]) == 11_176_512 - 64 * 3 * 40
  out = jax.eval_shape(lambda v: ResNet50(stem="cifar").apply(v, jnp.zeros((2, 64, 64, 3)),
                                                              train=False),
                       _abstract_init(ResNet50(stem="cifar"), (2, 64, 64, 3)))
  assert out.shape == (2, 2048)


_APPLY_TRAIN = jax.jit(lambda model, v, x: model.apply(v, x, train=True, mutable=["batch_stats"]),
                       static_argnums=0)
_APPLY_EVAL = jax.jit(lambda model, v, x: model.apply(v, x, train=False), static_argnums=0)


@pytest.mark.parametrize("stem,size", [("imagenet", 32), ("cifar", 16)])
def test_tiny_resnet_forward_shapes_and_finite(stem, size):
  model = ResNet18(width=4, stem=stem)
  x = _randn((4, size, size, 3), 1)
  variables = _np_variables(model, x)
  feats, updates = _APPLY_TRAIN(model, variables, x)
  assert feats.shape == (4, 32)
  assert np.all(np.isfinite(feats))
  assert jax.tree.structure(updates["batch_stats"]) == jax.tree.structure(variables["batch_stats"])


def test_resnet_stem_padding_changes_spatial_size():
  # solo-learn's CIFAR stem (padding 2) gives 34×34 maps from 32×32 inputs, the default 32×32.
  def stem_shape(pad):
    model = ResNet(stage_sizes=(1,), block_cls=BasicBlock, width=4, stem="cifar",
                   stem_padding=pad)
    x = jnp.zeros((1, 32, 32, 3))
    _, state = jax.eval_shape(lambda: model.apply(_np_variables(model, x), x, train=False,
                                                  capture_intermediates=True,
                                                  mutable=["intermediates"]))
    return state["intermediates"]["conv1"]["__call__"][0].shape
  assert stem_shape(None) == (1, 32, 32, 4)
  assert stem_shape(2) == (1, 34, 34, 4)


def test_convnet_shapes_and_structure():
  model = ConvNet()
  for shape in [(4, 28, 28, 1), (4, 32, 32, 3)]:
    x = _randn(shape, 0)
    variables = _np_variables(model, x)
    feats, _ = _APPLY_TRAIN(model, variables, x)
    assert feats.shape == (4, 128)
    assert np.all(np.isfinite(feats))
  # No max-pool anywhere (slow backward on XLA:CPU): only conv + BN parameters.
  assert sorted(variables["params"]) == ["bn0", "bn1", "bn2", "conv0", "conv1", "conv2"]
  assert variables["params"]["conv1"]["kernel"].shape == (3, 3, 32, 64)
  # 28 -> 14 -> 7 -> 4 with stride 2 and padding 1.
  x = jnp.zeros((1, 28, 28, 1))
  _, state = jax.eval_shape(lambda: model.apply(_np_variables(model, x), x, train=False,
                                                capture_intermediates=True,
                                                mutable=["intermediates"]))
  assert [state["intermediates"][f"conv{i}"]["__call__"][0].shape[1] for i in range(3)] == [14, 7, 4]
  x = jnp.zeros((2, 28, 28, 1))
  small = ConvNet(widths=(8, 16), strides=(1, 2))
  out = jax.eval_shape(lambda: small.apply(_np_variables(small, x), x, train=False))
  assert out.shape == (2, 16)
  with pytest.raises(ValueError, match="same length"):
    ConvNet(widths=(8, 16), strides=(2,)).init(jax.random.key(0), x, train=False)


def test_zero_init_residual():
  x = jnp.zeros((1, 8, 8, 3))
  model = ResNet(stage_sizes=(1, 1), block_cls=BasicBlock, width=4, stem="cifar",
                 zero_init_residual=True)
  params = jax.jit(model.init, static_argnames="train")(_rbg_key(), x, train=False)["params"]
  for name in ("layer1_block0", "layer2_block0"):
    np.testing.assert_array_equal(params[name]["bn2"]["scale"], 0.0)
    np.testing.assert_array_equal(params[name]["bn1"]["scale"], 1.0)
  np.testing.assert_array_equal(params["layer2_block0"]["downsample_bn"]["scale"], 1.0)
  # He-normal fan-out conv init (torchvision): std = sqrt(2 / (3*3*out)).
  k = np.asarray(params["layer2_block0"]["conv2"]["kernel"])
  assert 0.5 < k.std() / np.sqrt(2.0 / (9 * 8)) < 1.5
  model = ResNet(stage_sizes=(1,), block_cls=Bottleneck, width=4, stem="cifar",
                 zero_init_residual=True)
  params = jax.jit(model.init, static_argnames="train")(_rbg_key(), x, train=False)["params"]
  np.testing.assert_array_equal(params["layer1_block0"]["bn3"]["scale"], 0.0)
  np.testing.assert_array_equal(params["layer1_block0"]["bn2"]["scale"], 1.0)
  model = ResNet(stage_sizes=(1,), block_cls=BasicBlock, width=4, stem="cifar")
  params = jax.jit(model.init, static_argnames="train")(_rbg_key(), x, train=False)["params"]
  np.testing.assert_array_equal(params["layer1_block0"]["bn2"]["scale"], 1.0)


def _small_resnet(axis_name=None):
  # Two stages (identity and projection shortcuts): enough for BN behaviour, cheap to compile.
  return ResNet(stage_sizes=(1, 1), block_cls=BasicBlock, width=4, stem="cifar",
                bn_axis_name=axis_name)


def test_train_and_eval_batchnorm_behaviour():
  model = _small_resnet()
  x = _randn((6, 8, 8, 3), 0) * 3.0 + 1.0
  variables = _np_variables(model, x)
  variables["batch_stats"] = jax.tree.map(jnp.zeros_like, variables["batch_stats"])
  variables["batch_stats"] = jax.tree_util.tree_map_with_path(
      lambda p, a: a + 1.0 if "var" in jax.tree_util.keystr(p) else a, variables["batch_stats"])
  # Eval mode uses the running averages: each example is processed independently.
  full = _APPLY_EVAL(model, variables, x)
  np.testing.assert_allclose(_APPLY_EVAL(model, variables, x[:2]), full[:2], rtol=1e-5, atol=1e-6)
  # Train mode uses batch statistics: outputs depend on the rest of the batch,
  # and the running averages move.
  tr_full, upd = _APPLY_TRAIN(model, variables, x)
  tr_part, _ = _APPLY_TRAIN(model, variables, x[:2])
  assert not np.allclose(tr_full[:2], tr_part, atol=1e-4)
  assert not np.allclose(tr_full, full, atol=1e-4)
  m1 = upd["batch_stats"]["bn1"]["mean"]
  assert np.all(np.abs(m1) > 0)


def test_mlp_head_batchnorm_update_matches_formula():
  head = MLPHead((5,), 3, bn_momentum=0.9)
  x = _randn((16, 4), 0) + 2.0
  variables = _np_variables(head, x)
  variables["batch_stats"]["bn0"] = {"mean": jnp.zeros(5), "var": jnp.ones(5)}
  out, upd = _APPLY_TRAIN(head, variables, x)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
  h = np.asarray(x, np.float64) @ p["linear0"]["kernel"] + p["linear0"]["bias"]
  mu, var = h.mean(0), h.var(0)
  np.testing.assert_allclose(upd["batch_stats"]["bn0"]["mean"], 0.1 * mu, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(upd["batch_stats"]["bn0"]["var"], 0.9 + 0.1 * var, rtol=1e-5,
                             atol=1e-6)
  hn = (h - mu) / np.sqrt(var + 1e-5) * p["bn0"]["scale"] + p["bn0"]["bias"]
  expected = np.maximum(hn, 0) @ p["linear1"]["kernel"] + p["linear1"]["bias"]
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs,names,out_bias", [
    (dict(hidden_dims=(32,), output_dim=8, last_bias=False),  # BYOL / SSL-HSIC
     {"linear0", "bn0", "linear1"}, False),
    (dict(hidden_dims=(16, 16), output_dim=8, use_bn=False, last_bias=False),  # CorInfoMax CIFAR
     {"linear0", "linear1", "linear2"}, False),
    (dict(hidden_dims=(16, 16), output_dim=8),  # VICReg
     {"linear0", "bn0", "linear1", "bn1", "linear2"}, True),
    (dict(hidden_dims=(), output_dim=8), {"linear0"}, True),
])
def test_mlp_head_structure(kwargs, names, out_bias):
  head = MLPHead(**kwargs)
  x = jnp.ones((4, 12))
  variables = jax.eval_shape(lambda: head.init(jax.random.key(0), x, train=False))
  assert set(variables["params"]) == names
  last = variables["params"][f"linear{len(kwargs['hidden_dims'])}"]
  assert ("bias" in last) == out_bias
  out, _ = jax.eval_shape(lambda v: head.apply(v, x, train=True, mutable=["batch_stats"]),
                          variables)
  assert out.shape == (4, kwargs["output_dim"])


def test_mlp_head_barlow_last_bn_without_affine():
  head = MLPHead((16,), 8, hidden_bias=False, last_bias=False, last_bn=True)
  x = _randn((32, 12), 0)
  variables = jax.jit(head.init, static_argnames="train")(_rbg_key(), x, train=False)
  assert "bias" not in variables["params"]["linear0"]
  assert "bn_out" not in variables["params"]  # affine-free
  assert "bn_out" in variables["batch_stats"]
  out, _ = _APPLY_TRAIN(head, variables, x)
  # Affine-free BN output: zero mean and unit variance per feature.
  np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
  np.testing.assert_allclose(out.var(0), 1.0, rtol=1e-3)
  affine = MLPHead((16,), 8, last_bn=True, last_bn_affine=True)
  assert "bn_out" in jax.eval_shape(lambda: affine.init(jax.random.key(1), x, train=False))["params"]


def test_build_encoder_registry():
  assert isinstance(build_encoder("resnet18"), ResNet)
  assert build_encoder("ResNet50", stem="cifar").stem == "cifar"
  assert isinstance(build_encoder("convnet", widths=(8,)), ConvNet)
  with pytest.raises(ValueError, match=r"valid names are \['convnet', 'resnet18'"):
    build_encoder("vit_b16")


def test_input_checks():
  with pytest.raises(ValueError, match="stem"):
    ResNet18(stem="tiny").init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), train=False)
  with pytest.raises(ValueError, match="NHWC"):
    ConvNet().init(jax.random.key(0), jnp.zeros((8, 8, 3)), train=False)
  with pytest.raises(ValueError, match=r"\[N, D\]"):
    MLPHead((4,), 2).init(jax.random.key(0), jnp.zeros((2, 3, 3)), train=False)


# ---- sync-BN: jit on batch-sharded inputs (and shard_map with bn_axis_name) == one device ----

def test_sync_batchnorm_under_jit_with_sharded_batch():
  model = _small_resnet()
  x = _randn((16, 8, 8, 3), 0) * 2.0 + 0.5
  variables = _np_variables(model, x)
  fwd = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))
  dev0 = jax.devices()[0]
  ref_out, ref_upd = fwd(jax.device_put(variables, dev0), jax.device_put(x, dev0))

  mesh = parallel.make_data_mesh()
  assert mesh.size == 8
  xs = jax.device_put(x, NamedSharding(mesh, P("data")))
  vs = jax.device_put(variables, NamedSharding(mesh, P()))
  out, upd = fwd(vs, xs)
  assert len(out.sharding.device_set) == 8
  np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               upd, ref_upd)

  # Per-device statistics would differ: this is what the test guards against.
  local, _ = fwd(jax.device_put(variables, dev0), jax.device_put(x[:2], dev0))
  assert not np.allclose(local, ref_out[:2], atol=1e-4)

  # Inside shard_map with bn_axis_name='data': the same global statistics.
  sm_model = _small_resnet("data")
  sm = jax.jit(jax.shard_map(
      lambda v, x: sm_model.apply(v, x, train=True, mutable=["batch_stats"]),
      mesh=mesh, in_specs=(P(), P("data")), out_specs=(P("data"), P())))
  out, upd = sm(vs, xs)
  np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               upd, ref_upd)


def test_sync_batchnorm_gradients_distributed_equivalence():
  """Value and gradient of a BN network's loss agree on 1 device, jit-sharded and shard_map."""
  x = _randn((16, 8, 8, 1), 0) + 1.0

  def make(axis_name):
    return ConvNet(widths=(4, 8), bn_axis_name=axis_name), MLPHead((8,), 4, bn_axis_name=axis_name)

  enc, head = make(None)
  enc_vars = _np_variables(enc, x, seed=1)
  head_vars = _np_variables(head, jnp.zeros((2, 8)), seed=2)
  # The harness takes arrays: pass the parameters as one flat vector.
  flat, unravel = ravel_pytree({"enc": enc_vars["params"], "head": head_vars["params"]})

  def loss(flat_params, x, axis_name=None):
    params = unravel(flat_params)
    enc, head = make(axis_name)
    h, _ = enc.apply({"params": params["enc"], "batch_stats": enc_vars["batch_stats"]}, x,
                     train=True, mutable=["batch_stats"])
    z, _ = head.apply({"params": params["head"], "batch_stats": head_vars["batch_stats"]}, h,
                      train=True, mutable=["batch_stats"])
    return jnp.sum(parallel.batch_mean(jnp.sin(z) ** 2, axis_name))

  assert_distributed_equivalence(loss, (flat, x), batch_axes=(None, 0), argnums=0,
                                 rtol=1e-4, atol=1e-6)


def test_dtype_is_the_computation_dtype():
  model = ResNet18(width=4, stem="cifar", dtype=jnp.bfloat16)
  x = jnp.zeros((2, 8, 8, 3))
  variables = _abstract_init(model, x.shape)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables["params"]))
  out = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  assert out.dtype == jnp.bfloat16
