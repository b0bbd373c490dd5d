"""The two training tasks of ``fmtlab drift``: a digits MLP and a tiny character-level transformer.

A task fixes everything but the number formats: the data, the model and its initialisation
(drawn after ``torch.manual_seed(seed)``), the order of the mini-batches (drawn from
``numpy.random.default_rng(seed)``), the loss, the optimiser and a fixed evaluation batch.
So for one seed every configuration starts from the same weights and sees the same batches,
and a loss difference between two configurations is due to their arithmetic alone.

Both datasets ship with the installation; nothing is downloaded:

* ``digits``: scikit-learn's bundled UCI handwritten digits (1797 images of 8x8 pixels,
  10 classes), pixels scaled to [0, 1].  Model: MLP 64-128-128-10 with ReLU.  Loss: mean
  cross-entropy.  Optimiser: plain SGD (learning rate 0.1), batch 32.  The evaluation
  batch is the whole data set, so the evaluated loss is the training loss.
* ``charlm``: ``fmtlab/data/stdlib_docstrings.txt`` (120 kB of Python docstrings).
  Model: 2-layer pre-norm transformer, width 64, 4 heads, context 32, learned positions.
  Loss: mean next-character cross-entropy.  Optimiser: Adam (learning rate 3e-3),
  batch 16.  Evaluation: 32 fixed windows.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

TASKS = ("digits", "charlm")


@dataclasses.dataclass
class TaskSettings:
    """Default lengths of a task's runs."""
    steps: int          # a full run
    quick_steps: int    # --quick
    eval_every: int     # evaluation interval in steps
    quick_eval_every: int  # evaluation interval with --quick


