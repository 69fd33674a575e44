"""SpikingResformer models: registry, blocks, neurons, energy and spike-driven attention.

Example:
    >>> from eventvision.models import create_model
    >>> model = create_model("spikingresformer_cifar")
"""

from __future__ import annotations

from .encoding import repeat_encode as repeat_encode
from .energy import EnergyReport as EnergyReport
from .energy import firing_rates as firing_rates
from .energy import measure_energy as measure_energy
from .neurons import FusedLIF as FusedLIF
from .neurons import FusedPLIF as FusedPLIF
from .neurons import make_neuron as make_neuron
from .registry import create_model as create_model
from .registry import list_models as list_models
from .registry import register_model as register_model
from .spikingresformer import ResformerConfig as ResformerConfig
from .spikingresformer import SpikingResformer as SpikingResformer
from .spikingresformer import load_pretrained as load_pretrained
from .weights import LoadResult as LoadResult
from .weights import load_weights as load_weights

__all__ = [
    "EnergyReport",
    "FusedLIF",
    "FusedPLIF",
    "LoadResult",
    "ResformerConfig",
    "SpikingResformer",
    "create_model",
    "firing_rates",
    "list_models",
    "load_pretrained",
    "load_weights",
    "make_neuron",
    "measure_energy",
    "register_model",
    "repeat_encode",
]
