"""PNG trace plots like the reference's: target log-prob, acceptance and step size."""

from __future__ import annotations

import io

import numpy as np

__all__ = [
    "trace_plot_png",
]


def trace_plot_png(traces: dict[str, np.ndarray], *, num_burnin_steps: int) -> bytes:
    """One figure, three panels (log-prob and acceptance per chain, step size); PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 8), dpi=100)
    axes = fig.subplots(3, 1, sharex=True)
    tlp = np.asarray(traces["target_log_prob"])
    accept = np.exp(np.minimum(np.asarray(traces["log_accept_ratio"]), 0.0))
    step = np.asarray(traces["step_size"])
    iterations = np.arange(tlp.shape[0])
    for chain in range(tlp.shape[1]):
        axes[0].plot(iterations, tlp[:, chain], lw=0.8, label=f"chain {chain}")
        axes[1].plot(iterations, accept[:, chain], lw=0.6, alpha=0.8, label=f"chain {chain}")
    axes[2].plot(iterations, step, lw=1.0, color="k")
    axes[0].set_ylabel("target log-prob")
    settled = tlp[tlp.shape[0] // 10 :]
    if settled.size and np.isfinite(settled).all():
        # Zoom past the first 10% (the descent from the prior draw would hide the rest).
        lo, hi = float(settled.min()), float(settled.max())
        pad = 0.1 * (hi - lo) + 1e-6 * abs(hi) + 1e-9
        axes[0].set_ylim(lo - pad, hi + pad)
    axes[1].set_ylabel("acceptance prob.")
    axes[1].set_ylim(-0.02, 1.02)
    axes[2].set_ylabel("step size")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("iteration")
    for ax in axes:
        if 0 < num_burnin_steps < tlp.shape[0]:
            ax.axvline(num_burnin_steps, color="grey", ls="--", lw=0.8)
    axes[0].legend(loc="lower right", fontsize="small")
    axes[0].set_title("HMC traces (dashed line: end of burn-in)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
