"""The ``server:`` TLS keys of a config file: files relative to the file, and every
mistake reported at its line (a TLS port without a certificate, a bad choice...)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from amqplite.topology import Config


def test_tls_keys_load_with_files_relative_to_the_config(
    load: Callable[[str], Config], tmp_path: Path
) -> None:
    config = load(
        """
        server:
          tls_port: 5671
          tls_cert: certs/server.pem
          tls_key: certs/server.key
          tls_ca: /etc/ssl/ca.pem
          tls_require_client_cert: true
          tls_external_identity: dn
          http_tls: true
        """
    )
    server = config.server
    assert server.tls_port == 5671
    assert server.tls_cert == tmp_path.resolve() / "certs" / "server.pem"
    assert server.tls_key == tmp_path.resolve() / "certs" / "server.key"
    assert server.tls_ca == Path("/etc/ssl/ca.pem")
    assert server.tls_require_client_cert and server.http_tls and server.tls_verify_peer
    assert server.tls_external_identity == "dn"


def test_tls_mistakes_are_reported_at_their_lines(errors: Callable[[str], list[str]]) -> None:
    problems = errors(
        """
        server:
          tls_port: 5671
          tls_verify: always
          tls_external_identity: email
          http_tls: yes please
        """
    )
    assert problems == [
        # Missing keys: at the section's first line (nothing else to point at).
        "topology.yaml:2:3: server.tls_cert: tls_port needs tls_cert and tls_key (PEM files)",
        "topology.yaml:2:3: server.tls_key: tls_port needs tls_cert and tls_key (PEM files)",
        'topology.yaml:3:15: server.tls_verify: expected one of peer, none, got "always"',
        'topology.yaml:4:26: server.tls_external_identity: expected one of cn, dn, got "email"',
        'topology.yaml:5:13: server.http_tls: expected true or false, got "yes please"',
    ]


def test_requiring_client_certificates_needs_a_ca_and_verification(
    errors: Callable[[str], list[str]],
) -> None:
    assert errors(
        """
        server:
          tls_port: 5671
          tls_cert: s.pem
          tls_key: s.key
          tls_require_client_cert: true
        """
    ) == [
        "topology.yaml:2:3: server.tls_ca: verifying client certificates needs tls_ca "
        "(the CA certificates that sign them)"
    ]
    assert errors(
        """
        server:
          tls_port: 5671
          tls_cert: s.pem
          tls_key: s.key
          tls_ca: ca.pem
          tls_verify: none
          tls_require_client_cert: true
        """
    ) == [
        "topology.yaml:7:28: server.tls_require_client_cert: cannot require a client "
        "certificate with tls_verify: none"
    ]
