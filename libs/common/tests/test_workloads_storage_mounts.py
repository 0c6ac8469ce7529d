"""Artifacts mounts per cloud: GCS FUSE CSI, Mountpoint for S3 CSI, and the portable helper."""

from __future__ import annotations

from substratus_common import config
from substratus_common.workloads import storage_mounts

OWN = storage_mounts.Mount("artifacts", "s3://b/abc/artifacts", "/content/artifacts", read_only=False, upload=True)
BASE = storage_mounts.Mount("model", "s3://b/def/artifacts", "/content/model", read_only=True, download=True)


def _settings(**kw: object) -> config.Settings:
    return config.Settings.model_validate({"service": "test", **kw})


def _gs(m: storage_mounts.Mount) -> storage_mounts.Mount:
    return storage_mounts.Mount(m.volume, m.url.replace("s3://", "gs://"), m.path, m.read_only, m.download, m.upload)


def test_mode_follows_the_cloud_and_the_bucket_scheme() -> None:
    assert storage_mounts.mode_for("gcp", "gs://b") == "gcsfuse"
    assert storage_mounts.mode_for("aws", "s3://b") == "mountpoint-s3"
    assert storage_mounts.mode_for("gcp", "s3://b") == "portable"
    assert storage_mounts.mode_for("local", "s3://b") == "portable"
    assert storage_mounts.mode_for("other", "gs://b") == "portable"


def test_gke_mounts_the_prefix_with_gcs_fuse() -> None:
    out = storage_mounts.plan(
        [_gs(OWN), _gs(BASE)], _settings(cloud="gcp", bucket_url="gs://b"), namespace="ns", claim_prefix="m-model"
    )
    assert out.pod_annotations == {"gke-gcsfuse/volumes": "true"}
    assert out.volumes[1] == {
        "name": "model",
        "csi": {
            "driver": "gcsfuse.csi.storage.gke.io",
            "readOnly": True,
            "volumeAttributes": {"bucketName": "b", "mountOptions": "implicit-dirs,only-dir=def/artifacts"},
        },
    }
    assert out.mounts == [
        {"name": "artifacts", "mountPath": "/content/artifacts", "readOnly": False},
        {"name": "model", "mountPath": "/content/model", "readOnly": True},
    ]
    assert not out.init_containers
    assert not out.claims


def test_eks_binds_a_claim_to_a_mountpoint_volume_per_mount() -> None:
    out = storage_mounts.plan(
        [OWN, BASE], _settings(cloud="aws", bucket_url="s3://b"), namespace="ns", claim_prefix="m-model"
    )
    assert [c["metadata"]["name"] for c in out.claims] == ["m-model-artifacts", "m-model-model"]
    assert out.volumes[1] == {
        "name": "model",
        "persistentVolumeClaim": {"claimName": "m-model-model", "readOnly": True},
    }
    pv = out.volumes_to_bind[1]
    assert pv["spec"]["csi"]["driver"] == "s3.csi.aws.com"
    assert pv["spec"]["claimRef"] == {"namespace": "ns", "name": "m-model-model"}
    assert "prefix def/artifacts/" in pv["spec"]["mountOptions"]
    assert "read-only" in pv["spec"]["mountOptions"]
    assert out.claims[1]["spec"]["volumeName"] == pv["metadata"]["name"]
    bound = storage_mounts.bind_claim(pv, {"metadata": {"uid": "c-1"}})
    assert bound["spec"]["claimRef"] == {"namespace": "ns", "name": "m-model-model", "uid": "c-1"}


def test_other_clusters_download_inputs_and_upload_artifacts_on_exit() -> None:
    settings = _settings(cloud="other", bucket_url="s3://b", s3_endpoint_url="http://s3:8333", storage_image="st:1")
    out = storage_mounts.plan([OWN, BASE], settings, namespace="ns", claim_prefix="m-model")
    assert out.volumes == [{"name": "artifacts", "emptyDir": {}}, {"name": "model", "emptyDir": {}}]
    download, upload = out.init_containers
    assert download["image"] == upload["image"] == "st:1"
    assert download["args"] == ["download", "s3://b/def/artifacts", "/content/model"]
    assert "restartPolicy" not in download
    assert upload["args"] == ["upload-on-exit", "/content/artifacts", "s3://b/abc/artifacts"]
    assert upload["restartPolicy"] == "Always"
    assert {"name": "SUBSTRATUS_S3_ENDPOINT_URL", "value": "http://s3:8333"} in upload["env"]
    assert upload["envFrom"] == [{"secretRef": {"name": "substratus-storage", "optional": True}}]
    assert out.termination_grace_s == storage_mounts.UPLOAD_GRACE_S
