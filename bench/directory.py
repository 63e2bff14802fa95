"""Active Directory sign-in benchmark: the latency of N sign-ins through `sign_in` (a service
account search for the person, a bind as them over LDAPS, their entry and nested groups
read, the local account brought up to date, the identity built) against a local Samba AD DC
started for the run. The raw baseline, measured in the same run against the same server, is
a bare ldap3 connection, TLS handshake and simple bind as the same person: what the directory
costs before the product does anything. The ratio is sign-in ÷ baseline.

    .venv/bin/python bench/directory.py --logins 200
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import MappingProxyType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from ldap3 import SIMPLE, Connection, Server, Tls  # noqa: E402
from servers.samba import ADMIN_LOGIN, ADMIN_PASSWORD, BASE_DN, PASSWORDS, SambaDirectory, add_example_people, missing  # noqa: E402

from deskbase.connectors.sign_in import sign_in  # noqa: E402
from deskbase.rules.access.directory import DirectorySettings  # noqa: E402
from deskbase.rules.application import load_application, open_store  # noqa: E402


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def timed(work, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=200, help="sign-ins measured (default 200)")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    reason = missing()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 1
    folder = Path(tempfile.mkdtemp(prefix="deskbase-bench-ad-"))
    directory = SambaDirectory(folder / "dc").provision()
    add_example_people(directory)
    directory.start()
    try:
        settings = DirectorySettings(servers=("ldaps://127.0.0.1:636",), base_dn=BASE_DN,
                                     ca_file=str(directory.certificate), upn_suffix="example.test",
                                     bind_dn_env="BENCH_AD_USER", password_env="BENCH_AD_PASSWORD",
                                     roles=MappingProxyType({"support": ("technician",),
                                                             "dispatch": ("dispatcher",)}))
        os.environ.update(BENCH_AD_USER=ADMIN_LOGIN, BENCH_AD_PASSWORD=ADMIN_PASSWORD)
        definitions = load_application(ROOT / "definitions")
        definitions = dataclasses.replace(definitions, extensions=MappingProxyType(
            {**definitions.extensions, "directory": settings}))
        store = open_store("memory://", definitions)
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(directory.certificate))

        def raw_bind() -> None:
            connection = Connection(Server("ldaps://127.0.0.1:636", use_ssl=True, tls=tls, get_info="NO_INFO"),
                                    "bob@example.test", PASSWORDS["bob"], authentication=SIMPLE)
            assert connection.bind()
            connection.unbind()

        def product_sign_in() -> None:
            assert sign_in(store, "bob", PASSWORDS["bob"]).id == "bob"

        def direct_sign_in() -> None:          # no service account: bind with the principal name
            assert sign_in(direct_store, "bob", PASSWORDS["bob"]).id == "bob"

        direct_store = open_store("memory://", dataclasses.replace(definitions, extensions=MappingProxyType(
            {**definitions.extensions, "directory": dataclasses.replace(settings, bind_dn_env=None,
                                                                        password_env=None)})))
        for work in (raw_bind, product_sign_in, direct_sign_in):
            timed(work, args.warmup)
        # interleaved rounds, so a slow moment of the machine weighs on both sides alike
        raw, product, direct = [], [], []
        for _ in range(max(1, args.logins // 20)):
            raw += timed(raw_bind, 20)
            product += timed(product_sign_in, 20)
            direct += timed(direct_sign_in, 20)
        print(f"{len(product)} sign-ins of one person against Samba AD on loopback (LDAPS, certificate checked)")
        print(f"{'':<44}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
        rows = (("raw ldap3 connect + TLS + bind (baseline)", raw),
                ("sign_in, service account (search + bind)", product),
                ("sign_in, direct bind (principal name)", direct))
        for label, samples in rows:
            print(f"{label:<44}{percentile(samples, .5):>9.1f}{percentile(samples, .95):>9.1f}"
                  f"{statistics.mean(samples):>9.1f}")
        for label, samples in rows[1:]:
            print(f"p95 ratio {label.split(',')[1].strip()}: {percentile(samples, .95) / percentile(raw, .95):.2f}× "
                  "the raw bind")
        store.close()
        direct_store.close()
    finally:
        directory.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
