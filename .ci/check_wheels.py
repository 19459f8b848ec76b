"""Does every pinned requirement have a wheel for each Python and platform a user may run? Run by hand before a
release (it asks the package index, so CI does not run it):

    .venv/bin/python .ci/check_wheels.py                                   # requirements.txt, Pythons 3.10-3.14
    .venv/bin/python .ci/check_wheels.py requirements-gym.txt --python 3.10 3.11 3.12

For each requirements file, Python and platform it evaluates each line's marker as pip would there, then asks the
index which versions have a wheel for that interpreter and platform (`pip index versions --only-binary=:all:`: a
metadata look-up, so torch's large wheels are never downloaded) and checks that the pinned version is one of them.
It prints a table and exits 1 if any pin lacks a wheel. Needs `packaging` (matplotlib brings it).
"""
import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
# pip does not widen a --platform tag to older ones: name each tag a wheel of these packages may carry.
PLATFORMS = {
    "linux-x86_64": ("linux", "Linux", "x86_64", ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64",
                                                 "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any"]),
    "macos-arm64": ("darwin", "Darwin", "arm64", [f"macosx_{v}_0_arm64" for v in (15, 14, 13, 12, 11)] + [
        "macosx_11_0_universal2", "macosx_10_9_universal2", "any"]),
    "windows-amd64": ("win32", "Windows", "AMD64", ["win_amd64", "any"]),
}

SOURCE_ONLY = {"gym"}  # gym 0.26.2 is published as source only: pure Python, it builds without a compiler


def requirements(path: Path) -> list[tuple[Requirement, str]]:
    """The pinned requirements of a requirements file (comments, -r/-e lines dropped), with their lines."""
    pins = []
    for line in path.read_text().splitlines():
        text = re.sub(r"\s+#.*", "", line).strip()
        if text and not text.startswith(("#", "-")):
            pins.append((Requirement(text), text))
    return pins


def applies(requirement: Requirement, python: str, platform: str) -> bool:
    """Whether pip on that Python and platform installs this line (its environment marker)."""
    if requirement.marker is None:
        return True
    sys_platform, system, machine, _ = PLATFORMS[platform]
    env = dict(python_version=python, python_full_version=f"{python}.0", sys_platform=sys_platform,
               platform_system=system, platform_machine=machine, implementation_name="cpython",
               platform_python_implementation="CPython", os_name="nt" if system == "Windows" else "posix")
    return Marker(str(requirement.marker)).evaluate(env)


def wheel_versions(name: str, python: str, platform: str) -> set[str]:
    """The versions of `name` that have a wheel for CPython `python` on `platform`, as the index lists them."""
    tags = [arg for tag in PLATFORMS[platform][3] for arg in ("--platform", tag)]
    command = [sys.executable, "-m", "pip", "index", "versions", name, "--only-binary=:all:", "--python-version",
               python, "--implementation", "cp", *tags]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PIP_CONSTRAINT": ""})
    match = re.search(r"Available versions: (.*)", result.stdout)
    return set(match.group(1).split(", ")) if match else set()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=["requirements.txt"], help="requirements files (root-relative)")
    parser.add_argument("--python", nargs="+", default=["3.10", "3.11", "3.12", "3.13", "3.14"])
    parser.add_argument("--platform", nargs="+", default=list(PLATFORMS), choices=list(PLATFORMS))
    args = parser.parse_args()
    missing = []
    for file in args.files:
        for platform in args.platform:
            print(f"\n{file}, {platform}: " + " ".join(f"{python:>6}" for python in args.python))
            for requirement, line in requirements(ROOT / file):
                cells, pinned = [], next(iter(requirement.specifier)).version
                for python in args.python:
                    if not applies(requirement, python, platform):
                        cells.append("-")
                        continue
                    if requirement.name in SOURCE_ONLY:
                        cells.append("source")
                        continue
                    ok = pinned in wheel_versions(requirement.name, python, platform)
                    cells.append("yes" if ok else "NO")
                    if not ok:
                        missing.append(f"{file}: {line} has no wheel for Python {python} on {platform}")
                print(f"  {str(requirement.name) + '==' + pinned:<28} " + " ".join(f"{c:>6}" for c in cells))
    done = "every pin has a wheel ('-': the line does not apply there; 'source': pure Python, built on install)"
    print("\n" + ("\n".join(missing) if missing else done))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
