"""Shared test set-up: tf.keras 2 everywhere, and the real Market-1501 name lists."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKET_LISTS_ENV = "TFUSION_MARKET_LISTS"


def market_lists_dir() -> str:
    return os.environ.get(MARKET_LISTS_ENV,
                          os.path.join(REPO, "..", "shared", "data", "market"))


@pytest.fixture(scope="session")
def market_lists() -> str:
    """Folder with the real Market-1501 train/query/gallery.txt name lists."""
    d = market_lists_dir()
    if not all(os.path.isfile(os.path.join(d, f"{s}.txt"))
               for s in ("train", "query", "gallery")):
        pytest.skip(f"real Market-1501 name lists not found in {d} "
                    f"(set {MARKET_LISTS_ENV} to their folder)")
    return d


@pytest.fixture
def store(tmp_path, monkeypatch):
    """The folder behind `tfusiontest://` (tests/scheme_filesystem.py); the working
    directory is an empty folder, so a path handed to os / open() instead of
    FileSystems leaves a trace there."""
    import scheme_filesystem
    root = tmp_path / "store"
    root.mkdir()
    monkeypatch.setenv(scheme_filesystem.ROOT_ENV, str(root))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield root
    assert os.listdir(cwd) == [], "a tfusiontest:// path was used as a local path"
