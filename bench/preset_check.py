"""Does a preset converge by the publish gate's thresholds? Runs it over several seeds.

Runs the training job (``training.run.loop.train``) for a preset, optionally with overrides, once
per seed, and prints for each run the gate's four figures (``training.run.gate.assess``:
log-likelihood split R-hat and bulk ESS, median and maximum pair-logit split R-hat), the
pair-logit bulk ESS (minimum, median), ESS per 1,000 leapfrog steps of the sampling phase
(one leapfrog step = one gradient evaluation of all chains), leapfrog/s, the seconds of
sampling (burn-in + draws, compilation excluded) and the load average when the run ended.
Per-gradient figures do not depend on how loaded the machine is; seconds do.

    python bench/preset_check.py --preset default --seeds 0,1,2
    python bench/preset_check.py --preset default --set num_chains=4 --set num_results=250
    python bench/preset_check.py --preset cpu \
        --data synthetic:users=6040,movies=3706,dim=20 --set num_burnin_steps=300
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--data", default=None, help="data source (default: the preset's)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a TrainConfig field (repeatable), e.g. num_chains=4",
    )
    return p.parse_args(argv)


def _coerce(template: Any, value: str) -> Any:
    if isinstance(template, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(template, int):
        return int(value)
    if isinstance(template, float):
        return float(value)
    return value


def overrides(config: Any, items: list[str]) -> dict[str, Any]:
    """`FIELD=VALUE` strings to typed TrainConfig changes (ValueError for an unknown field)."""
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not hasattr(config, key):
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE with a TrainConfig field")
        changes[key] = _coerce(getattr(config, key), value)
    return changes


def load_average() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from training.config import preset
    from training.data import load_source
    from training.parallel.mesh import request_cpu_devices
    from training.run.gate import Thresholds, assess

    base = preset(args.preset)
    base = base.replace(data=args.data, **overrides(base, args.set))
    request_cpu_devices(base.devices)
    from training.run.loop import train

    data = load_source(base.data)
    print(
        f"preset {args.preset}: {data.num_users} users x {data.num_movies} movies, "
        f"density {data.density:.4f}; {base.num_chains} "
        f"chains, {base.num_burnin_steps} burn-in + {base.num_results} draws x "
        f"{base.num_leapfrog_steps} leapfrog ({base.trajectory}), D={base.latent_dim}, "
        f"mass {base.mass_matrix}, jitter {base.step_size_jitter}",
        flush=True,
    )
    passed = 0
    seeds = [int(s) for s in args.seeds.split(",") if s]
    for seed in seeds:
        config = base.replace(seed=seed)
        t0 = time.perf_counter()
        result = train(config, data)
        assert result is not None
        wall = time.perf_counter() - t0
        d = result.diagnostics
        verdict = assess(d, Thresholds())
        passed += verdict["converged"]
        burn = config.num_burnin_steps
        gradients = float(np.sum(result.traces["num_leapfrog_steps"][burn:]))
        per_k = 1000.0 / gradients
        f = verdict["figures"]
        pairs = d["pair_logits"]
        print(
            f"RESULT seed {seed} converged={verdict['converged']} "
            f"loglik R-hat {f['loglik_rhat']:.3f} ESS {f['loglik_ess_bulk']:.0f} | pairs R-hat "
            f"median {f['pair_rhat_median']:.3f} max {f['pair_rhat_max']:.3f} ESS min "
            f"{pairs['ess_bulk_min']:.0f} median {pairs['ess_bulk_median']:.0f} | per 1000 "
            f"leapfrog: loglik {f['loglik_ess_bulk'] * per_k:.2f} pairs min "
            f"{pairs['ess_bulk_min'] * per_k:.2f} | step {d['final_step_size']:.4f} accept "
            f"{d['mean_acceptance']:.2f} | {d['leapfrog_per_s']:.1f} leapfrog/s, sampling "
            f"{d['run_seconds']:.1f} s, wall {wall:.1f} s | {load_average()}",
            flush=True,
        )
    print(f"SUMMARY {passed}/{len(seeds)} seeds converged", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
