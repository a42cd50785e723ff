"""The extras in setup.cfg, and the ones the Docker image installs, bring what the drivers need."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def extras() -> dict[str, list[Requirement]]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return {
        name: [Requirement(line) for line in value.split("\n") if line.strip()]
        for name, value in config["options.extras_require"].items()
    }


def requirements(*names: str) -> list[Requirement]:
    """The requirements of these extras, with etl4all[...] self-references followed."""
    table, found = extras(), []
    for name in names:
        for requirement in table[name]:
            if requirement.name == "etl4all":
                found += requirements(*sorted(requirement.extras))
            else:
                found.append(requirement)
    return found


def brings_cryptography(found: list[Requirement]) -> bool:
    """PyMySQL needs cryptography for MySQL 8's default caching_sha2_password login."""
    return any(
        r.name.lower() == "cryptography" or (r.name.lower() == "pymysql" and "rsa" in r.extras)
        for r in found
    )


def test_mysql_extra_brings_cryptography() -> None:
    assert brings_cryptography(requirements("mysql"))


def test_docker_image_installs_the_mysql_driver_with_cryptography() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    installed = re.search(r"pip install '\.\[([\w,-]+)\]'", dockerfile)
    assert installed, "the Dockerfile should pip install '.[extras]'"
    found = requirements(*installed[1].split(","))
    assert any(r.name.lower() == "pymysql" for r in found)
    assert brings_cryptography(found)
