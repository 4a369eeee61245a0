"""What a model is, as plain data: the decoder name, its encoder, the task and the loss.

No JAX or haiku here: the run configuration (and `pointset train --print-config`) imports this.
Each encoder and decoder keeps its own frozen Config next to its code; `encoder_options` and
`decoder_options` override fields of those (unknown keys are usage errors listing the valid ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ("autoencode", "conditional")
SET_LOSSES = ("chamfer", "hungarian", "sinkhorn")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "tspn"  # decoder registry name: mlp | rnn | dspn | tspn | slot | queries
    encoder: str | None = None  # deepsets | set_transformer; None = the decoder's paper default
    task: str = "autoencode"  # autoencode (set -> z -> set) | conditional (label -> z -> set)
    latent_dim: int = 128  # K; divisible by the Set Transformer's seed count (its z is the seeds' set)
    loss: str = "chamfer"  # chamfer | hungarian | sinkhorn (plus the decoder's presence/size terms)
    sinkhorn_eps: float = 0.01  # loss "sinkhorn": entropic regularisation, in the cost's units
    sinkhorn_iters: int = 100  # loss "sinkhorn": updates (half of them anneal eps down)
    encoder_options: dict = field(default_factory=dict)  # overrides of the encoder's own Config fields
    decoder_options: dict = field(default_factory=dict)  # overrides of the decoder's own Config fields
    presence_weight: float = 1.0  # weight of the presence BCE (decoders with cardinality "presence")
    size_weight: float = 1.0  # weight of the size cross-entropy (decoders with cardinality "size")
