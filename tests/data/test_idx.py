"""Tests of the IDX reader/writer against hand-made bytes."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from ssljax.data import idx


def _hand_made_idx(array: np.ndarray, code: int) -> bytes:
  """IDX bytes written independently with struct (big-endian header + payload)."""
  header = struct.pack(">BBBB", 0, 0, code, array.ndim)
  header += b"".join(struct.pack(">I", d) for d in array.shape)
  return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("dtype,code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                        (np.int32, 0x0C), (np.float32, 0x0D),
                                        (np.float64, 0x0E)])
@pytest.mark.parametrize("compress", [False, True])
def test_read_hand_made_file(tmp_path, dtype, code, compress):
  rng = np.random.default_rng(code)
  a = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
  data = _hand_made_idx(a, code)
  path = tmp_path / "x-idx3-ubyte"  # No .gz suffix: compression is sniffed.
  path.write_bytes(gzip.compress(data) if compress else data)
  out = idx.read_idx(path)
  assert out.dtype == np.dtype(dtype) and out.dtype.isnative
  np.testing.assert_array_equal(out, a)
  out[0, 0, 0] = 1  # Writeable copy, not a view of the file buffer.


def test_labels_file_1d(tmp_path):
  labels = np.array([9, 2, 1, 1, 6], np.uint8)
  (tmp_path / "l.gz").write_bytes(gzip.compress(_hand_made_idx(labels, 0x08)))
  np.testing.assert_array_equal(idx.read_idx(tmp_path / "l.gz"), labels)


@pytest.mark.parametrize("name", ["a.gz", "a"])
def test_write_roundtrip(tmp_path, name):
  a = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
  idx.write_idx(tmp_path / name, a)
  raw = (tmp_path / name).read_bytes()
  assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")
  if name.endswith(".gz"):
    raw = gzip.decompress(raw)
  assert raw == _hand_made_idx(a, 0x08)  # Byte-identical to the independent writer.
  np.testing.assert_array_equal(idx.read_idx(tmp_path / name), a)


def test_errors(tmp_path):
  with pytest.raises(ValueError, match="not an IDX file"):
    idx.parse_idx(b"\x01\x00\x08\x01\x00\x00\x00\x01\x05")
  with pytest.raises(ValueError, match="unknown IDX type code"):
    idx.parse_idx(b"\x00\x00\x07\x01\x00\x00\x00\x01\x05")
  with pytest.raises(ValueError, match="truncated or corrupt"):
    idx.parse_idx(_hand_made_idx(np.zeros((4,), np.uint8), 0x08)[:-1])
  with pytest.raises(ValueError, match="cannot store dtype"):
    idx.write_idx(tmp_path / "b", np.zeros(3, np.complex64))


def test_truncated_gzip_names_the_file(tmp_path):
  import numpy as np
  from ssljax import errors
  from ssljax.data import idx
  path = tmp_path / "x-idx1-ubyte.gz"
  idx.write_idx(str(path), np.arange(1000, dtype=np.uint8), compress=True)
  path.write_bytes(path.read_bytes()[:40])
  with pytest.raises(errors.DataError, match="x-idx1-ubyte.gz is not a readable gzip file"):
    idx.read_idx(str(path))
