"""The tensor-core command as an Amaranth layout (fields of ``models.tensor_cmd``)."""
from amaranth.lib import data

from models.tensor_cmd import FIELD_BITS, TensorCmd

__all__ = ["tensor_cmd_layout"]


def tensor_cmd_layout() -> data.StructLayout:
    """One :class:`models.tensor_cmd.TensorCmd`, fields LSB first in declaration order.

    The layout does not depend on the configuration (addresses are always 16 bits), so
    command streams are portable between presets; :func:`models.tensor_cmd.check`
    decides what a given core accepts.
    """
    return data.StructLayout({name: FIELD_BITS[name] for name in TensorCmd.__dataclass_fields__})
