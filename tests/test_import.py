"""`import zoo`, `zoo --help` and `zoo list` never import TensorFlow (listing is instant)."""

import subprocess
import sys


def _imports_tensorflow(code: str) -> bool:
    probe = code + "\nimport sys\nprint('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_import_zoo_is_light():
    assert not _imports_tensorflow("import zoo; zoo.list_models('vgg*', task='classification')")


def test_cli_help_is_light():
    assert not _imports_tensorflow("from zoo.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")


def test_unknown_name_suggests_close_match():
    import pytest

    import zoo

    with pytest.raises(ValueError, match="resnet50"):
        zoo.info("resnet05")


def test_public_api_stays_callable_after_every_module_is_imported():
    """A submodule named like a public function (zoo.export, zoo.bench) would shadow it once imported."""
    import importlib
    import pkgutil

    import zoo

    for info in pkgutil.iter_modules(zoo.__path__, "zoo."):
        if not info.ispkg:
            importlib.import_module(info.name)
    for name in zoo.__all__:
        if name != "__version__":
            assert callable(getattr(zoo, name)), name
