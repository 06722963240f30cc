"""Instruction prefixes and prefix-masked mean pooling (NV-Retriever), saved with the model.

NV-Retriever prepends a task instruction to queries (``"{instruction}: {query}"``) and leaves the
instruction tokens out of the mean pool. sentence-transformers already does exactly this:
``Pooling(pooling_mode="mean", include_prompt=False)`` drops the first ``prompt_length`` tokens of
every text that was encoded with a prompt, where ``prompt_length`` is the prompt's own token count
(including a leading BOS/[CLS], excluding a trailing EOS/[SEP]); the trainer passes the same
``prompt_length`` when ``SentenceTransformerTrainingArguments.prompts`` is set. So we configure
that module instead of writing our own, and store the prefixes as the model's named prompts:

* ``model.prompts == {"query": QUERY_PREFIX, "document": PASSAGE_PREFIX}`` is saved in
  ``config_sentence_transformers.json``; the Pooling module's ``include_prompt: false`` is saved in
  ``1_Pooling/config.json``. ``SentenceTransformer(DIR)`` restores both.
* Encode side: ``model.encode_query(texts)`` / ``model.encode_document(texts)`` pick those prompts
  (and any per-kind max lengths the model has) automatically. A plain
  ``model.encode(texts)`` applies neither; ``encode(texts, prompt_name="query", task="query")`` is
  the spelled-out equivalent.

Note: with a prefix the leading [CLS]/BOS token is pooled out along with the instruction; texts
encoded without a prefix (passages, usually) keep it. That is sentence-transformers' behaviour; we
keep it rather than re-implement pooling for one token.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

QUERY, DOCUMENT = "query", "document"


def pooling_modules(model: Any) -> list[Any]:
    """The sentence-transformers ``Pooling`` modules of ``model`` (usually one)."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    return [m for m in model.modules() if isinstance(m, Pooling)]


def configure_prefixes(model: Any, query_prefix: str = "", passage_prefix: str = "",
                       exclude_prefix: bool = True) -> None:
    """Store the prefixes as the model's ``query``/``document`` prompts; mask them out of pooling.

    Raises ValueError if the model has no mean Pooling module while a prefix must be excluded
    (e.g. a CLS-pooled model: the instruction cannot be "excluded" from one token).
    """
    model.prompts = {**(model.prompts or {}), QUERY: query_prefix, DOCUMENT: passage_prefix}
    model.default_prompt_name = None
    if not (query_prefix or passage_prefix):
        return
    pools = pooling_modules(model)
    if exclude_prefix and not pools:
        raise ValueError("the model has no Pooling module, so prefix tokens cannot be excluded from pooling")
    for pool in pools:
        modes = (pool.pooling_mode,) if isinstance(pool.pooling_mode, str) else tuple(pool.pooling_mode)
        if exclude_prefix and not set(modes) & {"mean", "mean_sqrt_len_tokens", "weightedmean", "max"}:
            raise ValueError(f"pooling mode {pool.pooling_mode!r} cannot exclude prefix tokens; use mean pooling")
        pool.include_prompt = not exclude_prefix


def set_max_lengths(model: Any, query_max_length: int | None, passage_max_length: int | None) -> None:
    """Separate truncation lengths for queries and passages while training.

    sentence-transformers' ``Transformer`` module truncates texts preprocessed with ``task="query"``
    at ``query_length`` and ``task="document"`` at ``document_length``. The trainer passes the task of
    each column through ``router_mapping``. The overall ``max_seq_length`` is raised to the larger of
    the two so neither is cut below its own limit. The model's own (inference) lengths are kept on
    the model (``_hardneg_base_lengths``) so that :func:`restore_inference_lengths` can put them back
    before the final save: training lengths are a cost setting, not a property of the trained model.
    """
    first = model[0]
    if not hasattr(first, "query_length"):
        raise ValueError(f"{type(first).__name__} has no per-kind max lengths; use a Transformer-based model")
    if not hasattr(model, "_hardneg_base_lengths"):
        model._hardneg_base_lengths = (model.max_seq_length, first.query_length, first.document_length)
    first.query_length = query_max_length
    first.document_length = passage_max_length
    lengths = [x for x in (query_max_length, passage_max_length) if x]
    if lengths:
        model.max_seq_length = max(lengths)


def saved_lengths(base: tuple[int | None, int | None, int | None], query_max_length: int | None,
                  passage_max_length: int | None) -> tuple[int | None, int | None, int | None]:
    """(max_seq_length, query_length, document_length) a trained model is saved with.

    Each kind keeps the base model's own limit, raised to the training length where training read
    longer texts (a deliberate extension); a kind whose limit equals the overall one is saved as
    None (sentence-transformers then uses ``max_seq_length``).

    >>> saved_lengths((256, None, None), 32, 128)      # trained short: the model keeps its 256
    (256, None, None)
    >>> saved_lengths((256, None, None), 64, 512)      # passages trained longer: raised
    (512, 256, None)
    """
    base_max, base_q, base_d = base
    q = max(base_q or base_max or 0, query_max_length or 0) or None
    d = max(base_d or base_max or 0, passage_max_length or 0) or None
    top = max(x for x in (base_max, q, d) if x) if any((base_max, q, d)) else None
    return top, (None if q == top else q), (None if d == top else d)


def restore_inference_lengths(model: Any, query_max_length: int | None, passage_max_length: int | None) -> None:
    """Before the final save: the model's own lengths back (see :func:`saved_lengths`)."""
    base = getattr(model, "_hardneg_base_lengths", None)
    if base is None:
        return
    top, q, d = saved_lengths(base, query_max_length, passage_max_length)
    if top:
        model.max_seq_length = top
    model[0].query_length, model[0].document_length = q, d


def pooled_tokens(model: Any, text: str, kind: str = QUERY) -> list[tuple[str, bool]]:
    """(token, pooled?) for ``text`` encoded as ``kind`` — shows what the pool actually sees.

    >>> pooled_tokens(model, "what is a cat")            # doctest: +SKIP
    [('[CLS]', False), ('query', False), (':', False), ('what', True), ..., ('[SEP]', True)]
    """
    from sentence_transformers.sentence_transformer.modules import Pooling

    prompt = (model.prompts or {}).get(kind) or None
    features = model.preprocess([text], prompt=prompt, task=kind)
    mask = features["attention_mask"]
    pools = pooling_modules(model)
    if pools and not pools[0].include_prompt and features.get("prompt_length"):
        mask = Pooling._exclude_prompt_from_mask(mask, int(features["prompt_length"]))
    tokens = model.tokenizer.convert_ids_to_tokens(features["input_ids"][0].tolist())
    return list(zip(tokens, [bool(m) for m in mask[0].tolist()]))
