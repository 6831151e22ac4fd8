"""Renders deploy/kannel/kannel.conf.template (the tests and deployers use the same file).

python -m bot.sms.kannel_conf > kannel.conf      (values from SP_KANNEL_* variables)
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bot.config import ROOT

TEMPLATE = ROOT / "deploy" / "kannel" / "kannel.conf.template"
MO_USER = "kannel"  # the basic-auth user name of the MO post-url; the password is the MO key
_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


@dataclass(frozen=True)
class KannelPorts:
    admin_port: int = 13000
    smsbox_port: int = 13001
    sendsms_port: int = 13013
    fake_port: int = 10000


def render(
    gateway_url: str,
    mo_key: str,
    username: str,
    password: str,
    admin_password: str,
    log_dir: Path,
    store_dir: Path,
    ports: KannelPorts = KannelPorts(),
) -> str:
    if not (mo_key and password and admin_password):
        raise ValueError("mo_key, password and admin_password must be set")
    if not _URL_SAFE.fullmatch(mo_key):
        raise ValueError("mo_key goes into the post-url as basic auth: use letters, digits and -._~ only")
    parts = urlsplit(gateway_url.rstrip("/"))
    with_key = urlunsplit(parts._replace(netloc=f"{MO_USER}:{mo_key}@{parts.netloc}"))
    values = {
        **asdict(ports),
        "gateway_url_with_key": with_key,
        "mo_key": mo_key,
        "username": username,
        "password": password,
        "admin_password": admin_password,
        "log_dir": log_dir,
        "store_dir": store_dir,
    }
    return TEMPLATE.read_text(encoding="utf-8").format(**values)


def main() -> None:
    env = os.environ.get
    print(
        render(
            gateway_url=env("SP_KANNEL_GATEWAY_URL", "http://127.0.0.1:8090"),
            mo_key=env("SP_KANNEL_MO_KEY", ""),
            username=env("SP_KANNEL_USERNAME", "safepassage"),
            password=env("SP_KANNEL_PASSWORD", ""),
            admin_password=env("SP_KANNEL_ADMIN_PASSWORD", ""),
            log_dir=Path(env("SP_KANNEL_LOG_DIR", "/var/log/kannel")),
            store_dir=Path(env("SP_KANNEL_STORE_DIR", "/var/spool/kannel")),
        )
    )


if __name__ == "__main__":
    main()
