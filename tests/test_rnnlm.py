"""rnnkit.lm.RNNLanguageModel: the same loss and gradients as the same model in torch,
finite differences in float64, training that learns, evaluation, scoring, generation and
model files."""

from __future__ import annotations

import copy
import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import central_difference
from rnnkit.lm import RNNLanguageModel, WindowLanguageModel, load_model, log_softmax
from rnnkit.text import CharTokenizer, WordTokenizer, build_vocabulary, encode


def torch_twin(m: RNNLanguageModel) -> tuple[torch.nn.Module, ...]:
    c = m.config
    dtype = getattr(torch, c["dtype"])
    emb = torch.nn.Embedding(c["vocab_size"], c["embed"], dtype=dtype)
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[c["cell"]](
        c["embed"], c["hidden"], c["layers"], dtype=dtype
    )
    dec = torch.nn.Linear(c["hidden"], c["vocab_size"], dtype=dtype)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(m.embedding.params["weight"]))
        rnn.load_state_dict({k: torch.from_numpy(v) for k, v in m.rnn.params.items()})
        dec.weight.copy_(torch.from_numpy(m.decoder.params["weight"]))
        dec.bias.copy_(torch.from_numpy(m.decoder.params["bias"]))
    return emb, rnn, dec


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_loss_and_gradients_match_torch(cell: str) -> None:
    m = RNNLanguageModel(13, embed=6, hidden=8, layers=2, cell=cell, seed=1)  # type: ignore[arg-type]
    emb, rnn, dec = torch_twin(m)
    rng = np.random.default_rng(2)
    inputs = rng.integers(0, 13, (7, 3))
    targets = rng.integers(0, 13, (7, 3))
    m.zero_grad()
    loss, _ = m.loss(inputs, targets)
    y, _ = rnn(emb(torch.from_numpy(inputs)))
    logits = dec(y)
    tloss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, 13), torch.from_numpy(targets).reshape(-1)
    )
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-5)
    grads = {name: g for name, _, g in m.named_parameters()}
    np.testing.assert_allclose(grads["embedding.weight"], emb.weight.grad.numpy(), atol=2e-6)
    np.testing.assert_allclose(grads["decoder.weight"], dec.weight.grad.numpy(), atol=2e-6)
    for k, p in rnn.named_parameters():
        np.testing.assert_allclose(grads[f"rnn.{k}"], p.grad.numpy(), atol=2e-6, err_msg=k)


def test_gradients_by_finite_differences_float64_tied() -> None:
    m = RNNLanguageModel(
        7, embed=5, hidden=5, layers=1, cell="lstm", tie_weights=True, seed=3, dtype=np.float64
    )
    rng = np.random.default_rng(4)
    inputs, targets = rng.integers(0, 7, (4, 2)), rng.integers(0, 7, (4, 2))
    m.zero_grad()
    m.loss(inputs, targets)
    m.eval()
    h = 1e-6
    for name, p, g in m.named_parameters():
        for index in [(0,) * p.ndim, tuple(s - 1 for s in p.shape)]:
            numeric = central_difference(lambda: m.loss(inputs, targets)[0], p, index, h)
            assert g[index] == pytest.approx(numeric, abs=1e-7), (name, index)
    assert m.decoder.params["weight"] is m.embedding.params["weight"]
    assert len(m.parameters()) == len({id(p) for p, _ in m.parameters()})


@pytest.mark.parametrize(
    ("cell", "batching", "optimizer", "lr", "tie"),
    [("lstm", "sequential", "sgd", 20.0, False), ("gru", "random", "adam", 0.05, True)],
)
def test_training_run_matches_torch_step_for_step(
    cell: str, batching: str, optimizer: str, lr: float, tie: bool
) -> None:
    """fit against the same model trained in torch (float64, same weights and batches):
    sequential windows carry the state detached (truncated BPTT), random ones start from
    zeros, clipping, SGD/Adam, the validation perplexity and the learning rate divided by
    4 after an epoch that does not improve it: every step's loss agrees."""
    rng = np.random.default_rng(0)
    V = 11
    train, valid = rng.integers(0, V, 400), rng.integers(0, V, 80)
    m = RNNLanguageModel(
        V, embed=6, hidden=6, layers=2, cell=cell, tie_weights=tie, seed=1, dtype=np.float64
    )  # type: ignore[arg-type]
    emb, rnn, dec = torch_twin(m)
    if tie:
        dec.weight = emb.weight
    params = list({id(p): p for mod in (emb, rnn, dec) for p in mod.parameters()}.values())
    topt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(params, lr=lr)
    losses: list[float] = []
    history = m.fit(
        train,
        valid,
        epochs=3,
        lr=lr,
        optimizer=optimizer,
        clip=0.25,
        batching=batching,
        batch_size=4,
        seq_len=7,
        seed=3,
        on_step=lambda r: losses.append(r["loss"]),
    )  # type: ignore[arg-type]
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # (torch's pool spinning beside rnnkit's made this 30x slower)
    try:
        expected = _torch_run(history, emb, rnn, dec, params, topt, train, valid, batching, V)
    finally:
        torch.set_num_threads(torch_threads)
    np.testing.assert_allclose(losses, expected, rtol=1e-10, atol=0)
    assert topt.param_groups[0]["lr"] < lr  # (the schedule was exercised)


