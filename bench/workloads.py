"""The benchmark's workloads, and the same animations for parallel_animate.

Each peer class reuses the example's setup()/update() unchanged and takes
parallel_animate's make_video, so both libraries draw exactly the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import parallel_animate

from examples.gridspec_dashboard import GridSpecDashboard
from examples.gridspec_dashboard import param_by_frame as dashboard_params
from examples.multi_panel import MultiPanelAnimation
from examples.multi_panel import param_by_frame as multi_panel_params
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
PeerWave = _peer_of(WaveAnimation, "PeerWave")
PeerMultiPanel = _peer_of(MultiPanelAnimation, "PeerMultiPanel")
PeerDashboard = _peer_of(GridSpecDashboard, "PeerDashboard")


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


WORKLOADS = [
    Workload("wave", WaveAnimation, PeerWave, wave_params, 600, 12),
    Workload("wave, blitted", BlittedWaveAnimation, PeerWave, wave_params, 600, 12),
    Workload("multi-panel", MultiPanelAnimation, PeerMultiPanel, multi_panel_params, 300, 8),
    Workload("GridSpec 2400x1800", GridSpecDashboard, PeerDashboard, dashboard_params, 60, 3),
]
