"""The sentence-transformers pipeline on transformers' ``AutoModel``, as a tlhub ``TransferModel``.

Implements the modules that text sentence-transformers models are made of (``Transformer``,
``Pooling``, ``Dense``, ``Normalize``) by reading their saved configs, and writes them back in the
same layout. Imported only when a model is built (it imports torch and transformers).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tlhub.adapters.hf import layer_index_groups, max_sequence_length, quiet_transformers_logging
from tlhub.adapters.model import LayerGroup, TransferModel
from tlhub.errors import BackboneNotFoundError, ConfigError, TlhubError

#: sentence-transformers' legacy boolean pooling keys, in the order it concatenates them.
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
POOLING_MODES = tuple(LEGACY_POOLING_KEYS.values())
SUPPORTED_MODULES = ("Transformer", "Pooling", "Dense", "Normalize")


# ------------------------------------------------------------------------------------------
# the pipeline modules


class Pooling(nn.Module):
    """Token embeddings -> one vector per text, as sentence-transformers' ``Pooling`` computes it."""

    def __init__(self, dimension: int, modes: Sequence[str]):
        super().__init__()
        bad = [m for m in modes if m not in POOLING_MODES]
        if bad or not modes:
            raise TlhubError(f"unsupported pooling mode(s) {bad or modes}", fix=f"supported: {', '.join(POOLING_MODES)}")
        self.dimension = int(dimension)
        self.modes = tuple(modes)
        self.out_features = self.dimension * len(self.modes)

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is None or attention_mask.shape[1] != tokens.shape[1]:
            attention_mask = torch.ones(tokens.shape[:-1], dtype=torch.long, device=tokens.device)
        acc = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
        out = []
        for mode in self.modes:
            if mode == "cls":
                first = attention_mask.to(torch.int).argmax(dim=1)
                out.append(tokens[torch.arange(tokens.shape[0], device=tokens.device), first])
            elif mode == "max":
                mask = attention_mask.unsqueeze(-1).expand_as(tokens)
                out.append(tokens.masked_fill(mask == 0, float("-inf")).max(dim=1).values)
            elif mode in ("mean", "mean_sqrt_len_tokens"):
                mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
                summed = (tokens * mask).sum(dim=1, dtype=acc)
                count = torch.clamp(mask.sum(dim=1, dtype=acc), min=1e-9)
                out.append((summed / (count if mode == "mean" else torch.sqrt(count))).to(tokens.dtype))
            elif mode == "weightedmean":
                mask = attention_mask.unsqueeze(-1).to(acc)
                weights = torch.arange(1, tokens.shape[1] + 1, device=tokens.device, dtype=acc).view(1, -1, 1)
                weights = weights - attention_mask.to(torch.int32).argmax(dim=1).view(-1, 1, 1)
                weighted = mask * weights
                out.append(((tokens * weighted).sum(dim=1) / torch.clamp(weighted.sum(dim=1), min=1e-9)).to(tokens.dtype))
            elif mode == "lasttoken":
                seq_len = tokens.shape[1]
                values, idx = attention_mask.flip(1).max(1)
                idx = torch.where(values == 0, seq_len - 1, idx)
                last = seq_len - idx - 1
                masked = tokens * attention_mask.unsqueeze(-1).to(tokens.dtype)
                out.append(masked[torch.arange(tokens.shape[0], device=tokens.device), last])
        return torch.cat(out, dim=-1)

    def config(self) -> dict[str, Any]:
        # the legacy keys: every sentence-transformers version reads them
        cfg: dict[str, Any] = {"word_embedding_dimension": self.dimension}
        for key, mode in LEGACY_POOLING_KEYS.items():
            cfg[key] = mode in self.modes
        return cfg