def _torch_run(
    history: list[dict[str, float]],
    emb: Any,
    rnn: Any,
    dec: Any,
    params: list[Any],
    topt: Any,
    train: np.ndarray,
    valid: np.ndarray,
    batching: str,
    V: int,
) -> list[float]:
    """The losses of the torch twin trained as fit trains, checking each epoch's record."""
    from rnnkit.data import random_batches, sequential_batches

    batch_rng = np.random.default_rng(3)
    expected: list[float] = []
    best = math.inf
    for record in history:
        assert record["lr"] == topt.param_groups[0]["lr"]
        batches = (
            sequential_batches(train, 4, 7)
            if batching == "sequential"
            else random_batches(train, 4, 7, batch_rng)
        )
        state: Any = None
        for b in batches:
            state = state if b.carry_state else None
            topt.zero_grad()
            y, state = rnn(emb(torch.from_numpy(b.inputs)), state)
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            loss = torch.nn.functional.cross_entropy(
                dec(y).reshape(-1, V), torch.from_numpy(b.targets).reshape(-1)
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 0.25)
            topt.step()
            expected.append(loss.item())
        with torch.no_grad():  # the validation stream, after a </s>
            stream = torch.from_numpy(np.concatenate([[2], valid]))
            y, _ = rnn(emb(stream[:-1, None]))
            nll = torch.nn.functional.cross_entropy(dec(y).reshape(-1, V), stream[1:])
        ppl = math.exp(nll.item())
        assert record["valid_ppl"] == pytest.approx(ppl, rel=1e-10)
        if ppl >= best:  # (torch's word_language_model example's schedule)
            for group in topt.param_groups:
                group["lr"] /= 4
        best = min(best, ppl)
    return expected


TEXT = "the cat sat on the mat.\nthe dog sat on the log.\n" * 30


@pytest.mark.parametrize(
    ("cell", "batching", "optimizer", "lr"),
    [("lstm", "sequential", "adam", 0.01), ("gru", "random", "sgd", 2.0)],
)
def test_training_learns_and_generates(cell: str, batching: str, optimizer: str, lr: float) -> None:
    tok = CharTokenizer()
    vocab = build_vocabulary(TEXT, tok)
    m = RNNLanguageModel(
        len(vocab),
        embed=16,
        hidden=32,
        layers=1,
        cell=cell,
        vocabulary=vocab,
        tokenizer=tok,
        seed=0,
    )  # type: ignore[arg-type]
    before = m.evaluate(TEXT)
    history = m.fit(
        TEXT,
        TEXT,
        epochs=6,
        lr=lr,
        optimizer=optimizer,
        batching=batching,
        batch_size=8,
        seq_len=20,
    )  # type: ignore[arg-type]
    after = m.evaluate(TEXT)
    assert len(history) == 6 and history[-1]["valid_ppl"] == pytest.approx(after)
    assert after < before / 3 and after < 3.0
    greedy = m.generate("the d", n=12, temperature=0)
    assert greedy.startswith("the dog sat on")
    sampled = m.generate("the ", n=20, seed=5)
    assert sampled == m.generate("the ", n=20, seed=5)
    ids = m.generate(encode("the", vocab, tok)[:-1], n=5, top_k=1)
    assert ids.shape == (5,) and ids.dtype == np.int64
    (logp, tokens) = m.score("the cat sat on the mat.")[0]
    (worse, _) = m.score("the mat sat on the cat.")[0]
    assert logp > worse and tokens.shape == (len("the cat sat on the mat.") + 1,)


