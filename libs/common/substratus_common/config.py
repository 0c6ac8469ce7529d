"""One settings class for every service, read from ``SUBSTRATUS_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Cloud = Literal["gcp", "aws", "other", "local"]


class Settings(BaseSettings):
    """Configuration shared by all services; each service reads only what it needs."""

    model_config = SettingsConfigDict(env_prefix="SUBSTRATUS_", extra="ignore", use_attribute_docstrings=True)

    service: str = "unnamed"
    """Name of the running service, e.g. ``trainer``; set by each service's main."""

    cluster_name: str = "local"
    """Cluster name used in artifact paths and image names."""

    cloud: Cloud = "local"
    """Where the cluster runs: decides GPU node labels and how artifacts are mounted."""

    nats_url: str = Field("nats://127.0.0.1:4222", validation_alias="NATS_URL")
    """NATS server URL(s), comma-separated (also read from plain ``NATS_URL``). Never put credentials
    in it: they would travel into error messages; use the settings below."""

    # NATS credentials (issue 16): separate from the URL, the password a SecretStr so no repr shows it.
    nats_user: str | None = Field(None, validation_alias="NATS_USER")
    """NATS user name (the chart sets the service's name)."""

    nats_password: SecretStr | None = Field(None, validation_alias="NATS_PASSWORD")
    """Password of ``nats_user`` (the chart reads it from the services' password Secret)."""

    nats_creds_file: Path | None = Field(None, validation_alias="NATS_CREDS")
    """A NATS ``.creds`` file (user JWT and nkey seed), instead of user and password."""

    nats_ping_interval_s: int = Field(8, ge=1)
    """How often the client pings NATS. With ``nats_max_outstanding_pings`` unanswered pings the
    connection counts as dead and is replaced: a half-open connection is noticed within
    ``interval * (outstanding + 1)`` (24 s), not after nats-py's default of minutes."""

    nats_max_outstanding_pings: int = Field(2, ge=1)
    """Unanswered pings after which the NATS connection is dropped and re-established."""

    nats_outage_wait_s: float = Field(900.0, gt=0)
    """How long the watcher waits for a lost NATS connection to come back before it exits (and
    is restarted); meanwhile its ``/readyz`` says NATS is away."""

    report_resend_s: float = Field(60.0, gt=0)
    """How long after publishing a report a manager checks that the status says it; if not (the
    status writer gave up on it, or it was lost with the stream), it publishes it again, then after
    twice as long, at most every 10 minutes."""

    provision_streams: bool = True
    """Create or update the three streams at start. In a cluster only the watcher does (the chart
    sets this false elsewhere, so no other NATS user needs stream-admin rights); the others wait
    for the streams, at most ``stream_wait_s``."""

    stream_wait_s: float = Field(300.0, gt=0)
    """How long a service that does not provision waits for the streams before it gives up."""

    stream_replicas: int = 1
    """Replicas of each JetStream stream: 1 locally, 3 in production."""

    stream_max_age_s: float = 7 * 24 * 3600
    """How long events are kept in the streams."""

    stream_max_msgs_per_subject: int = 16
    """History kept per subject; the last message per subject rebuilds a service's view."""

    stream_duplicate_window_s: float = 120
    """Window in which a republished ``Nats-Msg-Id`` is dropped by the stream. Shorter than
    ``watch_resync_s`` on purpose: the resync stores only objects whose resourceVersion differs
    from the last message on their subject, and a message the stream's limits dropped is stored
    again by the next resync (a window longer than the resync would drop that repair)."""

    stream_max_bytes: int = Field(1024**3, ge=-1)
    """Bytes each stream keeps at most (-1: unbounded); when full the oldest messages are discarded."""

    stream_max_msg_size: int = Field(1024**2, ge=-1)
    """Largest message a stream stores (NATS's default max_payload); -1: the server's limit."""

    consumer_concurrency: int = Field(32, ge=1, le=1024)
    """Reconciles (work-queue workers) running at once per replica."""

    consumer_max_pending: int = Field(256, ge=1, le=65536)
    """Messages one replica holds unacked at most, queued for a key or in a pass over it; it fetches
    only while it holds fewer (docs/adr/102)."""

    replicas: int = Field(1, ge=1, le=1024)
    """Replicas of this service sharing its durable consumer (the Helm chart sets it from the
    Deployment's replicas): the consumer's max_ack_pending is ``consumer_max_pending * replicas``,
    so each replica added adds its share of in-flight capacity (docs/adr/102)."""

    ack_wait_s: float = Field(30.0, gt=0)
    """How long the bus waits for an ack before redelivering; running handlers heartbeat well within it."""

    max_deliveries: int = Field(8, ge=1)
    """Deliveries of one message before it goes to SUBSTRATUS_DEAD and the resource gets ReconcileFailed."""

    max_outage_retries: int = Field(120, ge=0)
    """Retries of one resource that an outage (NATS or the API server away, 429, 502-504) may take
    without counting towards ``max_deliveries``: with the backoff's 60 s cap, about two hours of
    outage end in convergence rather than ReconcileFailed; past them they count, so retries stay
    bounded."""

    retry_backoff_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    """Nak delays by delivery count for errors that may pass; the last one repeats."""

    watch_resync_s: float = Field(600.0, gt=0)
    """How often the watcher compares every live object with the last message on its subject and
    stores what differs (what the stream's limits dropped, or what a lost publish never stored);
    unchanged objects are not stored again."""

    watch_timeout_s: int = Field(25, ge=1)
    """How long each watch asks the API server to stay open (``timeoutSeconds``); the watcher then
    watches again from where it was."""

    watch_stall_s: float = Field(30.0, gt=0)
    """A watch on which nothing at all arrived for this long (not even the server's end at
    ``watch_timeout_s``) is on a half-open connection: it is dropped and watched again on a new one."""

    health_host: str = "127.0.0.1"
    """Address of the /healthz, /readyz and /metrics server."""

    health_port: int = 0
    """Port of the health server; 0 picks a free one (logged at start)."""

    shutdown_grace_s: float = 20.0
    """On SIGTERM: how long in-flight handlers may finish before they are cancelled."""

    job_backoff_limit: int = Field(2, ge=0)
    """Retries of a failed data-loader or modeller Job (the Job's backoffLimit) before JobFailed."""

    gpu_types_file: Path | None = None
    """YAML/JSON file extending the built-in GPU-type table (cloud -> node labels per type)."""

    log_level: str = "INFO"
    """Python log level name."""

    bucket_url: str = "s3://substratus"
    """Where artifacts and uploads live: ``s3://<bucket>``, ``gs://<bucket>`` or ``file:///<dir>``."""

    s3_endpoint_url: str | None = None
    """S3 endpoint for a non-AWS S3 (SeaweedFS, MinIO); AWS when unset. Keys: the standard AWS variables."""

    s3_region: str = "us-east-1"
    """Region used to sign S3 requests."""

    s3_public_endpoint_url: str | None = None
    """Endpoint that signed upload URLs point at, when clients reach S3 at another address than the
    services do (e.g. an in-cluster MinIO behind an ingress); ``s3_endpoint_url`` when unset."""

    gcs_endpoint_url: str | None = None
    """GCS endpoint for a GCS emulator; Google when unset."""

    signed_url_expiry_s: int = Field(900, ge=1, le=900)
    """Lifetime of a signed upload URL; at most 15 minutes."""

    registry: str = "127.0.0.1:5000"
    """Registry that built images are pushed to: ``<registry>/<cluster>-<kind>-<ns>-<name>:<tag>``."""

    storage_image: str = "ghcr.io/substratusai/substratus-storage:latest"
    """Image of the init container and sidecar that move artifacts on clusters without a CSI driver."""

    upload_poll_interval_s: float = Field(2.0, gt=0)
    """How often the uploader looks for an awaited upload in storage, until its signed URL expires."""

    builder_executor: Literal["job", "local"] = "job"
    """How the builder runs a build: ``job`` (a Kaniko Job in the resource's namespace, the default in
    clusters) or ``local`` (buildah on the builder's own machine, pushing to ``registry``; ``make up``)."""

    kaniko_image: str = "ghcr.io/osscontainertools/kaniko:v1.28.3"
    """Image of the build Job: the maintained community fork of Kaniko (docs/adr/080); pin a digest
    in production."""

    git_image: str = "docker.io/alpine/git:v2.52.0"
    """Image of the build Job's init container that clones a ``spec.build.git`` repository."""

    registry_push_secret: str | None = None
    """Name of a ``kubernetes.io/dockerconfigjson`` Secret, in the resource's namespace, that Kaniko
    pushes with; unset when the node or workload identity may push (GKE, EKS)."""

    registry_insecure: bool = False
    """The registry speaks plain HTTP or has an untrusted certificate (local registries)."""

    build_backoff_limit: int = Field(1, ge=0)
    """Retries of a failed build Job (its backoffLimit) before ``Built=False/JobFailed``."""

    builder_local_dir: Path | None = None
    """Local executor: where buildah keeps its storage (base images stay cached) and the build logs;
    a temporary directory per build, removed after it, when unset."""

    local_build_timeout_s: float = Field(3600.0, gt=0)
    """Local executor: a build (clone or download, buildah build and push) running longer fails."""

    @model_validator(mode="after")
    def _stall_outlasts_the_watch(self) -> Settings:
        if self.watch_stall_s <= self.watch_timeout_s:
            raise ValueError(
                f"SUBSTRATUS_WATCH_STALL_S ({self.watch_stall_s:g}) must be longer than SUBSTRATUS_WATCH_TIMEOUT_S"
                f" ({self.watch_timeout_s}): a healthy watch ends after the timeout and must not count as stalled"
            )
        return self
