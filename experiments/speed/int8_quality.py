"""What int8 layers do to depth quality: ``sharpdepth eval`` with every UNet linear layer
and convolution of at least 16 features or channels in int8.

The bundled nano models' layers (32-128 features) are narrower than
:data:`sharpdepth.accel.int8.MIN_FEATURES` and :data:`sharpdepth.accel.int8.MIN_CONV_CHANNELS`, so
fast mode leaves them in float32 (int8 would be slower at that size). This script lowers
both thresholds to 16 for one ``sharpdepth eval`` run, so the nano family's quality on
the synthetic test split shows the int8 arithmetic that fast mode uses for wide
(SD-2-sized) layers. The arguments are ``sharpdepth eval``'s;
pass ``--fast`` or ``--fastest`` (int8 is part of the fast modes):

``python experiments/speed/int8_quality.py --benchmark synth --split test --use-intrinsics --fast``
"""

from __future__ import annotations

import sys

from sharpdepth.accel import int8
from sharpdepth.cli.main import main

if __name__ == "__main__":
    int8.MIN_FEATURES = 16
    int8.MIN_CONV_CHANNELS = 16
    sys.exit(main(["eval", *sys.argv[1:]]))