def test_evaluate_is_exp_mean_nll_of_every_token() -> None:
    m = RNNLanguageModel(9, embed=4, hidden=6, layers=2, seed=7)
    ids = np.random.default_rng(8).integers(0, 9, 50)
    stream = np.concatenate([[2], ids])
    m.eval()
    loss, _ = m.loss(stream[:-1, None], stream[1:, None])
    assert m.evaluate(ids) == pytest.approx(math.exp(loss), rel=1e-5)
    assert m.token_log_probs(ids).shape == (50,)


def test_save_load_round_trip_and_bad_files(tmp_path: Path) -> None:
    tok = CharTokenizer()
    vocab = build_vocabulary(TEXT, tok)
    m = RNNLanguageModel(
        len(vocab), 8, 8, 2, "gru", 0.1, True, vocabulary=vocab, tokenizer=tok, seed=1
    )
    path = tmp_path / "lm.npz"
    m.save(path)
    loaded = RNNLanguageModel.load(path)
    assert loaded.config == m.config and loaded.vocabulary == vocab
    assert loaded.decoder.params["weight"] is loaded.embedding.params["weight"]
    assert loaded.evaluate("the cat sat.") == pytest.approx(m.evaluate("the cat sat."), rel=1e-6)
    assert loaded.generate("the", 10, seed=3) == m.generate("the", 10, seed=3)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not an rnnkit language model"):
        RNNLanguageModel.load(bad)
    np.savez(bad, config=np.array('{"format": "rnnkit.lm", "version": 99}'))
    with pytest.raises(ValueError, match="format version 99; this rnnkit reads version 1"):
        RNNLanguageModel.load(bad)
    with pytest.raises(FileNotFoundError):
        RNNLanguageModel.load(tmp_path / "missing.npz")
    # a configuration edited to a size no machine holds: the documented ValueError, naming the
    # file (the model is built from it before its arrays can be checked)
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    config = json.loads(str(arrays["config"]))
    config["model"]["hidden"] = config["model"]["embed"] = 2**20  # (12 TiB matrices)
    arrays["config"] = np.array(json.dumps(config))
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match=f"{bad}: bad model configuration"):
        RNNLanguageModel.load(bad)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="cell must be"):
        RNNLanguageModel(5, cell="transformer")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tie_weights needs embed == hidden"):
        RNNLanguageModel(5, embed=4, hidden=6, tie_weights=True)
    for vocab_size in (1, 2):  # (it failed later, about the </s> id 2 the user never gave)
        for make in (RNNLanguageModel, WindowLanguageModel):
            with pytest.raises(ValueError, match=r"vocab_size must be >= 3 \(ids 0, 1, 2 are"):
                make(vocab_size)
    m = RNNLanguageModel(5, 4, 4, 1)
    with pytest.raises(TypeError, match="needs a vocabulary and a tokenizer"):
        m.fit("some text")
    with pytest.raises(ValueError, match=r"outside \[0, 5\)"):
        m.evaluate(np.array([1, 7]))
    with pytest.raises(ValueError, match="temperature"):
        m.generate([1], 3, temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        m.generate([1], 3, top_k=9)
    with pytest.raises(TypeError, match="prompt is text: the model needs a vocabulary"):
        m.generate(n=3)  # (the default prompt is text)
    # the smallest temperatures are the greedy choice, not NaN probabilities
    greedy = m.generate([1], 6, temperature=0)
    for tiny in (1e-310, 5e-324):
        assert np.array_equal(m.generate([1], 6, temperature=tiny, seed=0), greedy)
    m.decoder.params["weight"][...] = np.nan
    with pytest.raises(ValueError, match="scores hold NaN"):
        m.generate([1], 3)
    with pytest.raises(ValueError, match="optimizer"):
        m.fit(np.arange(5).repeat(10), optimizer="rmsprop")  # type: ignore[arg-type]


def test_window_model_learns_scores_generates_and_saves(tmp_path: Path) -> None:
    tok = CharTokenizer()
    vocab = build_vocabulary(TEXT, tok)
    m = WindowLanguageModel(
        len(vocab), context=4, embed=12, hidden=48, vocabulary=vocab, tokenizer=tok
    )
    before = m.evaluate(TEXT)
    history = m.fit(
        TEXT, TEXT, epochs=4, lr=0.01, optimizer="adam", batching="random", batch_size=64
    )
    after = m.evaluate(TEXT)
    assert after < before / 3 and after < 3.0 and len(history) == 4
    assert m.generate("the d", n=12, temperature=0).startswith("the dog sat")
    ids = encode("the cat", vocab, tok)
    stream = np.concatenate([[2] * 4, ids])
    m.eval()
    logits = m.forward(np.lib.stride_tricks.sliding_window_view(stream[:-1], 4))
    logp = log_softmax(logits.astype(np.float64))[np.arange(ids.size), ids]
    manual = math.exp(-logp.mean())
    assert m.evaluate(ids) == pytest.approx(manual, rel=1e-5)
    path = tmp_path / "window.npz"
    m.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, WindowLanguageModel) and loaded.config == m.config
    assert loaded.evaluate(TEXT) == pytest.approx(after, rel=1e-6)
    with pytest.raises(ValueError, match="kind 'window', not RNNLanguageModel"):
        RNNLanguageModel.load(path)
    with pytest.raises(ValueError, match="context must be an int >= 1"):
        WindowLanguageModel(5, context=0)


