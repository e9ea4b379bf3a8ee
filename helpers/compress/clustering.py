"""Weight clustering (k-means weight sharing, scikit-learn): the size-only reference method."""

from __future__ import annotations

import gzip

import numpy as np
import torch

from helpers.compress.registry import Param, check, prunable_layers, register


def cluster_weights(w: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """Replace every value of ``w`` by its k-means centroid (linear initialisation, as Deep Compression)."""
    from sklearn.cluster import KMeans

    flat = w.detach().reshape(-1, 1).numpy().astype(np.float64)
    k = min(k, len(np.unique(flat)))
    init = np.linspace(flat.min(), flat.max(), k).reshape(-1, 1)
    km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=50, random_state=seed).fit(flat)
    return torch.from_numpy(km.cluster_centers_[km.labels_].reshape(w.shape)).to(w.dtype)


@register("clustering", "clustering",
          {"clusters": Param("int", 16, "distinct weight values per layer (k)", 2, 256),
           "min_weights": Param("int", 64, "leave layers with fewer weights untouched", 1, 10 ** 7)},
          "share k weight values per layer; smaller only after entropy coding (gzip), no faster")
def _clustering():
    def apply(model, p, ctx):
        with torch.no_grad():
            for _, m in prunable_layers(model):
                if m.weight.numel() >= p["min_weights"]:
                    m.weight.copy_(cluster_weights(m.weight, p["clusters"], ctx.seed))
        return model

    def verify(before, after, p, ctx, artifact):
        layers = [m for _, m in prunable_layers(after) if m.weight.numel() >= p["min_weights"]]
        worst = max(len(torch.unique(m.weight)) for m in layers)
        rows = [check("distinct values per layer (PyTorch)", f"<= {p['clusters']}", worst, worst <= p["clusters"], "pytorch")]
        if artifact is not None:
            from helpers.deploy.inspection import constant_values

            worst_channel = 0
            for op in ("CONV_2D", "FULLY_CONNECTED"):
                for w in constant_values(artifact, op):
                    if w.size >= p["min_weights"]:
                        per_out = w.reshape(w.shape[0], -1)
                        worst_channel = max(worst_channel, max(len(np.unique(r)) for r in per_out))
            rows.append(check("distinct int8 values per output channel", f"<= {p['clusters']}", worst_channel,
                              worst_channel <= p["clusters"], "artifact"))
            data = open(artifact, "rb").read()
            rows.append(check("gzip-compressed size / raw size", "< 0.7", round(len(gzip.compress(data)) / len(data), 3),
                              len(gzip.compress(data)) / len(data) < 0.7, "artifact"))
            rows.append(check("latency benefit", "faster", "same dense kernels", None, "artifact"))
        return rows

    return apply, verify
