"""`python -m storage`: list, show, verify, pin and gc posterior versions."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from storage import layout
from storage.convergence import Convergence, read_convergence
from storage.errors import CorruptVersionError, NoPosteriorError, StoreError
from storage.posterior import VersionInfo, gc, list_versions, open_posterior
from storage.retention import default_keep, hold, release_hold
from storage.store_settings import StoreSettings
from storage.verify import check_files, read_manifest

__all__ = [
    "build_parser",
    "cmd_gc",
    "cmd_list",
    "cmd_show",
    "cmd_verify",
    "main",
]

EXIT_OK, EXIT_CORRUPT, EXIT_USAGE, EXIT_MISSING = 0, 1, 2, 3


def _info_dict(info: VersionInfo) -> dict[str, Any]:
    return {**info._asdict(), "path": str(info.path)}


def cmd_list(store: Path, *, as_json: bool, out: TextIO) -> int:
    infos = list_versions(store)
    if as_json:
        json.dump({"store": str(store), "versions": [_info_dict(i) for i in infos]}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not infos:
        out.write(f"no versions in {store}\n")
        return EXIT_OK
    out.write(
        f"{'version':<30} {'created':<28} {'S x C':>9} {'users':>7} {'movies':>7} "
        f"{'D':>3} {'size':>10}  flags\n"
    )
    for i in reversed(infos):
        flags = ",".join(
            f
            for f, on in (
                ("latest", i.is_latest),
                (f"pinned:{i.pins}", i.pins),
                ("unreadable", i.error),
                ("converged", i.converged is True),
                ("unconverged", i.converged is False),
                ("convergence-not-recorded", i.converged is None and not i.error),
            )
            if on
        )
        out.write(
            f"{i.version:<30} {i.created_at or '?':<28} {f'{i.num_draws}x{i.num_chains}':>9} "
            f"{i.num_users or '?':>7} {i.num_movies or '?':>7} {i.latent_dim or '?':>3} "
            f"{_size(i.size_bytes):>10}  {flags}\n"
        )
    return EXIT_OK


def cmd_show(store: Path, version: str, *, as_json: bool, out: TextIO) -> int:
    resolved = layout.resolve(store, version)
    manifest = read_manifest(layout.versions_dir(store) / resolved, resolved)
    if as_json:
        json.dump(manifest, out, indent=2, sort_keys=True)
        out.write("\n")
        return EXIT_OK
    shapes = manifest["shapes"]
    lines = [
        f"version     {resolved}{'  (latest)' if resolved == layout.current_version(store) else ''}",
        f"created     {manifest['created_at']}",
        f"data        {manifest['data'].get('source')}  fingerprint "
        f"{str(manifest['data'].get('fingerprint'))[:16]}",
        f"samples     {shapes['draws']} draws x {shapes['chains']} chains; "
        f"{shapes['users']} users, {shapes['movies']} movies, latent_dim {shapes['latent_dim']}",
        f"code        {manifest.get('code')}",
        f"config      {json.dumps(manifest['config'], sort_keys=True)}",
        f"convergence {_convergence_line(read_convergence(manifest))}",
        f"diagnostics {json.dumps(manifest.get('diagnostics'), sort_keys=True)}",
        "files:",
        *(
            f"  {name:<36} {_size(e['bytes']):>10}  {e.get('dtype', '')}{e.get('shape', '')}"
            for name, e in sorted(manifest["files"].items())
        ),
    ]
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


def _convergence_line(record: Convergence) -> str:
    if record.status == "not_recorded":
        return "not recorded" + "".join(f" ({f})" for f in record.failures)
    if record.status == "converged":
        return f"converged  figures {json.dumps(record.figures, sort_keys=True)}"
    return "NOT converged: " + "; ".join(record.failures)


def cmd_verify(store: Path, version: str | None, *, as_json: bool, out: TextIO) -> int:
    """Verify one version (or every version); exit 1 naming the first bad file of each."""
    if version is not None:
        targets = [layout.resolve(store, version)]
    else:
        targets = layout.version_ids(store)
        if not targets:
            raise NoPosteriorError(f"the posterior store {store} holds no version to verify")
    results = []
    for target in targets:
        path = layout.versions_dir(store) / target
        try:
            check_files(path, read_manifest(path, target), hashes=True)
            open_posterior(store, target, verify=False).close()  # headers agree with manifest
            results.append({"version": target, "ok": True, "file": None, "error": None})
        except CorruptVersionError as exc:
            results.append({"version": target, "ok": False, "file": exc.file, "error": str(exc)})
    ok = all(r["ok"] for r in results)
    if as_json:
        json.dump({"ok": ok, "versions": results}, out, indent=2)
        out.write("\n")
    else:
        for r in results:
            out.write(
                f"{r['version']}  ok\n"
                if r["ok"]
                else f"{r['version']}  BAD {r['file']}: {r['error']}\n"
            )
    return EXIT_OK if ok else EXIT_CORRUPT


def cmd_pin(store: Path, version: str, *, remove: bool, as_json: bool, out: TextIO) -> int:
    """Hold a version so gc never collects it, or (`remove`) release the hold."""
    if remove:
        held = release_hold(store, version)
        if not held:
            raise NoPosteriorError(f"version {version} is not held in {store}")
        resolved = version
    else:
        resolved = hold(store, version)
    if as_json:
        json.dump({"version": resolved, "held": not remove}, out)
        out.write("\n")
    else:
        out.write(f"{'released' if remove else 'holding'} {resolved}\n")
    return EXIT_OK


def cmd_gc(store: Path, keep: int | None, *, as_json: bool, out: TextIO) -> int:
    report = gc(store, keep=keep)
    if as_json:
        json.dump(
            {
                "removed": report.removed,
                "kept": report.kept,
                "removed_temp": report.removed_temp,
                "removed_checkpoints": report.removed_checkpoints,
            },
            out,
            indent=2,
        )
        out.write("\n")
    else:
        out.write(
            f"kept {len(report.kept)} version(s), removed {len(report.removed)}"
            f"{': ' + ', '.join(report.removed) if report.removed else ''}; "
            f"removed {len(report.removed_temp)} stale temp folder(s) and "
            f"{len(report.removed_checkpoints)} finished job checkpoint(s)\n"
        )
    return EXIT_OK


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        type=Path,
        default=None,
        help=f"store folder (default ${layout.STORE_ENV} or {layout.DEFAULT_STORE})",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(
        prog="python -m storage", description="Inspect and maintain the posterior store."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[common], help="list versions, newest first")
    show = sub.add_parser("show", parents=[common], help="show a version's manifest")
    show.add_argument("version", help="a version id or 'latest'")
    verify = sub.add_parser(
        "verify", parents=[common], help="check checksums (exit 1 naming the bad file)"
    )
    verify.add_argument("version", nargs="?", help="a version id or 'latest' (default: all)")
    held = sub.add_parser(
        "pin", parents=[common], help="keep a version from gc (until `pin --remove`)"
    )
    held.add_argument("version", help="a version id or 'latest'")
    held.add_argument("--remove", action="store_true", help="release the hold")
    collect = sub.add_parser(
        "gc",
        parents=[common],
        help="delete old versions, temp folders and finished jobs' checkpoints",
    )
    collect.add_argument(
        "--keep",
        type=int,
        default=None,
        help="versions to keep (default $SHARDLENS_KEEP_VERSIONS or 5)",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 corrupt, 2 usage, 3 no such version)."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    settings = StoreSettings()  # SHARDLENS_* and .env, read once
    store = args.store or layout.default_store_dir(settings)
    try:
        if args.command == "list":
            return cmd_list(store, as_json=args.json, out=out)
        if args.command == "show":
            return cmd_show(store, args.version, as_json=args.json, out=out)
        if args.command == "verify":
            return cmd_verify(store, args.version, as_json=args.json, out=out)
        if args.command == "pin":
            return cmd_pin(store, args.version, remove=args.remove, as_json=args.json, out=out)
        keep = default_keep(settings) if args.keep is None else args.keep
        return cmd_gc(store, keep, as_json=args.json, out=out)
    except NoPosteriorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_MISSING
    except CorruptVersionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CORRUPT
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