def test_window_gradients_by_finite_differences() -> None:
    m = WindowLanguageModel(6, context=3, embed=4, hidden=5, dtype=np.float64, seed=2)
    rng = np.random.default_rng(3)
    windows, targets = rng.integers(0, 6, (5, 3)), rng.integers(0, 6, 5)
    m.zero_grad()
    m.loss(windows, targets)
    m.eval()
    h = 1e-6
    for name, p, g in m.named_parameters():
        index = (0,) * p.ndim
        numeric = central_difference(lambda: m.loss(windows, targets)[0], p, index, h)
        assert g[index] == pytest.approx(numeric, abs=1e-7), name


@pytest.mark.parametrize(("bad", "kind"), [(None, "NoneType"), ("no", "str"), (1, "int")])
def test_flags_must_be_bools(bad: object, kind: str) -> None:
    with pytest.raises(TypeError, match=f"^tie_weights must be a bool, got {kind}$"):
        RNNLanguageModel(5, embed=4, hidden=4, tie_weights=bad)  # type: ignore[arg-type]
    for m in (RNNLanguageModel(5, embed=4, hidden=4), WindowLanguageModel(5)):
        with pytest.raises(TypeError, match=f"^mode must be a bool, got {kind}$"):
            m.train(bad)  # type: ignore[arg-type]
        assert m.training is True
    assert RNNLanguageModel(5, embed=4, hidden=4, tie_weights=np.True_).config["tie_weights"]


def _lm_models() -> list[Any]:
    tok = CharTokenizer()
    vocab = build_vocabulary(TEXT, tok)
    common = {"vocabulary": vocab, "tokenizer": tok, "seed": 3}
    return [
        pytest.param(
            lambda: RNNLanguageModel(len(vocab), embed=8, hidden=8, dropout=0.2, **common),
            id="rnn-lstm",
        ),
        pytest.param(
            lambda: RNNLanguageModel(
                len(vocab), embed=8, hidden=8, layers=1, cell="gru", tie_weights=True, **common
            ),
            id="rnn-gru-tied",
        ),
        pytest.param(
            lambda: WindowLanguageModel(len(vocab), 3, 8, 16, dropout=0.2, **common), id="window"
        ),
    ]


@pytest.mark.parametrize("copier", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy])
@pytest.mark.parametrize("make", _lm_models())
def test_pickle_and_deepcopy_are_exact_and_independent(make: Any, copier: Any) -> None:
    """pickle and copy.deepcopy of a language model used to fail ("cannot pickle 'module'
    object"): the copy has the same weights, scores, generations and training."""
    m = make()
    m.fit(TEXT, epochs=1, lr=0.5, batch_size=4, seq_len=8, max_steps=3)
    c = copier(m)
    assert type(c) is type(m) and c.config == m.config
    named_m, named_c = list(m.named_parameters()), list(c.named_parameters())
    assert [n for n, _, _ in named_m] == [n for n, _, _ in named_c]
    for (name, p, _), (_, q, _) in zip(named_m, named_c, strict=True):
        assert p.dtype == q.dtype and np.array_equal(p, q), name
        assert not np.shares_memory(p, q), name
    if m.config.get("tie_weights"):
        assert c.decoder.params["weight"] is c.embedding.params["weight"]  # still tied
    assert c.evaluate(TEXT) == m.evaluate(TEXT)
    assert c.generate("the ", n=15, seed=4) == m.generate("the ", n=15, seed=4)
    (a, ta), (b, tb) = m.score("the cat sat.")[0], c.score("the cat sat.")[0]
    assert a == b and np.array_equal(ta, tb)
    # Training on goes the same way (dropout masks from the copied generators) ...
    m.fit(TEXT, epochs=1, lr=0.5, batch_size=4, seq_len=8, max_steps=2)
    c.fit(TEXT, epochs=1, lr=0.5, batch_size=4, seq_len=8, max_steps=2)
    for (name, p, _), (_, q, _) in zip(m.named_parameters(), c.named_parameters(), strict=True):
        assert np.array_equal(p, q), name
    # ... and the copy is independent of the original.
    before = [p.copy() for _, p, _ in m.named_parameters()]
    for _, q, _ in c.named_parameters():
        q += 1
    assert all(
        np.array_equal(p, b) for (_, p, _), b in zip(m.named_parameters(), before, strict=True)
    )


