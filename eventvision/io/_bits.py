"""The bit layouts of the raw formats: the one home of the masks, shifts and wrap values.

The format modules (``aedat2.py``, ``aedat31.py``, ``atis.py``) re-export them under their
spec names, and the numba kernels (``_kernels.py``) read them as compile-time constants; see
docs/formats.md for the layouts.
"""

from __future__ import annotations

# 32-bit timestamps (AEDAT 2.0) wrap at 2**32; a backwards jump of more than half is a wrap.
TIMESTAMP_WRAP = 1 << 32
HALF_WRAP = 1 << 31

# jAER AEDAT 2.0, DVS128 address: bit 0 polarity, bits 1-7 x, bits 8-14 y, bit 15 up special.
AEDAT2_POLARITY_MASK = 0x1
AEDAT2_X_SHIFT, AEDAT2_X_MASK = 1, 0x7F
AEDAT2_Y_SHIFT, AEDAT2_Y_MASK = 8, 0x7F
AEDAT2_SPECIAL_EVENT_BIT = 1 << 15

# AEDAT 3.1 polarity event data: bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x;
# timestamps are 31 bits plus the packet's overflow counter above them.
AEDAT31_VALID_MASK = 0x1
AEDAT31_POLARITY_SHIFT = 1
AEDAT31_Y_SHIFT, AEDAT31_Y_MASK = 2, 0x7FFF
AEDAT31_X_SHIFT, AEDAT31_X_MASK = 17, 0x7FFF
AEDAT31_TIMESTAMP_MASK = 0x7FFFFFFF
AEDAT31_OVERFLOW_SHIFT = 31

# ATIS .bin (N-MNIST, N-Caltech101): byte 2 bit 7 polarity, bits 6-0 the timestamp's bits 22-16;
# a record with y == 240 is a timestamp overflow adding 2**13 us.
ATIS_POLARITY_SHIFT = 7
ATIS_POLARITY_BIT = 1 << ATIS_POLARITY_SHIFT
ATIS_TIMESTAMP_HIGH_MASK = 0x7F
ATIS_OVERFLOW_Y = 240
ATIS_OVERFLOW_STEP_US = 1 << 13
