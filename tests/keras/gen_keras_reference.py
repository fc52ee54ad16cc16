#!/usr/bin/python3
"""Reference data for tests/keras (run with Debian's /usr/bin/python3: python3-h5py, python3-numpy).

    /usr/bin/python3 tests/keras/gen_keras_reference.py [fixture.h5]

1. The real Keras 2.6 file ../shared/fixtures/keras/mnist_cnn_keras.h5: its weights are read with
   h5py and a forward pass written here in numpy (float64) gives the outputs for N_FIXTURE inputs
   (made by the same integer hash as test_keras.c's) -> data/mnist_cnn_reference.bin.
2. Files written here with h5py in the Keras 2 HDF5 layout and the Keras 3 .keras layout (no Keras
   is installed: these are our own files, see docs/keras.md), each with its numpy reference:
   graph_k2.h5 (functional: BatchNormalization, DepthwiseConv2D, Add, ReLU(6), Concatenate,
   ZeroPadding2D, AveragePooling2D 'same', LeakyReLU, GlobalAveragePooling2D, Dense, Multiply,
   Dropout, Softmax), seed_k2.h5 (the tutorial's seed model, narrower, with
   "visualization_layer"), graph_k3.keras (the graph in Keras 3's config.json + model.weights.h5,
   hard_sigmoid with Keras 3's meaning, MaxPooling2D, Reshape, GlobalMaxPooling2D), and the bad
   files of test_keras.c's refusal tests.
Golden files use tests/common/golden_file.h's TFXG format.
"""
import io
import json
import os
import re
import struct
import sys
import zipfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
N_FIXTURE = 256
M32 = 0xFFFFFFFF


def hash_image(k, n):
    """Image k of n pixels in [0, 1] (multiples of 1/255, a quarter of them lit): test_keras.c's hash."""
    out = np.zeros(n, dtype=np.float32)
    for i in range(n):
        x = (i * 2654435761 + k * 40503 + 12345) & M32
        x ^= x >> 13
        x = (x * 0x5BD1E995) & M32
        x ^= x >> 15
        out[i] = ((x >> 24) / 255.0) if ((x >> 8) & 3) == 0 else 0.0
    return out


def write_golden(path, arrays):
    with open(path, "wb") as f:
        f.write(b"TFXG" + struct.pack("<I", len(arrays)))
        for name, a in arrays:
            a = np.ascontiguousarray(a, dtype="<f4")
            f.write(struct.pack("<I", len(name)) + name.encode() + struct.pack("<I", a.ndim))
            f.write(struct.pack("<%dI" % a.ndim, *a.shape) + a.tobytes())


# ---- numpy forward pass (float64), from a layer list independent of libtfx ----

def same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def conv2d(x, w, b, stride, padding, groups=1):
    kh, kw, cin_g, cout = w.shape
    if padding == "same":
        t, bo = same_pads(x.shape[1], kh, stride)
        l, r = same_pads(x.shape[2], kw, stride)
        x = np.pad(x, ((0, 0), (t, bo), (l, r), (0, 0)))
    n, h, wd, c = x.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.zeros((n, oh, ow, cout))
    og = cout // groups
    for g in range(groups):
        xs = x[..., g * cin_g:(g + 1) * cin_g]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :]
                y[..., g * og:(g + 1) * og] += patch @ w[i, j][:, g * og:(g + 1) * og]
    return y + (b if b is not None else 0)


def depthwise(x, w, b, stride, padding):
    kh, kw, c, mult = w.shape
    full = np.zeros((kh, kw, 1, c * mult))
    y = None
    # output channel ch * mult + m reads input channel ch: a grouped conv with groups = c
    for ch in range(c):
        full[:, :, 0, ch * mult:(ch + 1) * mult] = w[:, :, ch, :]
    y = conv2d(x, full, b, stride, padding, groups=c)
    return y


def pool(x, k, s, padding, op):
    n, h, w, c = x.shape
    if padding == "same":
        t, bo = same_pads(h, k, s)
        l, r = same_pads(w, k, s)
    else:
        t = bo = l = r = 0
    xp = np.pad(x, ((0, 0), (t, bo), (l, r), (0, 0)), constant_values=np.nan)
    oh, ow = (h + t + bo - k) // s + 1, (w + l + r - k) // s + 1
    y = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, i * s:i * s + k, j * s:j * s + k, :]
            y[:, i, j, :] = np.nanmax(win, axis=(1, 2)) if op == "max" else np.nanmean(win, axis=(1, 2))
    return y


