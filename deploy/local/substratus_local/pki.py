"""Certificates and keys of the local control plane: a CA, the API server's serving cert,
an admin client cert (group system:masters) and the service-account signing key."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _sign(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool = False,
    usages: list[x509.ObjectIdentifier] | None = None,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _load_ca(pki: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return cert, key


def _serving_sans(*names: str) -> list[x509.GeneralName]:
    return [
        x509.DNSName("localhost"),
        *(x509.DNSName(n) for n in names),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]


def ensure(pki: Path) -> None:
    """Create whatever part of the PKI under ``pki`` is missing (so restarts keep trust)."""
    pki.mkdir(parents=True, exist_ok=True)
    if not (pki / "ca.crt").exists():
        ca_key = _key()
        ca_name = _name("substratus-local-ca")
        _write_key(ca_key, pki / "ca.key")
        _write_cert(_sign(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True), pki / "ca.crt")
    ca_cert, ca_key = _load_ca(pki)
    ca_name = ca_cert.subject

    def issue(stem: str, subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName] | None) -> None:
        if (pki / f"{stem}.crt").exists():
            return
        key = _key()
        cert = _sign(subject, key.public_key(), ca_name, ca_key, usages=[usage], sans=sans)
        _write_key(key, pki / f"{stem}.key")
        _write_cert(cert, pki / f"{stem}.crt")

    apiserver_sans = _serving_sans(
        "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"
    )
    apiserver_sans.append(x509.IPAddress(ipaddress.ip_address("10.96.0.1")))
    issue("apiserver", _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, apiserver_sans)
    issue("admin", _name("substratus-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH, None)
    # kwok's kubelet-like server: the API server proxies logs, exec and port-forward to it.
    issue("kubelet", _name("kwok-kubelet"), ExtendedKeyUsageOID.SERVER_AUTH, _serving_sans())
    if not (pki / "sa.key").exists():
        sa_key = _key()
        _write_key(sa_key, pki / "sa.key")
        (pki / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
