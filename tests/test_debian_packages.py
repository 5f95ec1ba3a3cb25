"""The tests' installer of Debian packages, against a fake apt-get on a temporary PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import conftest
from tests.conftest import install_debian_package, installed_path

MISSING = "the X tests need x-server, not on PATH: sudo apt-get install -y x-server"

FAKE_APT_GET = """#!/bin/sh
echo "$DEBIAN_FRONTEND $*" >> {dir}/calls
case "$*" in *" update") : > {dir}/updated; exit 0;; esac
for last; do :; done
while read -r name; do
  if [ "$name" = "$last" ] && {{ [ ! -e {dir}/needs-update ] || [ -e {dir}/updated ]; }}
  then exit 0; fi
done < {dir}/installable
echo "Reading package lists..." >&2
echo "E: Unable to locate package $last" >&2
exit 100
"""


@pytest.fixture
def apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only a fake apt-get (shell built-ins only), which installs the packages
    listed in ``installable``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(FAKE_APT_GET.format(dir=tmp_path))
    (bin_dir / "apt-get").chmod(0o755)
    (tmp_path / "installable").write_text("")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(conftest, "INSTALLED", [])  # the real run's list stays for its summary
    return tmp_path


def calls(apt: Path) -> list[str]:
    return (apt / "calls").read_text().splitlines()


def test_installs_non_interactively_as_root(apt: Path) -> None:
    (apt / "installable").write_text("x-server\n")
    assert install_debian_package("x-server", MISSING) == "x-server"
    [call] = calls(apt)
    assert call.startswith("noninteractive -q -y ")
    assert call.endswith(" install --no-install-recommends x-server")
    assert conftest.INSTALLED == ["x-server"]


def test_updates_the_lists_once_when_the_package_is_unknown(apt: Path) -> None:
    (apt / "installable").write_text("x-server\n")
    (apt / "needs-update").touch()
    assert install_debian_package("x-server", MISSING) == "x-server"
    assert [c.split()[-1] for c in calls(apt)] == ["x-server", "update", "x-server"]


def test_takes_the_first_package_the_release_has(apt: Path) -> None:
    (apt / "installable").write_text("x-server-21\n")
    assert install_debian_package(["x-server-17", "x-server-21"], MISSING) == "x-server-21"
    assert [c.split()[-1] for c in calls(apt)] == ["x-server-17", "x-server-21"]


def test_an_apt_get_that_fails_fails_the_test_with_its_reason(apt: Path) -> None:
    with pytest.raises(pytest.fail.Exception) as caught:
        install_debian_package("x-server", MISSING)
    assert str(caught.value) == (f"{MISSING} [apt-get could not install x-server: "
                                 "E: Unable to locate package x-server]")


def test_without_apt_get_the_test_is_skipped_naming_what_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.skip.Exception) as caught:
        install_debian_package("x-server", MISSING)
    assert str(caught.value) == f"{MISSING} [not installed by the tests: no apt-get here]"


def test_not_root_without_sudo_the_test_is_skipped_naming_what_is_missing(
        apt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception) as caught:
        install_debian_package("x-server", MISSING)
    assert str(caught.value) == (f"{MISSING} [not installed by the tests: "
                                 "not root and no password-less sudo]")
    assert not (apt / "calls").exists()
    assert conftest.INSTALLED == []


def test_installed_path_finds_a_program_the_path_does_not_reach(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dpkg").write_text('#!/bin/sh\n[ "$1 $2" = "-L x-server" ] || exit 1\n'
                                   "echo /.\necho /usr/share/doc/x-server\n"
                                   "echo /usr/lib/x/bin/x-server\n")
    (tmp_path / "dpkg").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert installed_path("x-server", r"/\S+/bin/x-server") == "/usr/lib/x/bin/x-server"
    assert installed_path("x-server", r"/\S+/bin/y-server") is None
    assert installed_path("y-server", r"/\S+/bin/y-server") is None