def act(x, name, keras3=False):
    if name in (None, "linear"):
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "hard_sigmoid":
        assert keras3
        return np.clip(x + 3, 0, 6) / 6
    if name == "swish":
        return x / (1 + np.exp(-x))
    raise ValueError(name)


def forward(layers, weights, x, keras3=False):
    """layers: [(class, name, config, [input names])]; weights: name -> list of arrays."""
    t = {}
    for cls, name, cfg, ins in layers:
        a = [t[i] for i in ins]
        W = weights.get(name, [])
        if cls == "InputLayer":
            y = x
        elif cls == "Conv2D":
            k = cfg["kernel_size"]
            y = conv2d(a[0], W[0], W[1] if cfg.get("use_bias", True) else None, cfg["strides"][0], cfg["padding"],
                       cfg.get("groups", 1))
            y = act(y, cfg["activation"], keras3)
        elif cls == "DepthwiseConv2D":
            y = act(depthwise(a[0], W[0], W[1] if cfg.get("use_bias", True) else None, cfg["strides"][0], cfg["padding"]),
                    cfg["activation"], keras3)
        elif cls == "Dense":
            y = act(a[0] @ W[0] + (W[1] if cfg.get("use_bias", True) else 0), cfg["activation"], keras3)
        elif cls == "BatchNormalization":
            g, be, mu, var = W
            y = (a[0] - mu) / np.sqrt(var + cfg["epsilon"]) * g + be
        elif cls in ("MaxPooling2D", "AveragePooling2D"):
            y = pool(a[0], cfg["pool_size"][0], cfg["strides"][0], cfg["padding"], "max" if cls[0] == "M" else "avg")
        elif cls == "GlobalAveragePooling2D":
            y = a[0].mean(axis=(1, 2))
        elif cls == "GlobalMaxPooling2D":
            y = a[0].max(axis=(1, 2))
        elif cls == "Flatten":
            y = a[0].reshape(a[0].shape[0], -1)
        elif cls == "Reshape":
            y = a[0].reshape((a[0].shape[0],) + tuple(cfg["target_shape"]))
        elif cls == "Dropout":
            y = a[0]
        elif cls == "ZeroPadding2D":
            (pt, pb), (pl, pr) = cfg["padding"]
            y = np.pad(a[0], ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        elif cls == "Add":
            y = sum(a)
        elif cls == "Multiply":
            y = a[0] * a[1]
        elif cls == "Concatenate":
            y = np.concatenate(a, axis=-1)
        elif cls == "ReLU":
            y = np.clip(a[0], 0, cfg["max_value"])
        elif cls == "LeakyReLU":
            s = cfg.get("alpha", cfg.get("negative_slope"))
            y = np.where(a[0] > 0, a[0], s * a[0])
        elif cls == "Activation":
            y = act(a[0], cfg["activation"], keras3)
        elif cls == "Softmax":
            y = act(a[0], "softmax")
        else:
            raise ValueError(cls)
        t[name] = y
    return t[layers[-1][1]]


# ---- writing Keras layouts ----

def keras2_config(layers, functional, name, input_shape):
    out = []
    for cls, lname, cfg, ins in layers:
        c = dict(cfg, name=lname)
        if cls != "InputLayer":
            c.setdefault("trainable", True)
            c.setdefault("dtype", "float32")
        e = {"class_name": cls, "config": c}
        if functional:
            e["name"] = lname
            if cls == "InputLayer":
                e["inbound_nodes"] = []
            else:
                e["inbound_nodes"] = [[[i, 0, 0, {}] for i in ins]]
        out.append(e)
    cfg = {"name": name, "layers": out}
    if functional:
        cfg["input_layers"] = [[layers[0][1], 0, 0]]
        cfg["output_layers"] = [[layers[-1][1], 0, 0]]
    return {"class_name": "Functional" if functional else "Sequential", "config": cfg}


def keras3_config(layers, name):
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
    out = []
    for cls, lname, cfg, ins in layers:
        c = dict(cfg, name=lname)
        if cls == "InputLayer":
            c["batch_shape"] = c.pop("batch_input_shape")
            c.pop("ragged", None)
        else:
            c.setdefault("trainable", True)
            c["dtype"] = policy
            if "alpha" in c:
                c["negative_slope"] = c.pop("alpha")
        e = {"module": "keras.layers", "class_name": cls, "config": c, "registered_name": None, "name": lname}
        if cls == "InputLayer":
            e["inbound_nodes"] = []
        else:
            tens = [{"class_name": "__keras_tensor__",
                     "config": {"shape": None, "dtype": "float32", "keras_history": [i, 0, 0]}} for i in ins]
            e["inbound_nodes"] = [{"args": [tens if len(tens) > 1 else tens[0]], "kwargs": {}}]
        out.append(e)
    return {"module": "keras", "class_name": "Functional", "registered_name": "Functional",
            "config": {"name": name, "trainable": True, "layers": out,
                       "input_layers": [layers[0][1], 0, 0], "output_layers": [layers[-1][1], 0, 0]}}


def weight_names(cls, cfg):
    if cls in ("Conv2D", "Dense"):
        return ["kernel", "bias"] if cfg.get("use_bias", True) else ["kernel"]
    if cls == "DepthwiseConv2D":
        return ["depthwise_kernel", "bias"] if cfg.get("use_bias", True) else ["depthwise_kernel"]
    if cls == "BatchNormalization":
        return ["gamma", "beta", "moving_mean", "moving_variance"]
    return []


def write_keras2_h5(path, layers, weights, functional, fixed_strings=False, config=None, drop=None, reshape=None):
    cfg = config if config is not None else json.dumps(keras2_config(layers, functional, "model", None))
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.6.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = cfg
        mw = f.create_group("model_weights")
        names = [l[1] for l in layers if l[0] != "InputLayer"]
        mw.attrs["layer_names"] = np.array([n.encode() for n in names])
        for cls, lname, c, ins in layers:
            if cls == "InputLayer":
                continue
            g = mw.create_group(lname)
            wn = ["%s/%s:0" % (lname, w) for w in weight_names(cls, c)]
            arrs = weights.get(lname, [])
            if drop == lname:
                wn, arrs = wn[:-1], arrs[:-1]
            if wn:
                g.attrs["weight_names"] = np.array([w.encode() for w in wn]) if fixed_strings else wn
            else:
                g.attrs["weight_names"] = np.zeros((0,))
            for w, a in zip(wn, arrs):
                if reshape == lname and w.endswith("bias:0"):
                    a = np.concatenate([a, a[:1]])
                g.create_dataset(w, data=a.astype(np.float32))


def to_snake_case(name):
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras3_keys(layers):
    """Keras 3's saving_lib files a layer's variables under layers/<key>/vars, key = the snake_case
    class name numbered by occurrence in the model's layer list (not the layer's name)."""
    used, keys = {}, {}
    for cls, lname, c, ins in layers:
        k = to_snake_case(cls)
        if k in used:
            used[k] += 1
            k = "%s_%d" % (k, used[k])
        else:
            used[k] = 0
        keys[lname] = k
    return keys


def write_keras3(path, layers, weights, config=None, extra=None, version="3.3.3"):
    cfg = config if config is not None else json.dumps(keras3_config(layers, "functional"))
    keys = keras3_keys(layers)
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        for cls, lname, c, ins in layers:
            g = f.create_group("layers/%s/vars" % keys[lname])
            for i, a in enumerate(weights.get(lname, [])):
                g.create_dataset(str(i), data=a.astype(np.float32))
    members = [("metadata.json", json.dumps({"keras_version": version, "date_saved": "2026-12-06@00:00:00"})),
               ("config.json", cfg), ("model.weights.h5", bio.getvalue())] + list(extra or [])
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:  # fixed dates: the same bytes on every run
            z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data, compress_type=zipfile.ZIP_DEFLATED)


