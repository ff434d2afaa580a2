from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.core.tls import TlsFiles, make_tls_files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A local CA and a 127.0.0.1 certificate, for the HTTPS Salesforce emulator."""
    return make_tls_files(Path(tmp_path_factory.mktemp("tls")))