class Dense(nn.Module):
    """sentence-transformers' ``Dense``: a linear layer and an activation (a torch.nn module)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "torch.nn.modules.activation.Tanh"):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation_name = activation
        self.activation = _activation(activation)
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(x))

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.linear.in_features,
            "out_features": self.linear.out_features,
            "bias": self.linear.bias is not None,
            "activation_function": self.activation_name,
        }


class Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, p=2, dim=1)


def _activation(path: str) -> nn.Module:
    """Instantiate a torch.nn activation named by its dotted path, refusing anything else."""
    import importlib

    if not path.startswith("torch."):
        raise TlhubError(f"Dense activation {path!r} is not a torch.nn module", fix="only torch.nn activations are loaded (no remote code)")
    module_name, _, attr = path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), attr, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TlhubError(f"Dense activation {path!r} is not a torch.nn.Module class", fix="use a torch.nn activation such as torch.nn.modules.activation.Tanh")
    return cls()


# ------------------------------------------------------------------------------------------
# the transfer model


class SentenceTransformerTransferModel(TransferModel):
    """encoder -> Pooling -> (Dense, Normalize ...) -> sentence embedding -> linear head."""

    image_key = None  # text: no image tensor in the batch

    def __init__(
        self,
        encoder: nn.Module,
        tokenizer,
        steps: Sequence[nn.Module],
        head: nn.Linear | None,
        *,
        max_length: int,
        do_lower_case: bool,
        st_config: dict[str, Any],
        transformer_path: str = "",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.steps = nn.ModuleList(steps)
        self.head = head
        self.max_length = int(max_length)
        self.do_lower_case = bool(do_lower_case)
        self.st_config = st_config  # config_sentence_transformers.json, kept as found
        self.transformer_path = transformer_path
        dim = encoder.config.hidden_size
        for step in self.steps:
            dim = getattr(step, "out_features", dim)
        self.num_features = int(dim)

    def set_max_length(self, n: int | None = None) -> None:
        """The tokenizer's truncation length (saved as ``max_seq_length``, restored on reload)."""
        if n is None:
            return
        limit = getattr(self.encoder.config, "max_position_embeddings", None)
        if int(n) < 1 or (isinstance(limit, int) and int(n) > limit):
            raise ConfigError(f"max_length={n} is outside what {self.source} can take (1 to {limit})", fix=f"use a max_length of at most {limit}")
        self.max_length = int(n)

    def pipeline_description(self) -> str:
        parts = ["Transformer"]
        for step in self.steps:
            if isinstance(step, Pooling):
                parts.append(f"Pooling({'+'.join(step.modes)})")
            elif isinstance(step, Dense):
                parts.append(f"Dense({step.linear.in_features}->{step.linear.out_features})")
            else:
                parts.append(type(step).__name__)
        return " -> ".join(parts)

    def forward_features(self, batch):
        names = ("input_ids", "attention_mask", "token_type_ids", "position_ids")
        inputs = {k: v for k, v in batch.items() if k in names}
        tokens = self.encoder(**inputs, return_dict=True).last_hidden_state
        x = tokens
        for step in self.steps:
            x = step(x, batch.get("attention_mask")) if isinstance(step, Pooling) else step(x)
        return x

    def forward_head(self, features):
        if self.head is None:
            raise TlhubError("this sentence-transformers backbone has no classification head yet",
                             fix="fine-tune it first (tlhub train), or load a model fine-tuned with tlhub")
        return self.head(features)

    def head_parameter_names(self) -> list[str]:
        return [n for n, _ in self.named_parameters() if n.startswith("head.")]

    def unused_parameter_names(self) -> list[str]:
        """Encoder parameters the pipeline never uses (BERT's pooler: sentence-transformers reads
        the token embeddings). Kept so the saved encoder stays complete; in no layer group, so
        ``freeze_backbone`` keeps them frozen."""
        return [n for n, _ in self.named_parameters() if n.startswith("encoder.pooler.")]

    def layer_groups(self) -> list[LayerGroup]:
        """embeddings, encoder layer 0..N-1, what follows the layers (final norms), the Dense
        projections of the pipeline: input -> output. The head and the unused pooler are left out."""
        skip = set(self.head_parameter_names()) | set(self.unused_parameter_names())
        return layer_index_groups((n for n, _ in self.named_parameters() if n not in skip), rest="encoder.final",
                                  last=(("projection", lambda n: n.startswith("steps.")),))


def _new_head(in_features: int, n: int) -> nn.Linear:
    head = nn.Linear(in_features, n)
    nn.init.normal_(head.weight, std=0.02)  # as transformers initialises its classifiers
    nn.init.zeros_(head.bias)
    return head


