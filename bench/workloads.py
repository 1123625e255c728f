"""The benchmark's workloads, and the same animations for parallel_animate.

Each peer class reuses the example's setup()/update() unchanged and takes
parallel_animate's make_video, so both libraries draw exactly the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import parallel_animate
from ported import (
    FivePanels,
    FourteenPanels,
    OneLine,
    five_panels_params,
    fourteen_panels_params,
    one_line_params,
)

from examples.wave import BlittedWaveAnimation, WaveAnimation
from examples.wave import param_by_frame as wave_params


def _peer_of(cls: type, name: str) -> type:
    """``cls`` with every method of parallel_animate.Animator but setup()/update() taken from there.

    Both libraries name private helpers alike (``_render_serial``...), so the
    peer's own must win over ours in the subclass.
    """
    methods = {key: value for key, value in vars(parallel_animate.Animator).items()
               if not key.startswith("__") and key not in ("setup", "update")}
    return type(name, (cls, parallel_animate.Animator), {**methods, "__qualname__": name})


# Module-level names, so parallel_animate can pickle instances for its workers.
PeerOneLine = _peer_of(OneLine, "PeerOneLine")
PeerWave = _peer_of(BlittedWaveAnimation, "PeerWave")  # parallel_animate draws it in full
PeerFivePanels = _peer_of(FivePanels, "PeerFivePanels")
PeerFourteenPanels = _peer_of(FourteenPanels, "PeerFourteenPanels")


@dataclass(frozen=True)
class Workload:
    name: str
    ours: type
    peer: type
    params: Any  # n_frames -> list of params
    n_frames: int
    smoke_frames: int

    def frames(self, smoke: bool) -> list:
        return list(self.params(self.smoke_frames if smoke else self.n_frames))


#: The first three are parallel_animate's own example scripts, as its users write them (see
#: ported.py). The last two are one wave: drawn with automatic blitting, and declaring
#: animated_artists() (which parallel_animate ignores); the second must never be the slower.
WORKLOADS = [
    Workload("one line 640x480", OneLine, PeerOneLine, one_line_params, 600, 12),
    Workload("five panels 2000x400", FivePanels, PeerFivePanels, five_panels_params, 150, 6),
    Workload("fourteen panels 2400x1800", FourteenPanels, PeerFourteenPanels, fourteen_panels_params,
             30, 3),
    Workload("wave, automatic blitting", WaveAnimation, PeerWave, wave_params, 600, 12),
    Workload("wave, animated_artists()", BlittedWaveAnimation, PeerWave, wave_params, 600, 12),
]