@pytest.mark.parametrize("kind", ["rnn", "window"])
def test_one_model_from_several_threads(kind: str) -> None:
    """evaluate and generate switch to eval mode and back, and fit trains: calls on one model
    from several threads run one at a time, so none sees another's dropout or mode (1-3 of 90
    evaluations differed, and a fit beside generate failed in its backward)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    def make() -> Any:
        if kind == "rnn":
            return RNNLanguageModel(20, embed=8, hidden=16, layers=2, dropout=0.5, seed=0)
        return WindowLanguageModel(20, context=3, embed=8, hidden=16, dropout=0.5, seed=0)

    m = make()
    ids = np.random.default_rng(0).integers(3, 20, 2000)
    expected = m.evaluate(ids)
    assert m.training  # (restored)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: m.evaluate(ids), range(30)))
    assert all(r == expected for r in results) and m.training
    # a fit beside generate and evaluate: each call whole, in some order
    errors: list[BaseException] = []

    def generate_meanwhile() -> None:
        try:
            for _ in range(20):
                m.generate([3, 4], 5, seed=1)
                m.evaluate(ids[:200])
        except BaseException as error:  # (reported below)
            errors.append(error)

    other = threading.Thread(target=generate_meanwhile)
    other.start()
    m.fit(ids, epochs=2, batch_size=4, seq_len=10, seed=0)
    other.join()
    assert not errors
    copy = pickle.loads(pickle.dumps(m))  # (the lock stays behind)
    assert copy.evaluate(ids) == m.evaluate(ids)


def test_word_tokenizer_options_survive_a_checkpoint(tmp_path: Path) -> None:
    from rnnkit.lm._base import _tokenizer_from
    from rnnkit.text import WordTokenizer, build_vocabulary

    tok = WordTokenizer(lower=False, normalize="NFKC")
    vocab = build_vocabulary("The cat sat.", tok)
    m = RNNLanguageModel(len(vocab), 4, 4, 1, vocabulary=vocab, tokenizer=tok, seed=0)
    m.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz").tokenizer
    assert (loaded.lower, loaded.split_punctuation, loaded.normalize) == (False, True, "NFKC")
    # a file written before the option: no normalisation, as it was tokenized then
    assert _tokenizer_from({"kind": "word", "lower": True}).normalize is None


@pytest.fixture(scope="module")
def ab_model() -> RNNLanguageModel:
    """A character GRU trained briefly on "ab\\ncd\\n" * 20 (the audit's model)."""
    text = "ab\ncd\n" * 20
    tok = CharTokenizer()
    vocab = build_vocabulary(text, tok)
    m = RNNLanguageModel(len(vocab), 8, 16, 1, "gru", vocabulary=vocab, tokenizer=tok, seed=0)
    m.fit(text, epochs=30, lr=0.02, optimizer="adam", batch_size=4, seq_len=6)
    return m


@pytest.mark.parametrize("prompt", ["ab", "ab\n", "ab\n\n", "ab\ncd", "ab\ncd\n", "\n", "", "a b"])
def test_generate_conditions_on_the_prompt_as_its_ids(
    ab_model: RNNLanguageModel, prompt: str
) -> None:
    """A text prompt's line ends are </s> as in its ids (the trailing ones were dropped:
    generate("ab\\n") was generate("ab")), and the text returned starts with the prompt."""
    m = ab_model
    assert m.vocabulary is not None and m.tokenizer is not None
    ids = encode(prompt, m.vocabulary, m.tokenizer).astype(np.int64)
    if prompt and not prompt.endswith("\n"):
        ids = ids[:-1]  # (an open last line: encode ends it with </s>, the prompt does not)
    new = m.generate(ids, 8, temperature=0)
    text = m.generate(prompt, 8, temperature=0)
    assert text.startswith(prompt)
    words = [m.vocabulary.words[i] for i in new]
    assert text[len(prompt) :] == "".join({"</s>": "\n", "▁": " "}.get(w, w) for w in words)


def test_generate_tells_line_ends_apart(ab_model: RNNLanguageModel) -> None:
    m = ab_model
    greedy = {p: m.generate(p, 5, temperature=0) for p in ("ab", "ab\n", "ab\n\n", "\n", "")}
    assert greedy["ab"] == "ab\ncd\na" and greedy["ab\n"] == "ab\ncd\nab"
    assert greedy["ab\n\n"].startswith("ab\n\n") and greedy["\n"].startswith("\n")
    # a word tokenizer's prompt comes back as typed (it was lowercased), spaced once
    text = "the cat sat\nthe dog ran\n" * 5
    tok = WordTokenizer()
    vocab = build_vocabulary(text, tok)
    w = RNNLanguageModel(len(vocab), 4, 8, 1, vocabulary=vocab, tokenizer=tok, seed=0)
    for prompt in ("The Cat", "The Cat ", "The Zebra\n"):
        out = w.generate(prompt, 3, temperature=0)
        assert out.startswith(prompt) and "  " not in out
    # a character tokenizer's generated spaces are tokens: all kept after a prompt's space
    # (a review found them stripped)
    tok = CharTokenizer()
    vocab = build_vocabulary("a b\nb a\n", tok)
    c = RNNLanguageModel(len(vocab), 4, 8, 1, vocabulary=vocab, tokenizer=tok, seed=0)
    for seed in range(20):
        new = c.generate(encode("a ", vocab, tok)[:-1], 6, seed=seed)
        words = [vocab.words[i] for i in new]
        expected = "".join({"</s>": "\n", "▁": " ", "<s>": ""}.get(w, w) for w in words)
        assert c.generate("a ", 6, seed=seed) == "a " + expected, seed


def test_nan_perplexity_stays_nan() -> None:
    """_exp(nan) was inf (nan < 709 is False): a NaN model read as a diverged one."""
    from rnnkit.lm._base import _exp

    assert math.isnan(_exp(math.nan)) and _exp(1000.0) == math.inf and _exp(0.0) == 1.0
    m = RNNLanguageModel(6, 4, 4, 1, seed=0)
    m.decoder.params["weight"][...] = np.nan
    assert math.isnan(m.evaluate([3, 4, 5]))
    w = WindowLanguageModel(6, 2, 4, 4, seed=0)
    w.decoder.params["bias"][...] = np.nan
    assert math.isnan(w.evaluate([3, 4, 5]))


def test_score_takes_one_sentence_per_str() -> None:
    """A sentence is one line: a str holding "\\n" is refused (score(["ab\\nba"]) scored two
    sentences as one entry; score("ab\\nba") split them where an n-gram model refuses), and
    \\x0c, \\u2028, ... are inside the line, as for the n-gram models."""
    tok = CharTokenizer()
    vocab = build_vocabulary("ab ba\nba ab\n", tok)
    m = RNNLanguageModel(len(vocab), 4, 4, 1, vocabulary=vocab, tokenizer=tok, seed=0)
    with pytest.raises(ValueError, match=r"^sentences\[1\] holds a newline: give one sentence"):
        m.score(["ab", "ab\nba"])
    with pytest.raises(ValueError, match=r"^sentences holds a newline"):
        m.score("ab\nba")
    ((one, tokens),) = m.score("ab")
    # a line as a file gives it: its end is dropped (a review found "ab\n" refused)
    assert m.score("ab\n")[0][0] == m.score(["ab\r\n"])[0][0] == one
    assert m.score(["ab"])[0][0] == one and tokens.shape == (3,)
    assert m.score(["ab\r"])[0][0] == one  # (a "\r" at the end: the line's end, dropped)
    for space in ("\x0c", "\x1c", "\u2028", "\r"):
        ((_, tokens),) = m.score([f"a{space}b"])
        assert tokens.shape == (4,), repr(space)  # a, ▁, b, </s>: one sentence


def test_damaged_checkpoint_configurations_are_named_errors(tmp_path: Path) -> None:
    tok = CharTokenizer()
    vocab = build_vocabulary("ab ba\n", tok)
    m = RNNLanguageModel(len(vocab), 4, 4, 1, vocabulary=vocab, tokenizer=tok, seed=0)
    path = tmp_path / "m.npz"
    m.save(path)
    with np.load(path) as archive:
        good = {k: archive[k] for k in archive.files}
    edits: list[tuple[Any, str]] = [
        (lambda c, a: c.update(tokenizer="char"), "tokenizer must be null or an object"),
        (lambda c, a: c.update(tokenizer=["char"]), "tokenizer must be null or an object"),
        (lambda c, a: c.update(kind=["rnn"]), r"holds a model of kind \['rnn'\], not"),
        (lambda c, a: c.update(kind={"a": 1}), r"holds a model of kind \{'a': 1\}"),
        (lambda c, a: c.update(version=True), "format version True; this rnnkit reads"),
        (lambda c, a: c.update(version=1.0), "format version 1.0; this rnnkit reads"),
        (lambda c, a: c.update(model=[1, 2]), "model must be an object of arguments"),
        (
            lambda c, a: c.update(vocabulary=["x", "y", "z", "a", "b"]),
            "vocabulary: the words must be distinct strings after <unk>, <s>, </s>",
        ),
        (
            lambda c, a: c.update(vocabulary=["<unk>", "<s>", "</s>", "a", "a"]),
            "the words must be distinct",
        ),
        (
            lambda c, a: a.update({k: v.astype(np.float64) for k, v in a.items() if k != "config"}),
            "parameter embedding.weight has dtype float64, but the configuration says float32",
        ),
        (
            lambda c, a: a.update({"decoder.bias": a["decoder.bias"].astype(np.int32)}),
            "parameter decoder.bias has dtype int32, but the configuration says float32",
        ),
        (
            lambda c, a: (
                c["model"].update(dtype="float64"),
                a.update({"rnn.weight_hh_l0": a["rnn.weight_hh_l0"].astype(np.float16)}),
            ),
            "parameter embedding.weight has dtype float32, but the configuration says float64",
        ),
    ]
    bad = tmp_path / "bad.npz"
    for edit, message in edits:
        arrays = dict(good)
        config = json.loads(str(arrays["config"]))
        edit(config, arrays)
        arrays["config"] = np.array(json.dumps(config))
        np.savez(bad, **arrays)
        with pytest.raises(ValueError, match=message) as error:
            load_model(bad)
        assert str(bad) in str(error.value)
    # a big-endian copy of the same values is the same dtype: read as it is
    arrays = {
        k: (v if k == "config" else v.astype(v.dtype.newbyteorder(">"))) for k, v in good.items()
    }
    np.savez(bad, **arrays)
    assert load_model(bad).evaluate("ab") == m.evaluate("ab")


def test_window_fit_takes_numpy_batch_sizes() -> None:
    ids = np.array([3, 4, 2, 4, 3, 2] * 4)
    for batch_size in (np.int64(4), np.int32(3), 5):
        w = WindowLanguageModel(5, 2, 4, 4, seed=0)
        assert len(w.fit(ids, batch_size=batch_size)) == 1  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="batch_size must be an int, got bool"):
        WindowLanguageModel(5, 2, 4, 4).fit(ids, batch_size=True)


def test_fit_size_errors_name_batch_size_and_seq_len() -> None:
    m = RNNLanguageModel(6, 4, 4, 1, seed=0)
    ids = np.arange(66) % 3 + 3
    with pytest.raises(ValueError, match=r"batch_size=1000 streams.*batch_size must be <= 65"):
        m.fit(ids, batch_size=1000, seq_len=4)
    with pytest.raises(ValueError, match=r"seq_len=1000 \+ 1 tokens: seq_len must be <= 65"):
        m.fit(ids, batch_size=2, seq_len=1000, batching="random")


def test_save_names_the_path_when_its_directory_is_missing(tmp_path: Path) -> None:
    m = RNNLanguageModel(6, 4, 4, 1, seed=0)
    target = tmp_path / "nodir" / "m.npz"
    with pytest.raises(FileNotFoundError, match=f"^path '{target}' cannot be written: no dir"):
        m.save(target)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        m.save(tmp_path)
    assert list(tmp_path.iterdir()) == []