# ------------------------------------------------------------------------------------------
# loading


def _read_json(path: Path) -> dict[str, Any] | list[Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackboneNotFoundError(f"{path} is not valid JSON: {exc}", fix="re-download or re-save the model") from None


def _module_kind(entry: dict[str, Any]) -> str:
    return str(entry.get("type", "")).rsplit(".", 1)[-1]


def _load_dense_weights(folder: Path, dense: Dense) -> None:
    weights = folder / "model.safetensors"
    if weights.is_file():
        from safetensors.torch import load_file

        state = load_file(str(weights))
    elif (folder / "pytorch_model.bin").is_file():
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise BackboneNotFoundError(f"Dense module {folder.name} has no weights", fix="re-download the model")
    dense.load_state_dict({k: v for k, v in state.items() if k.startswith("linear.")})


def build_model(path: Path, *, labels: Sequence[str] | None, pretrained: bool, default_max_length: int) -> SentenceTransformerTransferModel:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = Path(path)
    modules = _read_json(path / "modules.json")
    if modules is None:
        # sentence-transformers itself does this for a plain transformers repo
        warnings.warn(f"{path} has no modules.json: using the encoder with mean pooling, as sentence-transformers does", stacklevel=3)
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
    kinds = [_module_kind(m) for m in modules]
    unsupported = sorted({k for k in kinds if k not in SUPPORTED_MODULES})
    if unsupported:
        raise TlhubError(
            f"{path} uses sentence-transformers module(s) this plugin does not implement: {', '.join(unsupported)}",
            fix=f"use a text model made of {', '.join(SUPPORTED_MODULES)} modules",
        )
    if not kinds or kinds[0] != "Transformer" or kinds.count("Transformer") != 1:
        raise TlhubError(f"{path}/modules.json must start with one Transformer module (found {kinds})",
                         fix="use a text sentence-transformers model (Transformer -> Pooling -> ...)")

    transformer_path = str(modules[0].get("path") or "")
    encoder_dir = path / transformer_path if transformer_path else path
    sbert = _read_json(encoder_dir / "sentence_bert_config.json") or {}
    st_config = _read_json(path / "config_sentence_transformers.json") or {}
    config = AutoConfig.from_pretrained(encoder_dir, trust_remote_code=False)
    saved_labels = _saved_labels(config)

    with quiet_transformers_logging():
        encoder = AutoModel.from_pretrained(encoder_dir, trust_remote_code=False) if pretrained else AutoModel.from_config(config)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    max_length = max_sequence_length(encoder_dir, tokenizer, config, default_max_length)

    steps: list[nn.Module] = []
    head: nn.Linear | None = None
    dim = config.hidden_size
    for i, (entry, kind) in enumerate(zip(modules[1:], kinds[1:]), start=1):
        folder = path / str(entry.get("path") or "")
        if kind == "Pooling":
            cfg = _read_json(folder / "config.json") or {}
            steps.append(Pooling(cfg.get("embedding_dimension") or cfg.get("word_embedding_dimension") or dim, _pooling_modes(cfg)))
        elif kind == "Normalize":
            steps.append(Normalize())
        elif kind == "Dense":
            cfg = _read_json(folder / "config.json")
            if cfg is None:
                raise BackboneNotFoundError(f"Dense module {folder} has no config.json", fix="re-download the model")
            if cfg.get("module_output_name") not in (None, "sentence_embedding") or cfg.get("use_residual"):
                raise TlhubError(f"Dense module {folder.name} is not a plain projection of the sentence embedding",
                                 fix="this plugin supports Dense modules that map sentence_embedding to sentence_embedding")
            dense = Dense(cfg["in_features"], cfg["out_features"], cfg.get("bias", True),
                          cfg.get("activation_function", "torch.nn.modules.activation.Tanh"))
            is_head = entry.get("name") == "classifier" and i == len(modules) - 1
            if pretrained or is_head:
                _load_dense_weights(folder, dense)
            if is_head:
                # a head saved by this plugin: the final Dense with identity activation
                head = dense.linear
                continue
            steps.append(dense)
        dim = getattr(steps[-1], "out_features", dim) if steps else dim
    if not any(isinstance(s, Pooling) for s in steps):
        raise TlhubError(f"{path}/modules.json has no Pooling module", fix="use a sentence-transformers model that pools token embeddings")

    if labels is not None:
        labels = [str(label) for label in labels]
        if head is None or len(labels) != head.out_features or (saved_labels and labels != saved_labels):
            head = _new_head(dim, len(labels))
    elif head is not None:
        labels = saved_labels if saved_labels and len(saved_labels) == head.out_features else [f"LABEL_{i}" for i in range(head.out_features)]
    else:
        labels = []
    if not pretrained and head is not None:
        head = _new_head(dim, head.out_features)
    return SentenceTransformerTransferModel(
        encoder, tokenizer, steps, head,
        max_length=max_length, do_lower_case=bool(sbert.get("do_lower_case", False)), st_config=st_config,
        transformer_path=transformer_path, adapter_name="sentence-transformers", source=str(path), labels=labels,
    )


def _pooling_modes(cfg: dict[str, Any]) -> list[str]:
    mode = cfg.get("pooling_mode")
    if isinstance(mode, str):
        return [mode]
    if isinstance(mode, (list, tuple)) and mode:
        return [str(m) for m in mode]
    modes = [m for key, m in LEGACY_POOLING_KEYS.items() if cfg.get(key)]
    return modes or ["mean"]


def _saved_labels(config) -> list[str] | None:
    """Label names saved by this plugin (config.json's id2label, written only with a head)."""
    if getattr(config, "tlhub_adapter", None) != "sentence-transformers":
        return None
    id2label = getattr(config, "id2label", None) or {}
    try:
        return [str(id2label[i]) for i in range(len(id2label))]
    except KeyError:
        return None


# ------------------------------------------------------------------------------------------
# saving


def save_sentence_transformer(model: SentenceTransformerTransferModel, directory: str, *, marker: dict[str, str], head_name: str) -> list[str]:
    """Write ``model`` as a sentence-transformers folder; the head becomes a final Dense module."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = model.encoder.config
    for key, value in marker.items():
        setattr(config, key, value)
    if model.labels:
        config.id2label = dict(enumerate(model.labels))
        config.label2id = {label: i for i, label in enumerate(model.labels)}
    model.encoder.save_pretrained(out)
    model.tokenizer.model_max_length = model.max_length
    model.tokenizer.save_pretrained(out)
    written = {p.name for p in out.iterdir() if p.is_file()}

    def dump(relative: str, data: Any) -> None:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        written.add(relative)

    dump("sentence_bert_config.json", {"max_seq_length": model.max_length, "do_lower_case": model.do_lower_case})
    st_config = dict(model.st_config) or {}
    st_config.setdefault("__version__", {"sentence_transformers": "3.0.0", "transformers": _version("transformers"), "pytorch": _version("torch")})
    dump("config_sentence_transformers.json", st_config)

    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    for step in list(model.steps) + ([model.head] if model.head is not None else []):
        idx = len(modules)
        if isinstance(step, nn.Linear):  # the head
            kind, name = "Dense", head_name
            folder = f"{idx}_Dense"
            dense_cfg = {"in_features": step.in_features, "out_features": step.out_features, "bias": step.bias is not None,
                         "activation_function": "torch.nn.modules.linear.Identity"}
            dump(f"{folder}/config.json", dense_cfg)
            save_file({f"linear.{k}": v.detach().cpu().contiguous() for k, v in step.state_dict().items()}, str(out / folder / "model.safetensors"))
            written.add(f"{folder}/model.safetensors")
        else:
            kind, name = type(step).__name__, str(idx)
            folder = f"{idx}_{kind}"
            (out / folder).mkdir(exist_ok=True)
            if isinstance(step, Pooling):
                dump(f"{folder}/config.json", step.config())
            elif isinstance(step, Dense):
                dump(f"{folder}/config.json", step.config())
                save_file({k: v.detach().cpu().contiguous() for k, v in step.state_dict().items() if k.startswith("linear.")},
                          str(out / folder / "model.safetensors"))
                written.add(f"{folder}/model.safetensors")
        modules.append({"idx": idx, "name": name, "path": folder, "type": f"sentence_transformers.models.{kind}"})
    dump("modules.json", modules)
    return sorted(written)


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"
