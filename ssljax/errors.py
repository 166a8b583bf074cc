"""The project's error types: what a user did wrong, said in one line with the fix.

The CLI (`ssljax.main`) prints these as ``error: <message>`` on stderr and
exits with status 2, without a traceback (``--debug`` shows it). Each is a
subclass of the built-in error a caller would catch anyway.
"""

from __future__ import annotations


class SSLJaxError(Exception):
  """Base class: a problem with the user's input or environment, not a bug."""


class ConfigError(SSLJaxError, ValueError):
  """A config field has a wrong value or type; the message names the field."""


class DataError(SSLJaxError, OSError):
  """A dataset file is missing, damaged or unreadable; the message names the file."""


class WorkdirError(SSLJaxError, OSError):
  """The workdir cannot be used: locked by another run, not a directory, or its
  saved run does not match the new config."""


class CheckpointError(SSLJaxError, OSError):
  """No intact checkpoint could be restored."""


class NonFiniteLossError(SSLJaxError, FloatingPointError):
  """The loss, a gradient or the updated state became NaN/Inf; training was stopped."""
