"""ModelConfig + DataSpec -> SetModel: resolve the config, look up the encoder and decoder, wrap them
in one haiku transform.

Glossary: B batch, N points (padded), D point dimension, K latent size, S output slots.
Autoencode: z = encoder(points, mask); conditional: z = [a learned embedding of the label, a style
code encoder(points, mask) of width style_dim] (the label's embedding alone when style_dim is 0);
set-to-set (complete, denoise, upsample): z = encoder(input made from the set), and the loss
compares the decoded set with the whole set; with task_options.keep_input (complete, upsample) the
output is the input's own points followed by the decoder's, which adds the n - n_in points the
input lacks (as completion networks such as PF-Net keep the partial scan). With `centre`, the encoder sees each set (or input)
minus its centroid, encode appends the centroid to z and decode adds it back; with size_from
"latent", encode appends log(1 + n) and decode builds that many points: z = [shape K, centroid D,
size code 1].
"""

from __future__ import annotations

import dataclasses
import functools

import haiku as hk
import jax
import jax.numpy as jnp

from pointset_cli.config import SET_TO_SET_TASKS, SIZE_SOURCES, TASKS, ModelConfig
from pointset_cli.data.batching import Batch
from pointset_cli.errors import UsageError
from pointset_cli.models import degrade, registry
from pointset_cli.models.encoder_choice import shares_encoder
from pointset_cli.models.setmodel import DataSpec, SetModel
from pointset_cli.models.decoder import Decoded, Decoder, SharedEncoder, TargetLoss
from pointset_cli.models.cardinality import decided_sizes, size_code, sizes_of_code
from pointset_cli.models.layers import masked_pool, zero_padding
from pointset_cli.models.objective import added_sizes, joined, objective


def _choice(value: str, valid: tuple[str, ...], what: str) -> None:
    if value not in valid:
        raise UsageError(f"unknown {what} '{value}'; valid: {', '.join(valid)}")


def _encoder_config(cfg: ModelConfig, name: str, model: registry.Entry) -> tuple[registry.Entry, object]:
    """The encoder's entry and frozen Config: the model's paper options for its own encoder
    (DSPN: FSPool), under the user's overrides."""
    entry = registry.get("encoder", name)
    defaults = model.encoder_options if name == model.encoder else {}
    return entry, registry.config_from_options(entry.config_cls, {**defaults, **cfg.encoder_options},
                                               "encoder_options.")


def _style_dim(cfg: ModelConfig, model: registry.Entry) -> int:
    """The width of a conditional decoder's style code (half the latent unless given); 0 elsewhere."""
    can = model.kind == "decoder" and cfg.task == "conditional"
    if cfg.style_dim is None:
        return cfg.latent_dim // 2 if can else 0
    if cfg.style_dim and not can:
        raise UsageError(f"style_dim needs --task conditional with a decoder (model '{cfg.name}' with --task {cfg.task})")
    if not 0 <= cfg.style_dim < cfg.latent_dim:
        raise UsageError(f"style_dim must be between 0 and latent_dim - 1 = {cfg.latent_dim - 1}, got {cfg.style_dim}")
    return int(cfg.style_dim)


def _encodes_sets(cfg: ModelConfig, model: registry.Entry) -> bool:
    """Whether a decoder's z holds a code encoded from the set (all tasks but label-only conditional)."""
    return model.kind == "decoder" and (cfg.task != "conditional" or cfg.style_dim > 0)


def _code_width(cfg: ModelConfig) -> int:
    """The width of the encoder's output: the whole shape code, or a conditional run's style code."""
    return cfg.style_dim if cfg.task == "conditional" else cfg.latent_dim


