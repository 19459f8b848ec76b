"""Everything around the lecture's training loop that is not the lecture: saves, --resume, the CSVs, records.

main_*.py keeps the lecture's loop (score history, 100-episode average, save when it improves, the print; what
improves is the mean of the deterministic evaluation, run.evaluate_if_due);
TrainingRun is what it calls for the rest (and signals.StopRequest turns Ctrl-C, SIGTERM and SIGHUP into a clean
stop). A run holds its checkpoint folder's lock from begin() to the end of finish(): one run per folder.
"""
import copy
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rlharness.checkpoints import keep_previous_run, load_agent, read_training_state, recover_checkpoint, save_agent
from rlharness.diagnostics import CriticRecord, outside_training_rng
from rlharness.envs import env_note
from rlharness.errors import TrainingDiverged, UsageError
from rlharness.evaluation import PeriodicEvaluation
from rlharness.files import check_writable, load_checkpoint
from rlharness.locks import hold_run_lock, release_run_lock
from rlharness.plots import write_csv, write_scores_csv
from rlharness.seeding import rng_states, set_rng_states, stream_seeds


class TrainingRun:
    """The bookkeeping of one training run: best/ and latest/ checkpoints, --resume, CSVs, the critic record.

    After the first episode and every --eval-every env steps, --eval-episodes deterministic episodes evaluate the
    agent (evaluate_if_due); best/ holds the agent with the best evaluation mean, the measure --evaluate reports.
    latest/ is saved every --save-every episodes and at the end with the training state (counters, score history,
    evaluations, RNG states, the config, and with --save-buffer the replay buffer), so --resume continues the run;
    the scores and evaluation CSVs and the score curve (drawn by main_*.py's `plot_curve(episodes, scores,
    figure_file, evaluations=rows)`) are rewritten with it. On the first episode and every Q_BIAS_EVERY episodes
    the critic's estimate is recorded beside the obtained return, with the agent's own records
    (agent.diagnostics), and at each evaluation beside the deterministic policy's own return; finish() writes them
    as CSVs and the critic record as a figure.
    """
    Q_BIAS_EVERY = 5

    def __init__(self, agent: Any, env: Any, sizes: dict, cfg: Any, log: Callable[[str], None] = print,
                 plot_curve: Callable[[list[int], list[float], Path], Any] | None = None) -> None:
        self.agent, self.env, self.sizes, self.log, self.plot_curve = agent, env, sizes, log, plot_curve
        self.config = dataclasses.asdict(cfg)
        self.resuming, self.save_every = cfg.resume, cfg.save_every
        self.save_buffer = cfg.save_buffer
        self.chkpt_dir, self.plot_dir = Path(cfg.chkpt_dir), Path(cfg.plot_dir)
        algo = sizes["algorithm"]  # agent_sizes(): what agent.json records
        self.figure_file = self.plot_dir / f"{algo}_{cfg.env}.png"  # the score curve; other files beside it
        self.title = f"{algo.upper()} on {cfg.env}"
        self.scores: list[float] = []  # the lecture's score_history: main_*.py appends to this list
        self.steps: list[int] = []  # env steps at the end of each episode
        self.minutes: list[float] = []  # wall-clock training time at the end of each episode
        self.critic_record = CriticRecord(agent, cfg.gamma)  # the critic's estimates beside the returns obtained
        self.evaluation = PeriodicEvaluation(cfg.env, cfg.eval_every, cfg.eval_episodes,
                                             stream_seeds(cfg.seed)["evaluation"])
        self.best_score = -math.inf
        self.start = self.episode_start = time.perf_counter()
        self.episode_start_steps = 0

    def file(self, suffix: str) -> Path:
        """A results file beside the score curve: file("_q_bias.csv") is plots/<algo>_<env>_q_bias.csv."""
        return self.figure_file.with_name(self.figure_file.stem + suffix)

    def begin(self) -> tuple[list[float], float, int]:
        """Take the checkpoint folder's lock, check the results folders, then start afresh or --resume; returns
        (score_history, best_score, steps).

        A folder another training run holds is refused before anything in it is moved or written. Then what a
        crash left (a save cut short) is finished or cleared, and said so; a fresh run moves an earlier run's
        best/ and latest/ into previous/.
        """
        hold_run_lock(self.chkpt_dir)
        check_writable(self.chkpt_dir, self.plot_dir)
        if note := env_note(self.config["env"]):  # the lecture's LunarLanderContinuous-v2 is gymnasium's -v3
            self.log(note)
        for name in ("best", "latest"):
            if done := recover_checkpoint(self.chkpt_dir / name):
                self.log(done)
        total_steps = 0
        if self.resuming:
            total_steps = self._resume()
            self.log(f"resuming after episode {len(self.scores)} and {total_steps} env steps")
        elif previous := keep_previous_run(self.chkpt_dir):
            self.log(f"moved the earlier run's checkpoints to {previous}")
        self._mark_boundary(total_steps)
        return self.scores, self.best_score, total_steps

    def check_losses(self, losses: tuple[torch.Tensor, ...] | None, total_steps: int) -> None:
        """Stop the run (TrainingDiverged) if a loss of the episode's last learn() is NaN or inf, before anything
        is saved, so the last good checkpoints stay. One check per episode: no per-step sync."""
        if losses is not None and not torch.isfinite(torch.stack(losses)).all():
            raise TrainingDiverged(f"a loss became NaN or inf in episode {len(self.scores) + 1} (env step "
                                   f"{total_steps}); the last good checkpoints in {self.chkpt_dir} are kept")

    def evaluate_if_due(self, total_steps: int) -> float | None:
        """After the first episode and every --eval-every env steps: the mean score of --eval-episodes deterministic
        episodes (choose_action(s, evaluate=True)) on an env of its own; None when no evaluation is due.

        Its first episode is also the critic record's noise-free episode. torch's generators are forked, so
        training draws the same numbers however often it is evaluated; its time is left out of the steps/s figure.
        """
        if not self.evaluation.due(total_steps):
            return None
        with outside_training_rng(self.agent.device):
            minutes = (time.perf_counter() - self.start) / 60
            episodes = self.evaluation.play(self.agent, len(self.scores), total_steps, minutes)
        self.critic_record.after_evaluation(len(self.scores), total_steps, episodes[0])
        result = self.evaluation.rows[-1]
        self.episode_start += result["seconds"]  # the episode's steps/s counts training only
        return result["mean"]

    def save_best(self) -> None:
        """The lecture's save_models() when the evaluation mean improved: the agent into best/, with agent.json."""
        save_agent(self.agent, self.sizes, self.chkpt_dir / "best")

    def end_episode(self, total_steps: int, best_score: float) -> str:
        """Book the episode just appended to the score history; return the progress part of its line.

        Records the critic (episode 1 and every Q_BIAS_EVERY) and saves latest/ every save_every episodes.
        best_score is the best evaluation mean so far (what best/ holds); the line ends with the evaluation's mean
        and standard deviation when the episode was followed by one.
        """
        self.best_score = best_score
        self.steps.append(int(total_steps))
        self.minutes.append((time.perf_counter() - self.start) / 60)
        episode = len(self.scores)
        if episode == 1 or episode % self.Q_BIAS_EVERY == 0:
            self.critic_record.after_episode(episode, total_steps - self.episode_start_steps, total_steps)
        if episode % self.save_every == 0:
            self.save_latest(total_steps)
        self._mark_boundary(total_steps)
        now = time.perf_counter()
        speed = (total_steps - self.episode_start_steps) / max(now - self.episode_start, 1e-9)
        self.episode_start, self.episode_start_steps = now, total_steps
        line = f"steps {total_steps:7d} steps/s {speed:6.0f} time {(now - self.start) / 60:6.1f} min"
        if (rows := self.evaluation.rows) and rows[-1]["episode"] == episode and rows[-1]["env_steps"] == total_steps:
            line += f" evaluation {rows[-1]['mean']:8.1f} +- {rows[-1]['std']:5.1f}"  # evaluate_if_due's, just now
        return line

    def _mark_boundary(self, total_steps: int) -> None:
        """Remember the run as it stands between two episodes (networks, optimisers, generators, buffer count).

        A run that stops mid-episode saves this state, not the half-played episode, so --resume plays that
        episode again from its start, exactly as an uninterrupted run does.
        """
        parts = {name: copy.deepcopy(part.state_dict()) for name, part in self.agent.parts().items()}
        self._boundary = dict(total_steps=total_steps, mem_cntr=self.agent.memory.mem_cntr,
                              rng=rng_states(self.env, self.agent), parts=parts)

    def _rewind(self) -> int:
        """Put the agent, its buffer count and every generator back to the last episode boundary; returns its
        env-step count. The transitions stored since then drop out of the buffer (their slots lie beyond the count,
        unless the ring had wrapped: then they have replaced the oldest ones)."""
        for name, part in self.agent.parts().items():
            part.load_state_dict(self._boundary["parts"][name])
        self.agent.memory.mem_cntr = self._boundary["mem_cntr"]
        set_rng_states(self._boundary["rng"], self.env, self.agent)
        return self._boundary["total_steps"]

    def save_latest(self, total_steps: int) -> None:
        """Save the agent and the training state (and the buffer with --save-buffer) to latest/, atomically."""
        state = dict(version=2, config=self.config, total_steps=total_steps,
                     scores=[float(s) for s in self.scores],  # Python floats: numpy scalars need pickle
                     steps=self.steps, minutes=self.minutes, best_score=float(self.best_score),
                     **self.critic_record.state(), evaluations=self.evaluation.rows,
                     elapsed_minutes=(time.perf_counter() - self.start) / 60, rng=rng_states(self.env, self.agent))
        extra = {"training_state.pt": state}
        if self.save_buffer:
            extra["buffer.pt"] = self.agent.memory.state_dict()
        save_agent(self.agent, self.sizes, self.chkpt_dir / "latest", extra)
        self.write_curve()

    def write_curve(self) -> Path | None:
        """Rewrite the scores CSV, the evaluations' CSV (_eval.csv) and the score curve with the evaluation means
        on it (each atomically), so plots/ shows the run so far and a killed run keeps its curve up to its last
        save. Returns the scores CSV (None before the first score)."""
        if not self.scores:
            return None
        csv_file = write_scores_csv(self.scores, self.steps, self.figure_file.with_suffix(".csv"), self.minutes)
        if self.evaluation.rows:
            write_csv(self.evaluation.rows, self.file("_eval.csv"))
        if self.plot_curve is not None:
            self.plot_curve(list(range(1, len(self.scores) + 1)), self.scores, self.figure_file,
                            evaluations=self.evaluation.rows)
        return csv_file

    def _resume(self) -> int:
        """Load latest/ (networks, optimisers, counters, scores, RNG states, the buffer if saved).

        Returns the run's env-step count. Without a saved buffer the run refills an empty one.
        """
        latest = self.chkpt_dir / "latest"
        state = read_training_state(latest)
        load_agent(latest, self.sizes, lambda sizes: self.agent)
        if (latest / "buffer.pt").is_file():
            try:
                self.agent.memory.load_state_dict(load_checkpoint(latest / "buffer.pt"))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise UsageError(f"checkpoint {latest / 'buffer.pt'} does not fit this buffer: {e}") from None
        self.scores[:] = state["scores"]
        self.steps, self.minutes = list(state["steps"]), list(state["minutes"])
        self.critic_record.load(state)
        # before evaluation during training, best/ was chosen by the 100-episode mean: it stays until an evaluation
        # mean beats that figure
        self.evaluation.rows = list(state.get("evaluations", []))
        self.best_score = state["best_score"]
        self.env.reset(seed=self.config["seed"])  # creates the env's generator; its saved state replaces it
        set_rng_states(state["rng"], self.env, self.agent)
        self.start = time.perf_counter() - 60 * state["elapsed_minutes"]
        self.episode_start_steps = state["total_steps"]
        return state["total_steps"]

    def finish(self, total_steps: int, best_score: float) -> None:
        """Save the final state to latest/ (with the scores CSV and curve), write the critic record and the agent's
        records, and release the folder's lock.

        A run stopped mid-episode (Ctrl-C, SIGTERM, SIGHUP, --max-steps) saves the state before that episode instead.
        """
        self.best_score, steps_run = best_score, total_steps
        if total_steps != self._boundary["total_steps"]:
            self.log(f"stopped in episode {len(self.scores) + 1}: latest/ holds the run as it was before it, "
                     f"after {self._boundary['total_steps']} env steps (--resume plays the episode again)")
            total_steps = self._rewind()
        self.save_latest(total_steps)
        if self.scores:
            self.log(f"scores: {self.figure_file.with_suffix('.csv')}  curve: {self.figure_file}")
        self.evaluation.close()
        for line in self.critic_record.write(self.file, self.title):
            self.log(line)
        self.log(f"checkpoints: {self.chkpt_dir / 'best'} (best evaluation mean {self.best_score:.1f}) "
                 f"and {self.chkpt_dir / 'latest'}")
        minutes = (time.perf_counter() - self.start) / 60
        if rows := self.evaluation.rows:
            seconds = sum(r["seconds"] for r in rows)
            self.log(f"evaluations: {self.file('_eval.csv')} ({len(rows)}, {seconds / 60:.1f} min, "
                     f"{100 * seconds / max(60 * minutes, 1e-9):.1f}% of the run's time)")
        self.log(f"{len(self.scores)} episodes, {steps_run} env steps, {minutes:.1f} min")
        release_run_lock(self.chkpt_dir)  # another run may use the folder now (one that fails: when it exits)
