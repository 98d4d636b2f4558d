"""Where a gRPC client connects, as deployed: the address it dials, the `:authority` it sends, and TLS.

Behind a Kubernetes ingress (KServe's Istio or Knative gateway, an nginx ingress) every InferenceService
shares one address and the gateway routes on the HTTP/2 `:authority`, KServe's `<isvc>.<namespace>.<domain>`
host; with TLS the gateway's certificate names that host too. gRPC takes the authority from the channel
option `grpc.default_authority` and checks the server's certificate against it (so a certificate for the
host name verifies even when the address dialled is an IP). One `Endpoint` builds that channel for
`mtserve predict` (serving/client.py) and for the load test (loadtest/protocol.py, loadtest/locustfile.py).

Plain grpc, no gevent: the locustfile imports it after grpc's gevent integration is initialised.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

from mtserve.core.errors import UserError
from mtserve.core.options import Options, add_dataclass_arguments, from_args, option


def normalize_address(url: str) -> str:
    """'grpc://host:port', 'https://host:port/' or 'host:port' -> 'host:port' (what grpc dials)."""
    u = (url or "").strip()
    for prefix in ("grpc://", "grpcs://", "http://", "https://", "dns:///"):
        if u.startswith(prefix):
            u = u[len(prefix) :]
    u = u.rstrip("/")
    if not u:
        raise UserError("empty gRPC address")
    return u


@dataclass(frozen=True)
class TLS:
    """TLS for a channel: `root_cert` (PEM file of the CA that signed the server's certificate; None: the
    system's roots), and for mutual TLS `client_cert` + `client_key`. Paths, read when a channel is made,
    so a configuration can travel between processes (the load test's workers) as plain strings."""

    root_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    def __post_init__(self) -> None:
        if (self.client_cert is None) != (self.client_key is None):
            raise UserError("give --client-cert and --client-key together (mutual TLS needs both)")

    @staticmethod
    def _read(path: str | None, what: str) -> bytes | None:
        if path is None:
            return None
        try:
            data = Path(path).expanduser().read_bytes()
        except OSError as e:
            raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from None
        if b"-----BEGIN" not in data:
            raise UserError(f"{what} {path} is not a PEM file (no -----BEGIN line)")
        return data

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self._read(self.root_cert, "--root-cert"),
            private_key=self._read(self.client_key, "--client-key"),
            certificate_chain=self._read(self.client_cert, "--client-cert"),
        )

    def describe(self) -> str:
        roots = f"root certificate {self.root_cert}" if self.root_cert else "the system's root certificates"
        return f"TLS, {roots}" + (f", client certificate {self.client_cert}" if self.client_cert else "")


@dataclass(frozen=True)
class Endpoint:
    """One deployment's gRPC endpoint: `address` (host:port) dialled, `authority` sent as `:authority`
    (None: the address itself), `tls` (None: plaintext h2c)."""

    address: str
    authority: str | None = None
    tls: TLS | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", normalize_address(self.address))
        if self.authority is not None:
            a = self.authority.strip()
            if not a or any(c in a for c in "/ "):
                raise UserError(f"--authority must be a host name (optionally :port), got {self.authority!r}")
            object.__setattr__(self, "authority", a)

    def options(self, base: list[tuple] | tuple = ()) -> list[tuple]:
        opts = list(base)
        if self.authority:
            opts.append(("grpc.default_authority", self.authority))
        return opts

    def channel(self, options: list[tuple] | tuple = ()) -> grpc.Channel:
        """A new channel (plain grpc; under gevent once grpc's gevent integration is initialised)."""
        if self.tls is not None:
            return grpc.secure_channel(self.address, self.tls.credentials(), options=self.options(options))
        return grpc.insecure_channel(self.address, options=self.options(options))

    def describe(self) -> str:
        """'host:port' plus what else routes the call, e.g. 'gw:443 (authority a.example.com, TLS, ...)'."""
        extra = [f"authority {self.authority}"] if self.authority else []
        if self.tls is not None:
            extra.append(self.tls.describe())
        return self.address + (f" ({', '.join(extra)})" if extra else "")

    def explain(self, e: grpc.RpcError, doing: str) -> str:
        """A gRPC failure as one line that names the endpoint and, for TLS trouble, what to check."""
        code = e.code().name if e.code() is not None else "?"
        details = e.details() or ""
        low = details.lower()
        head = f"{doing} at {self.describe()}: {code}: {details}"
        if self.tls is not None and any(k in low for k in ("ssl", "handshake", "certificate", "tls")):
            name = self.authority or self.address.rpartition(":")[0]
            return (
                f"TLS handshake with {self.address} failed ({doing}): {details}. Check --root-cert (the CA "
                f"that signed the server's certificate; now: "
                f"{self.tls.root_cert or 'the system roots'}) and that {name!r} is a name in that certificate"
                + (" (--authority sets the name checked)" if not self.authority else "")
            )
        if self.tls is None and e.code() == grpc.StatusCode.UNAVAILABLE and "tls" not in low:
            return head + " (if the endpoint speaks TLS, as an ingress on :443 does, give --tls)"
        return head

    def to_dict(self) -> dict:
        return {
            "address": self.address,
            "authority": self.authority,
            "tls": asdict(self.tls) if self.tls else None,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Endpoint:
        return cls(d["address"], d.get("authority"), TLS(**d["tls"]) if d.get("tls") else None)


@dataclass
class ConnectionOptions(Options):
    """How to reach an endpoint beyond its address, as `mtserve predict`, `mtserve loadtest` and the locustfile
    take it: each option declared once here, their flags generated from it (core/options.py)."""

    authority: str | None = option(
        None,
        "the :authority (host name) to send, when the address is an ingress that routes on it: "
        "KServe's <isvc>.<namespace>.<domain>",
        show=lambda v: v or "the address",
        metavar="HOST",
    )
    tls: bool = option(False, "connect with TLS (an ingress on :443)")
    root_cert: str | None = option(
        None,
        "PEM file of the CA that signed the server's certificate (with --tls)",
        show=lambda v: v or "the system's root certificates",
        metavar="PEM",
    )
    client_cert: str | None = option(
        None,
        "PEM client certificate, for mutual TLS (with --client-key)",
        show=lambda v: v or "none",
        metavar="PEM",
    )
    client_key: str | None = option(
        None, "PEM private key of --client-cert", show=lambda v: v or "none", metavar="PEM"
    )

    def tls_config(self) -> TLS | None:
        """The TLS these options ask for (any certificate implies --tls); None: plaintext."""
        root, cert, key = self.root_cert or None, self.client_cert or None, self.client_key or None
        if not (self.tls or root or cert or key):
            return None
        return TLS(root, cert, key)


def tls_from(args) -> TLS | None:
    """--tls / --root-cert / --client-cert / --client-key -> TLS (any certificate option implies --tls)."""
    return from_args(ConnectionOptions, args).tls_config()


def add_connection_arguments(g: argparse._ActionsContainer) -> None:
    """The options that say how to reach an endpoint beyond its address (mtserve predict, mtserve loadtest)."""
    add_dataclass_arguments(g, ConnectionOptions)