def init_weights(layers, shapes, rng):
    w = {}
    for cls, lname, c, ins in layers:
        if lname in shapes:
            arrs = []
            for s in shapes[lname]:
                arrs.append((rng.standard_normal(s) * (0.5 / np.sqrt(np.prod(s[:-1]) if len(s) > 1 else 1))))
            if cls == "BatchNormalization":
                arrs[0] = 1 + 0.2 * rng.standard_normal(shapes[lname][0])
                arrs[3] = 0.5 + rng.random(shapes[lname][3])
            else:
                arrs[-1] = arrs[-1] * 0.3 if len(arrs) > 1 else arrs[-1]
            w[lname] = [a.astype(np.float32) for a in arrs]
    return w


def graph_layers(keras3):
    gate_act = "hard_sigmoid" if keras3 else "sigmoid"
    L = [
        ("InputLayer", "input_1", {"batch_input_shape": [None, 9, 9, 3], "dtype": "float32", "sparse": False, "ragged": False}, []),
        ("Conv2D", "c1", {"filters": 8, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "data_format": "channels_last",
                          "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": True}, ["input_1"]),
        ("BatchNormalization", "bn", {"axis": [3], "momentum": 0.99, "epsilon": 0.001, "center": True, "scale": True}, ["c1"]),
        ("Conv2D", "c2", {"filters": 8, "kernel_size": [1, 1], "strides": [1, 1], "padding": "valid", "activation": "linear",
                          "use_bias": False, "groups": 2}, ["bn"]),
        ("DepthwiseConv2D", "dw", {"kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "depth_multiplier": 1,
                                   "activation": "linear", "use_bias": True}, ["bn"]),
        ("Add", "add", {}, ["c2", "dw"]),
        ("ReLU", "relu6", {"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0}, ["add"]),
        ("Concatenate", "cat", {"axis": -1}, ["relu6", "c1"]),
        ("ZeroPadding2D", "zp", {"padding": [[1, 0], [0, 1]]}, ["cat"]),
        ("AveragePooling2D", "ap", {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"}, ["zp"]),
        ("LeakyReLU", "lrelu", {"alpha": 0.1}, ["ap"]),
    ]
    if keras3:
        L += [("MaxPooling2D", "mp", {"pool_size": [2, 2], "strides": [1, 1], "padding": "valid"}, ["lrelu"]),
              ("GlobalMaxPooling2D", "gp", {"keepdims": False}, ["mp"])]
    else:
        L += [("GlobalAveragePooling2D", "gp", {}, ["lrelu"])]
    L += [
        ("Dense", "gate", {"units": 16, "activation": gate_act, "use_bias": True}, ["gp"]),
        ("Multiply", "mul", {}, ["gp", "gate"]),
        ("Dropout", "drop", {"rate": 0.3}, ["mul"]),
        ("Dense", "logits", {"units": 5, "activation": "linear", "use_bias": True}, ["drop"]),
        ("Softmax", "probs", {"axis": -1}, ["logits"]),
    ]
    return L


GRAPH_SHAPES = {"c1": [(3, 3, 3, 8), (8,)], "bn": [(8,), (8,), (8,), (8,)], "c2": [(1, 1, 4, 8)],
                "dw": [(3, 3, 8, 1), (8,)], "gate": [(16, 16), (16,)], "logits": [(16, 5), (5,)]}


def seed_layers():
    def conv(name, f, inp):
        return ("Conv2D", name, {"filters": f, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
                                 "activation": "relu", "use_bias": True}, [inp])
    return [
        ("InputLayer", "input_1", {"batch_input_shape": [None, 8, 8, 3], "dtype": "float32", "sparse": False, "ragged": False}, []),
        conv("conv2d", 8, "input_1"), conv("visualization_layer", 16, "conv2d"), conv("conv2d_1", 32, "visualization_layer"),
        ("Flatten", "flatten", {}, ["conv2d_1"]),
        ("Dense", "dense", {"units": 32, "activation": "relu", "use_bias": True}, ["flatten"]),
        ("Dense", "dense_1", {"units": 10, "activation": "softmax", "use_bias": True}, ["dense"]),
    ]


SEED_SHAPES = {"conv2d": [(3, 3, 3, 8), (8,)], "visualization_layer": [(3, 3, 8, 16), (16,)],
               "conv2d_1": [(3, 3, 16, 32), (32,)], "dense": [(128, 32), (32,)], "dense_1": [(32, 10), (10,)]}


def fixture_reference(path):
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        layers, weights, prev = [], {}, None
        for e in cfg["config"]["layers"]:
            c = e["config"]
            layers.append((e["class_name"], c["name"], c, [prev] if prev else []))
            prev = c["name"]
            g = f["model_weights"].get(c["name"])
            if g is not None and len(g.attrs["weight_names"]):
                weights[c["name"]] = [np.array(g[n.decode() if isinstance(n, bytes) else n], dtype=np.float64)
                                      for n in g.attrs["weight_names"]]
    x = np.stack([hash_image(k, 28 * 28) for k in range(N_FIXTURE)]).reshape(N_FIXTURE, 28, 28, 1).astype(np.float64)
    y = forward(layers, weights, x)
    write_golden(os.path.join(DATA, "mnist_cnn_reference.bin"), [("probs", y)])
    print("mnist_cnn_reference.bin: %d inputs, argmax histogram %s" % (N_FIXTURE, np.bincount(y.argmax(1), minlength=10)))


def write_fuzz_seeds(fixture, graph2, graph3, tiny):
    """Seeds of tests/fuzz/fuzz_keras_config.c: real and own configs, minified."""
    d = os.path.join(HERE, "..", "fuzz", "corpus", "keras_config")
    os.makedirs(d, exist_ok=True)

    def put(name, cfg):
        with open(os.path.join(d, "seed-" + name), "w") as f:
            f.write(json.dumps(cfg, separators=(",", ":")))
    with h5py.File(fixture, "r") as f:
        put("mnist_cnn_keras2.json", json.loads(f.attrs["model_config"]))
    put("graph_k2.json", keras2_config(graph2, True, "model", None))
    put("graph_k3.json", keras3_config(graph3, "functional"))
    put("seed_k2.json", keras2_config(seed_layers(), False, "seed", None))
    put("tiny_k3.json", keras3_config(tiny, "tiny"))
    kinds = [("InputLayer", "in", {"batch_input_shape": [None, 6, 6, 2]}, []),
             ("ZeroPadding2D", "zp", {"padding": 1}, ["in"]),
             ("MaxPooling2D", "mp", {"pool_size": 2, "strides": None, "padding": "same"}, ["zp"]),
             ("BatchNormalization", "bn", {"axis": -1, "epsilon": 0.01, "center": False, "scale": True}, ["mp"]),
             ("Activation", "a1", {"activation": "tanh"}, ["bn"]),
             ("Activation", "a2", {"activation": "swish"}, ["a1"]),
             ("Activation", "a3", {"activation": "elu"}, ["a2"]),
             ("ReLU", "r", {"max_value": 6.0}, ["a3"]),
             ("ReLU", "r2", {"negative_slope": 0.1}, ["r"]),
             ("DepthwiseConv2D", "dw", {"kernel_size": 2, "depth_multiplier": 2, "activation": "relu6",
                                        "padding": "valid"}, ["r2"]),
             ("Conv2D", "c", {"filters": 4, "kernel_size": 1, "strides": 2, "groups": 2, "use_bias": False}, ["dw"]),
             ("Reshape", "rs", {"target_shape": [1, -1, 4]}, ["c"]),
             ("GlobalMaxPooling2D", "gm", {}, ["rs"]),
             ("Reshape", "rs2", {"target_shape": [-1]}, ["gm"]),
             ("Dense", "d", {"units": 3, "activation": "sigmoid"}, ["rs2"]),
             ("LeakyReLU", "lk", {"alpha": 0.2}, ["d"]),
             ("Dropout", "do", {"rate": 0.5}, ["lk"]),
             ("Softmax", "sm", {"axis": -1}, ["do"])]
    put("kinds_k2.json", keras2_config(kinds, False, "kinds", None))
    put("kinds_k2_functional.json", keras2_config(kinds, True, "kinds", None))


def main():
    os.makedirs(DATA, exist_ok=True)
    fixture = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../../shared/fixtures/keras/mnist_cnn_keras.h5")
    fixture_reference(fixture)
    rng = np.random.default_rng(19)
    refs = []
    # the graph, Keras 2 layout (fixed-length weight_names strings)
    L = graph_layers(False)
    W = init_weights(L, GRAPH_SHAPES, rng)
    write_keras2_h5(os.path.join(DATA, "graph_k2.h5"), L, W, True, fixed_strings=True)
    x = rng.random((6, 9, 9, 3))
    refs += [("graph_x", x), ("graph_k2", forward(L, {k: [a.astype(np.float64) for a in v] for k, v in W.items()}, x))]
    # the graph, Keras 3 layout
    L3 = graph_layers(True)
    write_keras3(os.path.join(DATA, "graph_k3.keras"), L3, W)
    refs += [("graph_k3", forward(L3, {k: [a.astype(np.float64) for a in v] for k, v in W.items()}, x, keras3=True))]
    # the seed model, Keras 2 Sequential
    S = seed_layers()
    SW = init_weights(S, SEED_SHAPES, rng)
    write_keras2_h5(os.path.join(DATA, "seed_k2.h5"), S, SW, False)
    xs = rng.random((4, 8, 8, 3))
    refs += [("seed_x", xs), ("seed_k2", forward(S, {k: [a.astype(np.float64) for a in v] for k, v in SW.items()}, xs))]
    write_golden(os.path.join(DATA, "keras_reference.bin"), refs)

    # ---- bad files (test_keras.c: each refused with a clear code and message), on a tiny model ----
    S = [("InputLayer", "input_1", {"batch_input_shape": [None, 4, 4, 1], "dtype": "float32"}, []),
         ("Conv2D", "visualization_layer", {"filters": 2, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
                                            "activation": "relu", "use_bias": True}, ["input_1"]),
         ("Flatten", "flatten", {}, ["visualization_layer"]),
         ("Dense", "dense", {"units": 2, "activation": "softmax", "use_bias": True}, ["flatten"])]
    SW = init_weights(S, {"visualization_layer": [(3, 3, 1, 2), (2,)], "dense": [(8, 2), (2,)]}, rng)
    bad = os.path.join(DATA, "bad")
    os.makedirs(bad, exist_ok=True)
    write_keras2_h5(os.path.join(bad, "missing_weight.h5"), S, SW, False, drop="dense")
    write_keras2_h5(os.path.join(bad, "wrong_shape.h5"), S, SW, False, reshape="visualization_layer")
    lam = S[:2] + [("Lambda", "lambda", {"function": ["4wEAAAAAAAAA", None, None], "function_type": "lambda",
                                         "module": "__main__", "output_shape": None, "arguments": {}},
                    ["visualization_layer"])]
    write_keras2_h5(os.path.join(bad, "lambda.h5"), lam, SW, False)
    dyn = [("InputLayer", "input_1", {"batch_input_shape": [None, None, None, 1], "dtype": "float32"}, [])] + S[1:]
    write_keras2_h5(os.path.join(bad, "dynamic_hw.h5"), dyn, SW, False)
    write_keras2_h5(os.path.join(bad, "malformed_json.h5"), S, SW, False,
                    config=json.dumps(keras2_config(S, False, "m", None))[:-7])
    # a zip whose extra entry points outside the archive
    write_keras3(os.path.join(bad, "path_outside.keras"), S, SW, extra=[("../../evil.txt", "x")])
    # a zip whose config.json states a size its data does not have (central directory and local header)
    good = open(os.path.join(DATA, "graph_k3.keras"), "rb").read()
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        info = z.getinfo("config.json")
    lie = bytearray(good)
    cd = lie.find(b"PK\x01\x02")
    while cd >= 0:
        nlen = struct.unpack_from("<H", lie, cd + 28)[0]
        if lie[cd + 46:cd + 46 + nlen] == b"config.json":
            struct.pack_into("<I", lie, cd + 24, info.file_size + 1000)
        cd = lie.find(b"PK\x01\x02", cd + 4)
    struct.pack_into("<I", lie, info.header_offset + 22, info.file_size + 1000)
    open(os.path.join(bad, "lying_size.keras"), "wb").write(bytes(lie))
    # a zip whose config.json data does not match its CRC-32 (both headers agree on the wrong one)
    crc = bytearray(good)
    cd = crc.find(b"PK\x01\x02")
    while cd >= 0:
        nlen = struct.unpack_from("<H", crc, cd + 28)[0]
        if crc[cd + 46:cd + 46 + nlen] == b"config.json":
            struct.pack_into("<I", crc, cd + 16, info.CRC ^ 0x5A5A5A5A)
        cd = crc.find(b"PK\x01\x02", cd + 4)
    struct.pack_into("<I", crc, info.header_offset + 14, info.CRC ^ 0x5A5A5A5A)
    open(os.path.join(bad, "bad_crc.keras"), "wb").write(bytes(crc))
    write_fuzz_seeds(fixture, L, L3, S)
    for root, _, files in os.walk(DATA):
        for fn in sorted(files):
            print("%-40s %7d bytes" % (os.path.relpath(os.path.join(root, fn), DATA), os.path.getsize(os.path.join(root, fn))))


if __name__ == "__main__":
    main()
