"""Reads a sweep back as an MLflow user does, with MLflow's own Python client, and prints what
the test checks as one JSON object: the child that search_runs ranks first, the parent's
params, tags and artifacts, every param value, each child's datasets, and the probabilities
that mlflow.pyfunc.load_model("runs:/<id>/model") predicts for raw pixels in a file.

Usage: python mlflow_readback.py TRACKING_URI EXPERIMENT PIXELS.bin SIZE
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

uri, experiment, pixels, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
mlflow.set_tracking_uri(uri)
client = MlflowClient(uri)
exp = client.get_experiment_by_name(experiment)
ranked = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string="tags.mlflow.parentRunId != ''",
                            order_by=["metrics.final_val_fbeta DESC"], output_format="list")
runs = client.search_runs([exp.experiment_id])
parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
best = ranked[0]
children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
x = np.fromfile(pixels, dtype=np.float32).reshape(-1, size, size, 3)
model = mlflow.pyfunc.load_model(f"runs:/{best.info.run_id}/model")
probs = model.predict(x)
print(json.dumps({
    "best_run_id": best.info.run_id, "best_final_val_fbeta": best.data.metrics.get("final_val_fbeta"),
    "ranked": [[r.info.run_name, r.data.metrics.get("final_val_fbeta")] for r in ranked],
    "parent": {"params": parent.data.params, "tags": parent.data.tags, "metrics": parent.data.metrics,
               "artifacts": sorted(a.path for a in client.list_artifacts(parent.info.run_id))},
    "experiment_tags": exp.tags,
    "params": [v for r in runs for v in r.data.params.values()],
    "datasets": {r.info.run_name: [{"name": d.dataset.name, "digest": d.dataset.digest, "source": d.dataset.source,
                                    "context": [t.value for t in d.tags if t.key == "mlflow.data.context"]}
                                   for d in r.inputs.dataset_inputs] for r in children},
    "logged_models": sorted((m.name, m.source_run_id) for m in client.search_logged_models(experiment_ids=[exp.experiment_id])),
    "user_ids": sorted({r.info.user_id for r in runs}),
    "columns": list(probs.columns), "probs": probs.values.tolist(),
}))
