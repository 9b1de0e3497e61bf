"""Everything that reads or makes data: masks, test-time and training datasets, the generator."""

from remn.data.masks import (
    DAVIS_PALETTE,
    DataError,
    DataWarning,
    MaskInfo,
    MaskRepair,
    MaskWarning,
    read_image,
    read_mask,
    save_mask,
)

__all__ = [
    "DAVIS_PALETTE",
    "DataError",
    "DataWarning",
    "MaskInfo",
    "MaskRepair",
    "MaskWarning",
    "read_image",
    "read_mask",
    "save_mask",
]
