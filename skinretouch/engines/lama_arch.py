"""The big-lama generator: a ResNet of fast Fourier convolutions (FFC).

Written from the LaMa paper (Suvorov et al., "Resolution-robust Large Mask Inpainting with
Fourier Convolutions", WACV 2022) and its public ``big-lama`` training config: 4 input
channels (RGB with the hole zeroed, plus the hole), ``ngf`` 64, 3 stride-2 downsamplings,
18 FFC residual blocks whose channels are 75 % global (spectral) and 25 % local, 3 transposed
convolutions back up, a 7x7 output convolution and a sigmoid.

Module names and ``nn.Sequential`` indices follow the public checkpoint's layout exactly, so
its ``state_dict`` (under ``generator.``) loads with ``strict=True``:

======  ==============================================================
index   module
======  ==============================================================
0       reflection pad 3
1       FFC block 4 -> ngf, 7x7, all local
2..     ``n_downsampling`` stride-2 FFC blocks; the last one splits its
        output into local and global channels
..      ``n_blocks`` FFC residual blocks (``conv1``, ``conv2``)
..      join local and global channels (no parameters)
..      (transposed conv, batch norm, ReLU) x ``n_downsampling``
..      reflection pad 3, 7x7 conv -> 3, sigmoid
======  ==============================================================

The spectral path uses ``torch.fft`` in eager mode.  ONNX export (and so TensorRT) cannot rely
on it: the exported ``DFT`` node fails in ONNX Runtime for the inverse real transform and
TensorRT has no ``DFT`` layer.  ``fft_impl="matmul"`` computes the same 2-D real DFT with
cosine/sine matrices built from the feature map's size inside the graph, so the export keeps a
dynamic height and width; tests check both paths agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

__all__ = [
    "BIG_LAMA",
    "BigLamaGenerator",
    "FFCBlock",
    "FFCResBlock",
    "FourierUnit",
    "GeneratorSpec",
    "SpectralTransform",
    "set_fft_impl",
]

FFTImpl = Literal["torch", "matmul"]

# a pair of (local, global) feature maps; global is None while a block has no global channels
Features = tuple[torch.Tensor, torch.Tensor | None]


@dataclass(frozen=True, kw_only=True)
class GeneratorSpec:
    """Hyper-parameters of an FFC ResNet generator (``BIG_LAMA`` is the public one)."""

    in_channels: int = 4
    out_channels: int = 3
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 18
    max_features: int = 1024
    # share of the residual blocks' channels that go through the spectral (global) path
    global_ratio: float = 0.75


BIG_LAMA = GeneratorSpec()


def _split(channels: int, ratio: float) -> tuple[int, int]:
    """(local, global) channel counts, rounding the global share down as the checkpoint does."""
    global_channels = int(channels * ratio)
    return channels - global_channels, global_channels


class FourierUnit(nn.Module):
    """1x1 convolution, batch norm and ReLU applied to the 2-D real spectrum of a feature map.

    Real and imaginary parts are interleaved per channel (``c0.re, c0.im, c1.re, ...``), the
    order the public weights were trained with.
    """

    def __init__(self, channels: int, *, fft_impl: FFTImpl = "torch") -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * channels, 2 * channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)
        self.relu = nn.ReLU(inplace=True)
        self.fft_impl: FFTImpl = fft_impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        x = x.float()
        if self.fft_impl == "torch":
            spectrum = torch.fft.rfft2(x, norm="ortho")
            real, imag = spectrum.real, spectrum.imag
        else:
            real, imag = _rfft2_matmul(x)
        bins = real.shape[-1]
        stacked = torch.stack((real, imag), dim=2).reshape(batch, 2 * channels, height, bins)
        stacked = self.relu(self.bn(self.conv_layer(stacked)))
        pairs = stacked.reshape(batch, channels, 2, height, bins)
        real, imag = pairs[:, :, 0], pairs[:, :, 1]
        if self.fft_impl == "torch":
            return torch.fft.irfft2(torch.complex(real, imag), s=(height, width), norm="ortho")
        return _irfft2_matmul(real, imag, width)


def _dft_matrices(size: int, bins: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """cos and sin of 2*pi*n*k/size, each (size, bins), and ``size`` as a (1,) int32 tensor.

    The product n*k is reduced mod size in integers first so the angle stays accurate for
    large maps.  Sizes are turned into tensors (from the ``arange``), never Python numbers,
    so both ONNX exporters keep them symbolic.  int32 rather than int64 because TensorRT
    computes in int32 (n*k stays below 2**31 for maps up to 46000 px a side).
    """
    n = torch.arange(size, device=device, dtype=torch.int32)
    k = torch.arange(bins, device=device, dtype=torch.int32)
    size_t = n[-1:] + 1
    phase = torch.remainder(n[:, None] * k[None, :], size_t).to(torch.float32)
    angle = phase * (2.0 * math.pi) / size_t.to(torch.float32)
    return torch.cos(angle), torch.sin(angle), size_t


def _rfft2_matmul(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal 2-D real DFT over the last two axes as matrix products: (re, im) with the
    last axis holding ``width // 2 + 1`` bins, like ``torch.fft.rfft2``."""
    height, width = x.shape[-2], x.shape[-1]
    cos_w, sin_w, width_t = _dft_matrices(width, width // 2 + 1, x.device)
    cos_h, sin_h, height_t = _dft_matrices(height, height, x.device)
    # along the width: real input, e^{-i a} = cos a - i sin a
    real_w = x @ cos_w
    imag_w = -(x @ sin_w)
    # along the height: complex input times (cos - i sin); cos_h and sin_h are symmetric
    real = cos_h @ real_w + sin_h @ imag_w
    imag = cos_h @ imag_w - sin_h @ real_w
    scale = torch.rsqrt((height_t * width_t).to(torch.float32))
    return real * scale, imag * scale


def _irfft2_matmul(real: torch.Tensor, imag: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of :func:`_rfft2_matmul` for an output of the given width (orthonormal).

    As ``torch.fft.irfft2`` does, the imaginary parts of the DC and (even width) Nyquist bins
    are ignored: their sine terms vanish.
    """
    height, bins = real.shape[-2], real.shape[-1]
    cos_h, sin_h, height_t = _dft_matrices(height, height, real.device)
    # along the height: complex input times (cos + i sin)
    real_h = cos_h @ real - sin_h @ imag
    imag_h = cos_h @ imag + sin_h @ real
    cos_w, sin_w, width_t = _dft_matrices(width, bins, real.device)
    # bins 1 .. ceil(width/2)-1 stand for their mirrored twins too
    k = torch.arange(bins, device=real.device, dtype=torch.int32)
    twice = (k > 0) & (2 * k < width_t)
    weight = 1.0 + twice.to(torch.float32)
    out = (real_h * weight) @ cos_w.transpose(0, 1) - (imag_h * weight) @ sin_w.transpose(0, 1)
    scale = torch.rsqrt((height_t * width_t).to(torch.float32))
    return out * scale


class SpectralTransform(nn.Module):
    """The global-to-global path: 1x1 conv to half the channels, a Fourier unit with a
    residual, 1x1 conv back up."""

    def __init__(self, in_channels: int, out_channels: int, *, fft_impl: FFTImpl = "torch") -> None:
        super().__init__()
        hidden = out_channels // 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )
        self.fu = FourierUnit(hidden, fft_impl=fft_impl)
        self.conv2 = nn.Conv2d(hidden, out_channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """A fast Fourier convolution: four paths between local and global channels.

    ``convl2l``, ``convl2g`` and ``convg2l`` are ordinary convolutions, ``convg2g`` is a
    :class:`SpectralTransform`; a path with no input or output channels is ``None``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        ratio_in: float,
        ratio_out: float,
        stride: int = 1,
        padding: int = 0,
        fft_impl: FFTImpl = "torch",
    ) -> None:
        super().__init__()
        if stride != 1 and ratio_in > 0:
            raise ValueError("a strided FFC with global input channels is not part of big-lama")
        in_local, in_global = _split(in_channels, ratio_in)
        out_local, out_global = _split(out_channels, ratio_out)

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            if cin == 0 or cout == 0:
                return None
            return nn.Conv2d(
                cin, cout, kernel_size, stride=stride, padding=padding, bias=False, padding_mode="reflect"
            )

        self.convl2l = conv(in_local, out_local)
        self.convl2g = conv(in_local, out_global)
        self.convg2l = conv(in_global, out_local)
        self.convg2g = (
            SpectralTransform(in_global, out_global, fft_impl=fft_impl) if in_global and out_global else None
        )
        self.has_local_out = out_local > 0
        self.has_global_out = out_global > 0

    def forward(self, features: Features) -> Features:
        x_local, x_global = features
        out_local = out_global = None
        if self.has_local_out:
            out_local = _add(_apply(self.convl2l, x_local), _apply(self.convg2l, x_global))
        if self.has_global_out:
            out_global = _add(_apply(self.convl2g, x_local), _apply(self.convg2g, x_global))
        assert out_local is not None, "big-lama always keeps local channels"
        return out_local, out_global


def _apply(module: nn.Module | None, x: torch.Tensor | None) -> torch.Tensor | None:
    if module is None or x is None:
        return None
    return module(x)


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class FFCBlock(nn.Module):
    """FFC, then batch norm and ReLU on each of its local and global outputs."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        ratio_in: float,
        ratio_out: float,
        stride: int = 1,
        padding: int = 0,
        fft_impl: FFTImpl = "torch",
    ) -> None:
        super().__init__()
        self.ffc = FFC(
            in_channels,
            out_channels,
            kernel_size,
            ratio_in=ratio_in,
            ratio_out=ratio_out,
            stride=stride,
            padding=padding,
            fft_impl=fft_impl,
        )
        out_local, out_global = _split(out_channels, ratio_out)
        self.bn_l = nn.BatchNorm2d(out_local)
        self.bn_g = nn.BatchNorm2d(out_global) if out_global else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, features: Features) -> Features:
        x_local, x_global = self.ffc(features)
        x_local = self.act(self.bn_l(x_local))
        if x_global is not None and self.bn_g is not None:
            x_global = self.act(self.bn_g(x_global))
        return x_local, x_global


class FFCResBlock(nn.Module):
    """Two 3x3 FFC blocks with identity shortcuts on both the local and the global channels."""

    def __init__(self, channels: int, *, ratio: float, fft_impl: FFTImpl = "torch") -> None:
        super().__init__()
        options = dict(ratio_in=ratio, ratio_out=ratio, padding=1, fft_impl=fft_impl)
        self.conv1 = FFCBlock(channels, channels, 3, **options)
        self.conv2 = FFCBlock(channels, channels, 3, **options)

    def forward(self, features: Features) -> Features:
        x_local, x_global = self.conv2(self.conv1(features))
        id_local, id_global = features
        assert x_global is not None and id_global is not None
        return id_local + x_local, id_global + x_global


class _JoinLocalGlobal(nn.Module):
    """(local, global) -> one tensor, local channels first."""

    def forward(self, features: Features) -> torch.Tensor:
        x_local, x_global = features
        if x_global is None:
            return x_local
        return torch.cat((x_local, x_global), dim=1)


class BigLamaGenerator(nn.Module):
    """The FFC ResNet generator; ``forward(image, hole)`` returns the inpainted image.

    Parameters
    ----------
    spec
        Layer sizes; :data:`BIG_LAMA` for the public weights, smaller ones for tests.
    fft_impl
        ``"torch"`` (eager, fastest) or ``"matmul"`` (ONNX/TensorRT exportable).
    """

    def __init__(self, spec: GeneratorSpec = BIG_LAMA, *, fft_impl: FFTImpl = "torch") -> None:
        super().__init__()
        self.spec = spec
        ngf, cap = spec.ngf, spec.max_features
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            FFCBlock(spec.in_channels, ngf, 7, ratio_in=0.0, ratio_out=0.0, fft_impl=fft_impl),
        ]
        for i in range(spec.n_downsampling):
            last = i == spec.n_downsampling - 1
            layers.append(
                FFCBlock(
                    min(cap, ngf * 2**i),
                    min(cap, ngf * 2 ** (i + 1)),
                    3,
                    ratio_in=0.0,
                    ratio_out=spec.global_ratio if last else 0.0,
                    stride=2,
                    padding=1,
                    fft_impl=fft_impl,
                )
            )
        bottleneck = min(cap, ngf * 2**spec.n_downsampling)
        layers += [FFCResBlock(bottleneck, ratio=spec.global_ratio, fft_impl=fft_impl) for _ in range(spec.n_blocks)]
        layers.append(_JoinLocalGlobal())
        for i in range(spec.n_downsampling):
            mult = 2 ** (spec.n_downsampling - i)
            cin, cout = min(cap, ngf * mult), min(cap, ngf * mult // 2)
            layers += [
                nn.ConvTranspose2d(cin, cout, kernel_size=3, stride=2, padding=1, output_padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, spec.out_channels, kernel_size=7), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)

    @property
    def pad_multiple(self) -> int:
        """Height and width must be multiples of this (one halving per downsampling)."""
        return 2**self.spec.n_downsampling

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Inpaint.

        Parameters
        ----------
        image
            (N, 3, H, W) float32 RGB in [0, 1]; H and W multiples of :attr:`pad_multiple`.
        hole
            (N, 1, H, W) float32, 1 where pixels are to be replaced, else 0.

        Returns
        -------
        (N, 3, H, W) float32 in [0, 1]: the network's prediction everywhere (callers
        composite it through the hole).
        """
        x = torch.cat((image * (1.0 - hole), hole), dim=1)
        layers = iter(self.model)
        x = next(layers)(x)  # reflection pad
        features: Features = (x, None)
        for layer in layers:
            if isinstance(layer, (FFCBlock, FFCResBlock)):
                features = layer(features)
            elif isinstance(layer, _JoinLocalGlobal):
                x = layer(features)
            else:
                x = layer(x)
        return x


def set_fft_impl(model: nn.Module, fft_impl: FFTImpl) -> None:
    """Switch every Fourier unit of ``model`` between the eager and the exportable DFT."""
    for module in model.modules():
        if isinstance(module, FourierUnit):
            module.fft_impl = fft_impl
