"""The ImageNet-size config strings of `tests/test_configs.py` (ResNet-50 / ViT at 224 px).

Same checks; a separate file only so that pytest-xdist (``--dist loadfile``)
traces these on the other worker.
"""

import pytest

from tests import test_configs as common

IMAGENET = [s for s in common.STRINGS if common.is_imagenet(s)]


@pytest.mark.parametrize("config_string", IMAGENET)
def test_config_builds_a_train_step(config_string):
  common.check_config_builds_a_train_step(config_string, trace=not common.is_variant(config_string))


@pytest.mark.slow
@pytest.mark.parametrize("config_string", [s for s in IMAGENET if common.is_variant(s)])
def test_variant_traces_a_train_step(config_string):
  common.check_config_builds_a_train_step(config_string, trace=True)
