"""Pieces shared by the CLI tools: model options, output paths, batches."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import click

from plic.errors import PlicError


def model_options(f):
    f = click.option("--exact", is_flag=True,
                     help="float64 transforms: the same pixels on every machine (about 3x slower on a CPU); "
                          "by default float32 transforms, within one level of them")(f)
    # float32 became the default; --fast is still accepted from older scripts
    f = click.option("--fast", is_flag=True, hidden=True)(f)
    f = click.option("--device", default="cpu", show_default=True,
                     help="where the transforms run (entropy coding always runs on the CPU)")(f)
    f = click.option("--model-path", type=click.Path(dir_okay=False),
                     help="weights file (.safetensors) instead of the shipped model")(f)
    return f


def require_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PlicError("--device cuda asked for, but no CUDA device is available")


def load_codec(model: Optional[str], model_path: Optional[str], device: str, exact: bool = False,
               ladder: bool = True):
    """A weight file as a codec, or a shipped model by name (a ladder where ``plic.zoo.LADDERS`` gives it
    rungs below, unless ``ladder`` is False)."""
    from plic.codec import Codec
    from plic.ladder import shipped_codec
    from plic.zoo import DEFAULT_MODEL, load_weights

    require_device(device)
    if model_path:
        m = load_weights(model_path, device)
        if model and m.registry_name != model:
            raise PlicError(f"{model_path} holds a {m.registry_name!r} model, not {model!r}")
        return Codec(m, device=device, exact=exact)
    return shipped_codec(model or DEFAULT_MODEL, device, exact=exact, ladder=ladder)


#: the file name that means standard input or standard output
STDIO = "-"


def is_stdio(path: Optional[Path]) -> bool:
    return path is not None and str(path) == STDIO


def batch_options(f):
    f = click.option("--skip-existing", is_flag=True,
                     help="leave outputs that already exist as they are and code only the missing ones "
                          "(to finish an interrupted folder)")(f)
    f = click.option("-j", "--jobs", type=click.IntRange(min=1),
                     help="worker processes for a folder [default: the number of cores]")(f)
    return f


def plan_outputs(inp: Path, out: Optional[Path], in_suffixes: Iterable[str], out_suffix: str,
                 force: bool) -> Tuple[List[Tuple[Path, Path]], bool]:
    """(input, output) pairs for a file, a folder or standard input (``-``), refusing to overwrite.

    Returns the pairs and whether the input was a folder.
    """
    suffixes = {s.lower() for s in in_suffixes}
    if is_stdio(inp):
        if out is None:
            raise PlicError("reading standard input needs -o FILE (or -o - for standard output)")
        pairs, folder = [(inp, out)], False
    elif not inp.exists():
        raise PlicError(f"{inp}: no such file or folder")
    elif inp.is_dir():
        files = sorted(p for p in inp.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            raise PlicError(f"{inp}: no input files ({', '.join(sorted(suffixes))}) in this folder")
        if out is None:
            raise PlicError("a folder input needs -o OUTPUT_FOLDER")
        if is_stdio(out):
            raise PlicError("a folder cannot be written to standard output")
        if out.exists() and not out.is_dir():
            raise PlicError(f"{out}: exists and is not a folder")
        pairs = [(p, out / p.relative_to(inp).with_suffix(out_suffix)) for p in files]
        folder = True
    else:
        target = out if out is not None else inp.with_suffix(out_suffix)
        if not is_stdio(target) and target.is_dir():
            target = target / inp.with_suffix(out_suffix).name
        pairs = [(inp, target)]
        folder = False
    for src, dst in pairs:
        if is_stdio(dst):
            continue
        if not is_stdio(src) and dst.resolve() == src.resolve():
            raise PlicError(f"{dst}: output would overwrite the input")
        if dst.exists() and not force:
            raise PlicError(f"{dst}: exists (use --force to overwrite, or --skip-existing)")
    return pairs, folder


def read_input(src: Path) -> bytes:
    """The bytes of an input file, or of standard input for ``-``."""
    import sys

    if is_stdio(src):
        return sys.stdin.buffer.read()
    try:
        return src.read_bytes()
    except OSError as exc:
        raise PlicError(f"{src}: cannot read ({exc.strerror})") from None


# ------------------------------------------------------------------ batches
_worker_process = None


def _worker_init(factory, options: dict, threads: int) -> None:
    """In a worker process: one image at a time on ``threads`` torch threads."""
    import warnings

    global _worker_process
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(threads)
    _worker_process = factory(**options)


def _worker_run(src: Path, dst: Path):
    """One file in a worker; PlicErrors come back as a message (they are not all picklable alike)."""
    try:
        return True, _worker_process(src, dst)
    except PlicError as exc:
        return False, str(exc)


def default_jobs() -> int:
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run_batch(pairs, folder: bool, quiet: bool, process, jobs: Optional[int] = None,
              factory=None, skip_existing: bool = False) -> Tuple[List[dict], float]:
    """Run ``process(src, dst) -> {"bpp", "psnr"?, "msg"}`` over the pairs.

    A folder batch reports a failing file on one line and goes on; the
    command fails at the end if any file failed. Returns results and seconds.

    With ``jobs`` > 1 and a ``factory`` -- ``(function, options)``, where
    ``function(**options)`` builds ``process`` -- a folder is coded by that many
    worker processes, each with an equal share of the cores' threads. Every
    output is written atomically, so an interrupted batch leaves only
    complete files, which ``skip_existing`` then keeps. Messages, the progress
    bar and the summary go to standard error (standard output may be a file).
    """
    import time

    t0 = time.perf_counter()
    skipped = 0
    if skip_existing:
        todo = [(s, d) for s, d in pairs if is_stdio(d) or not d.exists()]
        skipped = len(pairs) - len(todo)
        pairs = todo
    jobs = min(jobs or default_jobs(), len(pairs))
    tally = _Tally(pairs, folder, quiet)
    done, bar = tally.done, tally.bar
    try:
        if folder and jobs > 1 and factory is not None:
            _run_parallel(pairs, jobs, factory, done)
        else:
            _run_serial(pairs, folder, process, done)
    finally:
        bar.close()
    results = [r for r in tally.results if r is not None]
    elapsed = time.perf_counter() - t0
    _summary(results, skipped, elapsed)
    if tally.failed:
        raise PlicError(f"{len(tally.failed)} of {len(tally.failed) + len(results)} file(s) failed")
    return results, elapsed


class _Tally:
    """Results in input order, failures, and the progress bar (folders) or one line per file."""

    def __init__(self, pairs, folder: bool, quiet: bool):
        import sys

        from tqdm import tqdm

        self.pairs, self.folder, self.quiet = pairs, folder, quiet
        self.results, self.failed = [None] * len(pairs), []
        self.bar = tqdm(total=len(pairs), disable=not folder or quiet, unit="img", dynamic_ncols=True, file=sys.stderr)

    def done(self, i, ok, value) -> None:
        import sys

        self.bar.update(1)
        if not ok:  # only a folder gets here: a single file's error is raised where it happens
            self.failed.append(self.pairs[i][0])
            self.bar.write(f"plic: {value}", file=sys.stderr)
            return
        self.results[i] = value
        if self.folder:
            got = [r for r in self.results if r is not None]
            self.bar.set_postfix(bpp=f"{sum(x['bpp'] for x in got) / len(got):.3f}")
        elif not self.quiet:
            click.echo(value["msg"], err=True)


def _run_serial(pairs, folder: bool, process, done) -> None:
    for i, (src, dst) in enumerate(pairs):
        try:
            r = process(src, dst)
        except PlicError as exc:
            if not folder:
                raise
            done(i, False, str(exc))
            continue
        done(i, True, r)


def _summary(results: List[dict], skipped: int, elapsed: float) -> None:
    """One line on standard error: images, mean bpp and PSNR, time, and what was skipped."""
    if results:
        bpps = [r["bpp"] for r in results]
        psnrs = [r["psnr"] for r in results if r.get("psnr") is not None]
        summary = f"{len(results)} image(s), mean {sum(bpps) / len(bpps):.4f} bpp"
        if psnrs:
            summary += f", mean PSNR {sum(psnrs) / len(psnrs):.2f} dB"
        click.echo(f"{summary}, {elapsed:.1f} s" + (f" ({skipped} already there, skipped)" if skipped else ""), err=True)
    elif skipped:
        click.echo(f"0 image(s): all {skipped} outputs already there, skipped", err=True)


def _run_parallel(pairs, jobs: int, factory, done) -> None:
    """Code ``pairs`` in ``jobs`` spawned worker processes, reporting each result to ``done`` in input order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    function, options = factory
    threads = max(1, default_jobs() // jobs)
    # spawn, not fork: a forked copy of a process that has started torch's
    # thread pools can deadlock
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(function, options, threads))
    try:
        futures = [pool.submit(_worker_run, src, dst) for src, dst in pairs]
        for i, fut in enumerate(futures):
            ok, value = fut.result()
            done(i, ok, value)
    except BaseException:
        # a Ctrl-C reaches the workers too; each removes its temporary file
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
