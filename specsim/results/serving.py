"""Request-level serving: continuous batching of arriving requests on one accelerator (SimPy processes).

Two processes share one clock (seconds): **arrivals** put each request in a FIFO queue at its arrival
time; the **server** runs iterations back to back while there is work and sleeps otherwise. Policy of one
iteration (Orca-style iteration-level scheduling, chosen here):

1. *gamma*: a speculative accelerator picks its draft length g: the configured one, or with
   ``gamma="auto"`` the g in 1..:data:`AUTO_GAMMAS` maximising expected tokens/s of the running batch,
   E[tokens per round | g] x batch / (draft passes + verify pass), from the memoised pass costs at the
   batch's size and mean context (acceptance from the accelerator's profile);
2. *admission*: waiting requests join in arrival order while the batch holds fewer than ``max_batch``
   sequences and the iteration's tokens (g+1 per running sequence, or 1 for autoregressive decoding,
   plus the prompts admitted) stay within ``token_budget``; the first waiting prompt joins whatever its
   length when no other prompt has joined yet (no starvation; chunked prefill is not modelled);
3. *passes*: the admitted prompts' prefill, one batched pass per level (the draft level's prefill takes
   prompt + 1 tokens, as :func:`specsim.trace.schedule.shape_trace` does); then the sequences running
   before this iteration decode: speculative: g draft passes of one token each, then one verify pass of
   g+1 tokens per sequence; autoregressive: one pass of one token per sequence;
4. *tokens*: a prefilled request gets its first token at the end of the iteration and decodes from the
   next one; a speculative sequence accepts its own count, drawn from the profile with a uniform of its
   own stream (request index, round): the same draws on every accelerator (common random numbers), so
   the sequences' KV lengths diverge; it gains accepted + 1 tokens (at most what it still needs). A
   request leaves when it has all its output tokens.

The simulation ends when every request has left, or at the horizon: then requests still queued or
running are *unfinished*, later ones *not arrived* (every request is exactly one of finished, unfinished,
not arrived). Iteration costs come from the cycle engine (:mod:`specsim.results.serving_costs`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import simpy

from specsim.results.serving_costs import (
    AUTO_GAMMAS,
    DRAFT_LEVEL,
    PassCost,
    PassCosts,
    best_gamma,
    round_cost,
    sum_costs,
)
from specsim.results.serving_requests import Request
from specsim.trace.schedule import AcceptanceProfile

__all__ = ["AUTO_GAMMAS", "DRAFT_LEVEL", "Acceptance", "Policy", "RequestResult", "ServingRun", "serve"]


@dataclass(frozen=True)
class Policy:
    """Scheduling limits: sequences per iteration, tokens per iteration, horizon in seconds (inf: until
    every request has left), gamma (None: the accelerator's configured one; 0: auto)."""

    max_batch: int
    token_budget: int
    horizon_s: float = math.inf
    gamma: int | None = None


@dataclass(frozen=True)
class Acceptance:
    """A speculative accelerator's acceptance: survival P(accepted >= i), i = 0..max gamma."""

    survival: np.ndarray
    source: str

    @classmethod
    def of(cls, source, gamma: int) -> Acceptance:
        """From an alpha or a speculative trace (:meth:`AcceptanceProfile.of`), up to ``gamma`` positions."""
        profile = AcceptanceProfile.of(source, gamma)
        return cls(profile.survival, profile.source)

    def expected_tokens(self, g: int) -> float:
        """E[tokens per round] with draft length ``g``: 1 + sum_{i<=g} P(accepted >= i)."""
        return float(self.survival[: g + 1].sum())

    def accepted(self, u: float, g: int) -> int:
        """Accepted draft tokens for uniform draw ``u`` with draft length ``g`` (inverse CDF)."""
        s = self.survival
        a = 0
        while a < g and s[a + 1] > u:
            a += 1
        return a


@dataclass(frozen=True)
class RequestResult:
    """One request's outcome: seconds on the simulation clock (NaN: did not happen), tokens generated."""

    index: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    first_token_s: float
    finish_s: float
    generated: int

    @property
    def finished(self) -> bool:
        return not math.isnan(self.finish_s)


@dataclass(frozen=True)
class ServingRun:
    """One accelerator serving one request stream: per-request outcomes and what the server did."""

    accelerator: str
    speculative: bool
    gamma: str  #: "auto", the fixed draft length, or "-" (autoregressive)
    requests: tuple[RequestResult, ...]
    span_s: float  #: simulated time: to the last departure, or the horizon
    busy_s: float  #: seconds the accelerator ran passes within the span
    in_system_area: float  #: integral of requests in the system over the span (request-seconds)
    energy_j: float
    iterations: int
    batch_sum: int  #: decoding sequences summed over iterations
    gamma_sum: int  #: draft lengths summed over speculative iterations with a running batch
    gamma_iterations: int


class _Seq:
    """A running request (mutable simulation state)."""

    __slots__ = ("req", "past", "produced", "rounds", "first", "finish", "draws")

    def __init__(self, req: Request, seed: int) -> None:
        self.req = req
        self.past = 0
        self.produced = 0
        self.rounds = 0
        self.first = math.nan
        self.finish = math.nan
        self.draws = np.random.default_rng([seed, 2, req.index]).random(req.output_tokens).tolist()


class _Server:
    """The state shared by the arrival and server processes."""

    def __init__(self, env, costs: PassCosts, acceptance: Acceptance | None, policy: Policy, gamma: int, seed: int):
        self.env, self.costs, self.acceptance, self.policy = env, costs, acceptance, policy
        self.gamma, self.seed = gamma, seed
        self.waiting: deque[Request] = deque()
        self.running: list[_Seq] = []
        self.done: dict[int, _Seq] = {}
        self.wake = None
        self.in_system = 0
        self.area = 0.0
        self.last_t = 0.0
        self.busy = 0.0
        self.iter_start: float | None = None
        self.energy = 0.0
        self.iterations = self.batch_sum = self.gamma_sum = self.gamma_iterations = 0

    def count(self, delta: int) -> None:
        """Integrate the in-system count up to now, then change it by ``delta``."""
        now = self.env.now
        self.area += self.in_system * (now - self.last_t)
        self.last_t = now
        self.in_system += delta

    def arrivals(self, requests: list[Request]):
        for r in requests:
            if r.arrival_s > self.env.now:
                yield self.env.timeout(r.arrival_s - self.env.now)
            self.count(+1)
            self.waiting.append(r)
            if self.wake is not None and not self.wake.triggered:
                self.wake.succeed()

    def serve(self):
        while True:
            if not self.running and not self.waiting:
                self.wake = self.env.event()
                yield self.wake
            g = self.choose_gamma()
            new = self.admit(g)
            cost = self.iteration_cost(new, g)
            self.iter_start = self.env.now
            yield self.env.timeout(cost.seconds)
            self.iter_start = None
            self.busy += cost.seconds
            self.energy += cost.energy_j
            self.finish_iteration(new, g)

    def choose_gamma(self) -> int:
        if self.acceptance is None or self.gamma or not self.running:
            return self.gamma
        return best_gamma(self.acceptance.expected_tokens, self.costs, len(self.running), self.mean_past())

    def admit(self, g: int) -> list[_Seq]:
        p = self.policy
        used = len(self.running) * (g + 1 if self.acceptance is not None else 1)
        new: list[_Seq] = []
        while self.waiting and len(self.running) + len(new) < p.max_batch:
            prompt = self.waiting[0].prompt_tokens
            if new and used + prompt > p.token_budget:
                break
            new.append(_Seq(self.waiting.popleft(), self.seed))
            used += prompt
        return new

    def mean_past(self) -> float:
        return sum(s.past for s in self.running) / len(self.running)

    def decode_cost(self, n: int, past: float, g: int) -> PassCost:
        """The running batch's decode passes: g drafts and a verify (speculative), or one step."""
        if self.acceptance is None:
            return self.costs.step(0, n, 1, past, 1)
        return round_cost(self.costs, n, past, g)

    def iteration_cost(self, new: list[_Seq], g: int) -> PassCost:
        parts = []
        if new:
            prompts = [s.req.prompt_tokens for s in new]
            parts.append(self.costs.prefill(0, prompts))
            if self.acceptance is not None:
                parts.append(self.costs.prefill(DRAFT_LEVEL, [t + 1 for t in prompts]))
        if self.running:
            parts.append(self.decode_cost(len(self.running), self.mean_past(), g))
        return sum_costs(parts)

    def finish_iteration(self, new: list[_Seq], g: int) -> None:
        now = self.env.now
        self.iterations += 1
        self.batch_sum += len(self.running)
        if self.acceptance is not None and self.running:
            self.gamma_sum += g
            self.gamma_iterations += 1
        left = [s for s in self.running if self.advance(s, g)]
        for s in new:
            s.first, s.produced, s.past = now, 1, s.req.prompt_tokens
        left += [s for s in new if s.produced >= s.req.output_tokens]
        for s in left:
            s.finish = now
            self.done[s.req.index] = s
        self.running = [s for s in self.running + new if s.produced < s.req.output_tokens]
        if left:
            self.count(-len(left))

    def advance(self, s: _Seq, g: int) -> bool:
        """One decode round of ``s``; whether it has all its tokens."""
        if self.acceptance is None:
            gain = 1
        else:
            gain = self.acceptance.accepted(s.draws[s.rounds], g) + 1
            s.rounds += 1
        gain = min(gain, s.req.output_tokens - s.produced)
        s.produced += gain
        s.past += gain
        return s.produced >= s.req.output_tokens


def serve(
    name: str,
    costs: PassCosts,
    requests: list[Request],
    policy: Policy,
    acceptance: Acceptance | None,
    gamma: int,
    seed: int,
) -> ServingRun:
    """Simulate ``requests`` (sorted by arrival) on one accelerator. ``acceptance`` None: autoregressive;
    ``gamma``: its draft length, 0 for auto. ``seed``: the acceptance draws' base seed."""
    env = simpy.Environment()
    server = _Server(env, costs, acceptance, policy, gamma, seed)
    env.process(server.arrivals(requests))
    env.process(server.serve())
    if math.isfinite(policy.horizon_s):
        env.run(until=policy.horizon_s)
    else:
        env.run()
    span = env.now
    server.count(0)
    busy = server.busy + (span - server.iter_start if server.iter_start is not None else 0.0)
    live = {s.req.index: s for s in server.running}
    return ServingRun(
        accelerator=name,
        speculative=acceptance is not None,
        gamma="-" if acceptance is None else ("auto" if gamma == 0 else str(gamma)),
        requests=tuple(_result(r, server.done.get(r.index) or live.get(r.index)) for r in requests),
        span_s=span,
        busy_s=busy,
        in_system_area=server.area,
        energy_j=server.energy,
        iterations=server.iterations,
        batch_sum=server.batch_sum,
        gamma_sum=server.gamma_sum,
        gamma_iterations=server.gamma_iterations,
    )


def _result(r: Request, s: _Seq | None) -> RequestResult:
    done = s is not None and s.produced >= r.output_tokens
    return RequestResult(
        r.index,
        r.arrival_s,
        r.prompt_tokens,
        r.output_tokens,
        s.first if s is not None else math.nan,
        s.finish if done else math.nan,
        s.produced if s is not None else 0,
    )
