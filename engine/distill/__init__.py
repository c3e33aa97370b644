"""Dataset distillation: learn a small synthetic set (IPC images per class) that trains like the full data.

One synthetic-set type (:class:`SyntheticSet`), one loop (:func:`run_loop`) and one matcher per
family: gradient matching (DC, DSA), distribution matching (DM) and trajectory matching (MTT,
DATM-style, PAD). The registry names the methods; ``engine.pipeline.distill`` runs a whole job.
"""

import lazy_loader

# Attributes load with their submodule on first use (lazy_loader): importing one light submodule, such as a
# config or a registry, does not import torch through this package.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "experts": ["ExpertStore", "LocalExpertStore", "Trajectories"],
        "experts_config": ["ExpertConfig"],
        "registry": ["METHODS", "MethodSpec", "get_method", "method_names", "register_method"],
        "synthetic": ["SyntheticSet"],
    },
)