class Task:
    """Interface of a task (see the module docstring)."""
    name = ""
    settings: TaskSettings

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def build_optimizer(self, parameters) -> torch.optim.Optimizer:
        raise NotImplementedError

    def batches(self, seed: int, steps: int):
        """Yield ``steps`` (inputs, targets) pairs, a pure function of ``seed``."""
        raise NotImplementedError

    def loss(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def evaluation_batch(self):
        """The fixed (inputs, targets) the evaluated loss is measured on."""
        raise NotImplementedError


# ---- digits ------------------------------------------------------------------------------------

def load_digits():
    """scikit-learn's bundled digits: (images 1797 x 64 with values 0..16, labels 1797).

    The CSV that ``sklearn.datasets.load_digits`` reads is loaded directly when it is where
    scikit-learn keeps it (importing scikit-learn takes seconds, a run is short); otherwise
    ``load_digits`` itself is called.  Either way nothing is downloaded.
    """
    import importlib.util
    import os
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise ImportError("the digits task needs scikit-learn (pip install scikit-learn) for its bundled "
                          "digits data set")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    if os.path.exists(path):
        table = np.loadtxt(path, delimiter=",")
        return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sklearn_load_digits
    return sklearn_load_digits(return_X_y=True)


class DigitsMLP(Task):
    name = "digits"
    settings = TaskSettings(steps=3000, quick_steps=1000, eval_every=25, quick_eval_every=50)
    batch_size = 32
    learning_rate = 0.1
    hidden = 128

    def __init__(self):
        images, labels = load_digits()
        self.inputs = torch.from_numpy((images / 16.0).astype(np.float32))
        self.targets = torch.from_numpy(labels.astype(np.int64))

    def build_model(self):
        return nn.Sequential(nn.Linear(64, self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.hidden),
                             nn.ReLU(), nn.Linear(self.hidden, 10))

    def build_optimizer(self, parameters):
        return torch.optim.SGD(parameters, lr=self.learning_rate)

    def batches(self, seed, steps):
        rng = np.random.default_rng(seed)
        count = len(self.targets)
        order, position = rng.permutation(count), 0
        for _ in range(steps):
            if position + self.batch_size > count:  # a new epoch: reshuffle, drop the remainder
                order, position = rng.permutation(count), 0
            index = torch.from_numpy(order[position:position + self.batch_size])
            position += self.batch_size
            yield self.inputs[index], self.targets[index]

    def loss(self, model, inputs, targets):
        return F.cross_entropy(model(inputs), targets)

    def evaluation_batch(self):
        return self.inputs, self.targets


# ---- charlm ------------------------------------------------------------------------------------

class _Block(nn.Module):
    """Pre-norm transformer block: x + Attention(LN(x)), then x + MLP(LN(x)).

    Attention: softmax(Q K^T / sqrt(d_head) + causal mask) V per head; Q, K, V and the output
    projection are nn.Linear (so they are emulated); the two attention products and the
    softmax stay in float32.
    """

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.norm_attention = nn.LayerNorm(width)
        self.query_key_value = nn.Linear(width, 3 * width)
        self.projection = nn.Linear(width, width)
        self.norm_mlp = nn.LayerNorm(width)
        self.expand = nn.Linear(width, 4 * width)
        self.contract = nn.Linear(4 * width, width)

    def forward(self, x):
        batch, length, width = x.shape
        q, k, v = self.query_key_value(self.norm_attention(x)).split(width, dim=-1)
        shape = (batch, length, self.heads, width // self.heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(width // self.heads)
        mask = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        attention = scores.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + self.projection(attention.transpose(1, 2).reshape(batch, length, width))
        return x + self.contract(F.gelu(self.expand(self.norm_mlp(x))))


class CharTransformer(nn.Module):
    def __init__(self, vocabulary, context, width, heads, layers):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, width)
        self.position = nn.Parameter(torch.randn(context, width) * 0.02)
        self.blocks = nn.Sequential(*[_Block(width, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocabulary)

    def forward(self, tokens):
        x = self.embedding(tokens) + self.position[:tokens.shape[1]]
        return self.head(self.norm(self.blocks(x)))


def load_text(name: str = "stdlib_docstrings.txt") -> str:
    """The bundled training text (see fmtlab/data/README.md)."""
    return importlib.resources.files("fmtlab").joinpath("data", name).read_text(encoding="ascii")


class CharLM(Task):
    name = "charlm"
    settings = TaskSettings(steps=1000, quick_steps=200, eval_every=25, quick_eval_every=25)
    batch_size = 16
    context = 32
    width = 64
    heads = 4
    layers = 2
    learning_rate = 3e-3
    evaluation_windows = 32

    def __init__(self):
        text = load_text()
        self.alphabet = sorted(set(text))
        lookup = {character: index for index, character in enumerate(self.alphabet)}
        self.tokens = torch.tensor([lookup[c] for c in text], dtype=torch.int64)
        starts = np.random.default_rng(2 ** 31 - 1).integers(0, len(self.tokens) - self.context - 1,
                                                               self.evaluation_windows)
        self._evaluation = self._windows(starts)

    def _windows(self, starts):
        index = torch.from_numpy(np.asarray(starts))[:, None] + torch.arange(self.context + 1)
        window = self.tokens[index]
        return window[:, :-1], window[:, 1:]

    def build_model(self):
        return CharTransformer(len(self.alphabet), self.context, self.width, self.heads, self.layers)

    def build_optimizer(self, parameters):
        return torch.optim.Adam(parameters, lr=self.learning_rate)

    def batches(self, seed, steps):
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            yield self._windows(rng.integers(0, len(self.tokens) - self.context - 1, self.batch_size))

    def loss(self, model, inputs, targets):
        logits = model(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def evaluation_batch(self):
        return self._evaluation


def make_task(name: str) -> Task:
    """The task called ``name`` ("digits" or "charlm")."""
    if name == "digits":
        return DigitsMLP()
    if name == "charlm":
        return CharLM()
    raise ValueError(f"task={name!r} is not allowed; choose one of {', '.join(TASKS)}")
