"""The PT2E int8 recipe shared by the exporter and the QAT step: the quantizer and the channel-last program.

It sits below both ``export`` and ``compress`` so that compression (QAT prepares the same graph the
exporter converts) needs nothing from the exporter itself.
"""

from __future__ import annotations

import torch
from torch import nn


def quantizer(per_channel: bool = True, qat: bool = False):
    """litert-torch's PT2E quantizer with symmetric int8 weights (per channel or per tensor) and activations."""
    from helpers.core.quiet import load_litert_torch

    load_litert_torch()
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config

    return PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=qat,
                                                                        is_dynamic=False))


def channel_last_program(model: nn.Module, input_size: int, in_channels: int) -> tuple[nn.Module, torch.Tensor]:
    """``model`` wrapped to take NHWC input, exported strictly: (graph module, NHWC sample input)."""
    from helpers.core.quiet import load_litert_torch

    litert_torch = load_litert_torch()
    sample = torch.zeros(1, input_size, input_size, in_channels)
    wrapped = litert_torch.to_channel_last_io(model, args=[0]).eval()
    return torch.export.export(wrapped, (sample,), strict=True).module(), sample
