"""Leapfrog throughput (and ESS/s) of the fast sampler vs the reference TFP formulation.

Full ml-1m shape by default: a synthetic 6040 x 3706 watch matrix with density 0.045 (or a
real one with ``--data SOURCE``, any ``training.data.load_source`` source), D = 20, 2 chains.
Each device count runs in its own subprocess (XLA_FLAGS must be set before JAX is imported;
on CPU the devices are faked with --xla_force_host_platform_device_count).

Throughput mode (default): both samplers are compiled first, then timed in alternating
segments (fast, reference, fast, ...) in the same process. A segment is one compiled call
inside ``jax.shard_map`` that bootstraps the kernel and runs ``--iterations`` HMC steps of
``--leapfrog`` leapfrog steps, like the training loop's compiled segments.

``--impl`` picks the samplers: ``fast`` (identity mass matrix), ``fast-diag`` (the same
kernel with a diagonal inverse mass matrix, as after warmup adaptation), ``reference``, and
``baseline`` with ``--baseline-fast PATH``: the fast kernel of another checkout's
``training/hmc/fast_kernel.py`` (e.g. before a change), timed A/B in the same process.

ESS mode (``--ess``): runs a short chain (dual-averaging burn-in, then sampling) and prints
the effective sample size per second of identifiable quantities: the log joint density and
the logits of a few (user, movie) pairs.

    python bench/train_throughput.py                      # 1 and 8 devices, A/B
    python bench/train_throughput.py --devices 1 --segments 5
    python bench/train_throughput.py --ess --devices 8 --impl fast,reference
    python bench/train_throughput.py --preset cpu         # the training job itself, ESS/s
    python bench/train_throughput.py --devices 1 --impl baseline,fast,fast-diag \
        --baseline-fast /work/main/training/hmc/fast_kernel.py --segments 8

Preset mode (``--preset NAME``): runs the project's own training job (``training.run.loop``)
with that preset once per sampler in ``--impl`` and prints, from the run's diagnostics, the
ESS per second of the identifiable quantities (the log-likelihood and the logits of 50 fixed
(user, movie) pairs) with R-hat. The preset's data is used when it can be loaded (``ml-1m``
under ``$SHARDLENS_DATA_DIR``, or ``--data``); otherwise a synthetic matrix of the
``--users`` x ``--movies`` shape stands in, and the output says so.

JAX picks the backend; on a GPU, device counts above the number of GPUs are skipped.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AXIS = "users"
IMPLS = ("fast", "fast-diag", "reference", "baseline")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,8", help="comma-separated device counts")
    parser.add_argument("--data", default=None, help="a training.data source (default: synthetic)")
    parser.add_argument("--users", type=int, default=6040)
    parser.add_argument("--movies", type=int, default=3706)
    parser.add_argument("--density", type=float, default=0.045)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--leapfrog", type=int, default=10, help="leapfrog steps per HMC step")
    parser.add_argument("--iterations", type=int, default=2, help="HMC steps per segment")
    parser.add_argument("--segments", type=int, default=3, help="timed segments per sampler")
    parser.add_argument("--step-size", type=float, default=1e-2)
    parser.add_argument("--block-size", type=int, default=256, help="fast path user block")
    parser.add_argument("--impl", default="fast,reference", help="samplers to run")
    parser.add_argument("--ess", action="store_true", help="ESS/s mode instead of throughput")
    parser.add_argument("--burnin", type=int, default=30, help="ESS mode: burn-in HMC steps")
    parser.add_argument("--results", type=int, default=60, help="ESS mode: kept HMC steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", help="preset mode: run this training preset, print ESS/s")
    parser.add_argument(
        "--baseline-fast",
        help="impl 'baseline': the fast kernel from this fast_hmc.py (another checkout)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    impls = tuple(s.strip() for s in args.impl.split(",") if s.strip())
    if not impls or any(i not in IMPLS for i in impls):
        parser.error(f"--impl must list some of {IMPLS}, got {args.impl!r}")
    args.impls = impls
    if "baseline" in impls and not args.baseline_fast:
        parser.error("--impl baseline needs --baseline-fast PATH")
    args.device_counts = [int(x) for x in args.devices.split(",")]
    return args


# ---------------------------------------------------------------------------------------
# Parent: one subprocess per device count.


def run_parent(args: argparse.Namespace, argv: list[str]) -> int:
    rest, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--devices="):
            skip = False
            continue
        skip = arg == "--devices"
        if not skip:
            rest.append(arg)
    status = 0
    for n in args.device_counts:
        env = dict(os.environ)
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--devices", str(n)]
        print(f"=== {n} device(s) ===", flush=True)
        status |= subprocess.call(cmd + rest, env=env)
    return status


# ---------------------------------------------------------------------------------------
# Child: everything below imports JAX.


def load_watch(args: argparse.Namespace):
    import numpy as np

    if args.data:
        from training.data import load_source

        data = load_source(args.data)
        return data.dense(bool), f"{args.data} ({data.num_users}x{data.num_movies})"
    rng = np.random.default_rng(args.seed)
    watch = rng.random((args.users, args.movies), dtype=np.float32) < args.density
    return watch, f"synthetic {args.users}x{args.movies} density {args.density}"


def reference_kernel(watch_block, *, axis_name: str, args: argparse.Namespace):
    """The notebook's formulation: tfed joint distribution + PreconditionedHMC (sharded)."""
    import jax.numpy as jnp
    from tensorflow_probability.substrates import jax as tfp

    tfd, tfed, tfem = tfp.distributions, tfp.experimental.distribute, tfp.experimental.mcmc
    root = tfed.JointDistributionCoroutine.Root
    sharded = functools.partial(tfed.Sharded, shard_axis_name=axis_name)
    n, m = watch_block.shape
    c, d = args.chains, args.dim

    def prior_fn():
        user_emb = yield root(sharded(tfd.Sample(tfd.Normal(0.0, 1.0), [n, d]), name="U"))
        user_bias = yield root(sharded(tfd.Sample(tfd.Normal(0.0, 1.0), [n]), name="u"))
        movie_emb = yield root(tfd.Sample(tfd.Normal(0.0, 1.0), [m, d], name="V"))
        movie_bias = yield root(tfd.Sample(tfd.Normal(0.0, 1.0), [m], name="v"))
        return user_emb, user_bias, movie_emb, movie_bias

    def model_fn():
        user_emb, user_bias, movie_emb, movie_bias = yield from prior_fn()
        logits = (
            jnp.einsum("...nd,...md->...nm", user_emb, movie_emb)
            + user_bias[..., :, None]
            + movie_bias[..., None, :]
        )
        yield sharded(tfd.Independent(tfd.Bernoulli(logits=logits), 2), name="W")

    model = tfed.JointDistributionCoroutine(model_fn)
    momentum = tfed.JointDistributionSequential(
        [
            sharded(tfd.Independent(tfd.Normal(jnp.zeros([c, n, d]), 1.0), 2)),
            sharded(tfd.Independent(tfd.Normal(jnp.zeros([c, n]), 1.0), 1)),
            tfd.Independent(tfd.Normal(jnp.zeros([c, m, d]), 1.0), 2),
            tfd.Independent(tfd.Normal(jnp.zeros([c, m]), 1.0), 1),
        ]
    )

    def target(*state):
        return model.log_prob((*state, watch_block))

    kernel = tfem.PreconditionedHamiltonianMonteCarlo(
        target, args.step_size, args.leapfrog, momentum_distribution=momentum
    )
    return kernel, tfed.JointDistributionCoroutine(prior_fn)


