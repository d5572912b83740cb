#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from real files: the checkpoints in Tests/Fixtures,
arrays saved by numpy, snippets of data/digits.csv.gz. Run from the repository root with numpy installed
(`pip install numpy`); the files it writes are committed, so nobody needs to run it to fuzz.

The JSON-lines seeds (corpus/json/run-*.jsonl, sweep-runs.jsonl) come from kiln runs instead (the commands
are in fuzz/README.md); this script leaves them alone.
"""
import gzip
import io
import json
import pathlib
import struct

import numpy as np

root = pathlib.Path(__file__).resolve().parent.parent
corpus = root / "fuzz" / "corpus"
fixtures = root / "Tests" / "Fixtures" / "checkpoints"


def write(target, name, data):
    folder = corpus / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    """A safetensors file as the format's reference writer lays it out: sorted by name, header padded to 8."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, array) in tensors.items():
        blob = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def header_metadata(path):
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + length])["__metadata__"]


# safetensors: Kiln's smallest fixture checkpoint, and one file per dtype and shape kind.
write("safetensors", "kan-checkpoint.safetensors", (fixtures / "kan.safetensors").read_bytes())
values = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
write("safetensors", "f32-with-metadata.safetensors", safetensors({"weight": ("F32", values)}, {"note": "two by three"}))
write("safetensors", "f64.safetensors", safetensors({"w": ("F64", values.astype(np.float64))}))
write("safetensors", "f16.safetensors", safetensors({"w": ("F16", values.astype(np.float16))}))
bf16 = (values.view(np.uint32) >> 16).astype(np.uint16)
write("safetensors", "bf16.safetensors", safetensors({"w": ("BF16", bf16)}))
write("safetensors", "scalar-and-empty.safetensors",
      safetensors({"a.scalar": ("F32", np.array(1.5, dtype=np.float32)), "b.empty": ("F32", np.zeros((0, 4), dtype=np.float32)),
                   "c.nan": ("F32", np.array([np.nan, np.inf, -0.0], dtype=np.float32))}))

# checkpoint: each fixture's two configuration texts, training then model, one per line.
for path in sorted(fixtures.glob("*.safetensors")):
    metadata = header_metadata(path)
    write("checkpoint", path.stem + ".txt", metadata["kiln.training"] + "\n" + metadata["kiln.model"])

# npy: Kiln's fixture outputs and arrays saved by numpy in every dtype, both byte orders and memory orders,
# the three format versions, and a few dtypes Kiln refuses.
for path in sorted(fixtures.glob("*.npy")):
    if path.stat().st_size < 1024:
        write("npy", path.name, path.read_bytes())


def npy(array, version=None):
    buffer = io.BytesIO()
    if version is None:
        np.save(buffer, array)
    else:
        np.lib.format.write_array(buffer, array, version=version)
    return buffer.getvalue()


grid = np.arange(12).reshape(3, 4)
for dtype in ["<f4", "<f8", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "|b1"]:
    write("npy", f"grid-{np.dtype(dtype).name}.npy", npy((grid % 2 == 0) if dtype == "|b1" else grid.astype(dtype)))
write("npy", "big-endian-f4.npy", npy(grid.astype(">f4")))
write("npy", "big-endian-i8.npy", npy(grid.astype(">i8")))
write("npy", "fortran-order.npy", npy(np.asfortranarray(grid.reshape(2, 3, 2).astype("<f4"))))
write("npy", "scalar.npy", npy(np.float64(2.5)))
write("npy", "empty-rows.npy", npy(np.zeros((0, 3), dtype="<f4")))
write("npy", "vector-nan-inf.npy", npy(np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45], dtype="<f4")))
write("npy", "version-2.npy", npy(grid.astype("<f4"), version=(2, 0)))
write("npy", "version-3.npy", npy(grid.astype("<f4"), version=(3, 0)))
write("npy", "unsupported-f2.npy", npy(grid.astype("<f2")))
write("npy", "unsupported-structured.npy", npy(np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")])))
write("npy", "unsupported-unicode.npy", npy(np.array(["ab", "c"])))

# csv and gzip: the first rows of the digits data set, and small tables in each dialect the parser reads.
digits = gzip.decompress((root / "data" / "digits.csv.gz").read_bytes()).decode()
digits_head = "".join(digits.splitlines(keepends=True)[:6])
tables = {
    "digits-head.csv": digits_head,
    "header-comma.csv": "x1,x2,label\n0.5,-1.25,1\n3e-3,2,0\n",
    "semicolon.csv": "a;b\n1;2\n3;4\n",
    "whitespace.csv": "1 2\t3\n  4   5 6\n",
    "quoted-crlf-bom.csv": "\ufeff\"x\",\"y\"\r\n\"1.5\", \"2\"\r\n-inf,nan\r\n",
    "blank-lines.csv": "\n1,2\n\n3,4\n\n",
    "one-column.csv": "7\n8\n9\n",
}
for name, text in tables.items():
    write("csv", name, text)
    write("gzip", name + ".gz", gzip.compress(text.encode(), mtime=0))
write("gzip", "two-members.csv.gz", gzip.compress(b"1,2\n", mtime=0) + gzip.compress(b"3,4\n", mtime=0))
write("gzip", "zero-padding.csv.gz", gzip.compress(b"1,2\n3,4\n", mtime=0) + bytes(16))
write("gzip", "stored-block.csv.gz", gzip.compress(b"5,6\n", compresslevel=0, mtime=0))

# formula: the formulas of the README and the tests, and each operator and function.
formulas = [
    "x1^2 + sin(pi*x2)", "exp(sin(pi*x1)+x2^2)", "-x1^2", "2^3^2", "x1 - x2 - x3",
    "sqrt(abs(x1))/2 + tanh(0) + log(exp(1.5e0))", "x1*x2", "sin(x1)*x2", "cos(x1) / (1 + x2^2)",
    "tan(0.5*x1) - 1e-3*x3", "+x1 * -x2", ".5*x10",
]
for index, formula in enumerate(formulas):
    write("formula", f"formula-{index:02}.txt", formula)

# text: texts long enough for --seq-len 8 (more than 100 characters), plain and with many scripts.
write("text", "english.txt",
      "Kiln trains neural networks on any OpenCL device, or on the CPU through OpenBLAS, with the same model code.\n"
      "Its kernels are plain .cl files, read and compiled at run time.\n")
write("text", "unicode.txt",
      "Ελληνικά και русский текст, 日本語のテキスト, emoji 🔥🧪 and e\u0301 (e with a combining accent), "
      "a family 👨\u200d👩\u200d👧 and flags 🇫🇷🇩🇪, Windows lines\r\nand tabs\tend.\n")
write("text", "code.txt", (root / "scripts" / "install-packages.sh").read_text()[:600])
