"""Collective traffic of a compiled program, read from its optimised HLO text.

`collective_bytes(compiled.as_text())` sums, per collective kind, the bytes of
the *result* shapes of every collective instruction of the SPMD-partitioned
(per-device) program. Parsing rule, for each HLO instruction line

    %name = <result shape> <op>(<operands>), ...

with ``<op>`` one of ``all-reduce``, ``all-gather``, ``reduce-scatter``,
``all-to-all``, ``collective-permute`` (or the ``-done`` half of their async
``-start``/``-done`` pairs; the ``-start`` half is skipped so nothing is
counted twice), every ``dtype[d0,d1,...]`` in ``<result shape>`` (one, or a
tuple for a combined collective) contributes ``prod(d) * itemsize(dtype)``.
Ops inside a called computation (a ``while`` body) are counted once per
appearance, not per trip; the train step has no loops around collectives.

What the result bytes mean per kind (n devices in the group, R result bytes):
all-reduce R is the reduced buffer (a ring moves 2(n-1)/n·R per device);
all-gather R is the *gathered* buffer ((n-1)/n·R received per device);
reduce-scatter R is one shard ((n-1)·R sent per device); all-to-all R is the
buffer ((n-1)/n·R); collective-permute R is what it sends. `wire_bytes`
applies these factors (the communication term of ``benchmarks/scale.py``).

>>> text = '''
...   %all-reduce.3 = f32[256,256]{1,0} all-reduce(f32[256,256]{1,0} %p), to_apply=%add
...   %ag = (bf16[64,8]{1,0}, f32[4]{0}) all-gather(bf16[8,8]{1,0} %a, f32[1]{0} %b), dimensions={0}
...   %ags = (f32[2]{0}, f32[16]{0}) all-gather-start(f32[2]{0} %c), dimensions={0}
...   %agd = f32[16]{0} all-gather-done((f32[2]{0}, f32[16]{0}) %ags)
... '''
>>> collective_bytes(text)["all-reduce"], collective_bytes(text)["all-gather"]
(262144, 1104)
"""

from __future__ import annotations

import math
import re

KINDS = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")

_ITEMSIZE = {"pred": 1, "s4": 0.5, "u4": 0.5, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1,
             "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4, "u32": 4, "f32": 4,
             "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16}

_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(?P<shape>.*?)\s*"
                    r"(?P<op>" + "|".join(KINDS) + r")(?P<half>-start|-done)?\(")
_ARRAY = re.compile(r"\b(?P<dtype>[a-z]+\d*(?:e\dm\d\w*)?)\[(?P<dims>[\d,]*)\]")


def _shape_bytes(shape: str) -> int:
  total = 0.0
  for m in _ARRAY.finditer(shape):
    dims = [int(d) for d in m["dims"].split(",") if d]
    total += math.prod(dims) * _ITEMSIZE[m["dtype"]]
  return int(total)


def collective_ops(hlo_text: str) -> list[tuple[str, int, str]]:
  """``(kind, result bytes, result shape)`` of every collective instruction of ``hlo_text``."""
  ops = []
  for line in hlo_text.splitlines():
    m = _INSTR.match(line)
    if m is None or m["half"] == "-start":
      continue
    ops.append((m["op"], _shape_bytes(m["shape"]), m["shape"]))
  return ops


def collective_bytes(hlo_text: str) -> dict[str, int]:
  """Result bytes per collective kind (all of `KINDS`, 0 when absent) of one device's program."""
  out = dict.fromkeys(KINDS, 0)
  for kind, nbytes, _ in collective_ops(hlo_text):
    out[kind] += nbytes
  return out


def wire_bytes(by_kind: dict[str, int], num_devices: int) -> float:
  """Bytes each device sends per step for ``by_kind`` (ring algorithms, one group of n devices)."""
  n = num_devices
  if n <= 1:
    return 0.0
  factor = {"all-reduce": 2 * (n - 1) / n, "all-gather": (n - 1) / n, "reduce-scatter": n - 1,
            "all-to-all": (n - 1) / n, "collective-permute": 1.0}
  return sum(factor[k] * b for k, b in by_kind.items())
