"""`zoo list` and `zoo info`: tables and JSON from the registry and manifest, without TensorFlow."""

import json
import subprocess
import sys


def _zoo(*args):
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=120)


def test_list_and_info_never_import_tensorflow():
    code = ("from zoo.cli import main\nimport sys\n"
            "for argv in (['list'], ['list', 'vgg*', '--json'], ['info', 'resnet50'], ['info', 'lenet5', '--json']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert not e.code, (argv, e.code)\n"
            "print('HEAVY', 'tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY False"


def test_list_json_follows_the_registry_and_filters():
    from click.testing import CliRunner

    from zoo.cli.listing import list_cmd
    from zoo.registry import REGISTRY, list_models

    result = CliRunner().invoke(list_cmd, ["resnet*", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == list_models("resnet*")
    r50 = next(r for r in rows if r["name"] == "resnet50")
    assert (r50["params"], r50["macs"], r50["input_shape"]) == (REGISTRY["resnet50"].params, REGISTRY["resnet50"].macs, [224, 224, 3])
    seg = json.loads(CliRunner().invoke(list_cmd, ["--task", "segmentation", "--json"]).output)
    assert {r["task"] for r in seg} == {"segmentation"} and len(seg) == len(list_models(task="segmentation"))
    pre = json.loads(CliRunner().invoke(list_cmd, ["--pretrained", "--json"]).output)
    assert [r["name"] for r in pre] == list_models(pretrained=True) and all(r["weights"] for r in pre)


def test_list_table_shows_name_task_params_macs_input_weights():
    from click.testing import CliRunner

    from zoo.cli.listing import list_cmd
    from zoo.pretrained.manifest import tags_for

    out = CliRunner().invoke(list_cmd, ["lenet5"]).output
    for word in ("name", "task", "params", "MACs", "input", "weights", "lenet5", "classification", "61.7k", "417k", "32x32x1"):
        assert word in out, out
    for tag in tags_for("lenet5"):
        assert tag in out


def test_info_shows_weights_with_metrics_and_licence():
    from click.testing import CliRunner

    from zoo.cli.listing import info_cmd
    from zoo.pretrained.manifest import rows_for

    rows = rows_for("lenet5")
    assert rows, "lenet5 ships its fashion_mnist weights"
    out = CliRunner().invoke(info_cmd, ["lenet5"]).output
    assert "61,706" in out and "416,520" in out
    row = rows[0]
    assert row["tag"] in out
    for key, value in (row.get("metrics") or {}).items():
        assert f"{key}={value}" in out
    assert str(row["licence"])[:20] in out
    record = json.loads(CliRunner().invoke(info_cmd, ["lenet5", "--json"]).output)
    assert record["weights"][0]["licence"] == row["licence"] and record["macs"] == 416_520


def test_unknown_name_is_one_line_and_exit_2():
    result = _zoo("info", "resnet05")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "resnet50" in result.stderr and len(result.stderr.strip().splitlines()) == 1
