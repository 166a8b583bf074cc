"""`workdir.check_resume`: which config differences may resume a run."""

import json

import pytest

from ssljax import config as config_lib
from ssljax import errors
from ssljax.train import workdir as workdir_lib


def _saved(tmp_path, config_dict):
  (tmp_path / workdir_lib.CONFIG_FILE).write_text(json.dumps(config_dict))


def _base():
  return json.loads(config_lib.base_config().to_json_best_effort())


def test_a_field_added_since_at_its_default_resumes(tmp_path):
  old = _base()
  del old["data"]["host_resize"]  # a run saved before the field existed
  _saved(tmp_path, old)
  lines = workdir_lib.check_resume(str(tmp_path), json.dumps(_base()))
  assert lines == ["data.host_resize: '<unset>' -> 'opencv'"]


def test_a_field_added_since_at_another_value_or_a_changed_field_is_refused(tmp_path):
  old = _base()
  del old["data"]["host_resize"]
  _saved(tmp_path, old)
  new = _base()
  new["data"]["host_resize"] = "pillow"
  with pytest.raises(errors.WorkdirError, match="data.host_resize"):
    workdir_lib.check_resume(str(tmp_path), json.dumps(new))
  _saved(tmp_path, _base())
  new = _base()
  new["optim"]["base_lr"] = 123.0
  with pytest.raises(errors.WorkdirError, match="optim.base_lr"):
    workdir_lib.check_resume(str(tmp_path), json.dumps(new))
