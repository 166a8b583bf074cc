"""Reader (and a small writer) for the IDX format of MNIST / Fashion-MNIST.

IDX layout (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"): a 4-byte magic
``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32 dimension
sizes, then the data in C order, big-endian. The files may be gzip-compressed
(Debian's ``dataset-fashion-mnist`` ships ``*.gz``); compression is detected
from the gzip magic bytes, not from the file name.

Example (a round trip through a temporary file)::

  >>> import os, tempfile, numpy as np
  >>> path = os.path.join(tempfile.mkdtemp(), "x-idx3-ubyte")
  >>> write_idx(path, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
  >>> read_idx(path).shape
  (2, 3, 4)

On Debian: ``read_idx('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz')``
gives ``uint8 [60000, 28, 28]``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import Optional, Union

import numpy as np

from ssljax import errors

PathLike = Union[str, os.PathLike]

# IDX type code -> numpy dtype (multi-byte types are big-endian on disk).
_CODE_TO_DTYPE = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: PathLike) -> bytes:
  with open(path, "rb") as f:
    data = f.read()
  if data[:2] == _GZIP_MAGIC:
    try:
      data = gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as e:  # a cut download or a damaged copy
      raise errors.DataError(f"{os.fspath(path)} is not a readable gzip file ({e}); the file is "
                             "truncated or corrupt. Reinstall or re-download it.") from None
  return data


def parse_idx(data: bytes, *, name: str = "<bytes>") -> np.ndarray:
  """Parses the (already decompressed) bytes of an IDX file.

  Args:
    data: the raw IDX bytes.
    name: used in error messages only.

  Returns:
    An array of shape given by the header, in native byte order.

  Raises:
    ValueError: if the header is malformed or the payload size does not match.
  """
  if len(data) < 4 or data[0] != 0 or data[1] != 0:
    raise ValueError(f"{name}: not an IDX file (magic must start with two zero bytes, "
                     f"got {data[:4]!r}).")
  code, ndim = data[2], data[3]
  if code not in _CODE_TO_DTYPE:
    raise ValueError(f"{name}: unknown IDX type code 0x{code:02X}; expected one of "
                     f"{sorted(hex(c) for c in _CODE_TO_DTYPE)}.")
  header = 4 + 4 * ndim
  if len(data) < header:
    raise ValueError(f"{name}: truncated IDX header ({len(data)} bytes for {ndim} dims).")
  dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
  dtype = _CODE_TO_DTYPE[code]
  expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
  if len(data) - header != expected:
    raise ValueError(f"{name}: IDX payload has {len(data) - header} bytes, header dims {dims} "
                     f"of {dtype} need {expected}. The file is truncated or corrupt.")
  arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
  # Native byte order and a writeable copy (frombuffer views are read-only).
  return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: PathLike) -> np.ndarray:
  """Reads an IDX file (raw or gzip-compressed) into a numpy array.

  Args:
    path: file path; gzip compression is auto-detected.

  Returns:
    The array, e.g. ``uint8 [N, 28, 28]`` for an images file or ``uint8 [N]``
    for a labels file.
  """
  return parse_idx(_read_bytes(path), name=os.fspath(path))


def write_idx(path: PathLike, array: np.ndarray, *, compress: Optional[bool] = None) -> None:
  """Writes ``array`` as an IDX file (used to make small fixtures in tests).

  Args:
    path: output path.
    array: an array of one of the IDX dtypes (uint8, int8, int16, int32,
      float32, float64).
    compress: gzip the output. ``None`` means: iff ``path`` ends in ``.gz``.
  """
  array = np.asarray(array)
  code = None
  for c, dt in _CODE_TO_DTYPE.items():
    if dt.newbyteorder("=") == array.dtype.newbyteorder("="):
      code = c
  if code is None:
    raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of uint8, int8, int16, "
                     "int32, float32, float64.")
  header = bytes([0, 0, code, array.ndim]) + b"".join(
      int(d).to_bytes(4, "big") for d in array.shape)
  payload = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
  data = header + payload
  if compress is None:
    compress = os.fspath(path).endswith(".gz")
  if compress:
    data = gzip.compress(data)
  with open(path, "wb") as f:
    f.write(data)