def _uses_encoder(cfg: ModelConfig, model: registry.Entry) -> bool:
    """Decoders encode sets unless they decode a label's embedding alone (conditional, style_dim 0);
    whole models only when given an encoder, and only those that take a latent."""
    if model.kind == "decoder":
        if not _encodes_sets(cfg, model) and cfg.encoder_options:
            raise UsageError("--task conditional with style_dim 0 decodes a label's embedding alone: "
                             "encoder_options do not apply")
        return _encodes_sets(cfg, model)
    if cfg.task in SET_TO_SET_TASKS:
        raise UsageError(f"--task {cfg.task} needs a decoder ({', '.join(registry.names('decoder'))}); "
                         f"'{cfg.name}' is a whole model")
    if not cfg.encoder:
        if cfg.encoder_options:
            raise UsageError(f"model '{cfg.name}' has no encoder to take encoder_options")
        return False
    if not model.latent or cfg.task != "autoencode":
        raise UsageError(f"model '{cfg.name}' cannot be conditioned on an encoder's latent"
                         + ("" if model.latent else " (poisson and setflow can)")
                         + ("" if cfg.task == "autoencode" else f" with --task {cfg.task}"))
    return True


def resolve(cfg: ModelConfig) -> ModelConfig:
    """`cfg` with its encoder named (None where there is none) and every encoder and decoder option
    filled in from the code's defaults, all validated; resolve(resolve(c)) == resolve(c)."""
    _choice(cfg.task, TASKS, "task")
    registry.get("loss", cfg.loss)
    if cfg.latent_dim < 1:
        raise UsageError(f"latent_dim must be positive, got {cfg.latent_dim}")
    if not cfg.sinkhorn_eps > 0 or cfg.sinkhorn_iters < 1:
        raise UsageError(
            f"sinkhorn_eps must be > 0 and sinkhorn_iters >= 1 (got {cfg.sinkhorn_eps}, {cfg.sinkhorn_iters})"
        )
    model = registry.get(registry.MODEL_KINDS, cfg.name)
    options = registry.config_from_options(model.config_cls, cfg.decoder_options, "decoder_options.")
    cfg = dataclasses.replace(cfg, style_dim=_style_dim(cfg, model))
    encoder, encoder_options = None, {}
    if shares_encoder(cfg.task, dataclasses.asdict(options)):
        if cfg.encoder or cfg.encoder_options:
            raise UsageError(f"decoder '{cfg.name}' encodes its sets with its own encoder; to use "
                             f"{repr(cfg.encoder) if cfg.encoder else 'encoder_options'}, add "
                             "--set model.decoder_options.shared_encoder=false")
    elif _uses_encoder(cfg, model):
        encoder = cfg.encoder or model.encoder
        entry, chosen = _encoder_config(cfg, encoder, model)
        entry.build(chosen, _code_width(cfg))  # the encoder's own checks (its width a multiple of its seeds)
        encoder_options = dataclasses.asdict(chosen)
    return dataclasses.replace(cfg, encoder=encoder, encoder_options=encoder_options,
                               decoder_options=dataclasses.asdict(options), size_from=_size_from(cfg, model),
                               centre=_centre(cfg, model), task_options=_task_options(cfg))


def _task_options(cfg: ModelConfig) -> dict:
    """Every option of a set-to-set task's inputs (models/degrade.py), validated; none for the others."""
    if cfg.task not in SET_TO_SET_TASKS:
        if cfg.task_options:
            raise UsageError(f"task_options apply to --task {', '.join(SET_TO_SET_TASKS)}, not {cfg.task}")
        return {}
    options = _task_config(cfg)
    degrade.check_options(cfg.task, options)
    return dataclasses.asdict(options)


def _task_config(cfg: ModelConfig):
    """The frozen options (models/degrade.py) of a set-to-set task's inputs, from cfg.task_options."""
    return registry.config_from_options(degrade.OPTIONS[cfg.task], cfg.task_options, "task_options.")


def _centre(cfg: ModelConfig, model: registry.Entry) -> bool:
    """Whether the encoder sees centred sets (the centroid travels in z): decoders of sets only."""
    can = _encodes_sets(cfg, model)
    if cfg.centre and not can:
        raise UsageError(f"centre needs a decoder that encodes sets (model '{cfg.name}' with --task {cfg.task} is not)")
    return can if cfg.centre is None else bool(cfg.centre)


