"""Progress measures of a training run's snapshots, in numpy alone, in the library's conventions.

After Nanda, Chan, Lieberum, Smith and Steinhardt (2023), "Progress measures for grokking via
mechanistic interpretability" (ICLR 2023, arXiv:2301.05217), adapted from their one-layer
transformer to this crate's MLP: logits = fc2 @ relu(fc1[:, a] + fc1[:, p + b]) (no biases).

The snapshot file is the `.safetensors` the library writes (`src/io/snapshots.rs`): tensors
`epochs` (I64 [S]), `fc1.weight` (F32 [S, h, 2p]), `fc2.weight` (F32 [S, p, h]) and metadata
`config` (the training configuration as JSON), parsed here by hand. The data set and split are
rebuilt from the config: rows r = a*p + b (div leaves b = 0 out), labels op(a, b) mod p,
perm = RandomState(seed).permutation(n), the first int(train_fraction * p * p) (int(f * n) for
div) train.

Everything is computed in a basis of coordinates y in 0..m where the operation is addition mod m:
the identity (m = p), b negated for sub, the discrete log to the smallest primitive root g
(m = p - 1, residue 0 has no coordinate) for mul and, b negated, div with p a prime > 2. The
"view" W1a[n, y] = fc1[n, A[y]], W1b[n, y] = fc1[n, p + B[y]], W2[y, n] = fc2[C[y], n].
pow(v)[k] = |V[k]|^2 + |V[m-k]|^2 with V = fft(v), k = 0..m//2 (one term at k = 0 and 2k = m).
Measures, one value per snapshot (weights as float64):
- train_loss, val_loss: mean cross-entropy on the split's rows.
- key_frequencies (from the last snapshot): the distinct strongest frequencies k in 1..m//2 of
  the neurons' input power pow(W1a[n]) + pow(W1b[n]) (first on ties; neurons with no
  non-constant power skipped).
- restricted_loss: the centred logits projected onto cos/sin(2 pi k (s - coordC(c)) / m) over
  the key frequencies k, s = coordA(a) + coordB(b), fitted by least squares per k over all rows
  with coordinates; mean CE on those rows (the paper's restricted loss).
- excluded_loss: the centred logits minus that projection, mean CE on the training rows among
  them (the paper's excluded loss).
- gini_fc1, gini_fc2: Gini coefficient of the per-frequency norms sqrt(sum_n pow(.)[k]),
  k = 0..m//2, of the input (W1a and W1b) and output (W2[:, n]) vectors (the paper's sparsity).
- weight_norm: sum of squares of all weights (the paper's total sum of squared weights).
- single_frequency_share: fraction of neurons with >= 85% of their input power in one k >= 1.
- ipr, ipr_mean: per neuron, sum_k P[k]^2 / (sum_k P[k])^2 over k >= 1 of its input power P
  (Doshi et al.'s inverse participation ratio, r = 2; 0 without non-constant power), and the mean.
- replaced_accuracy: accuracy on all rows after every view vector is replaced by its best single
  cosine (first k maximising the power, phase = angle(V[k]), offset = mean), weights rounded to f32.

Usage: python3 reference/progress_measures.py SNAPSHOTS.safetensors [--out OUT.json]
       [--compare RUST.json] [--key-frequencies 4,17,...]
--compare checks every measure against the library's JSON (relative tolerance 1e-6, absolute
floor 1e-12; epochs, m and key_frequencies exactly) and exits 1 on any difference.
"""
import argparse, json, struct, sys
import numpy as np

MEASURES = ["train_loss", "val_loss", "restricted_loss", "excluded_loss", "gini_fc1", "gini_fc2",
            "weight_norm", "single_frequency_share", "replaced_accuracy", "ipr", "ipr_mean"]


def read_safetensors(path):
    """(tensors by name as numpy arrays, metadata dict) of a safetensors file."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    dtypes = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
    tensors = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return tensors, meta


def is_prime(p):
    return p >= 2 and all(p % d for d in range(2, int(p ** 0.5) + 1))


def primitive_root(p):
    """Smallest g in 2..p with g^((p-1)/q) != 1 mod p for every prime factor q of p - 1."""
    factors, x, d = set(), p - 1, 2
    while d * d <= x:
        while x % d == 0:
            factors.add(d); x //= d
        d += 1
    if x > 1:
        factors.add(x)
    return next(g for g in range(2, p) if all(pow(g, (p - 1) // q, p) != 1 for q in factors))


def dataset(op, p):
    """(a, b, label) of the data set's rows, ascending row id a*p + b."""
    a, b = np.repeat(np.arange(p), p), np.tile(np.arange(p), p)
    if op == "div":
        keep = b != 0
        a, b = a[keep], b[keep]
        inv = np.array([pow(int(x), p - 2, p) for x in b])
        return a, b, a * inv % p
    labels = {"add": a + b, "sub": a - b, "mul": a * b, "quadratic": a * a + a * b + b * b,
              "cubic": a ** 3 + a * b}
    return a, b, labels[op] % p


