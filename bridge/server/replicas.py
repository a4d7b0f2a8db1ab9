"""Many replicas of one world behind one daemon: ReplicaPool is a World whose episodes live in Ray actors.

The daemon keeps the one ZeroMQ endpoint and its protocol handling; it serves a ReplicaPool like any world.
The pool starts N Ray actors (Replica), each loading its own copy of the world with load_world (so "maze", a
model directory and "lingbot-fast:PATH" all work), on this machine or anywhere in a Ray cluster:

- placement: a new episode goes to the live replica with the most free episode memory: its budget less what
  the episodes placed there take (World.episode_bytes: the KV cache of a neural world, one frame of pixels for
  the maze); ties go to the replica with fewer episodes. No replica with room: the episode is refused;
- affinity: an episode stays on its replica (a reset of a known key resets it there); close frees its memory;
- a step groups the actions by replica, steps every replica at once (Ray futures) and gathers the frames;
- a replica that dies (or does not answer within `call_timeout_s`) loses only its episodes: the call raises
  runtime.world.EpisodesLost with the other replicas' frames, the daemon ends those sessions with error 503
  (their clients may say hello again and land on a live replica), and the replica takes no more episodes.

A replica's budget: `memory_bytes` when given (serve --replica-memory-gb), else measured: on CUDA the GPU's
free memory once the world has loaded, less a tenth for activations; on CPU the host's available memory, shared
by the replicas on that host. Measured budgets are evened out to the smallest (replicas are meant to be alike).
Each CUDA replica holds one GPU (Ray's num_gpus=1: the actor sees it as "cuda"); each reserves `cpus` CPUs.

Every frame waits for the slowest replica in its batch (one step gathers all), so replicas should be alike.
Ray is imported only here, when a pool is built: `pip install 'worldbridge[cluster]'`. docs/scaling.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bridge.server.worlds import load_world
from runtime.world import Action, EpisodesLost, Frame, World

log = logging.getLogger("worldbridge.replicas")

CUDA_HEADROOM = 0.1  # of a GPU's free memory left to activations when no budget is given


def import_ray() -> Any:
    """Ray, or a one-line error that says how to get it."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("serving replicas needs Ray: pip install 'worldbridge[cluster]'") from None
    return ray


def memory_budget(device: str) -> int:
    """Bytes a replica on `device` may give its episodes when no budget is set (see the module doc)."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free * (1 - CUDA_HEADROOM))
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # no such sysconf here: no limit
        return 1 << 62


class Replica:
    """One world in its own process: the body of a Ray actor (ReplicaPool wraps it with ray.remote)."""

    def __init__(self, spec: str, device: str, steps: int | None, dtype: str, backend: str,
                 memory_bytes: int | None):
        self.world = load_world(spec, device=device, steps=steps, dtype=dtype, backend=backend)
        self.device = device
        self.measured = memory_bytes is None
        self.budget = memory_budget(device) if self.measured else int(memory_bytes)

    def info(self) -> dict[str, Any]:
        w = self.world
        return {"name": w.name, "fov_deg": w.fov_deg, "fps": w.fps, "capabilities": tuple(w.capabilities),
                "guidance_buffers": tuple(w.guidance_buffers), "guidance_scales": tuple(w.guidance_scales),
                "budget_bytes": self.budget, "measured": self.measured, "host": socket.gethostname(),
                "pid": os.getpid(), "device": self.device}

    def sizes(self, width: int, height: int) -> tuple[int, int, int]:
        """The frame size the world renders for a request of (width, height), and one such episode's bytes."""
        w, h = self.world.frame_size(width, height)
        return w, h, int(self.world.episode_bytes(w, h))

    def reset(self, key: Hashable, seed: int, width: int, height: int, pose: np.ndarray | None,
              image: np.ndarray | None) -> None:
        self.world.reset(key, seed, width, height, pose, image)

    def step(self, actions: dict[Hashable, Action]) -> dict[Hashable, Frame]:
        return self.world.step(actions)

    def close(self, key: Hashable) -> None:
        self.world.close(key)

    def set_prompt(self, key: Hashable, prompt: str) -> None:
        self.world.set_prompt(key, prompt)


