"""Build the wheel and the sdist and check what they hold (run by .ci/run).

- the wheel installs the package ``rnnbp`` alone (``tasks`` and ``tests`` are
  a checkout's, not a distribution's), with ``py.typed``;
- the sdist carries the library, README, LICENSE and CHANGELOG, and leaves the
  tests out on purpose (see MANIFEST.in);
- the wheel, installed on its own into an empty folder, imports and reports
  the version written in ``rnnbp/__init__.py``.
"""

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    out = Path(tempfile.mkdtemp(prefix="rnnbp-dist-"))
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], check=True,
                   stdout=subprocess.DEVNULL)
    (wheel,), (sdist,) = out.glob("*.whl"), out.glob("*.tar.gz")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"rnnbp"}, f"wheel holds {sorted(tops)}"
    assert "rnnbp/py.typed" in zipfile.ZipFile(wheel).namelist(), "wheel lacks rnnbp/py.typed"
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    for needed in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "rnnbp/__init__.py", "rnnbp/py.typed"):
        assert needed in names, f"sdist lacks {needed}"
    assert not any(n.startswith(("tests/", "tasks/")) for n in names), "sdist should leave tests/ and tasks/ out"
    target = out / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)
    code = "import rnnbp, sys; print(rnnbp.__version__, rnnbp.__file__)"
    shown = subprocess.run([sys.executable, "-c", code], cwd=out, env={"PYTHONPATH": str(target), "PATH": ""},
                           check=True, capture_output=True, text=True).stdout.split()
    assert shown[1].startswith(str(target)), f"imported {shown[1]}, not the wheel"
    print(f"dist ok: {wheel.name} (rnnbp {shown[0]}, {len(zipfile.ZipFile(wheel).namelist())} files), "
          f"{sdist.name} ({len(names)} files, no tests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
