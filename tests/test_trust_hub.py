"""A hostile .keras naming zoo's HubFeatureExtractor: refused in safe mode before the handle is
resolved, so no HTTP request is made and no local archive is unpacked."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fetch_server import FileServer  # noqa: E402
from zoo.errors import UsageError


def test_hostile_keras_hub_handle_url_makes_no_request():
    from zoo.pretrained.hub import HubFeatureExtractor

    with FileServer() as server:
        with pytest.raises(UsageError, match="safe mode"):
            HubFeatureExtractor.from_config({"handle": server.url("/module.tar.gz"), "name": "hub"})
        assert server.requests == []


def test_hostile_keras_hub_handle_archive_is_not_unpacked(tmp_path):
    from zoo.pretrained.fetch import zoo_home
    from zoo.pretrained.hub import HubFeatureExtractor

    archive = tmp_path / "module.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("saved_model.pb")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(UsageError, match="safe mode"):
        HubFeatureExtractor.from_config({"handle": str(archive), "name": "hub"})
    assert not (zoo_home() / "hub").exists()
