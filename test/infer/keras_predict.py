"""Opens a model exported by `exp export --format keras-h5` with Keras, as a Python user would,
and prints its probabilities for preprocessed inputs (float32, N x S x S x 3, in a raw file)
with the metadata the file carries, as JSON on stdout."""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

path, inputs, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = keras.models.load_model(path, compile=False)
with h5py.File(path, "r") as f:
    meta = json.loads(f.attrs["exp_metadata"])
x = np.fromfile(inputs, dtype=np.float32).reshape(-1, size, size, 3)
probs = model.predict(x, verbose=0)
print(json.dumps({"keras": keras.__version__, "meta": meta, "probs": probs.tolist(), "layers": len(model.layers)}))
