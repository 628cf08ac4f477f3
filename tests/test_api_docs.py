"""docs/api.md is the Python API as it is: every public method's signature, the events dict,
the contents of a policy file, and the Stable-Baselines3-style script, run as written."""

import inspect
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import dpgkit
from dpgkit import sb3

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"
TINY = dict(warmup_steps=100, batch_size=32, actor_hidden=(16, 16), critic_hidden=(16, 16),
            eval_every_steps=200, eval_episodes=1)


def signature(function) -> str:
    """``(a, b=1, *, c=None)``: the signature without annotations, self or cls."""
    sig = inspect.signature(function)
    params = [p.replace(annotation=p.empty) for n, p in sig.parameters.items()
              if n not in ("self", "cls")]
    return str(sig.replace(parameters=params, return_annotation=sig.empty))


@pytest.mark.parametrize("shown, function", [
    ("dpgkit.DDPG", dpgkit.DDPG.__init__), ("model.learn", dpgkit.DDPG.learn),
    ("model.steps", dpgkit.DDPG.steps), ("DDPG.resume", dpgkit.DDPG.resume),
    ("model.predict", dpgkit.DDPG.predict), ("model.evaluate", dpgkit.DDPG.evaluate),
    ("model.save", dpgkit.DDPG.save), ("DDPG.load", dpgkit.DDPG.load),
    ("dpgkit.load", dpgkit.load),
])
def test_api_md_shows_each_signature_as_it_is(shown, function):
    """Each heading of docs/api.md is the callable's current signature."""
    assert f"### `{shown}{signature(function)}`" in API_MD.read_text()


def test_every_public_name_of_a_model_is_documented():
    """A method or property added to DDPG without a word in docs/api.md fails here."""
    text = API_MD.read_text()
    for name in (n for n in dir(dpgkit.DDPG) if not n.startswith("_")):
        assert f"model.{name}" in text or f"DDPG.{name}" in text, name
    for name in ("config", "run_dir", "trainer"):
        assert f"| `model.{name}` |" in text


def documented_keys(heading: str) -> set[str]:
    """The `key`s in the first column of the table under ``heading``."""
    text = API_MD.read_text()
    section = text[text.index(heading):]
    section = section[:section.index("\n---")]
    return set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))


def test_the_events_dict_has_the_documented_keys(tmp_path):
    """steps() yields exactly the keys the table documents, each of them at some step."""
    model = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "r", **TINY)
    seen = set().union(*(events.keys() for events in model.steps(250)))
    assert seen == documented_keys("## The events dict") == {
        "env_steps", "episode_return", "eval_return_mean"}


def test_policy_json_holds_what_api_md_lists(tmp_path):
    """Every key of a policy file's policy.json is named where docs/api.md lists them, and
    the archive holds the two members it names."""
    model = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "r", **TINY).learn(150)
    with zipfile.ZipFile(model.save(tmp_path / "p")) as archive:
        keys = list(json.loads(archive.read("policy.json")))
        members = sorted(archive.namelist())
    text = " ".join(API_MD.read_text().split())
    listed = text[text.index("`policy.json` holds"):text.index("Reading a policy file")]
    assert [key for key in keys if f"`{key}`" in listed] == keys
    assert members == ["actor.safetensors", "policy.json"]
    assert "a zip archive of two members: `policy.json` and `actor.safetensors`" in text


def scripts() -> dict[str, str]:
    """The two ```python blocks of the section "The Stable-Baselines3 way, in dpgkit"."""
    text = API_MD.read_text()
    section = text[text.index("### The Stable-Baselines3 way, in dpgkit"):]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return {"sb3": blocks[0], "dpgkit": blocks[1]}


def run_script(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_the_scripts_differ_only_in_the_imports_and_the_model_line():
    """The dpgkit script is SB3's with its imports and the line that makes the model changed."""
    sb3_lines, dpgkit_lines = (scripts()[k].splitlines() for k in ("sb3", "dpgkit"))
    changed = [(a, b) for a, b in zip(sb3_lines, dpgkit_lines, strict=True) if a != b]
    assert [a.split()[0] for a, _ in changed] == ["from", "from", "model"]


def test_the_sb3_script_with_dpgkit_imports_stops_at_the_model_line(tmp_path):
    """SB3's script with only the imports changed fails at its first line that differs, with a
    message saying what to write; nothing before it is refused."""
    code = scripts()["sb3"].replace("from stable_baselines3 import DDPG",
                                    "from dpgkit import DDPG").replace(
        "from stable_baselines3.common.evaluation import evaluate_policy",
        "from dpgkit.sb3 import evaluate_policy")
    result = run_script(code, tmp_path)
    assert result.returncode == 1
    line = next(n for n, text in enumerate(code.splitlines(), 1) if text.startswith("model = "))
    assert f'line {line}, in <module>' in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "dpgkit.errors.DpgkitError: dpgkit.DDPG takes the environment first and no policy name: "
        "write dpgkit.DDPG(env) instead of DDPG('MlpPolicy', env); its actor and critic are "
        "MLPs, sized with actor_hidden=(400, 300), critic_hidden=(400, 300) (what "
        "policy_kwargs=dict(net_arch=...) sets in Stable-Baselines3) (docs/api.md, 'Coming from "
        "Stable-Baselines3')")


def test_the_dpgkit_script_runs_to_the_end(tmp_path):
    """The script of docs/api.md, as written: three chunks of learning (600 env steps), save,
    load, 200 steps of predict in an env loop, evaluate."""
    result = run_script(scripts()["dpgkit"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"mean return -?\d+\.\d \+- \d+\.\d\n", result.stdout)
    assert (tmp_path / "ddpg_pendulum.zip").is_file()
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "summary.json").read_text())["env_steps"] == 600


def test_evaluate_policy_is_sb3_s_mean_and_std(tmp_path):
    """dpgkit.sb3.evaluate_policy(model, env, n) is (mean, std) of model.evaluate(n, env=env)."""
    import gymnasium as gym

    model = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "r", **TINY).learn(150)
    returns = model.evaluate(3, env=gym.make("Pendulum-v1"))
    assert sb3.evaluate_policy(model, gym.make("Pendulum-v1"), n_eval_episodes=3) == (
        pytest.approx(returns.mean()), pytest.approx(returns.std()))
    with pytest.raises(dpgkit.errors.DpgkitError, match="takes no return_episode_rewards"):
        sb3.evaluate_policy(model, gym.make("Pendulum-v1"), return_episode_rewards=True)


def test_readme_and_api_md_unpack_predict_as_it_returns():
    """Every predict call in the Python code of README.md and docs/api.md unpacks the pair
    predict returns, the form that can never be a wrong action."""
    for path in (API_MD, API_MD.parents[1] / "README.md"):
        code = "\n".join(re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL))
        calls = [line.strip() for line in code.splitlines() if ".predict(" in line]
        assert calls, path
        for line in calls:
            assert re.match(r"\w+, _\w* = \w+\.predict\(", line), (path.name, line)
