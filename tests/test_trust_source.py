"""No code from data, checked in zoo's own source (parsed with ast, so comments and docstrings
that *mention* pickle do not count):

- no pickle, marshal, shelve, dill or cloudpickle import; no eval / exec / compile / __import__;
- numpy.load only with allow_pickle=False; torch.load only with weights_only=True;
- subprocess never with shell=True, and no os.system / os.popen;
- Keras loads never pass safe_mode=False; yaml only through safe_load;
- tarfile / zipfile extraction only in zoo/safety.py (with the "data" filter).
"""

from __future__ import annotations

import ast
from pathlib import Path

import zoo

ROOT = Path(zoo.__file__).parent
FILES = sorted(p for p in ROOT.rglob("*.py"))
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
BANNED_CALLS = {"eval", "exec", "compile", "__import__"}


def _name(node: ast.AST) -> str:
    """Dotted name of a call target: np.load -> "np.load", torch.load -> "torch.load"."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _kw(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expr>"
    return "<absent>"


def problems(path: Path) -> list[str]:
    rel = path.relative_to(ROOT.parent)
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            out += [f"{where} imports {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in BANNED_MODULES:
            out.append(f"{where} imports from {node.module}")
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        last = name.rsplit(".", 1)[-1]
        if name in BANNED_CALLS:
            out.append(f"{where} calls {name}()")
        if name in ("os.system", "os.popen", "os.execv", "os.execvp", "pty.spawn"):
            out.append(f"{where} calls {name}()")
        if _kw(node, "shell") is True:
            out.append(f"{where} passes shell=True")
        if name in ("np.load", "numpy.load") and _kw(node, "allow_pickle") is not False:
            out.append(f"{where} np.load without allow_pickle=False")
        if name == "torch.load" and _kw(node, "weights_only") is not True:
            out.append(f"{where} torch.load without weights_only=True")
        if _kw(node, "safe_mode") is False or (last == "enable_unsafe_deserialization"):
            out.append(f"{where} turns Keras safe mode off")
        if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"):
            out.append(f"{where} {name} (use yaml.safe_load)")
        if last == "extractall" and path.name != "safety.py":
            out.append(f"{where} extracts an archive outside zoo/safety.py")
        if last == "extractall" and path.name == "safety.py" and _kw(node, "filter") != "data":
            out.append(f"{where} extractall without filter='data'")
    return out


def test_the_source_tree_is_found():
    assert len(FILES) > 40 and any(p.name == "modeldir.py" for p in FILES)


def test_no_code_from_data_anywhere_in_zoo():
    # one test over every file (not one per file): each test pays a Keras session teardown here
    found = [problem for path in FILES for problem in problems(path)]
    assert found == []


def test_the_checker_catches_each_pattern(tmp_path):
    """Guards the test above: each banned pattern in a file is reported."""
    bad = tmp_path / "zoo" / "bad.py"
    bad.parent.mkdir()
    bad.write_text(
        "import pickle\nfrom marshal import loads\nimport numpy as np\nimport subprocess, tarfile, torch, keras\n"
        "eval('1')\nexec('x=1')\nnp.load('a.npy')\nnp.load('a.npy', allow_pickle=True)\n"
        "torch.load('w.pth')\nsubprocess.run('ls', shell=True)\nkeras.saving.load_model('m.keras', safe_mode=False)\n"
        "tarfile.open('a.tar').extractall('x')\nimport os\nos.system('ls')\n"
        "np.load('ok.npy', allow_pickle=False)\ntorch.load('ok.pth', weights_only=True)\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path / "zoo"
    try:
        found = problems(bad)
    finally:
        ROOT = saved
    assert [f.split(" ", 1)[0] for f in found] == [f"zoo/bad.py:{n}" for n in (1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 14)], found
