"""The ImageNet-size config strings of `tests/test_configs.py` (ResNet-50 / ViT at 224 px).

Same checks; a separate file only so that pytest-xdist (``--dist loadfile``)
traces these on the other worker. The default run builds (validates) every
string and traces the ImageNet-1k recipes, one per method; the ImageNet-100
recipes (the same ResNet-50 programs with the solo-learn hyper-parameters) and
the variants are traced in the slow run: tracing one ResNet-50 step costs
5-20 s on an idle core, and these are the 10-minute budget's largest item.
"""

import pytest

from tests import test_configs as common

IMAGENET = [s for s in common.STRINGS if common.is_imagenet(s)]


def traced_by_default(config_string: str) -> bool:
  return config_string.startswith("configs/imagenet/") and not common.is_variant(config_string)


@pytest.mark.parametrize("config_string", IMAGENET)
def test_config_builds_a_train_step(config_string):
  common.check_config_builds_a_train_step(config_string, trace=traced_by_default(config_string))


@pytest.mark.slow
@pytest.mark.parametrize("config_string", [s for s in IMAGENET if not traced_by_default(s)])
def test_variant_and_imagenet100_recipes_trace_a_train_step(config_string):
  common.check_config_builds_a_train_step(config_string, trace=True)
