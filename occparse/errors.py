"""occparse's one error family.

Every error that occparse raises on purpose is an :class:`OccparseError`, so callers can catch
one class, and the ``occparse`` command turns any of them into one line on stderr and a non-zero
exit status. Each child also keeps the built-in base its code raised before (``RuntimeError``,
``ValueError``, ``FileNotFoundError``) so existing ``except`` clauses keep working.

* :class:`InputError`: an image that cannot be read (``occparse.runtime.io.ImageInputError`` and its
  children carry the short ``status`` code written in batch output).
* :class:`ModelError`: a model file that is missing, unlisted or fails its pinned sha256
  (``occparse.models.zoo.WeightsError``).
* :class:`VersionError`: a stacker file written by another scikit-learn version, or for
  other features (``occparse.runtime.stacking.StackerVersionError``).
* :class:`DataError`: a data folder, truth CSV or input CSV that breaks its contract.
"""

from __future__ import annotations


class OccparseError(Exception):
    """Base of every error occparse raises on purpose; its message is one readable line."""


class InputError(OccparseError):
    """An input image that cannot be read or measured."""


class ModelError(OccparseError):
    """A model file is missing, unlisted, or fails its pinned sha256."""


class VersionError(ModelError):
    """A saved model was written by another library version (or for other features) and is refused."""


class DataError(OccparseError):
    """A data folder or CSV file that breaks occparse's contract."""