class HostLost(Exception):
    """A replica is gone (its process, its node, or it stopped answering); the message says which and why."""


@dataclass
class _Replica:
    index: int
    actor: Any
    info: dict[str, Any]
    budget: int
    used: int = 0  # bytes of the episodes placed here
    keys: set = field(default_factory=set)
    lost: str = ""  # why it is gone; "" while alive

    @property
    def free(self) -> int:
        return self.budget - self.used

    def label(self) -> str:
        return f"replica {self.index} ({self.info['host']}, pid {self.info['pid']})"


class ReplicaPool(World):
    """`replicas` copies of world `spec` in Ray actors, serving as one World (see the module doc).

    memory_bytes: each replica's episode budget (one number, or one per replica); None: from the device.
    address: the Ray cluster to join when Ray is not initialised yet (None: a local instance, "auto": the
    cluster this machine belongs to); a pool that initialised Ray shuts it down in shutdown().
    cpus: CPUs each replica reserves; device "cuda..." gives each replica one GPU.
    call_timeout_s: the longest a replica may take to answer a step or reset before it counts as lost.
    start_timeout_s: the longest the replicas may take to start and load the world."""

    def __init__(self, spec: str, replicas: int, *, device: str = "cpu", steps: int | None = None,
                 dtype: str = "auto", backend: str = "torch", memory_bytes: int | Sequence[int] | None = None,
                 address: str | None = None, cpus: float = 1.0, call_timeout_s: float = 300.0,
                 start_timeout_s: float = 1800.0):
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, not {replicas}")
        budgets = list(memory_bytes) if isinstance(memory_bytes, Sequence) else [memory_bytes] * replicas
        if len(budgets) != replicas:
            raise ValueError(f"{len(budgets)} memory budgets for {replicas} replicas")
        self._ray = ray = import_ray()
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=address)
        self.call_timeout_s = call_timeout_s
        gpus = 1 if device.startswith("cuda") else 0
        have, need = ray.cluster_resources(), {"CPU": cpus * replicas, "GPU": gpus * replicas}
        short = [f"{n:g} {k}s (the Ray cluster has {have.get(k, 0):g})" for k, n in need.items() if n > have.get(k, 0)]
        if short:  # Ray would keep the missing replicas pending, and the daemon would wait for them
            if self._owns_ray:
                ray.shutdown()
            raise ValueError(f"{replicas} replicas need {' and '.join(short)}")
        remote = ray.remote(Replica).options(num_cpus=cpus, num_gpus=gpus, max_restarts=0)
        actor_device = "cuda" if gpus else device  # Ray shows each actor only its own GPU
        actors = [remote.remote(spec, actor_device, steps, dtype, backend, b) for b in budgets]
        try:
            infos = ray.get([a.info.remote() for a in actors], timeout=start_timeout_s)
        except BaseException as e:
            for a in actors:
                ray.kill(a)
            if self._owns_ray:
                ray.shutdown()
            if isinstance(e, ray.exceptions.RayActorError):  # its last line is the world's own error
                lines = str(e).strip().splitlines()
                raise RuntimeError(f"a replica did not start: {lines[-1] if lines else e}") from None
            if isinstance(e, ray.exceptions.GetTimeoutError):
                raise RuntimeError(f"the replicas did not start within {start_timeout_s:g} s") from None
            raise
        self._replicas = [_Replica(i, a, info, info["budget_bytes"]) for i, (a, info) in
                          enumerate(zip(actors, infos))]
        self._even_out([r for r in self._replicas if r.info["measured"]])
        first = infos[0]
        self.name, self.fov_deg, self.fps = first["name"], first["fov_deg"], first["fps"]
        self.capabilities = tuple(first["capabilities"])
        # 1.3: what the daemon's welcome offers for guidance (Action.guidance travels to the replica with the action)
        self.guidance_buffers = tuple(first.get("guidance_buffers", ()))
        self.guidance_scales = tuple(first.get("guidance_scales", (1,)))
        self._where: dict[Hashable, _Replica] = {}  # episode -> its replica
        self._cost: dict[Hashable, int] = {}  # episode -> the bytes it was placed with
        self._lost: dict[Hashable, str] = {}  # episodes lost with their replica, until closed or reset
        self._sizes: dict[tuple[int, int], tuple[int, int, int]] = {}
        self._lock = threading.Lock()  # frame_size runs on the daemon's socket thread, the rest on its stepper
        for r in self._replicas:
            log.info("%s: %s on %s, %.1f GiB for episodes", r.label(), self.name, r.info["device"],
                     r.budget / 2**30)

    # ------------------------------------------------------------------------------------------- World

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        w, h, _ = self._sizes_of(width, height)
        return w, h

    def episode_bytes(self, width: int, height: int) -> int:
        return self._sizes_of(width, height)[2]

    def reset(self, key: Hashable, seed: int, width: int, height: int, pose: np.ndarray | None = None,
              image: np.ndarray | None = None) -> None:
        with self._lock:
            self._lost.pop(key, None)  # a lost episode is forgotten: this starts a new one
            home = self._where.get(key)
        if home is not None:  # affinity: it stays where it is
            try:
                self._call(home, home.actor.reset.remote(key, seed, width, height, pose, image))
            except HostLost as e:
                self._forget(key)
                raise EpisodesLost({}, {key: str(e)}) from None
            return
        cost = self.episode_bytes(width, height)
        while True:
            target = self._place(key, cost)
            try:
                self._call(target, target.actor.reset.remote(key, seed, width, height, pose, image))
            except HostLost:
                continue  # it died before the episode began: try the next
            with self._lock:
                if target.lost:  # lost while the reset ran
                    continue
                self._where[key], self._cost[key] = target, cost
                target.keys.add(key)
                target.used += cost
            return

    def step(self, actions: dict[Hashable, Action]) -> dict[Hashable, Frame]:
        groups: dict[int, dict[Hashable, Action]] = {}
        lost: dict[Hashable, str] = {}
        with self._lock:
            for key, action in actions.items():
                if key in self._lost:
                    lost[key] = self._lost[key]
                elif key in self._where:
                    groups.setdefault(self._where[key].index, {})[key] = action
                else:
                    raise KeyError(f"episode {key!r} was never reset")
        refs = [(self._replicas[i], sub, self._replicas[i].actor.step.remote(sub)) for i, sub in groups.items()]
        frames: dict[Hashable, Frame] = {}
        failure: BaseException | None = None
        deadline = time.monotonic() + self.call_timeout_s
        for replica, sub, ref in refs:
            try:
                frames.update(self._call(replica, ref, deadline - time.monotonic()))
            except HostLost as e:
                lost.update(dict.fromkeys(sub, str(e)))
            except Exception as e:  # the world failed (a bug, an OOM): the daemon retries one by one
                failure = failure or e
        if failure is not None:
            raise failure
        if lost:
            raise EpisodesLost(frames, lost)
        return frames

    def close(self, key: Hashable) -> None:
        home = self._forget(key)
        if home is not None and not home.lost:
            home.actor.close.remote(key)  # in order with this replica's later calls; nothing to wait for

    def set_prompt(self, key: Hashable, prompt: str) -> None:
        with self._lock:
            home = self._where.get(key)
        if home is None:
            raise KeyError(f"episode {key!r} was never reset")
        try:
            self._call(home, home.actor.set_prompt.remote(key, prompt))
        except HostLost as e:
            raise EpisodesLost({}, {key: str(e)}) from None

    # ------------------------------------------------------------------------------------- the replicas

    def status(self) -> list[dict[str, Any]]:
        """Each replica: where it runs, its budget and use, its episodes, and why it was lost ("" if alive)."""
        with self._lock:
            return [{"index": r.index, "host": r.info["host"], "pid": r.info["pid"], "device": r.info["device"],
                     "budget_bytes": r.budget, "used_bytes": r.used, "episodes": len(r.keys), "lost": r.lost}
                    for r in self._replicas]

    def replica_of(self, key: Hashable) -> int | None:
        """The index of the replica hosting episode `key` (None: not placed, or lost)."""
        with self._lock:
            home = self._where.get(key)
        return None if home is None else home.index

    def actor(self, index: int) -> Any:
        """Replica `index`'s Ray actor handle (tests kill it)."""
        return self._replicas[index].actor

    def shutdown(self) -> None:
        """Stop every replica (and Ray, when this pool started it)."""
        for r in self._replicas:
            with contextlib.suppress(Exception):  # already gone
                self._ray.kill(r.actor)
        if self._owns_ray:
            self._ray.shutdown()

    @staticmethod
    def _even_out(measured: list[_Replica]) -> None:
        """Measured budgets become one: the smallest, where CPU replicas share their host's memory. Readings
        differ by a few MB between alike devices, which would otherwise send every session to the first."""
        if not measured:
            return
        on_host = Counter(r.info["host"] for r in measured if r.info["device"] == "cpu")
        share = min(r.budget // (on_host[r.info["host"]] if r.info["device"] == "cpu" else 1) for r in measured)
        for r in measured:
            r.budget = share

    def _sizes_of(self, width: int, height: int) -> tuple[int, int, int]:
        with self._lock:
            known = self._sizes.get((width, height))
        if known is not None:
            return known
        for r in self._replicas:
            if r.lost:
                continue
            try:
                sizes = tuple(self._call(r, r.actor.sizes.remote(width, height)))
            except HostLost:
                continue
            with self._lock:
                if len(self._sizes) > 4096:  # clients asking for ever new sizes: ask the replicas again
                    self._sizes.clear()
                self._sizes[(width, height)] = sizes
            return sizes
        raise RuntimeError(f"all {len(self._replicas)} replicas are lost")

    def _place(self, key: Hashable, cost: int) -> _Replica:
        """The live replica with the most free memory (ties: fewer episodes, then the lower index)."""
        with self._lock:
            live = [r for r in self._replicas if not r.lost]
            best = max(live, key=lambda r: (r.free, -len(r.keys), -r.index), default=None)
            if best is not None and best.free >= cost:
                return best
            if best is None:
                reason = f"all {len(self._replicas)} replicas are lost"
            else:
                reason = (f"no replica has room for another episode ({cost / 2**20:.2f} MiB; the most free: "
                          f"{max(best.free, 0) / 2**20:.2f} MiB)")
            self._lost[key] = reason  # its steps say so too, until it is closed or reset
        raise EpisodesLost({}, {key: reason})

    def _call(self, replica: _Replica, ref: Any, timeout: float | None = None) -> Any:
        """The result of a call to `replica`; HostLost (and the replica marked lost) when it is gone."""
        e = self._ray.exceptions
        gone = (e.RayActorError, e.ObjectLostError, e.WorkerCrashedError, e.NodeDiedError)
        try:
            return self._ray.get(ref, timeout=max(0.0, self.call_timeout_s if timeout is None else timeout))
        except e.GetTimeoutError:
            reason = f"{replica.label()} did not answer within {self.call_timeout_s:g} s"
            self._ray.kill(replica.actor)
        except gone as error:
            lines = str(error).strip().splitlines()
            reason = f"{replica.label()} is gone: {lines[0] if lines else type(error).__name__}"
        self._mark_lost(replica, reason)
        raise HostLost(reason)

    def _mark_lost(self, replica: _Replica, reason: str) -> None:
        with self._lock:
            if replica.lost:
                return
            replica.lost = reason
            for key in replica.keys:
                self._lost[key] = reason
                self._where.pop(key, None)
                self._cost.pop(key, None)
            count = len(replica.keys)
            replica.keys.clear()
            replica.used = 0
            alive = sum(not r.lost for r in self._replicas)
        log.warning("%s; %d episode(s) lost, %d of %d replicas left", reason, count, alive, len(self._replicas))

    def _forget(self, key: Hashable) -> _Replica | None:
        with self._lock:
            self._lost.pop(key, None)
            home = self._where.pop(key, None)
            cost = self._cost.pop(key, 0)
            if home is not None:
                home.keys.discard(key)
                home.used -= cost
            return home
