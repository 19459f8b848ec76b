"""The layout the lecture's folders and the shared package keep: small files, no copies, imports one way, no
shared module that asks which agent it holds, and a third agent driven by rlharness with no change to it."""
import ast
import dataclasses
import re
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rlharness.checkpoints import load_state_dicts, save_state_dicts
from rlharness.envs import agent_sizes, make_env
from rlharness.evaluation import evaluate_saved
from rlharness.run import TrainingRun
from rlharness.seeding import seed_everything

from conftest import FLAT_MODULES, ROOT, csv_rows

FOLDERS = ("DDPG", "SAC")
PACKAGE = ROOT / "rlharness"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def lines(path) -> int:
    return len(path.read_text().splitlines())


def parse(module: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{module}.py").read_text())


# ---------------------------------------------------------------------------------------------------------
# (a) small files, (b) no copies but the buffer
# ---------------------------------------------------------------------------------------------------------
def test_files_stay_small():
    too_long = {}
    for folder in FOLDERS:
        for path in (ROOT / folder).glob("*.py"):
            limit = 150 if path.name == "utils.py" or path.name.startswith("main_") else 250
            too_long.update({str(path.relative_to(ROOT)): (lines(path), limit)} if lines(path) > limit else {})
    for path in PACKAGE.glob("*.py"):
        too_long.update({str(path.relative_to(ROOT)): (lines(path), 250)} if lines(path) > 250 else {})
    assert too_long == {}, "(lines, limit)"
    for name in ("DDPG/utils.py", "SAC/utils.py", "DDPG/main_ddpg.py", "SAC/main_sac.py"):
        assert (ROOT / name).is_file(), name


def test_only_the_buffer_is_the_same_file_in_both_folders():
    assert (ROOT / "DDPG" / "buffer.py").read_text() == (ROOT / "SAC" / "buffer.py").read_text()
    both = {p.name for p in (ROOT / "DDPG").glob("*.py")} & {p.name for p in (ROOT / "SAC").glob("*.py")}
    assert {"buffer.py", "networks.py", "utils.py"} <= both
    identical = {name for name in both if (ROOT / "DDPG" / name).read_text() == (ROOT / "SAC" / name).read_text()}
    assert identical == {"buffer.py"}


# ---------------------------------------------------------------------------------------------------------
# (c) imports run one way: the folders import rlharness, never the other way; no cycle inside rlharness
# ---------------------------------------------------------------------------------------------------------
def imported(module: str) -> set[str]:
    """The top-level names of everything `module` imports, with rlharness's own modules as 'rlharness.<name>'."""
    names = set()
    for node in ast.walk(parse(module)):
        if isinstance(node, ast.Import):
            names |= {alias.name if alias.name.startswith("rlharness.") else alias.name.split(".")[0]
                      for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "rlharness" if node.level else node.module or ""
            if node.level and node.module:
                base = f"rlharness.{node.module}"
            if base == "rlharness":  # from rlharness import files
                names |= {f"rlharness.{alias.name}" for alias in node.names}
            else:
                names.add(base if base.startswith("rlharness.") else base.split(".")[0])
    return names


def package_imports() -> dict[str, set[str]]:
    return {m: {name.split(".")[1] for name in imported(m) if name.startswith("rlharness.")} for m in MODULES}


def documented_order() -> list[str]:
    """The modules as rlharness/__init__.py lists them, lowest first ('Imports run one way, from the bottom up')."""
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    return [m.group(1) for m in re.finditer(r"^ {4}(\w+) {2,}\S", doc, re.MULTILINE)]


def test_the_package_imports_nothing_from_the_lecture_folders():
    for module in MODULES:
        assert not imported(module) & set(FLAT_MODULES), module
        assert not {name for name in imported(module) if name.lower() in ("ddpg", "sac")}, module
    assert package_imports()["errors"] == set()


def test_imports_inside_the_package_have_no_cycle_and_follow_the_documented_order():
    graph = package_imports()
    assert set().union(*graph.values()) <= set(MODULES)
    done, path = set(), []

    def visit(module):
        assert module not in path, f"import cycle: {' -> '.join([*path, module])}"
        if module in done:
            return
        path.append(module)
        for other in graph[module]:
            visit(other)
        path.pop()
        done.add(module)

    for module in MODULES:
        visit(module)
    order = documented_order()
    assert sorted(order) == MODULES  # every module documented once
    for module in MODULES:
        later = {other for other in graph[module] if order.index(other) > order.index(module)}
        assert later == set(), f"{module} imports {later}, listed after it in rlharness/__init__.py"


# ---------------------------------------------------------------------------------------------------------
# (d) no shared module asks which agent it holds
# ---------------------------------------------------------------------------------------------------------
AGENT_WORDS = re.compile(r"ddpg|sac|log_alpha|noise", re.IGNORECASE)
INTROSPECTION = ("hasattr", "getattr", "setattr", "isinstance", "type")


def prose(tree: ast.Module) -> set[int]:
    """The string constants that are text for people: docstrings and the messages of raised errors."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
        if isinstance(node, ast.Raise) and node.exc is not None:
            ids |= {id(n) for n in ast.walk(node.exc) if isinstance(n, ast.Constant)}
    return ids


def agent_specific(module: str) -> list[str]:
    tree = parse(module)
    skip, found = prose(tree), []
    for node in ast.walk(tree):
        words = {ast.Name: lambda n: [n.id], ast.Attribute: lambda n: [n.attr], ast.arg: lambda n: [n.arg],
                 ast.keyword: lambda n: [n.arg or ""], ast.alias: lambda n: [n.name, n.asname or ""],
                 ast.FunctionDef: lambda n: [n.name], ast.ClassDef: lambda n: [n.name]}.get(type(node))
        texts = words(node) if words else []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            texts = [node.value]
        found += [f"{module}.py:{node.lineno}: {text!r}" for text in texts if AGENT_WORDS.search(text)]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in INTROSPECTION
                and node.args and "agent" in ast.unparse(node.args[0])):
            found.append(f"{module}.py:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_shared_module_branches_on_the_kind_of_agent():
    assert [line for module in MODULES for line in agent_specific(module)] == []


def test_the_agent_check_catches_what_it_is_for(monkeypatch):
    """The check above on made-up sources: each of these lines asks which agent it holds."""
    for source in ('if algo == "sac":\n    pass', "agent.noise.reset()", "x = agent.log_alpha",
                   'if hasattr(self.agent, "noise"):\n    pass', "if isinstance(agent, DDPGAgent):\n    pass",
                   'states["ddpg"] = 1'):
        monkeypatch.setattr("test_layout.parse", lambda module, source=source: ast.parse(source))
        assert agent_specific("x"), source
    for source in ('"""A docstring naming DDPG and SAC."""', 'raise ValueError("DDPG and SAC need Box actions")',
                   'hasattr(env.unwrapped, "x")'):
        monkeypatch.setattr("test_layout.parse", lambda module, source=source: ast.parse(source))
        assert agent_specific("x") == [], source


# ---------------------------------------------------------------------------------------------------------
# (e) a third agent: written here, driven by rlharness as main_*.py drives DDPG and SAC
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TinyConfig:
    """The fields TrainingRun reads."""
    chkpt_dir: str
    plot_dir: str
    resume: bool = False
    env: str = "Pendulum-v1"
    seed: int = 0
    gamma: float = 0.9
    eval_every: int = 400
    eval_episodes: int = 2
    save_every: int = 1
    save_buffer: bool = True


class LinearAgent:
    """The smallest agent rlharness can drive: a linear actor, a linear critic, DDPG/'s replay buffer, and the
    methods rlharness/__init__.py lists."""
    critic_labels = {"V": "Q(s, pi(s))"}

    def __init__(self, buffer_cls, seed: int) -> None:
        torch.manual_seed(seed)
        self.device = torch.device("cpu")
        self.actor, self.critic = nn.Linear(3, 1), nn.Linear(4, 1)
        self.optimizer = torch.optim.Adam([*self.actor.parameters(), *self.critic.parameters()], lr=1e-3)
        self.memory = buffer_cls(1000, 3, 1, seed=seed)
        self.exploration = np.random.default_rng(seed)

    def pi(self, states):
        return 2 * torch.tanh(self.actor(states))

    def q(self, states, actions):
        return self.critic(torch.cat([states, actions], dim=-1)).view(-1)

    def choose_action(self, observation, evaluate=False):
        with torch.no_grad():
            action = self.pi(torch.as_tensor(observation, dtype=torch.float32)).numpy()
        return action if evaluate else np.clip(action + self.exploration.normal(0, 0.5, 1), -2, 2)

    def learn(self):
        if len(self.memory) < 16:
            return None
        s, a, r, s_, done = self.memory.sample_buffer(16)
        with torch.no_grad():
            y = r + 0.9 * (1 - done) * self.q(s_, self.pi(s_))
        critic_loss, actor_loss = F.mse_loss(self.q(s, a), y), -self.q(s, self.pi(s)).mean()
        self.optimizer.zero_grad()
        (critic_loss + actor_loss).backward()
        self.optimizer.step()
        return critic_loss.detach(), actor_loss.detach()

    def critic_estimates(self, states):
        return {"V": self.q(states, self.pi(states))}

    def diagnostics(self, states):
        return {"weights": {"actor_norm": float(self.actor.weight.norm()), "states": len(states)}}

    def rng_state(self):
        return {"buffer": self.memory.rng.bit_generator.state, "exploration": self.exploration.bit_generator.state}

    def set_rng_state(self, state):
        self.memory.rng.bit_generator.state = state["buffer"]
        self.exploration.bit_generator.state = state["exploration"]

    def parts(self):
        return {"actor": self.actor, "critic": self.critic, "optimizer": self.optimizer}

    def save_models(self, chkpt_dir):
        save_state_dicts(self.parts(), chkpt_dir)

    def load_models(self, chkpt_dir):
        load_state_dicts(self.parts(), chkpt_dir)


def train(cfg: TinyConfig, episodes: int, buffer_cls, agent_seed: int = 0) -> list[str]:
    """main_*.py's loop, for the linear agent; returns what the run logged."""
    seed_everything(cfg.seed)
    env = make_env(cfg.env, cfg.seed)
    sizes = agent_sizes(cfg.env, env, "linear")
    agent = LinearAgent(buffer_cls, agent_seed)
    log = []
    run = TrainingRun(agent, env, sizes, cfg, log=log.append)
    score_history, best_score, total_steps = run.begin()
    seed = None if score_history else cfg.seed
    for _ in range(len(score_history), episodes):
        observation, _ = env.reset(seed=seed)
        seed, done, score, losses = None, False, 0.0, None
        while not done:
            action = agent.choose_action(observation)
            observation_, reward, terminated, truncated, _ = env.step(action)
            agent.memory.store_transition(observation, action, reward, observation_, terminated)
            losses = agent.learn()
            score, observation, done = score + reward, observation_, terminated or truncated
            total_steps += 1
        run.check_losses(losses, total_steps)
        score_history.append(score)
        eval_score = run.evaluate_if_due(total_steps)
        if eval_score is not None and eval_score > best_score:
            best_score = eval_score
            run.save_best()
        log.append(run.end_episode(total_steps, best_score))
    env.close()
    run.finish(total_steps, best_score)
    return log


def test_a_third_agent_needs_no_change_to_the_shared_package(ddpg, tmp_path):
    whole = TinyConfig(chkpt_dir=str(tmp_path / "whole" / "tmp"), plot_dir=str(tmp_path / "whole" / "plots"))
    train(whole, 3, ddpg.buffer.ReplayBuffer)
    split = TinyConfig(chkpt_dir=str(tmp_path / "split" / "tmp"), plot_dir=str(tmp_path / "split" / "plots"))
    train(split, 2, ddpg.buffer.ReplayBuffer)

    chkpt, plots = tmp_path / "split" / "tmp", tmp_path / "split" / "plots"
    assert {p.name for p in (chkpt / "best").iterdir()} == {"actor.pt", "critic.pt", "optimizer.pt", "agent.json"}
    latest = {p.name for p in (chkpt / "latest").iterdir()}
    assert {"training_state.pt", "buffer.pt", "actor.pt", "agent.json"} <= latest
    scores = csv_rows(plots / "linear_Pendulum-v1.csv")
    assert scores[0] == ["episode", "env_steps", "score", "avg100"] and len(scores) == 3
    assert csv_rows(plots / "linear_Pendulum-v1_q_bias.csv")[0] == ["episode", "env_steps", "real_return", "V",
                                                                    "states"]
    assert csv_rows(plots / "linear_Pendulum-v1_weights.csv")[0] == ["episode", "env_steps", "actor_norm", "states"]
    assert (plots / "linear_Pendulum-v1_q_bias.png").read_bytes()[:4] == b"\x89PNG"
    evaluations = csv_rows(plots / "linear_Pendulum-v1_eval.csv")  # after episode 1 and at 400 env steps
    assert evaluations[0] == ["episode", "env_steps", "mean", "std", "min", "max", "episodes"]
    assert [row[:2] for row in evaluations[1:]] == [["1", "200"], ["2", "400"]]

    # --resume: a fresh agent, built from another seed, continues the run exactly where it stopped
    log = train(dataclasses.replace(split, resume=True), 3, ddpg.buffer.ReplayBuffer, agent_seed=1)
    assert log[0] == "resuming after episode 2 and 400 env steps"
    for name in ("linear_Pendulum-v1.csv", "linear_Pendulum-v1_q_bias.csv", "linear_Pendulum-v1_weights.csv",
                 "linear_Pendulum-v1_eval.csv", "linear_Pendulum-v1_q_bias_policy.csv"):
        assert csv_rows(plots / name) == csv_rows(tmp_path / "whole" / "plots" / name), name

    # --evaluate: the saved best agent, built by the caller
    cfg = types.SimpleNamespace(env="Pendulum-v1", seed=0, chkpt_dir=str(chkpt), evaluate=2, render=False)
    lines = evaluate_saved(cfg, "linear", lambda env, sizes: LinearAgent(ddpg.buffer.ReplayBuffer, 5))
    assert len(lines) == 3 and lines[-1].startswith("mean score")


@pytest.mark.parametrize("method", ["choose_action", "save_models", "load_models", "parts", "critic_estimates",
                                    "diagnostics", "rng_state", "set_rng_state"])
def test_the_documented_agent_methods_are_what_ddpg_and_sac_have(ddpg, sac, method):
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    assert f"{method}(" in doc
    for agent in (ddpg.ddpg_torch.Agent, sac.sac_torch.Agent, LinearAgent):
        assert callable(getattr(agent, method)), (agent, method)
