"""Architecture rule 8: every command but the cluster ones works without Ray installed, and the cluster code is
reached only from the CLI's cluster commands, imported lazily.

One child interpreter in which importing ``ray`` or ``ray.*`` fails (a ``sys.meta_path`` finder installed before
anything else, as if Ray were not installed) runs the CLI as ``python -m mmdream.cli`` does (``runpy``), once per
command line: the help of every command and sub-command, tiny real runs, the cluster commands. One interpreter for
all of them: a fresh one per command line would cost a torch import each (about 60 command lines)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_COMMANDS = {"render", "submit", "status", "logs", "stop", "jobs"}

# Runs in the child: argv[1] is a JSON list of command lines, argv[2] the file for the JSON results. A line
# ["HELP"] stands for `--help` of every command and of every sub-command of a command family (gan, weights, ...),
# found in the help texts themselves.
DRIVER = r"""
import contextlib, io, json, re, runpy, sys, time

tried = []


class NoRay:
    # Ray is not installed: importing it fails as it would then; each attempt is noted.
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            tried.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoRay())
try:
    import ray  # noqa: F401
    raise SystemExit("the Ray blocker does not work")
except ModuleNotFoundError:
    tried.clear()


def run(argv):
    out, err, start = io.StringIO(), io.StringIO(), time.monotonic()
    sys.argv = ["mmdream", *argv]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_module("mmdream.cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # uncaught: what a user would see as a traceback
            import traceback

            err.write("UNCAUGHT " + "".join(traceback.format_exception(exc)))
            code = 1
    result = {"argv": argv, "code": code, "out": out.getvalue(), "err": err.getvalue(), "ray": tried[:],
              "seconds": round(time.monotonic() - start, 2)}
    tried.clear()
    return result


def listed(text):
    # the sub-command names a help lists under its positional argument (COMMAND, ACTION, KIND, SOURCE)
    if not re.search(r"^positional arguments:\n  (COMMAND|ACTION|KIND|SOURCE)\n", text, re.M):
        return []
    block = text.split("positional arguments:", 1)[1].split("\n\n", 1)[0]
    return [m.group(1) for m in re.finditer(r"^    (\S+)", block, re.M)]


lines, target = json.loads(sys.argv[1]), sys.argv[2]
results = []
for argv in lines:
    if argv != ["HELP"]:
        results.append(run(argv))
        continue
    todo = [[]]
    while todo:
        prefix = todo.pop(0)
        results.append(run([*prefix, "--help"]))
        todo += [[*prefix, name] for name in listed(results[-1]["out"])]
with open(target, "w") as f:
    json.dump(results, f)
"""


def run_without_ray(lines: list[list[str]], folder: Path) -> list[dict]:
    """Run the command lines in one Ray-less child interpreter (in ``folder``); one result dict per line run."""
    results = folder / "results.json"
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(lines), str(results)], capture_output=True,
                          text=True, timeout=600, cwd=folder)
    assert proc.returncode == 0 and results.exists(), proc.stderr[-3000:]
    return json.loads(results.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, media_dir: Path, weights_dir: Path) -> dict[str, dict]:
    """Every help, tiny real runs of the non-cluster commands and the cluster commands, all in one child without
    Ray, by command line (without ``--help``); the folder they ran in under ``"folder"``."""
    folder = tmp_path_factory.mktemp("noray")
    chelsea, bark = media_dir / "images" / "chelsea.png", media_dir / "audio" / "dog_bark.wav"
    film = media_dir / "video" / "bbb_320x180.mp4"
    job = folder / "job.yaml"
    job.write_text(json.dumps({"input": str(film), "output": str(folder / "out" / "film.mp4"),
                               "film": {"size": 32, "stop": 2}}))
    w = ["--weights", str(weights_dir)]
    head = ["--address", "http://127.0.0.1:9"]  # nothing listens there
    lines = {
        "image": ["image", str(chelsea), "dream.png", "--size", "32", "--steps", "1", "--octaves", "1",
                  "--progress", "none", *w],
        "audio": ["audio", str(bark), "dream.wav", "--class", "Bark", "--steps", "1", "--progress", "none", *w],
        "video": ["video", str(film), "dream.mp4", "--frames", "0:2", "--size", "64", "--steps", "1", "--octaves",
                  "1", "--progress", "none", *w],
        "analyze": ["analyze", "vgg16", "--layer", "relu1_1", "--channels", "0", "--steps", "2", "--size", "32",
                    "--progress", "none", *w, "report"],
        "gan sample": ["gan", "sample", "dcgan_faces64", "faces.png", "--count", "1", *w],
        "classify": ["classify", str(chelsea), "-b", "efficientnet_lite0", "--top", "1", *w],
        "info": ["info", "dream.png"],
        "weights list": ["weights", "list", *w],
        "layers": ["layers", "vgg16"],
        "classes": ["classes", "yamnet"],
        "render": ["render", str(job), "--progress", "none"],
        "submit": ["submit", str(job), *head],
        **{command: [command, "raysubmit_x", *head] for command in ("status", "logs", "stop")},
        "jobs": ["jobs", *head],
    }
    done = run_without_ray([["HELP"], *lines.values()], folder)
    helps = done[:len(done) - len(lines)]
    results = {" ".join(r["argv"]): r for r in helps} | dict(zip(lines, done[len(helps):]))
    results["folder"] = {"path": str(folder)}
    return results


def test_every_help_works_without_ray(runs: dict[str, dict]) -> None:
    """Every command's and sub-command's help, the cluster commands' included: exit 0, its usage line, Ray never
    imported."""
    helps = {name.removesuffix("--help").strip(): r for name, r in runs.items() if name.endswith("--help")}
    assert {"", "image", "video", "audio", "analyze", "gan walk", "weights list", "train image"} | CLUSTER_COMMANDS \
        <= set(helps), sorted(helps)
    for name, r in helps.items():
        assert r["code"] == 0 and r["out"].startswith(f"usage: mmdream {name}".rstrip()), (name, r["err"][-2000:])
        assert r["ray"] == [], f"`mmdream {name} --help` imported {r['ray']}"


def test_commands_run_without_ray(runs: dict[str, dict]) -> None:
    """Tiny real runs of the non-cluster commands: each exits 0, writes its output, never imports Ray."""
    names = ["image", "audio", "video", "analyze", "gan sample", "classify", "info", "weights list", "layers",
             "classes"]
    for name in names:
        r = runs[name]
        assert r["code"] == 0, f"`mmdream {name}` without Ray: exit {r['code']}\n{r['err'][-3000:]}"
        assert r["ray"] == [], f"`mmdream {name}` imported {r['ray']}"
    folder = Path(runs["folder"]["path"])
    for name in ("dream.png", "dream.wav", "dream.mp4", "faces.png", "report/index.html"):
        assert (folder / name).stat().st_size > 0, name
    assert "made by: mmdream" in runs["info"]["out"]
    assert json.loads(runs["classify"]["out"])["top"][0]["prob"] > 0
    assert "relu4_3" in runs["layers"]["out"] and "Bark" in runs["classes"]["out"]
    assert "vgg16" in runs["weights list"]["out"]


def test_cluster_commands_without_ray_say_so(runs: dict[str, dict]) -> None:
    """`render`, `submit` and the job commands without Ray: one line saying that they need Ray, exit 2, nothing
    written."""
    for name in sorted(CLUSTER_COMMANDS):
        r = runs[name]
        err = r["err"].strip().splitlines()
        assert r["code"] == 2 and len(err) == 1 and "Ray" in err[0], (name, r["err"][-2000:])
    assert not (Path(runs["folder"]["path"]) / "out").exists()


def _imports_of(tree: ast.Module) -> list[tuple[str, bool]]:
    """Every imported module name in ``tree`` with whether the import runs at import time of the module (outside
    any function body)."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((a.name, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module, top))
            visit(child, top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, True)
    return found


def test_library_never_imports_ray_at_module_level() -> None:
    """No module under mmdream/ imports ray or mmdream_cluster when it is imported; deferred imports of them sit
    only in the CLI (its cluster commands)."""
    at_import, deferred = [], []
    for path in sorted((ROOT / "mmdream").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for name, top in _imports_of(ast.parse(path.read_text(), str(path))):
            if name.split(".")[0] in ("ray", "mmdream_cluster", "cluster"):
                (at_import if top else deferred).append((module, name))
    assert at_import == [], f"imported when the module is: {at_import}"
    cli = re.compile(r"mmdream\.cli(_\w+)?(\..+)?$")
    assert deferred and all(cli.match(m) for m, _ in deferred), f"outside the CLI: {deferred}"
