"""The model registry: a name -> "module:Class" map, imported on first use.

Lazy on purpose: `import vendome.models` stays cheap (no implicit, no torch), and `vendome.recommend`, which
imports `vendome.models.base`, never pulls in a model module that might import it back.

    model = make_model("als", factors=32, seed=1).fit(train)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

MODELS: dict[str, str] = {
    "pop": "vendome.models.popularity:Popularity",
    "pop-recent": "vendome.models.popularity:RecentPopularity",
    "pop-segment": "vendome.models.popularity:SegmentPopularity",
    "content-visual": "vendome.models.content:VisualContent",
    "content-text": "vendome.models.content:TextContent",
    "content-attributes": "vendome.models.content:AttributeContent",
    "itemknn": "vendome.models.itemknn:ItemKNN",
    "als": "vendome.models.factorization:ALS",
    "bpr": "vendome.models.factorization:BPR",
    "ease": "vendome.models.ease:EASE",
    "hybrid": "vendome.models.hybrid:Hybrid",
    "sasrec": "vendome.models.sasrec:SASRec",
    "cammsr": "vendome.models.cammsr:CAMMSR",
    "mbmf": "vendome.models.multibehavior:MBMF",
    "mblightgcn": "vendome.models.multibehavior:MBLightGCN",
    "mclmr": "vendome.models.mclmr:MCLMR",
    "lmmrec": "vendome.models.lmmrec:LMMRec",
}
# plug-ins that wrap a base model, named "<plug-in>:<base>" (e.g. "mclmr:mblightgcn")
PLUGINS: dict[str, tuple[str, ...]] = {"mclmr": ("mbmf", "mblightgcn"), "lmmrec": ("mbmf", "mblightgcn")}


def model_class(name: str) -> type:
    """The estimator class registered under `name` (a plug-in's class for "<plug-in>:<base>")."""
    name = _split(name)[0]
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    module, cls = MODELS[name].split(":")
    return getattr(import_module(module), cls)


def make_model(name: str, **params: Any):
    """A new, unfitted estimator; unknown parameters are an error that lists the valid ones."""
    cls = model_class(name)
    _, base = _split(name)
    if base is not None:
        if "base" in params and params["base"] != base:
            raise ValueError(f"model {name!r} wraps {base!r}; do not pass base={params['base']!r}")
        params = {**params, "base": base}
    valid = cls._param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"model {name!r} has no parameter(s) {', '.join(unknown)}; "
                         f"valid parameters: {', '.join(valid) or 'none'}")
    return cls(**params)


def _split(name: str) -> tuple[str, str | None]:
    """("mclmr", "mbmf") for "mclmr:mbmf"; (name, None) for a plain model; an error names the valid bases."""
    if ":" not in name:
        return name, None
    plugin, base = name.split(":", 1)
    if plugin not in PLUGINS:
        raise ValueError(f"unknown plug-in {plugin!r} in {name!r}; plug-ins: {', '.join(PLUGINS)}")
    if base not in PLUGINS[plugin]:
        raise ValueError(f"{plugin} cannot wrap {base!r}; valid bases: {', '.join(PLUGINS[plugin])}")
    return plugin, base


__all__ = ["MODELS", "make_model", "model_class"]
