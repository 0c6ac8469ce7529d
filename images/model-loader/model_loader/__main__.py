"""``python -m model_loader``: import a model into ``/content/artifacts``.

Params (one source):
- ``url``: an http(s) or file URL of a ``model.json`` (format ``substratus-ngram/v1``), checked
  before it is stored;
- ``name``: a model the image ships (``SUBSTRATUS_SHIPPED_MODELS``, default
  ``/opt/substratus/models``), e.g. ``base``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from substratus_workload import contract, fetch, ngram

SHIPPED = "/opt/substratus/models"


def load_model(params: Mapping[str, str | int], shipped: Path) -> ngram.Model:
    url, name = contract.param_str(params, "url"), contract.param_str(params, "name")
    if bool(url) == bool(name):
        raise contract.ParamError("set exactly one of the params 'url' and 'name'")
    if name:
        known = (
            sorted(p.name for p in shipped.iterdir() if (p / ngram.MODEL_FILE).is_file()) if shipped.is_dir() else []
        )
        if name not in known:
            raise contract.ParamError(f"no shipped model {name!r}; this image ships: {', '.join(known) or 'none'}")
        return ngram.load(shipped / name)
    assert url is not None
    with tempfile.TemporaryDirectory() as tmp:
        fetch.download(url, Path(tmp) / ngram.MODEL_FILE)
        model = ngram.load(Path(tmp))
    model.sources.append(f"imported:{url}")
    return model


def run(root: Path, env: Mapping[str, str]) -> int:
    try:
        params = contract.load_params(root, env)
        model = load_model(params, Path(env.get("SUBSTRATUS_SHIPPED_MODELS", SHIPPED)))
    except contract.ParamError as error:
        return contract.fail(str(error), 2)
    except (fetch.FetchError, ngram.ModelError) as error:
        return contract.fail(f"cannot import the model: {error}", 1)
    path = ngram.save(model, root / "artifacts")
    print(f"imported a {model.order}-gram model of {model.characters} characters into {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(contract.content_root(), os.environ))
