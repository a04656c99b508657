"""Parallel analysis by conversation: the same output as the serial run, from N workers.

A *unit* is what one serial analyzer reads: one file, or one rotated set. A unit is cut into
``buckets`` tasks; the task of bucket k reads the whole unit and numbers every TCP
conversation (numbering is cheap and must see everything to stay Wireshark's ``tcp.stream``)
but reassembles and analyses only the conversations whose flow hash
(``tcp.partition.flow_bucket``) is k: the hook is ``AnalysisConfig.partition``, asked where
a conversation would become an SMTP candidate. ``merge`` then puts the buckets'
conversations back in the serial order (first frame, then stream) and runs the
cross-conversation steps there, as the serial run does: the plaintext retry after a failure
(``tls-fallback``) and the per-server summary. The counters of the summary are those of the
serial run too: what every worker counts alike (frames, segments, conversations numbered) is
taken once, what each counts for its own conversations is added up.

The tasks are plain picklable values and ``run_task`` a module-level function, so the same
plan runs in a local process pool (``run_local``) or on a Dask cluster
(``engine.distributed``).

Known limits of "same output": the flow table's bound (``max_flows``, 100,000 conversations
followed at once) is per worker, so past it the serial run evicts where the workers do not;
and a conversation closed for idleness (10 minutes of silence) that later sends FIN or RST is
forgotten by the other workers' light tables after the grace but not by its own, so a
segment of it arriving after that grace could number later conversations differently.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pcapsmtp.engine.analyzer import (
    AnalysisConfig, Analyzer, FileResult, analyze_files, snaplen_note,
)

__all__ = ["Task", "buckets_for", "merge", "plan", "run_local", "run_task"]

#: Reassembly counters every worker counts alike (it sees every segment and numbers every
#: conversation); the others count per followed conversation and are added up.
SHARED_COUNTERS = frozenset({"segments", "flows_seen", "reused", "evicted", "forgotten"})

#: Summary counts each worker makes of its own conversations outside the verdicts (the
#: verdicts' counts are rebuilt by the merge): added up.
SUMMED = frozenset({"no_payload_attempts", "snaplen_cut_frames"})


@dataclass(frozen=True)
class Task:
    """One worker's share of one unit: ``paths`` (one file, or a rotated set in capture
    order), bucket ``bucket`` of ``buckets``."""

    unit: int
    paths: tuple[str, ...]
    bucket: int
    buckets: int
    config: AnalysisConfig
    engine: str = "scapy"


def buckets_for(units: int, jobs: int) -> int:
    """Buckets per unit for ``jobs`` workers: whole units when there are enough of them to
    keep every worker busy, else each unit cut so that the tasks cover the workers."""
    if jobs <= 1 or units >= jobs:
        return 1
    return -(-jobs // units)


def plan(units: list[tuple[str, ...]], config: AnalysisConfig, jobs: int,
         engine: str = "scapy") -> list[Task]:
    """The tasks for ``units`` on ``jobs`` workers, unit by unit, bucket by bucket."""
    n = buckets_for(len(units), jobs)
    return [Task(u, tuple(paths), k, n, config, engine)
            for u, paths in enumerate(units) for k in range(n)]


def run_task(task: Task) -> FileResult:
    """Run one task (in a worker process or on a Dask worker)."""
    cfg = task.config
    if task.buckets > 1:
        cfg = dataclasses.replace(cfg, partition=(task.bucket, task.buckets))
    return analyze_files(list(task.paths), cfg, engine=task.engine, post=task.buckets == 1)


def merge(parts: list[FileResult], config: AnalysisConfig) -> FileResult:
    """One unit's result from its buckets' results (given in bucket order): what the serial
    run of the unit gives."""
    if len(parts) == 1 and parts[0].posted:
        return parts[0]
    first = parts[0]
    convs = [c for p in parts for c in p.conversations]
    convs.sort(key=lambda c: (c["first_frame"], c["stream"]))
    post = Analyzer(config, file=first.path)
    for conv in convs:
        post.post(conv)
    if first.pieces:
        from pcapsmtp.engine.rotated import localiser
        locate = localiser(first.pieces)
        convs = [locate(c) for c in convs]
    summary = post.summary()
    for key, value in first.summary.items():
        if key == "reassembly":
            summary[key] = {name: (count if name in SHARED_COUNTERS
                                   else sum(p.summary[key][name] for p in parts))
                            for name, count in value.items()}
        elif key in SUMMED:
            summary[key] = sum(p.summary.get(key, 0) for p in parts)
            if key == "snaplen_cut_frames":
                # every worker decodes every frame: those that cut frames saw the same length
                snaps = [p.summary["snaplen"] for p in parts if p.summary.get("snaplen")]
                if snaps:
                    summary["snaplen"] = min(snaps)
        elif key not in ("conversations", "outcomes", "reasons", "servers", "snaplen"):
            summary[key] = value            # packets, frames: every worker counts them all
    # the decoder's notes are every worker's; the snap-length note is of the whole unit
    own = snaplen_note(first.summary)
    notes = [n for n in first.notes if n != own]
    cut = snaplen_note(summary)
    if cut is not None:
        notes.append(cut)
    return FileResult(first.path, convs, summary, notes, first.error,
                      list(first.pieces), True)


def merged(tasks: list[Task], results: Iterable[FileResult]) -> Iterator[FileResult]:
    """The units' results, in unit order, from the tasks' results given in task order."""
    pending: list[FileResult] = []
    unit = None
    for task, res in zip(tasks, results):
        if unit is not None and task.unit != unit:
            yield merge(pending, tasks[0].config)
            pending = []
        unit = task.unit
        pending.append(res)
    if pending:
        yield merge(pending, tasks[0].config)


def run_local(tasks: list[Task], jobs: int) -> Iterator[FileResult]:
    """The tasks on ``jobs`` local processes; units' results in order."""
    if jobs <= 1 or len(tasks) <= 1:
        yield from merged(tasks, map(run_task, tasks))
        return
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
        yield from merged(tasks, pool.map(run_task, tasks))
