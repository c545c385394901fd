"""modrl: policy-aligned content moderation with RL-trained LLMs, from Python.

    import modrl
    clf = modrl.Classifier("models/smollm2-135m-instruct", "configs/policies/offensive.toml")
    clf.score(["you are wonderful", "..."])   # [{"label": 0, "score": 0.03, "category": "none"}, ...]

`Classifier` runs the same scoring code as `modrl classify` (the Rust crate modrl-serve), so a
text gets the same score from both. Scoring releases the GIL. Errors raise `modrl.ModrlError`
with the CLI's message.
"""

# torch==2.11.0 carries the libtorch the native module was built against: importing it first puts
# that one library in the process, so `import torch` next to `import modrl` shares it.
import torch as _torch  # noqa: F401

from ._modrl import Classifier as _NativeClassifier
from ._modrl import ModrlError, __version__

__all__ = ["Classifier", "ModrlError", "__version__"]


class Classifier:
    """A policy-grounded classifier: a model (HF directory, optional PEFT LoRA adapter) and a
    policy (TOML) loaded once.

    Args:
        model: HF model directory (config.json, *.safetensors, tokenizer.json).
        policy: policy file (TOML), e.g. configs/policies/offensive.toml.
        adapter: a PEFT LoRA adapter directory (e.g. a `modrl train` run's `final/`).
        scoring: "verdict-token" (P(violating) from the verdict token, one forward pass),
            "greedy", or "mc[:N[:T]]" (Monte-Carlo over N sampled reasonings at temperature T).
        device: "cpu", "cuda" or "cuda:N".
        batch_rows: most sequences per forward pass (mc: texts per batch = batch_rows / N).
        threshold: label 1 when the score is at least this.
        dtype: "f32", or "bf16" on CUDA.
        max_new_tokens: output tokens of the reasoning modes.
        seed: sampling seed (mc).
        variant: prompt of the reasoning modes: "standard" or "reflection".
        no_system_role: fold the system message into the user turn.
        threads: CPU threads of this process's libtorch (default: libtorch's choice). Give each
            Ray actor the CPUs it was allotted.
    """

    def __init__(
        self,
        model,
        policy,
        adapter=None,
        scoring="verdict-token",
        device="cpu",
        batch_rows=32,
        threshold=0.5,
        dtype="f32",
        max_new_tokens=384,
        seed=0,
        variant="standard",
        no_system_role=False,
        threads=None,
    ):
        self._native = _NativeClassifier(
            str(model),
            str(policy),
            adapter=None if adapter is None else str(adapter),
            scoring=scoring,
            device=device,
            dtype=dtype,
            batch_rows=batch_rows,
            threshold=threshold,
            max_new_tokens=max_new_tokens,
            seed=seed,
            variant=variant,
            no_system_role=no_system_role,
            threads=threads,
        )

    @property
    def scoring(self):
        return self._native.scoring

    @property
    def threshold(self):
        return self._native.threshold

    def score(self, texts):
        """One dict per text: `label` (0/1), `score` (P(violating)), `category` (`none` when not
        flagged) and, for greedy / mc scoring, `reasoning`."""
        if isinstance(texts, str):
            raise TypeError("score() takes a list of texts; wrap a single text in a list")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, not str")
            if not t.strip():
                raise ModrlError(f"texts[{i}] is empty")
        return self._native.score(texts)

    def score_arrow(self, table, text_column="text"):
        """Score the `text_column` of a pyarrow Table (or RecordBatch): the input's columns
        (carried over without a copy) plus `label` (int8), `score` (float64), `category` (string)
        and, for greedy / mc scoring, `reasoning`. The texts themselves are copied once into the
        native scorer."""
        import pyarrow as pa

        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if text_column not in table.column_names:
            raise ModrlError(
                f"no column `{text_column}` (columns: {', '.join(table.column_names)})"
            )
        col = table.column(text_column)
        if col.null_count:
            row = col.is_null().to_pylist().index(True)
            raise ModrlError(f"column `{text_column}`: row {row} is null")
        res = self.score(col.to_pylist())
        out = table
        out = out.append_column("label", pa.array([r["label"] for r in res], pa.int8()))
        out = out.append_column("score", pa.array([r["score"] for r in res], pa.float64()))
        out = out.append_column("category", pa.array([r["category"] for r in res], pa.string()))
        if res and "reasoning" in res[0]:
            out = out.append_column(
                "reasoning", pa.array([r.get("reasoning") for r in res], pa.string())
            )
        return out

    def __repr__(self):
        return f"modrl.Classifier(scoring={self.scoring!r}, threshold={self.threshold})"
