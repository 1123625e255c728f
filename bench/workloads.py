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


class PeerWave(WaveAnimation, parallel_animate.Animator):
    make_video = parallel_animate.Animator.make_video


class PeerMultiPanel(MultiPanelAnimation, parallel_animate.Animator):
    make_video = parallel_animate.Animator.make_video


class PeerDashboard(GridSpecDashboard, parallel_animate.Animator):
    make_video = parallel_animate.Animator.make_video


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
