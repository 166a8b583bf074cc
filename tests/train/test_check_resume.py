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


def test_loss_hparams_record_compares_every_resolved_hyper_parameter(tmp_path):
  from ssljax.train import objectives
  terms = {"vicreg": objectives.split_hparams("vicreg", {"sim_coeff": 10.0})}
  saved = workdir_lib.loss_hparams_json(terms)
  assert json.loads(saved) == {"vicreg": {"weight": 1.0, "sim_coeff": 10.0, "std_coeff": 25.0,
                                          "cov_coeff": 1.0, "eps": 1e-4}}
  assert workdir_lib.check_loss_hparams(str(tmp_path), saved) is False  # no record: legacy run
  (tmp_path / workdir_lib.LOSS_HPARAMS_FILE).write_text(saved)
  assert workdir_lib.check_loss_hparams(str(tmp_path), saved) is True
  moved = {"vicreg": (1.0, {**terms["vicreg"][1], "eps": 1e-3})}
  with pytest.raises(errors.WorkdirError, match=r"vicreg\.eps: 0\.0001 -> 0\.001"):
    workdir_lib.check_loss_hparams(str(tmp_path), workdir_lib.loss_hparams_json(moved))
  other = {"simclr": objectives.split_hparams("simclr", {})}
  with pytest.raises(errors.WorkdirError, match=r"simclr\.temperature: '<unset>' -> 0\.1"):
    workdir_lib.check_loss_hparams(str(tmp_path), workdir_lib.loss_hparams_json(other))
  (tmp_path / workdir_lib.LOSS_HPARAMS_FILE).write_text("{not json")
  with pytest.raises(errors.WorkdirError, match="damaged"):
    workdir_lib.check_loss_hparams(str(tmp_path), saved)