def _size_from(cfg: ModelConfig, model: registry.Entry) -> str:
    """Where the output size comes from: "latent" only for decoders that encode the set they make
    (autoencoders, conditional ones with a style code; a set-to-set output's size is not its input's:
    the decoder decides it). A fixed-size decoder (the MLP) then keeps the first n of its S outputs,
    as it is trained; with "decoder" it always makes S points."""
    can = _encodes_sets(cfg, model) and cfg.task in ("autoencode", "conditional")
    if cfg.size_from is None:
        return "latent" if can else "decoder"
    _choice(cfg.size_from, SIZE_SOURCES, "size_from")
    if cfg.size_from == "latent" and not can:
        raise UsageError(f"size_from latent needs a decoder that autoencodes its sets "
                         f"(model '{cfg.name}' with --task {cfg.task} does not)")
    return cfg.size_from


def assemble(cfg: ModelConfig, data: DataSpec) -> SetModel:
    cfg = resolve(cfg)
    model = registry.get(registry.MODEL_KINDS, cfg.name)
    options = registry.config_from_options(model.config_cls, cfg.decoder_options, "decoder_options.")
    make_encoder, tokens = None, 1
    if cfg.encoder:
        entry, encoder_options = _encoder_config(cfg, cfg.encoder, model)
        make_encoder, tokens = entry.build(encoder_options, _code_width(cfg))
    if model.kind != "decoder":  # whole models build their own SetModel
        return model.build(cfg, data, options, **({"make_encoder": make_encoder} if make_encoder else {}))
    conditional, style = cfg.task == "conditional", cfg.style_dim
    if conditional:
        tokens = 1  # z is one vector: the label's embedding beside the style code
    make_decoder = model.build(options, data, cfg.latent_dim, tokens)
    latent_sizes = cfg.size_from == "latent"
    centred = bool(cfg.centre)
    if latent_sizes and model.given_sizes:
        make_decoder = functools.partial(make_decoder, given_sizes=True)  # the latent decides instead
    k, d = cfg.latent_dim, data.dim
    shares = shares_encoder(cfg.task, cfg.decoder_options)  # cfg is resolved: every option is there
    make_inputs = _input_maker(cfg)
    keep_input = bool(cfg.task_options.get("keep_input"))

    def forward():
        embed = hk.Embed(data.n_classes, k - style, name="label_embedding") if conditional else None
        decoder = make_decoder()
        if not isinstance(decoder, Decoder):
            raise TypeError(f"decoder '{cfg.name}' does not satisfy models.decoder.Decoder "
                            "(an `ordered` flag and __call__(z, sizes) -> Decoded)")
        if shares and not isinstance(decoder, SharedEncoder):
            raise TypeError(f"decoder '{cfg.name}' has shared_encoder but no encode_set (models.decoder.SharedEncoder)")
        encoder = decoder.encode_set if shares else make_encoder() if make_encoder else None
        if keep_input and isinstance(decoder, TargetLoss):  # its extra term encodes the whole target
            raise UsageError(f"task_options.keep_input does not apply to decoder '{cfg.name}': its "
                             "representation loss needs the set it decodes to be the whole target")

        def frame(batch: Batch):
            """(points the encoder sees [B, N, D], centroid [B, D] or None): centred when cfg.centre."""
            if not centred:
                return batch.points, None
            mean = masked_pool(batch.points, batch.mask, "mean")  # [B, D]
            return jnp.where(batch.mask[..., None], batch.points - mean[:, None], 0.0), mean

        def shape_code(batch: Batch, points):
            if not conditional:
                return encoder(points, batch.mask)  # [B, K]
            label = embed(batch.labels)  # [B, K - style]
            return jnp.concatenate([label, encoder(points, batch.mask)], axis=1) if style else label

        def encode(batch: Batch):
            points, mean = frame(batch)
            parts = [shape_code(batch, points)]  # [B, K]
            if centred:
                parts.append(mean)  # [B, D]
            if latent_sizes:
                parts.append(size_code(jnp.sum(batch.mask, axis=1))[:, None])  # [B, 1]
            return jnp.concatenate(parts, axis=1)  # [B, K (+ D) (+ 1)]

        def decode(z, sizes):
            shape = z[:, :k]
            if latent_sizes and sizes is None:
                sizes = sizes_of_code(z[:, -1], data.n_max)
            out = decoder(shape, sizes)
            if centred:
                out = out._replace(points=out.points + z[:, None, k : k + d])
            return out

        def decoded(batch: Batch, input_keys=None):
            """What the loss compares: (Decoded, target points [B, N, D], mask [B, N], kept input or None).
            Every parameter is made here (the objective has none), so init stops at this point."""
            kept = None
            if make_inputs is None:
                points, _ = frame(batch)  # the decoder learns the set in its own frame
                z = shape_code(batch, points)  # [B, K]
            else:  # the whole set, in the frame of the input made from it
                if input_keys is None:  # training: fresh inputs every step
                    input_keys = jax.random.split(hk.next_rng_key(), batch.mask.shape[0])
                inputs = make_inputs(input_keys, batch)
                seen, mean = frame(inputs)
                z = shape_code(inputs, seen)  # [B, K]
                points = batch.points if mean is None else batch.points - mean[:, None]
                points = zero_padding(points, batch.mask)
                if keep_input:
                    kept = (zero_padding(seen, inputs.mask), inputs.mask)
            # [B] true sizes (of the points the input lacks, when kept): TSPN/RNN build sets of this size
            out = decoder(z, added_sizes(batch.mask, kept))
            if not isinstance(out, Decoded):
                raise TypeError(f"decoder '{cfg.name}' returned {type(out).__name__}, not models.decoder.Decoded")
            if isinstance(decoder, TargetLoss) and not shares:  # shared: z is g(target) itself, L_repr is 0
                out = out._replace(aux_loss=decoder.target_loss(z, points, batch.mask))
            return out, points, batch.mask, kept

        def loss(batch: Batch, input_keys=None):
            out, points, mask, kept = decoded(batch, input_keys)
            return objective(out, points, mask, cfg, model.cardinality, decoder.ordered, kept)

        def parameters(batch: Batch):
            """init's function: the parameters without tracing the objective (its distance kernels)."""
            decoded(batch)

        def decode_adding(z, n_kept):
            """keep_input: the points to add to inputs of n_kept [B] points. A fixed-size decoder makes
            the set n_max; a size classifier predicts the whole set's size; presence decides."""
            if model.cardinality == "fixed":
                return decode(z, jnp.maximum(data.n_max - n_kept, 0))
            if model.cardinality == "size":
                whole = decided_sizes(decode(z, None), "size")
                return decode(z, jnp.maximum(whole - n_kept, 0))
            return decode(z, None)

        return parameters, (encode, decode, loss, decode_adding)

    transformed = hk.multi_transform(forward)
    encode_apply, decode_apply, loss_apply, adding_apply = transformed.apply

    def init(rng, batch):
        return transformed.init(rng, batch)

    def encode(params, batch):
        return encode_apply(params, None, batch)

    def decode(params, rng, z, sizes=None):
        out = decode_apply(params, rng, z, sizes)
        return out.points, out.mask

    def reconstruct(params, rng, batch):
        if not keep_input:
            return decode(params, rng, encode(params, batch), None)
        out = adding_apply(params, rng, encode(params, batch), jnp.sum(batch.mask, axis=1))
        points, mask, _ = joined((zero_padding(batch.points, batch.mask), batch.mask), out.points, out.mask)
        return points, mask

    return SetModel(
        config=cfg, data=data, init=init,
        loss=lambda params, rng, batch, input_keys=None: loss_apply(params, rng, batch, input_keys),
        encode=encode, decode=decode, reconstruct=reconstruct, cardinality=model.cardinality,
        latent_width=k + centred * d + latent_sizes, inputs=make_inputs,
    )


def _input_maker(cfg: ModelConfig):
    """For set-to-set tasks, (keys [B], whole sets Batch) -> the inputs' Batch ([B, N_in, D], labels
    kept), a pure function of the keys; None for the other tasks."""
    if cfg.task not in SET_TO_SET_TASKS:
        return None
    options = _task_config(cfg)

    def make_inputs(keys, batch: Batch) -> Batch:
        points, mask = degrade.make_inputs(cfg.task, options, keys, batch.points, batch.mask)
        return Batch(points, mask, batch.labels)

    return make_inputs