def _baseline_module(path: str):
    """The fast_hmc module of another checkout (it imports this checkout's likelihood)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("baseline_fast_hmc", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _diagonal_inverse_mass(watch_block, args: argparse.Namespace):
    """A fixed, uneven diagonal inverse mass matrix (what warmup adaptation produces)."""
    import jax.numpy as jnp

    n, m = watch_block.shape
    shapes = [(n, args.dim), (n,), (m, args.dim), (m,)]
    return tuple(
        jnp.exp(0.5 * jnp.sin(jnp.arange(math.prod(s), dtype=jnp.float32)).reshape(s))
        for s in shapes
    )


def build_kernel(impl: str, watch_block, user_mask, args: argparse.Namespace):
    from training.hmc.fast_kernel import make_fast_kernel

    if impl == "reference":
        return reference_kernel(watch_block.astype(bool), axis_name=AXIS, args=args)[0]
    options = dict(
        step_size=args.step_size,
        num_leapfrog_steps=args.leapfrog,
        watch_block=watch_block,
        user_mask=user_mask,
        prior_scale=1.0,
        axis_name=AXIS,
        num_chains=args.chains,
        block_size=args.block_size,
    )
    if impl == "baseline":
        return _baseline_module(args.baseline_fast).make_fast_kernel(**options)
    if impl == "fast-diag":
        options["inverse_mass_matrix"] = _diagonal_inverse_mass(watch_block, args)
    return make_fast_kernel(**options)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def memory_line(compiled: Any) -> str:
    try:
        mem = compiled.memory_analysis()
    except Exception:  # not every backend implements it
        return "n/a"
    if mem is None:
        return "n/a"
    return f"temp {mem.temp_size_in_bytes / 2**20:.0f} MiB/device"


def run_child(args: argparse.Namespace) -> int:
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    n_dev = args.device_counts[0]
    devices = jax.devices()
    if len(devices) < n_dev:
        print(f"skipping {n_dev} devices: only {len(devices)} {devices[0].platform} device(s)")
        return 0
    mesh = Mesh(np.array(devices[:n_dev]), (AXIS,))
    watch, description = load_watch(args)
    users, movies = watch.shape
    padded = -(-users // n_dev) * n_dev
    watch_p = np.zeros((padded, movies), np.int8)
    watch_p[:users] = watch
    mask = np.arange(padded) < users
    print(
        f"backend {jax.default_backend()} ({devices[0].device_kind}), {n_dev} device(s); "
        f"data {description}, nnz {int(watch.sum())}; D={args.dim}, chains={args.chains}, "
        f"leapfrog/step={args.leapfrog}",
        flush=True,
    )

    state_specs = (P(None, AXIS), P(None, AXIS), P(), P())
    put = functools.partial(jax.device_put)
    watch_d = put(watch_p, NamedSharding(mesh, P(AXIS)))
    mask_d = put(mask, NamedSharding(mesh, P(AXIS)))

    @jax.jit
    @functools.partial(
        jax.shard_map,
        mesh=mesh,
        in_specs=(P(AXIS), P()),
        out_specs=state_specs,
        check_vma=False,
    )
    def initial_state(watch_block, key):
        # The TFP prior is the source of truth for the initial state (sharded for U, u).
        _, prior = reference_kernel(watch_block.astype(bool), axis_name=AXIS, args=args)
        return tuple(prior.sample(args.chains, seed=key))

    state = initial_state(watch_d, jax.random.PRNGKey(args.seed))
    if args.ess:
        return run_ess(args, mesh, state_specs, watch_d, mask_d, state)
    return run_throughput(args, mesh, state_specs, watch_d, mask_d, state)


def run_throughput(args, mesh, state_specs, watch_d, mask_d, state) -> int:
    import jax
    from jax.sharding import PartitionSpec as P

    def make_segment(impl: str):
        @jax.jit
        @functools.partial(
            jax.shard_map,
            mesh=mesh,
            in_specs=(P(AXIS), P(AXIS), state_specs, P()),
            out_specs=(state_specs, P()),
            check_vma=False,
        )
        def segment(watch_block, user_mask, state, key):
            kernel = build_kernel(impl, watch_block, user_mask, args)
            results = kernel.bootstrap_results(list(state))

            def body(i, carry):
                s, r, accepted = carry
                s, r = kernel.one_step(s, r, seed=jax.random.fold_in(key, i))
                return s, r, accepted + r.is_accepted.astype(jax.numpy.float32)

            zeros = jax.numpy.zeros((args.chains,), jax.numpy.float32)
            s, r, accepted = jax.lax.fori_loop(
                0, args.iterations, body, (list(state), results, zeros)
            )
            return tuple(s), (accepted / args.iterations, r.log_accept_ratio)

        return segment

    key = jax.random.PRNGKey(args.seed + 1)
    compiled, states = {}, {}
    for impl in args.impls:
        t0 = time.perf_counter()
        compiled[impl] = make_segment(impl).lower(watch_d, mask_d, state, key).compile()
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        states[impl], _ = jax.block_until_ready(compiled[impl](watch_d, mask_d, state, key))
        first_s = time.perf_counter() - t0
        print(
            f"{impl:>9}: compile {compile_s:.1f} s, first segment {first_s:.2f} s, "
            f"XLA {memory_line(compiled[impl])}, peak RSS so far {peak_rss_mib():.0f} MiB",
            flush=True,
        )

    leapfrog_per_segment = args.iterations * args.leapfrog
    times: dict[str, list[float]] = {impl: [] for impl in args.impls}
    for seg in range(args.segments):
        for impl in args.impls:
            seg_key = jax.random.fold_in(key, seg + 1)
            t0 = time.perf_counter()
            states[impl], (acc, log_ratio) = jax.block_until_ready(
                compiled[impl](watch_d, mask_d, states[impl], seg_key)
            )
            times[impl].append(time.perf_counter() - t0)
            print(
                f"  segment {seg} {impl:>9}: {times[impl][-1]:.2f} s "
                f"({leapfrog_per_segment / times[impl][-1]:.2f} leapfrog/s), "
                f"acceptance {[round(float(a), 2) for a in acc]}, last log accept ratio "
                f"{[round(float(a), 2) for a in log_ratio]}",
                flush=True,
            )
    rates = {impl: leapfrog_per_segment / statistics.median(t) for impl, t in times.items()}
    for impl, rate in rates.items():
        print(f"RESULT {impl:>9}: {rate:.2f} leapfrog steps/s (median of {args.segments})")
    if "fast" in rates and "reference" in rates:
        print(f"RESULT speedup fast/reference: {rates['fast'] / rates['reference']:.2f}x")
    for other in ("fast-diag", "baseline"):
        if "fast" in rates and other in rates:
            print(f"RESULT ratio {other}/fast: {rates[other] / rates['fast']:.3f}")
    print(f"RESULT peak RSS {peak_rss_mib():.0f} MiB (whole process)", flush=True)
    return 0


def run_ess(args, mesh, state_specs, watch_d, mask_d, state) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import PartitionSpec as P
    from tensorflow_probability.substrates import jax as tfp

    tfm = tfp.mcmc
    users, movies = int(mask_d.sum()), watch_d.shape[1]
    pairs = np.array(
        [(0, 0), (users // 3, movies // 2), (users // 2, 1), (users - 1, movies - 1)], np.int32
    )

    def pair_logits(s):
        user_emb, user_bias, movie_emb, movie_bias = s
        n_local = user_emb.shape[1]
        local = pairs[:, 0] - jax.lax.axis_index(AXIS) * n_local
        here = (local >= 0) & (local < n_local)
        idx = jnp.clip(local, 0, n_local - 1)
        logits = (
            jnp.einsum("cpd,cpd->cp", user_emb[:, idx], movie_emb[:, pairs[:, 1]])
            + user_bias[:, idx]
            + movie_bias[:, pairs[:, 1]]
        )
        return jax.lax.psum(jnp.where(here, logits, 0.0), AXIS)

    def make_run(impl: str):
        @jax.jit
        @functools.partial(
            jax.shard_map,
            mesh=mesh,
            in_specs=(P(AXIS), P(AXIS), state_specs, P()),
            out_specs=P(),
            check_vma=False,
        )
        def run(watch_block, user_mask, state, key):
            kernel = build_kernel(impl, watch_block, user_mask, args)
            kernel = tfm.DualAveragingStepSizeAdaptation(
                kernel, num_adaptation_steps=int(0.8 * args.burnin)
            )
            return tfm.sample_chain(
                args.results,
                list(state),
                kernel=kernel,
                num_burnin_steps=args.burnin,
                trace_fn=lambda s, pkr: (
                    pkr.inner_results.accepted_results.target_log_prob,
                    pair_logits(s),
                    pkr.inner_results.is_accepted,
                    pkr.new_step_size,
                ),
                seed=key,
            ).trace

        return run

    key = jax.random.PRNGKey(args.seed + 2)
    total_leapfrog = (args.burnin + args.results) * args.leapfrog
    for impl in args.impls:
        t0 = time.perf_counter()
        compiled = make_run(impl).lower(watch_d, mask_d, state, key).compile()
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        log_prob, logits, accepted, step = jax.block_until_ready(
            compiled(watch_d, mask_d, state, key)
        )
        wall = time.perf_counter() - t0
        quantities = {"log_joint": log_prob}
        for k, (i, j) in enumerate(pairs):
            quantities[f"logit[{i},{j}]"] = logits[..., k]
        print(
            f"{impl:>9}: compile {compile_s:.1f} s, run {wall:.1f} s "
            f"({args.burnin}+{args.results} steps x {args.leapfrog} leapfrog = "
            f"{total_leapfrog / wall:.2f} leapfrog/s), acceptance "
            f"{float(jnp.mean(accepted)):.2f}, final step size {float(step[-1]):.4f}",
            flush=True,
        )
        for name, x in quantities.items():
            ess = float(jnp.sum(tfm.effective_sample_size(x)))
            print(
                f"RESULT {impl:>9} {name:>16}: mean {float(jnp.mean(x)):12.3f}  "
                f"ESS {ess:7.1f}  ESS/s {ess / wall:.3f}"
            )
    print(f"RESULT peak RSS {peak_rss_mib():.0f} MiB (whole process)", flush=True)
    return 0


def _f(value: float | None, per: float | None = None) -> str:
    """A diagnostic figure (divided by `per`), or n/a when it is undefined."""
    if value is None:
        return "n/a"
    return f"{value / per:.3f}" if per else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.preset:
        return run_preset(args)
    if args.child:
        return run_child(args)
    return run_parent(args, argv)


def run_preset(args: argparse.Namespace) -> int:
    """ESS per second of the real training job for one preset, per sampler."""
    sys.path.insert(0, str(ROOT))
    from training.config import preset
    from training.data import DataError, load_source
    from training.run.loop import train

    base = preset(args.preset)
    source = args.data or base.data
    try:
        data = load_source(source, data_root=os.environ.get("SHARDLENS_DATA_DIR", "var/data"))
    except DataError as e:
        source = f"synthetic:users={args.users},movies={args.movies},dim=8,seed={args.seed}"
        print(f"note: {e}\nnote: using {source} instead (same shape as ml-1m)", flush=True)
        data = load_source(source)
    print(f"preset {args.preset}: {data.num_users} users x {data.num_movies} movies, {source}")
    for impl in args.impl.split(","):
        config = base.replace(data=source, likelihood=impl, seed=args.seed, devices=1)
        d = train(config, data).diagnostics
        wall = d["run_seconds"]
        ll, pairs = d["log_likelihood"], d["pair_logits"]
        print(
            f"RESULT {impl:9s} run {wall:7.1f} s  compile {d['compile_seconds']:5.1f} s  "
            f"{d['leapfrog_per_s']:7.2f} leapfrog/s  acceptance {d['mean_acceptance']:.2f}",
            flush=True,
        )
        print(
            f"RESULT {impl:9s} log-likelihood bulk ESS {_f(ll['ess_bulk'])} "
            f"({_f(ll['ess_bulk'], wall)}/s) split R-hat {_f(ll['rhat'])}; pair logits bulk "
            f"ESS median {_f(pairs['ess_bulk_median'])} ({_f(pairs['ess_bulk_median'], wall)}/s),"
            f" min {_f(pairs['ess_bulk_min'])}, split R-hat median {_f(pairs['rhat_median'])} "
            f"max {_f(pairs['rhat_max'])}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
