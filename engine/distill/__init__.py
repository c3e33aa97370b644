"""Dataset distillation: learn a small synthetic set (IPC images per class) that trains like the full data.

One synthetic-set type (:class:`SyntheticSet`), one loop (:func:`run_loop`) and one matcher per
family: gradient matching (DC, DSA), distribution matching (DM) and trajectory matching (MTT,
DATM-style, PAD). The registry names the methods; ``engine.pipeline.distill`` runs a whole job.
"""

from engine.distill.experts import ExpertConfig, ExpertStore, LocalExpertStore, Trajectories
from engine.distill.registry import MethodSpec, get_method, method_names, register_method
from engine.distill.synthetic import SyntheticSet

__all__ = [
    "ExpertConfig",
    "ExpertStore",
    "LocalExpertStore",
    "MethodSpec",
    "SyntheticSet",
    "Trajectories",
    "get_method",
    "method_names",
    "register_method",
]