def basis(op, p):
    """(A, B, C, m, name): the residue of operand a, operand b and the result at each coordinate."""
    ids = np.arange(p)
    if op in ("mul", "div") and is_prime(p) and p > 2:
        g, m = primitive_root(p), p - 1
        logs = np.array([pow(g, y, p) for y in range(m)])
        negated = logs[(-np.arange(m)) % m]
        if op == "mul":
            return logs, logs, logs, m, f"discrete log to {g}"
        return logs, negated, logs, m, f"discrete log to {g}, b negated"
    if op == "sub":
        return ids, ids[(-ids) % p], ids, p, "identity, b negated"
    return ids, ids, ids, p, "identity"


def coords(X, p):
    """coord[x] = the y with X[y] = x, or -1 where x has none."""
    out = np.full(p, -1)
    out[X] = np.arange(len(X))
    return out


def pow_spectrum(V, m):
    """pow(v)[k], k = 0..m//2, of the DFTs V along the last axis."""
    sq = np.abs(V) ** 2
    out = sq[..., :m // 2 + 1].copy()
    k = np.arange(1, m // 2 + 1)
    k = k[2 * k != m]
    out[..., k] += sq[..., m - k]
    return out


def ce(logits, labels):
    """Cross-entropy of each row: logsumexp(logits) - logits[label]."""
    mx = logits.max(axis=1, keepdims=True)
    lse = mx[:, 0] + np.log(np.exp(logits - mx).sum(axis=1))
    return lse - logits[np.arange(len(labels)), labels]


def mean(x):
    """The mean, 0 for no values (e.g. no validation rows at train_fraction 1)."""
    return float(np.mean(x)) if len(x) else 0.0


def gini(x):
    x = np.sort(x)
    n, total = len(x), x.sum()
    return 0.0 if total == 0 else float(np.sum((2 * np.arange(1, n + 1) - n - 1) * x) / (n * total))


def forward(fc1, fc2, a, b, p):
    return (fc2 @ np.maximum(fc1[:, a] + fc1[:, p + b], 0)).T


def fit_cosines(v, m):
    """Best single cosine of each row of v (length m), reconstructed."""
    V = np.fft.fft(v, axis=-1)
    k = np.arange(1, m // 2 + 1)
    power = np.where(2 * k == m, 1.0, 2.0) * np.abs(V[:, k]) ** 2 / m
    freq = k[np.argmax(power, axis=1)]  # first maximum: ties go to the smallest k
    Vf = V[np.arange(len(v)), freq]
    scale = np.where(2 * freq == m, 1.0, 2.0) * np.abs(Vf) / m
    y = np.arange(m)
    angle = 2 * np.pi * ((freq[:, None] * y[None, :]) % m) / m + np.angle(Vf)[:, None]
    return v.mean(axis=1)[:, None] + scale[:, None] * np.cos(angle)


def measures(path, key_frequencies=None):
    t, meta = read_safetensors(path)
    cfg = json.loads(meta["config"])
    p, h = cfg["model"]["p"], cfg["model"]["d_hidden"]
    op = cfg.get("operation") or "add"
    epochs = [int(e) for e in t["epochs"]]
    FC1 = t["fc1.weight"].astype(np.float64).reshape(len(epochs), h, 2 * p)
    FC2 = t["fc2.weight"].astype(np.float64).reshape(len(epochs), p, h)

    a, b, lab = dataset(op, p)
    n = len(lab)
    perm = np.random.RandomState(cfg["seed"]).permutation(n)
    f = cfg["train_fraction"]
    n_train = int(f * p * p) if n == p * p else int(f * n)
    is_train = np.zeros(n, bool)
    is_train[perm[:n_train]] = True

    A, B, C, m, name = basis(op, p)
    cA, cB, cC = coords(A, p), coords(B, p), coords(C, p)
    half = m // 2

    def view(fc1, fc2):
        return fc1[:, A], fc1[:, p + B], fc2[C, :].T  # [h, m] each (W2 as rows per neuron)

    def input_power(fc1, fc2):
        W1a, W1b, _ = view(fc1, fc2)
        return pow_spectrum(np.fft.fft(W1a), m) + pow_spectrum(np.fft.fft(W1b), m)  # [h, half+1]

    if key_frequencies is None:
        # Each neuron's strongest input frequency (first on ties), over neurons with any
        # non-constant input power; distinct, ascending.
        P = input_power(FC1[-1], FC2[-1])[:, 1:]  # [h, half]
        used = P.max(axis=1) > 0
        key_frequencies = sorted({int(k) + 1 for k in np.argmax(P[used], axis=1)})

    # Restricted/excluded loss: rows with coordinates; D[r, c] = (s_r - coordC(c)) mod m, where
    # the class has a coordinate. cos_k[r, c] = cos(2 pi k D / m) there, 0 elsewhere, so every
    # sum over (r, c) is a sum over d of (number / sum of Lc of the entries with D = d).
    R = (cA[a] >= 0) & (cB[b] >= 0)
    s = (cA[a[R]] + cB[b[R]]) % m
    has_c = cC >= 0
    D = (s[:, None] - cC[None, :]) % m
    count = np.bincount(D[:, has_c].ravel(), minlength=m)
    d = np.arange(m)
    cos_t = {k: np.cos(2 * np.pi * k * d / m) for k in key_frequencies}
    sin_t = {k: np.sin(2 * np.pi * k * d / m) for k in key_frequencies}

    out = {"epochs": epochs, "m": m, "basis": name, "key_frequencies": key_frequencies}
    out.update({k: [] for k in MEASURES})
    for fc1, fc2 in zip(FC1, FC2):
        logits = forward(fc1, fc2, a, b, p)
        loss = ce(logits, lab)
        out["train_loss"].append(mean(loss[is_train]))
        out["val_loss"].append(mean(loss[~is_train]))

        Lc = logits[R] - logits[R].mean(axis=1, keepdims=True)
        H = np.bincount(D[:, has_c].ravel(), weights=Lc[:, has_c].ravel(), minlength=m)
        wave = np.zeros(m)  # restricted[r, c] = wave[D[r, c]] where the class has a coordinate
        for k in key_frequencies:
            cc, ss = count @ cos_t[k] ** 2, count @ sin_t[k] ** 2
            alpha = (H @ cos_t[k]) / cc
            beta = 0.0 if ss <= 1e-9 * cc else (H @ sin_t[k]) / ss
            wave += alpha * cos_t[k] + beta * sin_t[k]
        restricted = np.where(has_c[None, :], wave[D], 0.0)
        out["restricted_loss"].append(mean(ce(restricted, lab[R])))
        excluded = Lc - restricted
        out["excluded_loss"].append(mean(ce(excluded[is_train[R]], lab[R][is_train[R]])))

        W1a, W1b, W2 = view(fc1, fc2)
        Pn = input_power(fc1, fc2)
        out["gini_fc1"].append(gini(np.sqrt(Pn.sum(axis=0))))
        out["gini_fc2"].append(gini(np.sqrt(pow_spectrum(np.fft.fft(W2), m).sum(axis=0))))
        out["weight_norm"].append(float((fc1 ** 2).sum() + (fc2 ** 2).sum()))
        T = Pn[:, 1:].sum(axis=1)
        single = (T > 0) & (Pn[:, 1:].max(axis=1, initial=0.0) >= 0.85 * T)
        out["single_frequency_share"].append(float(single.sum() / h))
        with np.errstate(invalid="ignore", divide="ignore"):
            ipr = np.where(T > 0, (Pn[:, 1:] ** 2).sum(axis=1) / T ** 2, 0.0)
        out["ipr"].append([float(v) for v in ipr])
        out["ipr_mean"].append(float(ipr.mean()))

        r1, r2 = fc1.copy(), fc2.copy()
        r1[:, A], r1[:, p + B], r2[C, :] = fit_cosines(W1a, m), fit_cosines(W1b, m), fit_cosines(W2, m).T
        r1, r2 = r1.astype(np.float32).astype(np.float64), r2.astype(np.float32).astype(np.float64)
        pred = np.argmax(forward(r1, r2, a, b, p), axis=1)
        out["replaced_accuracy"].append(float(np.mean(pred == lab)))
    return out


def compare(ours, theirs):
    """Print the largest relative difference of each measure; True when all agree."""
    ok = True
    for key in ("epochs", "m", "key_frequencies"):
        same = ours[key] == theirs.get(key)
        ok &= same
        print(f"{key:24s} {'same' if same else 'DIFFERENT: %s vs %s' % (ours[key], theirs.get(key))}")
    if ours["basis"] != theirs.get("basis"):
        print(f"{'basis':24s} note: {ours['basis']!r} vs {theirs.get('basis')!r}")
    print(f"{'measure':24s} max relative difference")
    for key in MEASURES:
        x = np.asarray(ours[key], float)
        y = np.asarray(theirs.get(key, []), float)
        if x.shape != y.shape:
            print(f"{key:24s} DIFFERENT lengths {len(x)} vs {len(y)}")
            ok = False
            continue
        both_nan = np.isnan(x) & np.isnan(y)
        diff = np.where(both_nan | (x == y), 0.0, np.abs(x - y))
        scale = np.maximum(np.abs(x), np.abs(y))
        bad = ~(diff <= np.maximum(1e-6 * scale, 1e-12))
        rel = np.where(diff == 0, 0.0, diff / np.where(scale > 0, scale, 1.0))
        worst = float(rel.max()) if len(rel) else 0.0
        print(f"{key:24s} {worst:.3e}{'  FAIL at snapshots %s' % np.flatnonzero(bad).tolist() if bad.any() else ''}")
        ok &= not bad.any()
    return ok


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("snapshots")
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    ap.add_argument("--compare", help="the library's JSON of the same snapshots")
    ap.add_argument("--key-frequencies", help="comma-separated, instead of the last snapshot's")
    args = ap.parse_args()
    keys = [int(k) for k in args.key_frequencies.split(",")] if args.key_frequencies else None
    result = measures(args.snapshots, keys)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    elif not args.compare:
        print(json.dumps(result, indent=1))
    if args.compare:
        sys.exit(0 if compare(result, json.load(open(args.compare))) else 1)
