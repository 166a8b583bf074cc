"""The ImageNet-size config strings of `tests/test_configs.py` (ResNet-50 / ViT at 224 px).

Same check; a separate file only so that pytest-xdist (``--dist loadfile``)
traces these on the other worker.
"""

import pytest

from tests import test_configs as common


@pytest.mark.parametrize("config_string", common.config_params(
    [s for s in common.STRINGS if common.is_imagenet(s)]))
def test_config_builds_a_train_step(config_string):
  common.check_config_builds_a_train_step(config_string)
