"""ModelConfig + DataSpec -> SetModel: look up the encoder and decoder, wrap them in one haiku transform.

Glossary: B batch, N points (padded), D point dimension, K latent size, S output slots.
Autoencode: z = encoder(points, mask); conditional: z = a learned embedding of the label.
"""

from __future__ import annotations

import haiku as hk
import jax.numpy as jnp

from pointset_cli import registry
from pointset_cli.errors import UsageError
from pointset_cli.models import Batch, DataSpec, SetModel
from pointset_cli.models.config import SET_LOSSES, TASKS, ModelConfig
from pointset_cli.models.objective import objective


def _choice(value: str, valid: tuple[str, ...], what: str) -> None:
    if value not in valid:
        raise UsageError(f"unknown {what} '{value}'; valid: {', '.join(valid)}")


def _encoder(cfg: ModelConfig, decoder: registry.Entry):
    """(module factory, tokens) for the set encoder."""
    name = cfg.encoder or decoder.info["encoder"]
    entry = registry.get("encoder", name)
    # The decoder's paper settings for its default encoder (DSPN: FSPool), under the user's overrides.
    defaults = decoder.info.get("encoder_options", {}) if name == decoder.info.get("encoder") else {}
    enc_cfg = registry.config_from_options(entry.config_cls, {**defaults, **cfg.encoder_options}, "encoder_options.")
    return entry.build(enc_cfg, cfg.latent_dim)


def assemble(cfg: ModelConfig, data: DataSpec) -> SetModel:
    _choice(cfg.task, TASKS, "task")
    _choice(cfg.loss, SET_LOSSES, "loss")
    if cfg.latent_dim < 1:
        raise UsageError(f"latent_dim must be positive, got {cfg.latent_dim}")
    if not cfg.sinkhorn_eps > 0 or cfg.sinkhorn_iters < 1:
        raise UsageError(
            f"sinkhorn_eps must be > 0 and sinkhorn_iters >= 1 (got {cfg.sinkhorn_eps}, {cfg.sinkhorn_iters})"
        )
    decoder_entry = registry.get(("decoder", "density"), cfg.name)
    dec_cfg = registry.config_from_options(decoder_entry.config_cls, cfg.decoder_options, "decoder_options.")
    if decoder_entry.kind == "density":  # point-process models build their own SetModel
        if not cfg.encoder:
            return decoder_entry.build(cfg, data, dec_cfg)
        if not decoder_entry.info.get("latent") or cfg.task != "autoencode":
            raise UsageError(f"model '{cfg.name}' cannot be conditioned on an encoder's latent"
                             + ("" if decoder_entry.info.get("latent") else " (poisson and setflow can)")
                             + ("" if cfg.task == "autoencode" else f" with --task {cfg.task}"))
        return decoder_entry.build(cfg, data, dec_cfg, make_encoder=_encoder(cfg, decoder_entry)[0])
    if cfg.task == "conditional":
        make_encoder, tokens = (lambda: hk.Embed(data.n_classes, cfg.latent_dim, name="label_embedding")), 1
    else:
        make_encoder, tokens = _encoder(cfg, decoder_entry)
    make_decoder = decoder_entry.build(dec_cfg, data, cfg.latent_dim, tokens)
    mode = decoder_entry.info["cardinality"]

    def forward():
        encoder, decoder = make_encoder(), make_decoder()

        def encode(batch: Batch):
            if cfg.task == "conditional":
                return encoder(batch.labels)  # [B, K]
            return encoder(batch.points, batch.mask)  # [B, K]

        def decode(z, sizes):
            return decoder(z, sizes)

        def loss(batch: Batch):
            z = encode(batch)  # [B, K]
            sizes = jnp.sum(batch.mask, axis=1)  # [B] true sizes: TSPN/RNN build sets of this size
            out = decoder(z, sizes)
            target_loss = getattr(decoder, "target_loss", None)
            if target_loss is not None:
                out = out._replace(aux_loss=target_loss(z, batch.points, batch.mask))
            return objective(out, batch.points, batch.mask, cfg, mode, decoder.ordered)

        return loss, (encode, decode, loss)

    transformed = hk.multi_transform(forward)
    encode_apply, decode_apply, loss_apply = transformed.apply

    def init(rng, batch):
        return transformed.init(rng, batch)

    def encode(params, batch):
        return encode_apply(params, None, batch)

    def decode(params, rng, z, sizes=None):
        out = decode_apply(params, rng, z, sizes)
        return out.points, out.mask

    def reconstruct(params, rng, batch):
        return decode(params, rng, encode(params, batch), None)

    return SetModel(
        config=cfg, data=data, init=init, loss=lambda params, rng, batch: loss_apply(params, rng, batch),
        encode=encode, decode=decode, reconstruct=reconstruct, cardinality=mode,
    )
