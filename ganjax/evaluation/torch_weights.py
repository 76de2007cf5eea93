"""Reads a PyTorch `.pth` state_dict into NumPy arrays, without PyTorch.

`torch.save` writes a pickle whose tensors refer to separately stored raw
buffers ("storages") by a persistent id. Since PyTorch 1.6 the file is a zip
archive, `<name>/data.pkl` holding the pickle and `<name>/data/<key>` the raw
little-endian bytes of each storage; older files (the "legacy" format) are
one stream: a few header pickles, the main pickle, the list of storage keys,
then each storage as an 8-byte element count followed by its bytes. Both are
read here.

A tensor is rebuilt from its storage as a strided view (offset, size and
stride counted in elements, as `torch._utils._rebuild_tensor_v2` does) and
copied into a contiguous array, so transposed or sliced tensors come out as
PyTorch shows them. Unpickling is restricted to the few classes a state_dict
contains; anything else is refused rather than executed.
"""

import collections
import os
import pickle
import zipfile

import ml_dtypes
import numpy as np

from ganjax.errors import GanjaxError

# Storage class name -> element dtype (little-endian, as torch.save writes it).
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}

_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


class _StorageType:
  """Stands in for `torch.<X>Storage`: only its element dtype matters here."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = _STORAGE_DTYPES[name]


class _Storage:
  """One raw buffer; `array` is a flat array of its elements once its bytes are read."""

  def __init__(self, dtype: np.dtype, numel: int):
    self.dtype = dtype
    self.numel = numel
    self.array = None


class _Tensor:
  """A tensor awaiting its storage's bytes (legacy files store them after the pickle)."""

  def __init__(self, storage: _Storage, offset: int, size, stride):
    self.storage, self.offset = storage, int(offset)
    self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

  def materialize(self) -> np.ndarray:
    flat = self.storage.array
    if flat is None:
      raise ValueError("a tensor refers to a storage that the file does not contain")
    if not self.size:
      return np.array(flat[self.offset])
    # The furthest element the view reaches must lie inside the storage.
    last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride) if n > 0)
    if any(n == 0 for n in self.size):
      return np.zeros(self.size, flat.dtype)
    if self.offset < 0 or last >= flat.size or min(self.stride) < 0:
      raise ValueError(f"a tensor of size {self.size}, stride {self.stride} and offset"
                       f" {self.offset} overruns its storage of {flat.size} elements")
    view = np.lib.stride_tricks.as_strided(
        flat[self.offset:], shape=self.size,
        strides=tuple(s * flat.itemsize for s in self.stride), writeable=False)
    return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused_args):
  """`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, ...)`."""
  return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused_args):
  """`torch._utils._rebuild_parameter(data, requires_grad, backward_hooks)`: the data."""
  return data


def _ordered_dict(*args):
  return collections.OrderedDict(*args)


_ALLOWED = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
  """Unpickles a state_dict; `storage_for(key, dtype, numel)` supplies each storage."""

  def __init__(self, file, storage_for):
    super().__init__(file, encoding="utf-8")
    self._storage_for = storage_for

  def find_class(self, module, name):
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name)
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    raise pickle.UnpicklingError(
        f"{module}.{name} is not part of a plain state_dict of tensors")

  def persistent_load(self, pid):
    # Zip format: ('storage', type, key, location, numel);
    # legacy: ('storage', type, key, location, numel, view_metadata).
    if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
      raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
    storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
    if not isinstance(storage_type, _StorageType):
      raise pickle.UnpicklingError(f"unknown storage type {storage_type!r}")
    if len(pid) > 5 and pid[5] is not None:
      raise pickle.UnpicklingError("storage views (files from PyTorch < 0.4) are not supported")
    return self._storage_for(key, storage_type.dtype, numel)


def _materialize(obj):
  if isinstance(obj, _Tensor):
    return obj.materialize()
  if isinstance(obj, dict):
    return {k: _materialize(v) for k, v in obj.items()}
  return obj


def _load_zip(path: str):
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
    if len(pickles) != 1:
      raise ValueError(f"expected one data.pkl in the archive, found {len(pickles)}")
    prefix = pickles[0][:-len("data.pkl")]
    storages = {}

    def storage_for(key, dtype, numel):
      if key not in storages:
        storage = _Storage(dtype, numel)
        raw = archive.read(f"{prefix}data/{key}")
        if len(raw) < numel * dtype.itemsize:
          raise ValueError(f"storage {key} holds {len(raw)} bytes, expected"
                           f" {numel * dtype.itemsize}")
        storage.array = np.frombuffer(raw, dtype, count=numel)
        storages[key] = storage
      return storages[key]

    with archive.open(pickles[0]) as f:
      return _materialize(_Unpickler(f, storage_for).load())


def _load_legacy(path: str):
  with open(path, "rb") as f:
    magic = pickle.load(f)
    if magic != _LEGACY_MAGIC:
      raise ValueError("neither a zip archive nor a legacy torch.save stream")
    protocol = pickle.load(f)
    if protocol != 1001:
      raise ValueError(f"legacy torch.save protocol {protocol} is not supported")
    sys_info = pickle.load(f)
    if not sys_info.get("little_endian", True):
      raise ValueError("big-endian files are not supported")
    storages = {}

    def storage_for(key, dtype, numel):
      return storages.setdefault(key, _Storage(dtype, numel))

    result = _Unpickler(f, storage_for).load()
    for key in pickle.load(f):
      storage = storages[str(key)]
      count = int(np.frombuffer(f.read(8), "<i8")[0])
      if count != storage.numel:
        raise ValueError(f"storage {key} holds {count} elements, expected {storage.numel}")
      raw = f.read(count * storage.dtype.itemsize)
      if len(raw) != count * storage.dtype.itemsize:
        raise ValueError(f"storage {key} is truncated")
      storage.array = np.frombuffer(raw, storage.dtype)
    return _materialize(result)


def load_state_dict(path) -> dict[str, np.ndarray]:
  """The tensors of the state_dict that `torch.save` wrote to `path`, as NumPy arrays.

  Raises GanjaxError when the file is missing, is not a state_dict of tensors,
  or is damaged.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise GanjaxError(f"PyTorch weights file {path} does not exist; check the path"
                      " (download the weights first if needed)")
  try:
    if zipfile.is_zipfile(path):
      result = _load_zip(path)
    else:
      result = _load_legacy(path)
  except (ValueError, KeyError, EOFError, OSError, IndexError, TypeError, AttributeError,
          zipfile.BadZipFile, pickle.UnpicklingError) as e:
    raise GanjaxError(f"{path} is not a readable PyTorch state_dict ({e}); the file may be"
                      " damaged or truncated: download or save it again") from e
  if isinstance(result, dict) and isinstance(result.get("state_dict"), dict):
    result = result["state_dict"]
  if not isinstance(result, dict) or not all(
      isinstance(k, str) and isinstance(v, np.ndarray) for k, v in result.items()):
    raise GanjaxError(f"{path} does not hold a state_dict (a dict of names to tensors);"
                      " save one with torch.save(model.state_dict(), path)")
  return dict(result)
